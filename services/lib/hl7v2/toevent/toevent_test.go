package toevent

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hinscore/hinscore/services/lib/domain/ids"
	"github.com/hinscore/hinscore/services/lib/domain/patient"
	"github.com/hinscore/hinscore/services/lib/domain/quality"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
	"github.com/hinscore/hinscore/services/lib/hl7v2"
)

var (
	ingest = time.Date(2026, 3, 2, 15, 1, 0, 0, time.UTC)
	mapper = Mapper{Patients: patient.NewTokenizer([]byte("0123456789abcdef")), PatientKeyID: "k1"}
)

const (
	qbpQ22 = "MSH|^~\\&|EHR|HOSP_A^1.2.3^ISO|HIE|NETB|20260302095900-0500||QBP^Q22^QBP_Q21|Q1|P|2.5.1\r" +
		"QPD|IHE PDQ Query|TAG1|@PID.3.1^MRN42~@PID.3.4.1^HOSP_A\rRCP|I\r"
	rspHead = "MSH|^~\\&|HIE|NETB|EHR|HOSP_A|20260302150030||RSP^K22^RSP_K21|R1|P|2.5.1\r"
	qpdEcho = "QPD|IHE PDQ Query|TAG1|@PID.3.1^MRN42~@PID.3.4.1^HOSP_A\r"
	ackHead = "MSH|^~\\&|HIE|NETB|EHR|HOSP_A|20260302150030||ACK^Q22^ACK|R2|P|2.5.1\r"
	ormO01  = "MSH|^~\\&|EHR|HOSP_A|LAB|LAB_B|20260302095900||ORM^O01|O1|P|2.3\rPID|1||MRN42^^^HOSP_A\rORC|NW|PL77^EHR\rOBR|1|PL77^EHR||CBC\r"
)

func token(id string) string {
	ev, err := mapper.Map("neta", nil, mustParse("MSH|^~\\&|A|B|C|D|202603020959||ADT^A01|1\rPID|1||"+id+"\r"), ingest)
	if err != nil {
		panic(err)
	}
	return ev.PatientToken
}

func mustParse(s string) *hl7v2.Message {
	m, err := hl7v2.Parse([]byte(s))
	if err != nil {
		panic(err)
	}
	return m
}

// mapCase is one message and the event TestMap expects from it.
type mapCase struct {
	name string
	msg  string
	want *hinscorev1.ExchangeEvent // fields compared: see checkMapped
}

// mapCases are TestMap's messages; mrn42 is the token of MRN42^^^HOSP_A.
func mapCases(mrn42 string) []mapCase {
	return []mapCase{
		{"QBP^Q22 request", qbpQ22, &hinscorev1.ExchangeEvent{
			MessageId: "Q1", MessageType: "QBP^Q22^QBP_Q21", Role: hinscorev1.Role_ROLE_REQUEST, RequestKind: KindPatientQuery,
			CorrelationKey: "neta|HOSP_A|Q1", RequesterOrg: "HOSP_A", ResponderOrg: "NETB",
			EventTimeMs: time.Date(2026, 3, 2, 14, 59, 0, 0, time.UTC).UnixMilli(), PatientToken: mrn42}},
		{"QBP^Q23 with a CX", strings.Replace(strings.Replace(qbpQ22, "Q22^QBP_Q21", "Q23^QBP_Q21", 1), "@PID.3.1^MRN42~@PID.3.4.1^HOSP_A", "MRN42^^^HOSP_A", 1), &hinscorev1.ExchangeEvent{
			MessageId: "Q1", MessageType: "QBP^Q23^QBP_Q21", Role: hinscorev1.Role_ROLE_REQUEST, RequestKind: KindPatientQuery,
			CorrelationKey: "neta|HOSP_A|Q1", RequesterOrg: "HOSP_A", ResponderOrg: "NETB",
			EventTimeMs: time.Date(2026, 3, 2, 14, 59, 0, 0, time.UTC).UnixMilli(), PatientToken: mrn42}},
		{"RSP^K22 OK", rspHead + "MSA|AA|Q1\rQAK|TAG1|OK|IHE PDQ Query|3\r" + qpdEcho + "PID|1||MRN42^^^HOSP_A\r", &hinscorev1.ExchangeEvent{
			MessageId: "R1", MessageType: "RSP^K22^RSP_K21", Role: hinscorev1.Role_ROLE_RESPONSE, CorrelationKey: "neta|HOSP_A|Q1",
			InReplyTo: "Q1", RequesterOrg: "HOSP_A", ResponderOrg: "NETB", Status: hinscorev1.Status_STATUS_OK, AckCode: "AA",
			RecordCount: 3, PatientToken: mrn42, EventTimeMs: time.Date(2026, 3, 2, 15, 0, 30, 0, time.UTC).UnixMilli()}},
		{"RSP^K22 partial: the records of this payload, not the hits", rspHead + "MSA|AA|Q1\rQAK|TAG1|OK|IHE PDQ Query|5|2|3\r" + qpdEcho + "PID|1||MRN42^^^HOSP_A\rPID|2||MRN43^^^HOSP_A\rDSC|CONT1|I\r", &hinscorev1.ExchangeEvent{
			Role: hinscorev1.Role_ROLE_RESPONSE, Status: hinscorev1.Status_STATUS_OK, AckCode: "AA", RecordCount: 2}},
		{"RSP^K22 NF", rspHead + "MSA|AA|Q1\rQAK|TAG1|NF|IHE PDQ Query|0\r" + qpdEcho, &hinscorev1.ExchangeEvent{
			Role: hinscorev1.Role_ROLE_RESPONSE, Status: hinscorev1.Status_STATUS_NOT_FOUND, AckCode: "AA", InReplyTo: "Q1", PatientToken: mrn42}},
		{"RSP^K22 QAK AR", rspHead + "MSA|AA|Q1\rQAK|TAG1|AR\r" + qpdEcho, &hinscorev1.ExchangeEvent{
			Role: hinscorev1.Role_ROLE_RESPONSE, Status: hinscorev1.Status_STATUS_REFUSED, AckCode: "AA"}},
		{"RSP^K22 AE transient", rspHead + "MSA|AE|Q1\rERR||QPD^1^3|207^Application internal error^HL70357|E||||database down\rQAK|TAG1|AE\r" + qpdEcho, &hinscorev1.ExchangeEvent{
			Role: hinscorev1.Role_ROLE_RESPONSE, Status: hinscorev1.Status_STATUS_ERROR_TRANSIENT, AckCode: "AE",
			ReasonCodes: []string{"HL70357|207"}, ReasonText: "database down"}},
		{"ACK AE permanent", ackHead + "MSA|AE|Q1\rERR||PID^1^3|102^Data type error^HL70357|E\r", &hinscorev1.ExchangeEvent{
			Role: hinscorev1.Role_ROLE_RESPONSE, Status: hinscorev1.Status_STATUS_ERROR_PERMANENT, AckCode: "AE", ReasonCodes: []string{"HL70357|102"}}},
		{"ACK AA", ackHead + "MSA|AA|Q1\r", &hinscorev1.ExchangeEvent{
			MessageType: "ACK^Q22^ACK", Role: hinscorev1.Role_ROLE_RESPONSE, Status: hinscorev1.Status_STATUS_OK, AckCode: "AA",
			CorrelationKey: "neta|HOSP_A|Q1", InReplyTo: "Q1", RequesterOrg: "HOSP_A", ResponderOrg: "NETB"}},
		{"ACK AR citing 171.204 in ERR-5", ackHead + "MSA|AR|Q1\rERR|||207^Application internal error^HL70357|E|171.204^Infeasibility^urn:hinscore:ib-exception|||records cannot be segmented\r", &hinscorev1.ExchangeEvent{
			Role: hinscorev1.Role_ROLE_RESPONSE, Status: hinscorev1.Status_STATUS_REFUSED, AckCode: "AR", ExceptionCode: "171.204",
			ReasonCodes: []string{"HL70357|207", "urn:hinscore:ib-exception|171.204"}, ReasonText: "records cannot be segmented"}},
		{"ACK AR citing 171.204 in text", ackHead + "MSA|AR|Q1\rERR||||E||||Denied under 45 CFR 171.204 (infeasibility)\r", &hinscorev1.ExchangeEvent{
			Role: hinscorev1.Role_ROLE_RESPONSE, Status: hinscorev1.Status_STATUS_REFUSED, AckCode: "AR", ExceptionCode: "171.204",
			ReasonText: "Denied under 45 CFR 171.204 (infeasibility)"}},
		{"ACK AR no exception", ackHead + "MSA|AR|Q1\rERR||||E||||not allowed; see 171.999\r", &hinscorev1.ExchangeEvent{
			Role: hinscorev1.Role_ROLE_RESPONSE, Status: hinscorev1.Status_STATUS_REFUSED, AckCode: "AR", ReasonText: "not allowed; see 171.999"}},
		{"redirect by code", ackHead + "MSA|AR|Q1\rERR||||E|redirect-portal^Use portal^urn:hinscore:ib-exception\r", &hinscorev1.ExchangeEvent{
			Role: hinscorev1.Role_ROLE_RESPONSE, Status: hinscorev1.Status_STATUS_REDIRECTED, AckCode: "AR", ExceptionCode: "redirect-portal",
			ReasonCodes: []string{"urn:hinscore:ib-exception|redirect-portal"}}},
		{"redirect by text", rspHead + "MSA|AA|Q1\rERR||||E||||Please fax your request to 555-0100\rQAK|TAG1|AR\r" + qpdEcho, &hinscorev1.ExchangeEvent{
			Role: hinscorev1.Role_ROLE_RESPONSE, Status: hinscorev1.Status_STATUS_REDIRECTED, AckCode: "AA", ExceptionCode: "redirect-fax",
			ReasonText: "Please fax your request to 555-0100"}},
		{"v2.3 ERR-1 and MSA-3", strings.Replace(ackHead, "2.5.1", "2.3", 1) + "MSA|AE|Q1|record locked\rERR|PID^1^3^206&Record locked&HL70357\r", &hinscorev1.ExchangeEvent{
			Role: hinscorev1.Role_ROLE_RESPONSE, Status: hinscorev1.Status_STATUS_ERROR_TRANSIENT, AckCode: "AE",
			ReasonCodes: []string{"HL70357|206"}, ReasonText: "record locked"}},
		{"commit accept", ackHead + "MSA|CA|Q1\r", &hinscorev1.ExchangeEvent{
			Role: hinscorev1.Role_ROLE_INTERIM, Status: hinscorev1.Status_STATUS_ACCEPTED, AckCode: "CA", CorrelationKey: "neta|HOSP_A|Q1"}},
		{"commit reject", ackHead + "MSA|CR|Q1\r", &hinscorev1.ExchangeEvent{
			Role: hinscorev1.Role_ROLE_INTERIM, Status: hinscorev1.Status_STATUS_REFUSED, AckCode: "CR"}},
		{"ORM order", ormO01, &hinscorev1.ExchangeEvent{
			MessageType: "ORM^O01", Role: hinscorev1.Role_ROLE_REQUEST, RequestKind: KindOrder, CorrelationKey: "neta|HOSP_A|placer:PL77",
			RequesterOrg: "HOSP_A", ResponderOrg: "LAB_B", PatientToken: mrn42}},
		{"ORR accepted", "MSH|^~\\&|LAB|LAB_B|EHR|HOSP_A|20260302100000||ORR^O02|O2|P|2.3\rMSA|AA|O1\rORC|OK|PL77^EHR|F1\r", &hinscorev1.ExchangeEvent{
			Role: hinscorev1.Role_ROLE_INTERIM, Status: hinscorev1.Status_STATUS_ACCEPTED, AckCode: "AA", InReplyTo: "O1",
			CorrelationKey: "neta|HOSP_A|placer:PL77", RequesterOrg: "HOSP_A", ResponderOrg: "LAB_B"}},
		{"ORR rejected", "MSH|^~\\&|LAB|LAB_B|EHR|HOSP_A|20260302100000||ORR^O02|O2|P|2.3\rMSA|AR|O1\rORC|UA|PL77^EHR\r", &hinscorev1.ExchangeEvent{
			Role: hinscorev1.Role_ROLE_RESPONSE, Status: hinscorev1.Status_STATUS_REFUSED, AckCode: "AR", CorrelationKey: "neta|HOSP_A|placer:PL77"}},
		{"ORU with placer fulfils the order", "MSH|^~\\&|LAB|LAB_B|EHR|HOSP_A|20260303100000||ORU^R01|U1|P|2.3\rPID|1||MRN42^^^HOSP_A\rOBR|1|PL77^EHR|F1|CBC\rOBX|1|NM|WBC||5.2\r", &hinscorev1.ExchangeEvent{
			Role: hinscorev1.Role_ROLE_RESPONSE, Status: hinscorev1.Status_STATUS_OK, CorrelationKey: "neta|HOSP_A|placer:PL77",
			RequesterOrg: "HOSP_A", ResponderOrg: "LAB_B", PatientToken: mrn42, RecordCount: 1}},
		{"unsolicited ORU", "MSH|^~\\&|LAB|LAB_B|EHR|HOSP_A|20260303100000||ORU^R01|U2|P|2.3\rPID|1||MRN42^^^HOSP_A\rOBR|1||F1|CBC\r", &hinscorev1.ExchangeEvent{
			Role: hinscorev1.Role_ROLE_NOTIFICATION, CorrelationKey: "neta|LAB_B|U2", RequesterOrg: "LAB_B", ResponderOrg: "HOSP_A"}},
		{"ADT notification", "MSH|^~\\&|EHR|HOSP_A|HIE|NETB|20260302095900+0130||ADT^A08^ADT_A01|A1|P|2.5\rPID|1||MRN42^^^HOSP_A\r", &hinscorev1.ExchangeEvent{
			MessageType: "ADT^A08^ADT_A01", Role: hinscorev1.Role_ROLE_NOTIFICATION, CorrelationKey: "neta|HOSP_A|A1", PatientToken: mrn42,
			EventTimeMs: time.Date(2026, 3, 2, 8, 29, 0, 0, time.UTC).UnixMilli()}},
		{"Z-message", "MSH|^~\\&|EHR|HOSP_A|HIE|NETB|20260302095900||ZRQ^Z01|Z1|P|2.5\rZRQ|x\r", &hinscorev1.ExchangeEvent{
			Role: hinscorev1.Role_ROLE_NOTIFICATION, MessageType: "ZRQ^Z01"}},
		{"QRY^T12", "MSH|^~\\&|EHR|HOSP_A|HIE|NETB|20260302095900||QRY^T12|T1|P|2.3\rQRD|20260302|R|I|T1\r", &hinscorev1.ExchangeEvent{
			Role: hinscorev1.Role_ROLE_REQUEST, RequestKind: KindDocumentQuery}},
		{"REF^I12", "MSH|^~\\&|EHR|HOSP_A|HIE|NETB|20260302095900||REF^I12|F1|P|2.5\rRF1|P|||||REF9\r", &hinscorev1.ExchangeEvent{
			Role: hinscorev1.Role_ROLE_REQUEST, RequestKind: KindReferral, CorrelationKey: "neta|HOSP_A|F1"}},
		{"HD without namespace id", "MSH|^~\\&|EHR|^1.2.3^ISO|HIE|NETB|20260302095900.1234||ADT^A01|A9|P|2.5\r", &hinscorev1.ExchangeEvent{
			Role: hinscorev1.Role_ROLE_NOTIFICATION, RequesterOrg: "1.2.3", CorrelationKey: "neta|1.2.3|A9",
			EventTimeMs: time.Date(2026, 3, 2, 9, 59, 0, 123400000, time.UTC).UnixMilli()}},
	}
}

func TestMap(t *testing.T) {
	for _, tt := range mapCases(token("MRN42^^^HOSP_A")) {
		t.Run(tt.name, func(t *testing.T) {
			m, ev, err := mapper.MapBytes("neta", []byte(tt.msg), ingest)
			if err != nil {
				t.Fatal(err)
			}
			checkMapped(t, tt.msg, m, ev, tt.want)
		})
	}
}

// checkMapped compares ev, mapped from msg (parsed as m), with w: the
// fields every event has, then each of w's fields (a zero string, time or
// id in w is not compared).
func checkMapped(t *testing.T, msg string, m *hl7v2.Message, ev, w *hinscorev1.ExchangeEvent) {
	t.Helper()
	if m.Get("MSH-10") != ev.MessageId || ev.EventId != ids.Event("neta", []byte(msg)).String() ||
		ev.Format != hinscorev1.Format_FORMAT_HL7V2 || ev.Network != "neta" || ev.IngestTimeMs != ingest.UnixMilli() ||
		ev.MappingVersion != MappingVersion || ev.Partition != 0 {
		t.Errorf("common fields: %v", ev)
	}
	if (ev.PatientToken == "") != (ev.PatientKeyId == "") || (ev.PatientToken != "" && ev.PatientKeyId != "k1") {
		t.Errorf("token %q key id %q", ev.PatientToken, ev.PatientKeyId)
	}
	check := func(field string, got, want any, zero bool) {
		if !zero && got != want {
			t.Errorf("%s = %v, want %v", field, got, want)
		}
	}
	check("message_id", ev.MessageId, w.MessageId, w.MessageId == "")
	check("message_type", ev.MessageType, w.MessageType, w.MessageType == "")
	check("role", ev.Role, w.Role, false)
	check("request_kind", ev.RequestKind, w.RequestKind, false)
	check("correlation_key", ev.CorrelationKey, w.CorrelationKey, w.CorrelationKey == "")
	check("in_reply_to", ev.InReplyTo, w.InReplyTo, w.InReplyTo == "")
	check("requester_org", ev.RequesterOrg, w.RequesterOrg, w.RequesterOrg == "")
	check("responder_org", ev.ResponderOrg, w.ResponderOrg, w.ResponderOrg == "")
	check("event_time_ms", ev.EventTimeMs, w.EventTimeMs, w.EventTimeMs == 0)
	check("status", ev.Status, w.Status, false)
	check("ack_code", ev.AckCode, w.AckCode, false)
	check("reason_codes", strings.Join(ev.ReasonCodes, ","), strings.Join(w.ReasonCodes, ","), false)
	check("reason_text", ev.ReasonText, w.ReasonText, false)
	check("exception_code", ev.ExceptionCode, w.ExceptionCode, false)
	check("patient_token", ev.PatientToken, w.PatientToken, w.PatientToken == "")
	check("record_count", ev.RecordCount, w.RecordCount, false)
}

func TestPatientToken(t *testing.T) {
	a := token("MRN42^^^HOSP_A")
	if len(a) != 64 || a == token("MRN42^^^HOSP_B") || a == token("MRN43^^^HOSP_A") || token("") != "" {
		t.Errorf("tokens do not tell patients apart: %s", a)
	}
	other := Mapper{Patients: patient.NewTokenizer([]byte("another key 0123")), PatientKeyID: "k2"}
	ev, _ := other.Map("neta", nil, mustParse("MSH|^~\\&|A|B|C|D|202603020959||ADT^A01|1\rPID|1||MRN42^^^HOSP_A\r"), ingest)
	if ev.PatientToken == a {
		t.Error("token does not depend on the key")
	}
}

func TestReasonTextTruncated(t *testing.T) {
	long := strings.Repeat("é", 400) // 800 bytes
	_, ev, err := mapper.MapBytes("neta", []byte(ackHead+"MSA|AR|Q1\rERR||||E||||"+long+"\r"), ingest)
	if err != nil {
		t.Fatal(err)
	}
	if len(ev.ReasonText) != MaxReasonText || !strings.HasPrefix(long, ev.ReasonText) {
		t.Errorf("reason text %d bytes", len(ev.ReasonText))
	}
}

func TestParseTime(t *testing.T) {
	tests := []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"202603020959", time.Date(2026, 3, 2, 9, 59, 0, 0, time.UTC), true},
		{"20260302095930", time.Date(2026, 3, 2, 9, 59, 30, 0, time.UTC), true},
		{"20260302095930.5", time.Date(2026, 3, 2, 9, 59, 30, 5e8, time.UTC), true},
		{"20260302095930.123-0500", time.Date(2026, 3, 2, 14, 59, 30, 123e6, time.UTC), true},
		{"202603020959+0530", time.Date(2026, 3, 2, 4, 29, 0, 0, time.UTC), true},
		{"20261231235959-1200", time.Date(2027, 1, 1, 11, 59, 59, 0, time.UTC), true},
		// The fraction without its decimal point (YYYYMMDDHHMMSSFF...).
		{"202603020959301", time.Date(2026, 3, 2, 9, 59, 30, 1e8, time.UTC), true},
		{"2026030209593012", time.Date(2026, 3, 2, 9, 59, 30, 12e7, time.UTC), true},
		{"202603020959301234-0500", time.Date(2026, 3, 2, 14, 59, 30, 1234e5, time.UTC), true},
		{"20260302095930123456789", time.Date(2026, 3, 2, 9, 59, 30, 123456789, time.UTC), true},
		{"202603020959301234567890", time.Time{}, false},
		{"2026030209593012x", time.Time{}, false},
		{"", time.Time{}, false},
		{"20260302", time.Time{}, false},
		{"2026030209599", time.Time{}, false},
		{"20260230095900", time.Time{}, false},
		{"20260302246000", time.Time{}, false},
		{"20260302095900.", time.Time{}, false},
		{"202603020959.5", time.Time{}, false},
		{"20260302095900+05", time.Time{}, false},
		{"20260302095900+2500", time.Time{}, false},
		{"2026-03-02T09:59", time.Time{}, false},
	}
	for _, tt := range tests {
		got, err := ParseTime(tt.in)
		if (err == nil) != tt.ok || !got.Equal(tt.want) {
			t.Errorf("ParseTime(%q) = %v, %v; want %v ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

// TestMapTimeDefects: an MSH-7 the parser once refused is read (a
// fraction without its point) or replaced by the ingest time (empty,
// malformed), and flagged; the message is mapped either way.
func TestMapTimeDefects(t *testing.T) {
	for _, c := range []struct {
		msh7 string
		want time.Time
		flag string
	}{
		{"20260302095930.12", time.Date(2026, 3, 2, 9, 59, 30, 12e7, time.UTC), ""},
		{"2026030209593012", time.Date(2026, 3, 2, 9, 59, 30, 12e7, time.UTC), quality.TimeNoPoint},
		{"202603020959301234+0100", time.Date(2026, 3, 2, 8, 59, 30, 1234e5, time.UTC), quality.TimeNoPoint},
		{"", ingest, quality.NoTimestamp},
		{"2026-03-02T09:59:30", ingest, quality.BadTimestamp},
		{"20260230095930", ingest, quality.BadTimestamp},
		{"20260302", ingest, quality.BadTimestamp},
	} {
		raw := "MSH|^~\\&|A|B|C|D|" + c.msh7 + "||ADT^A01|1|P|2.5\r"
		_, ev, err := mapper.MapBytes("neta", []byte(raw), ingest)
		if err != nil {
			t.Errorf("MSH-7 %q: %v", c.msh7, err)
			continue
		}
		var want []string
		if c.flag != "" {
			want = []string{quality.Code(c.flag)}
		}
		if ev.EventTimeMs != c.want.UnixMilli() || !slices.Equal(ev.ReasonCodes, want) {
			t.Errorf("MSH-7 %q: time %v, reasons %q; want %v, %q", c.msh7, time.UnixMilli(ev.EventTimeMs).UTC(), ev.ReasonCodes, c.want, want)
		}
	}
}

// TestMapHeaderDefects: a message without MSH-10 is recorded under a
// message id derived from its event id, one without MSH-9 as a
// notification, both flagged; an answer keeps its own reasons beside the
// flag.
func TestMapHeaderDefects(t *testing.T) {
	_, ev, err := mapper.MapBytes("neta", []byte("MSH|^~\\&|EHR|HOSP_A|HIE|NETB|20260302095900||QBP^Q22^QBP_Q21||P|2.5.1\rQPD|Q|T\r"), ingest)
	if err != nil {
		t.Fatal(err)
	}
	if ev.MessageId != DerivedIDPrefix+ev.EventId || ev.CorrelationKey != "neta|HOSP_A|"+ev.MessageId ||
		ev.Role != hinscorev1.Role_ROLE_REQUEST || !slices.Equal(ev.ReasonCodes, []string{quality.Code(quality.NoControlID)}) {
		t.Errorf("no MSH-10: id %q key %q role %v reasons %q", ev.MessageId, ev.CorrelationKey, ev.Role, ev.ReasonCodes)
	}
	_, ev, err = mapper.MapBytes("neta", []byte("MSH|^~\\&|EHR|HOSP_A|HIE|NETB|20260302095900||\"\"|N1|P|2.5.1\r"), ingest)
	if err != nil {
		t.Fatal(err)
	}
	if ev.MessageId != "N1" || ev.Role != hinscorev1.Role_ROLE_NOTIFICATION || !slices.Equal(ev.ReasonCodes, []string{quality.Code(quality.NoMessageType)}) {
		t.Errorf("no MSH-9: id %q role %v reasons %q", ev.MessageId, ev.Role, ev.ReasonCodes)
	}
	_, ev, err = mapper.MapBytes("neta", []byte("MSH|^~\\&|HIE|NETB|EHR|HOSP_A|2026030209593012||ACK|A9|P|2.5.1\rMSA|AE|Q7\rERR||MSH^1^10|207^Application internal error^HL70357|E\r"), ingest)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(ev.ReasonCodes, quality.Code(quality.TimeNoPoint)) || len(ev.ReasonCodes) < 2 || ev.Status == hinscorev1.Status_STATUS_UNSPECIFIED {
		t.Errorf("answer: status %v reasons %q, want its ERR code and the flag", ev.Status, ev.ReasonCodes)
	}
	if _, _, err := mapper.MapBytes("neta", []byte("PID|1||X\r"), ingest); !errors.Is(err, hl7v2.ErrNoMSH) {
		t.Errorf("no MSH: err = %v, want ErrNoMSH", err)
	}
}

func TestInspectFile(t *testing.T) {
	evs, err := mapper.InspectFile("testdata/batch.hl7", "neta", ingest)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 || evs[0].Role != hinscorev1.Role_ROLE_REQUEST || evs[1].Status != hinscorev1.Status_STATUS_OK ||
		evs[0].CorrelationKey != evs[1].CorrelationKey {
		t.Fatalf("events: %v", evs)
	}
	evs, err = mapper.InspectFile("testdata/bad_time.hl7", "neta", ingest)
	if err != nil || len(evs) != 2 || len(evs[0].ReasonCodes) != 0 || !slices.Equal(evs[1].ReasonCodes, []string{quality.Code(quality.BadTimestamp)}) {
		t.Fatalf("bad_time.hl7: %v, %v", evs, err)
	}
	if _, err := mapper.Inspect("junk", "neta", []byte("MSH|^~\\&|A|B|C|D|20260302||ADT^A01|1\rPID|1\r\nJUNK\r"), ingest); err == nil ||
		!strings.Contains(err.Error(), "junk: message 1") {
		t.Fatalf("junk: err = %v", err)
	}
	if _, err := mapper.InspectFile("testdata/missing.hl7", "neta", ingest); err == nil {
		t.Fatal("missing file accepted")
	}
}
