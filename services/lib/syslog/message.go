package syslog

import (
	"bytes"
	"fmt"
	"strings"
	"time"
)

// Format is the form a message was written in.
type Format int

const (
	RFC5424 Format = iota + 1
	BSD            // RFC 3164
)

func (f Format) String() string {
	switch f {
	case RFC5424:
		return "RFC5424"
	case BSD:
		return "BSD"
	}
	return fmt.Sprintf("Format(%d)", int(f))
}

// Message is one syslog message. A NILVALUE ("-") reads as the empty string
// or, for Timestamp, the zero time.
type Message struct {
	Facility, Severity int
	Timestamp          time.Time
	Hostname           string
	AppName            string // a BSD message's TAG
	ProcID             string // a BSD message's "[pid]" after the TAG
	MsgID              string
	StructuredData     []SDElement
	Body               []byte // a subslice of the input, without a UTF-8 BOM
	Format             Format
}

// SDElement is one "[SD-ID PARAM=\"VALUE\" ...]" of STRUCTURED-DATA.
type SDElement struct {
	ID     string
	Params []SDParam
}

// SDParam is one parameter, its value unescaped.
type SDParam struct {
	Name, Value string
}

// ParseError says which field of a message is malformed and where.
type ParseError struct {
	Field  string // PRI, VERSION, TIMESTAMP, HOSTNAME, APP-NAME, PROCID, MSGID, STRUCTURED-DATA, TAG
	Offset int    // byte offset in the message
	Reason string
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("syslog: %s at byte %d: %s", e.Field, e.Offset, e.Reason)
}

// Limits of RFC 5424 section 6.
const (
	maxHostname = 255
	maxAppName  = 48
	maxProcID   = 128
	maxMsgID    = 32
	maxSDName   = 32
)

var bom = []byte{0xEF, 0xBB, 0xBF}

// Parse parses one message: RFC 5424 when a version follows the PRI, else
// the BSD form of RFC 3164, whose year-less timestamp is taken in ref's
// location and the latest year that puts it no more than a week after ref. The returned Body
// shares data's bytes.
func Parse(data []byte, ref time.Time) (Message, error) {
	p := parser{data: data}
	var m Message
	pri, err := p.pri()
	if err != nil {
		return Message{}, err
	}
	m.Facility, m.Severity = pri/8, pri%8
	if p.pos+1 < len(data) && data[p.pos] >= '1' && data[p.pos] <= '9' && (data[p.pos+1] == ' ' || isDigit(data[p.pos+1])) {
		err = p.rfc5424(&m)
	} else {
		err = p.bsd(&m, ref)
	}
	if err != nil {
		return Message{}, err
	}
	return m, nil
}

// ParseDatagram parses one RFC 5426 datagram. UDP needs no framing: one
// datagram holds exactly one message, so this is Parse under the name a
// UDP listener looks for.
func ParseDatagram(datagram []byte, ref time.Time) (Message, error) {
	return Parse(datagram, ref)
}

type parser struct {
	data []byte
	pos  int
}

func (p *parser) fail(field string, at int, format string, args ...any) error {
	return &ParseError{Field: field, Offset: at, Reason: fmt.Sprintf(format, args...)}
}

func isDigit(b byte) bool { return b >= '0' && b <= '9' }

// pri reads "<PRIVAL>", 0 to 191 without leading zeros.
func (p *parser) pri() (int, error) {
	d := p.data
	if len(d) == 0 || d[0] != '<' {
		return 0, p.fail("PRI", 0, "no '<'")
	}
	v, i := 0, 1
	for ; i < len(d) && i <= 4 && isDigit(d[i]); i++ {
		v = v*10 + int(d[i]-'0')
	}
	switch {
	case i == 1:
		return 0, p.fail("PRI", 1, "no digits")
	case i > 4:
		return 0, p.fail("PRI", 1, "more than 3 digits")
	case d[1] == '0' && i > 2:
		return 0, p.fail("PRI", 1, "leading zero")
	case v > 191:
		return 0, p.fail("PRI", 1, "%d over 191", v)
	case i == len(d) || d[i] != '>':
		return 0, p.fail("PRI", i, "no '>'")
	}
	p.pos = i + 1
	return v, nil
}

// token reads up to the next space (or the end) and the space after it.
func (p *parser) token(field string, max int) (string, int, error) {
	start := p.pos
	end := start
	for end < len(p.data) && p.data[end] != ' ' {
		if b := p.data[end]; b < 33 || b > 126 {
			return "", start, p.fail(field, end, "byte %#02x is not printable ASCII", b)
		}
		end++
	}
	switch {
	case end == start:
		return "", start, p.fail(field, start, "empty")
	case end-start > max:
		return "", start, p.fail(field, start, "longer than %d bytes", max)
	case end == len(p.data):
		return "", start, p.fail(field, end, "message ends here")
	}
	p.pos = end + 1
	return string(p.data[start:end]), start, nil
}

// nilable reads a header field whose NILVALUE reads as "".
func (p *parser) nilable(field string, max int) (string, error) {
	s, _, err := p.token(field, max)
	if s == "-" {
		s = ""
	}
	return s, err
}

func (p *parser) rfc5424(m *Message) error {
	m.Format = RFC5424
	v, at, err := p.token("VERSION", 3)
	if err != nil {
		return err
	}
	if v != "1" {
		return p.fail("VERSION", at, "version %q is not 1", v)
	}
	ts, at, err := p.token("TIMESTAMP", 64)
	if err != nil {
		return err
	}
	if ts != "-" {
		// RFC 3339 as RFC 5424 restricts it: upper-case T and Z, a zone.
		if strings.ContainsAny(ts, "tz") {
			return p.fail("TIMESTAMP", at, "%q: lower-case t or z", ts)
		}
		m.Timestamp, err = time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			return p.fail("TIMESTAMP", at, "%q is not an RFC 3339 time", ts)
		}
	}
	if m.Hostname, err = p.nilable("HOSTNAME", maxHostname); err != nil {
		return err
	}
	if m.AppName, err = p.nilable("APP-NAME", maxAppName); err != nil {
		return err
	}
	if m.ProcID, err = p.nilable("PROCID", maxProcID); err != nil {
		return err
	}
	if m.MsgID, err = p.nilable("MSGID", maxMsgID); err != nil {
		return err
	}
	if err := p.structuredData(m); err != nil {
		return err
	}
	switch {
	case p.pos == len(p.data):
		m.Body = p.data[p.pos:]
	case p.data[p.pos] != ' ':
		return p.fail("STRUCTURED-DATA", p.pos, "no space before MSG")
	default:
		m.Body = bytes.TrimPrefix(p.data[p.pos+1:], bom)
	}
	return nil
}

func (p *parser) structuredData(m *Message) error {
	d := p.data
	if p.pos == len(d) {
		return p.fail("STRUCTURED-DATA", p.pos, "message ends here")
	}
	if d[p.pos] == '-' {
		p.pos++
		return nil
	}
	if d[p.pos] != '[' {
		return p.fail("STRUCTURED-DATA", p.pos, "neither '-' nor '['")
	}
	for p.pos < len(d) && d[p.pos] == '[' {
		p.pos++
		id, err := p.sdName("SD-ID")
		if err != nil {
			return err
		}
		el := SDElement{ID: id}
		for {
			if p.pos == len(d) {
				return p.fail("STRUCTURED-DATA", p.pos, "element %q not closed", id)
			}
			if d[p.pos] == ']' {
				p.pos++
				break
			}
			if d[p.pos] != ' ' {
				return p.fail("STRUCTURED-DATA", p.pos, "byte %q where a space or ']' belongs", d[p.pos])
			}
			p.pos++
			name, err := p.sdName("PARAM-NAME")
			if err != nil {
				return err
			}
			if p.pos+1 >= len(d) || d[p.pos] != '=' || d[p.pos+1] != '"' {
				return p.fail("STRUCTURED-DATA", p.pos, "no =\" after %q", name)
			}
			p.pos += 2
			value, err := p.paramValue()
			if err != nil {
				return err
			}
			el.Params = append(el.Params, SDParam{Name: name, Value: value})
		}
		m.StructuredData = append(m.StructuredData, el)
	}
	return nil
}

// sdName reads an SD-ID or PARAM-NAME: 1 to 32 printable ASCII bytes but
// '=', space, ']' and '"'.
func (p *parser) sdName(what string) (string, error) {
	d, start := p.data, p.pos
	for p.pos < len(d) {
		b := d[p.pos]
		if b == '=' || b == ' ' || b == ']' || b == '"' {
			break
		}
		if b < 33 || b > 126 {
			return "", p.fail("STRUCTURED-DATA", p.pos, "byte %#02x in %s", b, what)
		}
		p.pos++
	}
	switch {
	case p.pos == start:
		return "", p.fail("STRUCTURED-DATA", start, "empty %s", what)
	case p.pos-start > maxSDName:
		return "", p.fail("STRUCTURED-DATA", start, "%s longer than %d bytes", what, maxSDName)
	}
	return string(d[start:p.pos]), nil
}

// paramValue reads up to the closing quote, unescaping \" \\ \]; a
// backslash before anything else stays, as RFC 5424 section 6.3.3 says.
func (p *parser) paramValue() (string, error) {
	d, start := p.data, p.pos
	escaped := false
	for i := start; i < len(d); i++ {
		switch d[i] {
		case '\\':
			escaped = true
			i++ // the next byte is never the closing quote
		case '"':
			p.pos = i + 1
			if !escaped {
				return string(d[start:i]), nil
			}
			return unescape(d[start:i]), nil
		}
	}
	return "", p.fail("STRUCTURED-DATA", start-1, "value not closed")
}

func unescape(v []byte) string {
	var b strings.Builder
	b.Grow(len(v))
	for i := 0; i < len(v); i++ {
		if v[i] == '\\' && i+1 < len(v) && (v[i+1] == '"' || v[i+1] == '\\' || v[i+1] == ']') {
			i++
		}
		b.WriteByte(v[i])
	}
	return b.String()
}
