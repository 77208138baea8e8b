package dlq

import (
	"context"
	"testing"
	"time"

	"github.com/hinscore/hinscore/services/lib/bus"
	"github.com/hinscore/hinscore/services/lib/bus/bustest"
)

func TestDeadLetterStoredOnce(t *testing.T) {
	js := bustest.Streams(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	d := DeadLetter{Stage: "mllp-ingest", Network: "north", Format: "hl7v2", Reason: "MSH-10 empty", Data: []byte("MSH|bad")}
	for i := 0; i < 2; i++ { // a retried rejection is stored once
		if err := Publish(ctx, js, d); err != nil {
			t.Fatal(err)
		}
	}
	s, _ := js.Stream(ctx, bus.StreamDLQ)
	msg, err := s.GetLastMsgForSubject(ctx, bus.DLQSubject("mllp-ingest"))
	if err != nil {
		t.Fatal(err)
	}
	if string(msg.Data) != "MSH|bad" || msg.Header.Get(bus.HeaderReason) != "MSH-10 empty" || msg.Header.Get(bus.HeaderNetwork) != "north" {
		t.Fatalf("DLQ message = %q %v", msg.Data, msg.Header)
	}
	info, _ := s.Info(ctx)
	if info.State.Msgs != 1 {
		t.Fatalf("DLQ holds %d messages, want 1 (deduplicated)", info.State.Msgs)
	}
}

func TestDLQWithoutBytesIsNeverMerged(t *testing.T) {
	js := bustest.Streams(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := 0; i < 2; i++ {
		if err := Publish(ctx, js, DeadLetter{Stage: "mllp-ingest", Reason: "frame too large"}); err != nil {
			t.Fatal(err)
		}
	}
	s, _ := js.Stream(ctx, bus.StreamDLQ)
	info, _ := s.Info(ctx)
	if info.State.Msgs != 2 {
		t.Fatalf("DLQ holds %d records of two oversized frames, want 2", info.State.Msgs)
	}
}
