// Package atna reads the body of an IHE ATNA audit record, the
// AuditMessage XML, into a neutral struct: the DICOM PS3.15 Annex A.5
// schema (coded values as csd-code, codeSystemName, originalText) and the
// older RFC 3881 one (code, codeSystemName, displayName). It knows nothing
// of syslog framing (lib/syslog owns that) or of ExchangeEvents.
//
// The input is untrusted: any DOCTYPE or other markup declaration is
// refused before anything is expanded, nesting and sizes are bounded, and
// every error is a *ParseError saying where.
package atna

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/hinscore/hinscore/services/lib/domain/patient"
)

// Sentinel errors, matched with errors.Is through the *ParseError that
// carries them.
var (
	ErrDoctype  = errors.New("atna: DOCTYPE or markup declaration")
	ErrTooDeep  = errors.New("atna: nesting too deep")
	ErrTooLarge = errors.New("atna: too large")
	ErrNotAudit = errors.New("atna: root element is not AuditMessage")
)

// Limits on what one message may hold. An AuditMessage nests four levels
// deep; its longest values are the base64 ParticipantObjectQuery and
// ParticipantObjectDetail values, a few KB in practice.
const (
	MaxDepth = 64
	MaxName  = 256       // bytes of an element or attribute name
	MaxValue = 256 << 10 // bytes of one attribute value or element text
)

// ParseError says what is wrong with a message and where.
type ParseError struct {
	Element string // local name of the element being read, "" outside the root
	Offset  int64  // byte offset in the input
	Reason  string
	Err     error // one of the sentinels, or nil for malformed XML
}

func (e *ParseError) Error() string {
	if e.Element == "" {
		return fmt.Sprintf("atna: at byte %d: %s", e.Offset, e.Reason)
	}
	return fmt.Sprintf("atna: %s at byte %d: %s", e.Element, e.Offset, e.Reason)
}

func (e *ParseError) Unwrap() error { return e.Err }

// Audit is one AuditMessage.
type Audit struct {
	Event        Event
	Participants []Participant
	Source       Source // the first AuditSourceIdentification
	Objects      []Object
}

// Event is the EventIdentification.
type Event struct {
	ActionCode    string    // C, R, U, D or E; "" when absent
	DateTime      time.Time // zero when absent
	Outcome       int       // 0 success, 4 minor, 8 serious, 12 major failure
	ID            Code
	TypeCodes     []Code
	PurposesOfUse []Code
}

// Code is a coded value of either schema.
type Code struct {
	Code    string // csd-code (DICOM) or code (RFC 3881)
	System  string // codeSystemName, else codeSystem
	Display string // originalText, else displayName
}

// Participant is an ActiveParticipant.
type Participant struct {
	UserID                     string
	AlternativeUserID          string
	UserName                   string
	UserIsRequestor            bool
	NetworkAccessPointID       string
	NetworkAccessPointTypeCode int // 1 machine name, 2 IP address, 3 phone, 0 absent
	RoleIDCodes                []Code
}

// Source is the AuditSourceIdentification.
type Source struct {
	ID               string
	EnterpriseSiteID string
	TypeCodes        []Code
}

// Object is a ParticipantObjectIdentification.
type Object struct {
	ID            string
	TypeCode      int // 1 person, 2 system object, 3 organization, 4 other; 0 absent
	TypeCodeRole  int // 1 patient, 24 query, ...; 0 absent
	DataLifeCycle int
	IDTypeCode    Code
	Sensitivity   string
	Name          string
	Query         []byte // ParticipantObjectQuery, base64-decoded
	Details       []Detail
}

// Detail is a ParticipantObjectDetail, its value base64-decoded.
type Detail struct {
	Type  string
	Value []byte
}

// Patient reads the object's ID as a patient's CX (id^^^&1.2.3&ISO), the
// rule lib/domain/patient shares with HL7 v2 and FHIR: the id and the
// canonical authority. ok is false when the object is not a person in the
// patient role or its ID is no such CX.
func (o *Object) Patient() (id, authority string, ok bool) {
	if o.TypeCode != 1 || o.TypeCodeRole != 1 {
		return "", "", false
	}
	return patient.SplitCX(o.ID)
}

// Parse reads one AuditMessage. Input longer than maxBytes is refused
// with ErrTooLarge before it is read.
func Parse(data []byte, maxBytes int) (*Audit, error) {
	if len(data) > maxBytes {
		return nil, &ParseError{Reason: fmt.Sprintf("%d bytes, limit %d", len(data), maxBytes), Err: ErrTooLarge}
	}
	var base int64
	if bytes.HasPrefix(data, bom) {
		// encoding/xml reads a byte order mark as text before the root.
		data, base = data[len(bom):], int64(len(bom))
	}
	p := parser{d: xml.NewDecoder(bytes.NewReader(data)), base: base}
	p.d.Strict = true
	if err := p.run(); err != nil {
		return nil, err
	}
	return &p.a, nil
}

var bom = []byte{0xEF, 0xBB, 0xBF}

type parser struct {
	d     *xml.Decoder
	base  int64 // bytes before what d reads
	a     Audit
	stack []xml.Name
	text  []byte // text of the element being collected
	// collect is the depth whose text is wanted (ParticipantObjectQuery,
	// ParticipantObjectName), 0 for none.
	collect  int
	sources  int // AuditSourceIdentifications seen; only the first is kept
	rootDone bool
}

func (p *parser) fail(err error, format string, args ...any) *ParseError {
	el := ""
	if n := len(p.stack); n > 0 {
		el = p.stack[n-1].Local
	}
	return &ParseError{Element: el, Offset: p.base + p.d.InputOffset(), Reason: fmt.Sprintf(format, args...), Err: err}
}

func (p *parser) run() error {
	for {
		tok, err := p.d.RawToken()
		if err == io.EOF {
			if !p.rootDone {
				return p.fail(nil, "input ends before </AuditMessage>")
			}
			return nil
		}
		if err != nil {
			var se *xml.SyntaxError
			if errors.As(err, &se) {
				return p.fail(nil, "%s", se.Msg)
			}
			return p.fail(nil, "%v", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if err := p.start(t); err != nil {
				return err
			}
		case xml.EndElement:
			if err := p.end(t); err != nil {
				return err
			}
		case xml.CharData:
			if err := p.chars(t); err != nil {
				return err
			}
		case xml.Directive:
			// <!DOCTYPE, <!ENTITY and the like: never expanded, never
			// accepted, wherever they are.
			return p.fail(ErrDoctype, "markup declaration <!%.20s", t)
		case xml.ProcInst, xml.Comment:
		}
	}
}

func (p *parser) chars(t xml.CharData) error {
	if len(p.stack) == 0 {
		if len(bytes.TrimSpace(t)) > 0 {
			return p.fail(nil, "text outside the root element")
		}
		return nil
	}
	if p.collect == len(p.stack) {
		if len(p.text)+len(t) > MaxValue {
			return p.fail(ErrTooLarge, "text over %d bytes", MaxValue)
		}
		p.text = append(p.text, t...)
	} else if len(t) > MaxValue {
		return p.fail(ErrTooLarge, "text over %d bytes", MaxValue)
	}
	return nil
}

func (p *parser) start(t xml.StartElement) error {
	if p.rootDone {
		return p.fail(nil, "element <%s> after the root element", t.Name.Local)
	}
	if len(p.stack) >= MaxDepth {
		return p.fail(ErrTooDeep, "more than %d levels", MaxDepth)
	}
	if len(t.Name.Local) > MaxName || len(t.Name.Space) > MaxName {
		return p.fail(ErrTooLarge, "element name over %d bytes", MaxName)
	}
	for _, at := range t.Attr {
		if len(at.Name.Local) > MaxName || len(at.Name.Space) > MaxName {
			return p.fail(ErrTooLarge, "attribute name over %d bytes", MaxName)
		}
		if len(at.Value) > MaxValue {
			return p.fail(ErrTooLarge, "attribute %s over %d bytes", at.Name.Local, MaxValue)
		}
	}
	parent := ""
	if n := len(p.stack); n > 0 {
		parent = p.stack[n-1].Local
	}
	p.stack = append(p.stack, t.Name)
	if len(p.stack) == 1 {
		if t.Name.Local != "AuditMessage" {
			return p.fail(ErrNotAudit, "root element <%s>", t.Name.Local)
		}
		return nil
	}
	a := &p.a
	var err error
	switch parent {
	case "AuditMessage":
		switch t.Name.Local {
		case "EventIdentification":
			err = p.event(t.Attr)
		case "ActiveParticipant":
			err = p.participant(t.Attr)
		case "AuditSourceIdentification":
			p.sources++
			if p.sources == 1 {
				p.source(t.Attr)
			}
		case "ParticipantObjectIdentification":
			err = p.object(t.Attr)
		}
	case "EventIdentification":
		switch t.Name.Local {
		case "EventID":
			a.Event.ID = code(t.Attr)
		case "EventTypeCode":
			a.Event.TypeCodes = append(a.Event.TypeCodes, code(t.Attr))
		case "PurposeOfUse":
			a.Event.PurposesOfUse = append(a.Event.PurposesOfUse, code(t.Attr))
		}
	case "ActiveParticipant":
		if t.Name.Local == "RoleIDCode" && len(a.Participants) > 0 {
			pa := &a.Participants[len(a.Participants)-1]
			pa.RoleIDCodes = append(pa.RoleIDCodes, code(t.Attr))
		}
	case "AuditSourceIdentification":
		if t.Name.Local == "AuditSourceTypeCode" && p.sources == 1 {
			a.Source.TypeCodes = append(a.Source.TypeCodes, code(t.Attr))
		}
	case "ParticipantObjectIdentification":
		if len(a.Objects) == 0 {
			break
		}
		o := &a.Objects[len(a.Objects)-1]
		switch t.Name.Local {
		case "ParticipantObjectIDTypeCode":
			o.IDTypeCode = code(t.Attr)
		case "ParticipantObjectQuery", "ParticipantObjectName":
			p.collect = len(p.stack)
			p.text = p.text[:0]
		case "ParticipantObjectDetail":
			var d Detail
			var val string
			for _, at := range t.Attr {
				switch at.Name.Local {
				case "type":
					d.Type = at.Value
				case "value":
					val = at.Value
				}
			}
			if d.Value, err = unbase64(val); err != nil {
				return p.fail(nil, "value is not base64: %v", err)
			}
			o.Details = append(o.Details, d)
		}
	}
	return err
}

func (p *parser) end(t xml.EndElement) error {
	n := len(p.stack)
	if n == 0 {
		return p.fail(nil, "end tag </%s> without a start", t.Name.Local)
	}
	if p.stack[n-1] != t.Name {
		return p.fail(nil, "end tag </%s> closes <%s>", t.Name.Local, p.stack[n-1].Local)
	}
	if p.collect == n {
		p.collect = 0
		if len(p.a.Objects) > 0 {
			o := &p.a.Objects[len(p.a.Objects)-1]
			switch t.Name.Local {
			case "ParticipantObjectQuery":
				q, err := unbase64(string(p.text))
				if err != nil {
					return p.fail(nil, "not base64: %v", err)
				}
				o.Query = q
			case "ParticipantObjectName":
				o.Name = strings.TrimSpace(string(p.text))
			}
		}
	}
	p.stack = p.stack[:n-1]
	if n == 1 {
		p.rootDone = true
	}
	return nil
}

func (p *parser) event(attrs []xml.Attr) error {
	e := &p.a.Event
	for _, at := range attrs {
		switch at.Name.Local {
		case "EventActionCode":
			e.ActionCode = at.Value
		case "EventDateTime":
			tm, err := parseDateTime(at.Value)
			if err != nil {
				return p.fail(nil, "EventDateTime %q is not an xs:dateTime", at.Value)
			}
			e.DateTime = tm
		case "EventOutcomeIndicator":
			n, err := smallInt(at.Value)
			if err != nil {
				return p.fail(nil, "EventOutcomeIndicator %q is not a number", at.Value)
			}
			e.Outcome = n
		}
	}
	return nil
}

func (p *parser) participant(attrs []xml.Attr) error {
	var pa Participant
	for _, at := range attrs {
		switch at.Name.Local {
		case "UserID":
			pa.UserID = at.Value
		case "AlternativeUserID":
			pa.AlternativeUserID = at.Value
		case "UserName":
			pa.UserName = at.Value
		case "UserIsRequestor":
			switch strings.TrimSpace(at.Value) {
			case "true", "1":
				pa.UserIsRequestor = true
			case "false", "0":
			default:
				return p.fail(nil, "UserIsRequestor %q is not a boolean", at.Value)
			}
		case "NetworkAccessPointID":
			pa.NetworkAccessPointID = at.Value
		case "NetworkAccessPointTypeCode":
			n, err := smallInt(at.Value)
			if err != nil {
				return p.fail(nil, "NetworkAccessPointTypeCode %q is not a number", at.Value)
			}
			pa.NetworkAccessPointTypeCode = n
		}
	}
	p.a.Participants = append(p.a.Participants, pa)
	return nil
}

func (p *parser) source(attrs []xml.Attr) {
	s := &p.a.Source
	for _, at := range attrs {
		switch at.Name.Local {
		case "AuditSourceID":
			s.ID = at.Value
		case "AuditEnterpriseSiteID":
			s.EnterpriseSiteID = at.Value
		case "AuditSourceTypeCode":
			// Some RFC 3881 senders put the type code as an attribute.
			s.TypeCodes = append(s.TypeCodes, Code{Code: at.Value})
		}
	}
}

func (p *parser) object(attrs []xml.Attr) error {
	var o Object
	for _, at := range attrs {
		var dst *int
		switch at.Name.Local {
		case "ParticipantObjectID":
			o.ID = at.Value
		case "ParticipantObjectTypeCode":
			dst = &o.TypeCode
		case "ParticipantObjectTypeCodeRole":
			dst = &o.TypeCodeRole
		case "ParticipantObjectDataLifeCycle":
			dst = &o.DataLifeCycle
		case "ParticipantObjectSensitivity":
			o.Sensitivity = at.Value
		}
		if dst != nil {
			n, err := smallInt(at.Value)
			if err != nil {
				return p.fail(nil, "%s %q is not a number", at.Name.Local, at.Value)
			}
			*dst = n
		}
	}
	p.a.Objects = append(p.a.Objects, o)
	return nil
}

// code reads a coded value in either schema's attributes.
func code(attrs []xml.Attr) Code {
	var c Code
	var system, display string
	for _, at := range attrs {
		switch at.Name.Local {
		case "csd-code", "code":
			c.Code = at.Value
		case "codeSystemName":
			c.System = at.Value
		case "codeSystem":
			system = at.Value
		case "originalText":
			c.Display = at.Value
		case "displayName":
			display = at.Value
		}
	}
	if c.System == "" {
		c.System = system
	}
	if c.Display == "" {
		c.Display = display
	}
	return c
}

func smallInt(s string) (int, error) {
	n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 16)
	return int(n), err
}

// parseDateTime reads an xs:dateTime; one without a zone is taken as UTC.
func parseDateTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	return time.Parse("2006-01-02T15:04:05.999999999", s)
}

// unbase64 decodes xs:base64Binary, which may be broken into lines.
func unbase64(s string) ([]byte, error) {
	s = strings.Map(func(r rune) rune {
		switch r {
		case ' ', '\t', '\r', '\n':
			return -1
		}
		return r
	}, s)
	if s == "" {
		return nil, nil
	}
	return base64.StdEncoding.DecodeString(s)
}
