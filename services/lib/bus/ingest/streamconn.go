package ingest

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// StreamConn is what a stream connection of either ingest holds and does
// alike: the connection and its peer's address, stopping at shutdown, the
// TLS handshake, and why a read ended it. A connection type embeds it
// (for StopReading and Close, which Conns calls).
type StreamConn struct {
	NC       net.Conn
	Remote   string
	stopping atomic.Bool
}

// NewStreamConn wraps an accepted connection.
func NewStreamConn(nc net.Conn) StreamConn {
	return StreamConn{NC: nc, Remote: nc.RemoteAddr().String()}
}

// StopReading makes the reader stop at its next read (Shutdown).
func (c *StreamConn) StopReading() {
	c.stopping.Store(true)
	_ = c.NC.SetReadDeadline(time.Now())
}

// Stopping is set once StopReading was called; a reader's guard checks it
// after setting its own deadline, so that one of the two always wins.
func (c *StreamConn) Stopping() *atomic.Bool { return &c.stopping }

// Close closes the connection at once.
func (c *StreamConn) Close() error { return c.NC.Close() }

// Handshake completes the TLS handshake of a TLS connection within
// timeout; nothing for plain TCP.
func (c *StreamConn) Handshake(timeout time.Duration) error {
	tc, ok := c.NC.(*tls.Conn)
	if !ok {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return tc.HandshakeContext(ctx)
}

// Why a read error ended a connection (ReadEnded).
const (
	EndedStopping = "stopping" // the server is shutting down
	EndedSlow     = "slow"     // a frame did not arrive in time (slow-loris, or cut off half-way)
	EndedIdle     = "idle"     // no complete frame came for the idle timeout (stray bytes between frames do not count)
	EndedOther    = "other"    // the peer went away, or the connection failed
)

// ReadEnded names why err, from a read, ended the connection; inFrame is
// whether a frame had begun.
func (c *StreamConn) ReadEnded(err error, inFrame bool) string {
	var ne net.Error
	switch {
	case c.stopping.Load():
		return EndedStopping
	case errors.As(err, &ne) && ne.Timeout() && inFrame:
		return EndedSlow
	case errors.As(err, &ne) && ne.Timeout():
		return EndedIdle
	}
	return EndedOther
}

// LogEnded logs why err, from a read, ended the connection (ReadEnded),
// at the level it deserves, and reports whether a frame was too slow: the
// caller counts that as a rejection.
func (c *StreamConn) LogEnded(log zerolog.Logger, err error, inFrame bool, l Limits) (slow bool) {
	switch c.ReadEnded(err, inFrame) {
	case EndedSlow:
		log.Warn().Dur("read_timeout", l.ReadTimeout).Int("min_rate", l.MinRate).Msg("closing connection: frame arriving too slowly")
		return true
	case EndedIdle:
		log.Info().Dur("idle_timeout", l.IdleTimeout).Msg("closing idle connection: no complete frame within the idle timeout")
	case EndedOther:
		log.Debug().Err(err).Msg("read")
	}
	return false
}

// FrameDeadline is when a frame begun at start, with n bytes in so far,
// must be complete: start + timeout + one second per minRate bytes.
func FrameDeadline(start time.Time, timeout time.Duration, n, minRate int) time.Time {
	return start.Add(timeout + time.Duration(float64(n)/float64(minRate)*float64(time.Second)))
}
