package linker

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
)

// The tests read the join's outcomes as messages: these run the join on a
// batch of its own and decode what it appended, checking on the way that
// every encoding is the canonical one (mustDecode).

func (c *chains) observe(ev *hinscorev1.ExchangeEvent, now time.Time, out []*hinscorev1.Outcome) []*hinscorev1.Outcome {
	var b outcomes
	c.Observe(ev, now, &b)
	return append(out, b.mustDecode()...)
}

func (c *chains) advanceTo(network string, wm int64, out []*hinscorev1.Outcome) []*hinscorev1.Outcome {
	var b outcomes
	c.Advance(network, wm, &b)
	return append(out, b.mustDecode()...)
}

func (c *chains) advanceIdle(now, activeSince time.Time, out []*hinscorev1.Outcome) []*hinscorev1.Outcome {
	var b outcomes
	c.AdvanceIdle(now, activeSince, &b)
	return append(out, b.mustDecode()...)
}

// mustDecode unmarshals every outcome of the batch and checks that its bytes
// are exactly what proto.Marshal gives for the message they decode to, and
// that the entry's id, version, network and class are the message's.
func (o *outcomes) mustDecode() []*hinscorev1.Outcome {
	var outs []*hinscorev1.Outcome
	for i := range o.len() {
		data := o.data(i)
		m := &hinscorev1.Outcome{}
		if err := proto.Unmarshal(data, m); err != nil {
			panic(fmt.Sprintf("outcome %d does not decode: %v", i, err))
		}
		again, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
		if err != nil {
			panic(err)
		}
		if !bytes.Equal(again, data) {
			panic(fmt.Sprintf("outcome %d is not the canonical encoding:\n got %x\nwant %x", i, data, again))
		}
		w := &o.list[i]
		if string(w.id[:]) != m.GetOutcomeId() || w.version != m.GetVersion() || w.network != m.GetNetwork() || w.class != m.GetOutcomeClass() {
			panic(fmt.Sprintf("outcome %d: entry %s v%d %s %v, message %s v%d %s %v", i,
				w.id[:], w.version, w.network, w.class, m.GetOutcomeId(), m.GetVersion(), m.GetNetwork(), m.GetOutcomeClass()))
		}
		outs = append(outs, m)
	}
	return outs
}

// TestWireLongFields checks the encoding where a length needs more than one
// byte: a step and a key longer than 127 bytes, many reason codes.
func TestWireLongFields(t *testing.T) {
	j := newChains(testRules(t, nil))
	key := string(bytes.Repeat([]byte("k"), 300))
	r := req("r-"+string(bytes.Repeat([]byte("x"), 200)), key, 0)
	a := resp("a1", key, 5*s, hinscorev1.Status_STATUS_REFUSED)
	a.ReasonCodes = []string{"AR|207", string(bytes.Repeat([]byte("e"), 150)), ""}
	a.ExceptionCode = "171.204"
	r.PatientToken = "not hex: " + string(bytes.Repeat([]byte("p"), 140))
	outs := j.observe(a, t0, j.observe(r, t0, nil))
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
