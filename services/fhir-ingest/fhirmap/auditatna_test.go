package fhirmap

import (
	"errors"
	"os"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
	atnaevent "github.com/hinscore/hinscore/services/lib/atna/toevent"
	"github.com/hinscore/hinscore/services/lib/domain/quality"
)

// TestAuditEventAsAuditMessage: a record as an AuditMessage (lib/atna's
// testdata) and as the FHIR AuditEvent of IHE BALP gives the same events,
// one mapping, not two: an XCPD query at the responding gateway, and an
// XCA retrieve at the initiating one (whose Source is the responder).
// What differs is the form alone: the format, the ids (of the bytes
// received), the message type's root and the mapping version, which also
// names this package's conversion.
func TestAuditEventAsAuditMessage(t *testing.T) {
	for _, tc := range []struct {
		xml, json, msgType string
		side               hinscorev1.Side
	}{
		{"iti55_responding.xml", "auditevent-xcpd-responding.json", "AuditEvent^110112^ITI-55", hinscorev1.Side_SIDE_RESPONDING},
		{"iti39_import.xml", "auditevent-xca-retrieve-import.json", "AuditEvent^110107^ITI-39", hinscorev1.Side_SIDE_INITIATING},
	} {
		t.Run(tc.json, func(t *testing.T) {
			raw, err := os.ReadFile("../../lib/atna/testdata/" + tc.xml)
			if err != nil {
				t.Fatal(err)
			}
			_, want, err := atnaevent.MapBytes(atnaevent.Input{Network: "neta", Raw: raw, Ingest: testIngest,
				Patients: testMapper().Patients, PatientKeyID: "k1"}, 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			res, err := testMapper().Map(Input{Network: "neta", Body: readExample(t, tc.json), Ingest: testIngest})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Events) != len(want) {
				t.Fatalf("%d events, want %d", len(res.Events), len(want))
			}
			for i, ev := range res.Events {
				if ev.Format != hinscorev1.Format_FORMAT_FHIR || ev.MessageType != tc.msgType || ev.Side != tc.side ||
					ev.MappingVersion != "fhir-map/5+fhir-class/2+atna-map/3+atna-class/2" {
					t.Errorf("event %d: format %v type %q side %v version %q", i, ev.Format, ev.MessageType, ev.Side, ev.MappingVersion)
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
		})
	}
}

// TestAuditEventCrossCommunityErrors: a cross-community AuditEvent's query
// must be base64; one that does not say how it ended, in a number, is
// recorded as one notification flagged no-outcome (observed, not scored).
func TestAuditEventCrossCommunityErrors(t *testing.T) {
	body := string(readExample(t, "auditevent-xcpd-responding.json"))
	_, err := testMapper().Map(Input{Network: "neta", Body: []byte(strings.Replace(body, `"query": "PF`, `"query": "*PF`, 1)), Ingest: testIngest})
	var fe *Error
	if !errors.As(err, &fe) || fe.Path != "AuditEvent.entity[1].query" {
		t.Errorf("bad query: %v, want an error at AuditEvent.entity[1].query", err)
	}
	for name, tc := range map[string]struct{ from, to string }{
		"no outcome":  {`"outcome": "0",`, ``},
		"bad outcome": {`"outcome": "0"`, `"outcome": "zero"`},
	} {
		res, err := testMapper().Map(Input{Network: "neta", Body: []byte(strings.Replace(body, tc.from, tc.to, 1)), Ingest: testIngest})
		if err != nil {
			t.Errorf("%s: %v, want it recorded", name, err)
			continue
		}
		if len(res.Events) != 1 || res.Events[0].Role != hinscorev1.Role_ROLE_NOTIFICATION ||
			!slices.Equal(quality.Flags(res.Events[0].ReasonCodes), []string{quality.NoOutcome}) {
			t.Errorf("%s: %v, want one notification flagged %s", name, res.Events, quality.NoOutcome)
		}
	}
}
