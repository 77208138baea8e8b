package simulator

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// selfSigned makes a certificate for 127.0.0.1 and a pool that trusts it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "audit-repository.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// syslogServer is an RFC 5425 receiver: TLS, octet-counted frames.
type syslogServer struct {
	mu     sync.Mutex
	frames map[string]int // SYSLOG-MSG → times received
	conns  int
	errs   []error
}

func startSyslogServer(t *testing.T, cert tls.Certificate) (*syslogServer, string) {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	s := &syslogServer{frames: map[string]int{}}
	serveConns(t, ln, s.serve)
	return s, ln.Addr().String()
}

func (s *syslogServer) serve(c net.Conn) {
	defer c.Close()
	s.mu.Lock()
	s.conns++
	s.mu.Unlock()
	r := bufio.NewReader(c)
	for {
		msg, err := readOctetFrame(r)
		s.mu.Lock()
		switch {
		case errors.Is(err, io.EOF):
		case err != nil:
			s.errs = append(s.errs, err)
		default:
			s.frames[string(msg)]++
		}
		s.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// readOctetFrame reads MSG-LEN SP SYSLOG-MSG; io.EOF only between frames.
func readOctetFrame(r *bufio.Reader) ([]byte, error) {
	head, err := r.ReadString(' ')
	if err != nil {
		if err == io.EOF && head == "" {
			return nil, io.EOF
		}
		return nil, fmt.Errorf("frame length %q: %w", head, err)
	}
	n, err := strconv.Atoi(strings.TrimSuffix(head, " "))
	if err != nil || n <= 0 || len(head) > 11 || head[0] == '0' {
		return nil, fmt.Errorf("bad frame length %q", head)
	}
	msg := make([]byte, n)
	if _, err := io.ReadFull(r, msg); err != nil {
		return nil, fmt.Errorf("frame of %d bytes: %w", n, err)
	}
	return msg, nil
}

func (s *syslogServer) received() (int, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.frames {
		n += c
	}
	return n, s.conns
}

// soapServer accepts SOAP copies (202), after answering the first one 503.
type soapServer struct {
	mu     sync.Mutex
	posts  int
	copies map[string]int // side + body → times stored
	bad    []string
}

func (s *soapServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.posts++
	side := r.Header.Get("X-Gateway-Side")
	switch {
	case r.Method != http.MethodPost || r.Header.Get("Authorization") != "Bearer sim-token":
		s.bad = append(s.bad, "method or token")
	case !strings.HasPrefix(r.Header.Get("Content-Type"), "application/soap+xml"):
		s.bad = append(s.bad, "content type "+r.Header.Get("Content-Type"))
	case side != SideInitiating && side != SideResponding:
		s.bad = append(s.bad, "side "+side)
	}
	if s.posts == 1 {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	s.copies[side+"\x00"+string(body)]++
	w.WriteHeader(http.StatusAccepted)
}

func TestXCASendOverTLSAndHTTP(t *testing.T) {
	p := xcaPlan(t, XCAConfig{Journeys: 60, DuplicateRate: 0.05, LateRate: 0.1, LossRate: 0.1})
	cert, pool := selfSigned(t)
	sys, addr := startSyslogServer(t, cert)
	soap := &soapServer{copies: map[string]int{}}
	hs := httptest.NewServer(soap)
	t.Cleanup(hs.Close)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	targets := map[string]XCATarget{
		"carequal-east": {Syslog: addr, TLS: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}},
		"ehx-central":   {SOAP: hs.URL + "/fhir/ehx-central/soap", Token: "sim-token"},
	}
	st, err := p.Send(ctx, targets)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{}
	for _, m := range p.AllMessages("carequal-east") {
		want[string(m.Raw)]++
	}
	deadline := time.Now().Add(10 * time.Second)
	n, conns := sys.received()
	for n < len(p.AllMessages("carequal-east")) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		n, conns = sys.received()
	}
	sys.mu.Lock()
	defer sys.mu.Unlock()
	if len(sys.errs) > 0 {
		t.Fatalf("syslog frames: %v", sys.errs)
	}
	if len(sys.frames) != len(want) || n != len(p.AllMessages("carequal-east")) {
		t.Fatalf("syslog: %d frames (%d distinct), want %d (%d distinct)", n, len(sys.frames), len(p.AllMessages("carequal-east")), len(want))
	}
	for msg, c := range want {
		if sys.frames[msg] != c {
			t.Fatalf("syslog: a message received %d times, sent %d", sys.frames[msg], c)
		}
	}
	east, _ := p.Network("carequal-east")
	if conns != len(east.Gateways) {
		t.Fatalf("syslog: %d connections, want one per gateway (%d)", conns, len(east.Gateways))
	}
	checkSOAPReceived(t, p, soap, st)
	t.Logf("%s", st)
}

func checkSOAPReceived(t *testing.T, p *XCAPlan, soap *soapServer, st XCAStats) {
	t.Helper()
	soap.mu.Lock()
	defer soap.mu.Unlock()
	if len(soap.bad) > 0 {
		t.Fatalf("SOAP posts: %v", soap.bad)
	}
	msgs := p.AllMessages("ehx-central")
	want := map[string]int{}
	for _, m := range msgs {
		want[m.Side+"\x00"+string(m.Raw)]++
	}
	if len(soap.copies) != len(want) {
		t.Fatalf("SOAP: %d distinct copies stored, want %d", len(soap.copies), len(want))
	}
	for k, c := range want {
		if soap.copies[k] != c {
			t.Fatalf("SOAP: a copy stored %d times, sent %d", soap.copies[k], c)
		}
	}
	if st.Accepted != len(msgs) || st.Retried != 1 || st.Rejected != 0 || soap.posts != len(msgs)+1 {
		t.Fatalf("stats %s, posts %d, want %d accepted after one retry", st, soap.posts, len(msgs))
	}
}

func TestXCASendGivesUp(t *testing.T) {
	p := xcaPlan(t, XCAConfig{Journeys: 5, ReconnectWithin: 300 * time.Millisecond})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there any more
	_, err = p.Send(context.Background(), map[string]XCATarget{
		"carequal-east": {Syslog: addr, TLS: &tls.Config{MinVersion: tls.VersionTLS12}},
		"ehx-central":   {SOAP: "http://" + addr + "/soap"},
	})
	if !errors.Is(err, ErrGaveUp) {
		t.Fatalf("Send to a closed port: %v, want ErrGaveUp", err)
	}
	if _, err := p.Send(context.Background(), map[string]XCATarget{"carequal-east": {Syslog: addr}}); !errors.Is(err, ErrNoTarget) {
		t.Fatalf("Send without a SOAP target: %v, want ErrNoTarget", err)
	}
}

func TestXCASendPaced(t *testing.T) {
	p := xcaPlan(t, XCAConfig{Journeys: 6, Networks: []XCANetwork{EHXCentral()}, Rate: 200})
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(hs.Close)
	st, err := p.Send(context.Background(), map[string]XCATarget{"ehx-central": {SOAP: hs.URL}})
	if err != nil {
		t.Fatal(err)
	}
	least := time.Duration(float64(p.Frames()-1) / 200 * float64(time.Second))
	if st.Accepted != p.Frames() || st.Duration < least {
		t.Fatalf("%d of %d accepted in %s, want all in at least %s", st.Accepted, p.Frames(), st.Duration, least)
	}
}

func TestParseXCATargets(t *testing.T) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS13}
	got, err := ParseXCATargets(" carequal-east=127.0.0.1:6514 , ehx-central=https://h:8443/fhir/ehx-central/soap", cfg, "tok")
	if err != nil {
		t.Fatal(err)
	}
	if got["carequal-east"].Syslog != "127.0.0.1:6514" || got["carequal-east"].TLS != cfg || got["carequal-east"].SOAP != "" ||
		got["ehx-central"].SOAP != "https://h:8443/fhir/ehx-central/soap" || got["ehx-central"].Token != "tok" {
		t.Fatalf("parsed %+v", got)
	}
	for _, bad := range []string{"carequal-east", "a=1.2.3.4", "a=h:1,a=h:2", "=h:1"} {
		if _, err := ParseXCATargets(bad, nil, ""); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
