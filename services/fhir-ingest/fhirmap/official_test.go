package fhirmap

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
	patienttoken "github.com/hinscore/hinscore/services/lib/domain/patient"
)

// officialDir holds the FHIR specification's own R4 (4.0.1) examples,
// byte for byte as published (testdata/r4-official/SOURCE.md names each
// one's origin; the examples are CC0).
var officialDir = filepath.Join("testdata", "r4-official")

// officialEvent is what DOMAIN.md says one event of an official example
// must carry. The expectations come from the resource and DOMAIN.md, not
// from what the mapper happens to return.
type officialEvent struct {
	role   hinscorev1.Role
	status hinscorev1.Status
	// kind is the request kind; "?" leaves it unchecked (DOMAIN.md has no
	// kind for it).
	kind string
	// key is the correlation key (network|requester|id), reply InReplyTo.
	key, reply           string
	requester, responder string
	ack                  string
	// at is the event time (RFC 3339); "" is the ingest time.
	at string
	// records is record_count; -1 leaves it unchecked.
	records int
	// patient is "system|value" of the identifier the token must be made
	// from, "" for no token, "?" for any token.
	patient string
}

const (
	rReq    = hinscorev1.Role_ROLE_REQUEST
	rResp   = hinscorev1.Role_ROLE_RESPONSE
	rInter  = hinscorev1.Role_ROLE_INTERIM
	rNotify = hinscorev1.Role_ROLE_NOTIFICATION

	sNone     = hinscorev1.Status_STATUS_UNSPECIFIED
	sOK       = hinscorev1.Status_STATUS_OK
	sNotFound = hinscorev1.Status_STATUS_NOT_FOUND
	sRefused  = hinscorev1.Status_STATUS_REFUSED
	sAccepted = hinscorev1.Status_STATUS_ACCEPTED
	sErrPerm  = hinscorev1.Status_STATUS_ERROR_PERMANENT
	sPartial  = hinscorev1.Status_STATUS_PARTIAL
)

type officialCase struct {
	file, corr string
	events     []officialEvent
	// refusals: the sentinel, the element named and the issue code the
	// HTTP layer puts in its OperationOutcome (not-supported → 422).
	err   error
	path  string
	issue string
}

// Task keys: Task.requester + Task.identifier[0] (DOMAIN.md: "Task.id or
// Task.identifier"); examples 1, 5 and 6 are versions of one Task, 2 and 4
// of its sub-task.
const (
	taskLipid  = "neta|Practitioner/example|http:/goodhealth.org/identifiers|20170201-001"
	taskDraw   = "neta|Organization/1832473e-2fe0-452d-abe9-3cdb9879522f|http:/goodhealth.org/identifiers|20170201-002"
	acmeLab    = "Organization/1832473e-2fe0-452d-abe9-3cdb9879522f"
	auditor    = "hl7connect.healthintersections.com.au"
	txPatients = "http:/example.org/fhir/ids"
)

func batchEntries(corr string, role hinscorev1.Role, at string, kinds []string, patients map[int]string) []officialEvent {
	evs := make([]officialEvent, len(kinds))
	for i, k := range kinds {
		evs[i] = officialEvent{role: role, kind: k, key: fmt.Sprintf("neta||%s#%d", corr, i), at: at, records: -1, patient: patients[i]}
	}
	return evs
}

// pixPatient is the patient of the official IHE audit examples
// (e3cdfc81a0d24bd^^^&2.16.840.1.113883.4.2&ISO) as FHIR names it.
const pixPatient = "urn:oid:2.16.840.1.113883.4.2|e3cdfc81a0d24bd"

func officialCases() []officialCase {
	w := KindRecordWrite
	return []officialCase{
		// Task workflow: requested is the request (time authoredOn); received,
		// accepted, in-progress are interim; completed answers, its outputs the
		// records; every later version is dated by lastModified.
		{file: "task-example1.json", events: []officialEvent{{role: rInter, status: sAccepted, key: taskLipid,
			requester: "Practitioner/example", responder: acmeLab, ack: "in-progress", at: "2016-10-31T09:45:05+10:00", records: -1}}},
		{file: "Task-example2.json", events: []officialEvent{{role: rInter, status: sAccepted, key: taskDraw,
			requester: acmeLab, responder: acmeLab, ack: "accepted", at: "2016-10-31T09:45:05+10:00", records: -1}}},
		// A draft is not yet a request: counted, never rejected for its status.
		{file: "Task-example3.json", events: []officialEvent{{role: rNotify, status: sNone, key: "neta|Patient/example|Task/example3",
			requester: "Patient/example", responder: "Practitioner/example", ack: "draft", at: "2016-03-10T22:39:32-04:00", records: -1}}},
		{file: "Task-example4.json", events: []officialEvent{{role: rResp, status: sOK, key: taskDraw,
			requester: acmeLab, responder: "Practitioner/f202", ack: "completed", at: "2016-10-31T09:45:05+10:00", records: 1}}},
		{file: "Task-example5.json", events: []officialEvent{{role: rInter, status: sAccepted, key: taskLipid,
			requester: "Practitioner/example", responder: acmeLab, ack: "in-progress", at: "2016-10-31T16:45:05+10:00", records: -1}}},
		{file: "Task-example6.json", events: []officialEvent{{role: rResp, status: sOK, key: taskLipid,
			requester: "Practitioner/example", responder: acmeLab, ack: "completed", at: "2016-10-31T18:45:05+10:00", records: 2}}},
		{file: "Task-fm-example1.json", events: []officialEvent{{role: rReq, kind: KindRecordRequest,
			key: "neta|Organization/example|http:/happyvalley.com/task|20181012-001", requester: "Organization/example", responder: "12345",
			ack: "requested", at: "2018-10-04T08:25:05+10:00", records: -1}}},

		// Messaging: a message Bundle whose MessageHeader has no response is
		// a request, keyed by its source endpoint and MessageHeader.id.
		{file: "Bundle-10bb101f-a121-4264-a920-67be9cb82c74.json", events: []officialEvent{{role: rReq, kind: "?",
			key:       "neta|http://example.org/clients/ehr-lite|267b18ce-3d37-4581-9baa-6fada338038b",
			requester: "http://example.org/clients/ehr-lite", at: "2015-07-14T11:15:33+10:00", records: -1,
			patient: "urn:oid:0.1.2.3.4.5.6.7|654321"}}},

		// batch / transaction: one request per entry, by position, under the
		// X-Correlation-ID (else Bundle.id); kind from method and type.
		{file: "Bundle-bundle-transaction.json", events: batchEntries("bundle-transaction", rReq, "2014-08-18T01:43:30Z",
			[]string{w, w, w, w, w, w, w, w, KindPatientQuery, KindPatientQuery},
			map[int]string{1: txPatients + "|234234", 3: txPatients + "|456456", 6: "|123456"})},
		{file: "Bundle-bundle-transaction.json", corr: "tx-7", events: batchEntries("tx-7", rReq, "2014-08-18T01:43:30Z",
			[]string{w, w, w, w, w, w, w, w, KindPatientQuery, KindPatientQuery},
			map[int]string{1: txPatients + "|234234", 3: txPatients + "|456456", 6: "|123456"})},
		{file: "Bundle-xds.json", events: batchEntries("xds", rReq, "2013-07-01T13:11:33Z",
			[]string{w, w, w, w, w}, map[int]string{1: "|MRN"})},
		// batch-response: entry.response.status; an empty searchset is "not
		// found" (DOMAIN.md: QAK-2 NF), a 200 with the resource is fulfilled.
		{file: "Bundle-bundle-response-medsallergies.json", corr: "medsallergies", events: func() []officialEvent {
			evs := batchEntries("medsallergies", rResp, "", []string{"", "", "", "", ""}, map[int]string{0: "urn:oid:1.2.36.146.595.217.0.1|12345"})
			for i := range evs {
				evs[i].reply, evs[i].ack, evs[i].status, evs[i].records = fmt.Sprintf("medsallergies#%d", i), "200", sNotFound, 0
			}
			evs[0].status, evs[0].records = sOK, -1
			return evs
		}()},

		// OperationOutcome alone: the answer to what its X-Correlation-ID
		// names; without one it names no request and is refused.
		{file: "OperationOutcome-allok.json", corr: "oo-1", events: []officialEvent{{role: rResp, status: sOK,
			key: "neta||oo-1", reply: "oo-1", records: -1}}},
		{file: "OperationOutcome-allok.json", err: ErrNotExchange, path: "OperationOutcome", issue: "not-supported"},
		{file: "OperationOutcome-101.json", corr: "oo-2", events: []officialEvent{{role: rResp, status: sErrPerm,
			key: "neta||oo-2", reply: "oo-2", records: -1}}},
		{file: "OperationOutcome-validationfail.json", corr: "oo-3", events: []officialEvent{{role: rResp, status: sErrPerm,
			key: "neta||oo-3", reply: "oo-3", records: -1}}},
		// Information, not an error: answered, with what is restricted
		// withheld ("Additional information may be available using the
		// Break-The-Glass Protocol"): partial, the suppression in its reasons.
		{file: "OperationOutcome-break-the-glass.json", corr: "oo-4", events: []officialEvent{{role: rResp, status: sPartial,
			key: "neta||oo-4", reply: "oo-4", records: -1}}},

		// AuditEvent: one exchange = its request (period.start, else recorded)
		// and its answer (outcome 0 → ok), on the requesting agent's key.
		{file: "audit-event-example-vread.json", events: []officialEvent{
			{role: rReq, kind: KindPatientQuery, key: "neta|95|AuditEvent/example-rest", requester: "95", responder: auditor, at: "2013-06-20T23:42:24Z", records: -1},
			{role: rResp, status: sOK, key: "neta|95|AuditEvent/example-rest", reply: "AuditEvent/example-rest", requester: "95", responder: auditor, ack: "0", at: "2013-06-20T23:42:24Z", records: -1},
		}},
		{file: "audit-event-example-search.json", events: []officialEvent{
			{role: rReq, kind: KindPatientQuery, key: "neta|95|AuditEvent/example-search", requester: "95", responder: auditor, at: "2015-08-22T23:42:24Z", records: -1},
			{role: rResp, status: sOK, key: "neta|95|AuditEvent/example-search", reply: "AuditEvent/example-search", requester: "95", responder: auditor, ack: "0", at: "2015-08-22T23:42:24Z", records: -1},
		}},
		// A DICOM query (110112, an IHE PIX query) about a patient, named by
		// a CX with an OID only: the token is the one FHIR and HL7 v2 give
		// the same patient under that OID (TestTokenAcrossFormats).
		{file: "audit-event-example-pixQuery.json", events: []officialEvent{
			{role: rReq, kind: KindPatientQuery, key: "neta|95|AuditEvent/example-pixQuery", requester: "95", responder: auditor, at: "2015-08-26T23:42:24Z", records: -1, patient: pixPatient},
			{role: rResp, status: sOK, key: "neta|95|AuditEvent/example-pixQuery", reply: "AuditEvent/example-pixQuery", requester: "95", responder: auditor, ack: "0", at: "2015-08-26T23:42:24Z", records: -1, patient: pixPatient},
		}},
		// A DICOM export (110106) of a patient's documents to media.
		{file: "AuditEvent-example-media.json", events: []officialEvent{
			{role: rReq, kind: "?", key: "neta|95|AuditEvent/example-media", requester: "95", responder: auditor, at: "2015-08-27T23:42:24Z", records: -1, patient: pixPatient},
			{role: rResp, status: sOK, key: "neta|95|AuditEvent/example-media", reply: "AuditEvent/example-media", requester: "95", responder: auditor, ack: "0", at: "2015-08-27T23:42:24Z", records: -1, patient: pixPatient},
		}},
		// Login and logout are not exchanges: one notification each.
		{file: "audit-event-example-login.json", events: []officialEvent{{role: rNotify, key: "neta|95|AuditEvent/example-login",
			requester: "95", responder: auditor, at: "2013-06-20T23:41:23Z", records: -1}}},
		{file: "audit-event-example-logout.json", events: []officialEvent{{role: rNotify, key: "neta|95|AuditEvent/example-logout",
			requester: "95", responder: auditor, at: "2013-06-20T23:46:41Z", records: -1}}},

		// A DocumentReference is content, not an exchange event: 422.
		{file: "documentreference-example.json", err: ErrNotExchange, path: "DocumentReference", issue: "not-supported"},
	}
}

// TestOfficialR4Examples maps every official example and checks what
// DOMAIN.md implies for it, event by event.
func TestOfficialR4Examples(t *testing.T) {
	m := testMapper()
	for _, tc := range officialCases() {
		name := strings.TrimSuffix(tc.file, ".json")
		if tc.corr != "" {
			name += "+" + tc.corr
		}
		t.Run(name, func(t *testing.T) {
			body, err := os.ReadFile(filepath.Join(officialDir, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			res, err := m.Map(Input{Network: "neta", Body: body, CorrelationID: tc.corr, Ingest: testIngest})
			var problems []string
			if tc.err != nil {
				var fe *Error
				switch {
				case !errors.Is(err, tc.err) || !errors.As(err, &fe):
					problems = append(problems, fmt.Sprintf("got %v (%d events), want %v", err, len(res.Events), tc.err))
				case fe.Path != tc.path || fe.IssueCode != tc.issue:
					problems = append(problems, fmt.Sprintf("refused at %q with issue %q, want %q with %q", fe.Path, fe.IssueCode, tc.path, tc.issue))
				}
			} else if err != nil {
				problems = append(problems, fmt.Sprintf("refused: %v", err))
			} else {
				problems = officialDiff(t, m, res.Events, tc.events)
			}
			if len(problems) > 0 {
				t.Error(strings.Join(problems, "\n"))
			}
		})
	}
}

func officialDiff(t *testing.T, m Mapper, got []*hinscorev1.ExchangeEvent, want []officialEvent) []string {
	t.Helper()
	if len(got) != len(want) {
		return []string{fmt.Sprintf("%d events, want %d: %v", len(got), len(want), got)}
	}
	var out []string
	ids := map[string]bool{}
	for i, ev := range got {
		w := want[i]
		bad := func(field string, g, x any) {
			out = append(out, fmt.Sprintf("event %d %s = %v, want %v", i, field, g, x))
		}
		if ev.Role != w.role {
			bad("role", ev.Role, w.role)
		}
		if ev.Status != w.status {
			bad("status", ev.Status, w.status)
		}
		if w.kind == "?" {
			t.Logf("event %d request_kind %q: DOMAIN.md names no kind for it", i, ev.RequestKind)
		} else if ev.RequestKind != w.kind {
			bad("request_kind", ev.RequestKind, w.kind)
		}
		if ev.CorrelationKey != w.key {
			bad("correlation_key", ev.CorrelationKey, w.key)
		}
		if ev.InReplyTo != w.reply {
			bad("in_reply_to", ev.InReplyTo, w.reply)
		}
		if ev.RequesterOrg != w.requester || ev.ResponderOrg != w.responder {
			bad("requester/responder", ev.RequesterOrg+" / "+ev.ResponderOrg, w.requester+" / "+w.responder)
		}
		if ev.AckCode != w.ack {
			bad("ack_code", ev.AckCode, w.ack)
		}
		at := testIngest
		if w.at != "" {
			var err error
			if at, err = time.Parse(time.RFC3339, w.at); err != nil {
				t.Fatal(err)
			}
		}
		if ev.EventTimeMs != at.UnixMilli() {
			bad("event_time", time.UnixMilli(ev.EventTimeMs).UTC(), at.UTC())
		}
		if w.records >= 0 && ev.RecordCount != uint32(w.records) {
			bad("record_count", ev.RecordCount, w.records)
		}
		switch w.patient {
		case "?":
			if ev.PatientToken == "" || ev.PatientKeyId != "k1" {
				bad("patient_token", ev.PatientToken, "a token")
			}
		case "":
			if ev.PatientToken != "" {
				bad("patient_token", ev.PatientToken, "none")
			}
		default:
			sys, val, _ := strings.Cut(w.patient, "|")
			if tok := patienttoken.Token(testPatientKey, sys, val); ev.PatientToken != tok || ev.PatientKeyId != "k1" {
				bad("patient_token", ev.PatientToken, "the token of "+w.patient)
			}
		}
		if ev.Network != "neta" || ev.Format != hinscorev1.Format_FORMAT_FHIR || ev.MappingVersion != "fhir-map/5+fhir-class/2" ||
			ev.IngestTimeMs != testIngest.UnixMilli() || ev.MessageId == "" {
			out = append(out, fmt.Sprintf("event %d header: %v", i, ev))
		}
		if ev.EventId == "" || ids[ev.EventId] {
			bad("event_id", ev.EventId, "a distinct id")
		}
		ids[ev.EventId] = true
	}
	return out
}

// TestOfficialR4ExamplesCovered: every file in testdata/r4-official has a
// verdict, and every verdict a file.
func TestOfficialR4ExamplesCovered(t *testing.T) {
	entries, err := os.ReadDir(officialDir)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]bool{}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".json") {
			files[e.Name()] = true
		}
	}
	cased := map[string]bool{}
	for _, tc := range officialCases() {
		cased[tc.file] = true
		if !files[tc.file] {
			t.Errorf("case for %s, which is not in %s", tc.file, officialDir)
		}
	}
	var missing []string
	for f := range files {
		if !cased[f] {
			missing = append(missing, f)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("no verdict for %v", missing)
	}
	source, err := os.ReadFile(filepath.Join(officialDir, "SOURCE.md"))
	if err != nil {
		t.Fatal(err)
	}
	for f := range files {
		if !bytes.Contains(source, []byte("| `"+f+"` |")) {
			t.Errorf("SOURCE.md does not say where %s comes from", f)
		}
	}
}

// TestOfficialR4UnknownElements: an element the mapping does not know
// (added at the top of each official example, and already present by the
// hundred: narratives, contained resources, extensions) changes nothing
// but the body hash: the same verdict, the same events.
func TestOfficialR4UnknownElements(t *testing.T) {
	m := testMapper()
	for _, tc := range officialCases() {
		t.Run(strings.TrimSuffix(tc.file, ".json")+"+"+tc.corr, func(t *testing.T) {
			body, err := os.ReadFile(filepath.Join(officialDir, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			i := bytes.IndexByte(body, '{')
			if i < 0 {
				t.Fatal("not a JSON object")
			}
			extra := append(append(append([]byte{}, body[:i+1]...), `"zzNotAnR4Element":{"deep":[1,{"x":[true,null,"s"]}]},`...), body[i+1:]...)
			in := Input{Network: "neta", Body: body, CorrelationID: tc.corr, Ingest: testIngest}
			plain, perr := m.Map(in)
			in.Body = extra
			more, merr := m.Map(in)
			if (perr == nil) != (merr == nil) || (perr != nil && perr.Error() != merr.Error()) {
				t.Fatalf("error %v, with an unknown element %v", perr, merr)
			}
			if len(plain.Events) != len(more.Events) {
				t.Fatalf("%d events, with an unknown element %d", len(plain.Events), len(more.Events))
			}
			for j := range plain.Events {
				a := proto.Clone(plain.Events[j]).(*hinscorev1.ExchangeEvent)
				b := proto.Clone(more.Events[j]).(*hinscorev1.ExchangeEvent)
				if !strings.HasPrefix(plain.Identity, "sha256:") {
					if a.EventId != b.EventId {
						t.Errorf("event %d id changed with an unknown element although the identity is %s", j, plain.Identity)
					}
				}
				a.EventId, b.EventId = "", ""
				if !proto.Equal(a, b) {
					t.Errorf("event %d:\n plain %v\n extra %v", j, a, b)
				}
			}
		})
	}
}
