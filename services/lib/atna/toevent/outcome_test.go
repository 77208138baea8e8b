package toevent

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
	"github.com/hinscore/hinscore/services/lib/atna"
	"github.com/hinscore/hinscore/services/lib/domain/quality"
)

// TestOutcomeRefined: the indicator decides unless the description names
// a code of the table, and a successful patient discovery that lists no
// patient found none.
func TestOutcomeRefined(t *testing.T) {
	cases := []struct {
		name, file  string
		indicator   int
		desc        string
		dropPatient bool
		status      hinscorev1.Status
		reasons     string
		exception   string
	}{
		{"major failure", "iti38_initiating.xml", 12, "", false, hinscorev1.Status_STATUS_ERROR_PERMANENT, "atna|12", ""},
		{"busy registry", "iti38_initiating.xml", 8, "XDSRegistryError: XDSRegistryBusy, try later", false, hinscorev1.Status_STATUS_ERROR_TRANSIENT, "atna|8,ihe|XDSRegistryBusy", ""},
		{"unknown patient", "iti38_initiating.xml", 8, "XDSUnknownPatientId", false, hinscorev1.Status_STATUS_NOT_FOUND, "atna|8,ihe|XDSUnknownPatientId", ""},
		{"partial success", "iti38_initiating.xml", 0, "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:PartialSuccess", false, hinscorev1.Status_STATUS_PARTIAL, "atna|0,ihe|PartialSuccess", ""},
		{"XCPD NF", "iti55_responding.xml", 0, "queryResponseCode NF", false, hinscorev1.Status_STATUS_NOT_FOUND, "atna|0,ihe|NF", ""},
		{"no patient matched", "iti55_responding.xml", 0, "", true, hinscorev1.Status_STATUS_NOT_FOUND, "atna|0,atna|no-patient", ""},
		{"consent refusal", "iti39_export.xml", 12, "denied under 45 CFR 171.202: no patient consent", false, hinscorev1.Status_STATUS_REFUSED, "atna|12,ihe|denied", "171.202"},
		{"refusal citing nothing", "iti55_responding.xml", 8, "AE: Not authorized to release records to this requester", false, hinscorev1.Status_STATUS_REFUSED, "atna|8,ihe|not authorized", ""},
		{"withheld", "iti38_initiating.xml", 8, "XDSRegistryError: Records not shared with outside organizations", false, hinscorev1.Status_STATUS_REFUSED, "atna|8,ihe|not shared", ""},
		{"timeout at the initiating gateway", "iti55_initiating.xml", 12, "No response from the responding gateway before the Timeout", false, hinscorev1.Status_STATUS_ERROR_TRANSIENT, "atna|12,ihe|timeout", ""},
		{"more demographics asked", "iti55_responding.xml", 4, "LivingSubjectAdministrativeGenderRequested: gender required", false, hinscorev1.Status_STATUS_NOT_FOUND, "atna|4,ihe|LivingSubjectAdministrativeGenderRequested", ""},
		{"nothing found, in words", "iti38_initiating.xml", 4, "No documents  found for the patient", false, hinscorev1.Status_STATUS_NOT_FOUND, "atna|4,ihe|no documents found", ""},
		{"a document of several missing", "iti39_export.xml", 4, "XDSDocumentUniqueIdError: not in this repository", false, hinscorev1.Status_STATUS_PARTIAL, "atna|4,ihe|XDSDocumentUniqueIdError", ""},
		{"every document missing", "iti39_export.xml", 8, "XDSDocumentUniqueIdError: not in this repository", false, hinscorev1.Status_STATUS_NOT_FOUND, "atna|8,ihe|XDSDocumentUniqueIdError", ""},
		{"a code in lower case", "iti38_initiating.xml", 8, "xdsregistrybusy", false, hinscorev1.Status_STATUS_ERROR_TRANSIENT, "atna|8,ihe|XDSRegistryBusy", ""},
		{"a word inside another is no match", "iti38_initiating.xml", 8, "AEROSTAT NFS", false, hinscorev1.Status_STATUS_ERROR_TRANSIENT, "atna|8", ""},
		{"unknown indicator", "iti39_export.xml", 3, "", false, hinscorev1.Status_STATUS_ERROR_PERMANENT, "atna|3,atna|unknown-indicator", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			raw, a := readAudit(t, tc.file)
			a.Event.Outcome, a.Event.OutcomeDescription = tc.indicator, tc.desc
			if tc.dropPatient {
				a.Objects = a.Objects[1:]
			}
			evs, err := Map(a, testInput(raw))
			if err != nil {
				t.Fatal(err)
			}
			ans := evs[len(evs)-1]
			if ans.Status != tc.status || strings.Join(ans.ReasonCodes, ",") != tc.reasons || ans.ExceptionCode != tc.exception {
				t.Errorf("status %v reasons %q exception %q, want %v %q %q", ans.Status, ans.ReasonCodes, ans.ExceptionCode, tc.status, tc.reasons, tc.exception)
			}
			if ans.ReasonText != tc.desc {
				t.Errorf("reason text %q", ans.ReasonText)
			}
		})
	}
}

// TestDeferred: the deferred response's audit is an answer alone, on the
// key of the request it answers; the deferred request's audit ends with
// the request accepted.
func TestDeferred(t *testing.T) {
	evs := mapFile(t, "iti55_deferred_response.xml")
	if len(evs) != 1 || evs[0].Role != hinscorev1.Role_ROLE_RESPONSE || evs[0].Status != hinscorev1.Status_STATUS_OK {
		t.Fatalf("deferred response: %v", evs)
	}
	if want := mapFile(t, "iti55_responding.xml")[0].TransactionId; evs[0].TransactionId != want {
		t.Errorf("transaction %q, want the request's %q", evs[0].TransactionId, want)
	}
	raw, a := readAudit(t, "iti55_responding.xml")
	a.Event.TypeCodes[0].Display = "Cross Gateway Patient Discovery Deferred Request"
	evs, err := Map(a, testInput(raw))
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 || evs[1].Role != hinscorev1.Role_ROLE_INTERIM || evs[1].Status != hinscorev1.Status_STATUS_ACCEPTED {
		t.Errorf("deferred request: %v", evs)
	}
}

// TestNotAnExchange: a login, a query of another profile and an audit
// with no EventID are each recorded as one notification.
func TestNotAnExchange(t *testing.T) {
	raw, login := readAudit(t, "login.xml")
	_, other := readAudit(t, "iti55_responding.xml")
	other.Event.TypeCodes[0].Code = "ITI-21"
	for name, a := range map[string]*atna.Audit{"login": login, "ITI-21": other, "empty": {}} {
		evs, err := Map(a, testInput(raw))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(evs) != 1 || evs[0].Role != hinscorev1.Role_ROLE_NOTIFICATION || evs[0].RequestKind != "" || evs[0].CorrelationKey == "" {
			t.Errorf("%s: %v", name, evs)
		}
	}
	evs, _ := Map(&atna.Audit{}, testInput(raw))
	if evs[0].EventTimeMs != testIngest.UnixMilli() || evs[0].ReasonCodes[0] != quality.Code(quality.NoTimestamp) {
		t.Errorf("no EventDateTime: time %d reasons %q", evs[0].EventTimeMs, evs[0].ReasonCodes)
	}
	if evs, _ := Map(login, testInput(raw)); evs[0].ResponderOrg != "Example HIN" || evs[0].PatientToken != "" {
		t.Errorf("login: %v", evs[0])
	}
}

// TestDataQuality: a record that lacks what identifies its transaction or
// its writer is still mapped, and says what it lacked.
func TestDataQuality(t *testing.T) {
	raw, a := readAudit(t, "iti38_initiating.xml")
	a.Objects = a.Objects[:1] // no query object
	a.Participants = nil
	a.Source = atna.Source{}
	evs, err := Map(a, testInput(raw))
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(evs[0].ReasonCodes, ",")
	if got != "atna|side-unknown,atna|no-transaction-id" || evs[0].Side != hinscorev1.Side_SIDE_UNSPECIFIED || !strings.HasPrefix(evs[0].TransactionId, "audit:") {
		t.Errorf("reasons %q side %v transaction %q", got, evs[0].Side, evs[0].TransactionId)
	}
}

func TestMapErrors(t *testing.T) {
	if _, err := Map(nil, testInput(nil)); err == nil {
		t.Error("nil audit: no error")
	}
	if _, err := Map(&atna.Audit{}, Input{Raw: []byte("x")}); !errors.Is(err, ErrNoNetwork) {
		t.Errorf("no network: %v", err)
	}
	if _, err := Map(&atna.Audit{}, testInput(nil)); !errors.Is(err, ErrNoRaw) {
		t.Errorf("no bytes: %v", err)
	}
}

// TestIDsDeterministic: the same bytes give the same ids, other bytes
// other ids, and a request and its answer never share one.
func TestIDsDeterministic(t *testing.T) {
	a, b := mapFile(t, "iti55_responding.xml"), mapFile(t, "iti55_responding.xml")
	c := mapFile(t, "iti55_initiating.xml")
	if a[0].EventId != b[0].EventId || a[1].EventId != b[1].EventId || a[0].EventId == c[0].EventId || a[0].EventId == a[1].EventId {
		t.Errorf("ids %s %s / %s %s / %s", a[0].EventId, a[1].EventId, b[0].EventId, b[1].EventId, c[0].EventId)
	}
}

// TestTableVersion: the built-in table parses, and every indicator DICOM
// defines has a row.
func TestTableVersion(t *testing.T) {
	tb := DefaultTable()
	if tb.Version != "atna-class/2" {
		t.Errorf("version %q", tb.Version)
	}
	for _, ind := range []string{"0", "4", "8", "12"} {
		if _, ok := tb.Lookup(SourceIndicator, ind); !ok {
			t.Errorf("no row for indicator %s", ind)
		}
	}
	if _, err := ParseTable(strings.NewReader("version,x/1\nhttp,200,response,ok,\n")); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("a row of another table's source: %v", err)
	}
}

// TestMapBytes: parse and map in one call, the parser's errors as they are.
func TestMapBytes(t *testing.T) {
	raw, _ := readAudit(t, "iti39_import.xml")
	a, evs, err := MapBytes(testInput(raw), 1<<20)
	if err != nil || a == nil || len(evs) != 2 || evs[0].RequestKind != KindDocumentRetrieve {
		t.Fatalf("%v %v %v", a, evs, err)
	}
	_, _, err = MapBytes(testInput([]byte(`<!DOCTYPE x><AuditMessage/>`)), 1<<20)
	if !errors.Is(err, atna.ErrDoctype) {
		t.Errorf("DOCTYPE: %v", err)
	}
	_, _, err = MapBytes(testInput(raw), 100)
	if !errors.Is(err, atna.ErrTooLarge) {
		t.Errorf("over the limit: %v", err)
	}
}

// TestNoOutcomeIsNoSuccess: a transaction's record whose outcome could not
// be read, or whose time could not, is recorded and flagged (the observer
// rule); one without an outcome is a notification, not a fulfilled
// exchange.
func TestNoOutcomeIsNoSuccess(t *testing.T) {
	raw, a := readAudit(t, "iti55_responding.xml")
	a.Event.NoOutcome = true
	evs, err := Map(a, testInput(raw))
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].Role != hinscorev1.Role_ROLE_NOTIFICATION || !slices.Contains(evs[0].ReasonCodes, quality.Code(quality.NoOutcome)) {
		t.Errorf("no outcome: %v", evs)
	}
	_, b := readAudit(t, "iti55_responding.xml")
	b.Event.DateTime, b.Event.BadDateTime = time.Time{}, true
	evs, err = Map(b, testInput(raw))
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range evs {
		if ev.EventTimeMs != testIngest.UnixMilli() || !slices.Contains(ev.ReasonCodes, quality.Code(quality.BadTimestamp)) {
			t.Errorf("bad time: %v", ev)
		}
	}
	if len(evs) < 2 {
		t.Errorf("bad time: %d events, want the request and its answer", len(evs))
	}
}
