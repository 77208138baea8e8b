package atna

import (
	"bytes"
	"errors"
	"strconv"
	"unicode/utf8"
)

// scanner is a tokenizer for the part of XML 1.0 an AuditMessage uses:
// elements, attributes, text, CDATA, comments, processing instructions,
// the five predefined entities and character references. A markup
// declaration (<!DOCTYPE, <!ENTITY, ...) stops it. It works on the whole
// message in memory, so names, text and values are subslices of the input
// unless an entity had to be decoded; encoding/xml's Decoder copies every
// token and costs twice the time budget (see the README).
type scanner struct {
	data  []byte
	pos   int
	name  []byte // the element's qualified name (start and end tags)
	text  []byte // text or CDATA
	empty bool   // the start tag ended with "/>"
	attrs []attr
	buf   []byte // decoded values of the current token
}

type attr struct {
	local []byte // the name without its prefix
	value []byte // entity-decoded
}

type token int

const (
	tokEOF token = iota
	tokStart
	tokEnd
	tokText
	tokDecl // <! that is no comment or CDATA
)

// scanError is a malformed input at a byte offset.
type scanError struct {
	at     int
	reason string
}

func (e *scanError) Error() string { return e.reason }

func (s *scanner) errorf(at int, reason string) error {
	return &scanError{at: at, reason: reason}
}

// checkChars refuses invalid UTF-8 and the control characters XML 1.0
// does not allow, once for the whole input.
func checkChars(data []byte) error {
	for i, c := range data {
		if c < 0x20 && c != '\t' && c != '\n' && c != '\r' {
			return &scanError{at: i, reason: "control character " + strconv.Itoa(int(c))}
		}
	}
	if !utf8.Valid(data) {
		return &scanError{at: 0, reason: "invalid UTF-8"}
	}
	return nil
}

func (s *scanner) next() (token, error) {
	s.buf = s.buf[:0]
	s.attrs = s.attrs[:0]
	for {
		if s.pos >= len(s.data) {
			return tokEOF, nil
		}
		if s.data[s.pos] != '<' {
			return s.chars()
		}
		rest := s.data[s.pos:]
		switch {
		case bytes.HasPrefix(rest, []byte("<!--")):
			end := bytes.Index(rest[4:], []byte("--"))
			if end < 0 || 4+end+2 >= len(rest) {
				return 0, s.errorf(s.pos, "unterminated comment")
			}
			if rest[4+end+2] != '>' {
				return 0, s.errorf(s.pos+4+end, "-- inside a comment")
			}
			s.pos += 4 + end + 3
		case bytes.HasPrefix(rest, []byte("<![CDATA[")):
			end := bytes.Index(rest[9:], []byte("]]>"))
			if end < 0 {
				return 0, s.errorf(s.pos, "unterminated CDATA section")
			}
			s.text = rest[9 : 9+end]
			s.pos += 9 + end + 3
			return tokText, nil
		case bytes.HasPrefix(rest, []byte("<!")):
			return tokDecl, nil
		case bytes.HasPrefix(rest, []byte("<?")):
			if err := s.procInst(); err != nil {
				return 0, err
			}
		case bytes.HasPrefix(rest, []byte("</")):
			s.pos += 2
			if err := s.readName(); err != nil {
				return 0, err
			}
			s.space()
			if s.pos >= len(s.data) || s.data[s.pos] != '>' {
				return 0, s.errorf(s.pos, "end tag not closed by >")
			}
			s.pos++
			return tokEnd, nil
		default:
			s.pos++
			return tokStart, s.startTag()
		}
	}
}

func (s *scanner) procInst() error {
	start := s.pos
	end := bytes.Index(s.data[s.pos+2:], []byte("?>"))
	if end < 0 {
		return s.errorf(s.pos, "unterminated processing instruction")
	}
	body := s.data[s.pos+2 : s.pos+2+end]
	s.pos += 2 + end + 2
	n := nameLen(body)
	if n == 0 || (n < len(body) && !isSpace(body[n])) {
		return s.errorf(start, "processing instruction without a target name")
	}
	if !bytes.HasPrefix(body, []byte("xml")) || (len(body) > 3 && !isSpace(body[3])) {
		return nil
	}
	// The XML declaration: version 1.0, and the input must be UTF-8, as
	// encoding/xml requires without a CharsetReader.
	if v, ok, err := declValue(body, "version"); err != nil {
		return s.errorf(start, "malformed XML declaration")
	} else if ok && string(v) != "1.0" {
		return s.errorf(start, "XML version "+strconv.Quote(string(v))+" is not 1.0")
	}
	enc, ok, err := declValue(body, "encoding")
	if err != nil {
		return s.errorf(start, "malformed XML declaration")
	}
	if ok && !bytes.EqualFold(enc, []byte("UTF-8")) {
		return s.errorf(start, "encoding "+strconv.Quote(string(enc))+" is not UTF-8")
	}
	return nil
}

// declValue finds name="value" in an XML declaration.
func declValue(body []byte, name string) (value []byte, ok bool, err error) {
	i := bytes.Index(body, []byte(name))
	if i < 0 {
		return nil, false, nil
	}
	v := bytes.TrimLeft(body[i+len(name):], " \t\r\n")
	if len(v) == 0 || v[0] != '=' {
		return nil, false, errors.New("no =")
	}
	v = bytes.TrimLeft(v[1:], " \t\r\n")
	if len(v) < 2 || (v[0] != '"' && v[0] != '\'') {
		return nil, false, errors.New("not quoted")
	}
	q := bytes.IndexByte(v[1:], v[0])
	if q < 0 {
		return nil, false, errors.New("not closed")
	}
	return v[1 : 1+q], true, nil
}

func (s *scanner) startTag() error {
	if err := s.readName(); err != nil {
		return err
	}
	elem := s.name
	defer func() { s.name = elem }()
	for {
		sp := s.space()
		if s.pos >= len(s.data) {
			return s.errorf(s.pos, "start tag not closed")
		}
		switch s.data[s.pos] {
		case '>':
			s.pos++
			s.empty = false
			return nil
		case '/':
			if s.pos+1 >= len(s.data) || s.data[s.pos+1] != '>' {
				return s.errorf(s.pos, "/ not followed by >")
			}
			s.pos += 2
			s.empty = true
			return nil
		}
		if !sp {
			return s.errorf(s.pos, "no space before an attribute")
		}
		nameStart := s.pos
		if err := s.readName(); err != nil {
			return err
		}
		name := s.data[nameStart:s.pos]
		s.space()
		if s.pos >= len(s.data) || s.data[s.pos] != '=' {
			return s.errorf(s.pos, "attribute without =")
		}
		s.pos++
		s.space()
		if s.pos >= len(s.data) || (s.data[s.pos] != '"' && s.data[s.pos] != '\'') {
			return s.errorf(s.pos, "attribute value not quoted")
		}
		q := s.data[s.pos]
		end := bytes.IndexByte(s.data[s.pos+1:], q)
		if end < 0 {
			return s.errorf(s.pos, "attribute value not closed")
		}
		raw := s.data[s.pos+1 : s.pos+1+end]
		if bytes.IndexByte(raw, '<') >= 0 {
			return s.errorf(s.pos, "< in an attribute value")
		}
		val, err := s.unescape(raw, s.pos+1)
		if err != nil {
			return err
		}
		s.pos += 1 + end + 1
		if i := bytes.IndexByte(name, ':'); i >= 0 {
			name = name[i+1:]
		}
		s.attrs = append(s.attrs, attr{local: name, value: val})
	}
}

func (s *scanner) chars() (token, error) {
	start := s.pos
	end := bytes.IndexByte(s.data[s.pos:], '<')
	if end < 0 {
		end = len(s.data) - s.pos
	}
	s.pos += end
	t, err := s.unescape(s.data[start:s.pos], start)
	s.text = t
	return tokText, err
}

// readName reads a name at pos into s.name.
func (s *scanner) readName() error {
	start := s.pos
	n := nameLen(s.data[start:])
	if n == 0 {
		return s.errorf(start, "expected a name")
	}
	s.pos += n
	s.name = s.data[start:s.pos]
	return nil
}

// nameLen is the length of the name b starts with, 0 for none.
func nameLen(b []byte) int {
	if len(b) == 0 {
		return 0
	}
	if c := b[0]; !isNameByte(c) || c == '-' || c == '.' || c == ':' || (c >= '0' && c <= '9') {
		return 0
	}
	n := 1
	for n < len(b) && isNameByte(b[n]) {
		n++
	}
	// A qualified name: one prefix at most, and a local part after it.
	if c := bytes.Count(b[:n], []byte(":")); c > 1 || (c == 1 && b[n-1] == ':') {
		return 0
	}
	return n
}

// space skips white space and says whether there was any.
func (s *scanner) space() bool {
	start := s.pos
	for s.pos < len(s.data) && isSpace(s.data[s.pos]) {
		s.pos++
	}
	return s.pos > start
}

// unescape decodes the predefined entities and character references of
// raw (at offset at), into s.buf when there are any. Any other entity is
// an error: nothing is declared, so nothing else can be defined.
func (s *scanner) unescape(raw []byte, at int) ([]byte, error) {
	amp := bytes.IndexByte(raw, '&')
	if amp < 0 {
		return raw, nil
	}
	start := len(s.buf)
	s.buf = append(s.buf, raw[:amp]...)
	for i := amp; i < len(raw); {
		c := raw[i]
		if c != '&' {
			s.buf = append(s.buf, c)
			i++
			continue
		}
		semi := bytes.IndexByte(raw[i:], ';')
		if semi < 0 || semi > 12 {
			return nil, s.errorf(at+i, "& not starting an entity reference")
		}
		ref := raw[i+1 : i+semi]
		switch string(ref) {
		case "lt":
			s.buf = append(s.buf, '<')
		case "gt":
			s.buf = append(s.buf, '>')
		case "amp":
			s.buf = append(s.buf, '&')
		case "quot":
			s.buf = append(s.buf, '"')
		case "apos":
			s.buf = append(s.buf, '\'')
		default:
			r, ok := charRef(ref)
			if !ok {
				return nil, s.errorf(at+i, "undefined entity &"+string(ref)+";")
			}
			s.buf = utf8.AppendRune(s.buf, r)
		}
		i += semi + 1
	}
	return s.buf[start:], nil
}

// charRef reads #123 or #x7B as an XML character.
func charRef(ref []byte) (rune, bool) {
	if len(ref) < 2 || ref[0] != '#' {
		return 0, false
	}
	var n uint64
	var err error
	if ref[1] == 'x' {
		n, err = strconv.ParseUint(string(ref[2:]), 16, 32)
	} else {
		n, err = strconv.ParseUint(string(ref[1:]), 10, 32)
	}
	if err != nil {
		return 0, false
	}
	r := rune(n)
	ok := r == '\t' || r == '\n' || r == '\r' ||
		(r >= 0x20 && r <= 0xD7FF) || (r >= 0xE000 && r <= 0xFFFD) || (r >= 0x10000 && r <= 0x10FFFF)
	return r, ok
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// isNameByte is lenient beyond ASCII: any byte of a multi-byte UTF-8
// character may be part of a name (the input's UTF-8 is checked whole).
func isNameByte(c byte) bool {
	return c >= 0x80 || c == '_' || c == ':' || c == '-' || c == '.' ||
		(c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
}
