package linker

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/hinscore/hinscore/services/lib/domain/ids"
	"github.com/hinscore/hinscore/services/lib/domain/partition"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
	"google.golang.org/protobuf/proto"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
	"github.com/hinscore/hinscore/proto/outcomeclass"
	"github.com/hinscore/hinscore/services/lib/bus"
	"github.com/hinscore/hinscore/services/lib/bus/bustest"
	"github.com/hinscore/hinscore/services/linker/join"
	"github.com/hinscore/hinscore/services/linker/join/jointest"
)

const testPartitions = 4

// fakeClock is a wall clock the test moves by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

func startBus(t *testing.T) jetstream.JetStream { return bustest.Streams(t) }

// startBusWith starts an embedded JetStream with the hinscore streams and
// returns its URL and a connection the test owns.
func startBusWith(t testing.TB, opts bus.StreamOptions) (string, jetstream.JetStream) {
	t.Helper()
	return bustest.Start(t, &opts)
}

// connect opens a connection of its own (closing it is how a test crashes
// the linker that uses it).
func connect(t testing.TB, url string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1))
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// placed is an event with the partition it is published to.
type placed struct {
	p uint32
	e *hinscorev1.ExchangeEvent
}

// workload is a generated event set spread over the partitions by
// correlation key, with a final tick on every partition so that everything
// still open gets decided.
func workload(seed uint64, chains int) []placed {
	var out []placed
	for _, e := range jointest.GenEvents(seed, chains) {
		if e.GetRole() == hinscorev1.Role_ROLE_NOTIFICATION {
			continue
		}
		out = append(out, placed{partition.Of(e.GetCorrelationKey(), testPartitions), e})
	}
	return append(out, finalTicks(testPartitions)...)
}

// expected runs the pure join over each partition's events in stream order:
// what the linker must publish, by outcome id → final class.
func expected(t *testing.T, evs []placed) map[string]string {
	t.Helper()
	r := testRules(t, nil)
	joins := map[uint32]*join.Join{}
	var outs []*hinscorev1.Outcome
	for _, pe := range evs {
		if joins[pe.p] == nil {
			joins[pe.p] = join.New(r)
		}
		outs = jointest.Observe(joins[pe.p], pe.e, jointest.T0, outs)
	}
	return jointest.FinalClasses(outs)
}

func publishEvents(t testing.TB, js jetstream.JetStream, evs []placed) {
	t.Helper()
	var futs []jetstream.PubAckFuture
	wait := func() {
		for _, f := range futs {
			select {
			case <-f.Ok():
			case err := <-f.Err():
				t.Fatal(err)
			case <-time.After(10 * time.Second):
				t.Fatal("publish not acknowledged")
			}
		}
		futs = futs[:0]
	}
	for _, pe := range evs {
		if len(futs) == 2000 {
			wait()
		}
		data, err := proto.Marshal(pe.e)
		if err != nil {
			t.Fatal(err)
		}
		f, err := js.PublishMsgAsync(&nats.Msg{Subject: bus.EventSubject(pe.p, pe.e.GetNetwork()), Data: data},
			jetstream.WithMsgID("event:"+pe.e.GetEventId()))
		if err != nil {
			t.Fatal(err)
		}
		futs = append(futs, f)
	}
	wait()
}

// seen is what OUTCOMES holds: the final class per outcome id and the
// number of messages stored.
type seen struct {
	classes  map[string]string
	messages int
	distinct int
}

// readOutcomes reads OUTCOMES from the start until done says the set is
// complete or the timeout passes.
func readOutcomes(t *testing.T, js jetstream.JetStream, timeout time.Duration, done func(map[string]string) bool) seen {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cons, err := js.OrderedConsumer(ctx, bus.StreamOutcomes, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	it, err := cons.Messages()
	if err != nil {
		t.Fatal(err)
	}
	defer it.Stop()
	versions := map[string]uint64{}
	ids := map[string]bool{}
	res := seen{classes: map[string]string{}}
	for ctx.Err() == nil {
		msg, err := it.Next(jetstream.NextMaxWait(200 * time.Millisecond))
		if errors.Is(err, nats.ErrTimeout) {
			if done(res.classes) {
				break
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		o := &hinscorev1.Outcome{}
		if err := proto.Unmarshal(msg.Data(), o); err != nil {
			t.Fatal(err)
		}
		res.messages++
		ids[msg.Headers().Get(jetstream.MsgIDHeader)] = true
		if o.GetVersion() > versions[o.GetOutcomeId()] {
			versions[o.GetOutcomeId()] = o.GetVersion()
			res.classes[o.GetOutcomeId()] = outcomeclass.Name(o.GetOutcomeClass())
		}
	}
	res.distinct = len(ids)
	return res
}

func newLinker(t testing.TB, js jetstream.JetStream, clock *fakeClock, mutate func(*Config)) (*Linker, *prometheus.Registry) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.PartitionCount = testPartitions
	cfg.Idle = time.Second
	if mutate != nil {
		mutate(&cfg)
	}
	reg := prometheus.NewRegistry()
	l, err := New(cfg, js, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel), reg, clock)
	if err != nil {
		t.Fatal(err)
	}
	return l, reg
}

func waitReady(t testing.TB, l *Linker) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for l.Ready(context.Background()) != nil {
		if time.Now().After(deadline) {
			t.Fatalf("linker not ready: %v", l.Ready(context.Background()))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func equalTo(want map[string]string) func(map[string]string) bool {
	return func(got map[string]string) bool { return maps.Equal(got, want) }
}

func diff(got, want map[string]string) string {
	var d []string
	for id, c := range want {
		if got[id] != c {
			d = append(d, fmt.Sprintf("%s: got %q want %q", id, got[id], c))
		}
	}
	for id, c := range got {
		if _, ok := want[id]; !ok {
			d = append(d, fmt.Sprintf("%s: unexpected %q", id, c))
		}
	}
	if len(d) > 5 {
		d = append(d[:5], fmt.Sprintf("... %d more", len(d)-5))
	}
	return fmt.Sprint(len(d), " differences: ", d)
}

// TestLinkerThroughJetStream runs the linker on an embedded JetStream: every
// outcome the pure join decides reaches OUTCOMES once per version.
func TestLinkerThroughJetStream(t *testing.T) {
	js := startBus(t)
	evs := workload(11, 2000)
	want := expected(t, evs)
	publishEvents(t, js, evs)

	l, reg := newLinker(t, js, &fakeClock{now: jointest.T0}, nil)
	if err := l.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitReady(t, l)
	got := readOutcomes(t, js, 30*time.Second, equalTo(want))
	if err := l.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(got.classes, want) {
		t.Fatalf("OUTCOMES differ from the join: %s", diff(got.classes, want))
	}
	if got.messages != got.distinct {
		t.Fatalf("%d outcome messages for %d distinct versions", got.messages, got.distinct)
	}
	if n := testutil.ToFloat64(l.m.events.WithLabelValues("0")) + testutil.ToFloat64(l.m.events.WithLabelValues("1")) +
		testutil.ToFloat64(l.m.events.WithLabelValues("2")) + testutil.ToFloat64(l.m.events.WithLabelValues("3")); int(n) != len(evs) {
		t.Fatalf("events_total = %v, want %d", n, len(evs))
	}
	if n := testutil.ToFloat64(l.m.outcomes.WithLabelValues("net", "orphan")); n == 0 {
		t.Fatal("outcomes_total{network=net,class=orphan} is 0")
	}
	if _, err := reg.Gather(); err != nil {
		t.Fatal(err)
	}
	// Shutdown twice, and Ready after it.
	if err := l.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if l.Ready(context.Background()) == nil {
		t.Fatal("ready after shutdown")
	}
}

// TestLinkerRestartMidRun stops a linker abruptly half-way (no flush) and
// starts another: the final outcome set is the uninterrupted one, and the
// replay stores no version twice.
func TestLinkerRestartMidRun(t *testing.T) {
	evs := workload(12, 2000)
	want := expected(t, evs)
	half := len(evs) / 2

	// Uninterrupted run.
	js1 := startBus(t)
	publishEvents(t, js1, evs)
	l1, _ := newLinker(t, js1, &fakeClock{now: jointest.T0}, nil)
	if err := l1.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	whole := readOutcomes(t, js1, 30*time.Second, equalTo(want))
	if err := l1.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}

	// Interrupted run.
	js2 := startBus(t)
	publishEvents(t, js2, evs[:half])
	l2, _ := newLinker(t, js2, &fakeClock{now: jointest.T0}, nil)
	if err := l2.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	readOutcomes(t, js2, 10*time.Second, func(m map[string]string) bool { return len(m) >= len(want)/4 })
	aborted, cancel := context.WithCancel(context.Background())
	cancel()
	if err := l2.Shutdown(aborted); err == nil {
		t.Log("linker finished before the abort; the restart still replays")
	}
	publishEvents(t, js2, evs[half:])
	l3, _ := newLinker(t, js2, &fakeClock{now: jointest.T0}, nil)
	if err := l3.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	resumed := readOutcomes(t, js2, 30*time.Second, equalTo(want))
	if err := l3.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}

	if !maps.Equal(whole.classes, want) {
		t.Fatalf("uninterrupted run differs from the join: %s", diff(whole.classes, want))
	}
	if !maps.Equal(resumed.classes, whole.classes) {
		t.Fatalf("interrupted run differs from the uninterrupted one: %s", diff(resumed.classes, whole.classes))
	}
	if resumed.messages != resumed.distinct {
		t.Fatalf("interrupted run stored %d outcome messages for %d distinct versions", resumed.messages, resumed.distinct)
	}
}

// TestLinkerIdle checks the idle rule through the bus: with no traffic, a
// request becomes unanswered once the (fake) wall clock passes its deadline.
func TestLinkerIdle(t *testing.T) {
	js := startBus(t)
	clock := &fakeClock{now: jointest.T0}
	r := jointest.Req("r1", "idle-key", 0)
	publishEvents(t, js, []placed{{partition.Of("idle-key", testPartitions), r}})
	l, _ := newLinker(t, js, clock, func(c *Config) { c.Partitions = []uint32{partition.Of("idle-key", testPartitions)} })
	if err := l.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := l.Shutdown(context.Background()); err != nil {
			t.Error(err)
		}
	}()
	waitReady(t, l)
	id := ids.Outcome("net", "idle-key").String()
	// Before the deadline nothing is decided, however long the wall waits.
	clock.Set(jointest.T0.Add(100 * time.Second))
	early := readOutcomes(t, js, 2*time.Second, func(map[string]string) bool { return false })
	if len(early.classes) != 0 {
		t.Fatalf("decided before the deadline: %v", early.classes)
	}
	// Past deadline (90s) + lateness (30s) on the wall clock.
	clock.Set(jointest.T0.Add(125 * time.Second))
	got := readOutcomes(t, js, 10*time.Second, func(m map[string]string) bool { return m[id] != "" })
	if got.classes[id] != "unanswered" {
		t.Fatalf("outcome %s = %q, want unanswered", id, got.classes[id])
	}
}

func TestLinkerLifecycle(t *testing.T) {
	js := startBus(t)
	l, _ := newLinker(t, js, &fakeClock{now: jointest.T0}, nil)
	// Shutdown before Start is a no-op, and Start after it does nothing.
	if err := l.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := l.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if l.Ready(context.Background()) == nil {
		t.Fatal("ready after shutdown")
	}
	if _, err := New(Config{}, js, zerolog.Nop(), nil, nil); err == nil {
		t.Fatal("New accepted a zero Config")
	}
	// A second linker on the same registry is refused, not a panic.
	reg := prometheus.NewRegistry()
	if _, err := New(DefaultConfig(), js, zerolog.Nop(), reg, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := New(DefaultConfig(), js, zerolog.Nop(), reg, nil); err == nil {
		t.Fatal("two linkers registered the same metrics")
	}
}

// TestUndecodableGoesToDLQ publishes bytes that are no ExchangeEvent.
func TestUndecodableGoesToDLQ(t *testing.T) {
	js := startBus(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.Publish(ctx, bus.EventSubject(0, "net"), []byte{0xff, 0xff, 0xff}); err != nil {
		t.Fatal(err)
	}
	l, _ := newLinker(t, js, &fakeClock{now: jointest.T0}, func(c *Config) { c.Partitions = []uint32{0} })
	if err := l.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Shutdown(context.Background()) }()
	for ctx.Err() == nil {
		info, err := js.Stream(ctx, bus.StreamDLQ)
		if err != nil {
			t.Fatal(err)
		}
		if info.CachedInfo().State.Msgs > 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	msg, err := js.Stream(ctx, bus.StreamDLQ)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := msg.GetLastMsgForSubject(ctx, bus.DLQSubject(Stage))
	if err != nil {
		t.Fatalf("no dead letter: %v", err)
	}
	if raw.Header.Get(bus.HeaderStage) != Stage || raw.Header.Get(bus.HeaderNetwork) != "net" {
		t.Fatalf("dead letter headers %v", raw.Header)
	}
}

// TestMetricsThroughJetStream checks the linker's Prometheus figures against
// a hand-made run over two networks whose every count is known: outcomes by
// network and class, late answers, orphans, ignored events, pending chains,
// watermark lag and checkpoint age.
func TestMetricsThroughJetStream(t *testing.T) {
	_, js := startBusWith(t, crashTestStreams()) // a 100 ms duplicate window
	evs := publishMetricsWorkload(t, js)

	clock := &fakeClock{now: jointest.T0}
	l, reg := newLinker(t, js, clock, nil)
	if err := l.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitReady(t, l)
	waitFor(t, waitLimit, "five outcome versions", func() bool {
		return metricValue(t, reg, "hinscore_linker_outcomes_total", "") == 5
	})
	// The gauges are refreshed once per poll interval of the (fake) wall
	// clock; 2 s later no idle move is due (netB's watermark, 4 s - 30 s,
	// is ahead of the idle rule's 2 s - 30 s).
	clock.Set(jointest.T0.Add(2 * time.Second))
	lagOf := func(key string) float64 {
		return testutil.ToFloat64(l.m.lag.WithLabelValues(fmt.Sprint(partition.Of(key, testPartitions))))
	}
	// Every event counted, too: the ignored ones (duplicates,
	// notifications, stragglers) of other partitions may come after the
	// last outcome, and the counts move with the gauges.
	waitFor(t, waitLimit, "the gauges and every event", func() bool {
		return metricValue(t, reg, "hinscore_linker_pending_chains", "") == 1 && lagOf("B2") == 28 &&
			metricValue(t, reg, "hinscore_linker_events_total", "") == float64(len(evs))
	})

	checkMetricCounts(t, l, reg, len(evs))
	// Wall clock (t0 + 2 s) minus netB's watermark (4 s - 30 s) where rB2
	// waits; where only netA is, its watermark is ahead of the clock.
	if lag := lagOf("B2"); lag != 28 {
		t.Errorf("watermark_lag_seconds of rB2's partition = %v, want 28", lag)
	}
	if lag := lagOf("A2"); partition.Of("A2", testPartitions) != partition.Of("B2", testPartitions) &&
		partition.Of("A2", testPartitions) != partition.Of("B1", testPartitions) && lag != 2-180 {
		t.Errorf("watermark_lag_seconds of aA2's partition = %v, want %v", lag, 2-180)
	}
	for p := range uint32(testPartitions) {
		age := testutil.ToFloat64(l.m.checkpointAge.WithLabelValues(fmt.Sprint(p)))
		if age < 0 || age > 60 {
			t.Errorf("checkpoint_age_seconds{partition=%d} = %v, want between 0 and 60", p, age)
		}
	}
	if err := l.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := metricValue(t, reg, "hinscore_linker_checkpoints_total", "ok"); n < testPartitions {
		t.Errorf("checkpoints_total{result=ok} = %v after shutdown, want at least one per partition", n)
	}
}

// publishMetricsWorkload stores the events of TestMetricsThroughJetStream,
// whose every count is known, and returns them.
func publishMetricsWorkload(t *testing.T, js jetstream.JetStream) []placed {
	t.Helper()
	OK, REFUSED := hinscorev1.Status_STATUS_OK, hinscorev1.Status_STATUS_REFUSED
	place := func(e *hinscorev1.ExchangeEvent) placed {
		return placed{partition.Of(e.GetCorrelationKey(), testPartitions), e}
	}
	aA1 := jointest.Ev("netA", hinscorev1.Role_ROLE_RESPONSE, "aA1", "A1", 5*s, OK)
	aB1 := jointest.Ev("netB", hinscorev1.Role_ROLE_RESPONSE, "aB1", "B1", 3*s, REFUSED)
	evs := []placed{
		place(jointest.Ev("netA", hinscorev1.Role_ROLE_REQUEST, "rA1", "A1", 0, 0)),
		place(aA1),
		place(jointest.Ev("netA", hinscorev1.Role_ROLE_REQUEST, "rA2", "A2", 1*s, 0)),   // unanswered by 91 s ...
		place(jointest.Ev("netA", hinscorev1.Role_ROLE_RESPONSE, "oA3", "A3", 2*s, OK)), // never its request: orphan
		place(jointest.Ev("netB", hinscorev1.Role_ROLE_REQUEST, "rB1", "B1", 0, 0)),
		place(aB1),
		place(jointest.Ev("netB", hinscorev1.Role_ROLE_REQUEST, "rB2", "B2", 4*s, 0)), // still open at the end
	}
	// netA's clock moves to 200 s on every partition: its watermark (170 s)
	// passes rA2's deadline and oA3's wait.
	for p := range uint32(testPartitions) {
		evs = append(evs, placed{p, jointest.Ev("netA", hinscorev1.Role_ROLE_NOTIFICATION, fmt.Sprintf("tick-p%d", p), "", 200*s, 0)})
	}
	evs = append(evs, place(jointest.Ev("netA", hinscorev1.Role_ROLE_RESPONSE, "aA2", "A2", 210*s, OK))) // ... then answered late
	publishEvents(t, js, evs)
	// Two answers sent again after the stream's duplicate window, which
	// JetStream stores twice: aB1's chain is still in memory (netB's clock
	// stands still), a duplicate; aA1's was compacted once netA's watermark
	// passed it by the lateness, a straggler after its close.
	time.Sleep(150 * time.Millisecond)
	evs = append(evs, place(aB1), place(aA1))
	publishEvents(t, js, evs[len(evs)-2:])
	return evs
}

// checkMetricCounts checks the counters after TestMetricsThroughJetStream's
// events were all processed.
func checkMetricCounts(t *testing.T, l *Linker, reg *prometheus.Registry, events int) {
	t.Helper()
	for _, c := range []struct {
		network, class string
		want           float64
	}{
		{"netA", "fulfilled", 1}, {"netA", "unanswered", 1}, {"netA", "fulfilled_late", 1}, {"netA", "orphan", 1},
		{"netB", "refused_unjustified", 1}, {"netB", "unanswered", 0},
	} {
		if n := testutil.ToFloat64(l.m.outcomes.WithLabelValues(c.network, c.class)); n != c.want {
			t.Errorf("outcomes_total{network=%q,class=%q} = %v, want %v", c.network, c.class, n, c.want)
		}
	}
	// rA2's v1 (unanswered) and v2 (fulfilled_late) are both counted:
	// outcomes_total counts versions published.
	for _, c := range []struct {
		name, label string
		want        float64
	}{
		{"hinscore_linker_late_answers_total", "", 1},
		{"hinscore_linker_orphans_total", "", 1},
		{"hinscore_linker_ignored_events_total", "duplicate", 1},
		{"hinscore_linker_ignored_events_total", "after_close", 1},
		{"hinscore_linker_ignored_events_total", "notification", testPartitions},
		{"hinscore_linker_overflow_closures_total", "", 0},
		{"hinscore_linker_events_total", "", float64(events)},
		{"hinscore_linker_owned_partitions", "", testPartitions},
	} {
		if n := metricValue(t, reg, c.name, c.label); n != c.want {
			t.Errorf("%s{%s} = %v, want %v", c.name, c.label, n, c.want)
		}
	}
}
