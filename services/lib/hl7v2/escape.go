package hl7v2

import (
	"bytes"
	"strings"
)

// Unescape decodes the escape sequences of a value: \F\ \S\ \T\ \R\ \E\
// become the delimiters, \Xhh..\ the bytes it spells, \.br\ a carriage
// return; \H\ and \N\ (highlighting) are removed. Character-set switches
// (\Cxxyy\, \Mxxyyzz\), other formatting commands and anything malformed
// are kept as they are, so no information is lost.
func (d Delimiters) Unescape(raw []byte) string {
	e := d.Escape
	if bytes.IndexByte(raw, e) < 0 {
		return string(raw)
	}
	var b strings.Builder
	b.Grow(len(raw))
	for i := 0; i < len(raw); {
		c := raw[i]
		if c != e {
			b.WriteByte(c)
			i++
			continue
		}
		j := bytes.IndexByte(raw[i+1:], e)
		if j < 0 { // unterminated: literal
			b.Write(raw[i:])
			break
		}
		seq := raw[i+1 : i+1+j]
		whole := raw[i : i+2+j]
		i += 2 + j
		switch {
		case len(seq) == 1 && seq[0] == 'F':
			b.WriteByte(d.Field)
		case len(seq) == 1 && seq[0] == 'S':
			b.WriteByte(d.Component)
		case len(seq) == 1 && seq[0] == 'T':
			b.WriteByte(d.SubComponent)
		case len(seq) == 1 && seq[0] == 'R':
			b.WriteByte(d.Repetition)
		case len(seq) == 1 && seq[0] == 'E':
			b.WriteByte(d.Escape)
		case len(seq) == 1 && (seq[0] == 'H' || seq[0] == 'N'):
		case string(seq) == ".br":
			b.WriteByte('\r')
		case len(seq) > 1 && seq[0] == 'X' && len(seq)%2 == 1 && isHex(seq[1:]):
			for k := 1; k < len(seq); k += 2 {
				b.WriteByte(unhex(seq[k])<<4 | unhex(seq[k+1]))
			}
		default:
			b.Write(whole)
		}
	}
	return b.String()
}

// AppendEscaped appends s to dst with every delimiter escaped and CR/LF
// encoded (\.br\, \X0A\), so that Unescape gives s back.
func (d Delimiters) AppendEscaped(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case d.Field:
			dst = append(dst, d.Escape, 'F', d.Escape)
		case d.Component:
			dst = append(dst, d.Escape, 'S', d.Escape)
		case d.SubComponent:
			dst = append(dst, d.Escape, 'T', d.Escape)
		case d.Repetition:
			dst = append(dst, d.Escape, 'R', d.Escape)
		case d.Escape:
			dst = append(dst, d.Escape, 'E', d.Escape)
		case '\r':
			dst = append(dst, d.Escape, '.', 'b', 'r', d.Escape)
		case '\n':
			dst = append(dst, d.Escape, 'X', '0', 'A', d.Escape)
		default:
			if c == d.Truncation && c != 0 {
				// v2.7 has no escape for the truncation character; hex keeps it literal.
				dst = append(dst, d.Escape, 'X', hexDigits[c>>4], hexDigits[c&15], d.Escape)
				continue
			}
			dst = append(dst, c)
		}
	}
	return dst
}

// EscapeString returns s escaped for d.
func (d Delimiters) EscapeString(s string) string { return string(d.AppendEscaped(nil, s)) }

const hexDigits = "0123456789ABCDEF"

func isHex(b []byte) bool {
	for _, c := range b {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}
