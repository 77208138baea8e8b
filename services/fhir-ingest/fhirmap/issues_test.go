package fhirmap

import (
	"testing"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
)

// TestOperationOutcomeIssues: an OperationOutcome answering a request is
// classified by its issues: a known error code by its row, an error of a
// code no row names still as an error (never a success), a warning or
// information only where an issue-note row names it (records suppressed),
// and otherwise a success.
func TestOperationOutcomeIssues(t *testing.T) {
	m := testMapper()
	for _, c := range []struct {
		name, issues string
		want         hinscorev1.Status
	}{
		{"known error", `{"severity":"error","code":"throttled"}`, hinscorev1.Status_STATUS_REFUSED},
		{"error of a code no row names", `{"severity":"error","code":"x-vendor-failure"}`, hinscorev1.Status_STATUS_ERROR_PERMANENT},
		{"fatal without a code", `{"severity":"fatal"}`, hinscorev1.Status_STATUS_ERROR_PERMANENT},
		{"the known error decides over an unknown one", `{"severity":"error","code":"x-vendor-failure"},{"severity":"error","code":"not-found"}`, hinscorev1.Status_STATUS_NOT_FOUND},
		{"an error outweighs a note", `{"severity":"information","code":"suppressed"},{"severity":"error","code":"timeout"}`, hinscorev1.Status_STATUS_ERROR_TRANSIENT},
		{"records suppressed, as information", `{"severity":"information","code":"suppressed"}`, hinscorev1.Status_STATUS_PARTIAL},
		{"a plain warning", `{"severity":"warning","code":"informational"}`, hinscorev1.Status_STATUS_OK},
	} {
		body := []byte(`{"resourceType":"OperationOutcome","id":"oo","issue":[` + c.issues + `]}`)
		res, err := m.Map(Input{Network: "neta", Body: body, CorrelationID: "req-1", Ingest: testIngest})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if len(res.Events) != 1 || res.Events[0].GetStatus() != c.want {
			t.Errorf("%s: %d events, status %v, want %v", c.name, len(res.Events), res.Events[0].GetStatus(), c.want)
		}
	}
}
