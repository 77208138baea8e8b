package scorecard

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
	"github.com/hinscore/hinscore/services/service"
)

// Service rebuilds the scorecards of every network and configured
// granularity on a fixed interval and rewrites their files. It implements
// service.Component.
type Service struct {
	cfg   ServiceConfig
	conn  driver.Conn
	log   zerolog.Logger
	clock service.Clock
	m     *metrics

	// runMu keeps runs from overlapping: the loop's and direct RunOnce
	// calls would otherwise race to rename the same files.
	runMu sync.Mutex

	mu       sync.Mutex
	started  bool
	stopped  bool
	stop     chan struct{} // closed by the first Shutdown
	done     chan struct{} // closed when the loop has returned
	abandon  context.CancelFunc
	stopOnce sync.Once
}

// NewService returns a stopped service; Start runs it. Its metrics are
// registered on reg.
func NewService(cfg ServiceConfig, conn driver.Conn, log zerolog.Logger, reg prometheus.Registerer, clock service.Clock) (*Service, error) {
	var errs []error
	if err := cfg.validate(nil); err != nil {
		errs = append(errs, err)
	}
	if conn == nil {
		errs = append(errs, errors.New("conn: nil"))
	}
	if reg == nil {
		errs = append(errs, errors.New("reg: nil"))
	}
	if clock == nil {
		errs = append(errs, errors.New("clock: nil"))
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
		cfg: cfg, conn: conn, log: log, clock: clock, m: m,
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
	ev.Int("cards", total).Int("networks", networks).Dur("duration", end.Sub(start)).Str("out", s.cfg.Out).Msg("scorecards written")
	return nil
}

// buildAndWrite returns the number of cards of each granularity (in
// cfg.Granularities order) and the number of distinct networks.
func (s *Service) buildAndWrite(ctx context.Context, now time.Time) ([]int, int, error) {
	counts := make([]int, len(s.cfg.Granularities))
	var all []*hinscorev1.Scorecard
	networks := map[string]bool{}
	for i, g := range s.cfg.Granularities {
		cards, err := Build(ctx, s.conn, Query{Granularity: g}, now)
		if err != nil {
			return nil, 0, err
		}
		counts[i] = len(cards)
		for _, c := range cards {
			networks[c.GetNetwork()] = true
		}
		all = append(all, cards...)
	}
	// An abandoned run writes nothing more.
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	if err := WriteFiles(s.cfg.Out, all); err != nil {
		return nil, 0, err
	}
	return counts, len(networks), nil
}
