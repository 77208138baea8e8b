package ingest

import (
	"crypto/tls"
	"errors"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hinscore/hinscore/services/lib/bus/ingest/ingesttest"
	"github.com/hinscore/hinscore/services/lib/service"
)

// handshakes serves tc on a local port and reports the server side's
// handshake error of each connection (nil: accepted).
func handshakes(t *testing.T, tc *tls.Config) (addr string, results <-chan error) {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", tc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	out := make(chan error, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			out <- c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	return ln.Addr().String(), out
}

// serverSays dials addr with cfg and returns the server's handshake error.
func serverSays(t *testing.T, addr string, cfg *tls.Config, results <-chan error) error {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err == nil {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, _ = c.Read(make([]byte, 1)) // TLS 1.3: the refusal arrives after the client's handshake
		c.Close()
	}
	select {
	case err := <-results:
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("no handshake on the server")
		return nil
	}
}

// TestClientURIBindsNetwork: with one CA for every network and the URI
// pattern, a certificate naming neta is accepted on neta's listener and
// refused on netb's, as is a certificate naming no network; the refusal
// says wrong_network and what the certificate names.
func TestClientURIBindsNetwork(t *testing.T) {
	pki := ingesttest.NewPKI(t, "hin")
	set, err := NewTLSSet(TLSFiles{Prefix: "P_TLS", Cert: pki.CertFile, Key: pki.KeyFile, ClientCA: pki.CAFile,
		ClientURI: "urn:hinscore:network:{network}"})
	if err != nil {
		t.Fatal(err)
	}
	certA := pki.ClientNaming("urn:hinscore:network:neta")
	addrA, resA := handshakes(t, set.For("neta"))
	addrB, resB := handshakes(t, set.For("netb"))
	if err := serverSays(t, addrA, pki.ClientTLSWith(certA), resA); err != nil {
		t.Fatalf("neta's certificate on neta's listener: %v", err)
	}
	for name, c := range map[string]struct {
		addr string
		res  <-chan error
		cert tls.Certificate
	}{"neta's on netb": {addrB, resB, certA}, "no URI on neta": {addrA, resA, pki.Client},
		"a prefix of neta's URI": {addrA, resA, pki.ClientNaming("urn:hinscore:network:neta2")}} {
		err := serverSays(t, c.addr, pki.ClientTLSWith(c.cert), c.res)
		if !errors.Is(err, ErrWrongNetwork) {
			t.Errorf("%s: server said %v, want ErrWrongNetwork", name, err)
		}
		if reason, _, _ := set.Refusal("netb", err); reason != RefusedWrongNetwork {
			t.Errorf("%s: reason %q", name, reason)
		}
	}
	if !set.Mutual("neta") {
		t.Error("not mutual")
	}
}

// TestRefusalNamesTheOwner: with a CA per network, a certificate of netb's
// CA on neta's listener is refused as wrong_network naming netb; one of no
// network's CA as client_cert; none at all as tls.
func TestRefusalNamesTheOwner(t *testing.T) {
	pkiA, pkiB, stranger := ingesttest.NewPKI(t, "neta-ca"), ingesttest.NewPKI(t, "netb-ca"), ingesttest.NewPKI(t, "x")
	set, err := NewTLSSet(TLSFiles{Prefix: "P_TLS", Cert: pkiA.CertFile, Key: pkiA.KeyFile,
		NetworkCAs: NetworkFiles{"neta": pkiA.CAFile, "netb": pkiB.CAFile}})
	if err != nil {
		t.Fatal(err)
	}
	addr, res := handshakes(t, set.For("neta"))
	for _, c := range []struct {
		name          string
		cfg           *tls.Config
		reason, owner string
	}{
		{"netb's certificate", pkiA.ClientTLSWith(pkiB.Client), RefusedWrongNetwork, "netb"},
		{"a stranger's", pkiA.ClientTLSWith(stranger.Client), RefusedClientCert, ""},
		{"none", pkiA.ClientTLS(false), RefusedTLS, ""},
	} {
		err := serverSays(t, addr, c.cfg, res)
		reason, peer, owner := set.Refusal("neta", err)
		if err == nil || reason != c.reason || owner != c.owner {
			t.Errorf("%s: %v: reason %q owner %q, want %q %q", c.name, err, reason, owner, c.reason, c.owner)
		}
		if c.owner != "" && !strings.Contains(peer, "netb-ca peer") {
			t.Errorf("%s: peer %q", c.name, peer)
		}
	}
	if err := serverSays(t, addr, pkiA.ClientTLS(true), res); err != nil {
		t.Errorf("neta's own: %v", err)
	}
}

// TestTLSReloads: the files replaced under a listening listener, the next
// handshake uses them: the new CA's client is accepted and the old one's
// refused, the new server certificate presented; files that do not load
// leave the previous ones in force and are reported.
func TestTLSReloads(t *testing.T) {
	oldPKI, newPKI := ingesttest.NewPKI(t, "old"), ingesttest.NewPKI(t, "new")
	dir := t.TempDir()
	files := TLSFiles{Prefix: "P_TLS", Cert: dir + "/cert.pem", Key: dir + "/key.pem", ClientCA: dir + "/ca.pem"}
	install := func(p *ingesttest.PKI) {
		for from, to := range map[string]string{p.CertFile: files.Cert, p.KeyFile: files.Key, p.CAFile: files.ClientCA} {
			b, err := os.ReadFile(from)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(to+".tmp", b, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(to+".tmp", to); err != nil { // as a secret's update replaces the file
				t.Fatal(err)
			}
		}
	}
	install(oldPKI)
	set, err := NewTLSSet(files)
	if err != nil {
		t.Fatal(err)
	}
	var reloads []error
	set.OnReload = func(err error) { reloads = append(reloads, err) }
	addr, res := handshakes(t, set.For("neta"))
	if err := serverSays(t, addr, oldPKI.ClientTLS(true), res); err != nil {
		t.Fatalf("old client before: %v", err)
	}
	install(newPKI)
	if err := serverSays(t, addr, newPKI.ClientTLS(true), res); err != nil {
		t.Errorf("new client (trusting the new server certificate) after: %v", err)
	}
	if err := serverSays(t, addr, newPKI.ClientTLSWith(oldPKI.Client), res); err == nil {
		t.Error("old client after: accepted")
	}
	if err := os.WriteFile(files.ClientCA, []byte("not PEM"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := serverSays(t, addr, newPKI.ClientTLS(true), res); err != nil {
		t.Errorf("a broken CA file replaced the CAs in force: %v", err)
	}
	if len(reloads) != 2 || reloads[0] != nil || reloads[1] == nil || !strings.Contains(reloads[1].Error(), "P_TLS_CLIENT_CA") {
		t.Errorf("reloads reported: %v", reloads)
	}
}

// TestBindsNetworks: what production requires of the listeners' TLS.
func TestBindsNetworks(t *testing.T) {
	nets := []string{"neta", "netb"}
	for _, c := range []struct {
		name  string
		files TLSFiles
		want  string // "" when bound
	}{
		{"plain TCP", TLSFiles{Prefix: "P_TLS"}, "TLS is off"},
		{"no client CA", TLSFiles{Prefix: "P_TLS", Cert: "c", Key: "k"}, "network neta: no client CA"},
		{"shared CA", TLSFiles{Prefix: "P_TLS", Cert: "c", Key: "k", ClientCA: "ca"}, "network netb: its client CA is shared"},
		{"one own CA", TLSFiles{Prefix: "P_TLS", Cert: "c", Key: "k", ClientCA: "ca", NetworkCAs: NetworkFiles{"neta": "a"}}, "network netb: its client CA is shared"},
		{"own CAs", TLSFiles{Prefix: "P_TLS", Cert: "c", Key: "k", NetworkCAs: NetworkFiles{"neta": "a", "netb": "b"}}, ""},
		{"shared CA and URI", TLSFiles{Prefix: "P_TLS", Cert: "c", Key: "k", ClientCA: "ca", ClientURI: "urn:x:{network}"}, ""},
	} {
		var ps service.Problems
		c.files.BindsNetworks(&ps, "P", nets)
		if got := ps.Err(); (c.want == "") != (got == nil) || got != nil && !strings.Contains(got.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, got, c.want)
		}
	}
	var ps service.Problems
	TLSFiles{Prefix: "P_TLS", ClientURI: "urn:x"}.CheckURI(&ps, "P_TLS_CLIENT_URI")
	if err := ps.Err(); err == nil || !strings.Contains(err.Error(), "want one {network}") || !strings.Contains(err.Error(), "needs client CAs") {
		t.Errorf("bad URI pattern: %v", err)
	}
}
