// Package syslog reads the syslog messages that IHE ATNA actors send to an
// Audit Record Repository: RFC 5425 frames over TLS, RFC 5426 datagrams
// over UDP, and the messages themselves in RFC 5424 form or the older BSD
// form of RFC 3164.
//
// # Framing
//
// Over TLS a stream carries octet-counted frames only ("MSG-LEN SP
// SYSLOG-MSG", RFC 5425 section 4.3). Non-transparent framing (each
// message ended by LF, RFC 6587) is refused, not guessed: IHE ITI-20
// requires RFC 5425 of a Secure Node sending over TLS, and an ATNA
// AuditMessage is XML that senders commonly pretty-print, so an LF inside
// it would cut one audit record into several corrupt ones without any
// error. A stream that starts with '<' instead of a length therefore ends
// in ErrBadLength, which names the framing it saw.
//
// Over UDP (RFC 5426) one datagram is one message and there is no framing:
// pass each datagram to ParseDatagram.
package syslog

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// maxLenDigits bounds MSG-LEN: ten digits is more than any limit a caller
// can set, and keeps the length within an int64.
const maxLenDigits = 10

// Errors a Reader returns.
//
// After ErrFrameTooLarge the Reader has skipped the whole oversized frame
// (read and dropped, never buffered) and can go on reading the next one.
//
// ErrBadLength means the framing is lost: the MSG-LEN is not digits, has a
// leading zero, is longer than ten digits or is not followed by a space, or
// the stream ended before the announced length (then io.ErrUnexpectedEOF is
// wrapped too). Octet counting cannot find the next frame again, so the
// Reader returns the same error from then on and the caller must close the
// connection.
var (
	ErrFrameTooLarge = errors.New("syslog: frame too large")
	ErrBadLength     = errors.New("syslog: bad frame length")
)

// Reader reads RFC 5425 octet-counted frames from a stream.
type Reader struct {
	r       *bufio.Reader
	max     int
	buf     []byte
	dropped []byte // the head of the last oversized frame
	err     error  // sticky: the framing is lost, or the stream failed
}

// MaxDropped is how much of an oversized frame a Reader keeps (Dropped):
// enough to name its sender in a dead letter, never the whole frame.
const MaxDropped = 64 << 10

// NewReader reads frames of at most maxBytes of SYSLOG-MSG from r.
func NewReader(r io.Reader, maxBytes int) *Reader {
	return &Reader{r: bufio.NewReaderSize(r, 64<<10), max: maxBytes}
}

// ReadFrame returns the next frame's SYSLOG-MSG. The slice is valid until
// the next call. io.EOF means the peer closed cleanly between frames.
// Errors other than ErrFrameTooLarge repeat on every later call.
func (m *Reader) ReadFrame() ([]byte, error) {
	if m.err != nil {
		return nil, m.err
	}
	n, err := m.readLength()
	if err != nil {
		if errors.Is(err, ErrBadLength) {
			// What follows the broken length, as far as it is in, is what
			// a dead letter can show of the broken frame.
			more, _ := m.r.Peek(min(m.r.Buffered(), MaxDropped-len(m.dropped)))
			m.dropped = append(m.dropped, more...)
		}
		m.err = err
		return nil, err
	}
	if n > int64(m.max) {
		keep := min(n, int64(min(m.max, MaxDropped)))
		m.dropped = append(m.dropped[:0], make([]byte, keep)...)
		if _, err := io.ReadFull(m.r, m.dropped); err != nil {
			m.err = m.cut(err, n)
			return nil, m.err
		}
		if _, err := m.r.Discard(int(n - keep)); err != nil {
			m.err = m.cut(err, n)
			return nil, m.err
		}
		return nil, fmt.Errorf("%w: %d bytes, over %d", ErrFrameTooLarge, n, m.max)
	}
	if cap(m.buf) < int(n) {
		m.buf = make([]byte, n)
	}
	m.buf = m.buf[:n]
	if got, err := io.ReadFull(m.r, m.buf); err != nil {
		m.dropped = append(m.dropped[:0], m.buf[:min(got, MaxDropped)]...)
		m.err = m.cut(err, n)
		return nil, m.err
	}
	return m.buf, nil
}

// Dropped returns the first bytes (up to the limit and at most MaxDropped)
// of the frame the last ErrFrameTooLarge refused, or, after ErrBadLength,
// what was read of the broken frame (its length, and the bytes already
// received after it or of its body), valid until the next call of
// ReadFrame.
func (m *Reader) Dropped() []byte { return m.dropped }

// readLength reads MSG-LEN and the space after it.
func (m *Reader) readLength() (int64, error) {
	var n int64
	m.dropped = m.dropped[:0]
	for i := 0; ; i++ {
		b, err := m.r.ReadByte()
		if err == nil {
			m.dropped = append(m.dropped, b)
		}
		if err != nil {
			if err == io.EOF && i == 0 {
				return 0, io.EOF
			}
			return 0, m.cut(err, -1)
		}
		switch {
		case b == ' ' && i > 0:
			return n, nil
		case b == '0' && i == 0:
			return 0, fmt.Errorf("%w: leading zero", ErrBadLength)
		case b == '<' && i == 0:
			return 0, fmt.Errorf("%w: '<' where a length belongs (non-transparent framing is not accepted)", ErrBadLength)
		case b < '0' || b > '9':
			return 0, fmt.Errorf("%w: byte %q in the length", ErrBadLength, b)
		case i == maxLenDigits:
			return 0, fmt.Errorf("%w: more than %d digits", ErrBadLength, maxLenDigits)
		}
		n = n*10 + int64(b-'0')
	}
}

// cut names an end of stream inside a frame (n < 0: inside its length) as
// a lying length; other read errors pass through.
func (m *Reader) cut(err error, n int64) error {
	if err != io.EOF && err != io.ErrUnexpectedEOF {
		return fmt.Errorf("syslog.ReadFrame: %w", err)
	}
	if n < 0 {
		return fmt.Errorf("%w: stream ended inside the length: %w", ErrBadLength, io.ErrUnexpectedEOF)
	}
	return fmt.Errorf("%w: stream ended inside a frame of %d bytes: %w", ErrBadLength, n, io.ErrUnexpectedEOF)
}

// AppendFrame appends msg as one octet-counted frame to dst.
func AppendFrame(dst, msg []byte) []byte {
	dst = strconv.AppendInt(dst, int64(len(msg)), 10)
	dst = append(dst, ' ')
	return append(dst, msg...)
}
