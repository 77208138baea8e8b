package fhiringest

import (
	"net/http"
	"testing"

	"github.com/hinscore/hinscore/services/lib/bus"
)

// TestContentTypes: one resource is accepted as application/fhir+json or
// application/json (with parameters, in any case); anything else, NDJSON
// where only POST /fhir/{network}/ takes it included, is 415 with an
// OperationOutcome, and nothing is stored or dead-lettered.
func TestContentTypes(t *testing.T) {
	cases := []struct {
		name, method, path, contentType string
		status                          int
	}{
		{"application/json", "", "/fhir/neta/Task", "application/json", http.StatusCreated},
		{"application/json with charset", "", "/fhir/neta/Task", "application/json; charset=utf-8", http.StatusCreated},
		{"application/fhir+json with fhirVersion", "", "/fhir/neta/Task", "application/fhir+json; fhirVersion=4.0", http.StatusCreated},
		{"upper case", "", "/fhir/neta/", "Application/JSON", http.StatusCreated},
		{"application/json by PUT", http.MethodPut, "/fhir/neta/Task/cdex-task-1", "application/json", http.StatusOK},
		{"XML", "", "/fhir/neta/Task", "application/fhir+xml", http.StatusUnsupportedMediaType},
		{"text", "", "/fhir/neta/Task", "text/plain", http.StatusUnsupportedMediaType},
		{"form", "", "/fhir/neta/", "application/x-www-form-urlencoded", http.StatusUnsupportedMediaType},
		{"no Content-Type", "", "/fhir/neta/Task", noContentType, http.StatusUnsupportedMediaType},
		{"malformed", "", "/fhir/neta/Task", "application/", http.StatusUnsupportedMediaType},
		{"NDJSON to a type endpoint", "", "/fhir/neta/Task", "application/fhir+ndjson", http.StatusUnsupportedMediaType},
		{"NDJSON by PUT", http.MethodPut, "/fhir/neta/Task/cdex-task-1", "application/fhir+ndjson", http.StatusUnsupportedMediaType},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil)
			a := h.do(post{method: tc.method, path: tc.path, token: tokenA, contentType: tc.contentType, body: example(t, "task-requested.json")})
			if a.status != tc.status || a.oo.ResourceType != "OperationOutcome" || len(a.oo.Issue) == 0 {
				t.Fatalf("%d %s, want %d with an OperationOutcome", a.status, a.body, tc.status)
			}
			if tc.status != http.StatusUnsupportedMediaType {
				if evs := h.heldOnce([][]byte{example(t, "task-requested.json")}); len(evs) != 1 {
					t.Errorf("accepted: %d events, want 1", len(evs))
				}
				return
			}
			raws, evs := len(h.streamMsgs(bus.StreamRaw, "raw.")), len(h.events())
			if is := a.oo.Issue[0]; is.Severity != "error" || is.Code != "not-supported" || is.Diagnostics == "" {
				t.Errorf("issue %+v, want an error not-supported saying what to send", is)
			}
			if got := a.header.Get("Content-Type"); got != "application/fhir+json; charset=utf-8" {
				t.Errorf("reply Content-Type %q", got)
			}
			if dl := len(h.streamMsgs(bus.StreamDLQ, "dlq.")); raws != 0 || evs != 0 || dl != 0 {
				t.Errorf("refused: RAW %d, EVENTS %d, DLQ %d; want nothing stored", raws, evs, dl)
			}
		})
	}
}
