package fhiringest

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/hinscore/hinscore/services/lib/bus"
)

// edit decodes a JSON body, changes it and encodes it again.
func edit(t *testing.T, body []byte, change func(map[string]any)) []byte {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatal(err)
	}
	change(v)
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestVersionConflict: a resource re-sent with the same id and version but
// other content is refused with 409, an OperationOutcome of code conflict
// and its bytes in the DLQ, and stores nothing; the same content re-sent
// (re-serialised, members reordered) stays a duplicate (200). Both stores
// are covered: a Task version (one event, its bytes sealed in it) and a
// versioned batch Bundle (three events, its bytes in RAW).
func TestVersionConflict(t *testing.T) {
	h := newHarness(t, nil)
	task := example(t, "task-requested.json")
	batch := edit(t, example(t, "batch-request.json"), func(v map[string]any) {
		v["meta"] = map[string]any{"versionId": "1"}
	})
	cases := []struct {
		name, path string
		body       []byte
		changed    []byte
		events     int
	}{
		{"task (one event)", "/fhir/neta/Task", task, edit(t, task, func(v map[string]any) { v["status"] = "cancelled" }), 1},
		{"batch (RAW and three events)", "/fhir/neta/", batch, edit(t, batch, func(v map[string]any) {
			v["entry"].([]any)[2].(map[string]any)["request"].(map[string]any)["url"] = "Condition?patient=other"
		}), 3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if a := h.do(post{path: c.path, token: tokenA, body: c.body}); a.status != http.StatusCreated {
				t.Fatalf("first: %d %s", a.status, a.body)
			}
			events, raws := len(h.events()), len(h.streamMsgs(bus.StreamRaw, "raw."))
			dlqBefore := len(h.streamMsgs(bus.StreamDLQ, "dlq.fhir-ingest"))

			a := h.do(post{path: c.path, token: tokenA, body: c.changed})
			if a.status != http.StatusConflict || a.oo.ResourceType != "OperationOutcome" || len(a.oo.Issue) != 1 ||
				a.oo.Issue[0].Code != "conflict" || !strings.Contains(a.oo.Issue[0].Diagnostics, "received before with other content") {
				t.Fatalf("other content under the same version: %d %s, want 409 with an OperationOutcome of code conflict", a.status, a.body)
			}
			dl := h.streamMsgs(bus.StreamDLQ, "dlq.fhir-ingest")
			if len(dl) != dlqBefore+1 || !bytes.Equal(dl[len(dl)-1].Data, c.changed) || !strings.HasPrefix(dl[len(dl)-1].Header.Get(bus.HeaderReason), reasonConflict+": ") {
				t.Fatalf("%d dead letters after %d; want one more holding the bytes with reason %s", len(dl), dlqBefore, reasonConflict)
			}
			if got := len(h.events()); got != events {
				t.Errorf("EVENTS holds %d events after the conflict, want %d", got, events)
			}

			// The first content again, re-serialised with its members in
			// another order: a duplicate, as before.
			again := edit(t, c.body, func(map[string]any) {})
			if a := h.do(post{path: c.path, token: tokenA, body: again}); a.status != http.StatusOK || !strings.Contains(a.oo.Issue[0].Diagnostics, "already stored") {
				t.Fatalf("the same content again: %d %s, want 200 already stored", a.status, a.body)
			}
			if a := h.do(post{path: c.path, token: tokenA, body: c.body}); a.status != http.StatusOK {
				t.Fatalf("the same bytes again: %d %s, want 200", a.status, a.body)
			}
			if got, gotRaw := len(h.events()), len(h.streamMsgs(bus.StreamRaw, "raw.")); got != events || gotRaw > raws+1 {
				t.Errorf("EVENTS %d (want %d), RAW %d (want at most %d) after the re-sends", got, events, gotRaw, raws+1)
			}
		})
	}
	if got := testutil.ToFloat64(h.srv.m.rejected.WithLabelValues("neta", reasonConflict)); got != 2 {
		t.Errorf("rejected{reason=conflict} = %g, want 2", got)
	}
}

func TestSameContent(t *testing.T) {
	for _, c := range []struct {
		a, b string
		same bool
	}{
		{`{"a":1,"b":[1,2]}`, ` {"b": [1, 2], "a": 1}` + "\n", true},
		{`{"a":1}`, `{"a":1.0}`, false},
		{`{"a":1}`, `{"a":2}`, false},
		{`{"a":[1,2]}`, `{"a":[2,1]}`, false},
		{`<x/>`, ` <x/> `, true},
		{`<x/>`, `<y/>`, false},
		{`{"a":1} {"b":2}`, `{"a":1}`, false},
		{`not json`, `not json`, true},
	} {
		if got := sameContent([]byte(c.a), []byte(c.b)); got != c.same {
			t.Errorf("sameContent(%q, %q) = %v, want %v", c.a, c.b, got, c.same)
		}
	}
}
