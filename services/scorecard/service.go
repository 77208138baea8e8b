package scorecard

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"google.golang.org/protobuf/proto"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
	"github.com/hinscore/hinscore/services/lib/bus"
	"github.com/hinscore/hinscore/services/lib/chstore"
	"github.com/hinscore/hinscore/services/lib/service"
)

// Service rebuilds the scorecards of every network and configured
// granularity on a fixed interval and rewrites their files. It implements
// service.Component.
type Service struct {
	cfg   ServiceConfig
	conn  driver.Conn
	js    jetstream.JetStream // nil: cards are stored and written, not published
	log   zerolog.Logger
	clock service.Clock
	m     *metrics

	// runMu keeps runs from overlapping: the loop's and direct RunOnce
	// calls would otherwise race to rename the same files. It also guards
	// stored and published.
	runMu sync.Mutex
	// stored holds the closed periods (granularity/network/period) already
	// in the scorecards table with this formula version, by this service or
	// by the one-shot command, loaded from the table by the first run;
	// published those already on scorecards.<network>, loaded from the
	// SCORECARDS stream by the first run (nil without JetStream). They are
	// kept apart so that a card stored but not published (by the command,
	// or by a run whose publish failed) is published later and not stored
	// again.
	stored, published map[string]bool
	// closeDelay is the last run's delay between a period's end and its
	// close (the longest SLA + grace seen, plus CloseAfter), for the log.
	closeDelay time.Duration

	mu       sync.Mutex
	started  bool
	stopped  bool
	stop     chan struct{} // closed by the first Shutdown
	done     chan struct{} // closed when the loop has returned
	abandon  context.CancelFunc
	stopOnce sync.Once
}

// NewService returns a stopped service over deps.ClickHouse; Start runs
// it. With deps.JetStream, every closed card is also published (the
// operator's copy, protobuf) on scorecards.<network> (stream SCORECARDS);
// without, cards are stored and written but not published. Its metrics
// are registered on deps.Metrics; deps.Clock gives the time.
func NewService(cfg ServiceConfig, deps service.Deps) (*Service, error) {
	conn, log, reg, clock := deps.ClickHouse, deps.Log, deps.Metrics, deps.Clock
	var errs []error
	if err := cfg.validate(nil); err != nil {
		errs = append(errs, err)
	}
	if conn == nil {
		errs = append(errs, errors.New("deps.ClickHouse: nil conn"))
	}
	if reg == nil {
		errs = append(errs, errors.New("deps.Metrics: nil registerer"))
	}
	if clock == nil {
		errs = append(errs, errors.New("deps.Clock: nil clock"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("scorecard.NewService: %w", err)
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("scorecard.NewService: metrics: %w", err)
	}
	// The caller may change its slice later; the service keeps its own.
	cfg.Granularities = append([]string(nil), cfg.Granularities...)
	return &Service{
		cfg: cfg, conn: conn, js: deps.JetStream, log: log, clock: clock, m: m,
		stop: make(chan struct{}), done: make(chan struct{}),
	}, nil
}

// Start runs the first build right away in the background, then one every
// cfg.Every, and returns at once. Runs do not end when ctx does: a SIGTERM
// cancels ctx, and Shutdown then decides whether the run in progress may
// finish writing its files. Start after Shutdown is an error.
func (s *Service) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return errors.New("scorecard.Start: the service was shut down")
	}
	if s.started {
		return nil
	}
	s.started = true
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.abandon = cancel
	go s.loop(runCtx)
	s.log.Info().Dur("every", s.cfg.Every).Str("out", s.cfg.Out).Strs("periods", s.cfg.Granularities).Msg("scorecard service started")
	return nil
}

func (s *Service) loop(ctx context.Context) {
	defer close(s.done)
	t := time.NewTicker(s.cfg.Every)
	defer t.Stop()
	for {
		if err := s.RunOnce(ctx); err != nil {
			// The next tick retries; the failure shows in runs_total.
			s.log.Error().Err(err).Msg("scorecard run failed")
		}
		select {
		case <-s.stop:
			return
		case <-ctx.Done():
			return
		case <-t.C:
		}
		// When the tick and the stop arrive together select picks either;
		// a stop must win so that Shutdown does not wait for one more run.
		select {
		case <-s.stop:
			return
		default:
		}
	}
}

// Shutdown stops the periodic runs. A run in progress may finish writing
// its files until ctx ends; then it is abandoned (its queries are
// cancelled; files already renamed stay, the rest keep their previous
// version) and Shutdown returns ctx's error. Shutdown is safe before Start
// and more than once.
func (s *Service) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.stopped = true
	started, abandon := s.started, s.abandon
	s.stopOnce.Do(func() { close(s.stop) })
	s.mu.Unlock()
	if !started {
		return nil
	}
	select {
	case <-s.done:
		abandon() // releases the context; the loop is gone
		return nil
	case <-ctx.Done():
		abandon()
		return fmt.Errorf("scorecard.Shutdown: run in progress abandoned: %w", ctx.Err())
	}
}

// Ready reports whether ClickHouse answers.
func (s *Service) Ready(ctx context.Context) error {
	if err := s.conn.Ping(ctx); err != nil {
		return fmt.Errorf("scorecard.Ready: clickhouse: %w", err)
	}
	return nil
}

// RunOnce builds the cards of every configured granularity as of one
// instant and, when all builds succeeded, writes them. Building everything
// before writing anything keeps a failed query from leaving the day cards
// of this run next to the month cards of the previous one.
func (s *Service) RunOnce(ctx context.Context) error {
	s.runMu.Lock()
	defer s.runMu.Unlock()
	start := s.clock.Now()
	perGranularity, networks, err := s.buildAndWrite(ctx, start)
	end := s.clock.Now()
	s.m.duration.Observe(end.Sub(start).Seconds())
	if err != nil {
		s.m.runs.WithLabelValues(resultFailure).Inc()
		return fmt.Errorf("scorecard.RunOnce: %w", err)
	}
	total := 0
	ev := s.log.Info()
	for i, g := range s.cfg.Granularities {
		total += perGranularity[i]
		ev = ev.Int("cards_"+g, perGranularity[i])
	}
	s.m.runs.WithLabelValues(resultSuccess).Inc()
	s.m.cards.Add(float64(total))
	s.m.lastSuccess.Set(float64(end.UnixNano()) / 1e9)
	ev.Int("cards", total).Int("networks", networks).Dur("close_delay", s.closeDelay).Dur("duration", end.Sub(start)).Str("out", s.cfg.Out).Msg("scorecards written")
	return nil
}

// buildAndWrite returns the number of cards of each granularity (in
// cfg.Granularities order) and the number of distinct networks.
func (s *Service) buildAndWrite(ctx context.Context, now time.Time) ([]int, int, error) {
	if err := s.loadClosed(ctx); err != nil {
		return nil, 0, err
	}
	before, delay, err := closedBefore(ctx, s.conn, s.cfg.CloseAfter)
	if err != nil {
		return nil, 0, err
	}
	s.closeDelay = delay
	counts := make([]int, len(s.cfg.Granularities))
	var all []*hinscorev1.Scorecard
	toStore := map[string][]*hinscorev1.Scorecard{}   // granularity -> closed cards not yet stored
	toPublish := map[string][]*hinscorev1.Scorecard{} // granularity -> closed cards not yet published
	networks := map[string]bool{}
	checks, err := runChecks(ctx, s.conn, time.Time{}, time.Time{}, now)
	if err != nil {
		return nil, 0, err
	}
	for i, g := range s.cfg.Granularities {
		cards, err := build(ctx, s.conn, Query{Granularity: g, ClosedBefore: before}, now, checks)
		if err != nil {
			return nil, 0, err
		}
		counts[i] = len(cards)
		for _, c := range cards {
			networks[c.GetNetwork()] = true
			if !c.GetClosed() {
				continue
			}
			if !s.stored[closedKey(c)] {
				toStore[g] = append(toStore[g], c)
			}
			if s.published != nil && !s.published[closedKey(c)] {
				toPublish[g] = append(toPublish[g], c)
			}
		}
		all = append(all, cards...)
	}
	s.m.observeFeedHealth(all)
	// An abandoned run writes nothing more.
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	if err := WriteFiles(s.cfg.Out, all); err != nil {
		return nil, 0, err
	}
	// Every card is stored before any is published (the table is the
	// record, the stream the notice), and each is marked as soon as its
	// step succeeded, so that a failure halfway leaves the next run only
	// what is missing.
	delivered := map[string]bool{}
	for _, g := range s.cfg.Granularities {
		if err := chstore.InsertScorecards(ctx, s.conn, g, toStore[g]); err != nil {
			return nil, 0, fmt.Errorf("scorecard.Deliver: %w", err)
		}
		for _, c := range toStore[g] {
			s.stored[closedKey(c)] = true
			delivered[closedKey(c)] = true
		}
	}
	for _, g := range s.cfg.Granularities {
		for _, c := range toPublish[g] {
			if err := publish(ctx, s.js, g, c); err != nil {
				s.m.closed.Add(float64(len(delivered)))
				return nil, 0, err
			}
			s.published[closedKey(c)] = true
			delivered[closedKey(c)] = true
		}
	}
	s.m.closed.Add(float64(len(delivered)))
	return counts, len(networks), nil
}

func closedKey(c *hinscorev1.Scorecard) string {
	return c.GetGranularity() + "/" + c.GetNetwork() + "/" + c.GetPeriod()
}

// loadClosed reads, once, which periods a previous run (of this or another
// process, or the one-shot command) already stored with this formula
// version and, with JetStream, which it already published, so that a
// restart does not store or publish them again, and a card stored without
// being published is still published.
func (s *Service) loadClosed(ctx context.Context) error {
	if s.stored != nil {
		return nil
	}
	var published map[string]bool
	if s.js != nil {
		var err error
		if published, err = loadPublished(ctx, s.js); err != nil {
			return err
		}
	}
	rows, err := s.conn.Query(ctx, `SELECT DISTINCT granularity, network, period FROM scorecards
WHERE formula_version = ? AND match(scorecard_json, '"closed":\\s*true')`, FormulaVersion)
	if err != nil {
		return fmt.Errorf("closed periods: %w", err)
	}
	defer rows.Close()
	stored := map[string]bool{}
	for rows.Next() {
		var g, n, p string
		if err := rows.Scan(&g, &n, &p); err != nil {
			return fmt.Errorf("closed periods: %w", err)
		}
		stored[g+"/"+n+"/"+p] = true
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("closed periods: %w", err)
	}
	s.stored, s.published = stored, published
	return nil
}

// loadPublished reads the Nats-Msg-Id of every message on the SCORECARDS
// stream (headers only) and returns the granularity/network/period of those
// published with this formula version.
func loadPublished(ctx context.Context, js jetstream.JetStream) (map[string]bool, error) {
	published := map[string]bool{}
	stream, err := js.Stream(ctx, bus.StreamScorecards)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		// Nothing was published; the publishes will fail until the stream
		// exists, after the files are written, and be retried.
		return published, nil
	}
	if err != nil {
		return nil, fmt.Errorf("published cards: %w", err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("published cards: %w", err)
	}
	if info.State.Msgs == 0 {
		return published, nil
	}
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{bus.ScorecardSubject("*")}, HeadersOnly: true})
	if err != nil {
		return nil, fmt.Errorf("published cards: %w", err)
	}
	// Asking for no more than the messages left makes each fetch return as
	// soon as they are in rather than at its deadline.
	left := info.State.Msgs
	for {
		batch, err := cons.Fetch(int(min(left, 1000)), jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return nil, fmt.Errorf("published cards: %w", err)
		}
		got, last := 0, uint64(0)
		for msg := range batch.Messages() {
			got++
			if meta, err := msg.Metadata(); err == nil {
				last = meta.Sequence.Stream
			}
			// granularity/network/period/formula/generated_at_ms: network
			// and period never hold a slash (they name files), the formula
			// version does (scorecard/2).
			id := msg.Headers().Get(jetstream.MsgIDHeader)
			if parts := strings.SplitN(id, "/", 4); len(parts) == 4 && strings.HasPrefix(parts[3], FormulaVersion+"/") {
				published[parts[0]+"/"+parts[1]+"/"+parts[2]] = true
			}
		}
		if err := batch.Error(); err != nil {
			return nil, fmt.Errorf("published cards: %w", err)
		}
		left -= min(left, uint64(got))
		// got == 0: messages removed since Info (none are, the stream has
		// no limits); what was read is all there is.
		if last >= info.State.LastSeq || left == 0 || got == 0 {
			return published, nil
		}
	}
}

// closedBefore returns the instant a period must end by to be closed: the
// event time reached (Watermark) less the longest SLA + grace of any
// outcome stored (every request kind and network override the linker
// applied, as recorded on its outcomes) and less margin (CloseAfter: the
// linker's lateness and the pipeline's lag). A request is decided at the
// latest when event time passes its requested_at + SLA + grace, so no
// outcome of a closed period is still to come. Zero when there are no
// outcomes; delay is what was subtracted.
func closedBefore(ctx context.Context, conn driver.Conn, margin time.Duration) (before time.Time, delay time.Duration, err error) {
	var latest int64
	var longest uint64
	if err := conn.QueryRow(ctx, `SELECT max(requested_at_ms), max(sla_ms + grace_ms) FROM exchange_outcomes`).Scan(&latest, &longest); err != nil {
		return time.Time{}, 0, fmt.Errorf("scorecard: close: %w", err)
	}
	delay = time.Duration(longest)*time.Millisecond + margin
	if latest == 0 {
		return time.Time{}, delay, nil
	}
	return time.UnixMilli(latest).UTC().Add(-delay), delay, nil
}

// Watermark returns the event time the data has reached: the latest
// requested_at of any outcome (zero when there is none). Read from the
// table, not the FINAL view: every version of an outcome has the same
// requested_at, so duplicates cannot move it.
func Watermark(ctx context.Context, conn driver.Conn) (time.Time, error) {
	var ms int64
	if err := conn.QueryRow(ctx, `SELECT max(requested_at_ms) FROM exchange_outcomes`).Scan(&ms); err != nil {
		return time.Time{}, fmt.Errorf("scorecard.Watermark: %w", err)
	}
	if ms == 0 {
		return time.Time{}, nil
	}
	return time.UnixMilli(ms).UTC(), nil
}

// Deliver stores cards of one granularity in the scorecards table (the
// analyst copies) and, when js is not nil, publishes each network's
// operator copy (protobuf) on scorecards.<network> with a Nats-Msg-Id of
// granularity, network, period, formula and generation time, so that a
// retried publish is deduplicated.
func Deliver(ctx context.Context, conn driver.Conn, js jetstream.JetStream, granularity string, cards []*hinscorev1.Scorecard) error {
	if len(cards) == 0 {
		return nil
	}
	if err := chstore.InsertScorecards(ctx, conn, granularity, cards); err != nil {
		return fmt.Errorf("scorecard.Deliver: %w", err)
	}
	if js == nil {
		return nil
	}
	for _, c := range cards {
		if err := publish(ctx, js, granularity, c); err != nil {
			return err
		}
	}
	return nil
}

// publish sends the operator's copy of c on scorecards.<network>.
func publish(ctx context.Context, js jetstream.JetStream, granularity string, c *hinscorev1.Scorecard) error {
	b, err := proto.Marshal(OperatorCopy(c))
	if err != nil {
		return fmt.Errorf("scorecard.Deliver: %s %s: %w", c.GetNetwork(), c.GetPeriod(), err)
	}
	msg := nats.NewMsg(bus.ScorecardSubject(c.GetNetwork()))
	msg.Data = b
	msg.Header.Set(jetstream.MsgIDHeader, fmt.Sprintf("%s/%s/%s/%s/%d", granularity, c.GetNetwork(), c.GetPeriod(), c.GetFormulaVersion(), c.GetGeneratedAtMs()))
	if _, err := js.PublishMsg(ctx, msg); err != nil {
		return fmt.Errorf("scorecard.Deliver: publish %s %s: %w", c.GetNetwork(), c.GetPeriod(), err)
	}
	return nil
}
