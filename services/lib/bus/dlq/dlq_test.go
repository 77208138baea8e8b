package dlq

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hinscore/hinscore/services/lib/bus"
	"github.com/hinscore/hinscore/services/lib/bus/natsembed"
)

func TestStreamsAndDLQOnEmbeddedServer(t *testing.T) {
	srv, err := natsembed.Start(t.TempDir(), "127.0.0.1", -1)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	nc, err := bus.Connect(srv.URL(), "test")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	opts := bus.DefaultStreamOptions()
	if err := bus.EnsureStreams(ctx, js, opts); err != nil {
		t.Fatal(err)
	}
	if err := bus.EnsureStreams(ctx, js, opts); err != nil {
		t.Fatalf("bus.EnsureStreams is not idempotent: %v", err)
	}
	if _, err := bus.WaitStream(ctx, js, bus.StreamDLQ); err != nil {
		t.Fatal(err)
	}
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
	short, cancelShort := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancelShort()
	if _, err := bus.WaitStream(short, js, "NOPE"); err == nil {
		t.Fatal("bus.WaitStream found a stream that does not exist")
	}
}

func TestDLQWithoutBytesIsNeverMerged(t *testing.T) {
	srv, err := natsembed.Start(t.TempDir(), "127.0.0.1", -1)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	nc, err := bus.Connect(srv.URL(), "test")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := bus.EnsureStreams(ctx, js, bus.DefaultStreamOptions()); err != nil {
		t.Fatal(err)
	}
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
