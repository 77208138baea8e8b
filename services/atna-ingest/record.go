package atnaingest

import (
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
	"github.com/hinscore/hinscore/services/lib/atna"
	"github.com/hinscore/hinscore/services/lib/bus"
	"github.com/hinscore/hinscore/services/lib/bus/dlq"
	"github.com/hinscore/hinscore/services/lib/bus/ingest"
	"github.com/hinscore/hinscore/services/lib/syslog"
)

// Mapping turns the body of one syslog message (an AuditMessage) into
// the events of the transaction sides it records.
type Mapping interface {
	Map(network string, body []byte, received time.Time) ([]*hinscorev1.ExchangeEvent, error)
}

// record is one syslog message on its way: its events being stored, or
// its rejection.
type record struct {
	start    time.Time // from the clock, for the latency metric
	deadline time.Time // wall clock: give up waiting for PubAcks
	futs     []jetstream.PubAckFuture
	reason   string // rejection reason; "" when its events are being stored
	// notStored is set when the record could not be stored, neither its
	// events nor its dead letter: a stream connection closes on it.
	notStored error
}

// handle reads one syslog message (raw, owned by the record), maps its
// body and starts the publish of its events; what cannot be read or mapped
// goes to the DLQ, awaited. parse is syslog.Parse or ParseDatagram; feed
// names the feed connection (ExchangeEvent.feed).
func (s *Server) handle(network, remote, feed string, raw []byte, parse func([]byte, time.Time) (syslog.Message, error)) *record {
	now := s.clock.Now()
	rec := &record{start: now, deadline: time.Now().Add(s.publishTimeout)}
	msg, err := parse(raw, now)
	if err != nil {
		return s.reject(rec, network, remote, reasonSyslog, raw, err)
	}
	evs, err := s.mapping.Map(network, msg.Body, now)
	if err != nil {
		return s.reject(rec, network, remote, reasonOf(err), raw, err)
	}
	if len(evs) == 0 {
		return s.reject(rec, network, remote, reasonMapping, raw, errors.New("no exchange in the audit record"))
	}
	stampFeed(evs, msg, feed)
	for _, ev := range evs {
		bus.Route(ev, s.cfg.PartitionCount)
		fut, err := ingest.Store(s.js, s.cfg.RawKeys, ev, raw, s.publishTimeout)
		if err != nil {
			rec.reason, rec.notStored = reasonPublish, err
			return rec
		}
		rec.futs = append(rec.futs, fut)
	}
	return rec
}

// reasonOf names what is wrong with a body the mapping refused.
func reasonOf(err error) string {
	var pe *atna.ParseError
	switch {
	case errors.Is(err, atna.ErrDoctype):
		return reasonDoctype
	case errors.Is(err, atna.ErrTooDeep):
		return reasonTooDeep
	case errors.Is(err, atna.ErrTooLarge):
		return reasonTooLarge
	case errors.Is(err, atna.ErrNotAudit):
		return reasonNotAudit
	case errors.As(err, &pe):
		return reasonXML
	}
	return reasonMapping
}

// reject dead-letters raw with why, and waits for the DLQ's PubAck.
func (s *Server) reject(rec *record, network, remote, reason string, raw []byte, why error) *record {
	rec.reason = reason
	rec.notStored = s.deadLetter(network, remote, reason, raw, why)
	return rec
}

func (s *Server) deadLetter(network, remote, reason string, data []byte, why error) error {
	s.m.rejected.WithLabelValues(network, reason).Inc()
	err := ingest.DeadLetter(s.js, dlq.DeadLetter{
		Stage: stageATNAIngest, Network: network, Format: formatATNA, Remote: remote,
		Reason: reason + ": " + why.Error(), Data: data,
	}, s.publishTimeout, s.conns.Force())
	if err != nil {
		s.log.Error().Err(err).Str("network", network).Str("reason", reason).Msg("dead letter not stored")
	}
	return err
}

// settle waits for the PubAcks of a record's events and counts it; it
// reports false when the record was not stored (nor dead-lettered).
func (s *Server) settle(rec *record, m netMetrics) bool {
	if rec.notStored != nil {
		m.publishFailed.Inc()
		return false
	}
	for _, f := range rec.futs {
		if err := s.await(rec, f); err != nil {
			rec.notStored = err
			m.publishFailed.Inc()
			return false
		}
		m.events.Inc()
	}
	if rec.reason == "" {
		m.stored.Inc()
		m.latency.Observe(s.clock.Now().Sub(rec.start).Seconds())
	}
	return true
}

func (s *Server) await(rec *record, f jetstream.PubAckFuture) error {
	_, err := ingest.Await(s.js, f, rec.deadline, s.publishTimeout, s.conns.Force())
	return err
}
