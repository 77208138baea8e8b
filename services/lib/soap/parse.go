package soap

import (
	"bytes"
	"fmt"
	"strings"
	"time"

	"github.com/hinscore/hinscore/services/lib/atna/xmlscan"
)

// SAML attribute names read from the XUA assertion.
const (
	AttrPurposeOfUse    = "urn:oasis:names:tc:xspa:1.0:subject:purposeofuse"
	AttrOrganization    = "urn:oasis:names:tc:xspa:1.0:subject:organization"
	AttrOrganizationID  = "urn:oasis:names:tc:xspa:1.0:subject:organization-id"
	AttrHomeCommunityID = "urn:nhin:names:saml:homeCommunityId"
)

// schemePatientID is the identificationScheme of XDSDocumentEntry.patientId.
const schemePatientID = "urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427"

// Parse reads one envelope (the XML, not an MTOM package: see Envelope).
// Input longer than maxBytes is refused with ErrTooLarge before it is read.
func Parse(data []byte, maxBytes int) (*Message, error) {
	if len(data) > maxBytes {
		return nil, &ParseError{Prefix: "soap", Reason: fmt.Sprintf("%d bytes, limit %d", len(data), maxBytes), Err: ErrTooLarge}
	}
	p := parser{w: xmlscan.Walker{Limits: xmlscan.Limits{Depth: MaxDepth, Name: MaxName, Value: MaxValue}}}
	err := p.w.Walk(data, &p)
	if err == nil {
		err = p.finish()
	}
	if err != nil {
		return nil, p.wrap(err)
	}
	return &p.m, nil
}

// parser is the xmlscan.Handler of an envelope.
type parser struct {
	w    xmlscan.Walker
	m    Message
	path []string // local names of the open elements
	// collect is the depth whose text is wanted, 0 for none; text holds
	// it and done receives it, trimmed, at the element's end.
	collect  int
	text     []byte
	done     func(string)
	attrName string // Name of the SAML Attribute being read
	slot     string // name of the ebRIM Slot being read
	sawBody  bool
}

func (p *parser) fail(err error, format string, args ...any) *ParseError {
	return p.w.Fail("soap", err, format, args...)
}

// sentinels maps the Walker's refusals to this package's.
var sentinels = map[error]error{xmlscan.ErrDecl: ErrDoctype, xmlscan.ErrTooDeep: ErrTooDeep, xmlscan.ErrTooLarge: ErrTooLarge}

// wrap turns the walk's error into a *ParseError.
func (p *parser) wrap(err error) *ParseError { return p.w.Wrap("soap", err, sentinels) }

func (p *parser) finish() error {
	switch {
	case !p.sawBody:
		return p.fail(ErrNotSOAP, "envelope without a Body")
	case p.m.Body == "":
		return p.fail(ErrNotExchange, "empty Body")
	}
	return nil
}

// Text keeps the text that is read; the rest (a document's base64 in a
// plain ITI-39 response) is bounded only by the envelope's size.
func (p *parser) Text(_ *xmlscan.Walker, t []byte) error {
	if p.collect == len(p.path) {
		if len(p.text)+len(t) > MaxValue {
			return p.fail(ErrTooLarge, "text over %d bytes", MaxValue)
		}
		p.text = append(p.text, t...)
	}
	return nil
}

// want asks for the text of the element just opened.
func (p *parser) want(done func(string)) {
	p.collect, p.text, p.done = len(p.path), p.text[:0], done
}

func (p *parser) Start(_ *xmlscan.Walker, name []byte, attrs []xmlscan.Attr) error {
	el := string(xmlscan.Local(name))
	p.path = append(p.path, el)
	switch depth := len(p.path); {
	case depth == 1:
		return p.envelope(name, attrs)
	case depth == 2:
		if el == "Body" {
			p.sawBody = true
		}
	case p.path[1] == "Header":
		p.header(el, attrs)
	case p.path[1] == "Body" && depth == 3:
		return p.bodyRoot(el, attrs)
	case p.path[1] == "Body":
		return p.body(el, attrs)
	}
	return nil
}

func (p *parser) End(_ *xmlscan.Walker, _ []byte) error {
	n := len(p.path)
	if p.collect == n {
		p.collect = 0
		p.done(string(bytes.TrimSpace(p.text)))
	}
	p.path = p.path[:n-1]
	return nil
}

// envelope checks the root: an Envelope in a SOAP namespace.
func (p *parser) envelope(name []byte, attrs []xmlscan.Attr) error {
	if p.path[0] != "Envelope" {
		return p.fail(ErrNotSOAP, "root element <%s> is not a SOAP Envelope", name)
	}
	decl := "xmlns"
	if i := bytes.IndexByte(name, ':'); i >= 0 {
		decl = "xmlns:" + string(name[:i])
	}
	ns := attrValue(attrs, decl)
	switch ns {
	case NamespaceSOAP12:
		p.m.Version = "1.2"
	case NamespaceSOAP11:
		p.m.Version = "1.1"
	default:
		return p.fail(ErrNotSOAP, "Envelope in namespace %q", ns)
	}
	return nil
}

func (p *parser) header(el string, attrs []xmlscan.Attr) {
	a, m := &p.m.Addressing, &p.m
	switch parent := p.path[len(p.path)-2]; {
	case parent == "Header":
		switch el {
		case "Action":
			p.want(func(s string) { a.Action = s })
		case "MessageID":
			p.want(func(s string) { a.MessageID = s })
		case "RelatesTo":
			if a.RelatesTo == "" {
				p.want(func(s string) { a.RelatesTo = s })
			}
		case "To":
			p.want(func(s string) { a.To = s })
		}
	case el == "Address" && parent == "ReplyTo":
		p.want(func(s string) { a.ReplyTo = s })
	case el == "Created" && parent == "Timestamp" && m.Created.IsZero():
		p.want(func(s string) {
			if t, err := parseDateTime(s); err == nil {
				m.Created = t
			} else {
				m.Notes = append(m.Notes, NoteBadTimestamp)
			}
		})
	case el == "Assertion":
		m.Assertion.Present = true
	case el == "Attribute":
		p.attrName = attrValue(attrs, "Name")
	case p.within("AttributeValue") && p.attrName == AttrPurposeOfUse:
		if c := code(attrs); c.Code != "" && m.Assertion.PurposeOfUse.Code == "" {
			m.Assertion.PurposeOfUse = c
		}
	}
	if el == "AttributeValue" {
		p.attributeValue()
	}
}

// attributeValue reads the text of a SAML AttributeValue the parser keeps.
func (p *parser) attributeValue() {
	as := &p.m.Assertion
	switch p.attrName {
	case AttrPurposeOfUse:
		p.want(func(s string) {
			if s != "" && as.PurposeOfUse.Code == "" {
				as.PurposeOfUse = Code{Code: s}
			}
		})
	case AttrOrganization:
		p.want(func(s string) { setOnce(&as.Organization, s) })
	case AttrOrganizationID:
		p.want(func(s string) { setOnce(&as.OrganizationID, s) })
	case AttrHomeCommunityID:
		p.want(func(s string) { setOnce(&as.HomeCommunityID, s) })
	}
}

func setOnce(dst *string, s string) {
	if *dst == "" {
		*dst = s
	}
}

// within says whether an open element other than the current one has the
// local name el.
func (p *parser) within(el string) bool {
	for _, e := range p.path[:len(p.path)-1] {
		if e == el {
			return true
		}
	}
	return false
}

func (p *parser) bodyRoot(el string, attrs []xmlscan.Attr) error {
	m := &p.m
	if m.Body != "" {
		return p.fail(nil, "a second element <%s> in the Body", el)
	}
	m.Body = el
	switch el {
	case BodyQueryRequest:
		m.Query = &Query{}
	case BodyQueryResponse:
		m.Registry = &RegistryResponse{Status: attrValue(attrs, "status")}
	case BodyRetrieveRequest, BodyRetrieveResponse:
	case BodyDiscoveryRequest, BodyDiscoveryResponse, BodyAcknowledgement:
		m.HL7 = &HL7v3{}
	case BodyFault:
		m.Fault = &Fault{}
	default:
		return p.fail(ErrNotExchange, "body <%s> is none of ITI-38, ITI-39, ITI-55 or a fault", el)
	}
	return nil
}

func (p *parser) body(el string, attrs []xmlscan.Attr) error {
	switch p.m.Body {
	case BodyQueryRequest:
		p.query(el, attrs)
	case BodyQueryResponse, BodyRetrieveResponse, BodyRetrieveRequest:
		p.registry(el, attrs)
	case BodyFault:
		p.fault(el)
	default:
		p.hl7(el, attrs)
	}
	return nil
}

func (p *parser) query(el string, attrs []xmlscan.Attr) {
	q := p.m.Query
	switch {
	case el == "AdhocQuery":
		q.ID, q.Home = attrValue(attrs, "id"), attrValue(attrs, "home")
	case el == "Slot":
		p.slot = attrValue(attrs, "name")
	case el == "Value" && q.PatientID == "" && patientSlot(p.slot):
		p.want(func(s string) { q.PatientID = unquote(s) })
	}
}

// patientSlot says whether a stored query's slot names the patient.
func patientSlot(name string) bool {
	switch name {
	case "$XDSDocumentEntryPatientId", "$XDSSubmissionSetPatientId", "$XDSFolderPatientId", "$patientId":
		return true
	}
	return false
}

// unquote reads a slot value: 'id^^^&1.2&ISO', or ('a','b') of which the
// first is kept.
func unquote(s string) string {
	s = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(s), "("))
	if i := strings.IndexByte(s, ','); i >= 0 {
		s = s[:i]
	}
	s = strings.TrimSpace(strings.TrimSuffix(s, ")"))
	return strings.Trim(s, `'"`)
}

func (p *parser) registry(el string, attrs []xmlscan.Attr) {
	m := &p.m
	parent := p.path[len(p.path)-2]
	switch {
	case el == "RegistryResponse" && m.Registry == nil:
		m.Registry = &RegistryResponse{Status: attrValue(attrs, "status")}
	case el == "RegistryError" && m.Registry != nil:
		m.Registry.Errors = append(m.Registry.Errors, RegistryError{
			Code: attrValue(attrs, "errorCode"), Severity: attrValue(attrs, "severity"),
			Context: attrValue(attrs, "codeContext"), Location: attrValue(attrs, "location"),
		})
	case parent == "RegistryObjectList" && m.Registry != nil:
		m.Registry.Objects++
		if h := attrValue(attrs, "home"); h != "" && !contains(m.Registry.Homes, h) {
			m.Registry.Homes = append(m.Registry.Homes, h)
		}
	case el == "ExternalIdentifier" && m.Registry != nil && m.Registry.PatientID == "" &&
		attrValue(attrs, "identificationScheme") == schemePatientID:
		m.Registry.PatientID = attrValue(attrs, "value")
	case el == "DocumentRequest" || el == "DocumentResponse":
		m.Documents = append(m.Documents, Document{})
	case len(m.Documents) > 0 && (parent == "DocumentRequest" || parent == "DocumentResponse"):
		d := &m.Documents[len(m.Documents)-1]
		switch el {
		case "HomeCommunityId":
			p.want(func(s string) { d.Home = s })
		case "RepositoryUniqueId":
			p.want(func(s string) { d.Repository = s })
		case "DocumentUniqueId":
			p.want(func(s string) { d.ID = s })
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (p *parser) fault(el string) {
	f := p.m.Fault
	parent := p.path[len(p.path)-2]
	switch {
	case el == "Value" && parent == "Code":
		p.want(func(s string) { f.Code = localPart(s) })
	case el == "Value" && parent == "Subcode":
		p.want(func(s string) { f.Subcodes = append(f.Subcodes, localPart(s)) })
	case el == "Text" && parent == "Reason" && f.Reason == "":
		p.want(func(s string) { f.Reason = s })
	case el == "faultcode" && parent == BodyFault:
		p.want(func(s string) { f.Code = localPart(s) })
	case el == "faultstring" && parent == BodyFault:
		p.want(func(s string) { f.Reason = s })
	}
}

// localPart is a QName's text without its prefix (soap:Sender → Sender).
func localPart(s string) string {
	if i := strings.LastIndexByte(s, ':'); i >= 0 {
		return s[i+1:]
	}
	return s
}

func attrValue(attrs []xmlscan.Attr, name string) string {
	for _, at := range attrs {
		if string(at.Name) == name || string(at.Local) == name && !bytes.HasPrefix(at.Name, []byte("xmlns")) {
			return strings.TrimSpace(string(at.Value))
		}
	}
	return ""
}

// code reads an HL7 v3 coded value's attributes.
func code(attrs []xmlscan.Attr) Code {
	return Code{Code: attrValue(attrs, "code"), System: attrValue(attrs, "codeSystem"), Display: attrValue(attrs, "displayName")}
}

func ii(attrs []xmlscan.Attr) II {
	return II{Root: attrValue(attrs, "root"), Extension: attrValue(attrs, "extension")}
}

// parseDateTime reads an xs:dateTime; one without a zone is taken as UTC.
func parseDateTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	return time.Parse("2006-01-02T15:04:05.999999999", s)
}
