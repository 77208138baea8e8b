package chwriter_test

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/hinscore/hinscore/services/chwriter"
	"github.com/hinscore/hinscore/services/lib/bus"
)

// BenchmarkWriteEvents measures events from a full EVENTS stream to rows in
// ClickHouse (decode, batch, insert, ack), next to the physical limit of the
// bus alone in the same run: a plain consumer that only fetches and acks.
// Run with a fixed count, e.g. -bench WriteEvents -benchtime 50000x.
func BenchmarkWriteEvents(b *testing.B) {
	h := newHarness(b)
	h.publish(eventMsgs(b, 0, b.N)...)

	// The bus alone: fetch and ack every message.
	busRate := consumeRate(b, h, b.N, jetstream.AckExplicitPolicy)

	cfg := chwriter.DefaultConfig()
	cfg.FlushInterval = 200 * time.Millisecond
	reg := prometheus.NewRegistry()
	b.ResetTimer()
	start := time.Now()
	h.startWriter(cfg, reg)
	for metricSum(b, reg, "hinscore_chwriter_rows_inserted_total") < float64(b.N) {
		if time.Since(start) > 2*time.Minute {
			b.Fatalf("only %v of %d rows after 2m", metricSum(b, reg, "hinscore_chwriter_rows_inserted_total"), b.N)
		}
		time.Sleep(2 * time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "rows/s")
	b.ReportMetric(busRate, "bus_limit_msgs/s")
	if got := h.count("SELECT count() FROM events"); got != uint64(b.N) {
		b.Errorf("events view has %d rows, want %d", got, b.N)
	}
}

// consumeRate reads the first n messages of EVENTS with a durable pull
// consumer of the given ack policy doing no work: with AckExplicit every
// message is acked, as the writer must; with AckNone nothing is, the
// fastest any consumer can read the stream. The consumer is deleted after.
func consumeRate(b *testing.B, h *harness, n int, policy jetstream.AckPolicy) float64 {
	b.Helper()
	start := time.Now()
	c, err := h.js.CreateOrUpdateConsumer(h.ctx, bus.StreamEvents, jetstream.ConsumerConfig{
		Durable: "bench_plain", AckPolicy: policy, MaxAckPending: 20000,
	})
	if err != nil {
		b.Fatal(err)
	}
	for seen := 0; seen < n; {
		batch, err := c.Fetch(min(1000, n-seen), jetstream.FetchMaxWait(time.Second))
		if err != nil {
			b.Fatal(err)
		}
		for msg := range batch.Messages() {
			if policy != jetstream.AckNonePolicy {
				_ = msg.Ack()
			}
			seen++
		}
	}
	rate := float64(n) / time.Since(start).Seconds()
	if err := h.js.DeleteConsumer(h.ctx, bus.StreamEvents, "bench_plain"); err != nil {
		b.Fatal(err)
	}
	return rate
}
