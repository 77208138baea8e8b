package mllpingest

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Rejection reasons (label "reason").
const (
	reasonParse    = "parse"     // not a readable HL7 message
	reasonMapping  = "mapping"   // readable, but a field the mapping needs is bad
	reasonTooLarge = "too_large" // frame over MaxFrameBytes
	// reasonBatchTooLarge: a batch frame of more than MaxBatch messages,
	// refused whole.
	reasonBatchTooLarge = "batch_too_large"
	reasonJunk          = "junk"    // a run of maxKept bytes outside MLLP frames
	reasonPublish       = "publish" // JetStream did not acknowledge: the sender must re-send
	// A connection over a connection limit is counted under the limit's
	// name: ingest.RefusedMaxConns ("max_conns", answered AE first),
	// RefusedListener ("max_conns_listener") or RefusedRemote
	// ("max_conns_remote"), closed at once.
	reasonBadFrame  = "bad_frame" // end block not followed by CR
	reasonCutShort  = "cut_short" // connection closed inside a frame
	reasonSlow      = "slow"      // frame not complete within ReadTimeout + size/MinRate
	reasonTLS       = "tls"       // TLS handshake failed; also "wrong_network", "client_cert" (ingest.Refused*)
	formatHL7v2     = "hl7v2"
	stageMLLPIngest = "mllp-ingest"
)

type metrics struct {
	received   *prometheus.CounterVec
	accepted   *prometheus.CounterVec
	rejected   *prometheus.CounterVec
	ackLatency *prometheus.HistogramVec
	openConns  *prometheus.GaugeVec
	bytes      *prometheus.CounterVec
	outside    *prometheus.CounterVec
	dqFlags    *prometheus.CounterVec
	duplicates *prometheus.CounterVec
}

// connMetrics are a connection's children of the metrics, looked up once
// rather than by label for every message.
type connMetrics struct {
	received, bytes, accepted, publishFailed prometheus.Counter
	ackLatency                               prometheus.Observer
}

func (m *metrics) forNetwork(network string) connMetrics {
	return connMetrics{
		received:      m.received.WithLabelValues(network),
		bytes:         m.bytes.WithLabelValues(network),
		accepted:      m.accepted.WithLabelValues(network),
		publishFailed: m.rejected.WithLabelValues(network, reasonPublish),
		ackLatency:    m.ackLatency.WithLabelValues(network),
	}
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	const ns = "hinscore_mllp"
	m := &metrics{
		received: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "messages_received_total",
			Help: "MLLP frames received."}, []string{"network"}),
		accepted: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "messages_accepted_total",
			Help: "Messages stored in EVENTS and acknowledged AA."}, []string{"network"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "messages_rejected_total",
			Help: "Messages answered AE/AR, or input dropped, by reason."}, []string{"network", "reason"}),
		ackLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: "ack_latency_seconds",
			Help:    "From frame read to reply written.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}, []string{"network"}),
		openConns: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "open_connections",
			Help: "Open MLLP connections."}, []string{"network"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "received_bytes_total",
			Help: "Payload bytes of the frames received."}, []string{"network"}),
		outside: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "bytes_outside_frame_total",
			Help: "Bytes received outside MLLP frames, discarded (CR and LF between frames not counted)."}, []string{"network"}),
		dqFlags: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "dq_flags_total",
			Help: "Messages stored with a data-quality flag (lib/domain/quality), by flag."}, []string{"network", "flag"}),
		duplicates: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "messages_duplicate_total",
			Help: "Messages acknowledged AA whose bytes EVENTS already held (a copy the feed sent again within the duplicate window; stored once), by feed connection."}, []string{"network", "feed"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.received, m.accepted, m.rejected, m.ackLatency, m.openConns, m.bytes, m.outside, m.dqFlags, m.duplicates} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("mllpingest metrics: %w", err)
		}
	}
	return m, nil
}
