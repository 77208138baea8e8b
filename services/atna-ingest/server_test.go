package atnaingest

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
	"github.com/hinscore/hinscore/services/lib/bus/ingest"
	"github.com/hinscore/hinscore/services/lib/bus/ingest/ingesttest"
)

// TestTLSStoresEvents: records sent over RFC 5425 syslog-TLS with mutual
// TLS are stored, each as its request and its answer, with the syslog
// message sealed inside; a peer without a client certificate, one whose
// certificate another CA signed, and plain TCP on the TLS listener are
// refused, counted, and store nothing.
func TestTLSStoresEvents(t *testing.T) {
	pki := ingesttest.NewPKI(t, "hinscore test CA")
	other := ingesttest.NewPKI(t, "another network's CA")
	h := newHarness(t, func(c *Config) { c.TLSCert, c.TLSKey, c.TLSClientCA = pki.CertFile, pki.KeyFile, pki.CAFile })
	tmpl := auditTemplate(t)

	refused := []struct {
		name string
		cfg  *tls.Config
	}{
		{"no client certificate", pki.ClientTLS(false)},
		{"certificate of another CA", func() *tls.Config {
			c := pki.ClientTLS(false)
			c.Certificates = other.ClientTLS(true).Certificates
			return c
		}()},
		{"plain TCP", nil},
	}
	for _, r := range refused {
		nc, err := h.dial(t, "neta", r.cfg)
		if err == nil {
			// TLS 1.3 reports a refused client certificate on the first read.
			_, _ = nc.Write(frames(syslogMsg(audit(tmpl, 999))))
			closedWithin(t, nc, 5*time.Second)
		}
	}
	ingesttest.WaitFor(t, "3 TLS refusals", func() bool { return counterValue(t, h.srv.m.rejected) == 3 })

	nc, err := h.dial(t, "neta", pki.ClientTLS(true))
	if err != nil {
		t.Fatal(err)
	}
	var msgs [][]byte
	for i := range 10 {
		msgs = append(msgs, syslogMsg(audit(tmpl, i)))
	}
	if _, err := nc.Write(frames(msgs...)); err != nil {
		t.Fatal(err)
	}
	evs := h.storedEvents(t, 10)
	if len(evs) != 20 {
		t.Fatalf("EVENTS holds %d events, want 20 (a request and an answer per record)", len(evs))
	}
	kinds := map[hinscorev1.Role]int{}
	for _, ev := range evs {
		kinds[ev.Role]++
		if ev.Network != "neta" || ev.Format != hinscorev1.Format_FORMAT_ATNA || ev.Partition >= 4 {
			t.Errorf("event %s: network %q format %v partition %d", ev.EventId, ev.Network, ev.Format, ev.Partition)
		}
		if ev.Role == hinscorev1.Role_ROLE_REQUEST && ev.RequestKind != "patient_discovery" {
			t.Errorf("request %s: kind %q, want patient_discovery", ev.EventId, ev.RequestKind)
		}
		if !bytes.HasPrefix(ev.Raw, []byte("<85>1 ")) || !bytes.Contains(ev.Raw, []byte("</AuditMessage>")) {
			t.Errorf("event %s: sealed bytes are not the syslog message: %.40q", ev.EventId, ev.Raw)
		}
	}
	if kinds[hinscorev1.Role_ROLE_REQUEST] != 10 || kinds[hinscorev1.Role_ROLE_RESPONSE] != 10 {
		t.Errorf("roles %v, want 10 requests and 10 responses", kinds)
	}
	if n := counterValue(t, h.srv.m.rejected); n != 3 {
		t.Errorf("%v rejections, want the 3 refused connections", n)
	}
}

// TestCertificateBoundToNetwork: netb has its own client CA
// (HINSCORE_ATNA_TLS_CLIENT_CAS), so a gateway certificate of neta's CA,
// valid on neta's listener, is refused on netb's, and netb's certificate is
// refused on neta's: each refusal counted, nothing stored; each
// certificate stores on its own network's listener.
func TestCertificateBoundToNetwork(t *testing.T) {
	pkiA := ingesttest.NewPKI(t, "neta's CA")
	pkiB := ingesttest.NewPKI(t, "netb's CA")
	h := newHarness(t, func(c *Config) {
		c.TLSCert, c.TLSKey, c.TLSClientCA = pkiA.CertFile, pkiA.KeyFile, pkiA.CAFile
		c.TLSClientCAs = ingest.NetworkFiles{"netb": pkiB.CAFile}
	})
	tmpl := auditTemplate(t)
	// Both trust the server's certificate (pkiA's); each presents its own.
	certB := pkiA.ClientTLS(false)
	certB.Certificates = pkiB.ClientTLS(true).Certificates
	for _, r := range []struct {
		network string
		cfg     *tls.Config
	}{{"netb", pkiA.ClientTLS(true)}, {"neta", certB}} {
		nc, err := h.dial(t, r.network, r.cfg)
		if err == nil {
			_, _ = nc.Write(frames(syslogMsg(audit(tmpl, 900))))
			closedWithin(t, nc, 5*time.Second)
		}
	}
	ingesttest.WaitFor(t, "2 refusals", func() bool { return counterValue(t, h.srv.m.rejected) == 2 })
	if n := counterValue(t, h.srv.m.stored); n != 0 {
		t.Fatalf("%v records stored from certificates of the wrong network", n)
	}
	for i, r := range []struct {
		network string
		cfg     *tls.Config
	}{{"neta", pkiA.ClientTLS(true)}, {"netb", certB}} {
		nc, err := h.dial(t, r.network, r.cfg)
		if err != nil {
			t.Fatalf("%s with its own certificate: %v", r.network, err)
		}
		if _, err := nc.Write(frames(syslogMsg(audit(tmpl, i)))); err != nil {
			t.Fatal(err)
		}
	}
	evs := h.storedEvents(t, 2)
	nets := map[string]int{}
	for _, ev := range evs {
		nets[ev.Network]++
	}
	if nets["neta"] != 2 || nets["netb"] != 2 {
		t.Errorf("events per network %v, want a request and an answer on each", nets)
	}
}

// TestUDPStoresEvents: RFC 5426 datagrams, in RFC 5424 or in the BSD
// form older devices send, are stored like frames; a datagram with half
// an XML document and one over the limit go to the DLQ with their reasons
// and bytes.
func TestUDPStoresEvents(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MaxFrameBytes = 4096 })
	tmpl := auditTemplate(t)
	pc, err := net.Dial("udp", h.srv.UDPAddrs()["neta"])
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	whole := syslogMsg(audit(tmpl, 1))
	half := whole[:len(whole)/2]
	big := syslogMsg(audit(tmpl, 2) + "<!--" + strings.Repeat("x", 4096) + "-->")
	bsd := []byte("<85>Dec  7 10:15:02 gw-responder XCPD[2231]: " + audit(tmpl, 4))
	for _, d := range [][]byte{whole, syslogMsg(audit(tmpl, 3)), half, big, bsd} {
		if _, err := pc.Write(d); err != nil {
			t.Fatal(err)
		}
	}
	if evs := h.storedEvents(t, 3); len(evs) != 6 {
		t.Errorf("EVENTS holds %d events, want 6", len(evs))
	}
	ingesttest.WaitFor(t, "2 dead letters", func() bool { return counterValue(t, h.srv.m.rejected) == 2 })
	dls := deadLetters(t, h.js)
	if len(dls) != 2 || !strings.HasPrefix(dls[0].Reason, reasonXML+": ") || dls[0].Data != string(half) ||
		!strings.HasPrefix(dls[1].Reason, reasonTooLarge+": ") || dls[1].Data != string(big) {
		t.Errorf("dead letters %+v, want the half document (xml) and the oversized datagram (too_large)", dls)
	}
	if n := counterValue(t, h.srv.m.lost); n != 0 {
		t.Errorf("%v datagrams counted lost with the bus up", n)
	}
}

// TestBadInput: each kind of bad input is refused with its reason, its
// bytes in the DLQ; a connection whose framing is intact goes on (the
// record after the bad one is stored), one whose framing is lost is
// closed; another network's connection is served throughout.
func TestBadInput(t *testing.T) {
	tmpl := auditTemplate(t)
	laughs := `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]><AuditMessage>&lol2;</AuditMessage>`
	deep := "<AuditMessage>" + strings.Repeat("<a>", 100) + strings.Repeat("</a>", 100) + "</AuditMessage>"
	soap := `<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body/></s:Envelope>`
	tests := []struct {
		name   string
		stream []byte // what the peer sends
		reason string
		dlq    string // a part of the dead letter's bytes
		goesOn bool
	}{
		{"malformed XML", frames(syslogMsg("<AuditMessage><EventIdentification></AuditMessage>")), reasonXML, "<EventIdentification>", true},
		{"DOCTYPE and entities", frames(syslogMsg(laughs)), reasonDoctype, "<!ENTITY lol", true},
		{"too deep", frames(syslogMsg(deep)), reasonTooDeep, "<a><a>", true},
		{"not syslog", frames([]byte("hello, audit repository")), reasonSyslog, "hello", true},
		{"not an AuditMessage", frames(syslogMsg(soap)), reasonNotAudit, "Envelope", true},
		{"FHIR AuditEvent JSON", frames(syslogMsg(`{"resourceType":"AuditEvent"}`)), reasonXML, "AuditEvent", true},
		{"frame over the limit", frames(syslogMsg(audit(tmpl, 5) + strings.Repeat(" ", 8192))), reasonTooLarge, "<85>1 ", true},
		{"length lies", []byte("9000 " + string(syslogMsg("<AuditMessage/>"))), reasonBadLength, "<AuditMessage/>", false},
		{"non-transparent framing", append(syslogMsg(audit(tmpl, 6)), '\n'), reasonBadLength, "<85>1 ", false},
	}
	h := newHarness(t, func(c *Config) { c.MaxFrameBytes = 8192 })
	other := h.mustDial(t, "netb")
	stored := 0
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(deadLetters(t, h.js))
			nc := h.mustDial(t, "neta")
			good := syslogMsg(audit(tmpl, 100+i))
			if _, err := nc.Write(append(tt.stream, frames(good)...)); err != nil {
				t.Fatal(err)
			}
			if !tt.goesOn {
				nc.(*net.TCPConn).CloseWrite() // the lying length's frame ends here
				closedWithin(t, nc, 5*time.Second)
			}
			if _, err := other.Write(frames(syslogMsg(audit(tmpl, 200+i)))); err != nil {
				t.Fatal(err)
			}
			stored++
			if tt.goesOn {
				stored++
			}
			h.storedEvents(t, stored)
			ingesttest.WaitFor(t, "the dead letter", func() bool { return len(deadLetters(t, h.js)) == before+1 })
			dl := deadLetters(t, h.js)[before]
			if !strings.HasPrefix(dl.Reason, tt.reason+": ") || !strings.Contains(dl.Data, tt.dlq) {
				t.Errorf("dead letter %q with %.60q, want reason %s and bytes holding %q", dl.Reason, dl.Data, tt.reason, tt.dlq)
			}
			if !tt.goesOn && counterValue(t, h.srv.m.stored) != float64(stored) {
				t.Errorf("a record after lost framing was stored")
			}
		})
	}
}

// TestStoreFailureClosesConnection: with the bus down a record is never
// counted stored and its connection is closed (syslog has no
// acknowledgement: the close is how the sender learns); once the bus is
// back, the records sent again are each stored once.
func TestStoreFailureClosesConnection(t *testing.T) {
	pki := ingesttest.NewPKI(t, "hinscore test CA")
	h := newHarness(t, func(c *Config) { c.TLSCert, c.TLSKey, c.TLSClientCA = pki.CertFile, pki.KeyFile, pki.CAFile })
	h.srv.publishTimeout = 500 * time.Millisecond
	tmpl := auditTemplate(t)
	var msgs [][]byte
	for i := range 4 {
		msgs = append(msgs, syslogMsg(audit(tmpl, i)))
	}
	nc, err := h.dial(t, "neta", pki.ClientTLS(true))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nc.Write(frames(msgs[0])); err != nil {
		t.Fatal(err)
	}
	h.storedEvents(t, 1)

	h.ns.Shutdown()
	start := time.Now()
	_, _ = nc.Write(frames(msgs[1:]...))
	closedWithin(t, nc, 5*time.Second)
	if d := time.Since(start); d > h.srv.publishTimeout+3*time.Second {
		t.Errorf("closed after %s", d)
	}
	if n := counterValue(t, h.srv.m.stored); n != 1 {
		t.Errorf("%v records counted stored with the bus down, want only the one before", n)
	}
	if n := counterValue(t, h.srv.m.rejected); n < 1 {
		t.Errorf("the failed store was not counted")
	}

	h.restartBus(t)
	nc, err = h.dial(t, "neta", pki.ClientTLS(true))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nc.Write(frames(msgs...)); err != nil { // the sender's queue, all of it again
		t.Fatal(err)
	}
	evs := h.storedEvents(t, 5)
	seen := map[string]int{}
	for _, ev := range evs {
		seen[ev.EventId]++
	}
	if len(evs) != 8 || len(seen) != 8 {
		t.Errorf("EVENTS holds %d events (%d distinct), want each of the 4 records' 2 once", len(evs), len(seen))
	}
}

// TestSlowAndSilentPeers: half a frame then silence, or a frame trickled
// slower than MinRate, is cut off; another connection is served.
func TestSlowAndSilentPeers(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.ReadTimeout, c.MinRate = time.Second, 100 })
	tmpl := auditTemplate(t)
	silent := h.mustDial(t, "neta")
	if _, err := silent.Write([]byte("3000 <85>1 2026-12-07T10:15:02Z")); err != nil {
		t.Fatal(err)
	}
	slow := h.mustDial(t, "neta")
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for _, b := range frames(syslogMsg(audit(tmpl, 1))) {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond): // 20 bytes/s, under MinRate
			}
			if _, err := slow.Write([]byte{b}); err != nil {
				return
			}
		}
	}()
	start := time.Now()
	closedWithin(t, silent, 5*time.Second)
	closedWithin(t, slow, 5*time.Second)
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("cut off after %s", d)
	}
	ingesttest.WaitFor(t, "2 slow peers counted", func() bool { return counterValue(t, h.srv.m.rejected) == 2 })
	ok := h.mustDial(t, "neta")
	if _, err := ok.Write(frames(syslogMsg(audit(tmpl, 2)))); err != nil {
		t.Fatal(err)
	}
	h.storedEvents(t, 1)
}

// TestMaxConns: a connection over the limit is closed at once and
// counted; the one within it is served.
func TestMaxConns(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MaxConns = 1 })
	first := h.mustDial(t, "neta")
	if _, err := first.Write(frames(syslogMsg(audit(auditTemplate(t), 1)))); err != nil {
		t.Fatal(err)
	}
	h.storedEvents(t, 1)
	second := h.mustDial(t, "neta")
	closedWithin(t, second, 5*time.Second)
	// The server counts the refusal beside closing the connection: the
	// client may see the close first.
	ingesttest.WaitFor(t, "1 refusal counted", func() bool { return counterValue(t, h.srv.m.rejected) == 1 })
}

// TestShutdown: Shutdown before Start is safe and idempotent; Start after
// it fails with ErrClosed; Ready says not listening.
func TestShutdown(t *testing.T) {
	h := newHarness(t, nil)
	if err := h.srv.Ready(context.Background()); err != nil {
		t.Fatalf("Ready: %v", err)
	}
	for range 2 {
		if err := h.srv.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.srv.Start(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("Start after Shutdown: %v", err)
	}
	if err := h.srv.Ready(context.Background()); err == nil {
		t.Error("ready after Shutdown")
	}
}
