package linker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/hinscore/hinscore/services/lib/domain/ids"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
	"github.com/hinscore/hinscore/services/lib/bus"
)

// joinGoal and chainGoal are issue 4's targets for the join alone.
const (
	joinGoal  = 500_000 // events/s on one core
	chainGoal = 300     // heap bytes per pending chain at 1,000,000 pending
)

// BenchmarkChains measures the join alone on one core: events per second
// through Observe, every outcome encoded to the bytes the linker publishes.
func BenchmarkChains(b *testing.B) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	r := testRules(b, nil)
	// Copied in arrival order: the linker decodes each event just before
	// the join sees it, so an event is in memory next to the one before
	// it, not where the generator (which sorts by time) happened to put it.
	events := genEvents(3, 100_000)
	for i, e := range events {
		events[i] = proto.CloneOf(e)
	}
	b.ReportAllocs()
	b.ResetTimer()
	n := 0
	var outs outcomes
	for b.Loop() {
		j := newChains(r)
		for _, e := range events {
			outs.reset()
			j.Observe(e, t0, &outs)
		}
		n += len(events)
	}
	rate := float64(n) / b.Elapsed().Seconds()
	b.ReportMetric(rate, "events/s")
	b.ReportMetric(joinGoal, "goal-events/s")
	b.Logf("join: %.0f events/s on one core (goal %d)", rate, joinGoal)
}

// realisticRequest is a request as the HL7 v2 ingest maps it: a UUID event
// id, an HL7 control id, a network|facility|control-id correlation key, a
// hex HMAC patient token.
func realisticRequest(i int, t int64) *hinscorev1.ExchangeEvent {
	ctrl := fmt.Sprintf("Q%010d", i)
	tok := sha256.Sum256([]byte(ctrl))
	return &hinscorev1.ExchangeEvent{
		EventId:        ids.Event("netA", []byte(ctrl)).String(),
		Network:        "netA",
		MessageId:      ctrl,
		MessageType:    "QBP^Q22",
		Role:           hinscorev1.Role_ROLE_REQUEST,
		RequestKind:    "patient_query",
		CorrelationKey: "netA|CLINIC_" + fmt.Sprint(i%50) + "|" + ctrl,
		RequesterOrg:   "CLINIC_" + fmt.Sprint(i%50),
		ResponderOrg:   "HOSPITAL_" + fmt.Sprint(i%7),
		EventTimeMs:    t,
		PatientToken:   hex.EncodeToString(tok[:]),
		MappingVersion: "hl7v2/1",
		RawSeq:         uint64(i + 1),
	}
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkPendingMemory measures the heap one pending chain costs, with
// 1,000,000 open requests in one partition (every structure of the join
// counted: chains, index, timers, pending list, interned profiles).
func BenchmarkPendingMemory(b *testing.B) {
	const chains = 1_000_000
	r := testRules(b, func(c *Config) {
		c.SLA = map[string]time.Duration{"patient_query": 72 * time.Hour}
		c.MaxPending = chains
	})
	var perChain float64
	for b.Loop() {
		before := heapInUse()
		j := newChains(r)
		start := t0.UnixMilli()
		for i := range chains {
			j.Observe(realisticRequest(i, start+int64(i)), t0, &outcomes{})
		}
		after := heapInUse()
		if j.pending != chains {
			b.Fatalf("%d pending, want %d", j.pending, chains)
		}
		perChain = float64(after-before) / chains
		runtime.KeepAlive(j)
	}
	b.ReportMetric(perChain, "bytes/chain")
	b.ReportMetric(chainGoal, "goal-bytes/chain")
	ev := realisticRequest(1, 0)
	b.Logf("%.0f heap bytes per pending chain at %d (goal %d); key %d B, event id %d B, token %d B; an ExchangeEvent alone is %d B on the wire",
		perChain, chains, chainGoal, len(ev.CorrelationKey), len(ev.EventId), len(ev.PatientToken), protoSize(ev))
}

func protoSize(ev *hinscorev1.ExchangeEvent) int { return proto.Size(ev) }

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
