// Package linker joins every request observed on EVENTS to what answered it
// and publishes one Outcome per request chain to OUTCOMES.
//
// The join itself (package join) is pure and deterministic: event time
// decides, versions count re-decisions, so replaying a partition gives the
// same outcomes, which JetStream (Nats-Msg-Id) and the ReplacingMergeTree
// downstream deduplicate. The Linker around it owns the bus: replicas share
// the partitions through leases (lease.go); the owner of a partition
// restores its last checkpoint, replays EVENTS from the sequence after it,
// checkpoints periodically, and records every idle-rule decision (the one
// input that is not in EVENTS) so that any replay makes it again.
package linker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hinscore/hinscore/services/lib/bus/dlq"

	"github.com/cenkalti/backoff/v4"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"google.golang.org/protobuf/proto"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
	"github.com/hinscore/hinscore/services/lib/bus"
	"github.com/hinscore/hinscore/services/lib/service"
	"github.com/hinscore/hinscore/services/linker/join"
)

// Stage names the linker in DLQ messages.
const Stage = "linker"

// OverflowReason is the reason code of a chain closed because its partition
// reached its cap of pending chains (Config.MaxPending).
const OverflowReason = join.OverflowReason

// CheckpointVersion is the schema version written in every checkpoint.
const CheckpointVersion = join.CheckpointVersion

// ErrBadCheckpoint reports a checkpoint that cannot be restored;
// ErrBadMark an idle-rule record that cannot be decoded.
var (
	ErrBadCheckpoint = join.ErrBadCheckpoint
	ErrBadMark       = join.ErrBadMark
)

// flushAt bounds the outcome publishes in flight before the linker waits for
// their acknowledgements (well under nats.go's async limit of 4000).
const flushAt = 512

// Linker is the service component: it consumes the partitions of EVENTS it
// holds the lease of and publishes Outcomes.
type Linker struct {
	cfg   Config
	rules join.Rules
	js    jetstream.JetStream
	log   zerolog.Logger
	clock service.Clock
	m     *metrics

	mu       sync.Mutex
	started  bool
	stopped  bool
	drain    chan struct{} // closed by Shutdown: finish what the streams hold, checkpoint, release
	cancel   context.CancelFunc
	done     chan struct{} // closed when the balancer and every partition have stopped
	owned    map[uint32]*runner
	balanced bool // a first lease round has run
}

// New validates the configuration and registers the metrics; nothing runs
// before Start. A nil registerer or clock gets a private registry and the
// wall clock.
func New(cfg Config, js jetstream.JetStream, log zerolog.Logger, reg prometheus.Registerer, clock service.Clock) (*Linker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("linker.New: %w", err)
	}
	if js == nil {
		return nil, errors.New("linker.New: nil JetStream")
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	if clock == nil {
		clock = service.SystemClock{}
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("linker.New: %w", err)
	}
	return &Linker{cfg: cfg, rules: joinRules(newRules(cfg)), js: js, log: log, clock: clock, m: m,
		drain: make(chan struct{}), owned: map[uint32]*runner{}}, nil
}

// joinRules are the rules of the configuration as the join takes them.
func joinRules(r rules) join.Rules {
	return join.Rules{Limits: r.limits, Lateness: r.lateness, Idle: r.idle, Retention: r.retention, MaxPending: r.maxPending}
}

// Start launches the lease balancer, which claims partitions and starts
// their consumers; it returns at once.
func (l *Linker) Start(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.started || l.stopped {
		return nil
	}
	l.started = true
	// The run outlives Start's ctx (SIGTERM cancels it before Shutdown):
	// Shutdown decides when consuming and publishing stop.
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	l.cancel = cancel
	l.done = make(chan struct{})
	go l.balance(runCtx)
	mode := "shared"
	if !l.cfg.dynamic() {
		mode = "static"
	}
	l.log.Info().Str("replica", l.cfg.ReplicaID).Str("assignment", mode).Uints32("partitions", l.cfg.partitions()).
		Int("partition_count", l.cfg.PartitionCount).Dur("lateness", l.cfg.Lateness).Dur("idle", l.cfg.Idle).
		Dur("lease_ttl", l.cfg.LeaseTTL).Msg("linker started")
	return nil
}

// Shutdown lets every partition finish the events its stream already holds,
// waits for the acknowledgement of every outcome they produced, writes a
// last checkpoint per partition and releases the leases, so that another
// replica takes over at once. When ctx ends first it abandons them (the next
// owner resumes from the previous checkpoint and republishes).
func (l *Linker) Shutdown(ctx context.Context) error {
	l.mu.Lock()
	if l.stopped {
		l.mu.Unlock()
		return nil
	}
	l.stopped = true
	started := l.started
	l.mu.Unlock()
	close(l.drain)
	if !started {
		return nil
	}
	defer l.cancel()
	select {
	case <-l.done:
		return nil
	case <-ctx.Done():
		l.cancel()
		<-l.done
		return fmt.Errorf("linker.Shutdown: %w", ctx.Err())
	}
}

// kill stops everything at once, as a crash would: no flush, no checkpoint,
// no lease released. Tests close the NATS connection first, so that nothing
// in flight completes either.
func (l *Linker) kill() {
	l.mu.Lock()
	l.stopped = true
	started := l.started
	l.mu.Unlock()
	if started {
		l.cancel()
		<-l.done
	}
}

// Ready reports whether the replica has taken its partitions and every one
// of them is consuming.
func (l *Linker) Ready(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.stopped:
		return errors.New("linker: shutting down")
	case !l.started:
		return errors.New("linker: not started")
	case !l.balanced:
		return errors.New("linker: partition leases not taken yet")
	}
	consuming := 0
	for _, r := range l.owned {
		if r.consuming.Load() {
			consuming++
		}
	}
	if consuming < len(l.owned) {
		return fmt.Errorf("linker: %d of %d partitions consuming", consuming, len(l.owned))
	}
	if !l.cfg.dynamic() && len(l.owned) < len(l.cfg.Partitions) {
		return fmt.Errorf("linker: %d of %d partitions leased", len(l.owned), len(l.cfg.Partitions))
	}
	return nil
}

// runPartition consumes one partition until its run ends, resuming from the
// checkpoint after an error.
func (l *Linker) runPartition(ctx context.Context, st *stores, r *runner) {
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval = 100 * time.Millisecond
	bo.MaxInterval = 5 * time.Second
	bo.MaxElapsedTime = 0
	log := l.log.With().Uint32("partition", r.p).Logger()
	for {
		err := l.consume(ctx, st, r, log)
		if err == nil || ctx.Err() != nil {
			return
		}
		l.m.restarts.Inc()
		wait := bo.NextBackOff()
		log.Error().Err(err).Dur("retry_in", wait).Msg("partition consumer stopped; resuming from the checkpoint")
		select {
		case <-ctx.Done():
			return
		case <-r.release:
			return
		case <-l.drain:
			return
		case <-time.After(wait):
		}
	}
}

// stallLimit is how long a partition's consumer may deliver nothing while
// EVENTS holds more of the partition before the partition restarts it.
const stallLimit = 5 * time.Second

// behind reports whether EVENTS holds a message of partition p after
// sequence seq, the last one applied. An error other than "no message"
// counts as not behind, as before the stream could be asked.
func (l *Linker) behind(ctx context.Context, stream jetstream.Stream, p uint32, seq uint64) bool {
	msg, err := stream.GetLastMsgForSubject(ctx, bus.EventPartitionFilter(p))
	return err == nil && msg.Sequence > seq
}

// pollWait is how long the consumer waits for a message before it looks at
// the idle rule: a fraction of the idle duration, so idleness is noticed on
// time, within [10ms, 1s].
func (l *Linker) pollWait() time.Duration {
	return min(max(l.cfg.Idle/4, 10*time.Millisecond), time.Second)
}

// restoreJoin loads the partition's checkpoint; without one (or with one it
// cannot read) the join starts empty and the whole stream is replayed.
func (l *Linker) restoreJoin(ctx context.Context, st *stores, p uint32, log zerolog.Logger) (*join.Join, join.Position, error) {
	data, err := st.loadCheckpoint(ctx, p)
	if err != nil {
		return nil, join.Position{}, err
	}
	if data == nil {
		return join.New(l.rules), join.Position{Partition: p}, nil
	}
	j, pos, err := join.Restore(l.rules, data)
	if err == nil && pos.Partition != p {
		err = fmt.Errorf("%w: it is partition %d's", ErrBadCheckpoint, pos.Partition)
	}
	if err != nil {
		l.m.checkpoints.WithLabelValues("unreadable").Inc()
		log.Error().Err(err).Msg("checkpoint unreadable; replaying the partition from the start")
		return join.New(l.rules), join.Position{Partition: p}, nil
	}
	l.m.checkpoints.WithLabelValues("loaded").Inc()
	log.Info().Uint64("events_seq", pos.EventsSeq).Uint64("marks_seq", pos.MarksSeq).Int("pending_chains", j.Pending()).
		Int("bytes", len(data)).Msg("checkpoint loaded")
	return j, pos, nil
}

// consume restores one partition and follows EVENTS from the sequence after
// its checkpoint. It returns nil when its run ends: released, drained, or
// its context cancelled.
func (l *Linker) consume(ctx context.Context, st *stores, r *runner, log zerolog.Logger) error {
	p := r.p
	j, pos, err := l.restoreJoin(ctx, st, p, log)
	if err != nil {
		return fmt.Errorf("linker.consume %d: %w", p, err)
	}
	marks, lastMark, err := st.loadMarks(ctx, p, pos.MarksSeq)
	if err != nil {
		return fmt.Errorf("linker.consume %d: %w", p, err)
	}
	stream, err := l.js.Stream(ctx, bus.StreamEvents)
	if err != nil {
		return fmt.Errorf("linker.consume %d: %w", p, err)
	}
	// An ordered consumer is ephemeral and needs no acks: what is done is
	// what the checkpoint covers.
	cc := jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{bus.EventPartitionFilter(p)},
		DeliverPolicy:  jetstream.DeliverAllPolicy,
		// Unique per run: an ephemeral left by a crashed process must never
		// be picked up again with its delivery position.
		NamePrefix: fmt.Sprintf("%s-p%d-%s", l.cfg.Consumer, p, uuid.NewString()[:8]),
	}
	if pos.EventsSeq > 0 {
		cc.DeliverPolicy, cc.OptStartSeq = jetstream.DeliverByStartSequencePolicy, pos.EventsSeq+1
	}
	cons, err := stream.OrderedConsumer(ctx, cc)
	if err != nil {
		return fmt.Errorf("linker.consume %d: consumer: %w", p, err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(2 * flushAt))
	if err != nil {
		return fmt.Errorf("linker.consume %d: messages: %w", p, err)
	}
	stopIt := context.AfterFunc(ctx, it.Stop)
	defer stopIt()
	defer it.Stop()
	r.consuming.Store(true)
	defer r.consuming.Store(false)

	pm := l.m.partition(p)
	defer pm.drop()
	pub := &publisher{js: l.js, log: log, m: l.m}
	cp := &checkpointer{l: l, st: st, p: p, pm: pm, log: log, last: pos, at: time.Now()}
	defer cp.abandon()
	var (
		caughtUp    bool
		activeSince time.Time
		lastSeq     = pos.EventsSeq
		// stalledSince is when a wait with nothing delivered first found
		// EVENTS holding more of the partition.
		stalledSince time.Time
		appliedMark  = pos.MarksSeq
		lastTick     = l.clock.Now()
		lastFlush    = lastTick
		wait         = l.pollWait()
	)
	// applyMarks re-applies the recorded idle-rule moves made before EVENTS
	// sequence next (all of them once the stream is exhausted).
	applyMarks := func(next uint64, all bool) {
		for len(marks) > 0 && (all || marks[0].AfterSeq < next) {
			for _, mv := range marks[0].Moves {
				j.Advance(mv.Network, mv.Watermark, &pub.batch)
				pub.send()
			}
			appliedMark = marks[0].seq
			marks = marks[1:]
		}
	}
	for {
		msg, err := it.Next(jetstream.NextMaxWait(wait))
		now := l.clock.Now()
		switch {
		case err == nil:
			md, merr := msg.Metadata()
			if merr != nil {
				return fmt.Errorf("linker.consume %d: metadata: %w", p, merr)
			}
			applyMarks(md.Sequence.Stream, false)
			ev, derr := decodeEvent(msg, md.Sequence.Stream)
			if derr != nil {
				if err := l.deadLetter(ctx, msg, derr); err != nil {
					return fmt.Errorf("linker.consume %d: %w", p, err)
				}
			} else {
				j.Observe(ev, now, &pub.batch)
				pub.send()
			}
			lastSeq = md.Sequence.Stream
			stalledSince = time.Time{}
			cp.events++
			if md.NumPending == 0 && !caughtUp {
				activeSince = now
				log.Info().Int("pending_chains", j.Pending()).Uint64("events_seq", lastSeq).Msg("caught up with EVENTS")
			}
			caughtUp = md.NumPending == 0
		case errors.Is(err, nats.ErrTimeout):
			// A wait with nothing delivered is not proof that the partition
			// is caught up: a loaded server can be slower than the wait,
			// and an ordered consumer re-created after a node of the
			// cluster was lost has been seen to stop short of the end. The
			// stream itself says where the partition ends.
			if !l.behind(ctx, stream, p, lastSeq) {
				if !caughtUp {
					activeSince = now
				}
				caughtUp, stalledSince = true, time.Time{}
			} else {
				caughtUp = false
				if stalledSince.IsZero() {
					stalledSince = time.Now()
				} else if time.Since(stalledSince) > stallLimit {
					// Started again, from the checkpoint.
					return fmt.Errorf("linker.consume %d: nothing delivered for %s though EVENTS holds messages of the partition after sequence %d", p, stallLimit, lastSeq)
				}
			}
		case ctx.Err() != nil:
			return nil
		default:
			return fmt.Errorf("linker.consume %d: next: %w", p, err)
		}
		if caughtUp {
			applyMarks(0, true)
		}

		// The idle rule only runs once the replay is over: during a replay
		// the stream (and the recorded moves), not the wall clock, says
		// what time it is.
		if now.Sub(lastTick) >= wait {
			lastTick = now
			if caughtUp {
				if plan := j.IdlePlan(now, activeSince); len(plan) > 0 {
					// Durable before any outcome it causes is published.
					seq, err := st.publishMark(ctx, p, join.EncodeMark(lastSeq, plan), lastMark)
					if err != nil {
						return fmt.Errorf("linker.consume %d: %w", p, err)
					}
					lastMark, appliedMark = seq, seq
					l.m.idleMoves.Add(float64(len(plan)))
					for _, mv := range plan {
						j.Advance(mv.Network, mv.Watermark, &pub.batch)
						pub.send()
					}
				}
			}
			pm.update(j, now, activeSince, caughtUp, cp.at)
		}
		if len(pub.inflight) >= flushAt || (len(pub.inflight) > 0 && (caughtUp || now.Sub(lastFlush) >= wait)) {
			lastFlush = now
			if err := pub.flush(ctx); err != nil {
				return fmt.Errorf("linker.consume %d: %w", p, err)
			}
		}
		at := join.Position{Partition: p, EventsSeq: lastSeq, MarksSeq: appliedMark}
		released := closed(r.release)
		if released || (caughtUp && closed(l.drain)) {
			if err := pub.flush(ctx); err != nil {
				return fmt.Errorf("linker.consume %d: %w", p, err)
			}
			pm.update(j, now, activeSince, caughtUp, cp.at)
			return cp.final(ctx, j, at)
		}
		if cp.due(at) {
			// Everything the checkpoint covers must be published first: a
			// restart resumes after it and would never re-derive it.
			if err := pub.flush(ctx); err != nil {
				return fmt.Errorf("linker.consume %d: %w", p, err)
			}
			cp.start(ctx, j, at)
		}
	}
}

// checkpointer writes a partition's checkpoints in the background, one at a
// time, so that a large state does not hold the consumer up.
type checkpointer struct {
	l      *Linker
	st     *stores
	p      uint32
	pm     *partitionMetrics
	log    zerolog.Logger
	last   join.Position // what the last stored (or loaded) checkpoint covers
	at     time.Time     // when it was stored (loaded)
	events int           // events since
	// inflight receives the result of the write in progress; nil when none.
	inflight chan error
	writing  join.Position
	size     int
}

// due reports whether a new checkpoint should be written now. Checkpoint
// cadence is wall-clock I/O pacing, not a join decision: it reads the real
// time, not the injected clock.
func (c *checkpointer) due(at join.Position) bool {
	if !c.poll() || at == c.last {
		return false
	}
	return c.events >= c.l.cfg.CheckpointEvents || time.Since(c.at) >= c.l.cfg.CheckpointInterval
}

// poll collects a finished write; it reports whether none is in flight.
func (c *checkpointer) poll() bool {
	if c.inflight == nil {
		return true
	}
	select {
	case err := <-c.inflight:
		c.finish(err)
		return true
	default:
		return false
	}
}

func (c *checkpointer) finish(err error) {
	c.inflight = nil
	if err != nil {
		c.l.m.checkpoints.WithLabelValues("error").Inc()
		c.log.Warn().Err(err).Msg("checkpoint not stored; the previous one stays in force")
		return
	}
	c.l.m.checkpoints.WithLabelValues("ok").Inc()
	c.last, c.at = c.writing, time.Now()
	c.pm.cpBytes.Set(float64(c.size))
	c.pm.cpAge.Set(0)
}

func (c *checkpointer) start(ctx context.Context, j *join.Join, at join.Position) {
	data := j.Snapshot(make([]byte, 0, c.size+c.size/8+64), at)
	c.writing, c.size, c.events = at, len(data), 0
	ch := make(chan error, 1)
	c.inflight = ch
	go func() { ch <- c.st.saveCheckpoint(ctx, c.p, data) }()
}

// final waits for the write in flight and stores the last checkpoint.
func (c *checkpointer) final(ctx context.Context, j *join.Join, at join.Position) error {
	if c.inflight != nil {
		c.finish(<-c.inflight)
	}
	if at == c.last {
		return nil
	}
	c.start(ctx, j, at)
	err := <-c.inflight
	c.finish(err)
	if err != nil {
		return fmt.Errorf("linker.consume %d: final checkpoint: %w", c.p, err)
	}
	return nil
}

// abandon waits for a write in flight (its context ends with the run).
func (c *checkpointer) abandon() {
	if c.inflight != nil {
		c.finish(<-c.inflight)
	}
}

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// decodeEvent decodes the event of EVENTS message seq; original bytes that
// travel with it are dropped, their place kept (bus.LocateRaw).
func decodeEvent(msg jetstream.Msg, seq uint64) (*hinscorev1.ExchangeEvent, error) {
	ev := &hinscorev1.ExchangeEvent{}
	if err := proto.Unmarshal(msg.Data(), ev); err != nil {
		return nil, fmt.Errorf("decode ExchangeEvent: %w", err)
	}
	bus.LocateRaw(ev, msg.Subject(), seq)
	if ev.GetNetwork() == "" {
		// The subject names the network even when a producer forgot to.
		ev.Network = bus.NetworkOfSubject(msg.Subject())
	}
	return ev, nil
}

// deadLetter keeps an undecodable event in DLQ; its Msg-Id derives from the
// bytes, so a replay stores it once.
func (l *Linker) deadLetter(ctx context.Context, msg jetstream.Msg, cause error) error {
	l.m.ignored.WithLabelValues("undecodable").Inc()
	err := dlq.Publish(ctx, l.js, dlq.DeadLetter{
		Stage:   Stage,
		Network: bus.NetworkOfSubject(msg.Subject()),
		Reason:  cause.Error(),
		Data:    msg.Data(),
	})
	if err != nil {
		return fmt.Errorf("linker.deadLetter: %w", err)
	}
	return nil
}

// publisher pipelines outcome publishes and, on flush, waits for each
// acknowledgement, republishing what failed until it is stored or ctx ends.
// The join appends outcomes to batch; send publishes the new ones. The
// batch's bytes are kept until flush has them all stored.
type publisher struct {
	js       jetstream.JetStream
	log      zerolog.Logger
	m        *metrics
	batch    join.Outcomes
	inflight []inflight
}

type inflight struct {
	subject string
	msgID   string
	data    []byte
	network string
	class   hinscorev1.OutcomeClass
	fut     jetstream.PubAckFuture // nil when the async publish was refused
}

// send publishes the outcomes the join appended to the batch since the last
// send.
func (p *publisher) send() {
	for i := len(p.inflight); i < p.batch.Len(); i++ {
		w := p.batch.Entry(i)
		f := inflight{
			subject: bus.OutcomeSubject(w.Network),
			msgID:   bus.OutcomeMsgID(string(w.ID[:]), w.Version),
			data:    p.batch.Data(i),
			network: w.Network,
			class:   w.Class,
		}
		f.fut, _ = p.js.PublishMsgAsync(&nats.Msg{Subject: f.subject, Data: f.data}, jetstream.WithMsgID(f.msgID))
		p.inflight = append(p.inflight, f)
	}
}

func (p *publisher) flush(ctx context.Context) error {
	for i := range p.inflight {
		f := &p.inflight[i]
		ok := false
		if f.fut != nil {
			select {
			case <-f.fut.Ok():
				ok = true
			case err := <-f.fut.Err():
				p.log.Warn().Err(err).Str("msg_id", f.msgID).Msg("outcome publish failed; retrying")
			case <-ctx.Done():
				return fmt.Errorf("linker.flush: %w", ctx.Err())
			}
		}
		if !ok {
			if err := p.retry(ctx, f); err != nil {
				return err
			}
		}
		p.m.published(f.network, f.class)
	}
	clear(p.inflight)
	p.inflight = p.inflight[:0]
	p.batch.Reset()
	return nil
}

func (p *publisher) retry(ctx context.Context, f *inflight) error {
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval = 50 * time.Millisecond
	bo.MaxInterval = 2 * time.Second
	bo.MaxElapsedTime = 0
	op := func() error {
		_, err := p.js.PublishMsg(ctx, &nats.Msg{Subject: f.subject, Data: f.data}, jetstream.WithMsgID(f.msgID))
		return err
	}
	if err := backoff.Retry(op, backoff.WithContext(bo, ctx)); err != nil {
		return fmt.Errorf("linker.flush %s: %w", f.msgID, err)
	}
	return nil
}
