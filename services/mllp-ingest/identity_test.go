package mllpingest

import (
	"crypto/tls"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/hinscore/hinscore/services/lib/bus"
	"github.com/hinscore/hinscore/services/lib/bus/bustest"
	"github.com/hinscore/hinscore/services/lib/bus/ingest/ingesttest"
	"github.com/hinscore/hinscore/services/lib/hl7v2/mllp"
	"github.com/hinscore/hinscore/services/lib/service"
	"github.com/hinscore/hinscore/services/lib/service/servicetest"
)

// newTLSHarness is the harness of two networks, neta and netb, with
// mod's TLS, logging to the buffer it returns.
func newTLSHarness(t *testing.T, mod func(*Config)) (*harness, *servicetest.Buffer) {
	t.Helper()
	opts := bus.DefaultStreamOptions()
	opts.MemoryStorage = true
	b := bustest.New(t, &opts)
	cfg := DefaultConfig()
	cfg.Listeners = []Listener{{Network: "neta", Addr: "127.0.0.1:0"}, {Network: "netb", Addr: "127.0.0.1:0"}}
	cfg.PatientKey, cfg.PatientKeyID, cfg.RawKeys = []byte("0123456789abcdef-test-key"), "k1", testRawKeys
	mod(&cfg)
	logs := &servicetest.Buffer{}
	srv, err := New(cfg, service.Deps{JetStream: b.JS, Log: zerolog.New(logs), Metrics: prometheus.NewRegistry(), Clock: fixedClock{testNow}})
	if err != nil {
		t.Fatal(err)
	}
	servicetest.Start(t, srv)
	return &harness{t: t, ns: b.Server, busDir: b.Dir, nc: b.Conn, js: b.JS, srv: srv}, logs
}

// sendTLS sends one query to network's listener over TLS with cfg and
// reports whether it was acknowledged AA.
func (h *harness) sendTLS(t *testing.T, network string, cfg *tls.Config, id string) bool {
	t.Helper()
	nc, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", h.srv.Addrs()[network], cfg)
	if err != nil {
		return false
	}
	defer nc.Close()
	c := &client{t: t, nc: nc, r: mllp.NewReader(nc, 1<<20)}
	c.send(qbp(id))
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	frame, err := c.r.ReadFrame()
	return err == nil && strings.Contains(string(frame), "MSA|AA|"+id)
}

// TestCertificateURIBoundToNetwork: neta and netb share a CA; with
// HINSCORE_MLLP_TLS_CLIENT_URI each listener accepts only certificates
// whose URI names its network. neta's valid certificate is refused on
// netb's listener, counted as wrong_network and logged with what it
// names; a certificate naming no network is refused too; neta's own
// traffic is stored.
func TestCertificateURIBoundToNetwork(t *testing.T) {
	pki := ingesttest.NewPKI(t, "shared CA")
	h, logs := newTLSHarness(t, func(c *Config) {
		c.TLSCert, c.TLSKey, c.TLSClientCA = pki.CertFile, pki.KeyFile, pki.CAFile
		c.TLSClientURI = "urn:hinscore:network:{network}"
	})
	certA := pki.ClientTLSWith(pki.ClientNaming("urn:hinscore:network:neta"))
	if h.sendTLS(t, "netb", certA, "FORGED") {
		t.Error("neta's certificate wrote on netb's listener")
	}
	if h.sendTLS(t, "neta", pki.ClientTLS(true), "NOURI") {
		t.Error("a certificate naming no network was served")
	}
	if !h.sendTLS(t, "neta", certA, "OWN") {
		t.Error("neta's certificate refused on neta's listener")
	}
	wantHolds(t, h.js, bus.StreamEvents, 1)
	// Counted and logged by the listener after the client saw the refusal.
	ingesttest.WaitFor(t, "a wrong_network refusal on each listener, counted and logged", func() bool {
		return counterValue(t, h.srv.m.rejected.WithLabelValues("netb", "wrong_network")) == 1 &&
			counterValue(t, h.srv.m.rejected.WithLabelValues("neta", "wrong_network")) == 1 &&
			strings.Contains(logs.String(), "urn:hinscore:network:neta")
	})
	if !strings.Contains(logs.String(), `"network":"netb"`) || !strings.Contains(logs.String(), "urn:hinscore:network:neta") ||
		!strings.Contains(logs.String(), "another network") {
		t.Errorf("the refusal is not logged with the networks: %s", logs)
	}
}

// TestCAOfAnotherNetworkCounted: with a CA per network, a valid
// certificate of netb's CA on neta's listener is counted as wrong_network
// and logged naming netb.
func TestCAOfAnotherNetworkCounted(t *testing.T) {
	pkiA, pkiB := ingesttest.NewPKI(t, "neta CA"), ingesttest.NewPKI(t, "netb CA")
	h, logs := newTLSHarness(t, func(c *Config) {
		c.TLSCert, c.TLSKey = pkiA.CertFile, pkiA.KeyFile
		c.TLSClientCAs = map[string]string{"neta": pkiA.CAFile, "netb": pkiB.CAFile}
	})
	if h.sendTLS(t, "neta", pkiA.ClientTLSWith(pkiB.Client), "FORGED") {
		t.Error("netb's certificate wrote on neta's listener")
	}
	if !h.sendTLS(t, "netb", pkiA.ClientTLSWith(pkiB.Client), "OWN") {
		t.Error("netb's certificate refused on netb's listener")
	}
	wantHolds(t, h.js, bus.StreamEvents, 1)
	// Counted and logged by the listener after the client saw the refusal.
	ingesttest.WaitFor(t, "neta's wrong_network refusal, counted and logged", func() bool {
		return counterValue(t, h.srv.m.rejected.WithLabelValues("neta", "wrong_network")) == 1 &&
			strings.Contains(logs.String(), `"certificate_network":"netb"`)
	})
	if !strings.Contains(logs.String(), `"certificate_network":"netb"`) {
		t.Errorf("the refusal does not name netb: %s", logs)
	}
}

// TestTLSFilesReloadWithoutRestart: the certificate, key and client CA
// files replaced while the listener listens (as a rotated Kubernetes
// secret is), the next connection is served under the new ones: a client
// of the new CA is acknowledged, one of the old CA refused.
func TestTLSFilesReloadWithoutRestart(t *testing.T) {
	oldPKI, newPKI := ingesttest.NewPKI(t, "old CA"), ingesttest.NewPKI(t, "new CA")
	dir := t.TempDir()
	cert, key, ca := dir+"/tls.crt", dir+"/tls.key", dir+"/ca.crt"
	install := func(p *ingesttest.PKI) {
		for from, to := range map[string]string{p.CertFile: cert, p.KeyFile: key, p.CAFile: ca} {
			b, err := os.ReadFile(from)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(to+".new", b, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(to+".new", to); err != nil {
				t.Fatal(err)
			}
		}
	}
	install(oldPKI)
	h, _ := newTLSHarness(t, func(c *Config) { c.TLSCert, c.TLSKey, c.TLSClientCA = cert, key, ca })
	if !h.sendTLS(t, "neta", oldPKI.ClientTLS(true), "OLD1") {
		t.Fatal("old CA's client refused before the rotation")
	}
	install(newPKI)
	if !h.sendTLS(t, "neta", newPKI.ClientTLS(true), "NEW1") {
		t.Error("new CA's client refused after the rotation")
	}
	oldClient := newPKI.ClientTLS(false)
	oldClient.Certificates = oldPKI.ClientTLS(true).Certificates
	if h.sendTLS(t, "neta", oldClient, "OLD2") {
		t.Error("old CA's client served after the rotation")
	}
	wantHolds(t, h.js, bus.StreamEvents, 2)
}
