package toevent

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
	"github.com/hinscore/hinscore/services/lib/domain/patient"
	"github.com/hinscore/hinscore/services/lib/soap"
)

var (
	ingest = time.Date(2026, 11, 4, 16, 0, 0, 0, time.UTC)
	mapper = NewMapper([]byte("test key"), "k1")
)

const (
	initiating = hinscorev1.Side_SIDE_INITIATING
	responding = hinscorev1.Side_SIDE_RESPONDING
)

func mapFile(t *testing.T, name string, side hinscorev1.Side) *hinscorev1.ExchangeEvent {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	_, ev, err := mapper.Map(Input{Network: "neta", Side: side, Body: data, Ingest: ingest})
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return ev
}

// want is the part of an event a case checks.
type want struct {
	role                        hinscorev1.Role
	kind, key, inReplyTo, txn   string
	status                      hinscorev1.Status
	exception                   string
	reasons                     []string
	purpose, purposeCode        string
	reqCommunity, respCommunity string
	reqOrg, respOrg             string
	patientAuthority, patientID string
	records                     uint32
	eventTime                   time.Time
}

const (
	q1   = "urn:uuid:8d1e6b3a-3c0f-4d6e-9a43-1f0c2b7e5a01"
	r1   = "urn:uuid:4c8e2a90-7b1d-4f3e-9a6c-0d5e8f2b1c05"
	d1   = "urn:uuid:1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c06"
	def1 = "urn:uuid:aa11bb22-cc33-4d44-8e55-ff6677889909"
	lake = "urn:oid:1.3.6.1.4.1.21367.13.70.200"
	rb   = "urn:oid:2.16.840.1.113883.3.9001"
)

var cases = map[string]want{
	"iti38_request.xml": {role: hinscorev1.Role_ROLE_REQUEST, kind: KindDocumentQuery, key: "neta|soap|" + q1 + "|@t", txn: q1,
		purpose: "treatment", purposeCode: "urn:oid:2.16.840.1.113883.3.18.7.1|TREATMENT", reqCommunity: rb, respCommunity: lake,
		reqOrg: "urn:oid:2.16.840.1.113883.3.9001.10", respOrg: lake,
		patientAuthority: "urn:oid:1.3.6.1.4.1.21367.13.20.200", patientID: "4567", eventTime: time.Date(2026, 11, 4, 15, 20, 1, 250e6, time.UTC)},
	"iti38_response_success.xml": {role: hinscorev1.Role_ROLE_RESPONSE, kind: KindDocumentQuery, key: "neta|soap|" + q1 + "|@t", inReplyTo: q1, txn: q1,
		status: hinscorev1.Status_STATUS_OK, reasons: []string{"status|Success"}, respCommunity: lake, respOrg: lake,
		patientAuthority: "urn:oid:1.3.6.1.4.1.21367.13.20.200", patientID: "4567", records: 2, eventTime: time.Date(2026, 11, 4, 15, 20, 3, 900e6, time.UTC)},
	"iti38_response_unknown_patient.xml": {role: hinscorev1.Role_ROLE_RESPONSE, kind: KindDocumentQuery, key: "neta|soap|urn:uuid:c2a9e7d1-0f4b-4a8e-b1d6-5e3f2a1c9b10|@t",
		inReplyTo: "urn:uuid:c2a9e7d1-0f4b-4a8e-b1d6-5e3f2a1c9b10", txn: "urn:uuid:c2a9e7d1-0f4b-4a8e-b1d6-5e3f2a1c9b10",
		status: hinscorev1.Status_STATUS_NOT_FOUND, reasons: []string{"error|XDSUnknownPatientId", "status|Failure", ReasonNoTimestamp},
		respCommunity: lake, respOrg: lake, eventTime: ingest},
	"iti38_response_partial.xml": {role: hinscorev1.Role_ROLE_RESPONSE, kind: KindDocumentQuery, key: "neta|soap|urn:uuid:5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c11|@t",
		inReplyTo: "urn:uuid:5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c11", txn: "urn:uuid:5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c11",
		status: hinscorev1.Status_STATUS_PARTIAL, reasons: []string{"status|PartialSuccess", "error|XDSUnavailableCommunity", ReasonNoTimestamp},
		respCommunity: "urn:oid:1.2.3.42", respOrg: "urn:oid:1.2.3.42", records: 1, eventTime: ingest},
	"iti39_request.xml": {role: hinscorev1.Role_ROLE_REQUEST, kind: KindDocumentRetrieve, key: "neta|soap|" + r1 + "|@t", txn: r1,
		purpose: "individual_access", purposeCode: "urn:oid:2.16.840.1.113883.3.7204.1.5.2.1|T-IAS", reasons: []string{ReasonNoTimestamp},
		reqCommunity: "urn:oid:2.16.840.1.113883.3.9002", respCommunity: lake, reqOrg: "urn:oid:2.16.840.1.113883.3.9002", respOrg: lake, eventTime: ingest},
	"iti39_response.mime": {role: hinscorev1.Role_ROLE_RESPONSE, kind: KindDocumentRetrieve, key: "neta|soap|" + r1 + "|@t", inReplyTo: r1, txn: r1,
		status: hinscorev1.Status_STATUS_OK, reasons: []string{"status|Success", ReasonNoTimestamp}, respCommunity: lake, respOrg: lake, records: 2, eventTime: ingest},
	"iti55_request.xml": {role: hinscorev1.Role_ROLE_REQUEST, kind: KindPatientDiscovery, key: "neta|soap|" + d1 + "|@t", txn: d1,
		purpose: "treatment", purposeCode: "urn:oid:2.16.840.1.113883.5.8|TREAT", reqCommunity: rb, respCommunity: lake, reqOrg: rb, respOrg: lake,
		patientAuthority: "urn:oid:2.16.840.1.113883.3.9001.2", patientID: "RB-1177", eventTime: time.Date(2026, 11, 4, 15, 19, 58, 0, time.UTC)},
	"iti55_response_ok.xml": {role: hinscorev1.Role_ROLE_RESPONSE, kind: KindPatientDiscovery, key: "neta|soap|" + d1 + "|@t", inReplyTo: d1, txn: d1,
		status: hinscorev1.Status_STATUS_OK, reasons: []string{"ack|AA", "xcpd|OK", ReasonNoTimestamp}, reqCommunity: rb, respCommunity: lake, reqOrg: rb, respOrg: lake,
		patientAuthority: "urn:oid:1.3.6.1.4.1.21367.13.20.200", patientID: "LK-20931", records: 1, eventTime: ingest},
	"iti55_response_demographics.xml": {role: hinscorev1.Role_ROLE_RESPONSE, kind: KindPatientDiscovery, key: "neta|soap|urn:uuid:6f5e4d3c-2b1a-4098-b7c6-d5e4f3a2b112|@t",
		inReplyTo: "urn:uuid:6f5e4d3c-2b1a-4098-b7c6-d5e4f3a2b112", txn: "urn:uuid:6f5e4d3c-2b1a-4098-b7c6-d5e4f3a2b112", status: hinscorev1.Status_STATUS_NOT_FOUND,
		reasons:      []string{"issue|LivingSubjectAdministrativeGenderRequested", "issue|PatientAddressRequested", "ack|AA", "xcpd|NF", ReasonNoTimestamp},
		reqCommunity: rb, respCommunity: "urn:oid:1.2.840.114350.1.13.999", reqOrg: rb, respOrg: "urn:oid:1.2.840.114350.1.13.999", eventTime: ingest},
	"iti55_deferred_request.xml": {role: hinscorev1.Role_ROLE_REQUEST, kind: KindPatientDiscovery, key: "neta|soap|" + def1 + "|@t", txn: def1,
		purpose: "treatment", purposeCode: "T-TRTMNT", reqCommunity: rb, respCommunity: lake, reqOrg: rb, respOrg: lake,
		patientAuthority: "urn:oid:2.16.840.1.113883.3.9001.2", patientID: "RB-1177", eventTime: time.Date(2026, 11, 4, 16, 0, 0, 0, time.UTC)},
	"iti55_deferred_ack.xml": {role: hinscorev1.Role_ROLE_NOTIFICATION, kind: KindPatientDiscovery, key: "neta|soap|" + def1 + "|@t", inReplyTo: def1, txn: def1,
		status: hinscorev1.Status_STATUS_ACCEPTED, reasons: []string{"accept-ack|CA", ReasonNoTimestamp}, eventTime: ingest},
	"iti55_deferred_response.xml": {role: hinscorev1.Role_ROLE_RESPONSE, kind: KindPatientDiscovery, key: "neta|soap|" + def1 + "|@t", inReplyTo: def1, txn: def1,
		status: hinscorev1.Status_STATUS_ERROR_TRANSIENT, reasons: []string{"issue|AnswerNotAvailable", "issue|ResponderBusy", "ack|AA", "xcpd|NF"},
		reqCommunity: rb, respCommunity: lake, reqOrg: rb, respOrg: lake, eventTime: time.Date(2026, 11, 4, 16, 42, 10, 0, time.UTC)},
	// An Axiom-serialised answer (every element repeats its namespace,
	// the timestamp unreadable, the sender without an organisation, two
	// matches, the first custodian empty).
	"iti55_response_axiom.xml": {role: hinscorev1.Role_ROLE_RESPONSE, kind: KindPatientDiscovery, key: "neta|soap|urn:uuid:d4c3b2a1-0f9e-4d8c-b7a6-958473625140|@t",
		inReplyTo: "urn:uuid:d4c3b2a1-0f9e-4d8c-b7a6-958473625140", txn: "urn:uuid:d4c3b2a1-0f9e-4d8c-b7a6-958473625140",
		status: hinscorev1.Status_STATUS_OK, reasons: []string{"ack|AA", "xcpd|OK", ReasonBadTimestamp}, reqCommunity: rb, respCommunity: "urn:oid:1.3.6.1.4.1.21367.13.70.300",
		reqOrg: rb, respOrg: "urn:oid:1.3.6.1.4.1.21367.13.70.300", patientAuthority: "urn:oid:1.3.6.1.4.1.21367.13.20.300", patientID: "E-5521", records: 2, eventTime: ingest},
	"fault_consent.xml": {role: hinscorev1.Role_ROLE_RESPONSE, key: "neta|soap|" + r1 + "|@t", inReplyTo: r1, txn: r1,
		status: hinscorev1.Status_STATUS_REFUSED, exception: "171.202", reasons: []string{"fault|PolicyViolation", "fault|Sender", ReasonNoTimestamp}, eventTime: ingest},
	"fault_security.xml": {role: hinscorev1.Role_ROLE_RESPONSE, key: "neta|soap|" + d1 + "|@t", inReplyTo: d1, txn: d1,
		status: hinscorev1.Status_STATUS_REFUSED, reasons: []string{"fault|FailedAuthentication", ReasonNoTimestamp}, eventTime: ingest},
	// A server fault whose reason cites the performance exception: a
	// refusal under it.
	"fault_receiver.xml": {role: hinscorev1.Role_ROLE_RESPONSE, key: "neta|soap|" + q1 + "|@t", inReplyTo: q1, txn: q1,
		status: hinscorev1.Status_STATUS_REFUSED, exception: "171.205", reasons: []string{"fault|Receiver", ReasonNoTimestamp}, eventTime: ingest},
}

// TestMapFiles maps every testdata envelope and checks the fields each
// transaction decides: role, kind, link, status and cited exception,
// reasons, purpose, communities and organisations, patient token,
// records, event time.
func TestMapFiles(t *testing.T) {
	for name, w := range cases {
		ev := mapFile(t, name, initiating)
		got := want{ev.Role, ev.RequestKind, ev.CorrelationKey, ev.InReplyTo, ev.TransactionId, ev.Status, ev.ExceptionCode, ev.ReasonCodes,
			ev.Purpose, ev.PurposeCode, ev.RequesterCommunity, ev.ResponderCommunity, ev.RequesterOrg, ev.ResponderOrg,
			w.patientAuthority, w.patientID, ev.RecordCount, time.UnixMilli(ev.EventTimeMs).UTC()}
		if !reflect.DeepEqual(got, w) {
			t.Errorf("%s:\n got %+v\nwant %+v", name, got, w)
		}
		wantToken := ""
		if w.patientID != "" {
			wantToken = patient.Token([]byte("test key"), w.patientAuthority, w.patientID)
		}
		if ev.PatientToken != wantToken || (wantToken != "") != (ev.PatientKeyId == "k1") {
			t.Errorf("%s: patient token %q key %q, want %q", name, ev.PatientToken, ev.PatientKeyId, wantToken)
		}
		if ev.Format != hinscorev1.Format_FORMAT_SOAP || ev.Side != initiating || ev.Untimed || ev.MappingVersion != "soap-map/2+soap-class/3" ||
			ev.IngestTimeMs != ingest.UnixMilli() || ev.Network != "neta" || ev.EventId == "" {
			t.Errorf("%s: %v %v %v %q", name, ev.Format, ev.Side, ev.Untimed, ev.MappingVersion)
		}
	}
}

// TestSides: the two gateways' copies of one message are two events, a
// copy sent twice is one; the MTOM package with and without its
// Content-Type header block maps to the same answer.
func TestSides(t *testing.T) {
	a, b, c := mapFile(t, "iti38_request.xml", initiating), mapFile(t, "iti38_request.xml", responding), mapFile(t, "iti38_request.xml", initiating)
	if a.EventId == b.EventId || a.EventId != c.EventId || b.Side != responding || a.CorrelationKey != b.CorrelationKey {
		t.Errorf("ids %s %s %s", a.EventId, b.EventId, c.EventId)
	}
	m1, m2 := mapFile(t, "iti39_response.mime", responding), mapFile(t, "iti39_response_headers.mime", responding)
	if m1.Status != m2.Status || m1.CorrelationKey != m2.CorrelationKey || m1.RecordCount != m2.RecordCount {
		t.Errorf("MTOM: %v %v", m1, m2)
	}
}

// TestPatientTokenAcrossForms: an XCPD II and an XCA CX of the same
// identifier give one token (and an HL7 v2 PID-3 with the OID gives it too:
// patient.Authority is the shared rule).
func TestPatientTokenAcrossForms(t *testing.T) {
	xcpd := &soap.Message{Body: soap.BodyDiscoveryRequest, HL7: &soap.HL7v3{Patients: []soap.II{{Root: "1.2.3", Extension: "77"}}}}
	xca := &soap.Message{Body: soap.BodyQueryRequest, Query: &soap.Query{PatientID: "77^^^&1.2.3&ISO"}}
	e1, e2 := mapper.Event(Input{Network: "n"}, xcpd), mapper.Event(Input{Network: "n"}, xca)
	hl7 := patient.Token([]byte("test key"), patient.Authority("", "1.2.3", "ISO"), "77")
	if e1.PatientToken == "" || e1.PatientToken != e2.PatientToken || e1.PatientToken != hl7 {
		t.Errorf("tokens %q %q %q", e1.PatientToken, e2.PatientToken, hl7)
	}
}

// TestDataQuality: a request without MessageID and an answer without
// RelatesTo are still events, unlinked and flagged; a bad timestamp is
// the ingest time, flagged.
func TestDataQuality(t *testing.T) {
	req := mapper.Event(Input{Network: "n", Ingest: ingest}, &soap.Message{Body: soap.BodyQueryRequest, Query: &soap.Query{}, Notes: []string{soap.NoteBadTimestamp}})
	if req.CorrelationKey != "" || req.Purpose != "" || !slices.Equal(req.ReasonCodes, []string{ReasonBadTimestamp, ReasonNoMessageID}) || req.EventTimeMs != ingest.UnixMilli() {
		t.Errorf("request: %+v", req)
	}
	ans := mapper.Event(Input{Network: "n", Ingest: ingest}, &soap.Message{Body: soap.BodyFault, Fault: &soap.Fault{Code: "Receiver"}})
	if ans.CorrelationKey != "" || ans.Status != hinscorev1.Status_STATUS_ERROR_TRANSIENT || !slices.Contains(ans.ReasonCodes, ReasonNoRelatesTo) {
		t.Errorf("answer: %+v", ans)
	}
}

// TestEveryRow classifies, for each row of the built-in table, an answer
// carrying that row's code alone: the row decides its status, role and
// exception (a "-" row decides nothing), and its code is a reason.
func TestEveryRow(t *testing.T) {
	table := DefaultTable()
	if len(table.Rules) < 60 {
		t.Fatalf("%d rows", len(table.Rules))
	}
	for _, r := range table.Rules {
		m := rowMessage(r.Source, r.Match)
		v := classify(m, table)
		role := hinscorev1.Role_ROLE_RESPONSE
		if r.Source == SourceAcceptAck {
			role = r.Role
		}
		want := r.Status
		if r.Source == SourceEmpty {
			want = hinscorev1.Status_STATUS_NOT_FOUND // the Success row comes after
		}
		if v.status != want || v.exception != r.Exception || v.role != role || !slices.Contains(v.reasons, r.Source+"|"+r.Match) {
			t.Errorf("%s %s: %v %q %v %v, want %v %q %v", r.Source, r.Match, v.status, v.exception, v.role, v.reasons, r.Status, r.Exception, role)
		}
	}
}

// rowMessage is an answer whose only code is match, in source.
func rowMessage(source, match string) *soap.Message {
	const status = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:"
	switch source {
	case SourceStatus:
		return &soap.Message{Body: soap.BodyQueryResponse, Registry: &soap.RegistryResponse{Status: status + match, Objects: 1}}
	case SourceEmpty:
		return &soap.Message{Body: match, Registry: &soap.RegistryResponse{Status: status + "Success"}}
	case SourceAckDetail:
		return &soap.Message{Body: soap.BodyDiscoveryResponse, HL7: &soap.HL7v3{AckDetails: []string{match}}}
	case SourceError:
		return &soap.Message{Body: soap.BodyQueryResponse, Registry: &soap.RegistryResponse{Status: status + "Unknown",
			Errors: []soap.RegistryError{{Code: match, Severity: "urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Error"}}}}
	case SourceAcceptAck:
		return &soap.Message{Body: soap.BodyAcknowledgement, HL7: &soap.HL7v3{AckCode: match}}
	case SourceAck:
		return &soap.Message{Body: soap.BodyDiscoveryResponse, HL7: &soap.HL7v3{AckCode: match}}
	case SourceXCPD:
		return &soap.Message{Body: soap.BodyDiscoveryResponse, HL7: &soap.HL7v3{ResponseCode: match}}
	case SourceIssue:
		return &soap.Message{Body: soap.BodyDiscoveryResponse, HL7: &soap.HL7v3{Issues: []string{match}}}
	default:
		return &soap.Message{Body: soap.BodyFault, Fault: &soap.Fault{Code: match}}
	}
}

// TestAnswersInWords: what an answer says in words decides between an
// unexplained refusal and one under an exception; a query that found
// nothing is not_found; an XCPD refusal is read from its acknowledgement
// detail before the acknowledgement code.
func TestAnswersInWords(t *testing.T) {
	const consent = "Disclosure denied by patient consent policy under 45 CFR 171.202 (privacy)"
	const failure = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Failure"
	xcpd := func(detail, text string) *soap.Message {
		h := &soap.HL7v3{AckCode: "AE", ResponseCode: "AE", AckDetails: []string{detail}}
		if text != "" {
			h.AckText = []string{text}
		}
		return &soap.Message{Body: soap.BodyDiscoveryResponse, HL7: h}
	}
	regErr := func(code, context string) *soap.Message {
		return &soap.Message{Body: soap.BodyQueryResponse, Registry: &soap.RegistryResponse{Status: failure,
			Errors: []soap.RegistryError{{Code: code, Context: context, Severity: "urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Error"}}}}
	}
	cases := []struct {
		name      string
		m         *soap.Message
		status    hinscorev1.Status
		exception string
	}{
		{"XCPD refusal citing consent", xcpd("InsufficientPrivileges", consent), hinscorev1.Status_STATUS_REFUSED, "171.202"},
		{"XCPD refusal without reason", xcpd("InsufficientPrivileges", "Request declined"), hinscorev1.Status_STATUS_REFUSED, ""},
		{"XCPD busy", xcpd("ResponderBusy", "try later"), hinscorev1.Status_STATUS_ERROR_TRANSIENT, ""},
		{"XCPD query error", xcpd("QueryParameterNotSupported", ""), hinscorev1.Status_STATUS_ERROR_PERMANENT, ""},
		{"XCA registry error citing consent", regErr("XDSRegistryError", consent), hinscorev1.Status_STATUS_REFUSED, "171.202"},
		{"XCA registry error without reason", regErr("XDSRegistryError", ""), hinscorev1.Status_STATUS_REFUSED, ""},
		{"XCA too many results", regErr("XDSTooManyResults", ""), hinscorev1.Status_STATUS_ERROR_PERMANENT, ""},
		{"XCA busy citing 171.205", regErr("XDSRegistryBusy", "overloaded (45 CFR 171.205)"), hinscorev1.Status_STATUS_REFUSED, "171.205"},
		{"fault without reason", &soap.Message{Body: soap.BodyFault, Fault: &soap.Fault{Code: "Sender"}}, hinscorev1.Status_STATUS_REFUSED, ""},
		{"fault citing consent", &soap.Message{Body: soap.BodyFault, Fault: &soap.Fault{Code: "Sender", Reason: consent}}, hinscorev1.Status_STATUS_REFUSED, "171.202"},
		{"query that found nothing", &soap.Message{Body: soap.BodyQueryResponse, Registry: &soap.RegistryResponse{Status: "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success"}}, hinscorev1.Status_STATUS_NOT_FOUND, ""},
		{"not found, words aside", &soap.Message{Body: soap.BodyDiscoveryResponse, HL7: &soap.HL7v3{AckCode: "AA", ResponseCode: "NF", AckText: []string{"see 45 CFR 171.202"}}}, hinscorev1.Status_STATUS_NOT_FOUND, "171.202"},
	}
	for _, c := range cases {
		c.m.Addressing.RelatesTo = "urn:uuid:x"
		ev := mapper.Event(Input{Network: "n", Ingest: ingest}, c.m)
		if ev.Status != c.status || ev.ExceptionCode != c.exception {
			t.Errorf("%s: %v %q, want %v %q", c.name, ev.Status, ev.ExceptionCode, c.status, c.exception)
		}
	}
}
