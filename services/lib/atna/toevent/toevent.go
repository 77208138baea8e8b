// Package toevent maps an ATNA audit record (an atna.Audit, read from an
// AuditMessage or converted from a FHIR AuditEvent) to the ExchangeEvents
// hinscore publishes: one mapping for both forms of the record.
//
// An audit of a cross-community transaction (XCPD ITI-55, XCA ITI-38 and
// ITI-39) records a whole exchange, so it yields the request and its
// answer, both at the audit's EventDateTime and marked untimed: the record
// says when the transaction ended, not when it was asked. Both gateways
// audit the same transaction; their four events share one correlation
// key built from what both records carry (the transaction id), so the
// linker counts one exchange and records which sides it saw. The key of an
// XCPD query with its queryId, unique to the query, is a transaction key
// (partition.Transaction): its records link at any delay, as a deferred
// response hours later must. Any other id (a digest of the query or of the
// documents, which the same query next week repeats) is windowed in event
// time (partition.Windowed). Any other audit (a login, a query of
// another profile) is recorded as one notification.
package toevent

import (
	_ "embed"
	"errors"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/hinscore/hinscore/proto/classtable"
	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
	"github.com/hinscore/hinscore/services/lib/atna"
	"github.com/hinscore/hinscore/services/lib/domain/exception"
	"github.com/hinscore/hinscore/services/lib/domain/ids"
	"github.com/hinscore/hinscore/services/lib/domain/partition"
	"github.com/hinscore/hinscore/services/lib/domain/patient"
	"github.com/hinscore/hinscore/services/lib/domain/quality"
	"github.com/hinscore/hinscore/services/lib/domain/text"
)

// MappingVersion names the rules of this package. Events record it joined
// with the classification table's version: "atna-map/3+atna-class/2".
const MappingVersion = "atna-map/3"

// Window is the width of the event-time windows of a cross-community
// correlation key. The two gateways record one transaction within seconds
// of each other (each when its side ended); 5 minutes, with the linker
// looking in the neighbouring windows, tolerates clocks minutes apart and
// still tells apart the same query sent again later.
const Window = 5 * time.Minute

// MaxReasonText is how much of EventOutcomeDescription an event keeps.
const MaxReasonText = 512

// Request kinds of the cross-community transactions.
const (
	KindPatientDiscovery = "patient_discovery" // XCPD ITI-55
	KindDocumentQuery    = "document_query"    // XCA ITI-38
	KindDocumentRetrieve = "document_retrieve" // XCA ITI-39
)

// Sources of the rows of outcome.csv.
const (
	SourceIndicator   = "indicator"
	SourceDescription = "description"
	SourceDeferred    = "deferred"
	SourceNoPatient   = "no-patient"
	SourcePart        = "part"
)

//go:embed outcome.csv
var defaultTableCSV string

// DefaultTable parses the built-in table (outcome.csv). It is parsed per
// call (no package-level mutable state); callers keep the result.
func DefaultTable() *classtable.Table {
	t, err := ParseTable(strings.NewReader(defaultTableCSV))
	if err != nil {
		panic("toevent: built-in outcome.csv: " + err.Error()) // caught by every test
	}
	return t
}

// ParseTable reads a table in the form of outcome.csv (a network's own
// rows, to lay Over the built-in ones).
func ParseTable(r io.Reader) (*classtable.Table, error) {
	t, err := classtable.Parse(r, SourceIndicator, SourceDescription, SourcePart, SourceDeferred, SourceNoPatient)
	if err != nil {
		return nil, errors.New("toevent.ParseTable: " + err.Error())
	}
	return t, nil
}

// Errors of an Input that cannot be mapped.
var (
	ErrNoNetwork = errors.New("toevent: no network")
	// ErrNoRaw: the event ids derive from the record's bytes; without
	// them every record would get the same ids.
	ErrNoRaw = errors.New("toevent: no record bytes")
)

// Input is what the mapping needs beside the audit.
type Input struct {
	Network string
	// Raw is what the event ids derive from: the record's bytes as
	// received (the AuditMessage), or for a FHIR AuditEvent its identity.
	// The same record sent twice gets the same ids.
	Raw    []byte
	Ingest time.Time
	// Patients makes the patient tokens (nil: no token); PatientKeyID
	// names its key.
	Patients     *patient.Tokenizer
	PatientKeyID string
	// Table classifies the outcome; nil uses DefaultTable (parsed per
	// call: keep one).
	Table *classtable.Table
	// Format is the record's format: FORMAT_ATNA when unset, FORMAT_FHIR
	// for an AuditEvent. It names the message type's root too.
	Format hinscorev1.Format
}

// Map maps one audit. An error means the input cannot be mapped at all
// (no audit, no network, no bytes); a record that lacks something is still mapped,
// with a reason code saying what was missing.
func Map(a *atna.Audit, in Input) ([]*hinscorev1.ExchangeEvent, error) {
	if a == nil {
		return nil, errors.New("toevent: no audit")
	}
	if in.Network == "" {
		return nil, ErrNoNetwork
	}
	if len(in.Raw) == 0 {
		return nil, ErrNoRaw
	}
	if in.Table == nil {
		in.Table = DefaultTable()
	}
	if in.Format == hinscorev1.Format_FORMAT_UNSPECIFIED {
		in.Format = hinscorev1.Format_FORMAT_ATNA
	}
	m := mapping{a: a, in: in, tx: transactionOf(a), base: ids.Event(in.Network, in.Raw)}
	m.version = MappingVersion + "+" + in.Table.Version
	m.msgType = m.messageType()
	m.purpose, m.purposeCode = purposeOf(a)
	if p, ok := patientOf(a); ok && in.Patients != nil {
		m.token, m.keyID = in.Patients.Token(p.authority, p.id), in.PatientKeyID
	}
	m.at = a.Event.DateTime
	if m.at.IsZero() {
		m.at = in.Ingest
		flag := quality.NoTimestamp
		if a.Event.BadDateTime {
			flag = quality.BadTimestamp
		}
		m.flags = append(m.flags, quality.Code(flag))
	}
	if m.tx.kind == "" {
		return []*hinscorev1.ExchangeEvent{m.notification()}, nil
	}
	if a.Event.NoOutcome {
		// A transaction's record that does not say how it ended: recorded,
		// flagged, and not scored (an absent indicator is no success).
		m.flags = append(m.flags, quality.Code(quality.NoOutcome))
		return []*hinscorev1.ExchangeEvent{m.notification()}, nil
	}
	return m.exchange(), nil
}

// mapping is one audit being mapped.
type mapping struct {
	a     *atna.Audit
	in    Input
	tx    transaction
	at    time.Time
	flags []string // data-quality reason codes every event carries
	// What every event of the record carries, computed once.
	base                 uuid.UUID // the id of the record's bytes
	version, msgType     string
	purpose, purposeCode string
	token, keyID         string
}

func (m *mapping) newEvent(suffix string) *hinscorev1.ExchangeEvent {
	id := m.base
	if suffix != "" {
		// The record's bytes are hashed once (base); each event's id is
		// the base's with its suffix, as deterministic and far cheaper than
		// hashing the record again.
		id = ids.Event(m.in.Network, append(m.base[:], "#"+suffix...))
	}
	return &hinscorev1.ExchangeEvent{
		EventId:        id.String(),
		Network:        m.in.Network,
		Format:         m.in.Format,
		MessageType:    m.msgType,
		EventTimeMs:    m.at.UnixMilli(),
		IngestTimeMs:   m.in.Ingest.UnixMilli(),
		MappingVersion: m.version,
		Purpose:        m.purpose,
		PurposeCode:    m.purposeCode,
		PatientToken:   m.token,
		PatientKeyId:   m.keyID,
	}
}

// messageType is "AuditMessage^<EventID>^<EventTypeCode>" (AuditEvent^...
// for FHIR), the EventTypeCode the one that made the transaction, else the
// first.
func (m *mapping) messageType() string {
	root := "AuditMessage"
	if m.in.Format == hinscorev1.Format_FORMAT_FHIR {
		root = "AuditEvent"
	}
	s := root + "^" + m.a.Event.ID.Code
	switch {
	case m.tx.typeCode != "":
		s += "^" + m.tx.typeCode
	case len(m.a.Event.TypeCodes) > 0:
		s += "^" + m.a.Event.TypeCodes[0].Code
	}
	return s
}

// notification is an audit of anything but a cross-community transaction:
// recorded, counted in volumes, linked to nothing.
func (m *mapping) notification() *hinscorev1.ExchangeEvent {
	ev := m.newEvent("")
	ev.Role = hinscorev1.Role_ROLE_NOTIFICATION
	ev.ResponderOrg = siteOf(m.a.Source)
	ev.CorrelationKey = m.in.Network + "|" + ev.ResponderOrg + "|" + ev.EventId
	ev.ReasonCodes = append([]string(nil), m.flags...)
	return ev
}

// exchange is the request and the answer of one gateway's record.
func (m *mapping) exchange() []*hinscorev1.ExchangeEvent {
	gw := gatewaysOf(m.a, m.tx)
	reqComm, respComm := communitiesOf(m.a, gw)
	side := sideOf(m.a, m.tx, gw, respComm)
	if side == hinscorev1.Side_SIDE_UNSPECIFIED {
		m.flags = append(m.flags, "atna|side-unknown")
	}
	reqComm, respComm = writerCommunity(m.a.Source, side, reqComm, respComm)
	reqOrg, respOrg := gw.orgs(side, m.a.Source, reqComm, respComm)
	txID := transactionID(m.a, m.tx, respComm)
	if txID == "" {
		txID = "audit:" + m.base.String()
		m.flags = append(m.flags, "atna|no-transaction-id")
	}
	key := transactionKey(m.in.Network+"|xca|"+m.tx.kind+"|"+txID, txID, m.at)
	fill := func(ev *hinscorev1.ExchangeEvent) {
		ev.CorrelationKey, ev.TransactionId, ev.Side, ev.Untimed = key, txID, side, true
		ev.RequesterOrg, ev.ResponderOrg = reqOrg, respOrg
		ev.RequesterCommunity, ev.ResponderCommunity = reqComm, respComm
		ev.MessageId = txID
		ev.AckCode = strconv.Itoa(m.a.Event.Outcome)
	}
	var out []*hinscorev1.ExchangeEvent
	if !m.tx.deferredResponse {
		req := m.newEvent("request")
		fill(req)
		req.Role, req.RequestKind, req.AckCode = hinscorev1.Role_ROLE_REQUEST, m.tx.kind, ""
		req.ReasonCodes = append([]string(nil), m.flags...)
		out = append(out, req)
	}
	ans := m.newEvent("response")
	fill(ans)
	ans.MessageId, ans.InReplyTo = "", txID
	m.classify(ans)
	return append(out, ans)
}

// transactionKey is the correlation key of a transaction: a transaction
// key when its id is a queryId, else windowed at the record's time.
func transactionKey(base, txID string, at time.Time) string {
	if strings.HasPrefix(txID, queryIDPrefix) {
		return partition.Transaction(base)
	}
	return partition.Windowed(base, at.UnixMilli(), Window.Milliseconds())
}

// classify sets the answer's role, status and reasons from the table.
func (m *mapping) classify(ans *hinscorev1.ExchangeEvent) {
	t := m.in.Table
	ind := strconv.Itoa(m.a.Event.Outcome)
	codes := append(append([]string(nil), m.flags...), "atna|"+ind)
	rule, ok := t.Lookup(SourceIndicator, ind)
	if !ok {
		// An indicator DICOM does not define: not a success, and nothing
		// says more.
		rule = classtable.Rule{Role: hinscorev1.Role_ROLE_RESPONSE, Status: hinscorev1.Status_STATUS_ERROR_PERMANENT}
		codes = append(codes, "atna|unknown-indicator")
	}
	if m.tx.deferredRequest {
		if r, ok := t.Lookup(SourceDeferred, ind); ok {
			rule = r
		}
	}
	desc := m.a.Event.OutcomeDescription
	source := SourceDescription
	if m.a.Event.Outcome == 4 {
		// A minor failure names the error of the part that failed.
		if _, said, ok := describe(t, SourcePart, desc); ok {
			source, codes = "", append(codes, "ihe|"+said)
		}
	}
	r, said, described := describe(t, source, desc)
	if described {
		rule = r
		codes = append(codes, "ihe|"+said)
	}
	if !described && !m.tx.deferredRequest && m.a.Event.Outcome == 0 && !hasPatient(m.a) {
		if r, ok := t.Lookup(SourceNoPatient, m.tx.kind); ok {
			rule = r
			codes = append(codes, "atna|no-patient")
		}
	}
	ans.Role, ans.Status, ans.ReasonCodes = rule.Role, rule.Status, codes
	ans.ReasonText = text.Truncate(strings.TrimSpace(desc), MaxReasonText)
	if ans.Status == hinscorev1.Status_STATUS_OK {
		ans.RecordCount = m.tx.records(m.a)
	}
	citeException(ans, desc)
}

// citeException reads a 45 CFR 171 exception or a redirect in the
// description: a failure that cites one is a refusal on those grounds.
func citeException(ev *hinscorev1.ExchangeEvent, desc string) {
	if desc == "" {
		return
	}
	negative := ev.Status == hinscorev1.Status_STATUS_ERROR_PERMANENT || ev.Status == hinscorev1.Status_STATUS_ERROR_TRANSIENT ||
		ev.Status == hinscorev1.Status_STATUS_REFUSED
	if r := exception.RedirectFromText(desc); r != "" && negative {
		ev.Status, ev.ExceptionCode = hinscorev1.Status_STATUS_REDIRECTED, r
		return
	}
	if c := exception.FromText(desc); c != "" {
		ev.ExceptionCode = c
		if negative {
			ev.Status = hinscorev1.Status_STATUS_REFUSED
		}
	}
}

// describe finds the first row of source (in the table's order, so
// that specific rows come first) that the text says: a row of one word
// matches a word of the text, a row of several words a phrase in it, both
// regardless of case. said is what matched, as the row writes it.
func describe(t *classtable.Table, source, desc string) (rule classtable.Rule, said string, ok bool) {
	if source == "" || strings.TrimSpace(desc) == "" {
		return classtable.Rule{}, "", false
	}
	ws := words(desc)
	var lower string
	for _, r := range t.Rules {
		if r.Source != source {
			continue
		}
		if strings.Contains(r.Match, " ") {
			if lower == "" {
				lower = strings.ToLower(strings.Join(ws, " "))
			}
			if strings.Contains(" "+lower+" ", " "+strings.ToLower(r.Match)+" ") {
				return r, r.Match, true
			}
			continue
		}
		for _, w := range ws {
			if strings.EqualFold(w, r.Match) {
				return r, r.Match, true
			}
		}
	}
	return classtable.Rule{}, "", false
}

// words splits free text into the words a description row may match.
func words(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_')
	})
}

// Kind is the request kind of the cross-community transaction an audit
// records, "" for any other audit (which Map records as a notification).
func Kind(a *atna.Audit) string { return transactionOf(a).kind }

// MapBytes parses in.Raw, an AuditMessage of at most maxBytes, and maps
// it: what an audit listener and `hinscore inspect` do with a record.
// Errors are the parser's *atna.ParseError or Map's.
func MapBytes(in Input, maxBytes int) (*atna.Audit, []*hinscorev1.ExchangeEvent, error) {
	a, err := atna.Parse(in.Raw, maxBytes)
	if err != nil {
		return nil, nil, err
	}
	evs, err := Map(a, in)
	return a, evs, err
}
