package linker

import (
	"fmt"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
	"github.com/hinscore/hinscore/proto/outcomeclass"
	"github.com/hinscore/hinscore/services/linker/join"
)

// metrics are the linker's Prometheus series (namespace hinscore_linker).
type metrics struct {
	events          *prometheus.CounterVec // partition
	outcomes        *prometheus.CounterVec // class
	ignored         *prometheus.CounterVec // reason
	lateAnswers     prometheus.Counter
	orphans         *prometheus.CounterVec // partition
	overflows       *prometheus.CounterVec // partition
	pending         *prometheus.GaugeVec   // partition
	remembered      *prometheus.GaugeVec   // partition
	lag             *prometheus.GaugeVec   // partition
	caughtUp        *prometheus.GaugeVec   // partition
	checkpointAge   *prometheus.GaugeVec   // partition
	checkpointBytes *prometheus.GaugeVec   // partition
	checkpoints     *prometheus.CounterVec // result
	idleMoves       prometheus.Counter
	windowJoins     prometheus.Counter
	owned           prometheus.Gauge
	leases          *prometheus.CounterVec // event
	restarts        prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := newCollectors()
	for _, c := range []prometheus.Collector{m.events, m.outcomes, m.ignored, m.lateAnswers, m.orphans, m.overflows,
		m.pending, m.remembered, m.lag, m.caughtUp, m.checkpointAge, m.checkpointBytes, m.checkpoints, m.idleMoves,
		m.windowJoins, m.owned, m.leases, m.restarts} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("linker metrics: %w", err)
		}
	}
	return m, nil
}

// newCollectors makes the series, each written out whole (name, help,
// labels) so that the deployment's checks read them from this source.
func newCollectors() *metrics {
	const ns = "hinscore_linker"
	byPartition := []string{"partition"}
	m := &metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "events_total",
			Help: "EVENTS messages processed, by partition (replays included).",
		}, byPartition),
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "outcomes_total",
			Help: "Outcome versions published and acknowledged by JetStream, by network and class.",
		}, []string{"network", "class"}),
		ignored: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "ignored_events_total",
			Help: "Events that changed no chain: duplicate, after_close (straggler of a compacted chain), unlinkable (no correlation key), undecodable (sent to DLQ), notification.",
		}, []string{"reason"}),
		lateAnswers: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Name: "late_answers_total",
			Help: "Final answers that came after their request was declared unanswered.",
		}),
		orphans: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "orphans_total",
			Help: "Answers declared orphan (their request never came within the lateness), by partition.",
		}, byPartition),
		overflows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "overflow_closures_total",
			Help: "Pending chains closed because the partition reached MaxPending, by partition.",
		}, byPartition),
		pending: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: ns, Name: "pending_chains",
			Help: "Chains not decided yet (requests open, answers waiting for their request), by partition.",
		}, byPartition),
		remembered: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: ns, Name: "remembered_chains",
			Help: "Chains in memory, pending or kept for late answers and stragglers, by partition.",
		}, byPartition),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: ns, Name: "watermark_lag_seconds",
			Help: "Wall clock minus the oldest network watermark of the partition.",
		}, byPartition),
		caughtUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: ns, Name: "caught_up",
			Help: "1 when the partition's consumer has read everything its stream held (replay done).",
		}, byPartition),
		checkpointAge: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: ns, Name: "checkpoint_age_seconds",
			Help: "Seconds since the partition's last checkpoint was stored (since it was loaded, before the first).",
		}, byPartition),
		checkpointBytes: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: ns, Name: "checkpoint_bytes",
			Help: "Size of the partition's last checkpoint.",
		}, byPartition),
		checkpoints: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "checkpoints_total",
			Help: "Checkpoints written (result ok or error) and read (loaded, unreadable).",
		}, []string{"result"}),
		idleMoves: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Name: "idle_advances_total",
			Help: "Watermark moves made by the idle rule and recorded for replay.",
		}),
		windowJoins: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Name: "window_joins_total",
			Help: "Events with a windowed key that joined the chain of a neighbouring window (a cross-community transaction's records across a window boundary; replays included).",
		}),
		owned: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Name: "owned_partitions",
			Help: "Partitions this replica holds the lease of and consumes.",
		}),
		leases: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "lease_events_total",
			Help: "Partition leases acquired, released (handed over) and lost (taken by another replica or not renewed in time).",
		}, []string{"event"}),
		restarts: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Name: "consumer_restarts_total",
			Help: "Partition consumers restarted after an error (each restart resumes from the checkpoint).",
		}),
	}
	return m
}

// partitionMetrics is one partition's view of the series, fed from the pure
// join's counters by difference.
type partitionMetrics struct {
	m         *metrics
	label     string
	last      join.Stats
	events    prometheus.Counter
	orphans   prometheus.Counter
	overflows prometheus.Counter
	pending   prometheus.Gauge
	chains    prometheus.Gauge
	lag       prometheus.Gauge
	caught    prometheus.Gauge
	cpAge     prometheus.Gauge
	cpBytes   prometheus.Gauge
}

func (m *metrics) partition(p uint32) *partitionMetrics {
	l := strconv.FormatUint(uint64(p), 10)
	return &partitionMetrics{
		m: m, label: l,
		events:    m.events.WithLabelValues(l),
		orphans:   m.orphans.WithLabelValues(l),
		overflows: m.overflows.WithLabelValues(l),
		pending:   m.pending.WithLabelValues(l),
		chains:    m.remembered.WithLabelValues(l),
		lag:       m.lag.WithLabelValues(l),
		caught:    m.caughtUp.WithLabelValues(l),
		cpAge:     m.checkpointAge.WithLabelValues(l),
		cpBytes:   m.checkpointBytes.WithLabelValues(l),
	}
}

// update publishes what the join counted since the last update.
func (pm *partitionMetrics) update(j *join.Join, now, activeSince time.Time, caughtUp bool, checkpointAt time.Time) {
	s := j.Stats()
	pm.events.Add(float64(s.Events - pm.last.Events))
	pm.orphans.Add(float64(s.Orphans - pm.last.Orphans))
	pm.overflows.Add(float64(s.Overflows - pm.last.Overflows))
	pm.m.ignored.WithLabelValues("duplicate").Add(float64(s.Duplicates - pm.last.Duplicates))
	pm.m.ignored.WithLabelValues("after_close").Add(float64(s.Stragglers - pm.last.Stragglers))
	pm.m.ignored.WithLabelValues("unlinkable").Add(float64(s.Unlinkable - pm.last.Unlinkable))
	pm.m.ignored.WithLabelValues("notification").Add(float64(s.Notifications - pm.last.Notifications))
	pm.m.lateAnswers.Add(float64(s.LateAnswers - pm.last.LateAnswers))
	pm.m.windowJoins.Add(float64(s.WindowJoins - pm.last.WindowJoins))
	pm.last = s
	pm.pending.Set(float64(j.Pending()))
	pm.chains.Set(float64(j.ChainCount()))
	if wm, ok := j.LiveWatermark(now, activeSince, caughtUp); ok {
		pm.lag.Set(float64(now.UnixMilli()-wm) / 1000)
	}
	if caughtUp {
		pm.caught.Set(1)
	} else {
		pm.caught.Set(0)
	}
	if !checkpointAt.IsZero() {
		pm.cpAge.Set(time.Since(checkpointAt).Seconds())
	}
}

// drop removes the partition's gauges when this replica stops consuming it
// (another replica reports it from now on).
func (pm *partitionMetrics) drop() {
	for _, g := range []*prometheus.GaugeVec{pm.m.pending, pm.m.remembered, pm.m.lag, pm.m.caughtUp, pm.m.checkpointAge, pm.m.checkpointBytes} {
		g.DeleteLabelValues(pm.label)
	}
}

func (m *metrics) published(network string, c hinscorev1.OutcomeClass) {
	m.outcomes.WithLabelValues(network, outcomeclass.Name(c)).Inc()
}
