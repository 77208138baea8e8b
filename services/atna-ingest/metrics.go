package atnaingest

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Rejection reasons (label "reason" of messages_rejected_total; each also
// begins the reason of the message's dead letter).
const (
	reasonSyslog    = "syslog"     // not a syslog message (RFC 5424 or BSD)
	reasonXML       = "xml"        // the MSG is not well-formed XML (or JSON), or a value has the wrong type
	reasonDoctype   = "doctype"    // a DOCTYPE or entity declaration: refused, never expanded
	reasonTooDeep   = "too_deep"   // nesting over the parser's limit
	reasonTooLarge  = "too_large"  // a frame or datagram over HINSCORE_ATNA_MAX_FRAME, or a value over the parser's limit
	reasonNotAudit  = "not_audit"  // well-formed, but not an AuditMessage (nor a FHIR AuditEvent)
	reasonMapping   = "mapping"    // an audit the mapping cannot turn into an exchange
	reasonBadLength = "bad_length" // a frame whose length lies, or no octet counting: the connection is closed
	reasonSlow      = "slow"       // a frame not complete within READ_TIMEOUT + size/MIN_RATE
	reasonTLS       = "tls"        // the TLS handshake failed; also "wrong_network", "client_cert" (ingest.Refused*)
	// A connection over a connection limit is counted under the limit's
	// name: ingest.RefusedMaxConns ("max_conns"), RefusedListener
	// ("max_conns_listener") or RefusedRemote ("max_conns_remote").
	reasonPublish     = "publish" // not stored (no PubAck): a stream connection is closed, a datagram is lost
	formatATNA        = "atna"
	stageATNAIngest   = "atna-ingest"
	transportStream   = "stream"
	transportDatagram = "udp"
	transportImport   = "import" // records of captured files (Import)
)

type metrics struct {
	received  *prometheus.CounterVec
	stored    *prometheus.CounterVec
	events    *prometheus.CounterVec
	rejected  *prometheus.CounterVec
	lost      *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	openConns *prometheus.GaugeVec
	bytes     *prometheus.CounterVec
}

// netMetrics are a listener's children of the metrics, looked up once.
type netMetrics struct {
	received, bytes, stored, events, publishFailed, lost prometheus.Counter
	latency                                              prometheus.Observer
}

func (m *metrics) forNetwork(network, transport string) netMetrics {
	return netMetrics{
		received:      m.received.WithLabelValues(network, transport),
		bytes:         m.bytes.WithLabelValues(network, transport),
		stored:        m.stored.WithLabelValues(network),
		events:        m.events.WithLabelValues(network),
		publishFailed: m.rejected.WithLabelValues(network, reasonPublish),
		lost:          m.lost.WithLabelValues(network),
		latency:       m.latency.WithLabelValues(network),
	}
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	const ns = "hinscore_atna"
	m := &metrics{
		received: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "messages_received_total",
			Help: "Syslog messages received (frames and datagrams)."}, []string{"network", "transport"}),
		stored: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "messages_stored_total",
			Help: "Audit messages whose events are all stored in EVENTS (PubAck)."}, []string{"network"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "events_stored_total",
			Help: "Events stored in EVENTS (PubAck)."}, []string{"network"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "messages_rejected_total",
			Help: "Input refused (to the DLQ when it has bytes) or not stored, by reason."}, []string{"network", "reason"}),
		lost: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "datagrams_lost_total",
			Help: "UDP messages neither stored nor dead-lettered (the bus did not acknowledge): UDP has no retry."}, []string{"network"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: "store_latency_seconds",
			Help:    "From message read to its last PubAck.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}, []string{"network"}),
		openConns: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "open_connections",
			Help: "Open syslog stream connections."}, []string{"network"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "received_bytes_total",
			Help: "Bytes of the syslog messages received."}, []string{"network", "transport"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.received, m.stored, m.events, m.rejected, m.lost, m.latency, m.openConns, m.bytes} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("atnaingest metrics: %w", err)
		}
	}
	return m, nil
}
