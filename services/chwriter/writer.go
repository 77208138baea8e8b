// Package chwriter moves ExchangeEvents and Outcomes from JetStream into
// ClickHouse: it batches by rows and by time, inserts with explicit column
// lists, and acknowledges a message only once its rows are written, so a
// crash or a ClickHouse outage loses nothing (re-written rows collapse in
// the ReplacingMergeTree tables).
package chwriter

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/cenkalti/backoff/v4"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/hinscore/hinscore/services/bus"
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
}

// New returns a writer; nothing happens until Start. reg may be nil (the
// metrics are then kept but not exported).
func New(cfg Config, js jetstream.JetStream, conn driver.Conn, log zerolog.Logger, reg prometheus.Registerer) (*Writer, error) {
	if err := cfg.validate(nil); err != nil {
		return nil, fmt.Errorf("chwriter.New: %w", err)
	}
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
	w := &Writer{cfg: cfg, js: js, conn: conn, log: log, m: m}
	w.pipes = []*pipeline{
		w.newPipeline(bus.StreamEvents, "events", &eventRows{}),
		w.newPipeline(bus.StreamOutcomes, "outcomes", &outcomeRows{}),
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
	sink     sink
	held     []jetstream.Msg
	firstAt  time.Time // when the oldest held message arrived

	mu       sync.Mutex
	cons     jetstream.Consumer
	waitErr  error // why the pipeline is not consuming yet
	flushErr error // the last insert failure, until one succeeds
}

func (w *Writer) newPipeline(stream, label string, s sink) *pipeline {
	return &pipeline{
		w: w, stream: stream, label: label, sink: s,
		consumer: w.cfg.Consumer + "_" + label,
		waitErr:  fmt.Errorf("chwriter: waiting for stream %s", stream),
	}
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
// oldest message has waited FlushInterval. While an insert fails it retries
// the same batch and pulls nothing more.
func (p *pipeline) run(ctx context.Context, stopping <-chan struct{}) {
	cons, err := p.connect(ctx)
	if err != nil {
		return
	}
	p.mu.Lock()
	p.cons, p.waitErr = cons, nil
	p.mu.Unlock()
	cfg := p.w.cfg
	for {
		select {
		case <-stopping:
			return
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
			batch, err := cons.Fetch(min(cfg.BatchRows-len(p.held), fetchChunk), jetstream.FetchMaxWait(wait))
			if err != nil {
				p.w.log.Warn().Err(err).Str("stream", p.stream).Msg("pull failed")
				p.pause(stopping, time.Second)
				continue
			}
			for msg := range batch.Messages() {
				p.take(ctx, msg)
			}
			if err := batch.Error(); err != nil {
				p.w.log.Warn().Err(err).Str("stream", p.stream).Msg("pull ended with an error")
				p.pause(stopping, 100*time.Millisecond)
			}
		}
		if len(p.held) >= cfg.BatchRows || (len(p.held) > 0 && !time.Now().Before(p.firstAt.Add(cfg.FlushInterval))) {
			if err := p.flush(ctx); err != nil {
				return // cancelled by Shutdown, which writes the batch itself
			}
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
	err := p.sink.add(msg.Data())
	if err == nil {
		if len(p.held) == 0 {
			p.firstAt = time.Now()
		}
		p.held = append(p.held, msg)
		p.w.m.heldMessages.WithLabelValues(p.label).Set(float64(len(p.held)))
		return
	}
	log := p.w.log.With().Str("subject", msg.Subject()).Err(err).Logger()
	dl := bus.DeadLetter{Stage: Stage, Network: bus.NetworkOfSubject(msg.Subject()), Reason: err.Error(), Data: msg.Data()}
	if derr := bus.PublishDLQ(ctx, p.w.js, dl); derr != nil {
		// Not termed: JetStream redelivers it and the DLQ is tried again.
		log.Error().AnErr("dlq_error", derr).Msg("undecodable message, DLQ publish failed")
		_ = msg.NakWithDelay(p.w.cfg.AckWait / 4)
		return
	}
	if terr := msg.Term(); terr != nil {
		log.Warn().AnErr("term_error", terr).Msg("dead letter stored, term failed (it will come back and be dead-lettered again)")
	}
	p.w.m.dlq.WithLabelValues(p.label).Inc()
	log.Warn().Msg("undecodable message sent to the DLQ")
}

// flush writes the held batch, retrying with capped exponential backoff until
// it succeeds or ctx ends, and then acks every message of it. On error the
// batch stays held and nothing of it is acked.
func (p *pipeline) flush(ctx context.Context) error {
	if len(p.held) == 0 {
		return nil
	}
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
	for attempt := 1; ; attempt++ {
		ictx, cancel := context.WithTimeout(ctx, progressEvery)
		err := p.sink.insert(ictx, p.w.conn, observe)
		cancel()
		if err == nil {
			if attempt > 1 {
				p.w.log.Info().Str("stream", p.stream).Int("attempts", attempt).Msg("insert succeeded after retries")
			}
			break
		}
		if ctx.Err() != nil {
			return fmt.Errorf("chwriter.flush %s: %w (last insert error: %v)", p.label, ctx.Err(), err)
		}
		p.setErr(nil, err)
		p.w.m.retries.WithLabelValues(p.label).Inc()
		wait := min(b.NextBackOff(), progressEvery)
		p.w.log.Warn().Err(err).Str("stream", p.stream).Int("attempt", attempt).Int("messages", len(p.held)).
			Dur("retry_in", wait).Msg("insert failed, retrying the same batch")
		select {
		case <-ctx.Done():
			return fmt.Errorf("chwriter.flush %s: %w (last insert error: %v)", p.label, ctx.Err(), err)
		case <-time.After(wait):
		}
		if time.Since(lastProgress) >= progressEvery {
			for _, msg := range p.held {
				_ = msg.InProgress()
			}
			lastProgress = time.Now()
		}
	}
	var ackErrs int
	for _, msg := range p.held {
		// A lost ack only means a redelivery, which the tables absorb.
		if err := msg.Ack(); err != nil {
			ackErrs++
		}
	}
	if ackErrs > 0 {
		p.w.log.Warn().Int("failed", ackErrs).Str("stream", p.stream).Msg("acks not sent; those messages will be written again")
	}
	p.w.m.batchSize.WithLabelValues(p.label).Observe(float64(len(p.held)))
	p.w.m.heldMessages.WithLabelValues(p.label).Set(0)
	p.setErr(nil, nil)
	p.sink.reset()
	clear(p.held)
	p.held = p.held[:0]
	return nil
}
