package atnaingest

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/hinscore/hinscore/services/lib/bus/ingest"
	"github.com/hinscore/hinscore/services/lib/service"
	"github.com/hinscore/hinscore/services/lib/syslog"
)

// ImportStats counts what Import did with a capture's records.
type ImportStats struct {
	Records  int // read from the capture
	Stored   int // their events stored (again: the Msg-Ids keep one)
	Rejected int // in the DLQ with their reason
}

// Import stores the audit records of a captured file for network through
// the listener's own path (handle, then settle): each record mapped by
// lib/atna/toevent and its events published with the record sealed in
// them, a record that cannot be read or mapped dead-lettered. records are
// syslog messages (RFC 5424 or BSD, as a frame's MSG), or, when bare is
// set, AuditMessage XML documents without syslog around them. The ids
// derive from the AuditMessage, so a record imported again, or also
// received by a listener, is stored once. An error means a record was
// neither stored nor dead-lettered (the bus did not acknowledge): import
// the file again.
func Import(ctx context.Context, js jetstream.JetStream, cfg Config, network string, records [][]byte, bare bool) (ImportStats, error) {
	// The network is checked as a listener's is; nothing listens.
	cfg.Listeners, cfg.UDP = ingest.Listeners{{Network: network, Addr: "127.0.0.1:0"}}, nil
	s, err := newServer(cfg, service.Deps{JetStream: js, Log: zerolog.Nop()}, cfg.Mapping())
	if err != nil {
		return ImportStats{}, fmt.Errorf("atnaingest.Import: %w", err)
	}
	parse := syslog.Parse
	if bare {
		parse = bareAudit
	}
	m := s.m.forNetwork(network, transportImport)
	var st ImportStats
	for i, raw := range records {
		if err := ctx.Err(); err != nil {
			return st, fmt.Errorf("atnaingest.Import: %w", err)
		}
		st.Records++
		rec := s.handle(network, "", ingest.ChannelImport+":"+formatATNA, raw, parse)
		if !s.settle(rec, m) {
			return st, fmt.Errorf("atnaingest.Import: record %d: %w", i+1, rec.notStored)
		}
		if rec.reason != "" {
			st.Rejected++
		} else {
			st.Stored++
		}
	}
	return st, nil
}

// bareAudit takes a whole AuditMessage document for the message's body.
func bareAudit(raw []byte, _ time.Time) (syslog.Message, error) {
	return syslog.Message{Body: raw}, nil
}
