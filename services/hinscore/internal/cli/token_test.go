package cli

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hinscore/hinscore/services/fhir-ingest/fhirmap"
	"github.com/hinscore/hinscore/services/lib/atna"
	atnaevent "github.com/hinscore/hinscore/services/lib/atna/toevent"
	"github.com/hinscore/hinscore/services/lib/domain/patient"

	"github.com/hinscore/hinscore/services/lib/hl7v2/toevent"
)

// TestTokenAcrossFormats (here, where both formats' mappings meet, as in
// `hinscore inspect`): one patient, named under an OID in each of the
// ways the two formats name it, gets one token, so that a journey follows
// it across HL7 v2, FHIR and ATNA channels: PID-3 and a QPD-3 CX with the
// OID only, a Task.for identifier with system urn:oid:, an IHE-style
// AuditEvent whose entity identifier is a CX without a system, and the
// patient participant object of an ATNA AuditMessage of an XCPD query.
func TestTokenAcrossFormats(t *testing.T) {
	const oid, mrn = "2.16.840.1.113883.4.2", "e3cdfc81a0d24bd"
	key := []byte("0123456789abcdef-test-key")
	testIngest := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	hl7 := toevent.Mapper{Patients: patient.NewTokenizer(key), PatientKeyID: "k1"}
	fhir := fhirmap.NewMapper(key, "k1")
	tokens := map[string]string{}
	for name, msg := range map[string]string{
		"HL7 v2 PID-3": "MSH|^~\\&|EHR|HOSP_A|HIE|NETB|20260302095900||ADT^A04|A1|P|2.5.1\rPID|1||" + mrn + "^^^&" + oid + "&ISO^MR||DOE^JANE\r",
		"HL7 v2 QPD-3": "MSH|^~\\&|EHR|HOSP_A|HIE|NETB|20260302095900||QBP^Q23^QBP_Q21|Q1|P|2.5.1\rQPD|IHE PIX Query|T23|" + mrn + "^^^&" + oid + "&ISO\rRCP|I\r",
	} {
		_, ev, err := hl7.MapBytes("neta", []byte(msg), testIngest)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		tokens[name] = ev.PatientToken
	}
	task := fmt.Sprintf(`{"resourceType":"Task","id":"t1","meta":{"versionId":"1"},"status":"requested","intent":"order",
"identifier":[{"system":"http://example.org/tasks","value":"r1"}],"authoredOn":"2026-03-02T09:00:00Z",
"for":{"identifier":{"system":"urn:oid:%s","value":%q}},
"requester":{"identifier":{"value":"PAYER"}},"owner":{"identifier":{"value":"PROVIDER"}}}`, oid, mrn)
	audit := strings.ReplaceAll(fmt.Sprintf(`{"resourceType":"AuditEvent","id":"a1","recorded":"2026-03-02T09:00:00Z","outcome":"0",
"type":{"system":"http://terminology.hl7.org/CodeSystem/audit-event-type","code":"rest"},"subtype":[{"code":"search"}],
"agent":[{"who":{"identifier":{"value":"CLINIC1"}},"requestor":true},{"who":{"identifier":{"value":"ACME"}},"requestor":false}],
"source":{"observer":{"identifier":{"value":"ACME"}}},
"entity":[{"what":{"identifier":{"value":"%s^^^&%s&ISO"}},"type":{"code":"1"},"role":{"code":"1"}}]}`, mrn, oid), "\n", "")
	for name, body := range map[string]string{"FHIR Task.for": task, "FHIR AuditEvent CX": audit} {
		res, err := fhir.Map(fhirmap.Input{Network: "neta", Body: []byte(body), Ingest: testIngest})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		tokens[name] = res.Events[0].PatientToken
	}
	xml := fmt.Sprintf(`<AuditMessage><EventIdentification EventActionCode="E" EventDateTime="2026-03-02T09:00:00Z" EventOutcomeIndicator="0">
<EventID csd-code="110112" codeSystemName="DCM"/><EventTypeCode csd-code="ITI-55" codeSystemName="IHE Transactions"/></EventIdentification>
<AuditSourceIdentification AuditSourceID="GW"/>
<ParticipantObjectIdentification ParticipantObjectID="%s^^^&amp;%s&amp;ISO" ParticipantObjectTypeCode="1" ParticipantObjectTypeCodeRole="1"/>
</AuditMessage>`, mrn, oid)
	au, err := atna.Parse([]byte(xml), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	evs, err := atnaevent.Map(au, atnaevent.Input{Network: "neta", Raw: []byte(xml), Ingest: testIngest, Patients: patient.NewTokenizer(key), PatientKeyID: "k1"})
	if err != nil {
		t.Fatal(err)
	}
	tokens["ATNA AuditMessage patient object"] = evs[0].PatientToken
	want := tokens["FHIR Task.for"]
	if want == "" {
		t.Fatal("no token for the Task")
	}
	for name, tok := range tokens {
		if tok != want {
			t.Errorf("%s: token %.16s…, want %.16s… (the Task's)", name, tok, want)
		}
	}
}
