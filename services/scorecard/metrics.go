package scorecard

import (
	"github.com/hinscore/hinscore/services/lib/service"

	"github.com/prometheus/client_golang/prometheus"
)

// Values of the result label of runs_total.
const (
	resultSuccess = "success"
	resultFailure = "failure"
)

type metrics struct {
	runs        *prometheus.CounterVec // result
	duration    prometheus.Histogram
	lastSuccess prometheus.Gauge
	cards       prometheus.Counter
	closed      prometheus.Counter
	// Feed health of each network's latest day (feedhealth.go), set by
	// every successful run.
	feedScore  *prometheus.GaugeVec // network
	feedLine   *prometheus.GaugeVec // network, feed
	feedGaps   *prometheus.GaugeVec // network, feed
	feedSilent *prometheus.GaugeVec // network, feed
	// The cross-network completeness of each network's latest card, and
	// its flag "lacks its own refusals" (1 or 0).
	exchangeScore, lacksRefusals *prometheus.GaugeVec // network
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	const ns, sub = "hinscore", "scorecard"
	m := &metrics{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "runs_total", Help: "Scorecard runs (build of every granularity and write), by result."}, []string{"result"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub,
			Name: "run_duration_seconds", Help: "Time of one run, successful or not.",
			// 10 ms to about 3 minutes: a run scans every outcome.
			Buckets: prometheus.ExponentialBuckets(0.01, 3, 10)}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "last_success_timestamp_seconds", Help: "Unix time at which the last successful run finished; alert on its age."}),
		cards: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "cards_written_total", Help: "Scorecard files written by successful runs."}),
		closed: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "cards_closed_total", Help: "Cards of closed periods newly stored in the scorecards table or published by a run."}),
		feedScore: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "feed_health_score", Help: "Feed health of the network's latest day so far: received / (received + known missing); alert when it drops."}, []string{"network"}),
		feedLine: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "feed_score", Help: "Feed health of one feed connection on the network's latest day so far."}, []string{"network", "feed"}),
		feedGaps: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "feed_sequence_gaps", Help: "Sequence numbers (MSH-13, syslog sequenceId) a feed skipped on the network's latest day so far."}, []string{"network", "feed"}),
		feedSilent: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "feed_silent_hours", Help: "Hours of the network's latest day a feed was silent against its own weekly pattern."}, []string{"network", "feed"}),
		exchangeScore: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "exchange_completeness", Help: "Cross-network completeness of the network's latest card: of the exchanges with other networks that their feeds carried, the share its own feed carried too (lowest side and outcome group)."}, []string{"network"}),
		lacksRefusals: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "lacks_own_refusals", Help: "1 when the network's latest card flags its feed as systematically lacking its own refusals (seen by the requesters' networks), else 0."}, []string{"network"}),
	}
	var err error
	m.runs = service.Register(reg, m.runs, &err)
	m.duration = service.Register(reg, m.duration, &err)
	m.lastSuccess = service.Register(reg, m.lastSuccess, &err)
	m.cards = service.Register(reg, m.cards, &err)
	m.closed = service.Register(reg, m.closed, &err)
	m.feedScore = service.Register(reg, m.feedScore, &err)
	m.feedLine = service.Register(reg, m.feedLine, &err)
	m.feedGaps = service.Register(reg, m.feedGaps, &err)
	m.feedSilent = service.Register(reg, m.feedSilent, &err)
	m.exchangeScore = service.Register(reg, m.exchangeScore, &err)
	m.lacksRefusals = service.Register(reg, m.lacksRefusals, &err)
	if err != nil {
		return nil, err
	}
	// Create both series up front so an alert on failures sees a zero, not
	// a gap, before the first failure.
	m.runs.WithLabelValues(resultSuccess)
	m.runs.WithLabelValues(resultFailure)
	return m, nil
}
