package linker

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
	"github.com/hinscore/hinscore/services/lib/bus"
	"github.com/hinscore/hinscore/services/linker/join/jointest"
)

// TestRawStaysInEvents: events whose original bytes travel with them (as
// the ingests publish them) give the same outcomes as without; each
// step's raw_seq is its own EVENTS message's sequence, where the api finds
// the bytes, and no OUTCOMES message holds any of those bytes.
func TestRawStaysInEvents(t *testing.T) {
	js := startBus(t)
	evs := workload(13, 300)
	want := expected(t, evs)
	// Sealed (as the ingests publish them now; a marker stands for the
	// ciphertext) or, as before sealing, in the clear: neither may leave.
	for i, pe := range evs {
		if i%2 == 0 {
			pe.e.RawSealed = []byte("\x01\x03dev SEALED-SECRET-" + pe.e.GetEventId())
			continue
		}
		pe.e.Raw = []byte("MSH|^~\\&|RAW-SECRET-" + pe.e.GetEventId() + "|PID|1||MRN-SECRET")
	}
	publishEvents(t, js, evs)
	ctx := context.Background()
	events, err := js.Stream(ctx, bus.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	seqOf := map[string]uint64{}
	for seq := uint64(1); seq <= uint64(len(evs)); seq++ {
		m, err := events.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		var ev hinscorev1.ExchangeEvent
		if err := proto.Unmarshal(m.Data, &ev); err != nil {
			t.Fatal(err)
		}
		seqOf[ev.GetEventId()] = seq
	}

	l, _ := newLinker(t, js, &fakeClock{now: jointest.T0}, nil)
	if err := l.Start(ctx); err != nil {
		t.Fatal(err)
	}
	waitReady(t, l)
	got := readOutcomes(t, js, 30*time.Second, equalTo(want))
	if err := l.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(got.classes, want) {
		t.Fatalf("OUTCOMES differ from the join: %s", diff(got.classes, want))
	}
	outcomes, err := js.Stream(ctx, bus.StreamOutcomes)
	if err != nil {
		t.Fatal(err)
	}
	steps := 0
	for seq := uint64(1); seq <= uint64(got.messages); seq++ {
		m, err := outcomes.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(m.Data, []byte("SECRET")) {
			t.Fatalf("OUTCOMES message %d holds original bytes", seq)
		}
		var o hinscorev1.Outcome
		if err := proto.Unmarshal(m.Data, &o); err != nil {
			t.Fatal(err)
		}
		for _, st := range o.GetSteps() {
			steps++
			if want, ok := seqOf[st.GetEventId()]; !ok || st.GetRawSeq() != want {
				t.Errorf("outcome %s step %s: raw_seq %d, want its EVENTS sequence %d", o.GetOutcomeId(), st.GetEventId(), st.GetRawSeq(), want)
			}
		}
	}
	if steps == 0 {
		t.Fatal(fmt.Sprint("no steps in ", got.messages, " outcomes"))
	}
}
