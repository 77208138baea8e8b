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
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/hinscore/hinscore/services/lib/atna/xmlscan"
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

// ParseError says what is wrong with a message and where: the element,
// the byte offset, the reason and one of the sentinels (errors.Is), or nil
// for malformed XML.
type ParseError = xmlscan.ParseError

// Audit is one AuditMessage.
type Audit struct {
	Event        Event
	Participants []Participant
	Source       Source // the first AuditSourceIdentification
	Objects      []Object
}

// Event is the EventIdentification.
type Event struct {
	ActionCode string    // C, R, U, D or E; "" when absent
	DateTime   time.Time // zero when absent or unreadable
	// BadDateTime is set when EventDateTime is present but no xs:dateTime:
	// the record stays readable (the observer rule), its time unknown.
	BadDateTime bool
	Outcome     int // 0 success, 4 minor, 8 serious, 12 major failure
	// NoOutcome is set when EventOutcomeIndicator (required) is absent or
	// no number: nothing says how the audited exchange ended, and Outcome
	// (0) must not be read as success.
	NoOutcome bool
	// OutcomeDescription is the EventOutcomeDescription (DICOM 2017 on):
	// free text, often the error code or message of a failed transaction.
	OutcomeDescription string
	ID                 Code
	TypeCodes          []Code
	PurposesOfUse      []Code
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
		return nil, &ParseError{Prefix: "atna", Reason: fmt.Sprintf("%d bytes, limit %d", len(data), maxBytes), Err: ErrTooLarge}
	}
	p := parsers.Get().(*parser)
	defer p.release()
	p.a = new(Audit)
	// Until an EventOutcomeIndicator is read (the record may lack even its
	// EventIdentification).
	p.a.Event.NoOutcome = true
	// The Audit's strings are substrings of one buffer: one allocation
	// (or a few, for a record of long values) instead of one per value.
	// What they take of the input is a fraction of it.
	p.strs.Grow(len(data) / 4)
	if n := bytes.Count(data, []byte("ParticipantObjectIdentification")); n > 1 {
		// Start and end tags both counted: a hint, for the objects of a
		// long answer not to be copied as the slice grows.
		p.a.Objects = make([]Object, 0, n/2)
	}
	if err := p.w.Walk(data, p); err != nil {
		return nil, p.wrap(err)
	}
	return p.a, nil
}

// parsers keeps parsers for reuse: the walker's attribute slice, element
// stack and decoding buffer, and the text and base64 buffers, are the same
// for every message. Nothing of a parser's Audit stays in it.
var parsers = sync.Pool{New: func() any {
	return &parser{w: xmlscan.Walker{Limits: xmlscan.Limits{Depth: MaxDepth, Name: MaxName, Value: MaxValue}}}
}}

// keptBuffer bounds the text and base64 buffers a parser keeps.
const keptBuffer = 64 << 10

// release returns p to parsers, without its Audit, its strings or any
// reference to the input.
func (p *parser) release() {
	p.w.Release()
	p.a, p.strs = nil, strings.Builder{}
	p.collect, p.sources = 0, 0
	p.text, p.scratch = p.text[:0], p.scratch[:0]
	if cap(p.text) > keptBuffer || cap(p.scratch) > keptBuffer {
		p.text, p.scratch = nil, nil // a rare long value: not kept
	}
	parsers.Put(p)
}

// parser is the xmlscan.Handler of an AuditMessage.
type parser struct {
	w    xmlscan.Walker
	strs strings.Builder // what the Audit's strings are made of
	a    *Audit
	// collect is the depth whose text is wanted (ParticipantObjectQuery,
	// ParticipantObjectName, EventOutcomeDescription), 0 for none; text
	// holds it.
	collect int
	text    []byte
	sources int // AuditSourceIdentifications seen; only the first is kept
	scratch []byte
}

func (p *parser) fail(err error, format string, args ...any) *ParseError {
	return p.w.Fail("atna", err, format, args...)
}

// sentinels maps the Walker's refusals to this package's.
var sentinels = map[error]error{xmlscan.ErrDecl: ErrDoctype, xmlscan.ErrTooDeep: ErrTooDeep, xmlscan.ErrTooLarge: ErrTooLarge}

// wrap turns the walk's error into a *ParseError.
func (p *parser) wrap(err error) *ParseError { return p.w.Wrap("atna", err, sentinels) }

func local(name []byte) []byte { return xmlscan.Local(name) }

// str is an attribute's value as a string, kept in p.strs: a Builder
// never changes the bytes it has given out as a string, so each value
// stays what it was when the buffer grows or takes the next one.
func (p *parser) str(at xmlscan.Attr) string { return p.keep(at.Value) }

func (p *parser) keep(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	start := p.strs.Len()
	p.strs.Write(b)
	return p.strs.String()[start:]
}

func (p *parser) Text(_ *xmlscan.Walker, t []byte) error { return p.chars(t) }

func (p *parser) Start(_ *xmlscan.Walker, name []byte, attrs []xmlscan.Attr) error {
	return p.start(name, attrs)
}

func (p *parser) End(_ *xmlscan.Walker, name []byte) error { return p.end(name) }

func (p *parser) chars(t []byte) error {
	if p.collect == p.w.Depth() {
		if len(p.text)+len(t) > MaxValue {
			return p.fail(ErrTooLarge, "text over %d bytes", MaxValue)
		}
		p.text = append(p.text, t...)
	} else if len(t) > MaxValue {
		return p.fail(ErrTooLarge, "text over %d bytes", MaxValue)
	}
	return nil
}

func (p *parser) start(name []byte, attrs []xmlscan.Attr) error {
	parent := string(p.w.Ancestor(1))
	el := local(name)
	if p.w.Depth() == 1 {
		if string(el) != "AuditMessage" {
			return p.fail(ErrNotAudit, "root element <%s>", el)
		}
		return nil
	}
	a := p.a
	var err error
	switch parent {
	case "AuditMessage":
		switch string(el) {
		case "EventIdentification":
			err = p.event(attrs)
		case "ActiveParticipant":
			err = p.participant(attrs)
		case "AuditSourceIdentification":
			p.sources++
			if p.sources == 1 {
				p.source(attrs)
			}
		case "ParticipantObjectIdentification":
			err = p.object(attrs)
		}
	case "EventIdentification":
		switch string(el) {
		case "EventID":
			a.Event.ID = p.code(attrs)
		case "EventTypeCode":
			a.Event.TypeCodes = append(a.Event.TypeCodes, p.code(attrs))
		case "PurposeOfUse":
			a.Event.PurposesOfUse = append(a.Event.PurposesOfUse, p.code(attrs))
		case "EventOutcomeDescription":
			p.collect = p.w.Depth()
			p.text = p.text[:0]
		}
	case "ActiveParticipant":
		if string(el) == "RoleIDCode" && len(a.Participants) > 0 {
			pa := &a.Participants[len(a.Participants)-1]
			pa.RoleIDCodes = append(pa.RoleIDCodes, p.code(attrs))
		}
	case "AuditSourceIdentification":
		if string(el) == "AuditSourceTypeCode" && p.sources == 1 {
			a.Source.TypeCodes = append(a.Source.TypeCodes, p.code(attrs))
		}
	case "ParticipantObjectIdentification":
		if len(a.Objects) == 0 {
			break
		}
		o := &a.Objects[len(a.Objects)-1]
		switch string(el) {
		case "ParticipantObjectIDTypeCode":
			o.IDTypeCode = p.code(attrs)
		case "ParticipantObjectQuery", "ParticipantObjectName":
			p.collect = p.w.Depth()
			p.text = p.text[:0]
		case "ParticipantObjectDetail":
			var d Detail
			var val []byte
			for _, at := range attrs {
				switch string(at.Local) {
				case "type":
					d.Type = p.str(at)
				case "value":
					val = at.Value
				}
			}
			if d.Value, err = unbase64(val, &p.scratch); err != nil {
				return p.fail(nil, "value is not base64: %v", err)
			}
			o.Details = append(o.Details, d)
		}
	}
	return err
}

func (p *parser) end(name []byte) error {
	if p.collect == p.w.Depth() {
		p.collect = 0
		if string(local(name)) == "EventOutcomeDescription" {
			p.a.Event.OutcomeDescription = p.keep(bytes.TrimSpace(p.text))
		} else if len(p.a.Objects) > 0 {
			o := &p.a.Objects[len(p.a.Objects)-1]
			switch string(local(name)) {
			case "ParticipantObjectQuery":
				q, err := unbase64(p.text, &p.scratch)
				if err != nil {
					return p.fail(nil, "not base64: %v", err)
				}
				o.Query = q
			case "ParticipantObjectName":
				o.Name = p.keep(bytes.TrimSpace(p.text))
			}
		}
	}
	return nil
}

// event reads EventIdentification's attributes. A time or an outcome it
// cannot read is no reason to refuse the record: it is marked
// (BadDateTime, NoOutcome) for the mapping to flag.
func (p *parser) event(attrs []xmlscan.Attr) error {
	e := &p.a.Event
	for _, at := range attrs {
		switch string(at.Local) {
		case "EventActionCode":
			e.ActionCode = p.str(at)
		case "EventDateTime":
			tm, err := parseDateTime(p.str(at))
			if err != nil {
				tm = time.Time{}
			}
			e.DateTime, e.BadDateTime = tm, err != nil
		case "EventOutcomeIndicator":
			n, err := smallInt(at.Value)
			e.Outcome, e.NoOutcome = n, err != nil
		}
	}
	return nil
}

func (p *parser) participant(attrs []xmlscan.Attr) error {
	var pa Participant
	for _, at := range attrs {
		switch string(at.Local) {
		case "UserID":
			pa.UserID = p.str(at)
		case "AlternativeUserID":
			pa.AlternativeUserID = p.str(at)
		case "UserName":
			pa.UserName = p.str(at)
		case "UserIsRequestor":
			switch string(bytes.TrimSpace(at.Value)) {
			case "true", "1":
				pa.UserIsRequestor = true
			case "false", "0":
			default:
				return p.fail(nil, "UserIsRequestor %q is not a boolean", at.Value)
			}
		case "NetworkAccessPointID":
			pa.NetworkAccessPointID = p.str(at)
		case "NetworkAccessPointTypeCode":
			n, err := smallInt(at.Value)
			if err != nil {
				return p.fail(nil, "NetworkAccessPointTypeCode %q is not a number", at.Value)
			}
			pa.NetworkAccessPointTypeCode = n
		}
	}
	if p.a.Participants == nil {
		// Two gateways and a human requestor, usually.
		p.a.Participants = make([]Participant, 0, 4)
	}
	p.a.Participants = append(p.a.Participants, pa)
	return nil
}

func (p *parser) source(attrs []xmlscan.Attr) {
	s := &p.a.Source
	for _, at := range attrs {
		switch string(at.Local) {
		case "AuditSourceID":
			s.ID = p.str(at)
		case "AuditEnterpriseSiteID":
			s.EnterpriseSiteID = p.str(at)
		case "AuditSourceTypeCode":
			// Some RFC 3881 senders put the type code as an attribute.
			s.TypeCodes = append(s.TypeCodes, Code{Code: p.str(at)})
		}
	}
}

func (p *parser) object(attrs []xmlscan.Attr) error {
	// Filled in place: copying a whole Object into the slice costs more
	// while the collector is marking (a bulk write barrier).
	p.a.Objects = append(p.a.Objects, Object{})
	o := &p.a.Objects[len(p.a.Objects)-1]
	for _, at := range attrs {
		var dst *int
		switch string(at.Local) {
		case "ParticipantObjectID":
			o.ID = p.str(at)
		case "ParticipantObjectTypeCode":
			dst = &o.TypeCode
		case "ParticipantObjectTypeCodeRole":
			dst = &o.TypeCodeRole
		case "ParticipantObjectDataLifeCycle":
			dst = &o.DataLifeCycle
		case "ParticipantObjectSensitivity":
			o.Sensitivity = p.str(at)
		}
		if dst != nil {
			n, err := smallInt(at.Value)
			if err != nil {
				return p.fail(nil, "%s %q is not a number", at.Local, at.Value)
			}
			*dst = n
		}
	}
	return nil
}

// code reads a coded value in either schema's attributes.
func (p *parser) code(attrs []xmlscan.Attr) Code {
	var c Code
	var system, display xmlscan.Attr
	for _, at := range attrs {
		switch string(at.Local) {
		case "csd-code", "code":
			c.Code = p.str(at)
		case "codeSystemName":
			c.System = p.str(at)
		case "codeSystem":
			system = at
		case "originalText":
			c.Display = p.str(at)
		case "displayName":
			display = at
		}
	}
	if c.System == "" {
		c.System = p.str(system)
	}
	if c.Display == "" {
		c.Display = p.str(display)
	}
	return c
}

// errNotSmallInt is smallInt's refusal; the caller's error names the
// attribute and its value.
var errNotSmallInt = errors.New("not a number from 0 to 65535")

// smallInt reads a decimal from 0 to 65535, white space around it
// allowed, as the coded integers of an AuditMessage are.
func smallInt(b []byte) (int, error) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return 0, errNotSmallInt
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, errNotSmallInt
		}
		if n = n*10 + int(c-'0'); n > 65535 {
			return 0, errNotSmallInt
		}
	}
	return n, nil
}

// parseDateTime reads an xs:dateTime; one without a zone is taken as UTC.
func parseDateTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	return time.Parse("2006-01-02T15:04:05.999999999", s)
}

// unbase64 decodes xs:base64Binary, which may be broken into lines and
// indented (Decode skips CR and LF, not the rest of XML's white space:
// spaces and tabs are dropped first, into scratch).
func unbase64(b []byte, scratch *[]byte) ([]byte, error) {
	if bytes.IndexByte(b, ' ') >= 0 || bytes.IndexByte(b, '\t') >= 0 {
		kept := (*scratch)[:0]
		if cap(kept) < len(b) {
			kept = make([]byte, 0, len(b))
		}
		for _, c := range b {
			if c != ' ' && c != '\t' {
				kept = append(kept, c)
			}
		}
		*scratch, b = kept, kept
	}
	if len(b) == 0 {
		return nil, nil
	}
	out := make([]byte, base64.StdEncoding.DecodedLen(len(b)))
	n, err := base64.StdEncoding.Decode(out, b)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, nil
	}
	return out[:n:n], nil
}
