package linker

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/hinscore/hinscore/services/lib/domain/partition"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
	"github.com/hinscore/hinscore/services/lib/bus"
	"github.com/hinscore/hinscore/services/linker/join"
	"github.com/hinscore/hinscore/services/linker/join/jointest"
)

// rows is an outcome set as ClickHouse's ReplacingMergeTree sees it: every
// (outcome_id, version) with a digest of its full content, and the latest
// version of each outcome id.
type rows struct {
	content map[string][32]byte // "<outcome_id>:<version>" → digest
	final   map[string]uint64   // outcome_id → latest version
}

func newRows() rows { return rows{content: map[string][32]byte{}, final: map[string]uint64{}} }

func digest(t testing.TB, o *hinscorev1.Outcome) [32]byte {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// add records an outcome; it returns false when the same id and version
// was already recorded with other content.
func (r rows) add(t testing.TB, o *hinscorev1.Outcome) bool {
	k := fmt.Sprintf("%s:%d", o.GetOutcomeId(), o.GetVersion())
	d := digest(t, o)
	if old, ok := r.content[k]; ok && old != d {
		return false
	}
	r.content[k] = d
	r.final[o.GetOutcomeId()] = max(r.final[o.GetOutcomeId()], o.GetVersion())
	return true
}

// equal compares two outcome sets row for row.
func (r rows) equal(o rows) string {
	var d []string
	for k, v := range r.content {
		if w, ok := o.content[k]; !ok {
			d = append(d, k+" missing")
		} else if w != v {
			d = append(d, k+" differs")
		}
	}
	for k := range o.content {
		if _, ok := r.content[k]; !ok {
			d = append(d, k+" unexpected")
		}
	}
	slices.Sort(d)
	if len(d) > 5 {
		d = append(d[:5], fmt.Sprintf("... %d more", len(d)-5))
	}
	if len(d) == 0 {
		return ""
	}
	return fmt.Sprint(d)
}

// workloadN spreads a generated event set over parts partitions, ending
// with a tick per partition far in the future so that everything decides.
func workloadN(seed uint64, chains, parts int) []placed {
	var out []placed
	for _, e := range jointest.GenEvents(seed, chains) {
		if e.GetRole() != hinscorev1.Role_ROLE_NOTIFICATION {
			out = append(out, placed{partition.Of(e.GetCorrelationKey(), parts), e})
		}
	}
	return append(out, finalTicks(parts)...)
}

// finalTicks are a tick per partition far in the future, so that
// everything decides.
func finalTicks(parts int) []placed {
	var out []placed
	for p := range uint32(parts) {
		tk := jointest.Tick(25 * 3600 * s)
		tk.EventId = fmt.Sprintf("net/tick-p%d", p)
		out = append(out, placed{p, tk})
	}
	return out
}

// joinRows is what an uninterrupted linker publishes: the pure join of each
// partition over its events in stream order.
func joinRows(t testing.TB, evs []placed, r join.Rules) rows {
	t.Helper()
	joins := map[uint32]*join.Join{}
	want := newRows()
	var outs []*hinscorev1.Outcome
	for _, pe := range evs {
		if joins[pe.p] == nil {
			joins[pe.p] = join.New(r)
		}
		outs = jointest.Observe(joins[pe.p], pe.e, jointest.T0, outs[:0])
		for _, o := range outs {
			if !want.add(t, o) {
				t.Fatalf("the pure join issued %s v%d twice", o.GetOutcomeId(), o.GetVersion())
			}
		}
	}
	return want
}

// storedRows reads all of OUTCOMES. Every copy of an (outcome_id, version)
// must have the same content: a republish after a crash is a duplicate,
// never a different row under the same version.
func storedRows(t *testing.T, js jetstream.JetStream) (rows, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := js.Stream(ctx, bus.StreamOutcomes)
	if err != nil {
		t.Fatal(err)
	}
	total := st.CachedInfo().State.Msgs
	got := newRows()
	if total == 0 {
		return got, 0
	}
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(2000))
	if err != nil {
		t.Fatal(err)
	}
	defer it.Stop()
	for n := uint64(0); n < total; n++ {
		msg, err := it.Next()
		if err != nil {
			t.Fatalf("after %d of %d outcomes: %v", n, total, err)
		}
		o := &hinscorev1.Outcome{}
		if err := proto.Unmarshal(msg.Data(), o); err != nil {
			t.Fatal(err)
		}
		if !got.add(t, o) {
			t.Fatalf("%s version %d published twice with different content", o.GetOutcomeId(), o.GetVersion())
		}
	}
	return got, int(total)
}

func outcomeCount(t *testing.T, js jetstream.JetStream) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, bus.StreamOutcomes)
	if err != nil {
		t.Fatal(err)
	}
	return st.CachedInfo().State.Msgs
}

// waitLimit bounds every wait of these tests for the linker's progress: a
// condition, not a sleep, so a generous bound costs nothing when the
// machine is idle and keeps a loaded CI run (other packages' tests on the
// same two cores) from failing a test that would pass given time.
const waitLimit = time.Minute

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (l *Linker) ownedCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.owned)
}

// crashTestStreams keep a republished duplicate only 100ms, so that a
// republish after a crash is stored again and its content compared.
func crashTestStreams() bus.StreamOptions {
	o := bus.DefaultStreamOptions()
	o.DuplicateWindow = 100 * time.Millisecond
	return o
}

// TestCrashRestartFromCheckpoint kills the linker abruptly (its NATS
// connection closed, then its goroutines cancelled: no flush, no last
// checkpoint, no lease released) at five random points of a run of more
// than 200,000 events, restarting it each time from its checkpoint. The
// outcome set must equal the uninterrupted one row for row: nothing
// missing, and no (outcome_id, version) stored with other content.
func TestCrashRestartFromCheckpoint(t *testing.T) {
	url, js := startBusWith(t, crashTestStreams())
	evs := workloadN(21, 100_000, testPartitions)
	if len(evs) < 200_000 {
		t.Fatalf("workload has %d events, want at least 200000", len(evs))
	}
	mutate := func(c *Config) {
		c.ReplicaID = "crash-test"
		c.CheckpointInterval = 200 * time.Millisecond
		c.CheckpointEvents = 10_000
	}
	cfg := DefaultConfig()
	mutate(&cfg)
	want := joinRows(t, evs, joinRules(newRules(cfg)))
	publishEvents(t, js, evs)

	crashes(t, url, js, 21, 5, len(want.content), mutate)
	reg := runToTheEnd(t, url, mutate)
	got, messages := storedRows(t, js)
	if d := got.equal(want); d != "" {
		t.Fatalf("outcome set after five crashes differs from the pure join: %s", d)
	}
	if d := got.equal(singleReplicaRows(t, evs, mutate)); d != "" {
		t.Fatalf("outcome set after five crashes differs from an uninterrupted linker's: %s", d)
	}
	loaded := metricValue(t, reg, "hinscore_linker_checkpoints_total", "loaded")
	if loaded == 0 {
		t.Fatal("the last restart loaded no checkpoint")
	}
	t.Logf("%d events, %d outcome versions, %d messages stored (%d republished after the crashes)",
		len(evs), len(want.content), messages, messages-len(want.content))
}

// crashes runs a linker on the bus at url and kills it abruptly (its
// connection closed, then its goroutines cancelled) n times, each at a
// random point of the run (seeded), restarting it from its checkpoint each
// time; versions is how many outcome versions the whole run stores.
func crashes(t *testing.T, url string, js jetstream.JetStream, seed uint64, n, versions int, mutate func(*Config)) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 4))
	var points []float64
	for range n {
		points = append(points, 0.05+0.85*rng.Float64())
	}
	slices.Sort(points)
	for i, f := range points {
		nc, ljs := connect(t, url)
		l, _ := newLinker(t, ljs, &fakeClock{now: jointest.T0}, mutate)
		if err := l.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		target := uint64(f * float64(versions))
		waitFor(t, waitLimit, fmt.Sprintf("kill point %d (%d outcomes)", i, target), func() bool {
			return outcomeCount(t, js) >= target
		})
		nc.Close()
		l.kill()
		t.Logf("killed at %d stored outcome messages (%.0f%% of the versions)", outcomeCount(t, js), 100*f)
	}
}

// TestCrossCommunityCrashReplay runs generated cross-community traffic
// (both gateways' audits, records in neighbouring windows, late and
// duplicated records) through the linker, killed abruptly three times and
// restarted from its checkpoints, then replayed from the start without
// one: the window lookup finds the same chains every time, so the stored
// outcomes equal the pure join's row for row and each transaction is one
// outcome.
func TestCrossCommunityCrashReplay(t *testing.T) {
	const transactions = 10_000
	url, js := startBusWith(t, crashTestStreams())
	var evs []placed
	for _, e := range jointest.GenCrossEvents(23, transactions) {
		p := partition.Of(partition.Key(e.GetCorrelationKey(), e.GetEventId()), testPartitions)
		if e.GetRole() == hinscorev1.Role_ROLE_NOTIFICATION {
			continue
		}
		evs = append(evs, placed{p, e})
	}
	evs = append(evs, finalTicks(testPartitions)...)
	mutate := func(c *Config) {
		c.ReplicaID = "xc-crash-test"
		c.CheckpointInterval = 100 * time.Millisecond
		c.CheckpointEvents = 2000
		c.Window = time.Duration(jointest.Window) * time.Millisecond
	}
	cfg := DefaultConfig()
	mutate(&cfg)
	want := joinRows(t, evs, joinRules(newRules(cfg)))
	if len(want.final) != transactions {
		t.Fatalf("the pure join made %d outcomes of %d transactions", len(want.final), transactions)
	}
	publishEvents(t, js, evs)
	crashes(t, url, js, 23, 3, len(want.content), mutate)
	runToTheEnd(t, url, mutate)
	got, messages := storedRows(t, js)
	if d := got.equal(want); d != "" {
		t.Fatalf("outcome set after three crashes differs from the pure join: %s", d)
	}
	replayFromStart(t, js, mutate)
	replayed, _ := storedRows(t, js)
	if d := replayed.equal(want); d != "" {
		t.Fatalf("a replay from the start differs from the pure join: %s", d)
	}
	t.Logf("%d events, %d transactions, %d outcome versions, %d messages stored before the replay",
		len(evs), transactions, len(want.content), messages)
}

// TestScaleOutTwoReplicas runs two replicas over 8 partitions; they split
// them 4 and 4; one is killed mid-run and the other takes its partitions
// over from their checkpoints: the outcome set is a single replica's.
func TestScaleOutTwoReplicas(t *testing.T) {
	const parts = 8
	url, js := startBusWith(t, crashTestStreams())
	evs := workloadN(31, 8000, parts)
	replica := func(id string) func(*Config) {
		return func(c *Config) {
			c.PartitionCount = parts
			c.ReplicaID = id
			c.LeaseTTL = time.Second
			c.CheckpointInterval = 100 * time.Millisecond
		}
	}
	cfg := DefaultConfig()
	replica("x")(&cfg)
	want := joinRows(t, evs, joinRules(newRules(cfg)))
	half := len(evs) / 2
	publishEvents(t, js, evs[:half])

	ncA, jsA := connect(t, url)
	defer ncA.Close()
	a, _ := newLinker(t, jsA, &fakeClock{now: jointest.T0}, replica("a"))
	ncB, jsB := connect(t, url)
	b, _ := newLinker(t, jsB, &fakeClock{now: jointest.T0}, replica("b"))
	for _, l := range []*Linker{a, b} {
		if err := l.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, waitLimit, "a 4/4 split", func() bool {
		return a.ownedCount() == parts/2 && b.ownedCount() == parts/2 && a.Ready(context.Background()) == nil && b.Ready(context.Background()) == nil
	})
	ncB.Close()
	b.kill()
	publishEvents(t, js, evs[half:])
	waitFor(t, waitLimit, "the survivor to own all partitions", func() bool {
		return a.ownedCount() == parts && a.Ready(context.Background()) == nil
	})
	// A graceful shutdown ends a caught-up partition at once: the survivor
	// may not have read the second half yet (on a loaded machine it was
	// seen not to). Shut it down only once it published every outcome.
	waitFor(t, waitLimit, "the survivor's outcomes of every event", func() bool {
		if outcomeCount(t, js) < uint64(len(want.content)) {
			return false
		}
		got, _ := storedRows(t, js)
		for k := range want.content {
			if _, ok := got.content[k]; !ok {
				return false
			}
		}
		return true
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := a.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	got, _ := storedRows(t, js)
	if d := got.equal(want); d != "" {
		t.Fatalf("two replicas, one killed, differ from the pure join: %s", d)
	}
	// And from a real single replica: the whole service over the same
	// events on a bus of its own, uninterrupted.
	// Alone, it keeps its leases longer than a loaded machine can stall:
	// a lease lost during its graceful shutdown would end a partition
	// before the end of EVENTS.
	single := singleReplicaRows(t, evs, func(c *Config) { replica("single")(c); c.LeaseTTL = 30 * time.Second })
	if d := got.equal(single); d != "" {
		t.Fatalf("two replicas, one killed, differ from a single replica: %s", d)
	}
	if len(single.final) == 0 {
		t.Fatal("the single replica stored no outcome")
	}
}

// singleReplicaRows runs one linker, uninterrupted, over evs on a bus of
// its own and returns what it stored in OUTCOMES.
func singleReplicaRows(t *testing.T, evs []placed, mutate func(*Config)) rows {
	t.Helper()
	url, js := startBusWith(t, crashTestStreams())
	publishEvents(t, js, evs)
	runToTheEnd(t, url, mutate)
	got, _ := storedRows(t, js)
	return got
}

// runToTheEnd starts a linker on the bus at url, lets it catch up with
// EVENTS and shuts it down gracefully.
func runToTheEnd(t *testing.T, url string, mutate func(*Config)) *prometheus.Registry {
	t.Helper()
	nc, ljs := connect(t, url)
	defer nc.Close()
	l, reg := newLinker(t, ljs, &fakeClock{now: jointest.T0}, mutate)
	if err := l.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitReady(t, l)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := l.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	return reg
}

// TestIdleDecisionsReplayIdentically runs the linker live with the idle
// rule deciding (a fake wall clock moved past the deadlines), with an
// abrupt crash in the middle, then replays the whole stream from the start
// with no checkpoint and a wall clock that never moves: the replay makes
// the same idle decisions from their records and publishes exactly the
// same rows. Without the records the pure join decides differently, which
// shows the idle rule did decide.
func TestIdleDecisionsReplayIdentically(t *testing.T) {
	url, js := startBusWith(t, crashTestStreams())
	phase1, phase2 := idlePhases()
	clock := &fakeClock{now: jointest.T0}
	mutate := func(c *Config) {
		c.ReplicaID = "idle-test"
		c.CheckpointInterval = 50 * time.Millisecond
		c.CheckpointEvents = 10
	}
	publishEvents(t, js, phase1)
	nc1, js1 := connect(t, url)
	l1, _ := newLinker(t, js1, clock, mutate)
	if err := l1.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitReady(t, l1)
	waitFor(t, waitLimit, "the answered requests", func() bool { return outcomeCount(t, js) >= 20 })
	clock.Set(jointest.T0.Add(200 * time.Second)) // deadlines (90s + the request time) pass on the wall clock
	waitFor(t, waitLimit, "the idle rule's unanswered", func() bool { return outcomeCount(t, js) >= 40 })
	nc1.Close()
	l1.kill()

	publishEvents(t, js, phase2)
	nc2, js2 := connect(t, url)
	defer nc2.Close()
	l2, _ := newLinker(t, js2, clock, mutate)
	if err := l2.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitReady(t, l2)
	waitFor(t, waitLimit, "the late answers", func() bool { return outcomeCount(t, js) >= 50 })
	clock.Set(jointest.T0.Add(400 * time.Second))
	waitFor(t, waitLimit, "the second idle decisions", func() bool { return outcomeCount(t, js) >= 91 })
	if err := l2.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	live, _ := storedRows(t, js)
	if len(live.final) != 81 {
		t.Fatalf("live run decided %d outcomes, want 81", len(live.final))
	}

	// Replay from the start: no checkpoint, a fresh OUTCOMES (so that no
	// deduplication hides a difference), a wall clock that never moves.
	replayFromStart(t, js, mutate)
	replayed, _ := storedRows(t, js)
	if d := replayed.equal(live); d != "" {
		t.Fatalf("replay from the start differs from the live run: %s", d)
	}
	cfg := DefaultConfig()
	withoutRecords := joinRows(t, append(phase1, phase2...), joinRules(newRules(cfg)))
	if withoutRecords.equal(live) == "" {
		t.Fatal("the idle rule decided nothing the events alone would not have")
	}
}

// idlePhases are the events of TestIdleDecisionsReplayIdentically: requests,
// half of them answered; then late answers to some, new requests and a
// stray answer.
func idlePhases() (phase1, phase2 []placed) {
	OK := hinscorev1.Status_STATUS_OK
	place := func(es ...*hinscorev1.ExchangeEvent) []placed {
		var out []placed
		for _, e := range es {
			out = append(out, placed{partition.Of(e.GetCorrelationKey(), testPartitions), e})
		}
		return out
	}
	for i := range 40 {
		k := fmt.Sprintf("idle-%d", i)
		phase1 = append(phase1, place(jointest.Req("r"+k, k, int64(i)*s))...)
		if i%2 == 1 {
			phase1 = append(phase1, place(jointest.Resp("a"+k, k, int64(i)*s+5*s, OK))...)
		}
	}
	for i := range 40 {
		k := fmt.Sprintf("idle-%d", i)
		if i%4 == 0 { // late answers to requests the idle rule declared unanswered
			phase2 = append(phase2, place(jointest.Resp("late"+k, k, 180*s, OK))...)
		}
		k2 := fmt.Sprintf("idle2-%d", i)
		phase2 = append(phase2, place(jointest.Req("r"+k2, k2, 190*s+int64(i)*s))...)
	}
	// An answer older than the idle watermark, whose request never comes.
	phase2 = append(phase2, place(jointest.Resp("stray", "idle-stray", 100*s, OK))...)
	return phase1, phase2
}

// replayFromStart replays every partition from the start: its checkpoints
// deleted, OUTCOMES made anew, a wall clock that never moves.
func replayFromStart(t *testing.T, js jetstream.JetStream, mutate func(*Config)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	obs, err := js.ObjectStore(ctx, checkpointBucket("linker"))
	if err != nil {
		t.Fatal(err)
	}
	for p := range uint32(testPartitions) {
		if err := obs.Delete(ctx, checkpointName(p)); err != nil && !errorsIsNotFound(err) {
			t.Fatal(err)
		}
	}
	if err := js.DeleteStream(ctx, bus.StreamOutcomes); err != nil {
		t.Fatal(err)
	}
	if err := bus.EnsureStreams(ctx, js, crashTestStreams()); err != nil {
		t.Fatal(err)
	}
	l3, _ := newLinker(t, js, &fakeClock{now: jointest.T0}, mutate)
	if err := l3.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitReady(t, l3)
	if err := l3.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
}

func errorsIsNotFound(err error) bool { return errors.Is(err, jetstream.ErrObjectNotFound) }

// metricValue reads one series of a registry: the sample of name whose
// labels include value (any label), summed.
func metricValue(t *testing.T, reg *prometheus.Registry, name, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			match := value == ""
			for _, lp := range m.GetLabel() {
				if lp.GetValue() == value {
					match = true
				}
			}
			if !match {
				continue
			}
			switch {
			case m.GetCounter() != nil:
				sum += m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				sum += m.GetGauge().GetValue()
			}
		}
	}
	return sum
}

// TestDrainWithEmptyPartitions shuts down a linker whose partitions are
// mostly empty: the draining shutdown ends (an empty partition is caught up
// from its first wait), and only after the busy partition's last event.
func TestDrainWithEmptyPartitions(t *testing.T) {
	url, js := startBusWith(t, crashTestStreams())
	var evs []placed
	for _, pe := range workloadN(5, 2_000, testPartitions) {
		if pe.p == 1 {
			evs = append(evs, pe)
		}
	}
	publishEvents(t, js, evs)
	nc, ljs := connect(t, url)
	defer nc.Close()
	l, _ := newLinker(t, ljs, &fakeClock{now: jointest.T0}, nil)
	if err := l.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitReady(t, l)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := l.Shutdown(ctx); err != nil {
		t.Fatalf("draining shutdown with %d empty partitions of %d: %v", testPartitions-1, testPartitions, err)
	}
	got, _ := storedRows(t, js)
	if d := got.equal(joinRows(t, evs, testRules(t, nil))); d != "" {
		t.Fatalf("outcomes after the drain differ from the pure join: %s", d)
	}
}
