// Package soap reads copies of the SOAP messages of the IHE
// cross-community transactions into a neutral Message: ITI-38 Cross
// Gateway Query (AdhocQueryRequest, AdhocQueryResponse), ITI-39 Cross
// Gateway Retrieve (RetrieveDocumentSetRequest, RetrieveDocumentSetResponse,
// plain or MTOM), ITI-55 Cross Gateway Patient Discovery
// (PRPA_IN201305UV02, PRPA_IN201306UV02, the deferred form and its
// MCCI_IN000002UV01 acknowledgement) and SOAP faults, in SOAP 1.2 or 1.1
// envelopes: the WS-Addressing headers, the wsu:Timestamp, the XUA
// assertion's attributes, and what each body says about its transaction.
// It knows nothing of ExchangeEvents (package toevent maps a Message) or
// of the bus.
//
// The input is untrusted: it is read by lib/atna/xmlscan, so any DOCTYPE or
// other markup declaration is refused before anything is expanded,
// nesting and sizes are bounded, and every error is a *ParseError.
package soap

import (
	"errors"
	"time"

	"github.com/hinscore/hinscore/services/lib/atna/xmlscan"
)

// Sentinel errors, matched with errors.Is through the *ParseError that
// carries them.
var (
	ErrDoctype  = errors.New("soap: DOCTYPE or markup declaration")
	ErrTooDeep  = errors.New("soap: nesting too deep")
	ErrTooLarge = errors.New("soap: too large")
	ErrNotSOAP  = errors.New("soap: not a SOAP 1.1 or 1.2 envelope")
	// ErrNotExchange: an envelope whose body is none of the
	// cross-community transactions (nor a fault).
	ErrNotExchange = errors.New("soap: body is no cross-community transaction")
	// ErrMIME: a multipart/related (MTOM) body without a readable root part.
	ErrMIME = errors.New("soap: malformed multipart/related body")
)

// Limits on what one message may hold. An envelope with a signed SAML
// assertion and an HL7 v3 body nests about 20 levels.
const (
	MaxDepth = 64
	MaxName  = 256       // bytes of an element or attribute name
	MaxValue = 256 << 10 // bytes of an attribute value or of a text that is read
)

// ParseError says what is wrong with a message and where: the element,
// the byte offset, the reason and one of the sentinels (errors.Is), or nil
// for malformed XML.
type ParseError = xmlscan.ParseError

// SOAP versions, by their envelope namespaces.
const (
	NamespaceSOAP12 = "http://www.w3.org/2003/05/soap-envelope"
	NamespaceSOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
)

// Body kinds: the local name of the body's element.
const (
	BodyQueryRequest      = "AdhocQueryRequest"           // ITI-38
	BodyQueryResponse     = "AdhocQueryResponse"          // ITI-38
	BodyRetrieveRequest   = "RetrieveDocumentSetRequest"  // ITI-39
	BodyRetrieveResponse  = "RetrieveDocumentSetResponse" // ITI-39
	BodyDiscoveryRequest  = "PRPA_IN201305UV02"           // ITI-55
	BodyDiscoveryResponse = "PRPA_IN201306UV02"           // ITI-55, immediate or deferred
	BodyAcknowledgement   = "MCCI_IN000002UV01"           // ITI-55 deferred: the accept acknowledgement
	BodyFault             = "Fault"
)

// Message is one envelope.
type Message struct {
	Version    string // "1.2" or "1.1"
	Addressing Addressing
	Created    time.Time // wsse:Security/wsu:Timestamp/wsu:Created; zero when absent
	Assertion  Assertion
	Body       string // local name of the body's element (Body* constants)

	Fault     *Fault
	Query     *Query            // ITI-38 request
	Registry  *RegistryResponse // ITI-38 response, ITI-39 response's RegistryResponse
	Documents []Document        // ITI-39: the DocumentRequests or DocumentResponses
	HL7       *HL7v3            // ITI-55 bodies

	// Notes are data-quality defects that did not stop the parse
	// (NoteBadTimestamp).
	Notes []string
}

// NoteBadTimestamp: a wsu:Created that is no xs:dateTime (Created stays
// zero).
const NoteBadTimestamp = "timestamp-unreadable"

// Addressing holds the WS-Addressing headers.
type Addressing struct {
	Action    string
	MessageID string
	RelatesTo string // the first wsa:RelatesTo (the request a reply answers)
	To        string
	ReplyTo   string // wsa:ReplyTo/wsa:Address
}

// Assertion is what the XUA (SAML 2.0) assertion in wsse:Security says of
// the requester. The subject's own name (subject-id) is a person and is
// deliberately not read.
type Assertion struct {
	Present         bool
	PurposeOfUse    Code   // urn:oasis:names:tc:xspa:1.0:subject:purposeofuse
	Organization    string // urn:oasis:names:tc:xspa:1.0:subject:organization (a name)
	OrganizationID  string // urn:oasis:names:tc:xspa:1.0:subject:organization-id
	HomeCommunityID string // urn:nhin:names:saml:homeCommunityId
}

// Code is a coded value (HL7 v3 CE/CD attributes), or a bare text value
// in Code with System empty.
type Code struct {
	Code, System, Display string
}

// Fault is a SOAP fault: the code, its subcodes (outermost first) as the
// local parts of their QNames, and the reason text.
type Fault struct {
	Code     string
	Subcodes []string
	Reason   string
}

// Query is an ITI-38 AdhocQueryRequest.
type Query struct {
	ID        string // AdhocQuery/@id, the stored query (urn:uuid:...)
	Home      string // AdhocQuery/@home, the responding community
	PatientID string // the CX of the $XDS...PatientId slot, quotes removed
}

// RegistryResponse is an ebRS response: its status and errors, and the
// objects an AdhocQueryResponse returned.
type RegistryResponse struct {
	Status    string // the whole URN as sent
	Errors    []RegistryError
	Objects   int      // ExtrinsicObjects, ObjectRefs and RegistryPackages returned
	Homes     []string // distinct @home of the objects, in order
	PatientID string   // the XDSDocumentEntry.patientId of the first object that has one
}

// RegistryError is an rs:RegistryError.
type RegistryError struct {
	Code, Severity, Context, Location string
}

// Error says whether the error has severity Error (not Warning).
func (e RegistryError) Error() bool {
	return !hasSuffix(e.Severity, ":Warning")
}

// Document is an ITI-39 DocumentRequest or DocumentResponse.
type Document struct {
	Home, Repository, ID string
}

// HL7v3 is what an ITI-55 body (PRPA_IN201305UV02, PRPA_IN201306UV02,
// MCCI_IN000002UV01) says.
type HL7v3 struct {
	ID           II
	CreationTime string
	Sender       Device
	Receiver     Device
	// AckCode is acknowledgement/typeCode (AA, AE, AR, CA, CE, CR); Target
	// the acknowledged message's id (acknowledgement/targetMessage/id).
	AckCode    string
	Target     II
	AckDetails []string // acknowledgementDetail codes (InsufficientPrivileges, ResponderBusy, ...)
	AckText    []string // acknowledgementDetail texts
	QueryID    II
	// ResponsePriority is I (immediate) or D (deferred) in a request.
	ResponsePriority string
	ResponseCode     string // queryAck/queryResponseCode: OK, NF, AE, QE
	// Patients are the ids of the request's livingSubjectIds, or of the
	// matched patients of a response.
	Patients   []II
	Matches    int      // registrationEvents returned
	Custodians []string // registrationEvent/custodian/assignedEntity/id/@root
	Issues     []string // detected issue codes (detectedIssueEvent and what it triggers or is mitigated by)
}

// II is an HL7 v3 instance identifier.
type II struct{ Root, Extension string }

// Device is a sender or receiver: the device's id and the id of the
// organisation it acts for (the home community in XCPD).
type Device struct {
	ID           string
	Organization string
}

func hasSuffix(s, suffix string) bool {
	return len(s) >= len(suffix) && s[len(s)-len(suffix):] == suffix
}
