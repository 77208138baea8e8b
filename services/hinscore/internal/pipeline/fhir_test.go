package pipeline

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
	"github.com/hinscore/hinscore/services/api"
	fhiringest "github.com/hinscore/hinscore/services/fhir-ingest"
	"github.com/hinscore/hinscore/services/lib/bus"
	"github.com/hinscore/hinscore/services/lib/bus/seal"
)

// task is a CDex-style record-request Task between a payer and a provider.
func task(id, version, status, extra string) string {
	return fmt.Sprintf(`{"resourceType":"Task","id":%q,"meta":{"versionId":%q},
"identifier":[{"system":"http://example.org/payer-tasks","value":%q}],
"status":%q,"intent":"order","authoredOn":"2026-03-02T09:00:00Z",
"for":{"identifier":{"system":"http://example.org/mrn","value":"MRN-12345"}},
"requester":{"identifier":{"system":"http://hl7.org/fhir/sid/us-npi","value":"9941339100"}},
"owner":{"identifier":{"system":"http://hl7.org/fhir/sid/us-npi","value":"1234567893"}}%s}`, id, version, "req-"+id, status, extra)
}

// messageRequest is a patient record query as a message Bundle: the
// MessageHeader first, the Patient asked about after it.
func messageRequest(headerID, timestamp string) string {
	return fmt.Sprintf(`{"resourceType":"Bundle","id":"bundle-%s","type":"message","timestamp":%q,
"entry":[{"fullUrl":"urn:uuid:%s","resource":{"resourceType":"MessageHeader","id":%q,
  "eventCoding":{"system":"urn:hinscore:message-events","code":"patient-record-query"},
  "destination":[{"name":"Acme Records","endpoint":"https://acme.example.org/fhir/$process-message",
    "receiver":{"reference":"Organization/acme","identifier":{"value":"ACME"}}}],
  "sender":{"reference":"Organization/clinic","identifier":{"value":"CLINIC1"}},
  "source":{"name":"Clinic EHR","endpoint":"https://clinic.example.org/fhir"},
  "focus":[{"reference":"Patient/p1"}]}},
 {"fullUrl":"urn:uuid:p1","resource":{"resourceType":"Patient","id":"p1",
  "identifier":[{"system":"http://example.org/mrn","value":"MRN-12345"}],
  "name":[{"family":"Chalmers","given":["Peter"]}],"birthDate":"1974-12-25"}}]}`, headerID, timestamp, headerID, headerID)
}

// messageResponse answers the request whose MessageHeader.id is inReplyTo;
// entries follow the MessageHeader.
func messageResponse(headerID, timestamp, inReplyTo, code, entries string) string {
	return fmt.Sprintf(`{"resourceType":"Bundle","id":"bundle-%s","type":"message","timestamp":%q,
"entry":[{"resource":{"resourceType":"MessageHeader","id":%q,
  "eventCoding":{"system":"urn:hinscore:message-events","code":"patient-record-query"},
  "destination":[{"endpoint":"https://clinic.example.org/fhir","receiver":{"identifier":{"value":"CLINIC1"}}}],
  "sender":{"identifier":{"value":"ACME"}},
  "source":{"endpoint":"https://acme.example.org/fhir/$process-message"},
  "response":{"identifier":%q,"code":%q,"details":{"reference":"OperationOutcome/oo1"}}}}%s]}`, headerID, timestamp, headerID, inReplyTo, code, entries)
}

// auditEvent is one audited REST exchange between CLINIC1 and ACME;
// timing is a "period" element and a comma, or "".
func auditEvent(id, outcome, timing, recorded, desc, entity string) string {
	return fmt.Sprintf(`{"resourceType":"AuditEvent","id":%q,"meta":{"versionId":"1"},
"type":{"system":"http://terminology.hl7.org/CodeSystem/audit-event-type","code":"rest","display":"Restful Operation"},
"subtype":[{"system":"http://hl7.org/fhir/restful-interaction","code":"read"}],"action":"R",
%s"recorded":%q,"outcome":%q,"outcomeDesc":%q,
"agent":[{"who":{"identifier":{"value":"CLINIC1"}},"requestor":true},
 {"who":{"display":"ACME FHIR server","identifier":{"value":"ACME"}},"requestor":false}],
"entity":[%s]}`, id, timing, recorded, outcome, desc, entity)
}

const (
	patientEntity = `{"what":{"reference":"Patient/p1","identifier":{"system":"http://example.org/mrn","value":"MRN-12345"}},
 "type":{"system":"http://terminology.hl7.org/CodeSystem/audit-entity-type","code":"1"}}`
	documentEntity = `{"what":{"reference":"DocumentReference/d1"}}`
	// Two documents, as a fulfilled message answer carries them.
	twoDocuments = `,{"resource":{"resourceType":"DocumentReference","id":"d1","status":"current",
  "subject":{"identifier":{"system":"http://example.org/mrn","value":"MRN-12345"}},
  "content":[{"attachment":{"contentType":"application/pdf","url":"Binary/1"}}]}},
 {"resource":{"resourceType":"DocumentReference","id":"d2","status":"current",
  "content":[{"attachment":{"contentType":"text/plain","data":"aGVsbG8="}}]}}`
	privacyRefusal = `,{"resource":{"resourceType":"OperationOutcome","id":"oo1",
  "issue":[{"severity":"error","code":"suppressed",
    "details":{"coding":[{"system":"urn:hinscore:ib-exception","code":"171.202"}]},
    "diagnostics":"Patient has requested restriction of disclosure (privacy exception)"}]}}`
)

// fhirPost is one request to the FHIR ingest.
type fhirPost struct {
	path, body, token, corr, contentType string
	gzip                                 bool // send the body gzipped
}

// fhirReply is the ingest's answer: status, headers and OperationOutcome.
type fhirReply struct {
	status int
	header http.Header
	body   []byte
	oo     fhiringest.OperationOutcome
}

func postFHIR(ctx context.Context, t *testing.T, base string, p fhirPost) fhirReply {
	t.Helper()
	body := []byte(p.body)
	if p.gzip {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		if _, err := zw.Write(body); err != nil {
			t.Fatal(err)
		}
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		body = buf.Bytes()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+p.path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if p.gzip {
		req.Header.Set("Content-Encoding", "gzip")
	}
	ct := p.contentType
	if ct == "" {
		ct = "application/fhir+json"
	}
	req.Header.Set("Content-Type", ct)
	req.Header.Set("Authorization", "Bearer "+p.token)
	if p.corr != "" {
		req.Header.Set(fhiringest.HeaderCorrelationID, p.corr)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := fhirReply{status: resp.StatusCode, header: resp.Header}
	if r.body, err = io.ReadAll(resp.Body); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(r.body, &r.oo); err != nil || r.oo.ResourceType != "OperationOutcome" || len(r.oo.Issue) == 0 {
		t.Fatalf("POST %s: %d %s: not an OperationOutcome with issues", p.path, r.status, r.body)
	}
	return r
}

// outcomeRow is what an outcome row of ClickHouse says about one request.
type outcomeRow struct {
	correlationKey, requestKind, requester, responder string
	class, exception, responseID                      string
	requestedAt                                       string // RFC 3339, UTC
	tta, ttf                                          *uint64
	sla                                               uint64
	records                                           uint32
}

func ms(d time.Duration) *uint64 {
	v := uint64(d.Milliseconds())
	return &v
}

func (r outcomeRow) String() string {
	opt := func(p *uint64) string {
		if p == nil {
			return "NULL"
		}
		return fmt.Sprint(*p)
	}
	return fmt.Sprintf("key=%s kind=%s requester=%s responder=%s class=%s exception=%q response=%q requested=%s tta=%s ttf=%s sla=%d records=%d",
		r.correlationKey, r.requestKind, r.requester, r.responder, r.class, r.exception, r.responseID, r.requestedAt, opt(r.tta), opt(r.ttf), r.sla, r.records)
}

// The FHIR end-to-end test's credentials and body limit.
const (
	token      = "northstar-feed-token"
	otherToken = "bayview-feed-token"
	maxBody    = 64 << 10
	// investigatorToken reads original messages through the API.
	investigatorToken = "ivy-investigator-token"
)

// TestFHIREndToEnd posts every FHIR pattern of DOMAIN.md over HTTP (a
// messaging request and its answers, batch and transaction with their
// responses by entry position and X-Correlation-ID, an OperationOutcome by
// X-Correlation-ID, one AuditEvent per exchange for outcomes 0/4/8/12, Task
// versions posted and carried by a subscription notification, an NDJSON
// feed with one bad line) and the bad-input list, and
// checks from ClickHouse every outcome row the linker derived, field by
// field, and the dead letters of the refused bodies.
func TestFHIREndToEnd(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	p, fhir := startFHIRPipeline(ctx, t)
	base := "http://" + p.FHIRAddr() + "/fhir/northstar/"
	posts := fhirPosts()
	for _, post := range posts {
		if post.token == "" {
			post.token = token
		}
		if r := postFHIR(ctx, t, base, post.fhirPost); r.status != post.want {
			t.Fatalf("%s: status %d, want %d: %s", post.name, r.status, post.want, r.body)
		}
	}

	badLine := postNDJSON(ctx, t, base)
	bad := fhirBadInputs()
	postBadInputs(ctx, t, base, bad)

	// 32 posts and 4 NDJSON lines: 49 events, 25 linked requests.
	const wantEvents, wantOutcomes = 49, 25
	if _, err := p.WaitStored(ctx, Counts{Events: wantEvents, Outcomes: wantOutcomes}); err != nil {
		t.Fatal(err)
	}
	// A straggling version or a stray event would be stored before the
	// pipeline settles: compare exactly only then.
	waitSettled(ctx, t, p)
	if got, err := p.Stored(ctx); err != nil || got != (Counts{Events: wantEvents, Outcomes: wantOutcomes}) {
		t.Fatalf("stored %+v (%v), want %d events and %d outcomes", got, err, wantEvents, wantOutcomes)
	}

	conn, _ := p.ClickHouse()
	checkFHIROutcomes(ctx, t, conn, fhirWantOutcomes())
	checkNoStrays(ctx, t, conn)
	bodyOf := func(name string) []byte {
		for _, p := range posts {
			if p.name == name {
				return []byte(p.body)
			}
		}
		t.Fatalf("no post %q", name)
		return nil
	}
	checkInvestigatorRaw(ctx, t, p, conn, bodyOf)
	checkRawPlaces(ctx, t, p, conn, fhir.RawKeys, bodyOf)
	checkFHIRDeadLetters(ctx, t, p, conn, badLine, bad)
}

// startFHIRPipeline starts the pipeline with the FHIR ingest of northstar
// (bayview's token known too) and the API with an investigator's token.
func startFHIRPipeline(ctx context.Context, t *testing.T) (*Pipeline, fhiringest.Config) {
	t.Helper()
	opts := testOptions(t, []string{"northstar"})
	fhir := fhiringest.DefaultConfig()
	fhir.Addr = "127.0.0.1:0"
	fhir.Tokens = map[string][]string{
		"northstar": {fhiringest.HashToken(token)},
		"bayview":   {fhiringest.HashToken(otherToken)},
	}
	fhir.MaxBodyBytes = maxBody
	opts.FHIR = &fhir
	// The investigator's drill-down, through the API: the keys that seal
	// the bodies in EVENTS are the FHIR ingest's (opts.Shared, as the
	// patient key both ingests use).
	apiCfg := api.DefaultConfig()
	apiCfg.Addr, apiCfg.AuditLog = "127.0.0.1:0", filepath.Join(t.TempDir(), "audit.jsonl")
	if err := api.ParseTokens("ivy=investigator:"+api.HashToken(investigatorToken), apiCfg.Tokens); err != nil {
		t.Fatal(err)
	}
	opts.API = &apiCfg
	p := startForTest(ctx, t, opts)
	return p, fhir
}

// namedPost is one body of the test with the status it must get.
type namedPost struct {
	name string
	fhirPost
	want int
}

// fhirPosts are the bodies posted one by one, in order.
// Each chain is posted request first, answer right after, and the
// chains in the order of their event times: the linker's watermark
// follows the newest event time of a partition, and the idle rule moves
// it to the wall clock, so a short-SLA request posted behind either
// would be declared unanswered before its answer came.
func fhirPosts() []namedPost {
	return []namedPost{
		// Messaging: answered ok with two documents, 40 s later (the request is at 08:00:00Z).
		{"message request 1", fhirPost{path: "", body: messageRequest("mh-1", "2026-03-02T09:00:00+01:00")}, http.StatusCreated},
		{"message answer ok", fhirPost{path: "Bundle", body: messageResponse("mh-1-ok", "2026-03-02T08:00:40Z", "mh-1", "ok", twoDocuments)}, http.StatusCreated},
		// Messaging: a fatal-error whose OperationOutcome cites the privacy exception.
		{"message request 2", fhirPost{path: "", body: messageRequest("mh-2", "2026-03-02T08:05:00Z")}, http.StatusCreated},
		{"message answer refused", fhirPost{path: "Bundle", body: messageResponse("mh-2-refused", "2026-03-02T08:05:20Z", "mh-2", "fatal-error", privacyRefusal)}, http.StatusCreated},
		// Messaging: a transient error; then an answer after the 60 s SLA but before its 30 s grace ran out.
		{"message request 3", fhirPost{path: "", body: messageRequest("mh-3", "2026-03-02T08:07:00Z")}, http.StatusCreated},
		{"message answer transient", fhirPost{path: "Bundle", body: messageResponse("mh-3-transient", "2026-03-02T08:07:10Z", "mh-3", "transient-error", "")}, http.StatusCreated},
		{"message request 4", fhirPost{path: "", body: messageRequest("mh-4", "2026-03-02T08:08:00Z")}, http.StatusCreated},
		{"message answer late", fhirPost{path: "Bundle", body: messageResponse("mh-4-ok", "2026-03-02T08:09:15Z", "mh-4", "ok", twoDocuments)}, http.StatusCreated},
		// Batch: three searches answered by position: found, withheld for privacy, nothing found.
		{"batch", fhirPost{corr: "b-1", body: `{"resourceType":"Bundle","id":"bundle-request-simplesummary","type":"batch","timestamp":"2026-03-02T08:10:00Z",
"entry":[{"request":{"method":"GET","url":"Patient?identifier=http://example.org/mrn|MRN-12345"}},
 {"request":{"method":"GET","url":"DocumentReference?patient.identifier=http://example.org/mrn|MRN-12345&type=34117-2"}},
 {"request":{"method":"GET","url":"Condition?patient=example"}}]}`}, http.StatusCreated},
		{"batch-response", fhirPost{corr: "b-1", body: `{"resourceType":"Bundle","id":"bundle-response-simplesummary","type":"batch-response","timestamp":"2026-03-02T08:10:02Z",
"entry":[{"resource":{"resourceType":"Bundle","type":"searchset","total":1,
   "entry":[{"resource":{"resourceType":"Patient","id":"p1","identifier":[{"system":"http://example.org/mrn","value":"MRN-12345"}]}}]},
  "response":{"status":"200 OK"}},
 {"response":{"status":"403 Forbidden","outcome":{"resourceType":"OperationOutcome",
   "issue":[{"severity":"error","code":"suppressed","diagnostics":"withheld: denied under 45 CFR 171.202"}]}}},
 {"resource":{"resourceType":"Bundle","type":"searchset","total":0},"response":{"status":"200 OK"}}]}`}, http.StatusCreated},
		// Transaction: a create and a search done, a delete refused as a conflict.
		{"transaction", fhirPost{corr: "tx-1", body: `{"resourceType":"Bundle","id":"bundle-transaction","type":"transaction","timestamp":"2026-03-02T08:15:00Z",
"entry":[{"fullUrl":"urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a",
  "resource":{"resourceType":"Patient","active":true,"identifier":[{"system":"http:/example.org/fhir/ids","value":"234234"}],"name":[{"family":"Chalmers"}]},
  "request":{"method":"POST","url":"Patient","ifNoneExist":"identifier=http:/example.org/fhir/ids|234234"}},
 {"request":{"method":"GET","url":"Patient?name=peter"}},
 {"request":{"method":"DELETE","url":"Patient/234"}}]}`}, http.StatusCreated},
		{"transaction-response", fhirPost{corr: "tx-1", body: `{"resourceType":"Bundle","id":"bundle-transaction-response","type":"transaction-response","timestamp":"2026-03-02T08:15:03Z",
"entry":[{"fullUrl":"http://hl7.org/fhir/Patient/12423",
  "resource":{"resourceType":"Patient","id":"12423","meta":{"versionId":"1"},"active":true},
  "response":{"status":"201 Created","location":"Patient/12423/_history/1","etag":"W/\"1\""}},
 {"response":{"status":"200 OK"}},
 {"response":{"status":"409 Conflict","outcome":{"resourceType":"OperationOutcome",
   "issue":[{"severity":"error","code":"processing","diagnostics":"Patient/234 is referenced by 3 encounters"}]}}}]}`}, http.StatusCreated},
		// An OperationOutcome answers the one-entry batch its X-Correlation-ID names (batch id + entry position).
		{"search", fhirPost{corr: "q-oo", body: `{"resourceType":"Bundle","id":"bundle-q-oo","type":"batch","timestamp":"2026-03-02T08:20:00Z",
"entry":[{"request":{"method":"GET","url":"DocumentReference?patient.identifier=http://example.org/mrn|MRN-12345"}}]}`}, http.StatusCreated},
		{"OperationOutcome throttled", fhirPost{path: "OperationOutcome", corr: "q-oo#0", body: `{"resourceType":"OperationOutcome","id":"101","meta":{"lastUpdated":"2026-03-02T08:20:03Z"},
"issue":[{"severity":"error","code":"throttled","details":{"text":"Rate limit exceeded; retry after 3600 seconds"},
  "diagnostics":"health IT performance exception, 45 CFR 171.205","expression":["DocumentReference"]}]}`}, http.StatusCreated},
		// An OperationOutcome naming a request nobody sent: an orphan.
		{"OperationOutcome orphan", fhirPost{path: "OperationOutcome", corr: "nobody-asked", body: `{"resourceType":"OperationOutcome","id":"102","meta":{"lastUpdated":"2026-03-02T08:25:00Z"},
"issue":[{"severity":"error","code":"not-found","diagnostics":"no such patient"}]}`}, http.StatusCreated},
		// AuditEvents: each one a whole exchange, request and answer.
		{"audit 0", fhirPost{path: "AuditEvent", body: auditEvent("a0", "0", `"period":{"start":"2026-03-02T08:30:00Z","end":"2026-03-02T08:30:01.250Z"},`, "2026-03-02T08:30:02Z", "", patientEntity)}, http.StatusCreated},
		{"audit 4 citing", fhirPost{path: "AuditEvent", body: auditEvent("a4", "4", "", "2026-03-02T08:35:00Z", "403 Forbidden: disclosure withheld for privacy, 45 CFR 171.202", documentEntity)}, http.StatusCreated},
		{"audit 4 bare", fhirPost{path: "AuditEvent", body: auditEvent("a4-bare", "4", `"period":{"start":"2026-03-02T08:37:00Z","end":"2026-03-02T08:37:00.400Z"},`, "2026-03-02T08:37:01Z", "400 Bad Request: unknown search parameter", patientEntity)}, http.StatusCreated},
		{"audit 8", fhirPost{path: "AuditEvent", body: auditEvent("a8", "8", `"period":{"start":"2026-03-02T08:40:00Z","end":"2026-03-02T08:40:30.500Z"},`, "2026-03-02T08:40:31Z", "500 Internal Server Error: the document registry did not answer", patientEntity)}, http.StatusCreated},
		{"audit 12", fhirPost{path: "AuditEvent", body: auditEvent("a12", "12", "", "2026-03-02T08:45:00Z", "system unavailable: the record store is down", documentEntity)}, http.StatusCreated},
		// Task versions: requested then completed with an output, fulfilled.
		{"task t1 requested", fhirPost{path: "Task", body: task("t1", "1", "requested", "")}, http.StatusCreated},
		{"task t1 completed", fhirPost{path: "Task", body: task("t1", "2", "completed", `,"lastModified":"2026-03-02T09:58:00Z","output":[{"type":{"coding":[{"code":"data-value"}]},"valueReference":{"reference":"DocumentReference/d1"}}]`)}, http.StatusCreated},
		// Requested, then rejected citing infeasibility.
		{"task t2 requested", fhirPost{path: "Task", body: task("t2", "1", "requested", "")}, http.StatusCreated},
		{"task t2 rejected", fhirPost{path: "Task", body: task("t2", "2", "rejected", `,"lastModified":"2026-03-02T09:30:00Z","statusReason":{"text":"Denied under 45 CFR 171.204 infeasibility"}`)}, http.StatusCreated},
		// Requested and never answered: unanswered once the watermark passes 24 h + grace.
		{"task t3 requested", fhirPost{path: "Task", body: task("t3", "1", "requested", "")}, http.StatusCreated},
		// The same version again is stored once.
		{"task t3 again", fhirPost{path: "Task", body: task("t3", "1", "requested", "")}, http.StatusOK},
		// Rejected with a pointer to the patient portal: redirected.
		{"task t5 requested", fhirPost{path: "Task", body: task("t5", "1", "requested", "")}, http.StatusCreated},
		{"task t5 rejected", fhirPost{path: "Task", body: task("t5", "2", "rejected", `,"lastModified":"2026-03-02T09:20:00Z","statusReason":{"text":"Records are available to the patient through the patient portal"}`)}, http.StatusCreated},
		// Withdrawn by the requester before its deadline: cancelled.
		{"task t6 requested", fhirPost{path: "Task", body: task("t6", "1", "requested", "")}, http.StatusCreated},
		{"task t6 cancelled", fhirPost{path: "Task", body: task("t6", "2", "cancelled", `,"lastModified":"2026-03-02T09:05:00Z"`)}, http.StatusCreated},
		// Subscriptions: a notification carries the later versions of a Task posted before.
		{"task t4 requested", fhirPost{path: "Task", body: task("t4", "1", "requested", "")}, http.StatusCreated},
		{"subscription notification", fhirPost{path: "", body: `{"resourceType":"Bundle","id":"notification-t4",
"meta":{"profile":["http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-subscription-notification-r4"]},
"type":"history","timestamp":"2026-03-02T09:40:01Z",
"entry":[{"fullUrl":"urn:uuid:9e41ff6d-5be6-4e6a-8b85-abd4e7f58400",
  "resource":{"resourceType":"Parameters","id":"9e41ff6d-5be6-4e6a-8b85-abd4e7f58400",
   "parameter":[{"name":"subscription","valueReference":{"reference":"https://example.org/fhir/Subscription/record-requests"}},
    {"name":"status","valueCode":"active"},{"name":"type","valueCode":"event-notification"},
    {"name":"events-since-subscription-start","valueString":"2"}]},
  "request":{"method":"GET","url":"https://example.org/fhir/Subscription/record-requests/$status"},"response":{"status":"200"}},
 {"fullUrl":"https://example.org/fhir/Task/t4","resource":` + task("t4", "2", "accepted", `,"lastModified":"2026-03-02T09:10:00Z"`) + `,
  "request":{"method":"PUT","url":"Task/t4"},"response":{"status":"200"}},
 {"fullUrl":"https://example.org/fhir/Task/t4","resource":` + task("t4", "3", "completed", `,"lastModified":"2026-03-02T09:40:00Z","output":[{"type":{"coding":[{"code":"data-value"}]},"valueReference":{"reference":"DocumentReference/d4"}}]`) + `,
  "request":{"method":"PUT","url":"Task/t4"},"response":{"status":"200"}}]}`}, http.StatusCreated},
	}
}

// postNDJSON posts an NDJSON feed with one bad line and checks the
// report; it returns the bad line.
func postNDJSON(ctx context.Context, t *testing.T, base string) string {
	t.Helper()
	compact := func(s string) string {
		var buf bytes.Buffer
		if err := json.Compact(&buf, []byte(s)); err != nil {
			t.Fatal(err)
		}
		return buf.String()
	}
	badLine := `{"resourceType":"Task","status":`
	ndjson := strings.Join([]string{
		compact(task("n1", "1", "requested", "")),
		compact(task("n1", "2", "completed", `,"lastModified":"2026-03-02T10:00:00Z","output":[{"type":{"coding":[{"code":"data-value"}]},"valueReference":{"reference":"DocumentReference/d7"}}]`)),
		badLine,
		compact(auditEvent("n-audit", "0", `"period":{"start":"2026-03-02T11:00:00Z","end":"2026-03-02T11:00:02Z"},`, "2026-03-02T11:00:03Z", "", patientEntity)),
	}, "\n") + "\n"
	bulk := postFHIR(ctx, t, base, fhirPost{body: ndjson, token: token, contentType: "application/fhir+ndjson"})
	if bulk.status != http.StatusOK {
		t.Fatalf("NDJSON: status %d: %s", bulk.status, bulk.body)
	}
	if got, want := bulk.oo.Issue[0].Diagnostics, "4 line(s): 3 resource(s) stored, 4 event(s), 0 duplicate event(s), 0 skipped (not exchange events), 1 refused"; got != want {
		t.Errorf("NDJSON summary %q, want %q", got, want)
	}
	if len(bulk.oo.Issue) != 2 {
		t.Fatalf("NDJSON: %d issues, want the summary and line 3: %s", len(bulk.oo.Issue), bulk.body)
	}
	if is := bulk.oo.Issue[1]; is.Severity != "error" || is.Code != "structure" || strings.Join(is.Location, ",") != "line 3" {
		t.Errorf("NDJSON bad line reported as %+v, want an error with code structure at line 3", is)
	}
	return badLine
}

// badInput is a body that must be refused, and what its refusal leaves.
type badInput struct {
	name string
	fhirPost
	status     int
	code, expr string
	dlqReason  string // the dead letter's reason starts so; "" when there is none
	dlqBody    bool   // the dead letter holds the body
}

// The bad-input list: each refused with its status and an
// OperationOutcome; none of it reaches EVENTS or the outcomes.
func fhirBadInputs() []badInput {
	huge := `{"resourceType":"Task","id":"huge","status":"requested","note":[{"text":"` + strings.Repeat("x", maxBody) + `"}]}`
	return []badInput{
		{"bad JSON", fhirPost{path: "", body: `{"resourceType":"Task","id":"bad-json",`, token: token}, http.StatusBadRequest, "structure", "", "syntax: ", true},
		{"wrong resourceType for the URL", fhirPost{path: "Task", body: auditEvent("wrong-type", "0", "", "2026-03-02T12:00:00Z", "", patientEntity), token: token}, http.StatusBadRequest, "invalid", "resourceType", "wrong_type: ", true},
		{"not an exchange resource", fhirPost{path: "", body: `{"resourceType":"DocumentReference","id":"not-exchange","status":"current","content":[{"attachment":{"url":"Binary/1"}}]}`, token: token}, http.StatusUnprocessableEntity, "not-supported", "DocumentReference", "not_exchange: ", true},
		{"huge body", fhirPost{path: "Task", body: huge, token: token}, http.StatusRequestEntityTooLarge, "too-costly", "", "too_large: ", false},
		// Measured after gunzip: a few hundred bytes on the wire.
		{"huge body gzipped", fhirPost{path: "Task", body: huge, token: token, gzip: true}, http.StatusRequestEntityTooLarge, "too-costly", "", "too_large: ", false},
		{"wrong token", fhirPost{path: "Task", body: task("wrong-token", "1", "requested", ""), token: "guessed"}, http.StatusUnauthorized, "login", "", "", false},
		{"other network's token", fhirPost{path: "Task", body: task("other-network", "1", "requested", ""), token: otherToken}, http.StatusForbidden, "forbidden", "", "", false},
	}
}

// postBadInputs posts each bad input and checks its refusal.
func postBadInputs(ctx context.Context, t *testing.T, base string, bad []badInput) {
	t.Helper()
	for _, b := range bad {
		r := postFHIR(ctx, t, base, b.fhirPost)
		if r.status != b.status {
			t.Errorf("%s: status %d, want %d: %s", b.name, r.status, b.status, r.body)
			continue
		}
		is := r.oo.Issue[0]
		if is.Severity != "error" || is.Code != b.code || (b.expr != "" && strings.Join(is.Expression, ",") != b.expr) {
			t.Errorf("%s: issue %+v, want an error with code %s at %q", b.name, is, b.code, b.expr)
		}
		if b.status == http.StatusUnauthorized && !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer ") {
			t.Errorf("%s: WWW-Authenticate %q", b.name, r.header.Get("WWW-Authenticate"))
		}
	}
}

// fhirWantOutcomes are the outcome rows the linker must derive, by request.
func fhirWantOutcomes() map[string]outcomeRow {
	const (
		clinic  = "northstar|https://clinic.example.org/fhir|"
		payer   = "northstar|9941339100|http://example.org/payer-tasks|"
		audited = "northstar|CLINIC1|AuditEvent/"
		minute  = time.Minute
		second  = time.Second
	)
	sla := func(d time.Duration) uint64 { return uint64(d.Milliseconds()) }
	return map[string]outcomeRow{
		"mh-1": {correlationKey: clinic + "mh-1", requestKind: "patient_query", requester: "CLINIC1", responder: "ACME",
			class: "fulfilled", responseID: "mh-1-ok", requestedAt: "2026-03-02T08:00:00Z", tta: ms(40 * second), ttf: ms(40 * second), sla: sla(minute), records: 2},
		"mh-2": {correlationKey: clinic + "mh-2", requestKind: "patient_query", requester: "CLINIC1", responder: "ACME",
			class: "refused_exception", exception: "171.202", responseID: "mh-2-refused", requestedAt: "2026-03-02T08:05:00Z", tta: ms(20 * second), ttf: ms(20 * second), sla: sla(minute)},
		"mh-3": {correlationKey: clinic + "mh-3", requestKind: "patient_query", requester: "CLINIC1", responder: "ACME",
			class: "error_transient", responseID: "mh-3-transient", requestedAt: "2026-03-02T08:07:00Z", tta: ms(10 * second), ttf: ms(10 * second), sla: sla(minute)},
		"mh-4": {correlationKey: clinic + "mh-4", requestKind: "patient_query", requester: "CLINIC1", responder: "ACME",
			class: "fulfilled_late", responseID: "mh-4-ok", requestedAt: "2026-03-02T08:08:00Z", tta: ms(75 * second), ttf: ms(75 * second), sla: sla(minute), records: 2},
		"b-1#0": {correlationKey: "northstar||b-1#0", requestKind: "patient_query",
			class: "fulfilled", responseID: "b-1#0", requestedAt: "2026-03-02T08:10:00Z", tta: ms(2 * second), ttf: ms(2 * second), sla: sla(minute), records: 1},
		"b-1#1": {correlationKey: "northstar||b-1#1", requestKind: "document_query",
			class: "refused_exception", exception: "171.202", responseID: "b-1#1", requestedAt: "2026-03-02T08:10:00Z", tta: ms(2 * second), ttf: ms(2 * second), sla: sla(5 * minute)},
		"b-1#2": {correlationKey: "northstar||b-1#2", requestKind: "patient_query",
			class: "not_found", responseID: "b-1#2", requestedAt: "2026-03-02T08:10:00Z", tta: ms(2 * second), ttf: ms(2 * second), sla: sla(minute)},
		// A write has no SLA of its own: the default kind's (patient query) applies.
		"tx-1#0": {correlationKey: "northstar||tx-1#0", requestKind: "record_write",
			class: "fulfilled", responseID: "tx-1#0", requestedAt: "2026-03-02T08:15:00Z", tta: ms(3 * second), ttf: ms(3 * second), sla: sla(minute)},
		"tx-1#1": {correlationKey: "northstar||tx-1#1", requestKind: "patient_query",
			class: "fulfilled", responseID: "tx-1#1", requestedAt: "2026-03-02T08:15:00Z", tta: ms(3 * second), ttf: ms(3 * second), sla: sla(minute)},
		"tx-1#2": {correlationKey: "northstar||tx-1#2", requestKind: "record_write",
			class: "error_permanent", responseID: "tx-1#2", requestedAt: "2026-03-02T08:15:00Z", tta: ms(3 * second), ttf: ms(3 * second), sla: sla(minute)},
		"q-oo#0": {correlationKey: "northstar||q-oo#0", requestKind: "document_query",
			class: "refused_exception", exception: "171.205", responseID: "q-oo#0", requestedAt: "2026-03-02T08:20:00Z", tta: ms(3 * second), ttf: ms(3 * second), sla: sla(5 * minute)},
		// An orphan is dated by its answer and has no request to time it from.
		"nobody-asked": {correlationKey: "northstar||nobody-asked",
			class: "orphan", responseID: "nobody-asked", requestedAt: "2026-03-02T08:25:00Z", sla: sla(minute)},
		"AuditEvent/a0": {correlationKey: audited + "a0", requestKind: "patient_query", requester: "CLINIC1", responder: "ACME",
			class: "fulfilled", responseID: "AuditEvent/a0", requestedAt: "2026-03-02T08:30:00Z", tta: ms(1250 * time.Millisecond), ttf: ms(1250 * time.Millisecond), sla: sla(minute)},
		// Without a period both halves are dated by recorded.
		"AuditEvent/a4": {correlationKey: audited + "a4", requestKind: "document_query", requester: "CLINIC1", responder: "ACME",
			class: "refused_exception", exception: "171.202", responseID: "AuditEvent/a4", requestedAt: "2026-03-02T08:35:00Z", tta: ms(0), ttf: ms(0), sla: sla(5 * minute)},
		"AuditEvent/a4-bare": {correlationKey: audited + "a4-bare", requestKind: "patient_query", requester: "CLINIC1", responder: "ACME",
			class: "error_permanent", responseID: "AuditEvent/a4-bare", requestedAt: "2026-03-02T08:37:00Z", tta: ms(400 * time.Millisecond), ttf: ms(400 * time.Millisecond), sla: sla(minute)},
		"AuditEvent/a8": {correlationKey: audited + "a8", requestKind: "patient_query", requester: "CLINIC1", responder: "ACME",
			class: "error_transient", responseID: "AuditEvent/a8", requestedAt: "2026-03-02T08:40:00Z", tta: ms(30500 * time.Millisecond), ttf: ms(30500 * time.Millisecond), sla: sla(minute)},
		"AuditEvent/a12": {correlationKey: audited + "a12", requestKind: "document_query", requester: "CLINIC1", responder: "ACME",
			class: "error_transient", responseID: "AuditEvent/a12", requestedAt: "2026-03-02T08:45:00Z", tta: ms(0), ttf: ms(0), sla: sla(5 * minute)},
		"Task/t1/_history/1": {correlationKey: payer + "req-t1", requestKind: "record_request", requester: "9941339100", responder: "1234567893",
			class: "fulfilled", responseID: "Task/t1/_history/2", requestedAt: "2026-03-02T09:00:00Z", tta: ms(58 * minute), ttf: ms(58 * minute), sla: sla(24 * time.Hour), records: 1},
		"Task/t2/_history/1": {correlationKey: payer + "req-t2", requestKind: "record_request", requester: "9941339100", responder: "1234567893",
			class: "refused_exception", exception: "171.204", responseID: "Task/t2/_history/2", requestedAt: "2026-03-02T09:00:00Z", tta: ms(30 * minute), ttf: ms(30 * minute), sla: sla(24 * time.Hour)},
		"Task/t3/_history/1": {correlationKey: payer + "req-t3", requestKind: "record_request", requester: "9941339100", responder: "1234567893",
			class: "unanswered", requestedAt: "2026-03-02T09:00:00Z", sla: sla(24 * time.Hour)},
		"Task/t5/_history/1": {correlationKey: payer + "req-t5", requestKind: "record_request", requester: "9941339100", responder: "1234567893",
			class: "redirected", exception: "redirect-portal", responseID: "Task/t5/_history/2", requestedAt: "2026-03-02T09:00:00Z", tta: ms(20 * minute), ttf: ms(20 * minute), sla: sla(24 * time.Hour)},
		"Task/t6/_history/1": {correlationKey: payer + "req-t6", requestKind: "record_request", requester: "9941339100", responder: "1234567893",
			class: "cancelled", responseID: "Task/t6/_history/2", requestedAt: "2026-03-02T09:00:00Z", sla: sla(24 * time.Hour)},
		// Acknowledged by the accepted version, fulfilled by the completed one.
		"Task/t4/_history/1": {correlationKey: payer + "req-t4", requestKind: "record_request", requester: "9941339100", responder: "1234567893",
			class: "fulfilled", responseID: "Task/t4/_history/3", requestedAt: "2026-03-02T09:00:00Z", tta: ms(10 * minute), ttf: ms(40 * minute), sla: sla(24 * time.Hour), records: 1},
		// The NDJSON lines, linked as if posted one by one.
		"Task/n1/_history/1": {correlationKey: payer + "req-n1", requestKind: "record_request", requester: "9941339100", responder: "1234567893",
			class: "fulfilled", responseID: "Task/n1/_history/2", requestedAt: "2026-03-02T09:00:00Z", tta: ms(60 * minute), ttf: ms(60 * minute), sla: sla(24 * time.Hour), records: 1},
		"AuditEvent/n-audit": {correlationKey: audited + "n-audit", requestKind: "patient_query", requester: "CLINIC1", responder: "ACME",
			class: "fulfilled", responseID: "AuditEvent/n-audit", requestedAt: "2026-03-02T11:00:00Z", tta: ms(2 * second), ttf: ms(2 * second), sla: sla(minute)},
	}
}

// checkFHIROutcomes compares every northstar outcome row with want, field by field.
func checkFHIROutcomes(ctx context.Context, t *testing.T, conn driver.Conn, want map[string]outcomeRow) {
	t.Helper()
	rows, err := conn.Query(ctx, `SELECT request_id, correlation_key, request_kind, requester_org, responder_org, outcome,
 exception_code, response_id, requested_at_ms, tta_ms, ttf_ms, sla_ms, record_count FROM outcomes WHERE network = 'northstar'`)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]outcomeRow{}
	for rows.Next() {
		var id string
		var r outcomeRow
		var requestedMs int64
		if err := rows.Scan(&id, &r.correlationKey, &r.requestKind, &r.requester, &r.responder, &r.class,
			&r.exception, &r.responseID, &requestedMs, &r.tta, &r.ttf, &r.sla, &r.records); err != nil {
			t.Fatal(err)
		}
		r.requestedAt = time.UnixMilli(requestedMs).UTC().Format(time.RFC3339Nano)
		if _, dup := got[id]; dup {
			t.Errorf("two outcomes for request %s", id)
		}
		got[id] = r
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	ids := make([]string, 0, len(want))
	for id := range want {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		g, ok := got[id]
		if !ok {
			t.Errorf("request %s: no outcome in ClickHouse", id)
			continue
		}
		if g.String() != want[id].String() {
			t.Errorf("request %s:\n got  %s\n want %s", id, g, want[id])
		}
	}
	for id, g := range got {
		if _, ok := want[id]; !ok {
			t.Errorf("unexpected outcome for request %s: %s", id, g)
		}
	}
}

// checkNoStrays: nothing of the refused input was stored as an event.
func checkNoStrays(ctx context.Context, t *testing.T, conn driver.Conn) {
	t.Helper()
	var strays uint64
	if err := conn.QueryRow(ctx, `SELECT count() FROM events WHERE message_id IN
 ('Task/huge', 'Task/wrong-token/_history/1', 'Task/other-network/_history/1', 'AuditEvent/wrong-type', 'Task/bad-json', 'DocumentReference/not-exchange')`).Scan(&strays); err != nil {
		t.Fatal(err)
	}
	if strays != 0 {
		t.Errorf("%d events stored from refused input", strays)
	}
}

// What an investigator sees of a Task chain through the API: the
// original bodies of its request and its answer, as they were posted.
func checkInvestigatorRaw(ctx context.Context, t *testing.T, p *Pipeline, conn driver.Conn, bodyOf func(string) []byte) {
	t.Helper()
	var chainID string
	if err := conn.QueryRow(ctx, `SELECT toString(outcome_id) FROM outcomes WHERE network = 'northstar' AND request_id = 'Task/t1/_history/1'`).Scan(&chainID); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.APIAddr()+"/v1/chains/"+chainID+"/raw?reason="+url.QueryEscape("case 7: Task drill-down"), nil)
	req.Header.Set("Authorization", "Bearer "+investigatorToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var raw api.RawView
	err = json.NewDecoder(resp.Body).Decode(&raw)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("raw of chain %s: %d, %v", chainID, resp.StatusCode, err)
	}
	shown := map[string]string{}
	for _, m := range raw.Messages {
		if m.Status != "ok" || !bus.RawInEvents(m.Subject) {
			t.Errorf("raw message %s: status %s at %s/%d", m.MessageID, m.Status, m.Subject, m.Seq)
		}
		shown[m.MessageID] = m.Data
	}
	for id, post := range map[string]string{"Task/t1/_history/1": "task t1 requested", "Task/t1/_history/2": "task t1 completed"} {
		if shown[id] != string(bodyOf(post)) {
			t.Errorf("raw of %s through the API: %.80q, want the body posted", id, shown[id])
		}
	}
}

// Where an investigator finds each body's bytes, by the position the
// events row gives: a Task version (one event) in its own EVENTS
// message, the event with the body; the batch (three events) once in RAW.
func checkRawPlaces(ctx context.Context, t *testing.T, p *Pipeline, conn driver.Conn, keys *seal.RawKeys, bodyOf func(string) []byte) {
	t.Helper()
	for _, c := range []struct {
		messageID, post string
		inEvents        bool
	}{
		{"Task/t1/_history/1", "task t1 requested", true},
		{"Task/t1/_history/2", "task t1 completed", true},
		{"b-1#0", "batch", false},
		{"b-1#2", "batch", false},
	} {
		var subject string
		var seq uint64
		if err := conn.QueryRow(ctx, `SELECT raw_subject, raw_seq FROM events WHERE network = 'northstar' AND message_id = ?`, c.messageID).Scan(&subject, &seq); err != nil {
			t.Errorf("%s: %v", c.messageID, err)
			continue
		}
		if bus.RawInEvents(subject) != c.inEvents || seq == 0 {
			t.Errorf("%s: bytes at %s/%d, want them in EVENTS=%v", c.messageID, subject, seq, c.inEvents)
			continue
		}
		name := bus.StreamRaw
		if c.inEvents {
			name = bus.StreamEvents
		}
		stream, err := p.JetStream().Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		msg, err := stream.GetMsg(ctx, seq)
		if err != nil || msg.Subject != subject {
			t.Errorf("%s: %s seq %d: %v (subject %v)", c.messageID, name, seq, err, msg)
			continue
		}
		data := msg.Data
		if c.inEvents {
			var ev hinscorev1.ExchangeEvent
			if err := proto.Unmarshal(msg.Data, &ev); err != nil || ev.GetMessageId() != c.messageID {
				t.Errorf("%s: EVENTS seq %d holds event %q (%v)", c.messageID, seq, ev.GetMessageId(), err)
				continue
			}
			if len(ev.GetRaw()) > 0 {
				t.Errorf("%s: the body is in the clear in EVENTS", c.messageID)
			}
			if data, err = keys.Open(ev.GetEventId(), ev.GetRawSealed()); err != nil {
				t.Errorf("%s: the sealed body does not open: %v", c.messageID, err)
			}
		}
		if !bytes.Equal(data, bodyOf(c.post)) {
			t.Errorf("%s: %s seq %d holds %.80q, not the body posted", c.messageID, name, seq, data)
		}
	}
}

// The dead letters, in the order they were refused: the NDJSON line
// and the 400/413/422 bodies (401 and 403 are not dead-lettered). The
// writer records where each one is; the DLQ stream holds its bytes.
func checkFHIRDeadLetters(ctx context.Context, t *testing.T, p *Pipeline, conn driver.Conn, badLine string, bad []badInput) {
	t.Helper()
	type deadLetter struct {
		reason string
		size   uint32
		seq    uint64
	}
	wantDL := []struct {
		reason string
		body   string // "" for a dead letter without bytes
	}{{"ndjson line 3: ", badLine}}
	for _, b := range bad {
		if b.dlqReason == "" {
			continue
		}
		body := ""
		if b.dlqBody {
			body = b.body
		}
		wantDL = append(wantDL, struct{ reason, body string }{b.dlqReason, body})
	}
	var dls []deadLetter
	for {
		dls = dls[:0]
		rows, err := conn.Query(ctx, `SELECT reason, size, dlq_seq FROM dead_letters FINAL
 WHERE stage = 'fhir-ingest' AND network = 'northstar' AND format = 'fhir' AND stream = 'DLQ' AND dlq_subject = 'dlq.fhir-ingest' ORDER BY dlq_seq`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var d deadLetter
			if err := rows.Scan(&d.reason, &d.size, &d.seq); err != nil {
				t.Fatal(err)
			}
			dls = append(dls, d)
		}
		rows.Close()
		if len(dls) >= len(wantDL) || ctx.Err() != nil {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if len(dls) != len(wantDL) {
		t.Fatalf("dead_letters holds %d rows, want %d: %+v", len(dls), len(wantDL), dls)
	}
	dlq, err := p.JetStream().Stream(ctx, bus.StreamDLQ)
	if err != nil {
		t.Fatal(err)
	}
	for i, w := range wantDL {
		d := dls[i]
		if !strings.HasPrefix(d.reason, w.reason) || d.size != uint32(len(w.body)) {
			t.Errorf("dead letter %d: reason %q, %d bytes; want a reason starting %q and %d bytes", i, d.reason, d.size, w.reason, len(w.body))
			continue
		}
		m, err := dlq.GetMsg(ctx, d.seq)
		if err != nil {
			t.Fatalf("dead letter %d: DLQ sequence %d: %v", i, d.seq, err)
		}
		if string(m.Data) != w.body {
			t.Errorf("dead letter %d (%s): the DLQ holds %q, want the refused body", i, w.reason, m.Data)
		}
	}
}
