package linker

import (
	"fmt"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
	"github.com/hinscore/hinscore/proto/outcomeclass"
)

// metrics are the linker's Prometheus series (namespace hinscore_linker).
type metrics struct {
	events      *prometheus.CounterVec // partition
	outcomes    *prometheus.CounterVec // class
	ignored     *prometheus.CounterVec // reason
	lateAnswers prometheus.Counter
	pending     *prometheus.GaugeVec // partition
	lag         *prometheus.GaugeVec // partition
	caughtUp    *prometheus.GaugeVec // partition
	restarts    prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	const ns = "hinscore_linker"
	m := &metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "events_total",
			Help: "EVENTS messages processed, by partition (replays included).",
		}, []string{"partition"}),
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "outcomes_total",
			Help: "Outcome versions published and acknowledged by JetStream, by class.",
		}, []string{"class"}),
		ignored: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "ignored_events_total",
			Help: "Events that changed no chain: duplicate, after_close (straggler of a compacted chain), unlinkable (no correlation key), undecodable (sent to DLQ), notification.",
		}, []string{"reason"}),
		lateAnswers: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Name: "late_answers_total",
			Help: "Final answers that came after their request was declared unanswered.",
		}),
		pending: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: ns, Name: "pending_chains",
			Help: "Chains not decided yet (requests open, answers waiting for their request), by partition.",
		}, []string{"partition"}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: ns, Name: "watermark_lag_seconds",
			Help: "Wall clock minus the oldest network watermark of the partition.",
		}, []string{"partition"}),
		caughtUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: ns, Name: "caught_up",
			Help: "1 when the partition's consumer has read everything its stream held (replay done).",
		}, []string{"partition"}),
		restarts: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Name: "consumer_restarts_total",
			Help: "Partition consumers restarted after an error (each restart replays its partition).",
		}),
	}
	for _, c := range []prometheus.Collector{m.events, m.outcomes, m.ignored, m.lateAnswers, m.pending, m.lag, m.caughtUp, m.restarts} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("linker metrics: %w", err)
		}
	}
	return m, nil
}

// partitionMetrics is one partition's view of the series, fed from the pure
// join's counters by difference.
type partitionMetrics struct {
	m       *metrics
	label   string
	last    joinStats
	events  prometheus.Counter
	pending prometheus.Gauge
	lag     prometheus.Gauge
	caught  prometheus.Gauge
}

func (m *metrics) partition(p uint32) *partitionMetrics {
	l := strconv.FormatUint(uint64(p), 10)
	return &partitionMetrics{
		m: m, label: l,
		events:  m.events.WithLabelValues(l),
		pending: m.pending.WithLabelValues(l),
		lag:     m.lag.WithLabelValues(l),
		caught:  m.caughtUp.WithLabelValues(l),
	}
}

// update publishes what the join counted since the last update.
func (pm *partitionMetrics) update(j *chains, nowMs int64, caughtUp bool) {
	s := j.stats
	pm.events.Add(float64(s.events - pm.last.events))
	pm.m.ignored.WithLabelValues("duplicate").Add(float64(s.duplicates - pm.last.duplicates))
	pm.m.ignored.WithLabelValues("after_close").Add(float64(s.stragglers - pm.last.stragglers))
	pm.m.ignored.WithLabelValues("unlinkable").Add(float64(s.unlinkable - pm.last.unlinkable))
	pm.m.ignored.WithLabelValues("notification").Add(float64(s.notifications - pm.last.notifications))
	pm.m.lateAnswers.Add(float64(s.lateAnswers - pm.last.lateAnswers))
	pm.last = s
	pm.pending.Set(float64(j.pending))
	if wm, ok := j.MinWatermark(); ok {
		pm.lag.Set(float64(nowMs-wm) / 1000)
	}
	if caughtUp {
		pm.caught.Set(1)
	} else {
		pm.caught.Set(0)
	}
}

func (m *metrics) published(c hinscorev1.OutcomeClass) {
	m.outcomes.WithLabelValues(outcomeclass.Name(c)).Inc()
}
