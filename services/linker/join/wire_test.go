package join_test

import (
	"bytes"
	"testing"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
	"github.com/hinscore/hinscore/services/linker/join"
	"github.com/hinscore/hinscore/services/linker/join/jointest"
)

// TestWireLongFields checks the encoding where a length needs more than one
// byte: a step and a key longer than 127 bytes, many reason codes.
func TestWireLongFields(t *testing.T) {
	j := join.New(testRules(nil))
	key := string(bytes.Repeat([]byte("k"), 300))
	r := jointest.Req("r-"+string(bytes.Repeat([]byte("x"), 200)), key, 0)
	a := jointest.Resp("a1", key, 5*s, hinscorev1.Status_STATUS_REFUSED)
	a.ReasonCodes = []string{"AR|207", string(bytes.Repeat([]byte("e"), 150)), ""}
	a.ExceptionCode = "171.204"
	r.PatientToken = "not hex: " + string(bytes.Repeat([]byte("p"), 140))
	outs := jointest.Observe(j, a, jointest.T0, jointest.Observe(j, r, jointest.T0, nil))
	if len(outs) != 1 {
		t.Fatalf("%d outcomes, want 1", len(outs))
	}
	o := outs[0]
	if o.GetCorrelationKey() != key || o.GetRequestId() != r.MessageId || len(o.GetSteps()) != 2 ||
		o.GetSteps()[0].GetMessageId() != r.MessageId || o.GetPatientToken() != r.PatientToken {
		t.Fatalf("long fields lost: %v", o)
	}
	if got := o.GetReasonCodes(); len(got) != 3 || got[1] != a.ReasonCodes[1] || got[2] != "" {
		t.Fatalf("reason codes %q, want %q", got, a.ReasonCodes)
	}
}
