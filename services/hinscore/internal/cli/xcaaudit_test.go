package cli

import (
	"testing"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
	"github.com/hinscore/hinscore/services/harness/simulator"
	atnaevent "github.com/hinscore/hinscore/services/lib/atna/toevent"
	"github.com/hinscore/hinscore/services/lib/domain/patient"
	"github.com/hinscore/hinscore/services/lib/syslog"
	"google.golang.org/protobuf/proto"
)

// statusOfClass is the answer status each outcome class of the simulator's
// truth needs from an audit record (the linker makes the class of it).
var statusOfClass = map[string]hinscorev1.Status{
	"fulfilled": hinscorev1.Status_STATUS_OK, "partial": hinscorev1.Status_STATUS_PARTIAL,
	"not_found": hinscorev1.Status_STATUS_NOT_FOUND, "refused_exception": hinscorev1.Status_STATUS_REFUSED,
	"refused_unjustified": hinscorev1.Status_STATUS_REFUSED, "error_transient": hinscorev1.Status_STATUS_ERROR_TRANSIENT,
	"error_permanent": hinscorev1.Status_STATUS_ERROR_PERMANENT,
}

// TestSimulatorAuditsMap (here, where the simulator and the mappings
// meet): every audit record the simulator's gateways write maps to what
// its truth says of the transaction: the writer's side, the kind, the
// communities, the purpose, a patient, the answer's status for the
// outcome class and the exception cited; and the records of one
// transaction share one correlation key.
func TestSimulatorAuditsMap(t *testing.T) {
	plan, truth := simulatedXCA(t)
	tokens := patient.NewTokenizer([]byte("0123456789abcdef-test-key"))
	keys, seen := map[string]string{}, map[string]int{}
	audits := 0
	for _, network := range plan.Networks() {
		for _, m := range plan.AllMessages(network) {
			if !m.IsAudit() {
				continue
			}
			audits++
			msg, err := syslog.Parse(m.Raw, m.Time)
			if err != nil {
				t.Fatal(err)
			}
			_, evs, err := atnaevent.MapBytes(atnaevent.Input{Network: network, Raw: msg.Body, Ingest: m.Time, Patients: tokens, PatientKeyID: "k1"}, 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			r := truth[m.TransactionID]
			seen[m.What]++
			checkAudit(t, m, r, evs)
			if k, ok := keys[m.TransactionID]; ok && k != evs[0].CorrelationKey {
				t.Errorf("%s: keys %q and %q", m.TransactionID, k, evs[0].CorrelationKey)
			}
			keys[m.TransactionID] = evs[0].CorrelationKey
		}
	}
	if audits < 200 || seen["audit-deferred-request"] == 0 || seen["audit-deferred-response"] == 0 {
		t.Fatalf("%d audit records %v: the plan has too few to say anything", audits, seen)
	}
}

func checkAudit(t *testing.T, m simulator.XCAMessage, r simulator.XCATruthRow, evs []*hinscorev1.ExchangeEvent) {
	t.Helper()
	req, ans := evs[0], evs[len(evs)-1]
	switch m.What {
	case "audit-deferred-request":
		// The deferred request, accepted: the answer comes in a record of
		// its own.
		if len(evs) != 2 || ans.Role != hinscorev1.Role_ROLE_INTERIM || ans.Status != hinscorev1.Status_STATUS_ACCEPTED {
			t.Errorf("%s: deferred request mapped to %v", m.TransactionID, evs)
		}
		ans = nil
	case "audit-deferred-response":
		// The answer alone, on the request's key.
		if len(evs) != 1 || ans.Role != hinscorev1.Role_ROLE_RESPONSE || ans.InReplyTo != ans.TransactionId {
			t.Fatalf("%s: deferred response mapped to %v", m.TransactionID, evs)
		}
		req = proto.Clone(ans).(*hinscorev1.ExchangeEvent)
		req.RequestKind = r.Kind // an answer names no kind; its request did
	}
	side := hinscorev1.Side_SIDE_INITIATING
	if m.Side == simulator.SideResponding {
		side = hinscorev1.Side_SIDE_RESPONDING
	}
	if req.Side != side || req.RequestKind != r.Kind || req.ResponderCommunity != r.ResponderCommunity || req.ResponderOrg != r.ResponderCommunity {
		t.Errorf("%s %s: side %v kind %q responder %q %q, want %v %q %q", m.TransactionID, m.Side, req.Side, req.RequestKind,
			req.ResponderOrg, req.ResponderCommunity, side, r.Kind, r.ResponderCommunity)
	}
	if side == hinscorev1.Side_SIDE_INITIATING && (req.RequesterCommunity != r.RequesterCommunity || req.RequesterOrg != r.RequesterCommunity) {
		t.Errorf("%s: requester %q %q, want %q", m.TransactionID, req.RequesterOrg, req.RequesterCommunity, r.RequesterCommunity)
	}
	if req.Purpose != r.Purpose || req.PurposeCode != r.PurposeCode || req.PatientToken == "" || !req.Untimed {
		t.Errorf("%s: purpose %q %q token %q untimed %v, want %q %q", m.TransactionID, req.Purpose, req.PurposeCode, req.PatientToken, req.Untimed, r.Purpose, r.PurposeCode)
	}
	if ans == nil {
		return
	}
	if want, ok := statusOfClass[r.Outcome]; !ok || ans.Status != want || ans.ExceptionCode != r.ExceptionCode {
		t.Errorf("%s %s: status %v exception %q (%q), want class %s exception %q", m.TransactionID, r.Transaction, ans.Status,
			ans.ExceptionCode, ans.ReasonText, r.Outcome, r.ExceptionCode)
	}
}
