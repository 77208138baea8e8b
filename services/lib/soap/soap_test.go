package soap

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

const limit = 8 << 20

func load(t *testing.T, name string) *Message {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	env, err := Envelope("", data, limit)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	m, err := Parse(env, limit)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return m
}

// TestParseXCA: ITI-38 and ITI-39 in several vendors' shapes (prefixes,
// default namespaces, SOAP 1.1 and 1.2, attribute order, MTOM with and
// without its Content-Type, optional headers absent).
func TestParseXCA(t *testing.T) {
	m := load(t, "iti38_request.xml")
	wantAddr := Addressing{Action: "urn:ihe:iti:2007:CrossGatewayQuery", MessageID: "urn:uuid:8d1e6b3a-3c0f-4d6e-9a43-1f0c2b7e5a01",
		To: "https://gw.lakeside.example.org/xca/query", ReplyTo: "http://www.w3.org/2005/08/addressing/anonymous"}
	if m.Version != "1.2" || m.Addressing != wantAddr || m.Body != BodyQueryRequest {
		t.Errorf("iti38 request: %s %+v %s", m.Version, m.Addressing, m.Body)
	}
	if !m.Created.Equal(time.Date(2026, 11, 4, 15, 20, 1, 250e6, time.UTC)) {
		t.Errorf("created %v", m.Created)
	}
	wantAs := Assertion{Present: true, PurposeOfUse: Code{"TREATMENT", "2.16.840.1.113883.3.18.7.1", "Treatment"},
		Organization: "Riverbend Clinic", OrganizationID: "urn:oid:2.16.840.1.113883.3.9001.10", HomeCommunityID: "urn:oid:2.16.840.1.113883.3.9001"}
	if m.Assertion != wantAs {
		t.Errorf("assertion %+v", m.Assertion)
	}
	wantQ := Query{ID: "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d", Home: "urn:oid:1.3.6.1.4.1.21367.13.70.200", PatientID: "4567^^^&1.3.6.1.4.1.21367.13.20.200&ISO"}
	if m.Query == nil || *m.Query != wantQ {
		t.Errorf("query %+v", m.Query)
	}

	m = load(t, "iti38_response_success.xml")
	wantR := RegistryResponse{Status: "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success", Objects: 2,
		Homes: []string{"urn:oid:1.3.6.1.4.1.21367.13.70.200"}, PatientID: "4567^^^&1.3.6.1.4.1.21367.13.20.200&ISO"}
	if m.Addressing.RelatesTo != "urn:uuid:8d1e6b3a-3c0f-4d6e-9a43-1f0c2b7e5a01" || m.Registry == nil || !reflect.DeepEqual(*m.Registry, wantR) {
		t.Errorf("iti38 success: %+v %+v", m.Addressing, m.Registry)
	}
	if !m.Created.Equal(time.Date(2026, 11, 4, 15, 20, 3, 900e6, time.UTC)) || m.Assertion.Present {
		t.Errorf("created %v, assertion %v", m.Created, m.Assertion.Present)
	}

	m = load(t, "iti38_response_unknown_patient.xml")
	if m.Version != "1.1" || m.Registry == nil || len(m.Registry.Errors) != 1 || m.Registry.Errors[0].Code != "XDSUnknownPatientId" ||
		!m.Registry.Errors[0].Error() || m.Registry.Errors[0].Location != "urn:oid:1.3.6.1.4.1.21367.13.70.200" || !m.Created.IsZero() {
		t.Errorf("iti38 unknown patient: %+v", m.Registry)
	}

	m = load(t, "iti39_request.xml")
	wantDocs := []Document{
		{"urn:oid:1.3.6.1.4.1.21367.13.70.200", "1.3.6.1.4.1.21367.13.40.216", "1.3.6.1.4.1.21367.2005.3.99.1.1010"},
		{"urn:oid:1.3.6.1.4.1.21367.13.70.200", "1.3.6.1.4.1.21367.13.40.216", "1.3.6.1.4.1.21367.2005.3.99.1.1011"},
	}
	if m.Body != BodyRetrieveRequest || !reflect.DeepEqual(m.Documents, wantDocs) ||
		m.Assertion.PurposeOfUse != (Code{"T-IAS", "2.16.840.1.113883.3.7204.1.5.2.1", "Individual Access Services"}) {
		t.Errorf("iti39 request: %+v %+v", m.Documents, m.Assertion)
	}
	for _, f := range []string{"iti39_response.mime", "iti39_response_headers.mime"} {
		m = load(t, f)
		if m.Body != BodyRetrieveResponse || !reflect.DeepEqual(m.Documents, wantDocs) || m.Registry == nil ||
			!strings.HasSuffix(m.Registry.Status, ":Success") || m.Addressing.RelatesTo != "urn:uuid:4c8e2a90-7b1d-4f3e-9a6c-0d5e8f2b1c05" {
			t.Errorf("%s: %+v %+v", f, m.Documents, m.Registry)
		}
	}
}

// TestParseXCPD: ITI-55 immediate and deferred, with the acknowledgement.
func TestParseXCPD(t *testing.T) {
	m := load(t, "iti55_request.xml")
	want := HL7v3{ID: II{"2.16.840.1.113883.3.9001.1.2", "5d2c1b"}, CreationTime: "20261104151958",
		Sender:   Device{"2.16.840.1.113883.3.9001.1", "2.16.840.1.113883.3.9001"},
		Receiver: Device{"1.3.6.1.4.1.21367.13.70.200.1", "1.3.6.1.4.1.21367.13.70.200"},
		QueryID:  II{"2.16.840.1.113883.3.9001.1.3", "q-88"}, ResponsePriority: "I",
		Patients: []II{{"2.16.840.1.113883.3.9001.2", "RB-1177"}}}
	if m.Body != BodyDiscoveryRequest || m.HL7 == nil || !reflect.DeepEqual(*m.HL7, want) {
		t.Errorf("iti55 request: %+v", m.HL7)
	}
	if m.Assertion.PurposeOfUse != (Code{Code: "TREAT", System: "2.16.840.1.113883.5.8"}) {
		t.Errorf("purpose %+v", m.Assertion.PurposeOfUse)
	}
	m = load(t, "iti55_response_ok.xml")
	h := m.HL7
	if h == nil || h.AckCode != "AA" || h.ResponseCode != "OK" || h.Matches != 1 || h.Target != (II{"2.16.840.1.113883.3.9001.1.2", "5d2c1b"}) ||
		!reflect.DeepEqual(h.Patients, []II{{"1.3.6.1.4.1.21367.13.20.200", "LK-20931"}}) ||
		!reflect.DeepEqual(h.Custodians, []string{"1.3.6.1.4.1.21367.13.70.200"}) || h.Sender.Organization != "1.3.6.1.4.1.21367.13.70.200" {
		t.Errorf("iti55 ok: %+v", h)
	}
	m = load(t, "iti55_response_demographics.xml")
	if h := m.HL7; h == nil || h.ResponseCode != "NF" || m.Version != "1.1" ||
		!reflect.DeepEqual(h.Issues, []string{"LivingSubjectAdministrativeGenderRequested", "PatientAddressRequested"}) {
		t.Errorf("iti55 demographics: %+v", m.HL7)
	}
	m = load(t, "iti55_deferred_request.xml")
	if m.HL7.ResponsePriority != "D" || m.Assertion.PurposeOfUse != (Code{Code: "T-TRTMNT"}) ||
		m.Addressing.ReplyTo != "https://gw.riverbend.example.org/xcpd/deferred-response" {
		t.Errorf("deferred request: %+v %+v", m.HL7, m.Assertion)
	}
	m = load(t, "iti55_deferred_ack.xml")
	if m.Body != BodyAcknowledgement || m.HL7.AckCode != "CA" || m.HL7.Target.Extension != "7f8e9d" {
		t.Errorf("deferred ack: %+v", m.HL7)
	}
	m = load(t, "iti55_deferred_response.xml")
	if m.HL7.ResponseCode != "NF" || !reflect.DeepEqual(m.HL7.Issues, []string{"AnswerNotAvailable", "ResponderBusy"}) ||
		m.Addressing.RelatesTo != "urn:uuid:aa11bb22-cc33-4d44-8e55-ff6677889909" {
		t.Errorf("deferred response: %+v", m.HL7)
	}
}

// TestParseFaults: SOAP 1.2 codes and subcodes as local names, SOAP 1.1
// faultcode and faultstring.
func TestParseFaults(t *testing.T) {
	cases := map[string]Fault{
		"fault_consent.xml":  {Code: "Sender", Subcodes: []string{"PolicyViolation"}, Reason: "The patient has not consented to disclosure to this requester"},
		"fault_security.xml": {Code: "FailedAuthentication", Reason: "The security token could not be authenticated or authorized"},
		"fault_receiver.xml": {Code: "Receiver", Reason: "Internal error: the registry did not answer (maintenance under 45 CFR 171.205)"},
	}
	for f, want := range cases {
		m := load(t, f)
		if m.Body != BodyFault || m.Fault == nil || !reflect.DeepEqual(*m.Fault, want) {
			t.Errorf("%s: %+v", f, m.Fault)
		}
	}
}

// TestParseRefused: hostile and malformed input is refused with its
// sentinel, or a *ParseError inside the input.
func TestParseRefused(t *testing.T) {
	const env = `<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body>%s</s:Body></s:Envelope>`
	deep := strings.Repeat("<a>", 100) + strings.Repeat("</a>", 100)
	cases := []struct {
		in   string
		want error
	}{
		{`<!DOCTYPE s [<!ENTITY x "y">]><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"/>`, ErrDoctype},
		{strings.Replace(env, "%s", "<q:AdhocQueryRequest xmlns:q='x'>"+deep+"</q:AdhocQueryRequest>", 1), ErrTooDeep},
		{`<Envelope xmlns="urn:other"><Body/></Envelope>`, ErrNotSOAP},
		{`<AuditMessage/>`, ErrNotSOAP},
		{`<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Header/></s:Envelope>`, ErrNotSOAP},
		{strings.Replace(env, "%s", "", 1), ErrNotExchange},
		{strings.Replace(env, "%s", "<x:ProvideAndRegisterDocumentSetRequest xmlns:x='urn:ihe:iti:xds-b:2007'/>", 1), ErrNotExchange},
		{strings.Replace(env, "%s", "<Fault>&xxe;</Fault>", 1), nil},
		{`<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body><Fault>`, nil},
		{`not xml at all`, nil},
	}
	for _, c := range cases {
		_, err := Parse([]byte(c.in), limit)
		var pe *ParseError
		if !errors.As(err, &pe) || pe.Offset < 0 || pe.Offset > int64(len(c.in)) || (c.want != nil && !errors.Is(err, c.want)) {
			t.Errorf("%.60q: %v, want %v", c.in, err, c.want)
		}
	}
	if _, err := Parse(make([]byte, 100), 99); !errors.Is(err, ErrTooLarge) {
		t.Errorf("over the limit: %v", err)
	}
	if _, err := Envelope("", []byte("--b\r\nContent-Type: text/xml\r\n\r\n<x/>\r\n"), limit); !errors.Is(err, ErrMIME) {
		t.Errorf("a package cut short: %v", err)
	}
	if root, err := Envelope("", []byte("--b\r\n\r\n<x/>\r\n--b--\r\n"), limit); string(root) != "<x/>" || err != nil {
		t.Errorf("a package without headers: %q %v", root, err)
	}
	if _, err := Envelope(`multipart/related; boundary=b; start="<r>"`, []byte("--b\r\nContent-ID: <x>\r\n\r\n<x/>\r\n--b--\r\n"), limit); !errors.Is(err, ErrMIME) {
		t.Errorf("missing start part: %v", err)
	}
}
