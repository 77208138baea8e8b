// Package xmlscan is a tokenizer for the XML that untrusted messages of
// the cross-community transactions use (ATNA AuditMessages, SOAP
// envelopes): elements, attributes, text, CDATA, comments, processing
// instructions, the five predefined entities and character references. A
// markup declaration (<!DOCTYPE, <!ENTITY, ...) is returned as a Decl
// token for the caller to refuse; nothing declared is ever expanded. It
// works on the whole input in memory, so names, text and values are
// subslices of it unless an entity had to be decoded; encoding/xml's
// Decoder copies every token and costs twice as much (lib/atna's README).
// Namespaces are not resolved: callers know elements by their local name
// and may read the xmlns attributes themselves.
package xmlscan

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strconv"
	"unicode/utf8"
)

// Scanner reads the tokens of one input. The fields describe the token
// Next returned last and are valid until the next call.
type Scanner struct {
	data  []byte
	pos   int
	Name  []byte // the element's qualified name (start and end tags)
	Text  []byte // text or CDATA
	Empty bool   // the start tag ended with "/>"
	Attrs []Attr
	buf   []byte // decoded values of the current token
}

// Attr is an attribute of a start tag.
type Attr struct {
	Name  []byte // the qualified name, prefix included (xmlns:s)
	Local []byte // the name without its prefix
	Value []byte // entity-decoded
}

// Token is the kind of what Next read.
type Token int

// The tokens.
const (
	EOF Token = iota
	Start
	End
	Text
	Decl // <! that is no comment or CDATA: the scanner stops before it
)

// Error is a malformed or refused input at a byte offset.
type Error struct {
	At     int
	Reason string
	Err    error // ErrDecl, ErrTooDeep, ErrTooLarge, or nil for malformed XML
}

func (e *Error) Error() string { return e.Reason }

func (e *Error) Unwrap() error { return e.Err }

func (s *Scanner) errorf(at int, reason string) error {
	return &Error{At: at, Reason: reason}
}

var bom = []byte{0xEF, 0xBB, 0xBF}

// Reset starts reading data, after a leading UTF-8 byte order mark.
func (s *Scanner) Reset(data []byte) {
	s.data, s.pos = data, 0
	if bytes.HasPrefix(data, bom) {
		s.pos = len(bom)
	}
}

// Pos is the offset of the next byte to read.
func (s *Scanner) Pos() int { return s.pos }

// Rest is the input from the next byte to read (after a Decl token, the
// declaration itself).
func (s *Scanner) Rest() []byte { return s.data[s.pos:] }

// Local is a qualified name without its prefix.
func Local(name []byte) []byte {
	if i := bytes.IndexByte(name, ':'); i >= 0 {
		return name[i+1:]
	}
	return name
}

// CheckChars refuses invalid UTF-8 and the control characters XML 1.0
// does not allow, once for the whole input. It reads eight bytes at a
// time and looks at single bytes only in a word holding one below 0x20
// (a line break, a tab, or a refused one), and leaves UTF-8 to
// utf8.Valid only when a byte is not ASCII.
func CheckChars(data []byte) error {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	var high uint64
	i := 0
	for ; i+8 <= len(data); i += 8 {
		x := binary.LittleEndian.Uint64(data[i:])
		high |= x
		// Exact as a whole: nonzero if and only if a byte is below 0x20.
		if (x-0x20*ones)&^x&highs != 0 {
			if err := checkControl(data[i:i+8], i); err != nil {
				return err
			}
		}
	}
	for _, c := range data[i:] {
		high |= uint64(c)
	}
	if err := checkControl(data[i:], i); err != nil {
		return err
	}
	if high&highs != 0 && !utf8.Valid(data) {
		return &Error{At: 0, Reason: "invalid UTF-8"}
	}
	return nil
}

// checkControl refuses a control character of b, which is at offset at.
func checkControl(b []byte, at int) error {
	for j, c := range b {
		if c < 0x20 && c != '\t' && c != '\n' && c != '\r' {
			return &Error{At: at + j, Reason: "control character " + strconv.Itoa(int(c))}
		}
	}
	return nil
}

// Next reads the next token.
func (s *Scanner) Next() (Token, error) {
	s.buf = s.buf[:0]
	if s.Attrs == nil {
		// A start tag of an AuditMessage or a SOAP envelope has a few
		// attributes; the slice is reused for every tag of the input.
		s.Attrs = make([]Attr, 0, 8)
	}
	s.Attrs = s.Attrs[:0]
	for {
		if s.pos >= len(s.data) {
			return EOF, nil
		}
		if s.data[s.pos] != '<' {
			return s.chars()
		}
		rest := s.data[s.pos:]
		var second byte
		if len(rest) > 1 {
			second = rest[1]
		}
		switch second {
		case '!':
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
				s.Text = rest[9 : 9+end]
				s.pos += 9 + end + 3
				return Text, nil
			default:
				return Decl, nil
			}
		case '?':
			if err := s.procInst(); err != nil {
				return 0, err
			}
		case '/':
			s.pos += 2
			if err := s.readName(); err != nil {
				return 0, err
			}
			s.space()
			if s.pos >= len(s.data) || s.data[s.pos] != '>' {
				return 0, s.errorf(s.pos, "end tag not closed by >")
			}
			s.pos++
			return End, nil
		default:
			s.pos++
			return Start, s.startTag()
		}
	}
}

func (s *Scanner) procInst() error {
	start := s.pos
	end := bytes.Index(s.data[s.pos+2:], []byte("?>"))
	if end < 0 {
		return s.errorf(s.pos, "unterminated processing instruction")
	}
	body := s.data[s.pos+2 : s.pos+2+end]
	s.pos += 2 + end + 2
	n, _ := nameLen(body)
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

func (s *Scanner) startTag() error {
	if err := s.readName(); err != nil {
		return err
	}
	for {
		sp := s.space()
		if s.pos >= len(s.data) {
			return s.errorf(s.pos, "start tag not closed")
		}
		switch s.data[s.pos] {
		case '>':
			s.pos++
			s.Empty = false
			return nil
		case '/':
			if s.pos+1 >= len(s.data) || s.data[s.pos+1] != '>' {
				return s.errorf(s.pos, "/ not followed by >")
			}
			s.pos += 2
			s.Empty = true
			return nil
		}
		if !sp {
			return s.errorf(s.pos, "no space before an attribute")
		}
		nameStart := s.pos
		n, colon := nameLen(s.data[nameStart:])
		if n == 0 {
			return s.errorf(nameStart, "expected a name")
		}
		s.pos += n
		qname := s.data[nameStart:s.pos]
		s.space()
		if s.pos >= len(s.data) || s.data[s.pos] != '=' {
			return s.errorf(s.pos, "attribute without =")
		}
		s.pos++
		s.space()
		if s.pos >= len(s.data) || (s.data[s.pos] != '"' && s.data[s.pos] != '\'') {
			return s.errorf(s.pos, "attribute value not quoted")
		}
		end, special := attrValueEnd(s.data[s.pos+1:], s.data[s.pos])
		if end < 0 {
			return s.errorf(s.pos, "attribute value not closed")
		}
		raw := s.data[s.pos+1 : s.pos+1+end]
		if special&hasLT != 0 {
			return s.errorf(s.pos, "< in an attribute value")
		}
		val := raw
		if special&hasAmp != 0 {
			var err error
			if val, err = s.unescape(raw, s.pos+1); err != nil {
				return err
			}
		}
		s.pos += 1 + end + 1
		s.Attrs = append(s.Attrs, Attr{Name: qname, Local: qname[colon+1:], Value: val})
	}
}

func (s *Scanner) chars() (Token, error) {
	start := s.pos
	end := bytes.IndexByte(s.data[s.pos:], '<')
	if end < 0 {
		end = len(s.data) - s.pos
	}
	s.pos += end
	t, err := s.unescape(s.data[start:s.pos], start)
	s.Text = t
	return Text, err
}

// What attrValueEnd found in a value, besides its end.
const (
	hasLT  = 1
	hasAmp = 2
)

// attrClass marks the bytes attrValueEnd stops at: the quotes, '<', '&'.
var attrClass = func() (t [256]bool) {
	for _, c := range `"'<&` {
		t[c] = true
	}
	return t
}()

// attrValueEnd is the offset in b of the quote q that ends an attribute
// value, -1 for none, and whether the value holds a '<' or an '&': one
// pass over a value, which is short, rather than one per question.
func attrValueEnd(b []byte, q byte) (end int, special int) {
	for i := 0; i < len(b); i++ {
		c := b[i]
		if !attrClass[c] {
			continue
		}
		switch c {
		case q:
			return i, special
		case '<':
			special |= hasLT
		case '&':
			special |= hasAmp
		}
	}
	return -1, special
}

// readName reads a name at pos into s.Name.
func (s *Scanner) readName() error {
	start := s.pos
	n, _ := nameLen(s.data[start:])
	if n == 0 {
		return s.errorf(start, "expected a name")
	}
	s.pos += n
	s.Name = s.data[start:s.pos]
	return nil
}

// nameLen is the length of the name b starts with, 0 for none, and the
// offset of the colon after its prefix, -1 for none.
func nameLen(b []byte) (n, colon int) {
	if len(b) == 0 {
		return 0, -1
	}
	if c := b[0]; !isNameByte(c) || c == '-' || c == '.' || c == ':' || (c >= '0' && c <= '9') {
		return 0, -1
	}
	n, colon = 1, -1
	for n < len(b) && isNameByte(b[n]) {
		if b[n] == ':' {
			if colon >= 0 {
				return 0, -1 // a qualified name has one prefix at most
			}
			colon = n
		}
		n++
	}
	if colon == n-1 {
		return 0, -1 // and a local part after it
	}
	return n, colon
}

// space skips white space and says whether there was any.
func (s *Scanner) space() bool {
	start := s.pos
	for s.pos < len(s.data) && isSpace(s.data[s.pos]) {
		s.pos++
	}
	return s.pos > start
}

// unescape decodes the predefined entities and character references of
// raw (at offset at), into s.buf when there are any. Any other entity is
// an error: nothing is declared, so nothing else can be defined.
func (s *Scanner) unescape(raw []byte, at int) ([]byte, error) {
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
func isNameByte(c byte) bool { return nameBytes[c] }

// nameBytes is isNameByte's table, read-only once built.
var nameBytes = func() (t [256]bool) {
	for c := range 256 {
		t[c] = c >= 0x80 || c == '_' || c == ':' || c == '-' || c == '.' ||
			(c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
	}
	return t
}()
