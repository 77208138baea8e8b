package linker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"google.golang.org/protobuf/proto"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
	"github.com/hinscore/hinscore/services/lib/bus"
	"github.com/hinscore/hinscore/services/lib/bus/dlq"
	"github.com/hinscore/hinscore/services/linker/join"
)

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
	stream, it, err := l.follow(ctx, p, pos.EventsSeq)
	if err != nil {
		return fmt.Errorf("linker.consume %d: %w", p, err)
	}
	stopIt := context.AfterFunc(ctx, it.Stop)
	defer stopIt()
	defer it.Stop()
	r.consuming.Store(true)
	defer r.consuming.Store(false)

	pm := l.m.partition(p)
	defer pm.drop()
	now := l.clock.Now()
	run := &partitionRun{
		l: l, st: st, r: r, log: log, j: j, stream: stream, pm: pm,
		pub:   &publisher{js: l.js, log: log, m: l.m},
		cp:    &checkpointer{l: l, st: st, p: p, pm: pm, log: log, last: pos, at: time.Now()},
		marks: marks, lastMark: lastMark, appliedMark: pos.MarksSeq, lastSeq: pos.EventsSeq,
		lastTick: now, lastFlush: now, wait: l.pollWait(),
	}
	defer run.cp.abandon()
	return run.loop(ctx, it)
}

// follow opens an ordered consumer of partition p of EVENTS, from the
// message after sequence after (from the first when it is 0).
func (l *Linker) follow(ctx context.Context, p uint32, after uint64) (jetstream.Stream, jetstream.MessagesContext, error) {
	stream, err := l.js.Stream(ctx, bus.StreamEvents)
	if err != nil {
		return nil, nil, err
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
	if after > 0 {
		cc.DeliverPolicy, cc.OptStartSeq = jetstream.DeliverByStartSequencePolicy, after+1
	}
	cons, err := stream.OrderedConsumer(ctx, cc)
	if err != nil {
		return nil, nil, fmt.Errorf("consumer: %w", err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(2 * flushAt))
	if err != nil {
		return nil, nil, fmt.Errorf("messages: %w", err)
	}
	return stream, it, nil
}

// partitionRun is one run of a partition's consumer: the join it feeds,
// where it stands in EVENTS and in the idle-rule records, and what it owes
// the bus (outcomes to flush, a checkpoint to write).
type partitionRun struct {
	l      *Linker
	st     *stores
	r      *runner
	log    zerolog.Logger
	j      *join.Join
	stream jetstream.Stream
	pub    *publisher
	cp     *checkpointer
	pm     *partitionMetrics

	marks       []mark // recorded idle-rule moves not applied yet
	lastMark    uint64 // the partition's last record: what the next one expects
	appliedMark uint64 // the last record applied
	lastSeq     uint64 // the last EVENTS message applied
	caughtUp    bool
	activeSince time.Time // when the consumer caught up with EVENTS
	// stalledSince is when a wait with nothing delivered first found
	// EVENTS holding more of the partition.
	stalledSince time.Time
	lastTick     time.Time // the last look at the idle rule and the gauges
	lastFlush    time.Time
	wait         time.Duration
}

// loop feeds the join until the run ends.
func (pr *partitionRun) loop(ctx context.Context, it jetstream.MessagesContext) error {
	for {
		msg, err := it.Next(jetstream.NextMaxWait(pr.wait))
		now := pr.l.clock.Now()
		if done, err := pr.receive(ctx, msg, err, now); done || err != nil {
			return err
		}
		if pr.caughtUp {
			pr.applyMarks(0, true)
		}
		if err := pr.tick(ctx, now); err != nil {
			return err
		}
		if done, err := pr.settle(ctx, now); done || err != nil {
			return err
		}
	}
}

// receive takes what the consumer's wait gave: a message, or nothing for
// the whole wait. done is true when the run's context ended.
func (pr *partitionRun) receive(ctx context.Context, msg jetstream.Msg, err error, now time.Time) (done bool, _ error) {
	switch {
	case err == nil:
		return false, pr.apply(ctx, msg, now)
	case errors.Is(err, nats.ErrTimeout):
		return false, pr.waited(ctx, now)
	case ctx.Err() != nil:
		return true, nil
	default:
		return false, fmt.Errorf("linker.consume %d: next: %w", pr.r.p, err)
	}
}

// apply feeds one EVENTS message to the join, after the idle-rule moves
// recorded before it.
func (pr *partitionRun) apply(ctx context.Context, msg jetstream.Msg, now time.Time) error {
	md, err := msg.Metadata()
	if err != nil {
		return fmt.Errorf("linker.consume %d: metadata: %w", pr.r.p, err)
	}
	pr.applyMarks(md.Sequence.Stream, false)
	ev, derr := decodeEvent(msg, md.Sequence.Stream)
	if derr != nil {
		if err := pr.l.deadLetter(ctx, msg, derr); err != nil {
			return fmt.Errorf("linker.consume %d: %w", pr.r.p, err)
		}
	} else {
		pr.j.Observe(ev, now, &pr.pub.batch)
		pr.pub.send()
	}
	pr.lastSeq = md.Sequence.Stream
	pr.stalledSince = time.Time{}
	pr.cp.events++
	if md.NumPending == 0 && !pr.caughtUp {
		pr.activeSince = now
		pr.log.Info().Int("pending_chains", pr.j.Pending()).Uint64("events_seq", pr.lastSeq).Msg("caught up with EVENTS")
	}
	pr.caughtUp = md.NumPending == 0
	return nil
}

// waited follows a wait with nothing delivered.
func (pr *partitionRun) waited(ctx context.Context, now time.Time) error {
	// A wait with nothing delivered is not proof that the partition is
	// caught up: a loaded server can be slower than the wait, and an
	// ordered consumer re-created after a node of the cluster was lost has
	// been seen to stop short of the end. The stream itself says where the
	// partition ends.
	if !pr.l.behind(ctx, pr.stream, pr.r.p, pr.lastSeq) {
		if !pr.caughtUp {
			pr.activeSince = now
		}
		pr.caughtUp, pr.stalledSince = true, time.Time{}
		return nil
	}
	pr.caughtUp = false
	if pr.stalledSince.IsZero() {
		pr.stalledSince = time.Now()
	} else if time.Since(pr.stalledSince) > stallLimit {
		// Started again, from the checkpoint.
		return fmt.Errorf("linker.consume %d: nothing delivered for %s though EVENTS holds messages of the partition after sequence %d", pr.r.p, stallLimit, pr.lastSeq)
	}
	return nil
}

// applyMarks re-applies the recorded idle-rule moves made before EVENTS
// sequence next (all of them once the stream is exhausted).
func (pr *partitionRun) applyMarks(next uint64, all bool) {
	for len(pr.marks) > 0 && (all || pr.marks[0].AfterSeq < next) {
		pr.advance(pr.marks[0].Moves)
		pr.appliedMark = pr.marks[0].seq
		pr.marks = pr.marks[1:]
	}
}

// advance applies watermark moves of the idle rule and publishes what they
// decide.
func (pr *partitionRun) advance(moves []join.Move) {
	for _, mv := range moves {
		pr.j.Advance(mv.Network, mv.Watermark, &pr.pub.batch)
		pr.pub.send()
	}
}

// tick runs, once per wait of wall clock, the idle rule and the gauges.
func (pr *partitionRun) tick(ctx context.Context, now time.Time) error {
	if now.Sub(pr.lastTick) < pr.wait {
		return nil
	}
	pr.lastTick = now
	// The idle rule only runs once the replay is over: during a replay the
	// stream (and the recorded moves), not the wall clock, says what time
	// it is.
	if pr.caughtUp {
		if plan := pr.j.IdlePlan(now, pr.activeSince); len(plan) > 0 {
			// Durable before any outcome it causes is published.
			seq, err := pr.st.publishMark(ctx, pr.r.p, join.EncodeMark(pr.lastSeq, plan), pr.lastMark)
			if err != nil {
				return fmt.Errorf("linker.consume %d: %w", pr.r.p, err)
			}
			pr.lastMark, pr.appliedMark = seq, seq
			pr.l.m.idleMoves.Add(float64(len(plan)))
			pr.advance(plan)
		}
	}
	pr.pm.update(pr.j, now, pr.activeSince, pr.caughtUp, pr.cp.at)
	return nil
}

// settle flushes the outcomes published so far when it is time to, and
// checkpoints; at the end of the run (released, or drained once caught up)
// it flushes and writes the last checkpoint, and reports done.
func (pr *partitionRun) settle(ctx context.Context, now time.Time) (done bool, _ error) {
	pub := pr.pub
	if len(pub.inflight) >= flushAt || (len(pub.inflight) > 0 && (pr.caughtUp || now.Sub(pr.lastFlush) >= pr.wait)) {
		pr.lastFlush = now
		if err := pub.flush(ctx); err != nil {
			return false, fmt.Errorf("linker.consume %d: %w", pr.r.p, err)
		}
	}
	at := join.Position{Partition: pr.r.p, EventsSeq: pr.lastSeq, MarksSeq: pr.appliedMark}
	if closed(pr.r.release) || (pr.caughtUp && closed(pr.l.drain)) {
		if err := pub.flush(ctx); err != nil {
			return false, fmt.Errorf("linker.consume %d: %w", pr.r.p, err)
		}
		pr.pm.update(pr.j, now, pr.activeSince, pr.caughtUp, pr.cp.at)
		return true, pr.cp.final(ctx, pr.j, at)
	}
	if pr.cp.due(at) {
		// Everything the checkpoint covers must be published first: a
		// restart resumes after it and would never re-derive it.
		if err := pub.flush(ctx); err != nil {
			return false, fmt.Errorf("linker.consume %d: %w", pr.r.p, err)
		}
		pr.cp.start(ctx, pr.j, at)
	}
	return false, nil
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
