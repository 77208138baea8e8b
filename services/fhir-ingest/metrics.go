package fhiringest

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
	"github.com/hinscore/hinscore/services/lib/domain/quality"
)

// Rejection reasons (label "reason").
const (
	reasonSyntax      = "syntax"       // not JSON, or not a FHIR resource
	reasonInvalid     = "invalid"      // an exchange resource missing an element the mapping needs
	reasonNotExchange = "not_exchange" // a valid resource that is no exchange event
	reasonWrongType   = "wrong_type"   // resourceType other than the URL's
	reasonTooLarge    = "too_large"    // over MaxBodyBytes (after gunzip)
	reasonMediaType   = "media_type"   // unsupported Content-Type or Content-Encoding
	reasonMethod      = "method"       // PUT of a type that is only posted (Bundle) or not accepted
	reasonAuth        = "auth"         // missing or wrong token (401)
	reasonForbidden   = "forbidden"    // another network's token (403)
	reasonPublish     = "publish"      // JetStream did not acknowledge: the sender must re-send
	reasonConflict    = "conflict"     // a version received before with other content (409)
	formatFHIR        = "fhir"
	stageFHIRIngest   = "fhir-ingest"
)

type metrics struct {
	requests  *prometheus.CounterVec
	received  *prometheus.CounterVec
	accepted  *prometheus.CounterVec
	duplicate *prometheus.CounterVec
	rejected  *prometheus.CounterVec
	events    *prometheus.CounterVec
	bytes     *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	dqFlags   *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	const ns = "hinscore_fhir"
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "requests_total",
			Help: "HTTP requests by network (\"-\" before authentication) and status code."}, []string{"network", "code"}),
		received: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "resources_received_total",
			Help: "Resources received (one per JSON body or NDJSON line)."}, []string{"network"}),
		accepted: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "resources_accepted_total",
			Help: "Resources stored in RAW with their events in EVENTS."}, []string{"network"}),
		duplicate: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "resources_duplicate_total",
			Help: "Resources JetStream already held (same version re-sent)."}, []string{"network"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "resources_rejected_total",
			Help: "Requests or resources refused, by reason."}, []string{"network", "reason"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "events_published_total",
			Help: "ExchangeEvents published and acknowledged."}, []string{"network"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "received_bytes_total",
			Help: "Request body bytes after gunzip."}, []string{"network"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: "request_latency_seconds",
			Help:    "From request start to reply (after the PubAcks).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}, []string{"network"}),
		dqFlags: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "dq_flags_total",
			Help: "Events stored with a data-quality flag (lib/domain/quality), by flag."}, []string{"network", "flag"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.requests, m.received, m.accepted, m.duplicate, m.rejected, m.events, m.bytes, m.latency, m.dqFlags} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("fhiringest metrics: %w", err)
		}
	}
	return m, nil
}

// countFlags adds the data-quality flags of events to counts.
func countFlags(counts map[string]int, events []*hinscorev1.ExchangeEvent) map[string]int {
	for _, ev := range events {
		for _, f := range quality.Flags(ev.GetReasonCodes()) {
			if counts == nil {
				counts = map[string]int{}
			}
			counts[f]++
		}
	}
	return counts
}

// flagged counts the data-quality flags of a network's stored events.
func (m *metrics) flagged(network string, counts map[string]int) {
	for f, n := range counts {
		m.dqFlags.WithLabelValues(network, f).Add(float64(n))
	}
}
