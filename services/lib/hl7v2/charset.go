package hl7v2

import (
	"bytes"
	"strings"
	"unicode/utf8"
)

// Charset is the character set of a message's text (MSH-18, first
// repetition). Values are always returned as UTF-8.
type Charset uint8

// The character sets hinscore reads. Any other MSH-18 value is read like
// CharsetASCII: as UTF-8 when the bytes are valid UTF-8, else as 8859/1.
const (
	CharsetASCII  Charset = iota // "ASCII" or MSH-18 empty (the standard's default)
	CharsetLatin1                // "8859/1"
	CharsetUTF8                  // "UNICODE UTF-8"
)

// String is the MSH-18 code of c.
func (c Charset) String() string {
	switch c {
	case CharsetLatin1:
		return "8859/1"
	case CharsetUTF8:
		return "UNICODE UTF-8"
	}
	return "ASCII"
}

// declaredCharset reads the character set MSH-18 (raw, its first
// repetition) names, the same way for a message and for the reply to it:
// unescaped (the name may hold the escape character, which an encoder
// writes escaped) and decoded by the rules of a message that declares
// none, whatever it turns out to declare.
func declaredCharset(d Delimiters, raw []byte) Charset {
	return charsetOf([]byte(CharsetASCII.toUTF8(d.Unescape(raw))))
}

func charsetOf(msh18 []byte) Charset {
	switch string(bytes.ToUpper(bytes.TrimSpace(msh18))) {
	case "8859/1", "ISO-8859-1", "ISO8859-1":
		return CharsetLatin1
	case "UNICODE UTF-8", "UTF-8", "UTF8":
		return CharsetUTF8
	}
	return CharsetASCII
}

// toUTF8 converts a decoded value to UTF-8. 8859/1 maps byte for byte to
// the first 256 code points. A message that declares ASCII (or nothing) but
// carries bytes over 0x7F is, in the feeds we see, either UTF-8 or a Western
// 8859 set: valid UTF-8 is kept, anything else is read as 8859/1 rather
// than producing strings protobuf would refuse to marshal. Invalid bytes in
// a message that declares UTF-8 become U+FFFD.
func (c Charset) toUTF8(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		return s
	}
	switch {
	case c == CharsetUTF8:
		return strings.ToValidUTF8(s, "\uFFFD")
	case c == CharsetASCII && utf8.ValidString(s):
		return s
	}
	b := make([]byte, 0, len(s)+len(s)/2)
	for i := 0; i < len(s); i++ {
		b = utf8.AppendRune(b, rune(s[i]))
	}
	return string(b)
}

// fromUTF8 is the inverse of toUTF8 for text hinscore writes into a reply:
// in an 8859/1 message each code point up to U+00FF is one byte and anything
// else becomes '?'; ASCII and UTF-8 replies carry UTF-8 as it is.
func (c Charset) fromUTF8(s string) string {
	if c != CharsetLatin1 {
		return s
	}
	b := make([]byte, 0, len(s))
	for _, r := range s {
		if r > 0xFF {
			r = '?'
		}
		b = append(b, byte(r))
	}
	return string(b)
}

// Charset returns the message's character set from MSH-18.
func (m *Message) Charset() Charset { return m.charset }

// Decode turns raw bytes of this message (a field, component or
// sub-component) into text: escapes decoded, converted to UTF-8, and an
// explicit null ("") returned as "" (use IsNull to tell it from empty).
func (m *Message) Decode(raw []byte) string {
	if isNull(raw) {
		return ""
	}
	return m.charset.toUTF8(m.delims.Unescape(raw))
}

// isNull reports whether raw is the explicit null "", which tells a
// receiver to delete a value, unlike an empty field that leaves it as it is.
func isNull(raw []byte) bool { return len(raw) == 2 && raw[0] == '"' && raw[1] == '"' }
