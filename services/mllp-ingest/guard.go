package mllpingest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hinscore/hinscore/services/lib/bus/ingest"
	"github.com/hinscore/hinscore/services/lib/hl7v2/mllp"
)

// errJunk reports a run of bytes outside MLLP frames too long to be stray
// noise: the peer speaks another protocol, or no MLLP at all.
var errJunk = errors.New("mllpingest: bytes outside an MLLP frame")

// maxKept is how much of an oversized frame, or of a run of bytes outside
// frames, is kept for the dead letter. A run outside frames that reaches
// it closes the connection.
const maxKept = 64 << 10

// deadliner is the part of net.Conn the guard drives.
type deadliner interface {
	io.Reader
	SetReadDeadline(time.Time) error
}

// frameGuard sits between the connection and the mllp.Reader and checks
// the framing as the bytes arrive, because the mllp.Reader reads ahead and
// keeps nothing of what it rejects:
//   - bytes outside a frame (other than CR/LF between frames) are counted
//     in outside and passed on for the reader to skip; a run of maxKept of
//     them fails with errJunk, keeping the run for the dead letter;
//   - a frame over max bytes fails with mllp.ErrFrameTooLarge as soon as
//     its limit is passed (the rest is never read), keeping the frame's
//     first bytes (up to maxKept) for the reply and the dead letter;
//   - an end block not followed by CR fails with mllp.ErrBadEnd, keeping
//     the frame.
//
// It also sets the read deadline before every read: between frames the
// idle timeout from the last complete frame (frameDone) or the
// connection's start, so that stray bytes between frames (a CR every few
// minutes) never keep a connection open; inside a frame, the frame's start + ReadTimeout + one
// second per minRate bytes received, so a frame that trickles in slower
// than minRate (slow-loris) or stops half-way is cut off whatever the idle
// timeout. Once failed, every read returns the same error: the bytes the
// reader already holds are served first.
type frameGuard struct {
	r           deadliner
	idle, frame time.Duration
	minRate     int
	max         int                // largest frame payload, bytes
	outside     prometheus.Counter // bytes outside frames
	stopping    *atomic.Bool

	lastFrame  time.Time // when the last complete frame was handed on, or the connection opened
	inFrame    bool
	afterEnd   bool // the last byte was an end block: a CR must follow
	frameStart time.Time
	frameBytes int
	head       []byte // the current frame's first bytes, up to maxKept
	junk       []byte // the current run outside frames, up to maxKept
	err        error
}

func (g *frameGuard) deadline(now time.Time) time.Time {
	if !g.inFrame {
		return g.lastFrame.Add(g.idle)
	}
	return ingest.FrameDeadline(g.frameStart, g.frame, g.frameBytes, g.minRate)
}

func (g *frameGuard) Read(p []byte) (int, error) {
	if g.err != nil {
		return 0, g.err
	}
	now := time.Now()
	_ = g.r.SetReadDeadline(g.deadline(now))
	// Shutdown sets stopping, then a deadline in the past: re-checking after
	// our own deadline is set means one of the two always wins.
	if g.stopping != nil && g.stopping.Load() {
		_ = g.r.SetReadDeadline(now)
	}
	n, err := g.r.Read(p)
	good, outside := g.check(p[:n], now)
	if outside > 0 {
		g.outside.Add(float64(outside))
	}
	if g.err != nil {
		if good == 0 {
			return 0, g.err
		}
		return good, nil // the frames before the fault are still served
	}
	return n, err
}

// check follows the framing through b and returns how many of its bytes
// come before a fault (all of them when there is none) and how many of
// those lay outside frames.
func (g *frameGuard) check(b []byte, now time.Time) (good, outside int) {
	for i := 0; i < len(b); {
		if g.inFrame {
			body := b[i:]
			end := bytes.IndexByte(body, mllp.EndBlock)
			if end >= 0 {
				body = body[:end]
			}
			if over := g.frameBytes + len(body) - g.max; over > 0 {
				body = body[:len(body)-over]
				g.keep(body)
				g.err = fmt.Errorf("%w: over %d bytes", mllp.ErrFrameTooLarge, g.max)
				return i + len(body), outside
			}
			g.keep(body)
			if end < 0 {
				return len(b), outside
			}
			g.inFrame, g.afterEnd = false, true
			i += end + 1
			continue
		}
		c := b[i]
		if g.afterEnd {
			g.afterEnd = false
			if c != mllp.CarriageReturn {
				g.err = fmt.Errorf("%w: 0x%02x after the end block", mllp.ErrBadEnd, c)
				return i, outside
			}
			i++
			continue
		}
		switch {
		case c == mllp.StartBlock:
			g.inFrame, g.frameStart, g.frameBytes = true, now, 0
			g.head, g.junk = g.head[:0], g.junk[:0]
		case len(g.junk) == 0 && (c == '\r' || c == '\n'):
			// Line ends between frames are common slack, not junk.
		default:
			if len(g.junk) == maxKept {
				g.err = errJunk
				return i, outside
			}
			g.junk = append(g.junk, c)
			if c != '\r' && c != '\n' {
				outside++
			}
		}
		i++
	}
	return len(b), outside
}

// keep counts frame bytes and keeps the first maxKept of them.
func (g *frameGuard) keep(body []byte) {
	g.frameBytes += len(body)
	if room := maxKept - len(g.head); room > 0 {
		g.head = append(g.head, body[:min(room, len(body))]...)
	}
}

// frameDone restarts the idle timeout: a complete frame was handed on.
func (g *frameGuard) frameDone() { g.lastFrame = time.Now() }

// InFrame reports whether the last byte read left a frame open.
func (g *frameGuard) InFrame() bool { return g.inFrame }
