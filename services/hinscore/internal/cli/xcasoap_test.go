package cli

import (
	"testing"
	"time"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
	"github.com/hinscore/hinscore/services/harness/simulator"
	soapevent "github.com/hinscore/hinscore/services/lib/soap/toevent"
)

// TestSimulatorSOAPCopiesMap (here, where the simulator and the mappings
// meet): every SOAP copy the simulator's gateways post maps to what its
// truth says of the transaction: the side, the kind, the key (the
// request's MessageID, the truth's transaction id), the communities and
// organisations, the purpose, a patient where the transaction names one,
// the answer's status for the outcome class and the exception cited;
// the deferred mode's acknowledgement is interim.
func TestSimulatorSOAPCopiesMap(t *testing.T) {
	plan, truth := simulatedXCA(t)
	m := soapevent.NewMapper([]byte("0123456789abcdef-test-key"), "k1")
	seen := map[string]int{}
	for _, network := range plan.Networks() {
		for _, msg := range plan.AllMessages(network) {
			if msg.IsAudit() {
				continue
			}
			side := hinscorev1.Side_SIDE_INITIATING
			if msg.Side == simulator.SideResponding {
				side = hinscorev1.Side_SIDE_RESPONDING
			}
			_, ev, err := m.Map(soapevent.Input{Network: network, Side: side, Body: msg.Raw, Ingest: msg.Time})
			if err != nil {
				t.Fatalf("%s %s: %v", msg.TransactionID, msg.What, err)
			}
			seen[msg.What]++
			checkSOAPCopy(t, msg, truth[msg.TransactionID], ev, side)
		}
	}
	if seen["request"] < 100 || seen["response"] < 50 || seen["ack"] == 0 || seen["deferred-response"] == 0 {
		t.Fatalf("copies %v: the plan has too few to say anything", seen)
	}
}

func checkSOAPCopy(t *testing.T, msg simulator.XCAMessage, r simulator.XCATruthRow, ev *hinscorev1.ExchangeEvent, side hinscorev1.Side) {
	t.Helper()
	id := msg.TransactionID + " " + msg.What
	if msg.What == "deferred-response-ack" {
		// The requester's acceptance of a deferred response relates to the
		// response, is recorded as a notification and names no parties.
		if ev.Role != hinscorev1.Role_ROLE_NOTIFICATION || ev.Status != hinscorev1.Status_STATUS_ACCEPTED ||
			ev.RequesterOrg != "" || ev.ResponderOrg != "" || ev.RequesterCommunity != "" || ev.ResponderCommunity != "" {
			t.Errorf("%s: %v %v parties %q %q %q %q", id, ev.Role, ev.Status, ev.RequesterOrg, ev.ResponderOrg, ev.RequesterCommunity, ev.ResponderCommunity)
		}
		return
	}
	if ev.Side != side || ev.CorrelationKey != soapevent.CorrelationKey(msg.Network, r.TransactionID) || ev.TransactionId != r.TransactionID ||
		ev.EventTimeMs != msg.Time.UnixMilli() {
		t.Errorf("%s: side %v key %q time %d", id, ev.Side, ev.CorrelationKey, ev.EventTimeMs)
	}
	// A request names its responder; an answer does when it carries an
	// id of it (a fault, an empty query answer carry none: the chain has
	// the request's).
	named := msg.What == "request" || ev.ResponderCommunity != ""
	if msg.What == "ack" {
		named = false // a notification: it names no parties
	}
	if named && (ev.ResponderCommunity != r.ResponderCommunity || ev.ResponderOrg != r.ResponderCommunity) {
		t.Errorf("%s: responder %q %q, want %q", id, ev.ResponderOrg, ev.ResponderCommunity, r.ResponderCommunity)
	}
	if !named && ev.MessageType != "Fault" && ev.RecordCount != 0 {
		t.Errorf("%s: a %s with %d records names no responder", id, ev.MessageType, ev.RecordCount)
	}
	switch msg.What {
	case "request":
		if ev.Role != hinscorev1.Role_ROLE_REQUEST || ev.RequestKind != r.Kind || ev.Purpose != r.Purpose || ev.PurposeCode != r.PurposeCode ||
			ev.RequesterCommunity != r.RequesterCommunity || ev.RequesterOrg != r.RequesterCommunity ||
			(ev.PatientToken == "") != (r.Kind == soapevent.KindDocumentRetrieve) {
			t.Errorf("%s: %v %q purpose %q %q requester %q %q token %q, want %q %q %q %q", id, ev.Role, ev.RequestKind, ev.Purpose, ev.PurposeCode,
				ev.RequesterOrg, ev.RequesterCommunity, ev.PatientToken, r.Kind, r.Purpose, r.PurposeCode, r.RequesterCommunity)
		}
	case "ack":
		// Recorded, not linked (soap-class/3): an accept acknowledgement
		// alone does not say whether it accepts the query or the answer.
		if ev.Role != hinscorev1.Role_ROLE_NOTIFICATION || ev.Status != hinscorev1.Status_STATUS_ACCEPTED {
			t.Errorf("%s: %v %v", id, ev.Role, ev.Status)
		}
	default:
		want, ok := statusOfClass[r.Outcome]
		if r.Outcome == "fulfilled_late" {
			want, ok = hinscorev1.Status_STATUS_OK, true
		}
		if ev.Role != hinscorev1.Role_ROLE_RESPONSE || !ok || ev.Status != want || ev.ExceptionCode != r.ExceptionCode {
			t.Errorf("%s %s: %v exception %q (%q %v), want class %s exception %q", id, r.Transaction, ev.Status, ev.ExceptionCode,
				ev.ReasonText, ev.ReasonCodes, r.Outcome, r.ExceptionCode)
		}
	}
}

// simulatedXCA is the simulator's cross-community plan both mapping tests
// read (150 journeys, seed 11) and its truth by transaction id.
func simulatedXCA(t *testing.T) (*simulator.XCAPlan, map[string]simulator.XCATruthRow) {
	t.Helper()
	plan, err := simulator.GenerateXCA(simulator.XCAConfig{Journeys: 150, Seed: 11, Start: time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	truth := map[string]simulator.XCATruthRow{}
	for _, r := range plan.Requests() {
		truth[r.TransactionID] = r
	}
	return plan, truth
}
