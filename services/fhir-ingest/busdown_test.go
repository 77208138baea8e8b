package fhiringest

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/hinscore/hinscore/services/lib/bus/bustest"

	"github.com/hinscore/hinscore/services/lib/bus"
)

// restartBus starts the embedded NATS again on its port and store, and
// waits until the server is ready again.
func (h *harness) restartBus(t testing.TB) {
	t.Helper()
	h.ns = bustest.Restart(t, h.ns, h.busDir, h.srv.Ready)
}

// TestBusDownNever2xx: while JetStream is unreachable every post, good or
// bad (its dead letter cannot be stored either), single resource or NDJSON,
// gets 503 with Retry-After and a transient OperationOutcome within the
// publish timeout, never 2xx, and /readyz fails; once the bus is back the
// re-sent posts are answered as usual and each resource is stored once,
// whatever became of the first copies' publishes.
func TestBusDownNever2xx(t *testing.T) {
	h := newHarnessStore(t, nil, false)
	h.srv.pub.timeout = 500 * time.Millisecond
	compact := func(name string) []byte {
		var buf bytes.Buffer
		if err := json.Compact(&buf, example(t, name)); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	ndjson := append(append(compact("task-completed.json"), '\n'), append(compact("message-request.json"), '\n')...)
	badJSON := []byte(`{"resourceType":"Task",`)
	cases := []struct {
		name   string
		p      post
		up     []int // statuses accepted once the bus is back
		events int
	}{
		{"Task", post{path: "/fhir/neta/Task", body: example(t, "task-accepted.json")}, []int{200, 201}, 1},
		{"AuditEvent by PUT", post{method: http.MethodPut, path: "/fhir/neta/AuditEvent/example-search", body: example(t, "auditevent-rest.json")}, []int{200}, 2},
		{"batch", post{path: "/fhir/neta/", corr: "c-down", body: example(t, "batch-request.json")}, []int{200, 201}, 3},
		{"NDJSON", post{path: "/fhir/neta/", contentType: "application/fhir+ndjson", body: ndjson}, []int{200}, 2},
		{"bad JSON", post{path: "/fhir/neta/", body: badJSON}, []int{400}, 0},
	}
	a := h.do(post{path: "/fhir/neta/Task", token: tokenA, body: example(t, "task-requested.json")})
	if a.status != http.StatusCreated {
		t.Fatalf("bus up: %d %s", a.status, a.body)
	}

	h.ns.Shutdown()
	for _, tc := range cases {
		tc.p.token = tokenA
		start := time.Now()
		a := h.do(tc.p)
		if d := time.Since(start); d > h.srv.pub.timeout+2*time.Second {
			t.Errorf("%s: answered after %s", tc.name, d)
		}
		if a.status != http.StatusServiceUnavailable || a.oo.ResourceType != "OperationOutcome" || len(a.oo.Issue) == 0 {
			t.Errorf("%s, bus down: %d %s, want 503 with an OperationOutcome", tc.name, a.status, a.body)
			continue
		}
		if s, err := strconv.Atoi(a.header.Get("Retry-After")); err != nil || s < 1 {
			t.Errorf("%s, bus down: Retry-After %q, want seconds", tc.name, a.header.Get("Retry-After"))
		}
		last := a.oo.Issue[len(a.oo.Issue)-1]
		if last.Severity != "error" || last.Code != "transient" {
			t.Errorf("%s, bus down: last issue %+v, want error transient", tc.name, last)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	if err := h.srv.Ready(ctx); err == nil {
		t.Error("ready while the bus is down")
	}
	cancel()

	h.restartBus(t)
	want := 1 // events of the post before the outage
	for _, tc := range cases {
		tc.p.token = tokenA
		a := h.do(tc.p)
		ok := false
		for _, s := range tc.up {
			ok = ok || a.status == s
		}
		if !ok {
			t.Errorf("%s, re-sent: %d %s, want one of %v", tc.name, a.status, a.body, tc.up)
		}
		want += tc.events
	}
	raws := h.streamMsgs(bus.StreamRaw, "raw.neta.fhir")
	// Each good post of the outage is held once: the bodies of several
	// events (the AuditEvent, the batch, the NDJSON chunk) in RAW, the Task
	// in its event, as the Task posted before the outage.
	if len(raws) != 3 {
		t.Errorf("RAW holds %d messages, want 3", len(raws))
	}
	ids := map[string]int{}
	withRaw := 0
	for _, ev := range h.events() {
		ids[ev.EventId]++
		if len(ev.RawSealed) > 0 {
			withRaw++
		}
	}
	if withRaw != 2 {
		t.Errorf("%d events hold their body, want the 2 Tasks", withRaw)
	}
	for id, n := range ids {
		if n != 1 {
			t.Errorf("event %s stored %d times", id, n)
		}
	}
	if len(ids) != want {
		t.Errorf("EVENTS holds %d distinct events, want %d", len(ids), want)
	}
	dl := h.streamMsgs(bus.StreamDLQ, "dlq.fhir-ingest")
	if len(dl) != 1 || !bytes.Equal(dl[0].Data, badJSON) {
		t.Errorf("DLQ holds %d dead letters, want the bad JSON once", len(dl))
	}
}
