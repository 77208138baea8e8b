// Package toevent maps a SOAP copy of a cross-community transaction
// (lib/soap) to the ExchangeEvent hinscore stores: requests open a chain
// keyed by their WS-Addressing MessageID, answers (responses, faults,
// deferred XCPD responses and their acknowledgements) join it through
// RelatesTo, and what an answer says is classified by a versioned table
// (classification.csv, proto/classtable).
package toevent

import (
	_ "embed"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/hinscore/hinscore/proto/classtable"
	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
	"github.com/hinscore/hinscore/services/lib/domain/ids"
	"github.com/hinscore/hinscore/services/lib/domain/partition"
	"github.com/hinscore/hinscore/services/lib/domain/patient"
	"github.com/hinscore/hinscore/services/lib/domain/text"
	"github.com/hinscore/hinscore/services/lib/soap"
)

// MappingVersion names the rules of this mapping; events record it with
// the table's version ("soap-map/2+soap-class/3").
const MappingVersion = "soap-map/2"

// MaxReasonText is how much of a fault's reason or an error's context an
// event keeps.
const MaxReasonText = 512

// Request kinds of the cross-community transactions.
const (
	KindDocumentQuery    = "document_query"    // ITI-38
	KindDocumentRetrieve = "document_retrieve" // ITI-39
	KindPatientDiscovery = "patient_discovery" // ITI-55
)

// Data-quality reasons: defects that still let the message be identified.
const (
	ReasonNoTimestamp  = "dq|no-timestamp"  // no wsu:Created: the event time is the ingest time
	ReasonBadTimestamp = "dq|bad-timestamp" // a wsu:Created that is no xs:dateTime: the ingest time
	ReasonNoMessageID  = "dq|no-message-id" // a request without wsa:MessageID: nothing can answer it
	ReasonNoRelatesTo  = "dq|no-relates-to" // an answer without wsa:RelatesTo: it answers nothing known
)

// Sources of the classification table.
const (
	SourceStatus    = "status"
	SourceError     = "error"
	SourceAck       = "ack"
	SourceAckDetail = "ack-detail"
	SourceEmpty     = "empty"
	SourceAcceptAck = "accept-ack"
	SourceXCPD      = "xcpd"
	SourceIssue     = "issue"
	SourceFault     = "fault"
)

// sources are the sources classification.csv may name.
var sources = []string{SourceStatus, SourceEmpty, SourceError, SourceAck, SourceAckDetail, SourceAcceptAck, SourceXCPD, SourceIssue, SourceFault}

//go:embed classification.csv
var defaultTableCSV string

// DefaultTable parses the built-in table, per call (no package-level
// mutable state); callers keep the result.
func DefaultTable() *classtable.Table {
	t, err := ParseTable(strings.NewReader(defaultTableCSV))
	if err != nil {
		panic("toevent: built-in classification.csv: " + err.Error()) // caught by every test
	}
	return t
}

// ParseTable reads a table in the form of classification.csv (a
// network's own rows, to be put Over the default).
func ParseTable(r io.Reader) (*classtable.Table, error) {
	t, err := classtable.ParseCiting(r, sources...)
	if err != nil {
		return nil, fmt.Errorf("toevent.ParseTable: %w", err)
	}
	return t, nil
}

// Mapper turns envelopes into events. Patients makes the patient tokens
// (under the patient key, the same rule as HL7 v2 and FHIR); PatientKeyID
// names the key; Table classifies answers (nil: DefaultTable).
type Mapper struct {
	Patients     *patient.Tokenizer
	PatientKeyID string
	Table        *classtable.Table
}

// NewMapper returns a Mapper with the built-in table.
func NewMapper(key []byte, keyID string) Mapper {
	return Mapper{Patients: patient.NewTokenizer(key), PatientKeyID: keyID, Table: DefaultTable()}
}

// Input is one SOAP copy as received.
type Input struct {
	Network     string
	Side        hinscorev1.Side // which gateway sent the copy
	ContentType string          // the HTTP Content-Type; "" for a file
	Body        []byte          // the bytes as received (an MTOM package whole)
	Ingest      time.Time
	MaxBytes    int // bound on the envelope; 0: 16 MiB
}

// Map reads in.Body and maps its envelope. Errors are *soap.ParseError
// or soap.ErrMIME.
func (mp Mapper) Map(in Input) (*soap.Message, *hinscorev1.ExchangeEvent, error) {
	limit := in.MaxBytes
	if limit <= 0 {
		limit = 16 << 20
	}
	env, err := soap.Envelope(in.ContentType, in.Body, limit)
	if err != nil {
		return nil, nil, err
	}
	m, err := soap.Parse(env, limit)
	if err != nil {
		return nil, nil, err
	}
	return m, mp.Event(in, m), nil
}

// Event maps a parsed message. The event id is of the network, the side
// and the bytes as received: both gateways' copies of one message are two
// events (the linker records which sides were seen), a copy sent twice is
// one.
func (mp Mapper) Event(in Input, m *soap.Message) *hinscorev1.ExchangeEvent {
	table := mp.Table
	if table == nil {
		table = DefaultTable()
	}
	ev := &hinscorev1.ExchangeEvent{
		EventId:        EventID(in.Network, in.Side, in.Body),
		Network:        in.Network,
		Format:         hinscorev1.Format_FORMAT_SOAP,
		MessageId:      m.Addressing.MessageID,
		MessageType:    m.Body,
		RequestKind:    requestKind(m.Body),
		Side:           in.Side,
		IngestTimeMs:   in.Ingest.UnixMilli(),
		MappingVersion: MappingVersion + "+" + table.Version,
	}
	var dq []string
	switch {
	case !m.Created.IsZero():
		ev.EventTimeMs = m.Created.UnixMilli()
	case contains(m.Notes, soap.NoteBadTimestamp):
		ev.EventTimeMs, dq = in.Ingest.UnixMilli(), append(dq, ReasonBadTimestamp)
	default:
		ev.EventTimeMs, dq = in.Ingest.UnixMilli(), append(dq, ReasonNoTimestamp)
	}
	if isRequest(m.Body) {
		dq = append(dq, mp.request(ev, m)...)
	} else {
		dq = append(dq, mp.answer(ev, m, table)...)
	}
	ev.ReasonCodes = append(ev.ReasonCodes, dq...)
	if ev.Role != hinscorev1.Role_ROLE_NOTIFICATION {
		// An accept acknowledgement recorded as a notification may come
		// from either gateway (soap-class/3): it names no requester or
		// responder rather than guess which its sender is.
		parties(ev, m)
	}
	mp.patient(ev, m)
	return ev
}

// EventID is the id of a copy: a version-5 UUID of the network and the
// side-tagged bytes.
func EventID(network string, side hinscorev1.Side, body []byte) string {
	tagged := make([]byte, 0, len(side.String())+1+len(body))
	tagged = append(append(append(tagged, side.String()...), '\n'), body...)
	return ids.Event(network, tagged).String()
}

func isRequest(body string) bool {
	switch body {
	case soap.BodyQueryRequest, soap.BodyRetrieveRequest, soap.BodyDiscoveryRequest:
		return true
	}
	return false
}

func requestKind(body string) string {
	switch body {
	case soap.BodyQueryRequest, soap.BodyQueryResponse:
		return KindDocumentQuery
	case soap.BodyRetrieveRequest, soap.BodyRetrieveResponse:
		return KindDocumentRetrieve
	case soap.BodyDiscoveryRequest, soap.BodyDiscoveryResponse, soap.BodyAcknowledgement:
		return KindPatientDiscovery
	}
	return "" // a fault does not say which transaction it ends
}

// CorrelationKey is the key a request and its answers share: the
// network and the request's MessageID, a transaction key
// (partition.Transaction): the MessageID is unique to the request, so both
// gateways' copies link at any delay.
func CorrelationKey(network, requestMessageID string) string {
	return partition.Transaction(network + "|soap|" + requestMessageID)
}

func (mp Mapper) request(ev *hinscorev1.ExchangeEvent, m *soap.Message) []string {
	ev.Role = hinscorev1.Role_ROLE_REQUEST
	ev.Purpose, ev.PurposeCode = purposeOf(m.Assertion.PurposeOfUse)
	id := m.Addressing.MessageID
	if id == "" {
		return []string{ReasonNoMessageID}
	}
	ev.CorrelationKey, ev.TransactionId = CorrelationKey(ev.Network, id), id
	return nil
}

func (mp Mapper) answer(ev *hinscorev1.ExchangeEvent, m *soap.Message, table *classtable.Table) []string {
	v := classify(m, table)
	ev.Role, ev.Status, ev.ExceptionCode, ev.ReasonCodes = v.role, v.status, v.exception, v.reasons
	ev.AckCode, ev.RecordCount = ackCode(m), recordCount(m)
	ev.ReasonText = text.Truncate(reasonText(m), MaxReasonText)
	if ev.ExceptionCode == "" {
		ev.ExceptionCode = exceptionFromText(ev.ReasonText)
		ev.Status = refusedUnder(ev.Status, ev.ExceptionCode)
	}
	id := m.Addressing.RelatesTo
	if id == "" {
		return []string{ReasonNoRelatesTo}
	}
	ev.CorrelationKey, ev.InReplyTo, ev.TransactionId = CorrelationKey(ev.Network, id), id, id
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
