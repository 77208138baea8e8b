// Package mllpingest receives HL7 v2 over MLLP, one listener per network,
// stores every message in EVENTS, its ExchangeEvent with the original
// bytes in one JetStream message, and only then acknowledges it. Within a connection it pipelines: it reads ahead,
// publishes asynchronously within a bounded window and writes the replies
// strictly in the order of the messages.
package mllpingest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/hinscore/hinscore/services/lib/bus/dlq"

	"github.com/hinscore/hinscore/services/lib/domain/ids"
	"github.com/hinscore/hinscore/services/lib/domain/quality"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
	"github.com/hinscore/hinscore/services/lib/bus"
	"github.com/hinscore/hinscore/services/lib/bus/ingest"
	"github.com/hinscore/hinscore/services/lib/hl7v2"
	"github.com/hinscore/hinscore/services/lib/hl7v2/mllp"
	"github.com/hinscore/hinscore/services/lib/hl7v2/toevent"
	"github.com/hinscore/hinscore/services/lib/service"
)

// ErrClosed is returned by Start after Shutdown.
var ErrClosed = ingest.ErrClosed

const (
	// defaultPublishTimeout bounds the wait for a PubAck; past it the sender
	// gets AE 207 and re-sends (the Msg-Id deduplicates a late success).
	defaultPublishTimeout = 10 * time.Second
	// writeTimeout bounds a reply write to a peer that stopped reading.
	writeTimeout = 30 * time.Second
)

// Server is the MLLP ingest component. Addrs, Ready and Shutdown are its
// Listening's.
type Server struct {
	*ingest.Listening
	cfg            Config
	js             jetstream.JetStream
	log            zerolog.Logger
	clock          service.Clock
	mapper         toevent.Mapper
	tls            *ingest.TLSSet // nil: plain TCP
	m              *metrics
	publishTimeout time.Duration

	conns       *ingest.Conns
	deadLetters *ingest.DeadLetters
	refuseSem   chan struct{} // connections being refused politely
}

// New returns a server for cfg publishing through deps.JetStream, its
// metrics on deps.Metrics (nil: registered nowhere), its time from
// deps.Clock (nil: the wall clock).
func New(cfg Config, deps service.Deps) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("mllpingest.New: %w", err)
	}
	js, log, clock := deps.JetStream, deps.Log, deps.Clock
	if js == nil {
		return nil, fmt.Errorf("mllpingest.New: nil JetStream")
	}
	if clock == nil {
		clock = service.SystemClock{}
	}
	m, err := newMetrics(deps.Metrics)
	if err != nil {
		return nil, fmt.Errorf("mllpingest.New: %w", err)
	}
	mapper, err := cfg.Mapper()
	if err != nil {
		return nil, fmt.Errorf("mllpingest.New: %w", err)
	}
	tlsCfg, err := cfg.TLSConfig()
	if err != nil {
		return nil, fmt.Errorf("mllpingest.New: %w", err)
	}
	tlsCfg.LogReloads(log)
	if cfg.PatientTokens.IsDev() {
		log.Warn().Msg("HINSCORE_PATIENT_KEY unset: patient tokens use the public development key")
	}
	if cfg.RawKeys.IsDev() {
		log.Warn().Msg("HINSCORE_RAW_KEYS unset: the messages' bytes in EVENTS are sealed with the public development key")
	}
	l := ingest.NewListening("mllpingest", js, cfg.limits())
	return &Server{
		Listening:      l,
		cfg:            cfg,
		js:             js,
		log:            log,
		clock:          clock,
		mapper:         mapper,
		tls:            tlsCfg,
		refuseSem:      make(chan struct{}, maxPoliteRefusals),
		m:              m,
		publishTimeout: defaultPublishTimeout,
		conns:          l.Conns(),
		deadLetters:    l.DeadLetters(),
	}, nil
}

// Start listens on every listener and returns once all are listening.
func (s *Server) Start(ctx context.Context) error {
	if err := s.Listen(ctx, s.cfg.Listeners, nil, s.tls, s.accept, nil); err != nil {
		return err
	}
	for network, addr := range s.Addrs() {
		s.log.Info().Str("network", network).Str("addr", addr).Bool("tls", s.tls.For(network) != nil).
			Bool("client_certs", s.tls.Mutual(network)).Msg("MLLP listening")
	}
	return nil
}

// maxPoliteRefusals bounds the connections over MaxConns that are read and
// answered before being closed; beyond it they are closed at once.
const maxPoliteRefusals = 16

// refuseTimeout bounds how long a refused connection may take to send its
// first frame.
const refuseTimeout = 2 * time.Second

func (s *Server) accept(network string, ln net.Listener) {
	s.conns.Accept(network, ln, func(nc net.Conn) ingest.Conn {
		return &conn{StreamConn: ingest.NewStreamConn(nc), s: s, network: network, m: s.m.forNetwork(network)}
	}, func(nc net.Conn, reason string) {
		s.m.rejected.WithLabelValues(network, reason).Inc()
		s.log.Warn().Str("network", network).Str("remote", nc.RemoteAddr().String()).Str("limit", reason).Msg("connection refused: too many connections")
		if reason != ingest.RefusedMaxConns {
			// One network, or one host, over its own share: closed at
			// once, whatever it sends, so that it cannot make the server
			// read for it.
			_ = nc.Close()
			return
		}
		s.refuse(network, nc)
	}, func(err error) {
		s.log.Warn().Err(err).Str("network", network).Msg("accept")
	})
}

// refuse answers a connection over MaxConns politely: it reads the first
// frame (briefly) and answers it AE 207 "too many connections", so that the
// peer knows to retry rather than seeing a bare reset, then closes. At most
// maxPoliteRefusals are handled at once; the rest are closed at once.
func (s *Server) refuse(network string, nc net.Conn) {
	select {
	case s.refuseSem <- struct{}{}:
	default:
		_ = nc.Close()
		return
	}
	started := s.conns.Go(func() {
		defer func() { <-s.refuseSem }()
		defer nc.Close()
		_ = nc.SetDeadline(time.Now().Add(refuseTimeout))
		frame, err := mllp.NewReader(nc, s.cfg.MaxFrameBytes).ReadFrame()
		if err != nil {
			return
		}
		reply := hl7v2.BuildAckForBytes(frame, hl7v2.CodeAE, []hl7v2.AckError{{Code: hl7v2.ErrCodeInternal,
			Message: fmt.Sprintf("too many connections (%d): message not stored, send it again later", s.cfg.MaxConns)}},
			s.clock.Now(), "HINBUSY")
		_ = mllp.WriteFrame(nc, reply)
	})
	if !started {
		<-s.refuseSem
		_ = nc.Close()
	}
}

// conn is one MLLP connection: a reader, a publisher and a writer
// goroutine joined by two ordered queues.
type conn struct {
	ingest.StreamConn
	s       *Server
	network string
	feed    string // ExchangeEvent.feed, once the handshake is done
	m       connMetrics
}

// item is one frame on its way through a connection's pipeline: one
// message, or a batch whose messages come on its subs as the reader
// starts them, each holding a place in the in-flight window.
type item struct {
	start    time.Time // from the clock, for the latency metric
	deadline time.Time // wall clock: give up waiting for PubAcks
	frame    []byte
	msg      *hl7v2.Message // nil when the frame could not be parsed
	ev       *hinscorev1.ExchangeEvent
	fut      jetstream.PubAckFuture // the EVENTS publish of an accepted message
	done     chan struct{}          // when set, reply is ready once it is closed
	reply    []byte
	noReply  bool   // enhanced mode asked for no acknowledgment of this outcome
	reason   string // rejection reason; "" when accepted
	dup      bool   // EVENTS held its bytes already: a copy sent again
	batch    *hl7v2.BatchFile
	subs     chan *item
}

// Serve runs the connection's pipeline until it ends.
func (c *conn) Serve() {
	s := c.s
	s.m.openConns.WithLabelValues(c.network).Inc()
	defer s.m.openConns.WithLabelValues(c.network).Dec()
	log := s.log.With().Str("network", c.network).Str("remote", c.Remote).Logger()
	log.Debug().Msg("connection opened")
	defer func() { _ = c.NC.Close() }()

	if err := c.Handshake(s.cfg.ReadTimeout); err != nil {
		s.m.rejected.WithLabelValues(c.network, s.tls.LogRefusal(log, c.network, err)).Inc()
		return
	}
	c.feed = c.Feed(ingest.ChannelMLLP)

	window := make(chan struct{}, s.cfg.MaxInFlight)
	toWrite := make(chan *item, s.cfg.MaxInFlight)
	writerDone := make(chan struct{})
	go func() { defer close(writerDone); c.writeReplies(toWrite, window, log) }()

	linger := c.read(toWrite, window, log)
	close(toWrite)
	<-writerDone
	if linger {
		c.lingerClose()
	}
	log.Debug().Msg("connection closed")
}

// read reads frames until the peer closes, the connection idles, a frame
// is too slow, too large or badly ended, a long run of junk arrives or the
// server shuts down. It reports whether the server is closing the
// connection on the peer's account, with input possibly left unread.
func (c *conn) read(out chan<- *item, window chan struct{}, log zerolog.Logger) (linger bool) {
	s := c.s
	guard := &frameGuard{r: c.NC, idle: s.cfg.IdleTimeout, frame: s.cfg.ReadTimeout, minRate: s.cfg.MinRate,
		max: s.cfg.MaxFrameBytes, outside: s.m.outside.WithLabelValues(c.network), stopping: c.Stopping(),
		lastFrame: time.Now()}
	r := mllp.NewReader(guard, s.cfg.MaxFrameBytes)
	for {
		if c.Stopping().Load() {
			return false
		}
		frame, err := r.ReadFrame()
		switch {
		case err == nil:
			c.m.received.Inc()
			c.m.bytes.Add(float64(len(frame)))
			c.acceptFrame(bytes.Clone(frame), out, window)
			guard.frameDone()
		case errors.Is(err, mllp.ErrNoStartBlock):
			continue // the guard counted the bytes the reader skipped
		case errors.Is(err, mllp.ErrFrameTooLarge):
			// The guard stopped reading at the limit: the frame's first
			// bytes name its sender and go to the dead letter; the rest
			// would have to be read to find the next frame, so the
			// connection closes after the reply.
			c.m.received.Inc()
			queue(c.reject(bytes.Clone(guard.head), nil, hl7v2.CodeAR, reasonTooLarge, hl7v2.AckError{Code: "104",
				Message: fmt.Sprintf("frame over %d bytes (HINSCORE_MLLP_MAX_FRAME): message not stored, connection closed", s.cfg.MaxFrameBytes)}),
				out, window)
			log.Warn().Int("max_frame", s.cfg.MaxFrameBytes).Msg("closing connection: frame too large")
			return true
		case errors.Is(err, errJunk), errors.Is(err, mllp.ErrBadEnd):
			reason, data := reasonJunk, guard.junk
			if errors.Is(err, mllp.ErrBadEnd) {
				reason, data = reasonBadFrame, guard.head
			}
			_ = c.deadLetter(reason, bytes.Clone(data), err.Error()) // logged inside; the connection closes either way
			log.Warn().Err(err).Msg("closing connection: bytes outside MLLP framing")
			return true
		case errors.Is(err, io.EOF):
			return false
		case errors.Is(err, io.ErrUnexpectedEOF):
			s.m.rejected.WithLabelValues(c.network, reasonCutShort).Inc()
			log.Warn().Msg("peer closed inside a frame")
			return false
		default:
			if c.LogEnded(log, err, guard.InFrame(), s.cfg.limits()) {
				s.m.rejected.WithLabelValues(c.network, reasonSlow).Inc()
			}
			return false
		}
	}
}

// queue hands a frame's item to the writer once it holds a place in the
// in-flight window.
func queue(it *item, out chan<- *item, window chan<- struct{}) {
	window <- struct{}{}
	out <- it
}

// lingerTimeout bounds the drain of a connection the server closes on the
// peer's account.
const lingerTimeout = time.Second

// lingerClose ends the sending side once the last reply is out, then reads
// and discards what the peer still sends for a moment: closing a socket
// with unread input resets the connection, and the reset can destroy the
// reply before the peer has read it.
func (c *conn) lingerClose() {
	if cw, ok := c.NC.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	if c.Stopping().Load() {
		return
	}
	_ = c.NC.SetReadDeadline(time.Now().Add(lingerTimeout))
	_, _ = io.Copy(io.Discard, c.NC)
}

// acceptFrame handles one frame and queues it for the writer: a message,
// or a batch (FHS/BHS) whose messages are each stored on their own, each
// holding a place in the in-flight window, and answered together.
func (c *conn) acceptFrame(frame []byte, out chan<- *item, window chan<- struct{}) {
	if !isBatchFrame(frame) {
		queue(c.acceptMessage(frame), out, window)
		return
	}
	if n, most := messageCount(frame), c.s.cfg.MaxBatch; n > most {
		// Refused before it is split: one reply and one dead letter, not
		// one of each per message.
		queue(c.reject(frame, nil, hl7v2.CodeAR, reasonBatchTooLarge, hl7v2.AckError{Code: hl7v2.ErrCodeSegmentSequence,
			Message: fmt.Sprintf("batch of %d messages, over %d (HINSCORE_MLLP_MAX_BATCH): batch not stored, send it in smaller batches", n, most)}),
			out, window)
		return
	}
	f, err := hl7v2.SplitBatches(frame)
	if err != nil {
		// A batch whose counts or structure are wrong is refused whole: its
		// sender should send it again complete.
		queue(c.reject(frame, nil, hl7v2.CodeAR, reasonParse, hl7v2.AckErrorFor(err)), out, window)
		return
	}
	msgs := f.Messages()
	it := &item{start: c.s.clock.Now(), frame: frame, batch: f, subs: make(chan *item, len(msgs))}
	out <- it // the batch's messages, not the batch, hold the window's places
	for _, raw := range msgs {
		window <- struct{}{}
		it.subs <- c.acceptMessage(raw)
	}
	close(it.subs)
}

// messageCount counts the messages of a batch frame (its MSH segments)
// without splitting it.
func messageCount(frame []byte) int {
	n := 0
	for i := 0; ; {
		j := bytes.Index(frame[i:], []byte("MSH"))
		if j < 0 {
			return n
		}
		at := i + j
		if at == 0 || frame[at-1] == '\r' || frame[at-1] == '\n' {
			n++
		}
		i = at + 3
	}
}

// isBatchFrame reports whether a frame starts with a batch header.
func isBatchFrame(frame []byte) bool {
	f := bytes.TrimLeft(bytes.TrimPrefix(frame, []byte{0xEF, 0xBB, 0xBF}), "\r\n\t ")
	return bytes.HasPrefix(f, []byte("FHS")) || bytes.HasPrefix(f, []byte("BHS"))
}

// acceptMessage parses and maps a message and starts its publish.
func (c *conn) acceptMessage(frame []byte) *item {
	s := c.s
	now := s.clock.Now()
	msg, ev, err := s.mapper.MapBytes(c.network, frame, now)
	if err != nil {
		return c.rejectMalformed(frame, msg, err)
	}
	ev.Feed = c.feed
	bus.Route(ev, s.cfg.PartitionCount)
	it := &item{start: now, deadline: time.Now().Add(s.publishTimeout), frame: frame, msg: msg, ev: ev}
	fut, err := ingest.Store(s.js, s.cfg.RawKeys, ev, frame, s.publishTimeout)
	if err != nil {
		c.publishFailed(it, err)
		return it
	}
	it.fut = fut
	return it
}

// rejectMalformed answers a message that cannot be parsed or mapped: AR
// when it is not a usable message at all, AE when a field is wrong. (An
// empty MSH-9 or MSH-10 is no longer either: the message is recorded,
// flagged.)
func (c *conn) rejectMalformed(frame []byte, msg *hl7v2.Message, err error) *item {
	code, reason := hl7v2.CodeAE, reasonMapping
	if msg == nil {
		reason = reasonParse
		if errors.Is(err, hl7v2.ErrNoMSH) || errors.Is(err, hl7v2.ErrEmpty) {
			code = hl7v2.CodeAR
		}
	}
	return c.reject(frame, msg, code, reason, hl7v2.AckErrorFor(err))
}

// reject sends the frame to the DLQ and prepares the reply; a failed DLQ
// publish turns it into AE 207 so the sender re-sends.
func (c *conn) reject(frame []byte, msg *hl7v2.Message, code, reason string, ae hl7v2.AckError) *item {
	s := c.s
	it := &item{start: s.clock.Now(), frame: frame, msg: msg, reason: reason, done: make(chan struct{})}
	// On the server's bounded pool: a flood of rejected messages waits
	// here for a worker, which stops the connection reading.
	s.m.rejected.WithLabelValues(c.network, reason).Inc()
	s.deadLetters.Go(c.letter(reason, frame, ae.Message), s.publishTimeout, func(err error) {
		defer close(it.done)
		if err != nil {
			c.letterFailed(reason, err)
			it.reason = reasonPublish
			code, ae = hl7v2.CodeAE, storeFailed()
		}
		c.setReply(it, code, ae)
	})
	return it
}

// deadLetter stores a dead letter and waits for it (the connection is
// closing).
func (c *conn) deadLetter(reason string, data []byte, detail string) error {
	s := c.s
	s.m.rejected.WithLabelValues(c.network, reason).Inc()
	err := ingest.DeadLetter(s.js, c.letter(reason, data, detail), s.publishTimeout, s.conns.Force())
	if err != nil {
		c.letterFailed(reason, err)
	}
	return err
}

func (c *conn) letter(reason string, data []byte, detail string) dlq.DeadLetter {
	return dlq.DeadLetter{Stage: stageMLLPIngest, Network: c.network, Format: formatHL7v2, Remote: c.Remote,
		Reason: reason + ": " + detail, Data: data}
}

func (c *conn) letterFailed(reason string, err error) {
	c.s.log.Error().Err(err).Str("network", c.network).Str("reason", reason).Msg("dead letter not stored")
}

func storeFailed() hl7v2.AckError {
	return hl7v2.AckError{Code: hl7v2.ErrCodeInternal, Message: "message not stored, send it again"}
}

func (c *conn) publishFailed(it *item, err error) {
	it.reason = reasonPublish
	c.setReply(it, hl7v2.CodeAE, storeFailed())
	c.s.log.Warn().Err(err).Str("network", c.network).Msg("publish failed: replying AE 207")
}

func (c *conn) await(it *item, f jetstream.PubAckFuture) (*jetstream.PubAck, error) {
	return ingest.Await(c.s.js, f, it.deadline, c.s.publishTimeout, c.s.conns.Force())
}

// settle waits for an item's EVENTS PubAck (or its rejection) and sets its reply.
func (c *conn) settle(it *item) {
	if it.fut != nil {
		if ack, err := c.await(it, it.fut); err != nil {
			c.publishFailed(it, err)
		} else {
			it.dup = ack.Duplicate
			c.setReply(it, hl7v2.CodeAA, hl7v2.AckError{})
		}
	}
	if it.done != nil {
		<-it.done
	}
}

// writeReplies writes each item's reply in message order, once its EVENTS
// PubAck (or its rejection) is in. A batch is answered by one batch of
// replies, once every message of it is settled; each message gives back
// its place in the window as it settles.
func (c *conn) writeReplies(in <-chan *item, window <-chan struct{}, log zerolog.Logger) {
	s := c.s
	w := bufio.NewWriterSize(c.NC, 32<<10)
	broken := false
	for it := range in {
		if it.batch != nil {
			var replies [][]byte
			for sub := range it.subs {
				c.settle(sub)
				if !sub.noReply {
					replies = append(replies, sub.reply)
				}
				c.count(sub)
				<-window
			}
			it.reply = hl7v2.BuildBatchReply(it.batch, replies, s.clock.Now(), replyControlID(c.network, it))
		} else {
			c.settle(it)
		}
		if !broken && !it.noReply {
			_, _ = w.Write(mllp.AppendFrame(w.AvailableBuffer(), it.reply)) // errors surface at Flush
		}
		if !broken && len(in) == 0 {
			_ = c.NC.SetWriteDeadline(time.Now().Add(writeTimeout))
			if err := w.Flush(); err != nil {
				broken = true
				log.Warn().Err(err).Msg("reply not delivered")
			}
		}
		if it.batch == nil {
			c.count(it)
			<-window
		}
	}
	if !broken {
		_ = c.NC.SetWriteDeadline(time.Now().Add(writeTimeout))
		_ = w.Flush()
	}
}

// count records a settled message's latency and outcome.
func (c *conn) count(it *item) {
	c.m.ackLatency.Observe(c.s.clock.Now().Sub(it.start).Seconds())
	if it.reason == "" {
		c.m.accepted.Inc()
		if it.dup {
			c.s.m.duplicates.WithLabelValues(c.network, c.feed).Inc()
		}
		for _, f := range quality.Flags(it.ev.GetReasonCodes()) {
			c.s.m.dqFlags.WithLabelValues(c.network, f).Inc()
		}
	} else if it.reason == reasonPublish {
		c.m.publishFailed.Inc()
	}
}

// setReply answers the item's message: AA (RSP for a query) when stored,
// else AE/AR with the ERR segment; in enhanced mode (MSH-15/16) the commit
// code, or nothing when MSH-15 asks for none.
func (c *conn) setReply(it *item, code string, ae hl7v2.AckError) {
	now := c.s.clock.Now()
	id := replyControlID(c.network, it)
	if it.msg != nil {
		var send bool
		code, send = it.msg.AckPolicy().Reply(code)
		it.noReply = !send
	}
	var errs []hl7v2.AckError
	if code != hl7v2.CodeAA && code != hl7v2.CodeCA {
		errs = []hl7v2.AckError{ae}
	}
	if it.msg != nil {
		it.reply = hl7v2.BuildAck(it.msg, code, errs, now, id)
		return
	}
	it.reply = hl7v2.BuildAckForBytes(it.frame, code, errs, now, id)
}

// replyControlID derives the reply's MSH-10 from the message, so the reply
// to a re-sent copy is the same.
func replyControlID(network string, it *item) string {
	id := ""
	if it.ev != nil {
		id = it.ev.EventId
	} else {
		id = ids.Event(network, it.frame).String()
	}
	b := make([]byte, 0, 20)
	b = append(b, "HIN"...)
	for i := 0; i < len(id) && len(b) < cap(b); i++ {
		if id[i] != '-' {
			b = append(b, id[i])
		}
	}
	return string(b)
}
