package hl7v2

import "fmt"

// Validate reports whether d can encode a message: six distinct
// characters (five without a truncation character), none a letter, digit,
// space, CR or LF.
func (d Delimiters) Validate() error {
	all := []byte{d.Field, d.Component, d.Repetition, d.Escape, d.SubComponent}
	if d.Truncation != 0 {
		all = append(all, d.Truncation)
	}
	for i, c := range all {
		if c == 0 || c == '\r' || c == '\n' || c == ' ' || isAlnum(c) {
			return fmt.Errorf("%w: delimiter %q is not allowed", ErrBadDelimiters, c)
		}
		for _, o := range all[i+1:] {
			if o == c {
				return fmt.Errorf("%w: delimiter %q used twice", ErrBadDelimiters, c)
			}
		}
	}
	return nil
}

// Encode writes the message with the delimiters d, segments ended by CR.
// Structure is kept exactly (every field, repetition, component and
// sub-component, trailing empties and explicit nulls included); escape
// sequences are carried over with d's escape character, and data bytes that
// are delimiters of d are escaped. So Parse(Encode(d)) reads the same values
// as m, and encoding back with m's delimiters gives the same bytes as
// Encode(m.Delimiters()): the canonical form of m (CR endings, no BOM, no
// blank lines).
func (m *Message) Encode(d Delimiters) ([]byte, error) {
	if err := d.Validate(); err != nil {
		return nil, fmt.Errorf("hl7v2.Encode: %w", err)
	}
	out := make([]byte, 0, len(m.data)+len(m.data)/16)
	for i := range m.segs {
		seg := m.SegmentBytes(i)
		out = append(out, seg[:3]...)
		rest := seg[3:]
		if i == 0 { // MSH: its own delimiters, then the fields from MSH-3
			out = append(out, d.Field)
			out = append(out, d.EncodingCharacters()...)
			rest = rest[1:]
			for len(rest) > 0 && rest[0] != m.delims.Field {
				rest = rest[1:]
			}
		}
		out = transcode(out, rest, m.delims, d)
		out = append(out, '\r')
	}
	return out, nil
}

// transcode re-encodes b from delimiters o to d.
func transcode(out, b []byte, o, d Delimiters) []byte {
	valOut, valSrc := len(out), 0 // where the current value starts in out and in b
	next := func(out []byte, i int, delim byte) []byte {
		out = sameNull(out, valOut, b[valSrc:i], d)
		out = append(out, delim)
		valOut, valSrc = len(out), i+1
		return out
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch c {
		case o.Field:
			out = next(out, i, d.Field)
			continue
		case o.Component:
			out = next(out, i, d.Component)
			continue
		case o.Repetition:
			out = next(out, i, d.Repetition)
			continue
		case o.SubComponent:
			out = next(out, i, d.SubComponent)
			continue
		case o.Escape:
			j, carry := escapeEnd(b, i, o, d)
			switch {
			case j == i+2 && delimiterEscape(b[i+1]):
				// \F\ \S\ \T\ \R\ \E\ name a character of the old set, which
				// may be plain data in the new one.
				out = appendEscapedByte(out, o.unescapeDelimiter(b[i+1]), d)
				i = j
				continue
			case j > i && string(b[i+1:j]) == ".br":
				// A line break: written as d writes one, whatever the
				// sequence's bytes are in either set (its '.' may be a
				// truncation character, which would otherwise make it text).
				out = appendEscapedByte(out, '\r', d)
				i = j
				continue
			case j > i && carry:
				out = append(out, d.Escape)
				out = append(out, b[i+1:j]...)
				out = append(out, d.Escape)
				i = j
				continue
			case j > i:
				// A sequence Unescape keeps verbatim that holds a delimiter of
				// the new set: it becomes the same text, escaped, so that no
				// new pairing of escape characters appears.
				for _, x := range b[i : j+1] {
					out = appendEscapedByte(out, x, d)
				}
				i = j
				continue
			}
			// An escape character that opens no sequence is data (Unescape
			// keeps it literally).
		}
		out = appendEscapedByte(out, c, d)
	}
	return sameNull(out, valOut, b[valSrc:], d)
}

// sameNull keeps a value null, or not null, whatever the delimiters make
// of its characters. A null ("") stays "" even where the quotation mark
// is the escape character or a delimiter (where it would otherwise be
// written escaped). Two quotation marks of data, such as \R\\R\ when the
// repetition separator is a quotation mark, would read as the null once
// written with delimiters in which the quotation mark is plain: the first
// is then written as \X22\.
func sameNull(out []byte, valOut int, src []byte, d Delimiters) []byte {
	switch null := isNull(out[valOut:]); {
	case isNull(src) && !null:
		out = append(out[:valOut], '"', '"')
	case !isNull(src) && null:
		out = append(out[:valOut], d.Escape, 'X', '2', '2', d.Escape, '"')
	}
	return out
}

func delimiterEscape(c byte) bool {
	return c == 'F' || c == 'S' || c == 'T' || c == 'R' || c == 'E'
}

// unescapeDelimiter is the character a one-letter escape names.
func (d Delimiters) unescapeDelimiter(c byte) byte {
	switch c {
	case 'F':
		return d.Field
	case 'S':
		return d.Component
	case 'T':
		return d.SubComponent
	case 'R':
		return d.Repetition
	}
	return d.Escape
}

// appendEscapedByte is AppendEscaped for one byte, which may be any byte
// (a string conversion of a byte over 0x7F would make it a rune).
func appendEscapedByte(dst []byte, c byte, d Delimiters) []byte {
	if c < 0x80 {
		return d.AppendEscaped(dst, string(rune(c)))
	}
	return append(dst, c)
}

// escapeEnd returns the index of the escape character closing the sequence
// opened at i within its value, or -1; carry reports whether the sequence
// can be written as it is with d (no byte of it is a delimiter of d, nor
// o's truncation character).
func escapeEnd(b []byte, i int, o, d Delimiters) (int, bool) {
	carry := true
	for j := i + 1; j < len(b); j++ {
		c := b[j]
		switch {
		case c == o.Escape:
			return j, carry
		case c == o.Field || c == o.Component || c == o.Repetition || c == o.SubComponent || c == '\r' || c == '\n':
			return -1, false
		case c == d.Field || c == d.Component || c == d.Repetition || c == d.SubComponent || c == d.Escape ||
			(d.Truncation != 0 && c == d.Truncation):
			carry = false
		case o.Truncation != 0 && c == o.Truncation:
			// Encoding with o itself writes such a sequence as text (the
			// truncation character has no escape but hex); with any other
			// set it must too, or its value would change with the escape
			// character while the canonical form's does not.
			carry = false
		}
	}
	return -1, false
}
