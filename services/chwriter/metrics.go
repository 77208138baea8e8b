package chwriter

import (
	"github.com/hinscore/hinscore/services/lib/service"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	rows           *prometheus.CounterVec   // table
	insertTime     *prometheus.HistogramVec // table
	batchSize      *prometheus.HistogramVec // stream
	retries        *prometheus.CounterVec   // stream
	dlq            *prometheus.CounterVec   // stream
	pending        *prometheus.GaugeVec     // stream
	heldMessages   *prometheus.GaugeVec     // stream
	rollupRebuilds prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	const ns, sub = "hinscore", "chwriter"
	m := &metrics{
		rows: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "rows_inserted_total", Help: "Rows written to ClickHouse, by table."}, []string{"table"}),
		insertTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub,
			Name: "insert_duration_seconds", Help: "Time of one successful batch insert, by table.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12)}, []string{"table"}),
		batchSize: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub,
			Name: "batch_messages", Help: "Messages per written batch, by stream.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 10)}, []string{"stream"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "insert_retries_total", Help: "Failed batch inserts that were retried, by stream."}, []string{"stream"}),
		dlq: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "dlq_total", Help: "Messages sent to the DLQ (undecodable, or rejected by ClickHouse), by stream."}, []string{"stream"}),
		pending: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "consumer_pending", Help: "Messages in the stream not yet delivered to the writer (as of the last delivery)."}, []string{"stream"}),
		heldMessages: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "held_messages", Help: "Messages fetched and not yet written and acked, by stream."}, []string{"stream"}),
		rollupRebuilds: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "rollup_rebuilds_total", Help: "Successful rebuilds of the stale months of outcomes_daily."}),
	}
	var err error
	m.rows = service.Register(reg, m.rows, &err)
	m.insertTime = service.Register(reg, m.insertTime, &err)
	m.batchSize = service.Register(reg, m.batchSize, &err)
	m.retries = service.Register(reg, m.retries, &err)
	m.dlq = service.Register(reg, m.dlq, &err)
	m.pending = service.Register(reg, m.pending, &err)
	m.heldMessages = service.Register(reg, m.heldMessages, &err)
	m.rollupRebuilds = service.Register(reg, m.rollupRebuilds, &err)
	if err != nil {
		return nil, err
	}
	// Create every series up front so dashboards see zeros, not gaps.
	for _, t := range []string{tableEvents, tableOutcomes, tableSteps, tableDeadLetters} {
		m.rows.WithLabelValues(t)
	}
	for _, s := range []string{"events", "outcomes", "dlq"} {
		m.retries.WithLabelValues(s)
		m.dlq.WithLabelValues(s)
		m.heldMessages.WithLabelValues(s)
	}
	return m, nil
}
