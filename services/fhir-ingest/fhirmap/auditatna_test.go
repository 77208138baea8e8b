package fhirmap

import (
	"errors"
	"os"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
	"github.com/hinscore/hinscore/services/lib/atna"
	atnaevent "github.com/hinscore/hinscore/services/lib/atna/toevent"
)

// TestAuditEventAsAuditMessage: one XCPD transaction recorded by the
// responding gateway as an AuditMessage (lib/atna's testdata) and as the
// FHIR AuditEvent of IHE BALP gives the same events: one mapping, not two.
// What differs is the form alone: the format, the ids (of the bytes
// received), the message type's root and the mapping version, which also
// names this package's conversion.
func TestAuditEventAsAuditMessage(t *testing.T) {
	raw, err := os.ReadFile("../../lib/atna/testdata/iti55_responding.xml")
	if err != nil {
		t.Fatal(err)
	}
	a, err := atna.Parse(raw, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	want, err := atnaevent.Map(a, atnaevent.Input{Network: "neta", Raw: raw, Ingest: testIngest,
		Patients: testMapper().Patients, PatientKeyID: "k1"})
	if err != nil {
		t.Fatal(err)
	}
	res, err := testMapper().Map(Input{Network: "neta", Body: readExample(t, "auditevent-xcpd-responding.json"), Ingest: testIngest})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Events) != len(want) {
		t.Fatalf("%d events, want %d", len(res.Events), len(want))
	}
	for i, ev := range res.Events {
		if ev.Format != hinscorev1.Format_FORMAT_FHIR || ev.MessageType != "AuditEvent^110112^ITI-55" ||
			ev.MappingVersion != "fhir-map/2+fhir-class/2+atna-map/1+atna-class/1" {
			t.Errorf("event %d: format %v type %q version %q", i, ev.Format, ev.MessageType, ev.MappingVersion)
		}
		got, w := proto.Clone(ev).(*hinscorev1.ExchangeEvent), proto.Clone(want[i]).(*hinscorev1.ExchangeEvent)
		for _, e := range []*hinscorev1.ExchangeEvent{got, w} {
			e.EventId, e.Format, e.MappingVersion = "", 0, ""
			e.MessageType = strings.TrimPrefix(strings.TrimPrefix(e.MessageType, "AuditEvent"), "AuditMessage")
		}
		if !proto.Equal(got, w) {
			t.Errorf("event %d:\n FHIR %v\n ATNA %v", i, got, w)
		}
	}
	if res.Events[0].Side != hinscorev1.Side_SIDE_RESPONDING || res.Events[0].PatientToken == "" {
		t.Errorf("side %v token %q", res.Events[0].Side, res.Events[0].PatientToken)
	}
}

// TestAuditEventCrossCommunityErrors: a cross-community AuditEvent must
// say how it ended, in a number, and its query must be base64.
func TestAuditEventCrossCommunityErrors(t *testing.T) {
	body := string(readExample(t, "auditevent-xcpd-responding.json"))
	for name, tc := range map[string]struct{ from, to, path string }{
		"no outcome":  {`"outcome": "0",`, ``, "AuditEvent.outcome"},
		"bad outcome": {`"outcome": "0"`, `"outcome": "zero"`, "AuditEvent.outcome"},
		"bad query":   {`"query": "PF`, `"query": "*PF`, "AuditEvent.entity[1].query"},
	} {
		_, err := testMapper().Map(Input{Network: "neta", Body: []byte(strings.Replace(body, tc.from, tc.to, 1)), Ingest: testIngest})
		var fe *Error
		if !errors.As(err, &fe) || fe.Path != tc.path {
			t.Errorf("%s: %v, want an error at %s", name, err, tc.path)
		}
	}
}
