package linker

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hinscore/hinscore/services/lib/bus"
)

// BenchmarkLinkerThroughBus runs the linker on an embedded JetStream: it
// reads EVENTS (stored beforehand) and publishes every outcome version to
// OUTCOMES. It reports events/s from start to the last outcome stored, next
// to the raw durable-consumer rate (Fetch + Ack) of the same stream on the
// same server measured in the same run: the linker is not the pipeline's
// bottleneck when it keeps up with what a consumer can read.
func BenchmarkLinkerThroughBus(b *testing.B) {
	for b.Loop() {
		_, js := startBusWith(b, bus.DefaultStreamOptions())
		evs := workloadN(5, 50_000, testPartitions)
		publishEvents(b, js, evs)
		want := uint64(len(joinRows(b, evs, testRules(b, nil)).content))

		raw := rawConsumeRate(b, js, len(evs))

		clock := &fakeClock{now: time.Now()}
		l, _ := newLinker(b, js, clock, nil)
		start := time.Now()
		if err := l.Start(context.Background()); err != nil {
			b.Fatal(err)
		}
		deadline := start.Add(2 * time.Minute)
		for {
			st, err := js.Stream(context.Background(), bus.StreamOutcomes)
			if err != nil {
				b.Fatal(err)
			}
			info, err := st.Info(context.Background())
			if err != nil {
				b.Fatal(err)
			}
			if info.State.Msgs >= want {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("OUTCOMES holds %d of %d outcome versions after 2 minutes", info.State.Msgs, want)
			}
			time.Sleep(5 * time.Millisecond)
		}
		rate := float64(len(evs)) / time.Since(start).Seconds()
		if err := l.Shutdown(context.Background()); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(rate, "events/s")
		b.ReportMetric(raw, "limit-consume-msgs/s")
		b.ReportMetric(rate/raw, "ratio")
		b.Logf("linker through the bus: %.0f events/s, %d outcome versions; raw Fetch+Ack of the same stream %.0f msgs/s (ratio %.2f)",
			rate, want, raw, rate/raw)
	}
}

// rawConsumeRate reads n messages of EVENTS with a durable pull consumer
// (Fetch(1000) + Ack), the physical limit a consumer of the stream meets.
func rawConsumeRate(b *testing.B, js jetstream.JetStream, n int) float64 {
	b.Helper()
	ctx := context.Background()
	st, err := js.Stream(ctx, bus.StreamEvents)
	if err != nil {
		b.Fatal(err)
	}
	c, err := st.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "bench_raw", AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: 20000})
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	for got := 0; got < n; {
		batch, err := c.Fetch(min(1000, n-got), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			b.Fatal(err)
		}
		for m := range batch.Messages() {
			if err := m.Ack(); err != nil {
				b.Fatal(err)
			}
			got++
		}
		if err := batch.Error(); err != nil {
			b.Fatal(err)
		}
	}
	rate := float64(n) / time.Since(start).Seconds()
	if err := st.DeleteConsumer(ctx, "bench_raw"); err != nil {
		b.Fatal(err)
	}
	return rate
}
