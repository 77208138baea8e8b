// Package linker joins every request observed on EVENTS to what answered it
// and publishes one Outcome per request chain to OUTCOMES.
//
// The join itself (chains) is pure and deterministic: event time decides,
// versions count re-decisions, so replaying a partition from the start of
// the stream gives the same outcomes, which JetStream (Nats-Msg-Id) and the
// ReplacingMergeTree downstream deduplicate. The Linker around it owns the
// bus: one ordered consumer per partition, replayed from the first message
// on every start, which is what makes it crash-safe without a checkpoint.
package linker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"google.golang.org/protobuf/proto"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
	"github.com/hinscore/hinscore/services/bus"
	"github.com/hinscore/hinscore/services/service"
)

// Stage names the linker in DLQ messages.
const Stage = "linker"

// flushAt bounds the outcome publishes in flight before the linker waits for
// their acknowledgements (well under nats.go's async limit of 4000).
const flushAt = 512

// Linker is the service component: it consumes its partitions of EVENTS and
// publishes Outcomes.
type Linker struct {
	cfg   Config
	rules rules
	js    jetstream.JetStream
	log   zerolog.Logger
	clock service.Clock
	m     *metrics

	mu        sync.Mutex
	started   bool
	stopped   bool
	drain     chan struct{} // closed by Shutdown: finish what the stream holds, then stop
	cancelRun context.CancelFunc
	cancelPub context.CancelFunc
	done      chan struct{}
	consuming atomic.Int32
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
	return &Linker{cfg: cfg, rules: newRules(cfg), js: js, log: log, clock: clock, m: m, drain: make(chan struct{})}, nil
}

// Start launches one consumer per partition and returns at once; each
// replays its partition from the first message of EVENTS.
func (l *Linker) Start(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.started || l.stopped {
		return nil
	}
	l.started = true
	// The run outlives Start's ctx (SIGTERM cancels it before Shutdown):
	// Shutdown decides when consuming and publishing stop.
	runCtx, cancelRun := context.WithCancel(context.WithoutCancel(ctx))
	pubCtx, cancelPub := context.WithCancel(context.WithoutCancel(ctx))
	l.cancelRun, l.cancelPub = cancelRun, cancelPub
	l.done = make(chan struct{})
	parts := l.cfg.partitions()
	var wg sync.WaitGroup
	for _, p := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.runPartition(runCtx, pubCtx, p)
		}()
	}
	go func() {
		wg.Wait()
		close(l.done)
	}()
	l.log.Info().Uints32("partitions", parts).Int("partition_count", l.cfg.PartitionCount).
		Dur("lateness", l.cfg.Lateness).Dur("idle", l.cfg.Idle).Msg("linker started")
	return nil
}

// Shutdown lets every partition finish the events its stream already holds
// and waits for the acknowledgement of every outcome they produced; when ctx
// ends first it abandons them (a restart replays and republishes them).
// Undecided chains are not flushed as anything: they are rebuilt on replay.
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
	defer l.cancelPub()
	defer l.cancelRun()
	select {
	case <-l.done:
		return nil
	case <-ctx.Done():
		l.cancelRun()
		l.cancelPub()
		<-l.done
		return fmt.Errorf("linker.Shutdown: %w", ctx.Err())
	}
}

// Ready reports whether every partition is consuming.
func (l *Linker) Ready(ctx context.Context) error {
	l.mu.Lock()
	started, stopped := l.started, l.stopped
	l.mu.Unlock()
	switch {
	case stopped:
		return errors.New("linker: shutting down")
	case !started:
		return errors.New("linker: not started")
	}
	if n, want := int(l.consuming.Load()), len(l.cfg.partitions()); n < want {
		return fmt.Errorf("linker: %d of %d partitions consuming", n, want)
	}
	return nil
}

// runPartition consumes one partition until the run ends, restarting (with a
// fresh join and a replay from the start) after an error.
func (l *Linker) runPartition(runCtx, pubCtx context.Context, p uint32) {
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval = 100 * time.Millisecond
	bo.MaxInterval = 5 * time.Second
	bo.MaxElapsedTime = 0
	log := l.log.With().Uint32("partition", p).Logger()
	for {
		err := l.consume(runCtx, pubCtx, p, log)
		if err == nil || runCtx.Err() != nil {
			return
		}
		l.m.restarts.Inc()
		wait := bo.NextBackOff()
		log.Error().Err(err).Dur("retry_in", wait).Msg("partition consumer stopped; replaying")
		select {
		case <-runCtx.Done():
			return
		case <-l.drain:
			return
		case <-time.After(wait):
		}
	}
}

// pollWait is how long the consumer waits for a message before it looks at
// the idle rule: a fraction of the idle duration, so idleness is noticed on
// time, within [10ms, 1s].
func (l *Linker) pollWait() time.Duration {
	return min(max(l.cfg.Idle/4, 10*time.Millisecond), time.Second)
}

// consume replays one partition from the start of EVENTS into a fresh join
// and follows it live. It returns nil when the run ends or the drain is done.
func (l *Linker) consume(runCtx, pubCtx context.Context, p uint32, log zerolog.Logger) error {
	// A stream that never appears must not hold Shutdown up.
	waitCtx, cancelWait := context.WithCancel(runCtx)
	stopWait := context.AfterFunc(drainContext{l.drain}, cancelWait)
	stream, err := bus.WaitStream(waitCtx, l.js, bus.StreamEvents)
	stopWait()
	cancelWait()
	if err != nil {
		return fmt.Errorf("linker.consume %d: %w", p, err)
	}
	// An ordered consumer is ephemeral and needs no acks: the linker's state
	// is rebuilt from the stream on every start, so nothing is "done" until
	// the stream's retention drops it. Issue 4 replaces DeliverAll with a
	// checkpoint's sequence.
	cons, err := stream.OrderedConsumer(runCtx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{bus.EventPartitionFilter(p)},
		DeliverPolicy:  jetstream.DeliverAllPolicy,
		// Unique per run: an ephemeral left by a crashed process must never
		// be picked up again with its delivery position.
		NamePrefix: fmt.Sprintf("%s-p%d-%s", l.cfg.Consumer, p, uuid.NewString()[:8]),
	})
	if err != nil {
		return fmt.Errorf("linker.consume %d: consumer: %w", p, err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(2 * flushAt))
	if err != nil {
		return fmt.Errorf("linker.consume %d: messages: %w", p, err)
	}
	stopIt := context.AfterFunc(runCtx, it.Stop)
	defer stopIt()
	defer it.Stop()
	l.consuming.Add(1)
	defer l.consuming.Add(-1)

	join := newChains(l.rules)
	pm := l.m.partition(p)
	pub := &publisher{js: l.js, log: log, m: l.m}
	var (
		out         []*hinscorev1.Outcome
		caughtUp    bool
		activeSince time.Time
		lastTick    = l.clock.Now()
		lastFlush   = lastTick
		wait        = l.pollWait()
	)
	for {
		msg, err := it.Next(jetstream.NextMaxWait(wait))
		now := l.clock.Now()
		switch {
		case err == nil:
			ev, derr := decodeEvent(msg)
			if derr != nil {
				if err := l.deadLetter(pubCtx, msg, derr); err != nil {
					return fmt.Errorf("linker.consume %d: %w", p, err)
				}
			} else {
				out = join.Observe(ev, now, out[:0])
				pub.add(out)
			}
			pending := uint64(1)
			if md, merr := msg.Metadata(); merr == nil {
				pending = md.NumPending
			}
			if pending == 0 && !caughtUp {
				activeSince = now
				log.Info().Int("pending_chains", join.pending).Msg("caught up with EVENTS")
			}
			caughtUp = pending == 0
		case errors.Is(err, nats.ErrTimeout):
			if !caughtUp {
				activeSince = now
			}
			caughtUp = true
		case errors.Is(err, jetstream.ErrMsgIteratorClosed) || runCtx.Err() != nil:
			return pub.flush(pubCtx)
		default:
			_ = pub.flush(pubCtx)
			return fmt.Errorf("linker.consume %d: next: %w", p, err)
		}

		// The idle rule only runs once the replay is over: during a replay
		// the stream, not the wall clock, says what time it is.
		if now.Sub(lastTick) >= wait {
			lastTick = now
			if caughtUp {
				out = join.AdvanceIdle(now, activeSince, out[:0])
				pub.add(out)
			}
			pm.update(join, now.UnixMilli(), caughtUp)
		}
		if len(pub.inflight) >= flushAt || (len(pub.inflight) > 0 && (caughtUp || now.Sub(lastFlush) >= wait)) {
			lastFlush = now
			if err := pub.flush(pubCtx); err != nil {
				return fmt.Errorf("linker.consume %d: %w", p, err)
			}
			pm.update(join, now.UnixMilli(), caughtUp)
		}
		if caughtUp && drained(l.drain) {
			pm.update(join, now.UnixMilli(), caughtUp)
			return pub.flush(pubCtx)
		}
	}
}

// drainContext is a context that ends when the drain begins, so AfterFunc
// can follow it.
type drainContext struct{ ch chan struct{} }

func (d drainContext) Deadline() (time.Time, bool) { return time.Time{}, false }
func (d drainContext) Done() <-chan struct{}       { return d.ch }
func (d drainContext) Err() error {
	if drained(d.ch) {
		return context.Canceled
	}
	return nil
}
func (d drainContext) Value(any) any { return nil }

func drained(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func decodeEvent(msg jetstream.Msg) (*hinscorev1.ExchangeEvent, error) {
	ev := &hinscorev1.ExchangeEvent{}
	if err := proto.Unmarshal(msg.Data(), ev); err != nil {
		return nil, fmt.Errorf("decode ExchangeEvent: %w", err)
	}
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
	err := bus.PublishDLQ(ctx, l.js, bus.DeadLetter{
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
type publisher struct {
	js       jetstream.JetStream
	log      zerolog.Logger
	m        *metrics
	inflight []inflight
}

type inflight struct {
	subject string
	msgID   string
	data    []byte
	class   hinscorev1.OutcomeClass
	fut     jetstream.PubAckFuture // nil when the async publish was refused
}

func (p *publisher) add(outs []*hinscorev1.Outcome) {
	for _, o := range outs {
		data, err := proto.Marshal(o)
		if err != nil {
			// An Outcome built here always marshals; this is a programming error.
			p.log.Error().Err(err).Str("outcome_id", o.GetOutcomeId()).Msg("marshal outcome")
			continue
		}
		f := inflight{
			subject: bus.OutcomeSubject(o.GetNetwork()),
			msgID:   bus.OutcomeMsgID(o.GetOutcomeId(), o.GetVersion()),
			data:    data,
			class:   o.GetOutcomeClass(),
		}
		f.fut, _ = p.js.PublishMsgAsync(&nats.Msg{Subject: f.subject, Data: data}, jetstream.WithMsgID(f.msgID))
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
		p.m.published(f.class)
	}
	clear(p.inflight)
	p.inflight = p.inflight[:0]
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
