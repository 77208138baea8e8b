package atna

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

const limit = 1 << 20

var (
	dcm       = func(code, display string) Code { return Code{code, "DCM", display} }
	ihe       = func(code, display string) Code { return Code{code, "IHE Transactions", display} }
	source    = dcm("110153", "Source Role ID")
	dest      = dcm("110152", "Destination Role ID")
	hcid      = Detail{"ihe:homeCommunityID", []byte("urn:oid:1.2.3.4")}
	repo      = Detail{"Repository Unique Id", []byte("1.2.3.4.5")}
	adhoc     = []byte("<AdhocQuery/>")
	patientCX = "8675309^^^&1.2.3&ISO"
	prpaQuery = `<PRPA_IN201305UV02 xmlns="urn:hl7-org:v3" ITSVersion="XML_1.0"><id root="1.2.840.114350.1.13.28.1.18.5.999" extension="1040"/><interactionId root="2.16.840.1.113883.1.6" extension="PRPA_IN201305UV02"/></PRPA_IN201305UV02>`
)

// parseCase is a message of testdata/ and what Parse must read from it.
type parseCase struct {
	file string
	want Audit
}

// parseCases are the realistic messages: both schemas, namespaces,
// attribute orders, optional parts present or absent.
func parseCases() []parseCase {
	return []parseCase{
		{"iti55_responding.xml", Audit{
			Event: Event{
				ActionCode: "E", DateTime: time.Date(2026, 12, 7, 10, 15, 2, 117e6, time.UTC), Outcome: 0,
				ID:            dcm("110112", "Query"),
				TypeCodes:     []Code{ihe("ITI-55", "Cross Gateway Patient Discovery")},
				PurposesOfUse: []Code{{"TREATMENT", "2.16.840.1.113883.3.18.7.1", "Treatment"}},
			},
			Participants: []Participant{
				{UserID: "http://initiating.example.org/xcpd", UserIsRequestor: true, NetworkAccessPointID: "10.1.2.3", NetworkAccessPointTypeCode: 2, RoleIDCodes: []Code{source}},
				{UserID: "https://xcpd.responder.example.com/RespondingGateway", AlternativeUserID: "2231", NetworkAccessPointID: "xcpd.responder.example.com", NetworkAccessPointTypeCode: 1, RoleIDCodes: []Code{dest}},
			},
			Source: Source{ID: "RESPONDER-GW-1", EnterpriseSiteID: "Example HIN", TypeCodes: []Code{dcm("4", "Application Server")}},
			Objects: []Object{
				{ID: patientCX, TypeCode: 1, TypeCodeRole: 1, IDTypeCode: Code{"2", "RFC-3881", "Patient Number"}},
				{ID: "1.2.840.114350.1.13.28.1.18.5.999", TypeCode: 2, TypeCodeRole: 24, IDTypeCode: ihe("ITI-55", "Cross Gateway Patient Discovery"), Query: []byte(prpaQuery), Details: []Detail{hcid}},
			},
		}},
		{"iti38_ns.xml", Audit{
			Event: Event{
				ActionCode: "E", DateTime: time.Date(2026, 12, 7, 10, 15, 2, 0, time.UTC), Outcome: 4,
				ID:        dcm("110112", "Query"),
				TypeCodes: []Code{ihe("ITI-38", "Cross Gateway Query")},
			},
			Participants: []Participant{
				{UserID: "urn:oid:1.3.6.1.4.1.21367.2011.2.6.1", UserIsRequestor: true, NetworkAccessPointID: "192.0.2.7", NetworkAccessPointTypeCode: 2, RoleIDCodes: []Code{source}},
			},
			Source: Source{ID: "XCA-GW"},
			Objects: []Object{
				{ID: "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d", TypeCode: 2, TypeCodeRole: 24, IDTypeCode: ihe("ITI-18", "Registry Stored Query"), Query: adhoc, Details: []Detail{hcid}},
			},
		}},
		{"iti39_export.xml", Audit{
			Event: Event{
				ActionCode: "R", DateTime: time.Date(2026, 12, 7, 10, 16, 40, 0, time.UTC),
				ID:        dcm("110106", "Export"),
				TypeCodes: []Code{ihe("ITI-39", "Cross Gateway Retrieve")},
			},
			Participants: []Participant{
				{UserID: "https://responder.example.com/xca/RetrieveDocumentSet", NetworkAccessPointID: "responder.example.com", NetworkAccessPointTypeCode: 1, RoleIDCodes: []Code{source}},
				{UserID: "http://initiator.example.org/xca", UserIsRequestor: true, NetworkAccessPointID: "10.9.8.7", NetworkAccessPointTypeCode: 2, RoleIDCodes: []Code{dest}},
			},
			Source: Source{ID: "RESPONDER-GW-1"},
			Objects: []Object{
				{ID: patientCX, TypeCode: 1, TypeCodeRole: 1, IDTypeCode: Code{"2", "RFC-3881", "Patient Number"}},
				{ID: "1.2.3.4.5.6.100", TypeCode: 2, TypeCodeRole: 3, IDTypeCode: Code{"9", "RFC-3881", "Report Number"}, Details: []Detail{repo, hcid}},
			},
		}},
		{"iti39_import.xml", Audit{
			Event: Event{
				ActionCode: "C", DateTime: time.Date(2026, 12, 7, 10, 16, 41, 5e8, time.UTC), Outcome: 8,
				ID:        dcm("110107", "Import"),
				TypeCodes: []Code{ihe("ITI-39", "Cross Gateway Retrieve")},
			},
			Participants: []Participant{
				{UserID: "http://initiator.example.org/xca", AlternativeUserID: "4410", UserName: "dr.smith<IHE>", UserIsRequestor: true, NetworkAccessPointID: "initiator.example.org", NetworkAccessPointTypeCode: 1, RoleIDCodes: []Code{dest}},
			},
			Source: Source{ID: "INIT-GW", EnterpriseSiteID: "Initiating HIE", TypeCodes: []Code{{Code: "4", System: "DCM"}}},
			Objects: []Object{
				{ID: "1.2.3.4.5.6.100", TypeCode: 2, TypeCodeRole: 3, IDTypeCode: Code{"9", "RFC-3881", "Report Number"}, Details: []Detail{repo}},
			},
		}},
		{"rfc3881_iti55.xml", Audit{
			Event: Event{
				ActionCode: "E", DateTime: time.Date(2026, 12, 7, 10, 15, 2, 117e6, time.UTC),
				ID:        dcm("110112", "Query"),
				TypeCodes: []Code{ihe("ITI-55", "Cross Gateway Patient Discovery")},
			},
			Participants: []Participant{
				{UserID: "http://initiating.example.org/xcpd", UserIsRequestor: true, NetworkAccessPointID: "10.1.2.3", NetworkAccessPointTypeCode: 2, RoleIDCodes: []Code{dcm("110153", "Source")}},
			},
			Source: Source{ID: "RESPONDER-GW-1", EnterpriseSiteID: "Example HIN", TypeCodes: []Code{{Code: "4"}}},
			Objects: []Object{
				{ID: patientCX, TypeCode: 1, TypeCodeRole: 1, IDTypeCode: Code{Code: "2"}, Name: "DOE^JANE"},
				{ID: "1.2.840.114350.1.13.28.1.18.5.999", TypeCode: 2, TypeCodeRole: 24, IDTypeCode: ihe("ITI-55", "Cross Gateway Patient Discovery"), Query: adhoc},
			},
		}},
	}
}

func TestParse(t *testing.T) {
	for _, tt := range parseCases() {
		t.Run(tt.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			got, err := Parse(data, limit)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			checkAudit(t, got, tt.want)
		})
	}
}

// checkAudit compares an Audit with the one wanted, part by part.
func checkAudit(t *testing.T, got *Audit, want Audit) {
	t.Helper()
	if !got.Event.DateTime.Equal(want.Event.DateTime) {
		t.Errorf("Event.DateTime = %v, want %v", got.Event.DateTime, want.Event.DateTime)
	}
	got.Event.DateTime = want.Event.DateTime
	if !reflect.DeepEqual(got.Event, want.Event) {
		t.Errorf("Event =\n%+v\nwant\n%+v", got.Event, want.Event)
	}
	if !reflect.DeepEqual(got.Participants, want.Participants) {
		t.Errorf("Participants =\n%+v\nwant\n%+v", got.Participants, want.Participants)
	}
	if !reflect.DeepEqual(got.Source, want.Source) {
		t.Errorf("Source = %+v, want %+v", got.Source, want.Source)
	}
	if len(got.Objects) != len(want.Objects) {
		t.Fatalf("%d objects, want %d", len(got.Objects), len(want.Objects))
	}
	for i := range got.Objects {
		if g, w := got.Objects[i], want.Objects[i]; !reflect.DeepEqual(g, w) {
			t.Errorf("Objects[%d] =\n%+v\nwant\n%+v\nquery %q", i, g, w, g.Query)
		}
	}
}

func TestObjectPatient(t *testing.T) {
	data, err := os.ReadFile("testdata/iti55_responding.xml")
	if err != nil {
		t.Fatal(err)
	}
	a, err := Parse(data, limit)
	if err != nil {
		t.Fatal(err)
	}
	id, auth, ok := a.Objects[0].Patient()
	if !ok || id != "8675309" || auth != "urn:oid:1.2.3" {
		t.Errorf("Patient() = %q, %q, %v; want 8675309, urn:oid:1.2.3, true", id, auth, ok)
	}
	if _, _, ok := a.Objects[1].Patient(); ok {
		t.Error("the query object is read as a patient")
	}
}

func TestParseRefuses(t *testing.T) {
	event := `<EventIdentification EventActionCode="E" EventDateTime="2026-12-07T10:15:02Z" EventOutcomeIndicator="0"><EventID csd-code="110112" codeSystemName="DCM" originalText="Query"/></EventIdentification>`
	laughs := `<?xml version="1.0"?>
<!DOCTYPE AuditMessage [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
]>
<AuditMessage><ParticipantObjectIdentification ParticipantObjectID="&lol2;"/></AuditMessage>`
	tests := []struct {
		name string
		in   string
		max  int
		want error // nil: a *ParseError of malformed XML, no sentinel
	}{
		{"doctype", `<?xml version="1.0"?><!DOCTYPE AuditMessage SYSTEM "http://evil.example/a.dtd"><AuditMessage>` + event + `</AuditMessage>`, limit, ErrDoctype},
		{"billion laughs", laughs, limit, ErrDoctype},
		{"entity inside root", `<AuditMessage><!ENTITY x "y"></AuditMessage>`, limit, ErrDoctype},
		{"deep nesting", "<AuditMessage>" + strings.Repeat("<a>", 10000) + strings.Repeat("</a>", 10000) + "</AuditMessage>", limit, ErrTooDeep},
		{"over the caller's limit", "<AuditMessage>" + event + "</AuditMessage>", 100, ErrTooLarge},
		{"text too large", "<AuditMessage><x>" + strings.Repeat("a", MaxValue+1) + "</x></AuditMessage>", 2 * MaxValue, ErrTooLarge},
		{"attribute too large", `<AuditMessage><x a="` + strings.Repeat("a", MaxValue+1) + `"/></AuditMessage>`, 2 * MaxValue, ErrTooLarge},
		{"wrong root", `<Envelope>` + event + `</Envelope>`, limit, ErrNotAudit},
		{"FHIR AuditEvent", `<AuditEvent xmlns="http://hl7.org/fhir"/>`, limit, ErrNotAudit},
		{"truncated", "<AuditMessage>" + event[:80], limit, nil},
		{"truncated after a child", "<AuditMessage>" + event, limit, nil},
		{"not XML", "this is not XML", limit, nil},
		{"empty", "", limit, nil},
		{"JSON", `{"resourceType":"AuditEvent"}`, limit, nil},
		{"mismatched end tag", "<AuditMessage><EventIdentification></ActiveParticipant></AuditMessage>", limit, nil},
		{"two roots", "<AuditMessage/><AuditMessage/>", limit, nil},
		{"undefined entity", `<AuditMessage><x a="&xxe;"/></AuditMessage>`, limit, nil},
		{"bad boolean", `<AuditMessage><ActiveParticipant UserIsRequestor="yes"/></AuditMessage>`, limit, nil},
		{"bad query base64", `<AuditMessage><ParticipantObjectIdentification><ParticipantObjectQuery>!!!</ParticipantObjectQuery></ParticipantObjectIdentification></AuditMessage>`, limit, nil},
		{"bad detail base64", `<AuditMessage><ParticipantObjectIdentification><ParticipantObjectDetail type="t" value="*"/></ParticipantObjectIdentification></AuditMessage>`, limit, nil},
		{"Latin-1 declared", `<?xml version="1.0" encoding="ISO-8859-1"?><AuditMessage/>`, limit, nil},
		{"invalid UTF-8", "<AuditMessage><x a=\"\xff\"/></AuditMessage>", limit, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := Parse([]byte(tt.in), tt.max)
			if err == nil {
				t.Fatalf("Parse accepted it: %+v", a)
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v (%T) is not a *ParseError", err, err)
			}
			if pe.Offset < 0 || pe.Offset > int64(len(tt.in)) {
				t.Errorf("offset %d outside the input (%d bytes)", pe.Offset, len(tt.in))
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("error %v, want %v", err, tt.want)
			}
			if tt.want == nil && pe.Err != nil {
				t.Errorf("error %v carries sentinel %v, want none", err, pe.Err)
			}
			if pe.Reason == "" {
				t.Error("no reason")
			}
		})
	}
}

func TestParseMinimal(t *testing.T) {
	a, err := Parse([]byte("\ufeff<AuditMessage/>\n<!-- trailing comment -->\n"), limit)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(*a, Audit{Event: Event{NoOutcome: true}}) {
		t.Errorf("got %+v, want the zero Audit, without an outcome", *a)
	}
}

// TestParseKeepsUnreadableEventFields: an EventDateTime or an
// EventOutcomeIndicator that cannot be read does not refuse the record
// (the observer rule); it is marked for the mapping to flag, and an
// absent indicator is no success.
func TestParseKeepsUnreadableEventFields(t *testing.T) {
	for _, c := range []struct {
		in                 string
		badTime, noOutcome bool
		outcome            int
	}{
		{`<AuditMessage><EventIdentification EventDateTime="yesterday" EventOutcomeIndicator="4"/></AuditMessage>`, true, false, 4},
		{`<AuditMessage><EventIdentification EventDateTime="2026-03-02T09:00:00Z" EventOutcomeIndicator="ok"/></AuditMessage>`, false, true, 0},
		{`<AuditMessage><EventIdentification EventDateTime="2026-03-02T09:00:00Z"/></AuditMessage>`, false, true, 0},
		{`<AuditMessage><EventIdentification EventDateTime="2026-03-02T09:00:00Z" EventOutcomeIndicator="0"/></AuditMessage>`, false, false, 0},
	} {
		a, err := Parse([]byte(c.in), limit)
		if err != nil {
			t.Errorf("%s: %v, want it read", c.in, err)
			continue
		}
		e := a.Event
		if e.BadDateTime != c.badTime || e.NoOutcome != c.noOutcome || e.Outcome != c.outcome || (c.badTime && !e.DateTime.IsZero()) {
			t.Errorf("%s: %+v, want bad time %v, no outcome %v, outcome %d", c.in, e, c.badTime, c.noOutcome, c.outcome)
		}
	}
}

func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.xml")
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := Parse(data, limit)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v (%T) is not a *ParseError", err, err)
			}
			if pe.Offset < 0 || pe.Offset > int64(len(data)) {
				t.Fatalf("offset %d outside the input (%d bytes)", pe.Offset, len(data))
			}
			if a != nil {
				t.Fatal("an Audit with an error")
			}
			return
		}
		if !bytes.Contains(data, []byte("AuditMessage")) {
			t.Fatal("accepted a message without an AuditMessage")
		}
		// The scanner is a subset of XML: what it accepts, encoding/xml
		// must read to the end too (ASCII only: beyond it the scanner's
		// names are more lenient).
		if isASCII(data) {
			d := xml.NewDecoder(bytes.NewReader(data))
			for {
				_, err := d.Token()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("accepted what encoding/xml refuses: %v", err)
				}
			}
		}
		if len(a.Event.TypeCodes) > len(data) || len(a.Objects) > len(data) {
			t.Fatal("more parts than bytes")
		}
	})
}

func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}

// TestParseXMLForms covers the XML the scanner reads beyond the
// testdata messages: CDATA, character references, single quotes, space
// around =, comments and processing instructions inside the root.
func TestParseXMLForms(t *testing.T) {
	in := "<?xml version='1.0' encoding='utf-8'?>\r\n<AuditMessage>" +
		"<!-- before --><?audit-pi some data?>" +
		"<ActiveParticipant UserID = 'a&#x26;b&#38;c&quot;&apos;&#233;' UserIsRequestor='0' />" +
		"<ParticipantObjectIdentification ParticipantObjectID='x' ParticipantObjectTypeCode = \"2\">" +
		"<ParticipantObjectQuery><![CDATA[PEFk]]>aG9jUXVl\r\n\tcnkvPg==</ParticipantObjectQuery>" +
		"<ParticipantObjectName> Jane &amp; <![CDATA[<Doe>]]> </ParticipantObjectName>" +
		"</ParticipantObjectIdentification></AuditMessage >"
	a, err := Parse([]byte(in), limit)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := a.Participants[0].UserID, "a&b&c\"'é"; got != want {
		t.Errorf("UserID = %q, want %q", got, want)
	}
	o := a.Objects[0]
	if o.ID != "x" || o.TypeCode != 2 || string(o.Query) != "<AdhocQuery/>" || o.Name != "Jane & <Doe>" {
		t.Errorf("object = %+v, query %q", o, o.Query)
	}
}

// TestManyValues: the Audit's strings share buffers that grow as a
// record's values outnumber the first one; each string keeps its value,
// entity-decoded ones too.
func TestManyValues(t *testing.T) {
	var b strings.Builder
	b.WriteString(`<AuditMessage>`)
	const n = 200
	for i := range n {
		fmt.Fprintf(&b, `<ActiveParticipant UserID="user-%d-%s" UserName="a&amp;b %d"/>`, i, strings.Repeat("x", i%50), i)
	}
	b.WriteString(`</AuditMessage>`)
	a, err := Parse([]byte(b.String()), limit)
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Participants) != n {
		t.Fatalf("%d participants, want %d", len(a.Participants), n)
	}
	for i, p := range a.Participants {
		if want := fmt.Sprintf("user-%d-%s", i, strings.Repeat("x", i%50)); p.UserID != want {
			t.Errorf("participant %d: UserID %q, want %q", i, p.UserID, want)
		}
		if want := fmt.Sprintf("a&b %d", i); p.UserName != want {
			t.Errorf("participant %d: UserName %q, want %q", i, p.UserName, want)
		}
	}
}

// TestSmallInt: the coded integers, as strconv.ParseUint(s, 10, 16) of
// the trimmed text reads them.
func TestSmallInt(t *testing.T) {
	for _, in := range []string{"0", " 24 ", "\t4\n", "65535", "0000012", "65536", "", " ", "-1", "+1", "1a", "1 2", "99999999999999999999"} {
		want, wantErr := strconv.ParseUint(strings.TrimSpace(in), 10, 16)
		got, err := smallInt([]byte(in))
		if (err != nil) != (wantErr != nil) || (err == nil && uint64(got) != want) {
			t.Errorf("smallInt(%q) = %d, %v; want %d, %v", in, got, err, want, wantErr)
		}
	}
}
