package fhiringest

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
	"github.com/hinscore/hinscore/services/lib/bus"
	"github.com/hinscore/hinscore/services/lib/soap"
)

func soapFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "lib", "soap", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const mtomType = `multipart/related; boundary=MIMEBoundary_4f1e2d3c; type="application/xop+xml"; start="<0.root@lakeside.example.org>"; start-info="application/soap+xml"`

// TestSOAPStored: copies posted by either gateway are stored with their
// side, one EVENTS message each with the bytes sealed in it, 202 after the
// PubAck; a copy posted again is stored once; the network is the token's.
func TestSOAPStored(t *testing.T) {
	h := newHarness(t, nil)
	req, mtom := soapFile(t, "iti39_request.xml"), soapFile(t, "iti39_response.mime")
	posts := []post{
		{path: "/soap", token: tokenA, contentType: "application/soap+xml; charset=utf-8; action=\"urn:ihe:iti:2007:CrossGatewayRetrieve\"", body: req},
		{path: "/fhir/neta/soap", token: tokenA, contentType: "text/xml", body: req, header: map[string]string{HeaderGatewaySide: "responding"}},
		{path: "/soap", token: tokenA, contentType: mtomType, body: mtom, header: map[string]string{HeaderGatewaySide: "Responding"}},
		{path: "/soap", token: tokenA, contentType: mtomType, body: mtom, header: map[string]string{HeaderGatewaySide: "responding"}},
		{path: "/soap", token: tokenB, contentType: "application/soap+xml", body: soapFile(t, "iti55_request.xml")},
	}
	for i, p := range posts {
		if a := h.do(p); a.status != http.StatusAccepted {
			t.Fatalf("post %d: %d %s", i, a.status, a.body)
		}
	}
	evs := h.events()
	if len(evs) != 4 {
		t.Fatalf("%d events, want 4 (the re-posted copy once)", len(evs))
	}
	type seen struct {
		network string
		side    hinscorev1.Side
		role    hinscorev1.Role
		status  hinscorev1.Status
	}
	want := []seen{
		{"neta", hinscorev1.Side_SIDE_INITIATING, hinscorev1.Role_ROLE_REQUEST, 0},
		{"neta", hinscorev1.Side_SIDE_RESPONDING, hinscorev1.Role_ROLE_REQUEST, 0},
		{"neta", hinscorev1.Side_SIDE_RESPONDING, hinscorev1.Role_ROLE_RESPONSE, hinscorev1.Status_STATUS_OK},
		{"netb", hinscorev1.Side_SIDE_INITIATING, hinscorev1.Role_ROLE_REQUEST, 0},
	}
	bodies := [][]byte{req, req, mtom, posts[4].body}
	for i, ev := range evs {
		got := seen{ev.Network, ev.Side, ev.Role, ev.Status}
		if got != want[i] || ev.Format != hinscorev1.Format_FORMAT_SOAP || ev.CorrelationKey == "" {
			t.Errorf("event %d: %+v %v %q", i, got, ev.Format, ev.CorrelationKey)
		}
		raw, err := testRawKeys.Open(ev.EventId, ev.RawSealed)
		if err != nil || !bytes.Equal(raw, bodies[i]) {
			t.Errorf("event %d: sealed bytes %v", i, err)
		}
	}
	if evs[0].CorrelationKey != evs[2].CorrelationKey || evs[0].EventId == evs[1].EventId {
		t.Errorf("the retrieve and its answer do not share a key, or the two sides share an id")
	}
}

// TestSOAPRefused: each refusal is a SOAP 1.2 fault saying why; what a
// network sent that is not a readable copy is in the DLQ with its bytes.
func TestSOAPRefused(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MaxBodyBytes = 64 << 10 })
	req := soapFile(t, "iti38_request.xml")
	doctype := []byte(`<!DOCTYPE e [<!ENTITY x SYSTEM "file:///etc/passwd">]><e/>`)
	xdr := []byte(`<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body><x:ProvideAndRegisterDocumentSetRequest xmlns:x="urn:ihe:iti:xds-b:2007"/></s:Body></s:Envelope>`)
	huge := append(bytes.Repeat([]byte(" "), 70<<10), req...)
	cases := []struct {
		name   string
		p      post
		status int
		dlq    bool
	}{
		{"no token", post{path: "/soap", contentType: "text/xml", body: req}, 401, false},
		{"other network's token", post{path: "/soap/neta", token: tokenB, contentType: "text/xml", body: req}, 403, false},
		{"other network's token, FHIR path", post{path: "/fhir/neta/soap", token: tokenB, contentType: "text/xml", body: req}, 403, false},
		{"bad side", post{path: "/soap", token: tokenA, contentType: "text/xml", body: req, header: map[string]string{HeaderGatewaySide: "both"}}, 400, false},
		{"media type", post{path: "/soap", token: tokenA, contentType: "application/json", body: req}, 415, false},
		{"DOCTYPE", post{path: "/soap", token: tokenA, contentType: "text/xml", body: doctype}, 400, true},
		{"not SOAP", post{path: "/soap", token: tokenA, contentType: "text/xml", body: []byte(`{"resourceType":"Task"}`)}, 400, true},
		{"another transaction", post{path: "/soap", token: tokenA, contentType: "application/soap+xml", body: xdr}, 422, true},
		{"broken MTOM", post{path: "/soap", token: tokenA, contentType: "multipart/related; boundary=zz", body: req}, 400, true},
		{"huge", post{path: "/soap", token: tokenA, contentType: "text/xml", body: huge}, 413, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := len(h.streamMsgs(bus.StreamDLQ, "dlq.fhir-ingest"))
			a := h.do(tc.p)
			if a.status != tc.status {
				t.Fatalf("got %d %s, want %d", a.status, a.body, tc.status)
			}
			m, err := soap.Parse(a.body, 1<<20)
			if err != nil || m.Fault == nil || m.Fault.Code != "Sender" || m.Fault.Reason == "" {
				t.Fatalf("reply is no SOAP fault: %v %s", err, a.body)
			}
			dl := h.streamMsgs(bus.StreamDLQ, "dlq.fhir-ingest")
			if got := len(dl) - before; (got == 1) != tc.dlq {
				t.Fatalf("%d new dead letters, want dlq=%v", got, tc.dlq)
			}
			if tc.dlq && tc.status != 413 && (!bytes.Equal(dl[len(dl)-1].Data, tc.p.body) || dl[len(dl)-1].Header.Get(bus.HeaderFormat) != formatSOAP) {
				t.Error("the dead letter does not hold the body as soap")
			}
		})
	}
	if n := len(h.events()); n != 0 {
		t.Errorf("%d events after bad input only", n)
	}
}

// TestImportSOAP: a captured copy imported twice is stored once, with the
// same event POST /soap makes of it; a file that is no copy is refused
// and dead-lettered.
func TestImportSOAP(t *testing.T) {
	h := newHarness(t, nil)
	cfg := h.srv.cfg
	data := soapFile(t, "iti39_response_headers.mime")
	ev, dup, err := ImportSOAP(context.Background(), h.js, cfg, "neta", hinscorev1.Side_SIDE_RESPONDING, data)
	if err != nil || dup || ev.Status != hinscorev1.Status_STATUS_OK || ev.Side != hinscorev1.Side_SIDE_RESPONDING {
		t.Fatalf("first import: %v %v %v", ev, dup, err)
	}
	again, dup, err := ImportSOAP(context.Background(), h.js, cfg, "neta", hinscorev1.Side_SIDE_RESPONDING, data)
	if err != nil || !dup || again.EventId != ev.EventId {
		t.Fatalf("second import: %v %v", dup, err)
	}
	if a := h.do(post{path: "/soap", token: tokenA, contentType: "text/xml", body: data, header: map[string]string{HeaderGatewaySide: "responding"}}); a.status != 400 {
		// Without its header block's Content-Type the HTTP path reads the
		// package as XML: the endpoint wants the Content-Type on the request.
		t.Errorf("posted as text/xml: %d", a.status)
	}
	if n := len(h.events()); n != 1 {
		t.Errorf("%d events, want 1", n)
	}
	if _, _, err := ImportSOAP(context.Background(), h.js, cfg, "neta", hinscorev1.Side_SIDE_INITIATING, []byte("<x/>")); !errors.Is(err, soap.ErrNotSOAP) {
		t.Errorf("not a copy: %v", err)
	}
	if n := len(h.streamMsgs(bus.StreamDLQ, "dlq.fhir-ingest")); n != 2 {
		t.Errorf("%d dead letters, want 2 (the text/xml post and the bad file)", n)
	}
}

// TestSOAPClassificationPerNetwork: neta's own rows (a refused credential
// cites the security exception there) classify its copies, netb's use the
// built-in table; each event names the tables that classified it.
func TestSOAPClassificationPerNetwork(t *testing.T) {
	tables, err := ReadSOAPClassification("neta=testdata/classification/neta-soap.csv")
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, func(c *Config) { c.SOAPClassification = tables })
	body := soapFile(t, "fault_security.xml")
	for _, token := range []string{tokenA, tokenB} {
		if a := h.do(post{path: "/soap", token: token, contentType: "text/xml", body: body, header: map[string]string{HeaderGatewaySide: "responding"}}); a.status != http.StatusAccepted {
			t.Fatalf("%d %s", a.status, a.body)
		}
	}
	want := map[string][2]string{"neta": {"171.203", "soap-map/2+neta-soap/1+soap-class/3"}, "netb": {"", "soap-map/2+soap-class/3"}}
	evs := h.events()
	if len(evs) != 2 {
		t.Fatalf("%d events", len(evs))
	}
	for _, ev := range evs {
		w := want[ev.Network]
		if ev.Status != hinscorev1.Status_STATUS_REFUSED || ev.ExceptionCode != w[0] || ev.MappingVersion != w[1] {
			t.Errorf("%s: %v %q %q", ev.Network, ev.Status, ev.ExceptionCode, ev.MappingVersion)
		}
	}
}
