// Package atnaingest is hinscore's Audit Record Repository: per network a
// syslog listener (RFC 5425 octet-counted frames over TLS, or plain TCP
// for development; RFC 5426 datagrams over UDP) whose messages, RFC 5424
// or BSD, carry IHE ATNA audit records. Each record's events go to EVENTS
// with the record's bytes sealed inside; a record counts as received once
// JetStream acknowledged them. Syslog has no application acknowledgement,
// so a stream connection whose store fails is closed (the sender keeps
// what it could not deliver) and a datagram that cannot be stored is
// counted lost.
package atnaingest

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/hinscore/hinscore/services/lib/bus/ingest"
	"github.com/hinscore/hinscore/services/lib/service"
)

// ErrClosed is returned by Start after Shutdown.
var ErrClosed = ingest.ErrClosed

const (
	// defaultPublishTimeout bounds the wait for a PubAck; past it the
	// record is not stored (a stream connection closes).
	defaultPublishTimeout = 10 * time.Second
	// maxDatagram is the largest UDP payload (65,535 less the headers).
	maxDatagram = 65535
)

// Server is the audit-record listener component. Addrs, UDPAddrs, Ready
// and Shutdown are its Listening's.
type Server struct {
	*ingest.Listening
	cfg            Config
	js             jetstream.JetStream
	log            zerolog.Logger
	clock          service.Clock
	mapping        Mapping
	tls            *ingest.TLSSet // nil: plain TCP
	m              *metrics
	publishTimeout time.Duration
	conns          *ingest.Conns
}

// New returns a server for cfg publishing through deps.JetStream, its
// metrics on deps.Metrics (nil: registered nowhere), its time from
// deps.Clock (nil: the wall clock).
func New(cfg Config, deps service.Deps) (*Server, error) {
	return newServer(cfg, deps, cfg.Mapping())
}

func newServer(cfg Config, deps service.Deps, mapping Mapping) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("atnaingest.New: %w", err)
	}
	if deps.JetStream == nil {
		return nil, fmt.Errorf("atnaingest.New: nil JetStream")
	}
	clock := deps.Clock
	if clock == nil {
		clock = service.SystemClock{}
	}
	m, err := newMetrics(deps.Metrics)
	if err != nil {
		return nil, fmt.Errorf("atnaingest.New: %w", err)
	}
	tlsCfg, err := cfg.TLSConfig()
	if err != nil {
		return nil, fmt.Errorf("atnaingest.New: %w", err)
	}
	tlsCfg.LogReloads(deps.Log)
	if cfg.PatientTokens.IsDev() {
		deps.Log.Warn().Msg("HINSCORE_PATIENT_KEY unset: patient tokens use the public development key")
	}
	if cfg.RawKeys.IsDev() {
		deps.Log.Warn().Msg("HINSCORE_RAW_KEYS unset: the audit records' bytes in EVENTS are sealed with the public development key")
	}
	l := ingest.NewListening("atnaingest", deps.JetStream, cfg.limits())
	return &Server{
		Listening: l, cfg: cfg, js: deps.JetStream, log: deps.Log, clock: clock, mapping: mapping, tls: tlsCfg, m: m,
		publishTimeout: defaultPublishTimeout,
		conns:          l.Conns(),
	}, nil
}

// Start listens on every listener and returns once all are listening.
func (s *Server) Start(ctx context.Context) error {
	if err := s.Listen(ctx, s.cfg.Listeners, s.cfg.UDP, s.tls, s.accept, s.serveDatagrams); err != nil {
		return err
	}
	for network, addr := range s.Addrs() {
		s.log.Info().Str("network", network).Str("addr", addr).Bool("tls", s.tls.For(network) != nil).
			Bool("client_certs", s.tls.Mutual(network)).Msg("syslog stream listening")
	}
	for network, addr := range s.UDPAddrs() {
		s.log.Info().Str("network", network).Str("addr", addr).Msg("syslog UDP listening")
	}
	return nil
}

func (s *Server) accept(network string, ln net.Listener) {
	m := s.m.forNetwork(network, transportStream)
	s.conns.Accept(network, ln, func(nc net.Conn) ingest.Conn {
		return &streamConn{StreamConn: ingest.NewStreamConn(nc), s: s, network: network, m: m}
	}, func(nc net.Conn, reason string) {
		// Syslog has no reply to refuse with: the sender sees the close
		// and keeps its queue.
		_ = nc.Close()
		s.m.rejected.WithLabelValues(network, reason).Inc()
		s.log.Warn().Str("network", network).Str("remote", nc.RemoteAddr().String()).Str("limit", reason).Msg("connection refused: too many connections")
	}, func(err error) {
		s.log.Warn().Err(err).Str("network", network).Msg("accept")
	})
}
