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
	"sync/atomic"
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

// dyingSyslogServer stores a frame only storeDelay after reading it, as
// the audit listener counts a record once JetStream has acknowledged its
// events; die closes the listener and every connection at once, losing
// what was read and not yet stored (and whatever the kernel held unread),
// and listens again on the same address, as atna-ingest after kill -9.
type dyingSyslogServer struct {
	t     *testing.T
	cert  tls.Certificate
	addr  string
	mu    sync.Mutex
	gen   int // deaths so far: a frame read before one is never stored
	ln    net.Listener
	conns []net.Conn
	read  int
	// stored is SYSLOG-MSG → times stored.
	stored map[string]int
}

const storeDelay = 30 * time.Millisecond

func startDyingSyslogServer(t *testing.T, cert tls.Certificate) *dyingSyslogServer {
	s := &dyingSyslogServer{t: t, cert: cert, addr: "127.0.0.1:0", stored: map[string]int{}}
	s.listen()
	t.Cleanup(func() { s.die(false) })
	return s
}

func (s *dyingSyslogServer) listen() {
	ln, err := tls.Listen("tcp", s.addr, &tls.Config{Certificates: []tls.Certificate{s.cert}, MinVersion: tls.VersionTLS12})
	if err != nil {
		s.t.Fatal(err)
	}
	s.mu.Lock()
	s.ln, s.addr = ln, ln.Addr().String()
	gen := s.gen
	s.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns = append(s.conns, c)
			s.mu.Unlock()
			go s.serve(c, gen)
		}
	}()
}

func (s *dyingSyslogServer) serve(c net.Conn, gen int) {
	defer c.Close()
	r := bufio.NewReader(c)
	for {
		msg, err := readOctetFrame(r)
		if err != nil {
			return
		}
		s.mu.Lock()
		s.read++
		s.mu.Unlock()
		time.AfterFunc(storeDelay, func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.gen == gen {
				s.stored[string(msg)]++
			}
		})
	}
}

// die closes everything at once; again listens anew on the same address.
func (s *dyingSyslogServer) die(again bool) {
	s.mu.Lock()
	s.gen++
	s.ln.Close()
	for _, c := range s.conns {
		c.Close()
	}
	s.conns = nil
	s.mu.Unlock()
	if again {
		s.listen()
	}
}

// TestXCASyslogResendsAfterListenerDies kills the audit listener halfway
// through a feed: with the replay window every record is stored at least
// once (the pipeline stores the overlap once: Nats-Msg-Id, the linker's
// duplicate rule), and without it records are lost.
func TestXCASyslogResendsAfterListenerDies(t *testing.T) {
	cert, pool := selfSigned(t)
	for _, tc := range []struct {
		name     string
		resend   time.Duration
		wantLoss bool
	}{{"window", 0, false}, {"no-window", -1, true}} {
		t.Run(tc.name, func(t *testing.T) {
			p := xcaPlan(t, XCAConfig{Journeys: 120, Networks: []XCANetwork{CarequalEast()}, Rate: 1500})
			srv := startDyingSyslogServer(t, cert)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			half := p.Frames() / 2
			var sent atomic.Int64
			target := XCATarget{Syslog: srv.addr, TLS: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, Resend: tc.resend,
				Delivered: func(XCAMessage) { sent.Add(1) }}
			var st XCAStats
			var err error
			done := make(chan struct{})
			go func() {
				defer close(done)
				st, err = p.Send(ctx, map[string]XCATarget{"carequal-east": target})
			}()
			for sent.Load() < int64(half) {
				time.Sleep(time.Millisecond)
			}
			srv.die(true)
			<-done
			if err != nil {
				t.Fatal(err)
			}
			time.Sleep(3 * storeDelay) // the last frames read are stored
			srv.mu.Lock()
			defer srv.mu.Unlock()
			lost := 0
			for _, m := range p.AllMessages("carequal-east") {
				if srv.stored[string(m.Raw)] == 0 {
					lost++
				}
			}
			t.Logf("died after %d of %d frames: %s; %d records never stored", half, p.Frames(), st, lost)
			if tc.wantLoss {
				if lost == 0 || st.Resent != 0 {
					t.Fatalf("without a replay window: %d lost, %d resent; the listener's death should have lost records", lost, st.Resent)
				}
				return
			}
			if lost != 0 || st.Resent == 0 || st.Reconnects == 0 {
				t.Fatalf("%d records never stored (resent %d, reconnects %d)", lost, st.Resent, st.Reconnects)
			}
		})
	}
}

// TestReplayWindowBounds: the window keeps what was written within its
// time before the last frame, and at most maxResendBytes (the last frame
// always).
func TestReplayWindowBounds(t *testing.T) {
	t0 := time.Date(2026, 12, 8, 0, 0, 0, 0, time.UTC)
	small := []byte("12 hello world!")
	big := make([]byte, maxResendBytes/2+1)
	for _, tc := range []struct {
		name   string
		frames [][]byte
		at     []time.Duration
		window time.Duration
		want   int
	}{
		{"within", [][]byte{small, small, small}, []time.Duration{0, 500 * time.Millisecond, time.Second}, time.Second, 3},
		{"older forgotten", [][]byte{small, small, small}, []time.Duration{0, 500 * time.Millisecond, 1200 * time.Millisecond}, time.Second, 2},
		{"bytes bound", [][]byte{big, big, big}, []time.Duration{0, 1, 2}, time.Minute, 1},
		{"one huge frame kept", [][]byte{small, append(big, big...)}, []time.Duration{0, 1}, time.Minute, 1},
		{"no window", [][]byte{small}, []time.Duration{0}, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var g syslogGateway
			for i, f := range tc.frames {
				g.remember(f, t0.Add(tc.at[i]), tc.window)
			}
			total := 0
			for _, f := range g.sent {
				total += len(f.frame)
			}
			if len(g.sent) != tc.want || total != g.bytes {
				t.Fatalf("%d frames kept (%d bytes, counted %d), want %d", len(g.sent), total, g.bytes, tc.want)
			}
			if tc.want > 0 && &g.sent[len(g.sent)-1].frame[0] != &tc.frames[len(tc.frames)-1][0] {
				t.Fatal("the last frame written is not kept")
			}
		})
	}
}
