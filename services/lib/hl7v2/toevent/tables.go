package toevent

import (
	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
)

// MappingVersion names the rules of this package; every event records it.
// Change it whenever a table below changes meaning.
const MappingVersion = "hl7v2-map/4"

// shape is how a message takes part in an exchange.
type shape int

const (
	shapeNotification shape = iota // outside every pattern
	shapeRequest                   // opens a chain, keyed by its control id
	shapeOrder                     // opens a chain, keyed by its placer number
	shapeAnswer                    // closes a chain: MSA-1 decides role and status
	shapeOrderAnswer               // ORR/ORL: accepted (interim) or rejected (final)
	shapeResult                    // ORU: the fulfilment of the order whose placer number it carries
)

// pattern classifies a message type (MSH-9.1, MSH-9.2; an empty trigger
// matches any). The first matching row wins, so specific rows come first.
type pattern struct {
	code, trigger string
	shape         shape
	kind          string // request kind of a request
}

// Request kinds (ExchangeEvent.request_kind).
const (
	KindPatientQuery  = "patient_query"
	KindDocumentQuery = "document_query"
	KindReferral      = "referral"
	KindOrder         = "order"
)

var patterns = [...]pattern{
	{"QBP", "Q22", shapeRequest, KindPatientQuery},
	{"QBP", "Q23", shapeRequest, KindPatientQuery},
	{"QBP", "Q11", shapeRequest, KindPatientQuery},
	{"QBP", "", shapeRequest, KindPatientQuery},
	{"QRY", "A19", shapeRequest, KindPatientQuery},
	{"QRY", "T12", shapeRequest, KindDocumentQuery},
	{"QRY", "", shapeRequest, KindPatientQuery},
	{"REF", "", shapeRequest, KindReferral},
	{"ORM", "", shapeOrder, KindOrder},
	{"OML", "", shapeOrder, KindOrder},
	{"RSP", "", shapeAnswer, ""},
	{"ADR", "", shapeAnswer, ""},
	{"DOC", "", shapeAnswer, ""},
	{"RRI", "", shapeAnswer, ""},
	{"ACK", "", shapeAnswer, ""},
	{"ORR", "", shapeOrderAnswer, ""},
	{"ORL", "", shapeOrderAnswer, ""},
	{"ORU", "", shapeResult, ""},
}

// ackCodes gives the role and status of an answer by MSA-1 (HL7 table
// 0008). Commit-level acks (C*) only say the message was stored, so they
// do not close the chain. statusError means: decide by ERR-3.
var ackCodes = [...]struct {
	code   string
	role   hinscorev1.Role
	status hinscorev1.Status
}{
	{"AA", hinscorev1.Role_ROLE_RESPONSE, hinscorev1.Status_STATUS_OK},
	{"AE", hinscorev1.Role_ROLE_RESPONSE, statusError},
	{"AR", hinscorev1.Role_ROLE_RESPONSE, hinscorev1.Status_STATUS_REFUSED},
	{"CA", hinscorev1.Role_ROLE_INTERIM, hinscorev1.Status_STATUS_ACCEPTED},
	{"CE", hinscorev1.Role_ROLE_INTERIM, statusError},
	{"CR", hinscorev1.Role_ROLE_INTERIM, hinscorev1.Status_STATUS_REFUSED},
}

// statusError is a placeholder: the ERR-3 codes decide transient or permanent.
const statusError = hinscorev1.Status(-1)

// queryResponses gives the status of an accepted query by QAK-2 (HL7
// table 0208).
var queryResponses = [...]struct {
	code   string
	status hinscorev1.Status
}{
	{"OK", hinscorev1.Status_STATUS_OK},
	{"NF", hinscorev1.Status_STATUS_NOT_FOUND},
	{"AE", statusError},
	{"AR", hinscorev1.Status_STATUS_REFUSED},
	{"PD", hinscorev1.Status_STATUS_REFUSED}, // protected data
	{"TM", hinscorev1.Status_STATUS_PARTIAL}, // too much data: some of it
}

// transientErrors are the ERR-3 codes (HL7 table 0357) worth retrying;
// every other error code is permanent.
var transientErrors = [...]string{
	"206", // application record locked
	"207", // application internal error
}

func isTransient(code string) bool {
	for _, c := range transientErrors {
		if c == code {
			return true
		}
	}
	return false
}

func lookupPattern(code, trigger string) (pattern, bool) {
	for _, p := range patterns {
		if p.code == code && (p.trigger == "" || p.trigger == trigger) {
			return p, true
		}
	}
	return pattern{}, false
}
