package atnaingest

import (
	"bytes"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/hinscore/hinscore/services/lib/bus/ingest"
	"github.com/hinscore/hinscore/services/lib/syslog"
)

// streamConn is one syslog stream connection: a reader that parses, maps
// and starts the publishes, and a settler that awaits the PubAcks in
// order and closes the connection on the first record not stored.
type streamConn struct {
	ingest.StreamConn
	s       *Server
	network string
	feed    string // ExchangeEvent.feed, once the handshake is done
	m       netMetrics
}

// Serve runs the connection until the peer closes, it idles, its framing
// is lost, a record is not stored or the server shuts down.
func (c *streamConn) Serve() {
	s := c.s
	s.m.openConns.WithLabelValues(c.network).Inc()
	defer s.m.openConns.WithLabelValues(c.network).Dec()
	log := s.log.With().Str("network", c.network).Str("remote", c.Remote).Logger()
	defer func() { _ = c.NC.Close() }()
	if err := c.Handshake(s.cfg.ReadTimeout); err != nil {
		s.m.rejected.WithLabelValues(c.network, s.tls.LogRefusal(log, c.network, err)).Inc()
		return
	}
	c.feed = c.Feed(ingest.ChannelSyslog)
	pending := make(chan *record, s.cfg.MaxInFlight)
	failed := make(chan struct{})
	settled := make(chan struct{})
	go func() {
		defer close(settled)
		var once sync.Once
		for rec := range pending {
			if !s.settle(rec, c.m) {
				// No application ack in syslog: closing is how the sender
				// learns that what it sent since may not be stored.
				once.Do(func() {
					log.Warn().Err(rec.notStored).Msg("closing connection: a record was not stored")
					close(failed)
					_ = c.NC.Close()
				})
			}
		}
	}()
	c.read(pending, failed, log)
	close(pending)
	<-settled
}

// read reads frames until the connection ends; see Serve.
func (c *streamConn) read(pending chan<- *record, failed <-chan struct{}, log zerolog.Logger) {
	s := c.s
	guard := &deadlineGuard{r: c.NC, idle: s.cfg.IdleTimeout, frame: s.cfg.ReadTimeout, minRate: s.cfg.MinRate, stopping: c.Stopping()}
	r := syslog.NewReader(guard, s.cfg.MaxFrameBytes)
	for {
		select {
		case <-failed:
			return
		default:
		}
		if c.Stopping().Load() {
			return
		}
		guard.begin()
		frame, err := r.ReadFrame()
		switch {
		case err == nil:
			c.m.received.Inc()
			c.m.bytes.Add(float64(len(frame)))
			rec := s.handle(c.network, c.Remote, c.feed, bytes.Clone(frame), syslog.Parse)
			pending <- rec
			if rec.notStored != nil {
				return
			}
		case errors.Is(err, syslog.ErrFrameTooLarge):
			// The reader skipped the frame: the stream goes on.
			c.m.received.Inc()
			if s.deadLetter(c.network, c.Remote, reasonTooLarge, bytes.Clone(r.Dropped()), err) != nil {
				c.m.publishFailed.Inc()
				return
			}
		case errors.Is(err, io.EOF):
			return
		case errors.Is(err, syslog.ErrBadLength):
			// Octet counting cannot find the next frame: what was read of
			// the broken one goes to the DLQ and the connection closes. A
			// peer that closes inside a frame announced more than it sent:
			// its length lied too.
			_ = s.deadLetter(c.network, c.Remote, reasonBadLength, bytes.Clone(r.Dropped()), err)
			log.Warn().Err(err).Msg("closing connection: syslog framing lost")
			return
		default:
			if c.LogEnded(log, err, guard.inFrame, s.cfg.limits()) {
				s.m.rejected.WithLabelValues(c.network, reasonSlow).Inc()
			}
			return
		}
	}
}

// deadliner is the part of net.Conn the guard drives.
type deadliner interface {
	io.Reader
	SetReadDeadline(time.Time) error
}

// deadlineGuard sets the read deadline before every read of a stream:
// while waiting for a frame the idle timeout from the last complete frame
// (begin) or the connection's start, never from a stray byte; once its first bytes are in,
// their arrival + the read timeout + one second per minRate bytes, so a
// frame that trickles in (slow-loris) or stops half-way is cut off.
// Octet counting is the syslog.Reader's: the guard learns of a frame's
// start from the first bytes that come in after begin.
type deadlineGuard struct {
	r           deadliner
	idle, frame time.Duration
	minRate     int
	stopping    *atomic.Bool

	lastFrame  time.Time // when the last frame ended (begin), or the connection opened
	inFrame    bool
	frameStart time.Time
	frameBytes int
}

// begin is called before each frame is read: the last one ended now.
func (g *deadlineGuard) begin() { g.inFrame, g.lastFrame = false, time.Now() }

func (g *deadlineGuard) Read(p []byte) (int, error) {
	now := time.Now()
	deadline := g.lastFrame.Add(g.idle)
	if g.inFrame {
		deadline = ingest.FrameDeadline(g.frameStart, g.frame, g.frameBytes, g.minRate)
	}
	_ = g.r.SetReadDeadline(deadline)
	// Shutdown sets stopping, then a deadline in the past: re-checking after
	// our own deadline is set means one of the two always wins.
	if g.stopping.Load() {
		_ = g.r.SetReadDeadline(now)
	}
	n, err := g.r.Read(p)
	if n > 0 && !g.inFrame {
		g.inFrame, g.frameStart, g.frameBytes = true, now, 0
	}
	g.frameBytes += n
	return n, err
}
