package fhirmap

import (
	"strings"
	"testing"
)

// Codings as FHIR writes them, for the bodies below.
const (
	tefcaTreat  = `{"system": "urn:oid:2.16.840.1.113883.3.7204.1.5.2.1", "code": "T-TRTMNT"}`
	tefcaIAS    = `{"system": "urn:oid:2.16.840.1.113883.3.7204.1.5.2.1", "code": "T-IAS"}`
	v3Patrqt    = `{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "PATRQT"}`
	v3Hoperat   = `{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "HOPERAT"}`
	v3Hpaymt    = `{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "HPAYMT"}`
	v3Pubhlth   = `{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "PUBHLTH"}`
	v3OIDEtreat = `{"system": "urn:oid:2.16.840.1.113883.5.8", "code": "ETREAT"}`
	v3Unknown   = `{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "XTREAT"}`
	localCode   = `{"system": "http://example.org/purposes", "code": "care"}`
	restricted  = `{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}`
)

func restAudit(purposeOfEvent, agentPurpose string) string {
	return `{"resourceType": "AuditEvent", "id": "ae-p",
	  "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest"},
	  "subtype": [{"code": "search"}], "recorded": "2026-03-02T09:00:02Z", "outcome": "0",
	  "purposeOfEvent": [` + purposeOfEvent + `],
	  "agent": [{"who": {"identifier": {"value": "CLINIC1"}}, "requestor": true, "purposeOfUse": [` + agentPurpose + `]},
	            {"who": {"identifier": {"value": "ACME"}}, "requestor": false}]}`
}

func taskWith(status, security string) string {
	return `{"resourceType": "Task", "id": "t-p", "meta": {"versionId": "1", "security": ` + security + `},
	  "identifier": [{"system": "http://example.org/tasks", "value": "p-1"}], "status": "` + status + `",
	  "authoredOn": "2026-03-02T09:00:00Z", "lastModified": "2026-03-02T10:00:00Z",
	  "requester": {"identifier": {"value": "PAYER"}}, "owner": {"identifier": {"value": "PROV"}}}`
}

func taskWithInput(security, input string) string {
	return `{"resourceType": "Task", "id": "t-i", "meta": {"security": ` + security + `},
	  "identifier": [{"system": "http://example.org/tasks", "value": "i-1"}], "status": "requested",
	  "authoredOn": "2026-03-02T09:00:00Z", "requester": {"identifier": {"value": "PAYER"}},
	  "input": ` + input + `}`
}

// pouInput is a Task input of CDex's purpose-of-use slice.
func pouInput(codings string) string {
	return `{"type": {"coding": [{"system": "http://hl7.org/fhir/us/davinci-cdex/CodeSystem/cdex-temp", "code": "purpose-of-use"}]},
	  "valueCodeableConcept": {"coding": [` + codings + `]}}`
}

func messageWith(bundleSecurity, headerSecurity, focusSecurity string, response bool) string {
	resp := ""
	if response {
		resp = `"response": {"identifier": "req-1", "code": "ok"},`
	}
	return `{"resourceType": "Bundle", "id": "m-p", "type": "message", "timestamp": "2026-03-02T09:00:00Z",
	  "meta": {"security": ` + bundleSecurity + `},
	  "entry": [
	    {"resource": {"resourceType": "MessageHeader", "id": "mh-p", "meta": {"security": ` + headerSecurity + `}, ` + resp + `
	      "eventCoding": {"code": "referral-request"},
	      "destination": [{"endpoint": "https://acme.example.org/fhir"}],
	      "source": {"endpoint": "https://clinic.example.org/fhir"}, "focus": [{"reference": "ServiceRequest/sr1"}]}},
	    {"resource": {"resourceType": "ServiceRequest", "id": "sr1", "meta": {"security": ` + focusSecurity + `}}}
	  ]}`
}

func batchWith(bundleSecurity, postSecurity string, response bool) string {
	if response {
		return `{"resourceType": "Bundle", "id": "b-p", "type": "batch-response", "meta": {"security": ` + bundleSecurity + `},
		  "entry": [{"response": {"status": "200 OK"}, "resource": {"resourceType": "Patient", "meta": {"security": [` + v3Hpaymt + `]}}}]}`
	}
	return `{"resourceType": "Bundle", "id": "b-p", "type": "batch", "meta": {"security": ` + bundleSecurity + `},
	  "entry": [
	    {"request": {"method": "GET", "url": "Patient?identifier=http://example.org/mrn|1"}},
	    {"request": {"method": "POST", "url": "Task"}, "resource": {"resourceType": "Task", "meta": {"security": ` + postSecurity + `}}}
	  ]}`
}

func TestPurposes(t *testing.T) {
	const (
		actReason = "http://terminology.hl7.org/CodeSystem/v3-ActReason|"
		tefca     = "urn:oid:2.16.840.1.113883.3.7204.1.5.2.1|"
	)
	tests := []struct {
		name, body string
		// want holds "purpose code" for each event in order
		want []string
	}{
		{"audit purposeOfEvent", restAudit(`{"coding": [`+v3Patrqt+`]}`, ""),
			[]string{"individual_access " + actReason + "PATRQT", "individual_access " + actReason + "PATRQT"}},
		{"audit agent purposeOfUse, a TEFCA XP code", restAudit("", `{"coding": [`+tefcaIAS+`]}`),
			[]string{"individual_access " + tefca + "T-IAS", "individual_access " + tefca + "T-IAS"}},
		{"audit: the first known code wins over an unknown one read before it",
			restAudit(`{"coding": [`+localCode+`]}`, `{"coding": [`+tefcaTreat+`]}`),
			[]string{"treatment " + tefca + "T-TRTMNT", "treatment " + tefca + "T-TRTMNT"}},
		{"audit: only unknown codes, the first as sent", restAudit(`{"coding": [`+localCode+`, `+v3Unknown+`]}`, ""),
			[]string{"unknown http://example.org/purposes|care", "unknown http://example.org/purposes|care"}},
		{"audit without purpose", restAudit("", ""), []string{" ", " "}},
		{"task security label, a TEFCA XP code among other labels", taskWith("requested", `[`+restricted+`, `+tefcaTreat+`]`),
			[]string{"treatment " + tefca + "T-TRTMNT"}},
		{"task answer carrying the label", taskWith("completed", `[`+v3OIDEtreat+`]`),
			[]string{"treatment urn:oid:2.16.840.1.113883.5.8|ETREAT"}},
		{"task: an unknown code of a purpose system", taskWith("requested", `[`+v3Unknown+`]`),
			[]string{"unknown " + actReason + "XTREAT"}},
		{"task: labels that are not purposes", taskWith("requested", `[`+restricted+`, `+localCode+`]`), []string{" "}},
		{"task: labels not a list, the message kept", taskWith("requested", `{"code": "TREAT"}`), []string{" "}},
		{"task input of purpose of use", taskWithInput(`[]`, `[{"type": {"coding": [{"code": "data-query"}]}, "valueString": "DocumentReference?patient=p"}, `+pouInput(v3Hpaymt)+`]`),
			[]string{"payment " + actReason + "HPAYMT"}},
		{"task: its labels before its input", taskWithInput(`[`+tefcaIAS+`]`, `[`+pouInput(v3Hpaymt)+`]`),
			[]string{"individual_access " + tefca + "T-IAS"}},
		{"task input: an unknown code counts, it is a purpose element", taskWithInput(`[]`, `[`+pouInput(localCode)+`]`),
			[]string{"unknown http://example.org/purposes|care"}},
		{"task input of another type", taskWithInput(`[]`, `[{"type": {"coding": [{"code": "signature"}]}, "valueCodeableConcept": {"coding": [`+v3Hpaymt+`]}}]`),
			[]string{" "}},
		{"task input not a list, the message kept", taskWithInput(`[]`, `{"type": "POU"}`), []string{" "}},
		{"message request: the Bundle's label first", messageWith(`[`+v3Hoperat+`]`, `[`+v3Patrqt+`]`, `[`+tefcaTreat+`]`, false),
			[]string{"operations " + actReason + "HOPERAT"}},
		{"message request: the focus's label", messageWith(`[]`, `[`+restricted+`]`, `[`+tefcaTreat+`]`, false),
			[]string{"treatment " + tefca + "T-TRTMNT"}},
		{"message answer: its own labels", messageWith(`[]`, `[`+v3Pubhlth+`]`, `[`+tefcaTreat+`]`, true),
			[]string{"public_health " + actReason + "PUBHLTH"}},
		{"batch: an entry's own label, else its Bundle's", batchWith(`[`+v3Hpaymt+`]`, `[`+tefcaIAS+`]`, false),
			[]string{"payment " + actReason + "HPAYMT", "individual_access " + tefca + "T-IAS"}},
		{"batch-response: the Bundle's label, not the data's", batchWith(`[`+v3Patrqt+`]`, "", true),
			[]string{"individual_access " + actReason + "PATRQT"}},
		{"batch-response without labels: the linker takes the request's", batchWith(`[]`, "", true), []string{" "}},
	}
	m := testMapper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := m.Map(Input{Network: "neta", Body: []byte(tt.body), CorrelationID: "c-1", Ingest: testIngest})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, ev := range res.Events {
				got = append(got, ev.Purpose+" "+ev.PurposeCode)
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("purposes\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}
