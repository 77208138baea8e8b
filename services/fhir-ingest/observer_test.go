package fhiringest

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
	"github.com/hinscore/hinscore/services/lib/bus"
	"github.com/hinscore/hinscore/services/lib/domain/quality"
)

// TestDefectiveResourcesStored: a transaction-response whose entry
// statuses are no HTTP status lines ("created", "OK", none at all) and a
// Task whose time cannot be read are stored, not refused: every event in
// EVENTS, the defective ones flagged, each flag counted, nothing in the
// DLQ. Before the observer rule the first was answered 422.
func TestDefectiveResourcesStored(t *testing.T) {
	h := newHarness(t, nil)
	a := h.do(post{path: "/fhir/neta/", token: tokenA, corr: "tx-2", body: example(t, "transaction-response-odd-status.json")})
	if a.status != http.StatusCreated {
		t.Fatalf("transaction-response: %d %s", a.status, a.body)
	}
	var line bytes.Buffer
	if err := json.Compact(&line, example(t, "task-bad-time.json")); err != nil {
		t.Fatal(err)
	}
	line.WriteByte('\n')
	if a := h.do(post{path: "/fhir/neta/", token: tokenA, contentType: "application/fhir+ndjson", body: line.Bytes()}); a.status != http.StatusOK {
		t.Fatalf("NDJSON: %d %s", a.status, a.body)
	}
	counts := map[string]int{}
	evs := h.events()
	for _, ev := range evs {
		for _, f := range quality.Flags(ev.ReasonCodes) {
			counts[f]++
		}
	}
	if len(evs) != 9 || counts[quality.BadEntryStatus] != 7 || counts[quality.BadTimestamp] != 1 {
		t.Fatalf("%d events, flags %v; want 9 events, 7 entries with bad-entry-status, 1 bad-timestamp", len(evs), counts)
	}
	for f, n := range counts {
		if got := testutil.ToFloat64(h.srv.m.dqFlags.WithLabelValues("neta", f)); got != float64(n) {
			t.Errorf("hinscore_fhir_dq_flags_total{flag=%q} = %v, want %d", f, got, n)
		}
	}
	if dl := h.streamMsgs(bus.StreamDLQ, "dlq."); len(dl) != 0 {
		t.Errorf("DLQ holds %d", len(dl))
	}
	if !slices.ContainsFunc(evs, func(e *hinscorev1.ExchangeEvent) bool { return e.AckCode == "201" && len(e.ReasonCodes) == 1 }) {
		t.Error("the entry with status \"201\" (a status line) is flagged or missing")
	}
}
