package mllpingest

import (
	"errors"
	"io"

	"github.com/hinscore/hinscore/services/hl7v2/mllp"
)

// errJunk reports bytes outside MLLP frames.
var errJunk = errors.New("mllpingest: bytes outside an MLLP frame")

// maxJunk is how much of the junk is kept for the dead letter.
const maxJunk = 64 << 10

// frameGuard sits between the connection and the mllp.Reader and fails as
// soon as a byte arrives outside a frame. The mllp.Reader alone would keep
// reading junk until the next start block or EOF, so a peer speaking
// another protocol would hold the connection until the idle timeout.
// It also keeps the junk for the dead letter.
type frameGuard struct {
	r       io.Reader
	inFrame bool
	junk    []byte
	err     error
}

func (g *frameGuard) Read(p []byte) (int, error) {
	if g.err != nil {
		return 0, g.err
	}
	n, err := g.r.Read(p)
	for i := 0; i < n; i++ {
		b := p[i]
		if g.inFrame {
			if b == mllp.EndBlock {
				g.inFrame = false
			}
			continue
		}
		switch b {
		case mllp.StartBlock:
			g.inFrame = true
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
