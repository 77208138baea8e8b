package toevent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
	"github.com/hinscore/hinscore/services/lib/atna"
	"github.com/hinscore/hinscore/services/lib/domain/partition"
	"github.com/hinscore/hinscore/services/lib/domain/patient"
)

var (
	testKey    = []byte("0123456789abcdef-test-key")
	testIngest = time.Date(2026, 12, 7, 10, 20, 0, 0, time.UTC)
)

func testInput(raw []byte) Input {
	return Input{Network: "neta", Raw: raw, Ingest: testIngest, Patients: patient.NewTokenizer(testKey), PatientKeyID: "k1"}
}

func readAudit(t *testing.T, file string) ([]byte, *atna.Audit) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	a, err := atna.Parse(raw, 1<<20)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return raw, a
}

func mapFile(t *testing.T, file string) []*hinscorev1.ExchangeEvent {
	t.Helper()
	raw, a := readAudit(t, file)
	evs, err := Map(a, testInput(raw))
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return evs
}

var (
	ini  = hinscorev1.Side_SIDE_INITIATING
	resp = hinscorev1.Side_SIDE_RESPONDING
)

// shape is what one record must map to: its answer's status, the side
// that wrote it, and what both events carry.
type shape struct {
	file                 string
	kind                 string
	side                 hinscorev1.Side
	status               hinscorev1.Status
	requester, responder string
	reqComm, respComm    string
	purpose, purposeCode string
	patient              bool
	txPrefix             string
	reasons              []string // the answer's reason codes
}

var shapes = []shape{
	{file: "iti55_responding.xml", kind: KindPatientDiscovery, side: resp, status: hinscorev1.Status_STATUS_OK,
		requester: "initiating.example.org", responder: "urn:oid:1.2.3.4", respComm: "urn:oid:1.2.3.4",
		purpose: "treatment", purposeCode: "urn:oid:2.16.840.1.113883.3.18.7.1|TREATMENT", patient: true, txPrefix: "qid:", reasons: []string{"atna|0"}},
	{file: "iti55_initiating.xml", kind: KindPatientDiscovery, side: ini, status: hinscorev1.Status_STATUS_OK,
		requester: "Initiating HIE", responder: "urn:oid:1.2.3.4", respComm: "urn:oid:1.2.3.4",
		purpose: "treatment", purposeCode: "urn:oid:2.16.840.1.113883.3.18.7.1|TREATMENT", patient: true, txPrefix: "qid:", reasons: []string{"atna|0"}},
	// RFC 3881, only the Source participant, which is not the audit
	// source: the other gateway wrote it (rule 5).
	{file: "rfc3881_iti55.xml", kind: KindPatientDiscovery, side: resp, status: hinscorev1.Status_STATUS_OK,
		requester: "initiating.example.org", responder: "Example HIN", patient: true, txPrefix: "qid:", reasons: []string{"atna|0"}},
	{file: "iti38_initiating.xml", kind: KindDocumentQuery, side: ini, status: hinscorev1.Status_STATUS_OK,
		requester: "urn:oid:2.16.840.1.113883.3.9999", responder: "urn:oid:1.2.3.4",
		reqComm: "urn:oid:2.16.840.1.113883.3.9999", respComm: "urn:oid:1.2.3.4",
		purpose: "treatment", purposeCode: "urn:oid:2.16.840.1.113883.3.7204.1.5.2.1|T-TRTMNT", patient: true, txPrefix: "q:", reasons: []string{"atna|0"}},
	// No patient object: a query's audit need not list one, and only
	// patient discovery reads its absence as "none found".
	{file: "iti38_responding_rfc3881.xml", kind: KindDocumentQuery, side: resp, status: hinscorev1.Status_STATUS_OK,
		requester: "ig.requester.example.org", responder: "urn:oid:1.2.3.4", respComm: "urn:oid:1.2.3.4",
		txPrefix: "q:", reasons: []string{"atna|0"}},
	// Every element prefixed, a urn:oid UserID on the only gateway
	// participant, indicator 4.
	{file: "iti38_ns.xml", kind: KindDocumentQuery, side: resp, status: hinscorev1.Status_STATUS_PARTIAL,
		requester: "urn:oid:1.3.6.1.4.1.21367.2011.2.6.1", responder: "urn:oid:1.2.3.4",
		reqComm: "urn:oid:1.3.6.1.4.1.21367.2011.2.6.1", respComm: "urn:oid:1.2.3.4", txPrefix: "q:", reasons: []string{"atna|4"}},
	{file: "iti39_export.xml", kind: KindDocumentRetrieve, side: resp, status: hinscorev1.Status_STATUS_OK,
		requester: "initiator.example.org", responder: "urn:oid:1.2.3.4", respComm: "urn:oid:1.2.3.4",
		patient: true, txPrefix: "docs:", reasons: []string{"atna|0"}},
	{file: "iti39_import.xml", kind: KindDocumentRetrieve, side: ini, status: hinscorev1.Status_STATUS_ERROR_TRANSIENT,
		requester: "Initiating HIE", txPrefix: "docs:", reasons: []string{"atna|8"}},
}

func TestMapShapes(t *testing.T) {
	for _, tc := range shapes {
		t.Run(tc.file, func(t *testing.T) {
			evs := mapFile(t, tc.file)
			if len(evs) != 2 {
				t.Fatalf("%d events, want a request and its answer", len(evs))
			}
			req, ans := evs[0], evs[1]
			if req.Role != hinscorev1.Role_ROLE_REQUEST || req.RequestKind != tc.kind || req.AckCode != "" {
				t.Errorf("request: role %v kind %q ack %q", req.Role, req.RequestKind, req.AckCode)
			}
			if ans.Role != hinscorev1.Role_ROLE_RESPONSE || ans.Status != tc.status || ans.InReplyTo != req.MessageId {
				t.Errorf("answer: role %v status %v in reply to %q (request %q)", ans.Role, ans.Status, ans.InReplyTo, req.MessageId)
			}
			if strings.Join(ans.ReasonCodes, ",") != strings.Join(tc.reasons, ",") {
				t.Errorf("answer reasons %q, want %q", ans.ReasonCodes, tc.reasons)
			}
			for _, ev := range evs {
				checkShape(t, ev, tc)
			}
			if req.EventId == ans.EventId || req.CorrelationKey != ans.CorrelationKey || req.EventTimeMs != ans.EventTimeMs {
				t.Errorf("ids %s %s, keys %q %q, times %d %d", req.EventId, ans.EventId, req.CorrelationKey, ans.CorrelationKey, req.EventTimeMs, ans.EventTimeMs)
			}
		})
	}
}

func checkShape(t *testing.T, ev *hinscorev1.ExchangeEvent, tc shape) {
	t.Helper()
	if ev.Format != hinscorev1.Format_FORMAT_ATNA || ev.MappingVersion != "atna-map/3+atna-class/2" || !ev.Untimed {
		t.Errorf("format %v version %q untimed %v", ev.Format, ev.MappingVersion, ev.Untimed)
	}
	if ev.Side != tc.side {
		t.Errorf("side %v, want %v", ev.Side, tc.side)
	}
	if ev.RequesterOrg != tc.requester || ev.ResponderOrg != tc.responder {
		t.Errorf("orgs %q → %q, want %q → %q", ev.RequesterOrg, ev.ResponderOrg, tc.requester, tc.responder)
	}
	if ev.RequesterCommunity != tc.reqComm || ev.ResponderCommunity != tc.respComm {
		t.Errorf("communities %q → %q, want %q → %q", ev.RequesterCommunity, ev.ResponderCommunity, tc.reqComm, tc.respComm)
	}
	if ev.Purpose != tc.purpose || ev.PurposeCode != tc.purposeCode {
		t.Errorf("purpose %q %q, want %q %q", ev.Purpose, ev.PurposeCode, tc.purpose, tc.purposeCode)
	}
	wantToken := ""
	if tc.patient {
		wantToken = patient.Token(testKey, "urn:oid:1.2.3", "8675309")
	}
	if ev.PatientToken != wantToken || (wantToken != "") != (ev.PatientKeyId == "k1") {
		t.Errorf("patient token %q key %q, want %q", ev.PatientToken, ev.PatientKeyId, wantToken)
	}
	if !strings.HasPrefix(ev.TransactionId, tc.txPrefix) {
		t.Errorf("transaction id %q, want %s...", ev.TransactionId, tc.txPrefix)
	}
	// A queryId is unique to its query: no window. Any other id is
	// windowed.
	mark := partition.WindowMark
	if tc.txPrefix == "qid:" {
		mark = partition.TransactionMark
	}
	if !strings.HasPrefix(ev.CorrelationKey, "neta|xca|"+tc.kind+"|"+ev.TransactionId+mark) {
		t.Errorf("correlation key %q", ev.CorrelationKey)
	}
}

// TestBothGatewaysOneKey: the two gateways' records of one transaction
// give one correlation key and one transaction id, and opposite sides.
// The organisations need not agree: each gateway names itself by its
// community or site, the other by what its record carries (the
// responder's community where both carry it).
func TestBothGatewaysOneKey(t *testing.T) {
	for _, pair := range [][2]string{
		{"iti55_initiating.xml", "iti55_responding.xml"},
		{"iti38_initiating.xml", "iti38_responding_rfc3881.xml"},
		{"iti39_import.xml", "iti39_export.xml"},
	} {
		a, b := mapFile(t, pair[0]), mapFile(t, pair[1])
		if a[0].CorrelationKey != b[0].CorrelationKey || a[0].TransactionId != b[0].TransactionId {
			t.Errorf("%s, %s: keys %q and %q", pair[0], pair[1], a[0].CorrelationKey, b[0].CorrelationKey)
		}
		if a[0].Side != ini || b[0].Side != resp {
			t.Errorf("%s, %s: sides %v and %v", pair[0], pair[1], a[0].Side, b[0].Side)
		}
		if a[0].ResponderCommunity != "" && a[0].ResponderOrg != b[0].ResponderOrg {
			t.Errorf("%s, %s: responders %q and %q", pair[0], pair[1], a[0].ResponderOrg, b[0].ResponderOrg)
		}
	}
	// The same query sent to another community is another transaction.
	raw, a := readAudit(t, "iti38_initiating.xml")
	a.Objects[1].Details[1].Value = []byte("urn:oid:1.2.3.5")
	other, err := Map(a, testInput(raw))
	if err != nil {
		t.Fatal(err)
	}
	if other[0].CorrelationKey == mapFile(t, "iti38_initiating.xml")[0].CorrelationKey {
		t.Error("one key for the same query to two communities")
	}
}

// TestWindowBoundary: two records of one transaction on either side of a
// window boundary get keys of adjacent windows of one base, which the
// linker finds as neighbours in one partition.
func TestWindowBoundary(t *testing.T) {
	boundary := time.UnixMilli(Window.Milliseconds() * 5988795).UTC()
	rawA, a := readAudit(t, "iti38_initiating.xml")
	rawB, b := readAudit(t, "iti38_responding_rfc3881.xml")
	a.Event.DateTime, b.Event.DateTime = boundary.Add(-time.Second), boundary.Add(time.Second)
	evA, err := Map(a, testInput(rawA))
	if err != nil {
		t.Fatal(err)
	}
	evB, err := Map(b, testInput(rawB))
	if err != nil {
		t.Fatal(err)
	}
	ka, kb := evA[0].CorrelationKey, evB[0].CorrelationKey
	if ka == kb || partition.Neighbour(ka, 1) != kb || partition.Key(ka, "") != partition.Key(kb, "") {
		t.Errorf("keys %q and %q", ka, kb)
	}
}

// TestQueryIDAnyDelay: the records of an XCPD query with its queryId share
// one key however far apart they are (a deferred response hours after the
// request), and a query id of any length makes a key of bounded length.
func TestQueryIDAnyDelay(t *testing.T) {
	rawA, a := readAudit(t, "iti55_initiating.xml")
	rawR, r := readAudit(t, "iti55_deferred_response.xml")
	r.Event.DateTime = a.Event.DateTime.Add(6 * time.Hour)
	evA, err := Map(a, testInput(rawA))
	if err != nil {
		t.Fatal(err)
	}
	evR, err := Map(r, testInput(rawR))
	if err != nil {
		t.Fatal(err)
	}
	if evA[0].CorrelationKey != evR[0].CorrelationKey || !partition.TwoSided(evR[0].CorrelationKey) {
		t.Errorf("keys %q and %q, six hours apart", evA[0].CorrelationKey, evR[0].CorrelationKey)
	}
	a.Objects[1].ID = strings.Repeat("1.2.840.", 1000)
	evA, err = Map(a, testInput(rawA))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(evA[0].CorrelationKey); n > 200 || evA[0].CorrelationKey == evR[0].CorrelationKey {
		t.Errorf("key %q of %d bytes for a long query id", evA[0].CorrelationKey, n)
	}
}
