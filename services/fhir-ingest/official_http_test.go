package fhiringest

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/hinscore/hinscore/services/lib/bus"
)

// TestOfficialR4ExamplesHTTP posts the FHIR specification's own R4
// examples (fhirmap/testdata/r4-official, SOURCE.md) as a network would:
// the exchange events are stored (201, their events on EVENTS), what is not
// an exchange event gets 422 with an OperationOutcome naming the element
// and goes to the dead letters. fhirmap.TestOfficialR4Examples checks the
// events field by field.
func TestOfficialR4ExamplesHTTP(t *testing.T) {
	h := newHarness(t, nil)
	cases := []struct {
		file, corr string
		status     int
		events     int    // events published
		code, expr string // for a refusal: issue code and expression
	}{
		{file: "task-example1.json", status: 201, events: 1},
		{file: "Task-example2.json", status: 201, events: 1},
		{file: "Task-example3.json", status: 201, events: 1},
		{file: "Task-example4.json", status: 201, events: 1},
		{file: "Task-example5.json", status: 201, events: 1},
		{file: "Task-example6.json", status: 201, events: 1},
		{file: "Task-fm-example1.json", status: 201, events: 1},
		{file: "Bundle-10bb101f-a121-4264-a920-67be9cb82c74.json", status: 201, events: 1},
		{file: "Bundle-bundle-transaction.json", corr: "tx-7", status: 201, events: 10},
		{file: "Bundle-xds.json", status: 201, events: 5},
		{file: "Bundle-bundle-response-medsallergies.json", corr: "medsallergies", status: 201, events: 5},
		{file: "OperationOutcome-allok.json", corr: "oo-1", status: 201, events: 1},
		{file: "OperationOutcome-101.json", corr: "oo-2", status: 201, events: 1},
		{file: "OperationOutcome-validationfail.json", corr: "oo-3", status: 201, events: 1},
		{file: "OperationOutcome-break-the-glass.json", corr: "oo-4", status: 201, events: 1},
		{file: "audit-event-example-vread.json", status: 201, events: 2},
		{file: "audit-event-example-search.json", status: 201, events: 2},
		{file: "AuditEvent-example-media.json", status: 201, events: 2},
		{file: "audit-event-example-pixQuery.json", status: 201, events: 2},
		{file: "audit-event-example-login.json", status: 201, events: 1},
		{file: "audit-event-example-logout.json", status: 201, events: 1},
		{file: "OperationOutcome-break-the-glass.json", status: 422, code: "not-supported", expr: "OperationOutcome"},
		{file: "documentreference-example.json", status: 422, code: "not-supported", expr: "DocumentReference"},
	}
	for _, tc := range cases {
		t.Run(tc.file+"+"+tc.corr, func(t *testing.T) {
			body, err := os.ReadFile(filepath.Join("fhirmap", "testdata", "r4-official", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			evBefore := len(h.events())
			dlqBefore := len(h.streamMsgs(bus.StreamDLQ, "dlq.fhir-ingest"))
			a := h.do(post{path: "/fhir/neta/", token: tokenA, corr: tc.corr, body: body})
			if a.status != tc.status {
				t.Fatalf("got %d %s, want %d", a.status, a.body, tc.status)
			}
			if got := len(h.events()) - evBefore; got != tc.events {
				t.Errorf("%d events published, want %d", got, tc.events)
			}
			dead := len(h.streamMsgs(bus.StreamDLQ, "dlq.fhir-ingest")) - dlqBefore
			if tc.code == "" {
				if a.header.Get("Location") == "" || dead != 0 {
					t.Errorf("stored without a Location (%q) or with %d dead letters", a.header.Get("Location"), dead)
				}
				return
			}
			if a.oo.ResourceType != "OperationOutcome" || len(a.oo.Issue) == 0 {
				t.Fatalf("refused without an OperationOutcome: %s", a.body)
			}
			is := a.oo.Issue[0]
			if is.Severity != "error" || is.Code != tc.code || len(is.Expression) == 0 || is.Expression[0] != tc.expr || is.Diagnostics == "" {
				t.Errorf("issue %+v, want an error %s at %s that says why", is, tc.code, tc.expr)
			}
			if dead != 1 {
				t.Errorf("%d dead letters, want the refused body", dead)
			}
		})
	}
}
