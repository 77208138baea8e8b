package hl7v2

import (
	"errors"
	"fmt"
	"strconv"
)

// ErrBadPath is returned by Lookup for a path it cannot read.
var ErrBadPath = errors.New("hl7v2: bad path")

// Path addresses one value: SEG[(occurrence)]-FIELD[(repetition)][.COMPONENT[.SUBCOMPONENT]],
// e.g. "MSA-2", "PID-3(2).4", "OBX(3)-5", "QPD-3.1". Numbers are 1-based;
// occurrence and repetition default to 1. A path that stops at a field or
// component addresses all of it, inner delimiters included.
type Path struct {
	Segment      string
	Occurrence   int
	Field        int
	Repetition   int
	Component    int // 0: the whole repetition
	SubComponent int // 0: the whole component
}

// ParsePath reads a path.
func ParsePath(s string) (Path, error) {
	p := Path{Occurrence: 1, Repetition: 1}
	bad := func(why string) (Path, error) { return Path{}, fmt.Errorf("%w %q: %s", ErrBadPath, s, why) }
	if len(s) < 5 {
		return bad("too short")
	}
	p.Segment = s[:3]
	rest := s[3:]
	var err error
	if rest[0] == '(' {
		if p.Occurrence, rest, err = paren(rest); err != nil {
			return bad("segment occurrence: " + err.Error())
		}
	}
	if len(rest) == 0 || rest[0] != '-' {
		return bad("want '-' after the segment")
	}
	if p.Field, rest, err = number(rest[1:]); err != nil {
		return bad("field: " + err.Error())
	}
	if len(rest) > 0 && rest[0] == '(' {
		if p.Repetition, rest, err = paren(rest); err != nil {
			return bad("repetition: " + err.Error())
		}
	}
	if len(rest) > 0 && rest[0] == '.' {
		if p.Component, rest, err = number(rest[1:]); err != nil {
			return bad("component: " + err.Error())
		}
	}
	if len(rest) > 0 && rest[0] == '.' {
		if p.SubComponent, rest, err = number(rest[1:]); err != nil {
			return bad("sub-component: " + err.Error())
		}
	}
	if rest != "" {
		return bad("unexpected " + strconv.Quote(rest))
	}
	return p, nil
}

func paren(s string) (int, string, error) {
	n, rest, err := number(s[1:])
	if err != nil {
		return 0, "", err
	}
	if len(rest) == 0 || rest[0] != ')' {
		return 0, "", errors.New("want ')'")
	}
	return n, rest[1:], nil
}

func number(s string) (int, string, error) {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == 0 || i > 6 {
		return 0, "", errors.New("want a number")
	}
	n := 0
	for _, c := range s[:i] { // at most 6 digits: no overflow
		n = n*10 + int(c-'0')
	}
	if n < 1 {
		return 0, "", errors.New("numbers start at 1")
	}
	return n, s[i:], nil
}

// Get returns the unescaped value at path, "" when absent or when the path
// is malformed (use Lookup to tell them apart).
func (m *Message) Get(path string) string {
	v, _ := m.Lookup(path)
	return v
}

// Lookup returns the unescaped value at path.
func (m *Message) Lookup(path string) (string, error) {
	p, err := ParsePath(path)
	if err != nil {
		return "", err
	}
	raw := m.At(p)
	if p.Segment == "MSH" && p.Field <= 2 {
		return string(raw), nil // the delimiters themselves are never escaped
	}
	return m.Decode(raw), nil
}

// IsNull reports whether the value at path is the explicit null "" (Get
// returns "" for it, as for an empty value).
func (m *Message) IsNull(path string) bool { return isNull(m.Raw(path)) }

// Raw returns the bytes at path as they are in the message (escapes not
// decoded), nil when absent. The slice aliases the message.
func (m *Message) Raw(path string) []byte {
	p, err := ParsePath(path)
	if err != nil {
		return nil
	}
	return m.At(p)
}

// At returns the raw bytes at p, nil when absent.
func (m *Message) At(p Path) []byte {
	f := m.field(p.Segment, p.Occurrence, p.Field)
	if f == nil || (p.Segment == "MSH" && p.Field <= 2) {
		return f
	}
	d := m.delims
	v, ok := nth(f, d.Repetition, p.Repetition-1)
	if !ok || p.Component == 0 {
		return v
	}
	if v, ok = nth(v, d.Component, p.Component-1); !ok || p.SubComponent == 0 {
		return v
	}
	v, _ = nth(v, d.SubComponent, p.SubComponent-1)
	return v
}

// Repetitions returns how many repetitions the field at path has (0 when
// empty or absent). Repetition, component and sub-component in path are ignored.
func (m *Message) Repetitions(path string) int {
	p, err := ParsePath(path)
	if err != nil {
		return 0
	}
	f := m.field(p.Segment, p.Occurrence, p.Field)
	if len(f) == 0 {
		return 0
	}
	n := 1
	for _, c := range f {
		if c == m.delims.Repetition {
			n++
		}
	}
	return n
}

// field returns field number n of the occ-th segment called name.
func (m *Message) field(name string, occ, n int) []byte {
	i := m.segmentIndex(name, occ)
	if i < 0 {
		return nil
	}
	seg := m.SegmentBytes(i)
	if name == "MSH" {
		switch {
		case n == 1:
			return seg[3:4]
		default:
			n-- // MSH-1 is the separator itself, so MSH-n is the (n-1)-th token
		}
	}
	v, _ := nth(seg, m.delims.Field, n)
	return v
}

// nth returns the n-th (0-based) sep-separated part of b.
func nth(b []byte, sep byte, n int) ([]byte, bool) {
	start := 0
	for i := 0; i < len(b); i++ {
		if b[i] != sep {
			continue
		}
		if n == 0 {
			return b[start:i], true
		}
		n--
		start = i + 1
	}
	if n == 0 {
		return b[start:], true
	}
	return nil, false
}
