// Package hl7v2 parses HL7 v2 messages (ER7 "pipe" encoding) and builds the
// replies hinscore sends (ACK, RSP). It is hinscore's own parser: it indexes
// segments once and splits fields lazily on access, without copying the
// message.
package hl7v2

import (
	"bytes"
	"errors"
	"fmt"
)

// Sentinel errors, wrapped in a *ParseError that says where.
var (
	ErrEmpty            = errors.New("hl7v2: empty message")
	ErrNoMSH            = errors.New("hl7v2: message does not start with MSH")
	ErrBadDelimiters    = errors.New("hl7v2: bad delimiters in MSH-1/MSH-2")
	ErrBadSegmentName   = errors.New("hl7v2: bad segment name")
	ErrEmptyControlID   = errors.New("hl7v2: empty message control id")
	ErrEmptyMessageType = errors.New("hl7v2: empty message type")
)

// ParseError says which segment and field of a message is wrong.
type ParseError struct {
	Segment      string // segment name, "" when unreadable
	SegmentIndex int    // 1-based position of the segment in the message (or file); 0 when unknown
	// Sequence is the 1-based occurrence of Segment among the segments of
	// that name (the third BTS of a file is BTS 3, wherever it stands), as
	// ERR-2.2 locates it; 0 when it is the position's (MSH, always 1).
	Sequence int
	Field    int // field number as in the standard (MSH-1 is the field separator); 0 for the whole segment
	// Name is, for ErrBadSegmentName, the bad name as found: the
	// segment's bytes up to its first field separator, at most 8.
	Name   string
	Reason string
	Err    error // sentinel, for errors.Is
}

func (e *ParseError) Error() string {
	loc := "message"
	switch {
	case e.Segment != "" && e.Field > 0:
		loc = fmt.Sprintf("%s-%d", e.Segment, e.Field)
	case e.Segment != "":
		loc = e.Segment
	}
	if e.SegmentIndex > 0 {
		loc = fmt.Sprintf("%s (segment %d)", loc, e.SegmentIndex)
	}
	return "hl7v2: " + loc + ": " + e.Reason
}

// Unwrap returns the sentinel.
func (e *ParseError) Unwrap() error { return e.Err }

// Delimiters are a message's encoding characters, read from MSH-1 and MSH-2.
type Delimiters struct {
	Field, Component, Repetition, Escape, SubComponent byte
	// Truncation is the v2.7 truncation character (the fifth MSH-2
	// character); 0 when the message has none.
	Truncation byte
}

// DefaultDelimiters are |^~\& (what hinscore uses when it cannot read any).
var DefaultDelimiters = Delimiters{Field: '|', Component: '^', Repetition: '~', Escape: '\\', SubComponent: '&'}

// EncodingCharacters is the MSH-2 value for d.
func (d Delimiters) EncodingCharacters() string {
	b := []byte{d.Component, d.Repetition, d.Escape, d.SubComponent}
	if d.Truncation != 0 {
		b = append(b, d.Truncation)
	}
	return string(b)
}

type span struct{ start, end int }

// Message is a parsed HL7 v2 message. It refers to the bytes given to Parse,
// which the caller must not change while the Message is in use.
type Message struct {
	data    []byte
	delims  Delimiters
	charset Charset
	segs    []span   // each segment's bytes, without its terminator
	inline  [16]span // segs of a message of up to 16 segments, allocated with it
}

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// Parse indexes the segments of one message. It checks the header (MSH
// first, delimiters, MSH-9 and MSH-10 present) and segment names; fields are
// split only when they are read.
func Parse(data []byte) (*Message, error) {
	m, err := ParseTolerant(data)
	if err != nil {
		return nil, err
	}
	if t := m.Raw("MSH-9.1"); len(t) == 0 || isNull(t) {
		return nil, &ParseError{Segment: "MSH", SegmentIndex: 1, Field: 9, Reason: "message type is empty", Err: ErrEmptyMessageType}
	}
	if id := m.Raw("MSH-10"); len(id) == 0 || isNull(id) {
		return nil, &ParseError{Segment: "MSH", SegmentIndex: 1, Field: 10, Reason: "message control id is empty", Err: ErrEmptyControlID}
	}
	return m, nil
}

// ParseTolerant is Parse without the checks of MSH-9 and MSH-10: a message
// without its type or control id is still a message a network carried,
// which an observer records (flagged) rather than loses. Callers read
// MSH-9 and MSH-10 knowing they may be empty.
func ParseTolerant(data []byte) (*Message, error) {
	data = bytes.TrimPrefix(data, utf8BOM)
	m := &Message{data: data}
	m.segs = m.inline[:0]
	// Segments end in CR, LF or CRLF: the next of each is found with
	// IndexByte and kept until passed, so a message with only one kind is
	// still scanned once.
	cr, lf := -1, -1
	next := func(c byte, from int) int {
		if i := bytes.IndexByte(data[from:], c); i >= 0 {
			return from + i
		}
		return len(data)
	}
	for pos := 0; pos < len(data); {
		if cr < pos {
			cr = next('\r', pos)
		}
		if lf < pos {
			lf = next('\n', pos)
		}
		end := min(cr, lf)
		if end > pos { // blank lines between segments are tolerated
			m.segs = append(m.segs, span{pos, end})
		}
		pos = end + 1
	}
	if len(m.segs) == 0 {
		return nil, &ParseError{Reason: "no segments", Err: ErrEmpty}
	}
	first := data[m.segs[0].start:m.segs[0].end]
	if len(first) < 3 || string(first[:3]) != "MSH" {
		return nil, &ParseError{SegmentIndex: 1, Reason: fmt.Sprintf("first segment starts with %q, want MSH", prefix(first, 8)), Err: ErrNoMSH}
	}
	d, err := readDelimiters(first)
	if err != nil {
		return nil, err
	}
	m.delims = d
	for i, s := range m.segs {
		seg := data[s.start:s.end]
		if !validSegmentName(seg, d.Field) {
			name := seg
			if j := bytes.IndexByte(seg, d.Field); j >= 0 {
				name = seg[:j]
			}
			return nil, &ParseError{SegmentIndex: i + 1, Name: string(prefix(name, 8)),
				Reason: fmt.Sprintf("segment starts with %q, want a 3-character name", prefix(seg, 8)), Err: ErrBadSegmentName}
		}
	}
	m.charset = declaredCharset(d, m.Raw("MSH-18(1)"))
	return m, nil
}

func readDelimiters(msh []byte) (Delimiters, error) {
	bad := func(field int, reason string) (Delimiters, error) {
		return Delimiters{}, &ParseError{Segment: "MSH", SegmentIndex: 1, Field: field, Reason: reason, Err: ErrBadDelimiters}
	}
	if len(msh) < 8 {
		return bad(1, "MSH too short to hold its delimiters")
	}
	fs := msh[3]
	enc := msh[4:]
	if i := bytes.IndexByte(enc, fs); i >= 0 {
		enc = enc[:i]
	}
	if len(enc) != 4 && len(enc) != 5 {
		return bad(2, fmt.Sprintf("encoding characters %q: want 4 or 5 characters", enc))
	}
	d := Delimiters{Field: fs, Component: enc[0], Repetition: enc[1], Escape: enc[2], SubComponent: enc[3]}
	if len(enc) == 5 {
		d.Truncation = enc[4]
	}
	all := append([]byte{fs}, enc...)
	for i, c := range all {
		// Printable ASCII only: a byte of 0x80 or above would cut UTF-8
		// and 8859/1 text apart, and no encoder could escape it reliably.
		if c <= ' ' || c > '~' || isAlnum(c) {
			return bad(1+min(i, 1), fmt.Sprintf("delimiter %q is not allowed (printable ASCII, not a letter or digit)", c))
		}
		if bytes.IndexByte(all[i+1:], c) >= 0 {
			return bad(1+min(i, 1), fmt.Sprintf("delimiter %q used twice", c))
		}
	}
	return d, nil
}

func validSegmentName(seg []byte, fs byte) bool {
	if len(seg) < 3 || (len(seg) > 3 && seg[3] != fs) {
		return false
	}
	for _, c := range seg[:3] {
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func prefix(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

// Delimiters returns the message's encoding characters.
func (m *Message) Delimiters() Delimiters { return m.delims }

// Bytes returns the message as given to Parse (without a BOM).
func (m *Message) Bytes() []byte { return m.data }

// SegmentCount is the number of segments.
func (m *Message) SegmentCount() int { return len(m.segs) }

// SegmentName returns the name of the i-th segment (0-based).
func (m *Message) SegmentName(i int) string {
	s := m.segs[i]
	return string(m.data[s.start : s.start+3])
}

// SegmentBytes returns the i-th segment (0-based) without its terminator.
func (m *Message) SegmentBytes(i int) []byte {
	s := m.segs[i]
	return m.data[s.start:s.end]
}

// Count returns how many segments are named name.
func (m *Message) Count(name string) int {
	n := 0
	for i := range m.segs {
		if m.segName(i) == name {
			n++
		}
	}
	return n
}

// Has reports whether the message holds a segment named name.
func (m *Message) Has(name string) bool { return m.segmentIndex(name, 1) >= 0 }

func (m *Message) segName(i int) string {
	s := m.segs[i]
	// The conversion does not allocate when only compared.
	return string(m.data[s.start : s.start+3])
}

// segmentIndex returns the index of the occ-th (1-based) segment named name, or -1.
func (m *Message) segmentIndex(name string, occ int) int {
	for i := range m.segs {
		s := m.segs[i]
		if string(m.data[s.start:s.start+3]) == name {
			occ--
			if occ == 0 {
				return i
			}
		}
	}
	return -1
}
