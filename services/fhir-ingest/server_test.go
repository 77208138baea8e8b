package fhiringest

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hinscore/hinscore/services/lib/service/servicetest"

	"github.com/hinscore/hinscore/services/lib/bus/natsembed"
	"github.com/hinscore/hinscore/services/lib/bus/seal"

	"github.com/hinscore/hinscore/services/lib/domain/partition"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"google.golang.org/protobuf/proto"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
	"github.com/hinscore/hinscore/services/lib/bus"
	"github.com/hinscore/hinscore/services/lib/bus/bustest"
	"github.com/hinscore/hinscore/services/lib/service"
)

type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time { return c.t }

var testNow = time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)

const (
	tokenA = "token-of-neta"
	tokenB = "token-of-netb"
)

type harness struct {
	t       testing.TB
	js      jetstream.JetStream
	srv     *Server
	base    string
	client  *http.Client
	natsURL string
	ns      *natsembed.Embedded
	busDir  string
}

func newHarness(t testing.TB, mod func(*Config)) *harness {
	t.Helper()
	return newHarnessStore(t, mod, true)
}

// newHarnessStore starts the embedded NATS, the streams (in memory, or on
// file like the pipeline's) and the server.
func newHarnessStore(t testing.TB, mod func(*Config), memory bool) *harness {
	t.Helper()
	opts := bus.DefaultStreamOptions()
	opts.MemoryStorage = memory
	// The client reconnects at once and for ever: a test may restart the bus.
	b := bustest.New(t, &opts)
	ns, busDir, js := b.Server, b.Dir, b.JS
	cfg := DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.Tokens = map[string][]string{"neta": {HashToken(tokenA)}, "netb": {HashToken(tokenB)}}
	cfg.PatientKey = []byte("0123456789abcdef-test-key")
	cfg.PatientKeyID = "k1"
	cfg.RawKeys = testRawKeys
	if mod != nil {
		mod(&cfg)
	}
	srv, err := New(cfg, service.Deps{JetStream: js, Log: zerolog.Nop(), Metrics: prometheus.NewRegistry(), Clock: fixedClock{testNow}})
	if err != nil {
		t.Fatal(err)
	}
	servicetest.Start(t, srv)
	scheme := "http://"
	if cfg.TLSCert != "" {
		scheme = "https://"
	}
	return &harness{t: t, js: js, srv: srv, base: scheme + srv.Addr(), client: &http.Client{Timeout: 20 * time.Second}, natsURL: ns.URL(), ns: ns, busDir: busDir}
}

// noContentType as post.contentType sends no Content-Type header.
const noContentType = "-"

type post struct {
	method, path, token, contentType, corr, encoding string
	body                                             []byte
	header                                           map[string]string // more request headers
}

type answer struct {
	status int
	header http.Header
	oo     OperationOutcome
	body   []byte
	tls    bool // the reply came over TLS
}

func (h *harness) do(p post) answer {
	h.t.Helper()
	if p.method == "" {
		p.method = http.MethodPost
	}
	if p.contentType == "" {
		p.contentType = "application/fhir+json"
	}
	req, err := http.NewRequest(p.method, h.base+p.path, bytes.NewReader(p.body))
	if err != nil {
		h.t.Fatal(err)
	}
	if p.contentType != noContentType {
		req.Header.Set("Content-Type", p.contentType)
	}
	if p.token != "" {
		req.Header.Set("Authorization", "Bearer "+p.token)
	}
	if p.corr != "" {
		req.Header.Set(HeaderCorrelationID, p.corr)
	}
	if p.encoding != "" {
		req.Header.Set("Content-Encoding", p.encoding)
	}
	for k, v := range p.header {
		req.Header.Set(k, v)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	a := answer{status: resp.StatusCode, header: resp.Header, tls: resp.TLS != nil}
	a.body, _ = io.ReadAll(resp.Body)
	_ = json.Unmarshal(a.body, &a.oo)
	return a
}

func example(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("fhirmap", "testdata", "examples", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// streamMsgs returns every message of a stream whose subject starts with prefix.
func (h *harness) streamMsgs(stream, prefix string) []*jetstream.RawStreamMsg {
	h.t.Helper()
	ctx := context.Background()
	s, err := h.js.Stream(ctx, stream)
	if err != nil {
		h.t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		h.t.Fatal(err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			continue
		}
		if strings.HasPrefix(m.Subject, prefix) {
			out = append(out, m)
		}
	}
	return out
}

func (h *harness) events() []*hinscorev1.ExchangeEvent {
	h.t.Helper()
	var out []*hinscorev1.ExchangeEvent
	for _, m := range h.streamMsgs(bus.StreamEvents, "events.") {
		ev := &hinscorev1.ExchangeEvent{}
		if err := proto.Unmarshal(m.Data, ev); err != nil {
			h.t.Fatal(err)
		}
		out = append(out, ev)
	}
	return out
}

// testRawKeys seal the bodies in the harness's events.
var testRawKeys = seal.MustParseRawKeys("t1:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")

// heldOnce checks that RAW and EVENTS hold each of bodies (the bodies
// posted, in order) exactly once, where the events say: a body of one event
// sealed in that event (one EVENTS message), a body of several in RAW
// (header Hin-Format fhir) with each of its events carrying its RAW
// sequence. It returns every event.
func (h *harness) heldOnce(bodies [][]byte) []*hinscorev1.ExchangeEvent {
	h.t.Helper()
	raws := map[uint64][]byte{}
	for _, m := range h.streamMsgs(bus.StreamRaw, "raw.") {
		if m.Subject != "raw.neta.fhir" || m.Header.Get(bus.HeaderFormat) != "fhir" {
			h.t.Errorf("RAW %d: subject %s, format %q", m.Sequence, m.Subject, m.Header.Get(bus.HeaderFormat))
		}
		raws[m.Sequence] = m.Data
	}
	evs := h.events()
	held := make([]int, len(bodies))  // the copies of each body
	inRAW := make([]int, len(bodies)) // the events pointing at its RAW copy
	which := func(data []byte) int {
		for i, b := range bodies {
			if bytes.Equal(b, data) {
				return i
			}
		}
		return -1
	}
	for _, data := range raws {
		if i := which(data); i < 0 {
			h.t.Errorf("RAW holds bytes that were not posted: %.60s", data)
		} else {
			held[i]++
		}
	}
	for _, ev := range evs {
		if len(ev.Raw) > 0 {
			h.t.Errorf("event %s carries its body in the clear", ev.MessageId)
		}
		switch {
		case len(ev.RawSealed) > 0:
			plain, err := testRawKeys.Open(ev.EventId, ev.RawSealed)
			i := which(plain)
			if err != nil || i < 0 || ev.RawSubject != "" || ev.RawSeq != 0 {
				h.t.Errorf("event %s: sealed body of %d bytes (%v, body %d), raw %s/%d", ev.MessageId, len(ev.RawSealed), err, i, ev.RawSubject, ev.RawSeq)
				continue
			}
			held[i]++
		case ev.RawSubject == "raw.neta.fhir" && raws[ev.RawSeq] != nil:
			inRAW[which(raws[ev.RawSeq])]++
		default:
			h.t.Errorf("event %s: its bytes are nowhere (raw %s/%d)", ev.MessageId, ev.RawSubject, ev.RawSeq)
		}
	}
	for i := range bodies {
		if held[i] != 1 {
			h.t.Errorf("body %d is held %d times, want once", i, held[i])
		}
		if inRAW[i] == 1 {
			h.t.Errorf("body %d is in RAW for one event: it should travel with it", i)
		}
	}
	return evs
}

// TestPatterns posts each FHIR pattern's request and answers and checks
// what RAW and EVENTS hold: each body once (heldOnce), and the answers
// meet their request on its correlation key and partition.
func TestPatterns(t *testing.T) {
	type step struct {
		file, corr, path string
		role             hinscorev1.Role
		status           hinscorev1.Status
	}
	R, A := hinscorev1.Role_ROLE_REQUEST, hinscorev1.Role_ROLE_RESPONSE
	cases := []struct {
		name  string
		steps []step
	}{
		{"messaging", []step{
			{"message-request.json", "", "/", R, 0},
			{"message-response-refused.json", "", "/Bundle", A, hinscorev1.Status_STATUS_REFUSED},
		}},
		{"task", []step{
			{"task-requested.json", "", "/Task", R, 0},
			{"task-accepted.json", "", "/Task", hinscorev1.Role_ROLE_INTERIM, hinscorev1.Status_STATUS_ACCEPTED},
			{"task-completed.json", "", "/Task", A, hinscorev1.Status_STATUS_OK},
		}},
		{"audit", []step{
			{"auditevent-rest.json", "", "/AuditEvent", R, 0},
			{"auditevent-serious-failure.json", "", "/AuditEvent", A, hinscorev1.Status_STATUS_ERROR_TRANSIENT},
			{"auditevent-major-failure.json", "", "/AuditEvent", A, hinscorev1.Status_STATUS_ERROR_TRANSIENT},
		}},
		{"batch", []step{
			{"batch-request.json", "c-77", "/", R, 0},
			{"batch-response.json", "c-77", "/", A, hinscorev1.Status_STATUS_OK},
		}},
		{"transaction", []step{
			{"transaction.json", "tx-5", "/", R, 0},
			{"transaction-response.json", "tx-5", "/", A, hinscorev1.Status_STATUS_OK},
		}},
		{"operation outcome answers by X-Correlation-ID", []step{
			{"operationoutcome.json", "corr-9", "/OperationOutcome", A, hinscorev1.Status_STATUS_REFUSED},
		}},
		{"subscription notification", []step{
			{"task-requested.json", "", "/Task", R, 0},
			{"subscription-notification.json", "", "/", A, hinscorev1.Status_STATUS_OK},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil)
			for _, st := range tc.steps {
				a := h.do(post{path: "/fhir/neta" + st.path, token: tokenA, corr: st.corr, body: example(t, st.file)})
				if a.status != http.StatusCreated && a.status != http.StatusOK {
					t.Fatalf("%s: %d %s", st.file, a.status, a.body)
				}
			}
			bodies := make([][]byte, len(tc.steps))
			for i, st := range tc.steps {
				bodies[i] = example(t, st.file)
			}
			evs := h.heldOnce(bodies)
			if len(evs) == 0 {
				t.Fatal("no events")
			}
			keys := map[string]bool{}
			for _, ev := range evs {
				keys[ev.CorrelationKey] = true
				if ev.Partition != partition.Of(ev.CorrelationKey, 4) {
					t.Errorf("event %s: partition %d", ev.MessageId, ev.Partition)
				}
			}
			// Each request's key is answered: the keys number the requests.
			requests := 0
			for _, ev := range evs {
				if ev.Role == R {
					requests++
				}
			}
			if requests > 0 && len(keys) != requests {
				t.Errorf("%d correlation keys for %d requests: answers do not meet their request", len(keys), requests)
			}
			for _, st := range tc.steps {
				found := false
				for _, ev := range evs {
					found = found || (ev.Role == st.role && (st.role == R || ev.Status == st.status))
				}
				if !found {
					t.Errorf("%s: no %s/%s event", st.file, st.role, st.status)
				}
			}
		})
	}
}

func gz(t testing.TB, b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	_, _ = w.Write(b)
	_ = w.Close()
	return buf.Bytes()
}

func TestBadInput(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MaxBodyBytes = 64 << 10 })
	task := example(t, "task-requested.json")
	huge := []byte(`{"resourceType":"Task","note":[{"text":"` + strings.Repeat("x", 70<<10) + `"}]}`)
	cases := []struct {
		name   string
		p      post
		status int
		code   string // issue code
		expr   string // issue expression
		dlq    bool
	}{
		{"bad JSON", post{path: "/fhir/neta/", token: tokenA, body: []byte(`{"resourceType":"Task",`)}, 400, "structure", "", true},
		{"not an object", post{path: "/fhir/neta/", token: tokenA, body: []byte(`[1,2]`)}, 400, "structure", "", true},
		{"wrong JSON type", post{path: "/fhir/neta/", token: tokenA, body: []byte(`{"resourceType":"Task","status":7}`)}, 400, "structure", "Task.status", true},
		{"wrong resourceType for the URL", post{path: "/fhir/neta/Task", token: tokenA, body: example(t, "auditevent-rest.json")}, 400, "invalid", "resourceType", true},
		{"PUT under another id", post{method: "PUT", path: "/fhir/neta/Task/other", token: tokenA, body: task}, 400, "invalid", "Task.id", true},
		{"not an exchange event", post{path: "/fhir/neta/", token: tokenA, body: example(t, "documentreference.json")}, 422, "not-supported", "DocumentReference", true},
		{"unusable Task", post{path: "/fhir/neta/Task", token: tokenA, body: example(t, "task-bad-status.json")}, 422, "value", "Task.status", true},
		{"huge body", post{path: "/fhir/neta/", token: tokenA, body: huge}, 413, "too-costly", "", true},
		{"huge body gzipped", post{path: "/fhir/neta/", token: tokenA, body: gz(t, huge), encoding: "gzip"}, 413, "too-costly", "", true},
		{"no token", post{path: "/fhir/neta/Task", body: task}, 401, "login", "", false},
		{"wrong token", post{path: "/fhir/neta/Task", token: "guess", body: task}, 401, "login", "", false},
		{"other network's token", post{path: "/fhir/neta/Task", token: tokenB, body: task}, 403, "forbidden", "", false},
		{"unknown network", post{path: "/fhir/nowhere/Task", token: tokenA, body: task}, 403, "forbidden", "", false},
		{"media type", post{path: "/fhir/neta/Task", token: tokenA, contentType: "text/plain", body: task}, 415, "not-supported", "", false},
		{"encoding", post{path: "/fhir/neta/Task", token: tokenA, encoding: "br", body: task}, 415, "not-supported", "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := len(h.streamMsgs(bus.StreamDLQ, "dlq.fhir-ingest"))
			a := h.do(tc.p)
			if a.status != tc.status || a.oo.ResourceType != "OperationOutcome" || len(a.oo.Issue) == 0 {
				t.Fatalf("got %d %s, want %d with an OperationOutcome", a.status, a.body, tc.status)
			}
			is := a.oo.Issue[0]
			if is.Code != tc.code || (tc.expr != "" && (len(is.Expression) == 0 || is.Expression[0] != tc.expr)) {
				t.Errorf("issue %+v, want code %s at %q", is, tc.code, tc.expr)
			}
			if tc.status == 401 && a.header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
			dl := h.streamMsgs(bus.StreamDLQ, "dlq.fhir-ingest")
			if got := len(dl) - before; (got == 1) != tc.dlq {
				t.Fatalf("%d new dead letters, want dlq=%v", got, tc.dlq)
			}
			if tc.dlq && tc.status != 413 && !bytes.Equal(dl[len(dl)-1].Data, tc.p.body) {
				t.Error("the dead letter does not hold the body")
			}
		})
	}
	if n := len(h.streamMsgs(bus.StreamRaw, "raw.")); n != 0 {
		t.Errorf("RAW holds %d messages after bad input only", n)
	}
}

func TestGzipAndIdempotency(t *testing.T) {
	h := newHarness(t, nil)
	task := example(t, "task-requested.json")
	a := h.do(post{path: "/fhir/neta/Task", token: tokenA, body: gz(t, task), encoding: "gzip"})
	if a.status != http.StatusCreated || a.header.Get("Location") != "/fhir/neta/Task/cdex-task-1/_history/1" {
		t.Fatalf("first: %d %v %s", a.status, a.header, a.body)
	}
	// The same version again, re-serialised: stored once.
	var v map[string]any
	_ = json.Unmarshal(task, &v)
	again, _ := json.Marshal(v)
	a = h.do(post{method: "PUT", path: "/fhir/neta/Task/cdex-task-1", token: tokenA, body: again})
	if a.status != http.StatusOK || !strings.Contains(a.oo.Issue[0].Diagnostics, "already stored") {
		t.Fatalf("second: %d %s", a.status, a.body)
	}
	if evs := h.heldOnce([][]byte{task}); len(evs) != 1 {
		t.Fatalf("%d events, want 1", len(evs))
	}
}

func TestNDJSON(t *testing.T) {
	h := newHarness(t, nil)
	compact := func(name string) string {
		var buf bytes.Buffer
		if err := json.Compact(&buf, example(t, name)); err != nil {
			t.Fatal(err)
		}
		return buf.String()
	}
	body := strings.Join([]string{
		compact("task-requested.json"),
		compact("auditevent-rest.json"),
		`{"resourceType":"Task","status":`, // line 3: bad
		"",
		compact("documentreference.json"), // line 5: skipped
		compact("task-completed.json"),
	}, "\n") + "\n"
	a := h.do(post{path: "/fhir/neta/", token: tokenA, contentType: "application/fhir+ndjson", body: []byte(body)})
	if a.status != http.StatusOK {
		t.Fatalf("%d %s", a.status, a.body)
	}
	var bad, skipped []string
	for _, is := range a.oo.Issue {
		switch is.Severity {
		case "error":
			bad = append(bad, strings.Join(is.Location, ","))
		case "warning":
			skipped = append(skipped, strings.Join(is.Location, ","))
		}
	}
	if strings.Join(bad, ";") != "line 3" || strings.Join(skipped, ";") != "line 5" {
		t.Fatalf("bad %v skipped %v: %s", bad, skipped, a.body)
	}
	evs := h.events()
	if len(evs) != 4 { // Task, AuditEvent pair, Task
		t.Fatalf("%d events, want 4", len(evs))
	}
	raws := h.streamMsgs(bus.StreamRaw, "raw.neta.fhir")
	if len(raws) != 1 || raws[0].Header.Get(HeaderLines) != "1-6" || evs[0].RawSeq != raws[0].Sequence {
		t.Fatalf("RAW: %d chunks", len(raws))
	}
	dl := h.streamMsgs(bus.StreamDLQ, "dlq.fhir-ingest")
	if len(dl) != 1 || !strings.Contains(dl[0].Header.Get(bus.HeaderReason), "line 3") {
		t.Fatalf("DLQ: %d dead letters", len(dl))
	}
	// A re-import through ImportNDJSON stores nothing new.
	st, err := ImportNDJSON(context.Background(), h.js, h.srv.cfg, "neta", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if st.Lines != 5 || st.Resources != 3 || st.Events != 4 || st.Duplicates != 4 || st.Skipped != 1 || len(st.Errors) != 2 {
		t.Fatalf("re-import %+v", st)
	}
	if len(h.events()) != 4 || len(h.streamMsgs(bus.StreamRaw, "raw.")) != 1 {
		t.Fatal("re-import stored again")
	}
}

func TestMetadataAndLifecycle(t *testing.T) {
	h := newHarness(t, nil)
	resp, err := h.client.Get(h.base + "/fhir/neta/metadata")
	if err != nil {
		t.Fatal(err)
	}
	var cs capabilityStatement
	err = json.NewDecoder(resp.Body).Decode(&cs)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || cs.ResourceType != "CapabilityStatement" || len(cs.Rest[0].Resource) != 5 {
		t.Fatalf("metadata: %d %+v %v", resp.StatusCode, cs, err)
	}
	for _, r := range cs.Rest[0].Resource {
		path := "/fhir/neta/" + r.Type
		a := h.do(post{path: path, token: tokenA, body: []byte(`{}`)})
		if a.status == http.StatusNotFound || a.status == http.StatusMethodNotAllowed {
			t.Errorf("%s advertised but %d", path, a.status)
		}
	}
	if resp, err := h.client.Get(h.base + "/fhir/nowhere/metadata"); err != nil || resp.StatusCode != 404 {
		t.Fatalf("unknown network metadata: %v", err)
	}
	ctx := context.Background()
	if err := h.srv.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	if err := h.srv.Start(ctx); err != nil {
		t.Fatal("second Start:", err)
	}
	if err := h.srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := h.srv.Shutdown(ctx); err != nil {
		t.Fatal("second Shutdown:", err)
	}
	if h.srv.Ready(ctx) == nil {
		t.Fatal("ready after Shutdown")
	}
	if err := h.srv.Start(ctx); err == nil {
		t.Fatal("Start after Shutdown")
	}
	// Shutdown before Start is fine.
	s2, err := New(h.srv.cfg, service.Deps{JetStream: h.js, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestHashTokenFormat(t *testing.T) {
	if got := HashToken("abc"); got != fmt.Sprintf("%x", []byte{0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad}) {
		t.Fatalf("HashToken(abc) = %s, want the SHA-256 of abc", got)
	}
}

// TestPurposeTravels: the purpose mapped from a request reaches EVENTS
// with it (fhirmap's TestPurposes holds the rules).
func TestPurposeTravels(t *testing.T) {
	h := newHarness(t, nil)
	steps := []struct{ file, path, corr string }{
		{"task-requested-purpose.json", "/Task", ""},
		{"transaction-purpose.json", "/", "tx-p"},
	}
	var bodies [][]byte
	for _, st := range steps {
		body := example(t, st.file)
		if a := h.do(post{path: "/fhir/neta" + st.path, token: tokenA, corr: st.corr, body: body}); a.status != http.StatusCreated {
			t.Fatalf("%s: %d %s", st.file, a.status, a.body)
		}
		bodies = append(bodies, body)
	}
	got := map[string]string{}
	for _, ev := range h.heldOnce(bodies) {
		got[ev.MessageId] = ev.Purpose + " " + ev.PurposeCode
	}
	want := map[string]string{
		"Task/cdex-task-2/_history/1": "treatment urn:oid:2.16.840.1.113883.3.7204.1.5.2.1|T-TRTMNT",
		"tx-p#0":                      "individual_access http://terminology.hl7.org/CodeSystem/v3-ActReason|PATRQT",
		"tx-p#1":                      "individual_access http://terminology.hl7.org/CodeSystem/v3-ActReason|PATRQT",
	}
	if len(got) != len(want) {
		t.Fatalf("events %v, want %v", got, want)
	}
	for id, w := range want {
		if got[id] != w {
			t.Errorf("%s: purpose %q, want %q", id, got[id], w)
		}
	}
}
