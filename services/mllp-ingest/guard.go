package mllpingest

import (
	"errors"
	"io"
	"sync/atomic"
	"time"

	"github.com/hinscore/hinscore/services/hl7v2/mllp"
)

// errJunk reports bytes outside MLLP frames.
var errJunk = errors.New("mllpingest: bytes outside an MLLP frame")

// maxJunk is how much of the junk is kept for the dead letter.
const maxJunk = 64 << 10

// deadliner is the part of net.Conn the guard drives.
type deadliner interface {
	io.Reader
	SetReadDeadline(time.Time) error
}

// frameGuard sits between the connection and the mllp.Reader. It fails as
// soon as a byte arrives outside a frame: the mllp.Reader alone would keep
// reading junk until the next start block or EOF, so a peer speaking
// another protocol would hold the connection until the idle timeout. It
// keeps the junk for the dead letter. And it sets the read deadline before
// every read: between frames the idle timeout; inside a frame, the frame's
// start + ReadTimeout + one second per minRate bytes received, so a frame
// that trickles in slower than minRate (slow-loris) or stops half-way is
// cut off whatever the idle timeout.
type frameGuard struct {
	r           deadliner
	idle, frame time.Duration
	minRate     int
	stopping    *atomic.Bool

	inFrame    bool
	frameStart time.Time
	frameBytes int
	junk       []byte
	err        error
}

func (g *frameGuard) deadline(now time.Time) time.Time {
	if !g.inFrame {
		return now.Add(g.idle)
	}
	allowed := g.frame + time.Duration(float64(g.frameBytes)/float64(g.minRate)*float64(time.Second))
	return g.frameStart.Add(allowed)
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
	for i := 0; i < n; i++ {
		b := p[i]
		if g.inFrame {
			g.frameBytes++
			if b == mllp.EndBlock {
				g.inFrame = false
			}
			continue
		}
		switch b {
		case mllp.StartBlock:
			g.inFrame, g.frameStart, g.frameBytes = true, now, 0
		case '\r', '\n':
		default:
			g.junk = append(g.junk, p[i:min(n, i+maxJunk)]...)
			g.err = errJunk
			if i > 0 {
				return i, nil // the frames before the junk are still served
			}
			return 0, g.err
		}
	}
	return n, err
}

// InFrame reports whether the last byte read left a frame open.
func (g *frameGuard) InFrame() bool { return g.inFrame }
