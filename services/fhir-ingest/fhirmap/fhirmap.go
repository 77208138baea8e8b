// Package fhirmap maps FHIR R4 JSON to the ExchangeEvents hinscore
// publishes (DOMAIN.md, "FHIR R4"). It decodes only the elements it uses
// into its own structs; every other element is ignored.
//
// Correlation keys are network|requester|id, as on the HL7 v2 side:
//   - messaging: the request's MessageHeader.source.endpoint and id; the
//     answer's destination[0].endpoint and response.identifier. Endpoints,
//     not organisations, because R4 makes them mandatory and an answer goes
//     back to the endpoint the request came from.
//   - Task: the requester (Task.requester) and the Task's own identity
//     (Task.identifier[0] system|value, else Task/id); every version of a
//     Task carries both.
//   - AuditEvent: the requesting agent and the AuditEvent's identity; it
//     yields a request and its answer (one AuditEvent = one exchange).
//   - batch / transaction: no requester ("") and X-Correlation-ID (else
//     Bundle.identifier, else Bundle.id) + "#" + entry position.
//   - OperationOutcome alone: no requester and the X-Correlation-ID.
package fhirmap

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hinscore/hinscore/proto/classtable"
	atnaevent "github.com/hinscore/hinscore/services/lib/atna/toevent"
	"github.com/hinscore/hinscore/services/lib/domain/ids"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
	"github.com/hinscore/hinscore/services/lib/domain/exception"
	patienttoken "github.com/hinscore/hinscore/services/lib/domain/patient"
	"github.com/hinscore/hinscore/services/lib/domain/quality"
	hl7text "github.com/hinscore/hinscore/services/lib/domain/text"
)

// MappingVersion names the rules of this package. Events record it joined
// with the classification table's version: "fhir-map/2+fhir-class/2".
const MappingVersion = "fhir-map/5"

// MaxReasonText is how much reason text an event keeps.
const MaxReasonText = 512

// maxDepth bounds Bundles inside Bundles (a notification carrying a
// message): deeper nesting is refused, not followed.
const maxDepth = 3

// Request kinds (ExchangeEvent.request_kind) beyond those of DOMAIN.md:
// a write inside a batch/transaction is an exchange but not a record request.
const (
	KindPatientQuery  = "patient_query"
	KindDocumentQuery = "document_query"
	KindReferral      = "referral"
	KindOrder         = "order"
	KindRecordRequest = "record_request"
	KindRecordWrite   = "record_write"
)

// Mapper maps resources to events. Patients makes the patient tokens (under
// the patient key), PatientKeyID names the key; Table classifies answers (NewMapper sets the
// built-in one).
type Mapper struct {
	Patients     *patienttoken.Tokenizer
	PatientKeyID string
	Table        *Table
	// AuditTable classifies the AuditEvents of cross-community
	// transactions: the ATNA table of lib/atna/toevent, which the
	// AuditMessage form of the same record is classified by.
	AuditTable *classtable.Table
}

// NewMapper returns a mapper with the built-in classification table.
func NewMapper(key []byte, keyID string) Mapper {
	return Mapper{Patients: patienttoken.NewTokenizer(key), PatientKeyID: keyID, Table: DefaultTable(), AuditTable: atnaevent.DefaultTable()}
}

// Input is one resource as received.
type Input struct {
	Network string
	Body    []byte
	// CorrelationID is the feed's X-Correlation-ID header: it links a
	// batch/transaction to its response, and an OperationOutcome to what it
	// answers.
	CorrelationID string
	Ingest        time.Time
}

// Result is what a resource maps to.
type Result struct {
	ResourceType string
	ID           string
	VersionID    string
	// Identity is what the resource's deterministic ids derive from:
	// "Type/id/_history/version" when it has both, else a hash of the body,
	// so the same version posted twice is stored once.
	Identity string
	// Events may be empty: a subscription heartbeat is stored in RAW only.
	Events []*hinscorev1.ExchangeEvent
}

// Map decodes one resource and maps it. Errors are *Error naming the element.
func (m Mapper) Map(in Input) (Result, error) {
	if m.Table == nil {
		m.Table = DefaultTable()
	}
	if m.AuditTable == nil {
		m.AuditTable = atnaevent.DefaultTable()
	}
	c := &mapCtx{m: m, in: in, version: MappingVersion + "+" + m.Table.Version}
	typ := peekType(in.Body)
	if typ == "" {
		h, err := decodeHead(in.Body)
		if err != nil {
			return Result{}, err
		}
		typ = h.ResourceType
	}
	h, events, err := c.resource(typ, in.Body, typ, 0)
	res := Result{ResourceType: typ, ID: h.ID, Identity: identity(h, in.Body)}
	if h.Meta != nil {
		res.VersionID = h.Meta.VersionID
	}
	if err != nil {
		return res, err
	}
	for _, ev := range events {
		if len(c.flags) > 0 {
			ev.ReasonCodes = slices.Concat(ev.ReasonCodes, c.flags) // a copy: events may share their codes' array
		}
	}
	res.Events = events
	return res, nil
}

// Identity returns the identity of a resource (see Result.Identity).
func identity(h head, body []byte) string {
	if h.ID != "" && h.Meta != nil && h.Meta.VersionID != "" {
		return h.ResourceType + "/" + h.ID + "/_history/" + h.Meta.VersionID
	}
	sum := sha256.Sum256(bytes.TrimSpace(body))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// decodeHead reads resourceType, id and meta, and refuses what is not a
// JSON object with a resourceType.
func decodeHead(body []byte) (head, error) {
	var h head
	if err := decode(body, &h, ""); err != nil {
		return h, err
	}
	if h.ResourceType == "" {
		return h, &Error{Path: "resourceType", IssueCode: "structure", Msg: "missing: not a FHIR resource", Err: ErrSyntax}
	}
	return h, nil
}

// decode unmarshals into v, a pointer to a zero struct; errors name the
// element (path prefixes the decoder's own field path). The fast path
// decodes plain input; encoding/json everything else, from a zero v again.
func decode(data []byte, v any, path string) error {
	if fastDecode(data, v) {
		return nil
	}
	reflect.ValueOf(v).Elem().SetZero()
	err := json.Unmarshal(data, v)
	if err == nil {
		return nil
	}
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return &Error{Path: path, IssueCode: "structure", Msg: fmt.Sprintf("invalid JSON at byte %d: %v", se.Offset, se), Err: ErrSyntax}
	case errors.As(err, &te):
		p := te.Field
		if path != "" && p != "" {
			p = path + "." + p
		} else if path != "" {
			p = path
		}
		return &Error{Path: p, IssueCode: "structure", Msg: fmt.Sprintf("JSON %s where FHIR wants %s", te.Value, jsonKind(te.Type.Kind().String())), Err: ErrSyntax}
	default:
		return &Error{Path: path, IssueCode: "structure", Msg: err.Error(), Err: ErrSyntax}
	}
}

func jsonKind(goKind string) string {
	switch goKind {
	case "struct", "map", "ptr":
		return "an object"
	case "slice":
		return "an array"
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	default:
		return "a number"
	}
}

// mapCtx carries one Map call.
type mapCtx struct {
	m       Mapper
	in      Input
	version string
	flags   []string // data-quality reason codes for every event (flag)
}

// resource decodes and maps one resource of type typ found at path (the
// type name at the top), returning its head.
func (c *mapCtx) resource(typ string, body []byte, path string, depth int) (head, []*hinscorev1.ExchangeEvent, error) {
	switch typ {
	case "Bundle":
		var b bundle
		if err := decode(body, &b, path); err != nil {
			return head{}, nil, err
		}
		if depth >= maxDepth {
			return b.head, nil, notExchange(path, "Bundles nested deeper than %d", maxDepth)
		}
		evs, err := c.bundle(&b, body, path, depth)
		return b.head, evs, err
	case "Task":
		var tk task
		if err := decode(body, &tk, path); err != nil {
			return head{}, nil, err
		}
		evs, err := c.task(&tk, body, path)
		return tk.head, evs, err
	case "MessageHeader":
		var mh messageHeader
		if err := decode(body, &mh, path); err != nil {
			return head{}, nil, err
		}
		evs, err := c.message(&mh, nil, identity(mh.head, body), metaTime(mh.head), path, path)
		return mh.head, evs, err
	case "AuditEvent":
		var a auditEvent
		if err := decode(body, &a, path); err != nil {
			return head{}, nil, err
		}
		evs, err := c.audit(&a, body, path)
		return a.head, evs, err
	case "OperationOutcome":
		var oo operationOutcome
		if err := decode(body, &oo, path); err != nil {
			return head{}, nil, err
		}
		evs, err := c.outcome(&oo, body, path)
		return oo.head, evs, err
	default:
		h, err := decodeHead(body) // the syntax is checked before the type is refused
		if err != nil {
			return h, nil, within(path, err)
		}
		return h, nil, notExchange(path, "a %s is not an exchange event: send Bundle, Task, AuditEvent, OperationOutcome or MessageHeader", h.ResourceType)
	}
}

// newEvent starts an event; suffix tells apart the events of one resource.
func (c *mapCtx) newEvent(ident, suffix, messageID, messageType string, t time.Time) *hinscorev1.ExchangeEvent {
	return &hinscorev1.ExchangeEvent{
		EventId:        ids.Event(c.in.Network, []byte(ident+"#"+suffix)).String(),
		Network:        c.in.Network,
		Format:         hinscorev1.Format_FORMAT_FHIR,
		MessageId:      messageID,
		MessageType:    messageType,
		EventTimeMs:    t.UnixMilli(),
		IngestTimeMs:   c.in.Ingest.UnixMilli(),
		MappingVersion: c.version,
	}
}

func key(network, requester, id string) string { return network + "|" + requester + "|" + id }

// patientToken is the token of the HL7 v2 mapping too, with
// Identifier.system as the authority. An identifier without a system whose
// value is an HL7 v2 CX (id^^^authority, as IHE audit records name the
// patient) is read as one, so that it gets the token the same patient gets
// in HL7 v2 and under its system in FHIR (patient.Authority).
func (c *mapCtx) patientToken(ev *hinscorev1.ExchangeEvent, id *identifier) {
	if id == nil || id.Value == "" {
		return
	}
	system, value := id.System, id.Value
	if system == "" {
		if v, auth, ok := patienttoken.SplitCX(value); ok {
			system, value = auth, v
		}
	}
	ev.PatientToken = c.m.Patients.Token(system, value)
	ev.PatientKeyId = c.m.PatientKeyID
}

// org names an organisation a reference points at: its identifier value,
// else the reference, else the display.
func org(r *reference) string {
	switch {
	case r == nil:
		return ""
	case r.Identifier != nil && r.Identifier.Value != "":
		return r.Identifier.Value
	case r.Reference != "":
		return r.Reference
	}
	return r.Display
}

// metaTime is the time a resource says it was last changed, or "".
func metaTime(h head) timeField {
	if h.Meta == nil {
		return timeField{}
	}
	if h.Meta.LastModified != "" {
		return timeField{h.ResourceType + ".meta.lastModified", h.Meta.LastModified}
	}
	return timeField{h.ResourceType + ".meta.lastUpdated", h.Meta.LastUpdated}
}

type timeField struct{ path, value string }

// eventTime reads the first field that is set and readable. A resource
// with no time at all is dated by its arrival (the ingest time the event
// also records); one whose time cannot be read is too, and its events are
// flagged (quality.BadTimestamp).
func (c *mapCtx) eventTime(fields ...timeField) time.Time {
	for _, f := range fields {
		if f.value == "" {
			continue
		}
		t, err := ParseTime(f.value)
		if err != nil {
			c.flag(quality.BadTimestamp)
			continue
		}
		return t
	}
	return c.in.Ingest
}

// flag notes a data-quality flag for every event of the resource.
func (c *mapCtx) flag(name string) {
	if code := quality.Code(name); !slices.Contains(c.flags, code) {
		c.flags = append(c.flags, code)
	}
}

// ParseTime reads a FHIR instant or dateTime. A dateTime without a time is
// the start of that day (month, year) in UTC; a time without a zone is UTC.
func ParseTime(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02", "2006-01", "2006"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a FHIR dateTime (YYYY-MM-DDThh:mm:ss+zz:zz)", s)
}

// reasons collects what an answer says about why: codes, text, the
// exception or redirect it cites.
type reasons struct {
	codes     []string
	texts     []string
	exception string
	redirect  string
}

func (r *reasons) add(code string) {
	if code != "" {
		r.codes = append(r.codes, code)
	}
}

func (r *reasons) cite(code string) {
	if code == "" {
		return
	}
	if exception.IsRedirect(code) {
		if r.redirect == "" {
			r.redirect = code
		}
		return
	}
	if r.exception == "" {
		r.exception = code
	}
}

func (r *reasons) coding(c coding) {
	if c.Code != "" {
		if c.System != "" {
			r.add(c.System + "|" + c.Code)
		} else {
			r.add(c.Code)
		}
		r.cite(exception.FromCoding(c.System, c.Code))
	}
	r.cite(exception.FromText(c.Display))
}

func (r *reasons) concept(cc *codeableConcept) {
	if cc == nil {
		return
	}
	for _, c := range cc.Coding {
		r.coding(c)
	}
	r.text(cc.Text)
}

func (r *reasons) text(t string) {
	if t = strings.TrimSpace(t); t == "" {
		return
	}
	r.texts = append(r.texts, t)
	r.cite(exception.FromText(t))
}

// apply writes the reasons into ev and adjusts a negative status: a
// redirect makes it redirected; an error citing an exception of the rule is
// a refusal (the responder says why it will not answer).
func (r *reasons) apply(ev *hinscorev1.ExchangeEvent) {
	ev.ReasonCodes = r.codes
	text := strings.Join(r.texts, "; ")
	ev.ReasonText = hl7text.Truncate(text, MaxReasonText)
	if r.redirect == "" {
		r.redirect = exception.RedirectFromText(text)
	}
	negative := false
	switch ev.Status {
	case hinscorev1.Status_STATUS_REFUSED, hinscorev1.Status_STATUS_ERROR_PERMANENT, hinscorev1.Status_STATUS_ERROR_TRANSIENT:
		negative = true
	}
	ev.ExceptionCode = r.exception
	switch {
	case negative && r.redirect != "":
		ev.Status = hinscorev1.Status_STATUS_REDIRECTED
		if ev.ExceptionCode == "" {
			ev.ExceptionCode = r.redirect
		}
	case ev.Status == hinscorev1.Status_STATUS_REDIRECTED && ev.ExceptionCode == "" && r.redirect != "":
		ev.ExceptionCode = r.redirect
	case ev.Status == hinscorev1.Status_STATUS_ERROR_PERMANENT && r.exception != "":
		ev.Status = hinscorev1.Status_STATUS_REFUSED
	}
}

// issues classifies an OperationOutcome: the first error or fatal issue
// whose code the table knows (issue rows) decides (known). failed reports
// whether it has an error or fatal issue at all, known or not. Every issue
// adds its reasons.
func (c *mapCtx) issues(oo *operationOutcome, r *reasons) (status hinscorev1.Status, known, failed bool) {
	if oo == nil {
		return 0, false, false
	}
	for _, is := range oo.Issue {
		if is.Code != "" {
			r.add(SourceIssue + "|" + is.Code)
		}
		r.concept(is.Details)
		r.text(is.Diagnostics)
		if is.Severity != "error" && is.Severity != "fatal" {
			continue
		}
		failed = true
		if known {
			continue
		}
		if rule, ok := c.m.Table.Lookup(SourceIssue, is.Code); ok {
			status, known = rule.Status, true
		}
	}
	return status, known, failed
}

// note classifies an OperationOutcome that has no error: the first warning
// or information issue an issue-note row names (records suppressed for
// privacy, an incomplete answer) decides.
func (c *mapCtx) note(oo *operationOutcome) (hinscorev1.Status, bool) {
	for _, is := range oo.Issue {
		if rule, ok := c.m.Table.Lookup(SourceNote, is.Code); ok {
			return rule.Status, true
		}
	}
	return 0, false
}

// httpAnswer classifies an answer by its HTTP status and outcome: a 2xx
// is what it says; otherwise a known issue code is more precise than the
// HTTP class. A status that is no HTTP status line (FHIR's response.status
// is a string: "created", "OK", "201Created") is read as well as it can be
// (see readHTTPStatus) and flagged, never refused; one that says nothing
// readable leaves the status to the outcome's issues.
func (c *mapCtx) httpAnswer(ev *hinscorev1.ExchangeEvent, status string, oo *operationOutcome, r *reasons) {
	code, exact := readHTTPStatus(status)
	if code != "" {
		ev.AckCode = code
		r.add(SourceHTTP + "|" + code)
		rule, _ := c.m.Table.Lookup(SourceHTTP, code)
		ev.Status = rule.Status
	}
	if !exact {
		r.add(quality.Code(quality.BadEntryStatus))
	}
	issueStatus, known, _ := c.issues(oo, r)
	if known && (code == "" || code[0] != '2') {
		ev.Status = issueStatus
	}
}

// readHTTPStatus reads the HTTP code of an entry's response.status: exact
// when it is a status line ("201", "201 Created"); otherwise the first
// three-digit number in it ("201Created", "HTTP/1.1 201 Created"), else
// the code whose reason phrase it spells ("created", "OK", "Not Found":
// case, spaces, hyphens and underscores aside), else "".
func readHTTPStatus(status string) (code string, exact bool) {
	s := strings.TrimSpace(status)
	if len(s) >= 3 && httpCode(s[:3]) && (len(s) == 3 || s[3] == ' ') {
		return s[:3], true
	}
	for i := 0; i+3 <= len(s); i++ {
		if httpCode(s[i:i+3]) && (i == 0 || !isDigit(s[i-1])) && (i+3 == len(s) || !isDigit(s[i+3])) {
			return s[i : i+3], false
		}
	}
	if n, ok := reasonPhrases[phraseKey(s)]; ok {
		return strconv.Itoa(n), false
	}
	return "", false
}

func httpCode(s string) bool { return len(s) == 3 && s[0] >= '1' && s[0] <= '5' && digits(s) }

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// phraseKey folds a reason phrase: lower case letters only.
func phraseKey(s string) string {
	var b strings.Builder
	for _, c := range strings.ToLower(s) {
		if c >= 'a' && c <= 'z' {
			b.WriteRune(c)
		}
	}
	return b.String()
}

// reasonPhrases maps the folded reason phrases of net/http's status texts
// to their codes.
var reasonPhrases = func() map[string]int {
	m := map[string]int{}
	for n := 100; n < 600; n++ {
		if t := http.StatusText(n); t != "" {
			m[phraseKey(t)] = n
		}
	}
	return m
}()

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// queryPatient reads a patient identifier from a search URL
// (Patient?identifier=system|value, DocumentReference?patient.identifier=...).
func queryPatient(rawURL string) *identifier {
	base, q, ok := strings.Cut(rawURL, "?")
	if !ok {
		return nil
	}
	vals, err := url.ParseQuery(q)
	if err != nil {
		return nil
	}
	keys := []string{"patient.identifier", "subject.identifier", "patient:Patient.identifier", "subject:Patient.identifier"}
	if base == "Patient" || strings.HasSuffix(base, "/Patient") {
		keys = []string{"identifier"} // the patient's own identifier only on a Patient search
	}
	for _, k := range keys {
		if v := vals.Get(k); v != "" {
			sys, val, ok := strings.Cut(v, "|")
			if !ok {
				return &identifier{Value: v}
			}
			return &identifier{System: sys, Value: val}
		}
	}
	return nil
}

func itoa(i int) string { return strconv.Itoa(i) }
