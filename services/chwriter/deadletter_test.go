package chwriter_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hinscore/hinscore/services/chwriter"
	"github.com/hinscore/hinscore/services/lib/bus"
	"github.com/hinscore/hinscore/services/lib/bus/bustest"
	"github.com/hinscore/hinscore/services/lib/bus/dlq"
	"github.com/hinscore/hinscore/services/lib/service"
)

// TestDeadLettersReadHeadersOnly stores dead letters of known sizes, 64 KiB
// and more, and runs a writer on a connection of its own, its DLQ consumer
// left by an earlier version that delivered the bodies. Every one must
// be in dead_letters with its exact size, the writer's consumer must be
// headers only, and the writer's connection must have received far fewer
// bytes than the dead letters hold: their bytes (which may hold patient
// identifiers) never reach it.
func TestDeadLettersReadHeadersOnly(t *testing.T) {
	h := newHarness(t)
	const letters = 20
	var total int
	for i := range letters {
		size := 64<<10 + i*1000
		total += size
		d := dlq.DeadLetter{Stage: "mllp-ingest", Network: "north", Format: "hl7v2", Reason: fmt.Sprintf("test %d", i),
			Data: bytes.Repeat([]byte{'A' + byte(i)}, size)}
		if err := dlq.Publish(h.ctx, h.js, d); err != nil {
			t.Fatal(err)
		}
	}

	// The durable consumer as an earlier writer made it, delivering the
	// bodies: an upgraded writer must make it headers only.
	if _, err := h.js.CreateOrUpdateConsumer(h.ctx, bus.StreamDLQ, jetstream.ConsumerConfig{
		Durable: "chwriter_dlq", DeliverPolicy: jetstream.DeliverAllPolicy, AckPolicy: jetstream.AckExplicitPolicy,
	}); err != nil {
		t.Fatal(err)
	}
	nc, js := bustest.Connect(t, h.url, "chwriter")
	w, err := chwriter.New(testConfig(), service.Deps{JetStream: js, ClickHouse: h.conn, Log: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(h.ctx); err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_ = w.Shutdown(ctx)
	}()
	h.waitCount("SELECT count() FROM dead_letters FINAL WHERE stage = 'mllp-ingest'", letters, waitRows)
	h.waitAcked(bus.StreamDLQ, "chwriter_dlq")

	var wrong uint64
	err = h.conn.QueryRow(h.ctx, `SELECT count() FROM dead_letters FINAL
		WHERE stage = 'mllp-ingest' AND size != 65536 + 1000 * toUInt32(substring(reason, 6))`).Scan(&wrong)
	if err != nil {
		t.Fatal(err)
	}
	if wrong != 0 {
		t.Errorf("%d dead letters recorded with a size other than their bytes'", wrong)
	}
	if !h.consumerInfo(bus.StreamDLQ, "chwriter_dlq").Config.HeadersOnly {
		t.Error("the writer's DLQ consumer delivers the dead letters' bytes")
	}
	in := nc.Stats().InBytes
	t.Logf("%d dead letters of %d bytes in all: the writer's connection received %d bytes", letters, total, in)
	if in > uint64(total)/10 {
		t.Errorf("the writer received %d bytes for %d bytes of dead letters: it read their bodies", in, total)
	}
}
