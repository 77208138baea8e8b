// Package mllp frames HL7 v2 messages for the Minimal Lower Layer Protocol:
// 0x0B, the message, 0x1C 0x0D.
package mllp

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// Frame bytes.
const (
	StartBlock     byte = 0x0B
	EndBlock       byte = 0x1C
	CarriageReturn byte = 0x0D
)

// Errors a Reader returns. After ErrFrameTooLarge the reader has skipped to
// the end of the oversized frame and can go on reading.
var (
	ErrFrameTooLarge = errors.New("mllp: frame too large")
	ErrNoStartBlock  = errors.New("mllp: bytes outside a frame")
	ErrBadEnd        = errors.New("mllp: end block not followed by carriage return")
)

// Reader reads MLLP frames from a stream.
type Reader struct {
	r   *bufio.Reader
	max int
	buf []byte
}

// NewReader reads frames of at most maxBytes payload from r.
func NewReader(r io.Reader, maxBytes int) *Reader {
	return &Reader{r: bufio.NewReaderSize(r, 64<<10), max: maxBytes}
}

// ReadFrame returns the next frame's payload. The slice is valid until the
// next call. Bytes between frames other than CR/LF are an error
// (ErrNoStartBlock, with the junk skipped up to the next start block).
// io.EOF means the peer closed cleanly between frames; io.ErrUnexpectedEOF
// means it closed inside a frame.
func (m *Reader) ReadFrame() ([]byte, error) {
	junk := false
	for {
		b, err := m.r.ReadByte()
		if err != nil {
			if junk && err == io.EOF {
				return nil, ErrNoStartBlock
			}
			return nil, err
		}
		if b == StartBlock {
			break
		}
		if b == '\r' || b == '\n' {
			continue
		}
		junk = true
	}
	if junk {
		_ = m.r.UnreadByte()
		return nil, ErrNoStartBlock
	}
	m.buf = m.buf[:0]
	tooLarge := false
	for {
		chunk, err := m.r.ReadSlice(EndBlock)
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			if err == io.EOF {
				return nil, io.ErrUnexpectedEOF
			}
			return nil, err
		}
		done := err == nil
		if done {
			chunk = chunk[:len(chunk)-1]
		}
		if !tooLarge {
			if len(m.buf)+len(chunk) > m.max {
				tooLarge = true
				m.buf = m.buf[:0]
			} else {
				m.buf = append(m.buf, chunk...)
			}
		}
		if done {
			break
		}
	}
	cr, err := m.r.ReadByte()
	if err != nil {
		if err == io.EOF {
			return nil, io.ErrUnexpectedEOF
		}
		return nil, err
	}
	if cr != CarriageReturn {
		_ = m.r.UnreadByte()
		return nil, ErrBadEnd
	}
	if tooLarge {
		return nil, fmt.Errorf("%w: over %d bytes", ErrFrameTooLarge, m.max)
	}
	return m.buf, nil
}

// AppendFrame appends msg framed for MLLP to dst.
func AppendFrame(dst, msg []byte) []byte {
	dst = append(dst, StartBlock)
	dst = append(dst, msg...)
	return append(dst, EndBlock, CarriageReturn)
}

// WriteFrame writes msg as one MLLP frame.
func WriteFrame(w io.Writer, msg []byte) error {
	if bytes.IndexByte(msg, EndBlock) >= 0 {
		return fmt.Errorf("mllp.WriteFrame: message contains the end block byte")
	}
	_, err := w.Write(AppendFrame(make([]byte, 0, len(msg)+3), msg))
	if err != nil {
		return fmt.Errorf("mllp.WriteFrame: %w", err)
	}
	return nil
}
