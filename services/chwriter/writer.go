// Package chwriter moves ExchangeEvents, Outcomes and dead letters from
// JetStream into ClickHouse, and rebuilds the outcomes_daily rollup: it batches by rows and by time, inserts with explicit column
// lists, and acknowledges a message only once its rows are written, so a
// crash or a ClickHouse outage loses nothing (re-written rows collapse in
// the ReplacingMergeTree tables).
package chwriter

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hinscore/hinscore/services/lib/bus/dlq"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/cenkalti/backoff/v4"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/hinscore/hinscore/services/lib/bus"
	"github.com/hinscore/hinscore/services/lib/chstore"
	"github.com/hinscore/hinscore/services/lib/service"
)

// Stage is the DLQ stage name of what the writer rejects.
const Stage = "chwriter"

// ErrStopped is returned by Start after Shutdown.
var ErrStopped = errors.New("chwriter: stopped")

// fetchChunk bounds one pull request: the client allocates buffers of the
// requested size up front, so a 50,000-row batch is pulled in pieces.
const fetchChunk = 4096

// minFetchWait is the shortest pull worth making; below it the batch is
// written instead.
const minFetchWait = 10 * time.Millisecond

// maxFetchWait caps one pull. A pull is never cut short (see run), so this
// bounds how long Shutdown waits for the pipelines to notice it.
const maxFetchWait = 250 * time.Millisecond

type state int

const (
	stateNew state = iota
	stateRunning
	stateStopped
)

// Writer is the chwriter component: one pipeline per stream.
type Writer struct {
	cfg  Config
	js   jetstream.JetStream
	conn driver.Conn
	log  zerolog.Logger
	m    *metrics

	mu       sync.Mutex
	state    state
	cancel   context.CancelFunc // stops stream waits and insert retries
	stopping chan struct{}      // closed: finish the current pull and return
	done     chan struct{}      // closed when every pipeline loop returned
	pipes    []*pipeline

	// afterInsert, when set (tests only), runs after a batch is written and
	// before it is acked: the window in which a crash makes JetStream
	// redeliver rows ClickHouse already has.
	afterInsert func(label string)

	dirtyMu sync.Mutex
	dirty   map[time.Time]bool // months of outcomes_daily to rebuild

	// rebuildMu serializes rebuilds and guards shards, the connections to
	// Config.RollupShards, opened at the first rebuild that needs them.
	rebuildMu sync.Mutex
	shards    []driver.Conn
}

// New returns a writer of deps.JetStream's streams into deps.ClickHouse;
// nothing happens until Start. deps.Metrics may be nil (the metrics are
// then kept but not exported).
func New(cfg Config, deps service.Deps) (*Writer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("chwriter.New: %w", err)
	}
	js, conn, log, reg := deps.JetStream, deps.ClickHouse, deps.Log, deps.Metrics
	if js == nil || conn == nil {
		return nil, errors.New("chwriter.New: JetStream and ClickHouse connection are required")
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("chwriter.New: metrics: %w", err)
	}
	if cfg.ContentRetries == 0 {
		cfg.ContentRetries = defaultContentRetries
	}
	w := &Writer{cfg: cfg, js: js, conn: conn, log: log, m: m, dirty: map[time.Time]bool{}}
	w.pipes = []*pipeline{
		w.newPipeline(bus.StreamEvents, "events", func() sink { return &eventRows{} }),
		w.newPipeline(bus.StreamOutcomes, "outcomes", func() sink { return &outcomeRows{} }),
		w.newPipeline(bus.StreamDLQ, "dlq", func() sink { return &deadLetterRows{} }),
	}
	return w, nil
}

// Start begins consuming. The streams may not exist yet (the writer can start
// before the ingest that creates them): each pipeline waits for its stream
// in the background and Ready reports it until then.
func (w *Writer) Start(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch w.state {
	case stateRunning:
		return nil
	case stateStopped:
		return fmt.Errorf("chwriter.Start: %w", ErrStopped)
	}
	// The loops outlive Start's ctx: they stop in Shutdown, which must
	// still be able to flush after the caller's ctx (SIGTERM) is done.
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	w.cancel = cancel
	w.stopping = make(chan struct{})
	w.done = make(chan struct{})
	w.state = stateRunning
	var wg sync.WaitGroup
	for _, p := range w.pipes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.run(runCtx, w.stopping)
		}()
	}
	if w.cfg.RollupEvery > 0 {
		// The months of the last two months may hold outcomes written by a
		// writer that died before rebuilding them.
		now := time.Now().UTC()
		w.markDirty([]time.Time{now, now.AddDate(0, -1, 0)})
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.rollupLoop(runCtx, w.stopping)
		}()
	}
	go func() { wg.Wait(); close(w.done) }()
	w.log.Info().Int("batch_rows", w.cfg.BatchRows).Dur("flush", w.cfg.FlushInterval).
		Str("consumer", w.cfg.Consumer).Msg("chwriter started")
	return nil
}

// Shutdown stops pulling, writes and acks what the writer holds, and
// returns. If ClickHouse cannot take the held rows before ctx ends, they stay
// unacked and JetStream redelivers them to the next writer. Idempotent;
// safe before Start.
func (w *Writer) Shutdown(ctx context.Context) error {
	w.mu.Lock()
	prev := w.state
	w.state = stateStopped
	w.mu.Unlock()
	if prev != stateRunning {
		return nil
	}
	close(w.stopping)
	// Cancelling aborts an insert retry in progress; the batch it was
	// retrying stays held and is written below under ctx instead.
	w.cancel()
	select {
	case <-w.done:
	case <-ctx.Done():
		return fmt.Errorf("chwriter.Shutdown: pipelines did not stop: %w", ctx.Err())
	}
	var errs []error
	for _, p := range w.pipes {
		if err := p.flush(ctx); err != nil {
			errs = append(errs, fmt.Errorf("chwriter.Shutdown %s: %w", p.label, err))
		}
	}
	w.rebuildMu.Lock()
	for _, conn := range w.shards {
		_ = conn.Close()
	}
	w.shards = nil
	w.rebuildMu.Unlock()
	w.log.Info().Msg("chwriter stopped")
	return errors.Join(errs...)
}

// Ready reports whether the writer consumes both streams and ClickHouse
// takes its inserts.
func (w *Writer) Ready(ctx context.Context) error {
	w.mu.Lock()
	st := w.state
	w.mu.Unlock()
	switch st {
	case stateNew:
		return errors.New("chwriter: not started")
	case stateStopped:
		return errors.New("chwriter: stopped")
	}
	for _, p := range w.pipes {
		if err := p.status(); err != nil {
			return err
		}
	}
	if err := w.conn.Ping(ctx); err != nil {
		return fmt.Errorf("chwriter: clickhouse: %w", err)
	}
	return nil
}

// pipeline moves one stream into its tables. Only its run goroutine touches
// held and sink while running; Shutdown touches them after run returned.
type pipeline struct {
	w        *Writer
	stream   string
	label    string
	consumer string
	newSink  func() sink
	sink     sink
	held     []jetstream.Msg
	firstAt  time.Time // when the oldest held message arrived

	// While one batch is written (by a goroutine of run's), the next one
	// fills: at most two batches are held, and a full second one stops
	// the pulls until the first is written.
	spare     chan sink    // a written batch's sink, reset, for the next one
	unwritten *batch       // a batch whose writing Shutdown cut short
	filling   atomic.Int64 // messages of the batch filling (len(held), for other goroutines)
	inWriting atomic.Int64 // messages of the batch being written

	mu       sync.Mutex
	cons     jetstream.Consumer
	waitErr  error // why the pipeline is not consuming yet
	flushErr error // the last insert failure, until one succeeds
}

func (w *Writer) newPipeline(stream, label string, newSink func() sink) *pipeline {
	return &pipeline{
		w: w, stream: stream, label: label, newSink: newSink, sink: newSink(),
		consumer: w.cfg.Consumer + "_" + label,
		waitErr:  fmt.Errorf("chwriter: waiting for stream %s", stream),
		spare:    make(chan sink, 1),
	}
}

// batch is the rows of some messages, decoded into their sink.
type batch struct {
	sink sink
	msgs []jetstream.Msg
}

// detach takes the batch being filled and starts an empty one.
func (p *pipeline) detach() *batch {
	b := &batch{sink: p.sink, msgs: p.held}
	select {
	case p.sink = <-p.spare:
	default:
		p.sink = p.newSink()
	}
	p.held = make([]jetstream.Msg, 0, cap(b.msgs))
	p.filling.Store(0)
	p.inWriting.Store(int64(len(b.msgs)))
	p.countHeld()
	return b
}

// countHeld sets held_messages: the batch filling and the one written.
func (p *pipeline) countHeld() {
	p.w.m.heldMessages.WithLabelValues(p.label).Set(float64(p.filling.Load() + p.inWriting.Load()))
}

func (p *pipeline) status() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.waitErr != nil {
		return p.waitErr
	}
	if p.flushErr != nil {
		return fmt.Errorf("chwriter: %s: %w", p.label, p.flushErr)
	}
	return nil
}

func (p *pipeline) setErr(wait, flush error) {
	p.mu.Lock()
	p.waitErr, p.flushErr = wait, flush
	p.mu.Unlock()
}

func (p *pipeline) consumerConfig() jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       p.consumer,
		Description:   "chwriter: " + p.label + " into ClickHouse",
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       p.w.cfg.AckWait,
		MaxDeliver:    -1,
		// A batch holds up to BatchRows unacked messages; the default of
		// 1000 would stall every batch at 1000.
		MaxAckPending:   2*p.w.cfg.BatchRows + fetchChunk,
		MaxRequestBatch: fetchChunk,
		// A dead letter is recorded by its headers and its size (the
		// Nats-Msg-Size header): its bytes, which may hold patient
		// identifiers, stay in the stream and never reach the writer.
		HeadersOnly: p.stream == bus.StreamDLQ,
	}
}

// connect waits for the stream and creates (or updates) the durable consumer.
func (p *pipeline) connect(ctx context.Context) (jetstream.Consumer, error) {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval, b.MaxInterval, b.MaxElapsedTime = 200*time.Millisecond, p.w.cfg.RetryMax, 0
	for {
		s, err := bus.WaitStream(ctx, p.w.js, p.stream)
		if err == nil {
			var cons jetstream.Consumer
			if cons, err = s.CreateOrUpdateConsumer(ctx, p.consumerConfig()); err == nil {
				return cons, nil
			}
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		p.setErr(fmt.Errorf("chwriter: consumer %s on %s: %w", p.consumer, p.stream, err), nil)
		p.w.log.Warn().Err(err).Str("stream", p.stream).Msg("cannot create consumer, retrying")
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(b.NextBackOff()):
		}
	}
}

// run pulls until stopping is closed, writing a batch when it is full or its
// oldest message has waited FlushInterval. A batch is written in the
// background while the next one fills, one at a time: while an insert
// fails it retries that batch, and once the next one is full (or due) it
// pulls nothing more.
func (p *pipeline) run(ctx context.Context, stopping <-chan struct{}) {
	cons, err := p.connect(ctx)
	if err != nil {
		return
	}
	p.mu.Lock()
	p.cons, p.waitErr = cons, nil
	p.mu.Unlock()
	cfg := p.w.cfg
	// writing delivers the batch being written once it is (nil, or the
	// batch itself when Shutdown cut it short); nil when none is. run never
	// returns while one is, so that Shutdown finds every batch in p.
	var writing chan *batch
	written := func(failed *batch) bool {
		writing = nil
		p.unwritten = failed // Shutdown writes it
		return failed == nil
	}
	// waitWritten waits for the batch being written, keeping the ack
	// deadline of the messages held behind it meanwhile.
	waitWritten := func() bool {
		if writing == nil {
			return true
		}
		progress := time.NewTicker(cfg.AckWait / 3)
		defer progress.Stop()
		for {
			select {
			case failed := <-writing:
				return written(failed)
			case <-progress.C:
				for _, msg := range p.held {
					_ = msg.InProgress()
				}
			}
		}
	}
	defer waitWritten()
	for {
		select {
		case <-stopping:
			return
		case failed := <-writing: // a nil channel never delivers
			if !written(failed) {
				return
			}
		default:
		}
		wait := cfg.FlushInterval
		if len(p.held) > 0 {
			wait = time.Until(p.firstAt.Add(cfg.FlushInterval))
		}
		wait = min(wait, maxFetchWait)
		if wait >= minFetchWait && len(p.held) < cfg.BatchRows {
			// No ctx on the pull: a pull cut short drops messages the server
			// already delivered (redelivered only after AckWait), so even a
			// shutdown lets it run out, at most maxFetchWait.
			pulled, err := cons.Fetch(min(cfg.BatchRows-len(p.held), fetchChunk), jetstream.FetchMaxWait(wait))
			if err != nil {
				p.w.log.Warn().Err(err).Str("stream", p.stream).Msg("pull failed")
				p.pause(stopping, time.Second)
				continue
			}
			for msg := range pulled.Messages() {
				p.take(ctx, msg)
			}
			if err := pulled.Error(); err != nil {
				p.w.log.Warn().Err(err).Str("stream", p.stream).Msg("pull ended with an error")
				p.pause(stopping, 100*time.Millisecond)
			}
		}
		if len(p.held) >= cfg.BatchRows || (len(p.held) > 0 && !time.Now().Before(p.firstAt.Add(cfg.FlushInterval))) {
			// One batch written at a time, in stream order of batches.
			if !waitWritten() {
				return
			}
			b := p.detach()
			done := make(chan *batch, 1)
			writing = done
			go func() {
				if err := p.writeBatch(ctx, b); err != nil {
					done <- b
					return
				}
				done <- nil
			}()
		}
	}
}

func (p *pipeline) pause(stopping <-chan struct{}, d time.Duration) {
	select {
	case <-stopping:
	case <-time.After(d):
	}
}

// take decodes one message into the batch, or sends it to the DLQ.
func (p *pipeline) take(ctx context.Context, msg jetstream.Msg) {
	if md, err := msg.Metadata(); err == nil {
		p.w.m.pending.WithLabelValues(p.label).Set(float64(md.NumPending))
	}
	var err error
	if ms, ok := p.sink.(msgSink); ok {
		err = ms.addMsg(msg)
	} else {
		err = p.sink.add(msg.Data())
	}
	if err == nil {
		if len(p.held) == 0 {
			p.firstAt = time.Now()
		}
		p.held = append(p.held, msg)
		p.filling.Store(int64(len(p.held)))
		p.countHeld()
		return
	}
	p.deadLetter(ctx, msg, err, "undecodable message")
}

// deadLetter sends one message that can never be written to the DLQ and
// terminates it. The DLQ's own pipeline never re-publishes into the DLQ (a
// loop): it only terminates, and the log says why.
func (p *pipeline) deadLetter(ctx context.Context, msg jetstream.Msg, err error, what string) {
	log := p.w.log.With().Str("subject", msg.Subject()).Err(err).Logger()
	if p.stream == bus.StreamDLQ {
		_ = msg.Term()
		p.w.m.dlq.WithLabelValues(p.label).Inc()
		log.Error().Msg(what + " in the DLQ itself: not recorded in dead_letters, left in the stream")
		return
	}
	dl := dlq.DeadLetter{Stage: Stage, Network: bus.NetworkOfSubject(msg.Subject()), Reason: err.Error(), Data: msg.Data()}
	if derr := dlq.Publish(ctx, p.w.js, dl); derr != nil {
		// Not termed: JetStream redelivers it and the DLQ is tried again.
		log.Error().AnErr("dlq_error", derr).Msg(what + ", DLQ publish failed")
		_ = msg.NakWithDelay(p.w.cfg.AckWait / 4)
		return
	}
	if terr := msg.Term(); terr != nil {
		log.Warn().AnErr("term_error", terr).Msg("dead letter stored, term failed (it will come back and be dead-lettered again)")
	}
	p.w.m.dlq.WithLabelValues(p.label).Inc()
	log.Warn().Msg(what + " sent to the DLQ")
}

// msgSink is a sink that needs the whole message (headers, stream position),
// not only its bytes.
type msgSink interface {
	addMsg(msg jetstream.Msg) error
}

// monthSink is a sink whose rows make months of outcomes_daily stale.
type monthSink interface {
	months() []time.Time
}

// flush writes what p holds, a batch whose writing was cut short first,
// then the one being filled (Shutdown, after run returned).
func (p *pipeline) flush(ctx context.Context) error {
	if b := p.unwritten; b != nil {
		if err := p.writeBatch(ctx, b); err != nil {
			return err
		}
		p.unwritten = nil
	}
	if len(p.held) == 0 {
		return nil
	}
	return p.writeBatch(ctx, p.detach())
}

// writeBatch writes a batch and then acks every message of it. While
// ClickHouse is unavailable it retries the same batch with capped
// exponential backoff until it succeeds or ctx ends (on error nothing of it
// is acked). When ClickHouse rejects the batch for its content
// ContentRetries times in a row, the batch is split to find the messages
// at fault, which go to the DLQ, and the others are written.
func (p *pipeline) writeBatch(ctx context.Context, b *batch) error {
	if len(b.msgs) == 0 {
		return nil
	}
	start := time.Now()
	written, rejected, err := p.write(ctx, b.msgs, b.sink, b.msgs)
	if err != nil {
		return err
	}
	if hook := p.w.afterInsert; hook != nil {
		hook(p.label)
	}
	if ms, ok := b.sink.(monthSink); ok {
		p.w.markDirty(ms.months())
	}
	var ackErrs int
	for _, msg := range written {
		// A lost ack only means a redelivery, which the tables absorb.
		if err := msg.Ack(); err != nil {
			ackErrs++
		}
	}
	if ackErrs > 0 {
		p.w.log.Warn().Int("failed", ackErrs).Str("stream", p.stream).Msg("acks not sent; those messages will be written again")
	}
	for _, r := range rejected {
		p.deadLetter(ctx, r.msg, r.err, "row rejected by ClickHouse")
	}
	p.w.m.batchSize.WithLabelValues(p.label).Observe(float64(len(b.msgs)))
	p.inWriting.Store(0)
	p.countHeld() // a written batch is no longer held
	p.setErr(nil, nil)
	b.sink.reset()
	select {
	case p.spare <- b.sink:
	default:
	}
	p.w.log.Debug().Str("stream", p.stream).Int("messages", len(written)).Dur("took", time.Since(start)).Msg("batch written")
	return nil
}

// rejectedMsg is a message ClickHouse refused, with its reason.
type rejectedMsg struct {
	msg jetstream.Msg
	err error
}

// write inserts the rows of msgs (already decoded into s) and returns the
// messages whose rows are in ClickHouse and those it refused for their
// content. An error means ctx ended before ClickHouse came back.
func (p *pipeline) write(ctx context.Context, msgs []jetstream.Msg, s sink, whole []jetstream.Msg) (written []jetstream.Msg, rejected []rejectedMsg, err error) {
	err = p.insertRetrying(ctx, s, len(msgs), whole)
	if err == nil {
		return msgs, nil, nil
	}
	if !isContentError(err) || ctx.Err() != nil {
		return nil, nil, err
	}
	if len(msgs) == 1 {
		return nil, []rejectedMsg{{msgs[0], err}}, nil
	}
	// Bisect: each half is decoded afresh (decoding succeeded once, so it
	// does again) and written on its own; only the halves that keep failing
	// are split further, so n messages with one bad row cost about 2·log2(n)
	// inserts.
	p.w.log.Warn().Err(err).Str("stream", p.stream).Int("messages", len(msgs)).Msg("batch rejected for its content, splitting it")
	half := len(msgs) / 2
	for _, part := range [][]jetstream.Msg{msgs[:half], msgs[half:]} {
		sub := p.newSink()
		decoded := make([]jetstream.Msg, 0, len(part))
		for _, msg := range part {
			var derr error
			if ms, ok := sub.(msgSink); ok {
				derr = ms.addMsg(msg)
			} else {
				derr = sub.add(msg.Data())
			}
			if derr != nil {
				// Decoded once already, so this cannot happen; if it does,
				// the message is as unwritable as a rejected one.
				rejected = append(rejected, rejectedMsg{msg, derr})
				continue
			}
			decoded = append(decoded, msg)
		}
		if len(decoded) == 0 {
			continue
		}
		w, r, err := p.write(ctx, decoded, sub, whole)
		if err != nil {
			return nil, nil, err
		}
		written = append(written, w...)
		rejected = append(rejected, r...)
	}
	return written, rejected, nil
}

// insertRetrying inserts what s holds. It retries an outage until ctx ends,
// and a content rejection ContentRetries times, returning the last error.
// Meanwhile it extends the ack deadline of the whole batch.
func (p *pipeline) insertRetrying(ctx context.Context, s sink, messages int, whole []jetstream.Msg) error {
	cfg := p.w.cfg
	b := backoff.NewExponentialBackOff()
	b.InitialInterval, b.MaxInterval, b.MaxElapsedTime = 100*time.Millisecond, cfg.RetryMax, 0
	b.Reset()
	// Extending the ack deadline of held messages keeps JetStream from
	// redelivering them to another writer while this one waits for
	// ClickHouse.
	progressEvery := cfg.AckWait / 3
	lastProgress := time.Now()
	observe := func(table string, rows int, took time.Duration) {
		p.w.m.rows.WithLabelValues(table).Add(float64(rows))
		p.w.m.insertTime.WithLabelValues(table).Observe(took.Seconds())
	}
	contentFailures := 0
	for attempt := 1; ; attempt++ {
		ictx, cancel := context.WithTimeout(ctx, progressEvery)
		err := s.insert(ictx, p.w.conn, observe)
		cancel()
		if err == nil {
			if attempt > 1 {
				p.w.log.Info().Str("stream", p.stream).Int("attempts", attempt).Msg("insert succeeded after retries")
			}
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("chwriter.flush %s: %w (last insert error: %v)", p.label, ctx.Err(), err)
		}
		if isContentError(err) {
			contentFailures++
			if contentFailures >= cfg.ContentRetries {
				return err
			}
		} else {
			contentFailures = 0
		}
		p.setErr(nil, err)
		p.w.m.retries.WithLabelValues(p.label).Inc()
		wait := min(b.NextBackOff(), progressEvery)
		p.w.log.Warn().Err(err).Str("stream", p.stream).Int("attempt", attempt).Int("messages", messages).
			Dur("retry_in", wait).Msg("insert failed, retrying the same batch")
		select {
		case <-ctx.Done():
			return fmt.Errorf("chwriter.flush %s: %w (last insert error: %v)", p.label, ctx.Err(), err)
		case <-time.After(wait):
		}
		if time.Since(lastProgress) >= progressEvery {
			for _, msg := range whole {
				_ = msg.InProgress()
			}
			lastProgress = time.Now()
		}
	}
}

// markDirty records months of outcomes_daily to rebuild.
func (w *Writer) markDirty(months []time.Time) {
	w.dirtyMu.Lock()
	defer w.dirtyMu.Unlock()
	for _, m := range months {
		m = m.UTC()
		w.dirty[time.Date(m.Year(), m.Month(), 1, 0, 0, 0, 0, time.UTC)] = true
	}
}

// rollupLoop rebuilds the stale months of outcomes_daily every RollupEvery.
// A month that fails stays stale and is tried again next time.
func (w *Writer) rollupLoop(ctx context.Context, stopping <-chan struct{}) {
	t := time.NewTicker(w.cfg.RollupEvery)
	defer t.Stop()
	for {
		select {
		case <-stopping:
			return
		case <-t.C:
		}
		if err := w.RebuildStale(ctx); err != nil && ctx.Err() == nil {
			w.log.Warn().Err(err).Msg("rollup rebuild failed; will retry")
		}
	}
}

// RebuildStale rebuilds, in outcomes_daily, every month the writer has
// written outcomes for since its last rebuild.
func (w *Writer) RebuildStale(ctx context.Context) error {
	w.dirtyMu.Lock()
	months := make([]time.Time, 0, len(w.dirty))
	for m := range w.dirty {
		months = append(months, m)
	}
	clear(w.dirty)
	w.dirtyMu.Unlock()
	if len(months) == 0 {
		return nil
	}
	start := time.Now()
	if err := w.rebuild(ctx, start, months); err != nil {
		w.markDirty(months)
		return fmt.Errorf("chwriter.RebuildStale: %w", err)
	}
	w.m.rollupRebuilds.Inc()
	w.log.Debug().Int("months", len(months)).Dur("took", time.Since(start)).Msg("rollups rebuilt")
	return nil
}

// rebuild rebuilds months through the writer's own connection, or on a
// cluster on each shard's own tables. A shard that fails leaves the months
// stale: they are rebuilt again everywhere next time, which changes
// nothing where they were already right.
func (w *Writer) rebuild(ctx context.Context, now time.Time, months []time.Time) error {
	w.rebuildMu.Lock()
	defer w.rebuildMu.Unlock()
	if len(w.cfg.RollupShards) == 0 {
		return chstore.RebuildRollups(ctx, w.conn, now, months...)
	}
	for len(w.shards) < len(w.cfg.RollupShards) {
		d := w.cfg.RollupShards[len(w.shards)]
		conn, err := chstore.Connect(ctx, d, d.Database)
		if err != nil {
			return fmt.Errorf("shard %s: %w", d, err)
		}
		w.shards = append(w.shards, conn)
	}
	var errs []error
	for i, conn := range w.shards {
		if err := chstore.RebuildRollupsOf(ctx, conn, chstore.ShardLocal, now, months...); err != nil {
			errs = append(errs, fmt.Errorf("shard %s: %w", w.cfg.RollupShards[i], err))
		}
	}
	return errors.Join(errs...)
}
