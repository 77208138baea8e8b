package cli

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/hinscore/hinscore/services/lib/bus/natsembed"
)

// TestInspectCrossCommunityGolden: inspect prints one ExchangeEvent line
// per transaction side found in SOAP copies (one each, either side) and in
// audit captures (a bare AuditMessage, octet-counted frames, one syslog
// message a line: each audit a request and its answer), with the field
// names of HL7 v2 and FHIR.
func TestInspectCrossCommunityGolden(t *testing.T) {
	const dir = "testdata/crosscommunity/"
	var out strings.Builder
	for _, args := range [][]string{
		{"inspect", "--format", "soap", "--network", "neta", dir + "iti55_request.xml", dir + "iti55_response_ok.xml"},
		{"inspect", "--format", "soap", "--network", "neta", "--side", "responding", dir + "iti39_response_headers.mime"},
		{"inspect", "--format", "atna", "--network", "neta", dir + "audit_iti55_responding.xml", dir + "audits.octet", dir + "audits.lines"},
	} {
		code, o, stderr := run(t, args...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, stderr)
		}
		out.WriteString(o)
	}
	// auto finds the same formats.
	_, auto, stderr := run(t, "inspect", "--network", "neta", dir+"iti55_request.xml", dir+"iti55_response_ok.xml", dir+"audits.octet", dir+"audits.lines")
	if strings.Count(auto, "\n") != 2+4+4 {
		t.Errorf("auto: %d lines %s", strings.Count(auto, "\n"), stderr)
	}
	for _, l := range strings.Split(strings.TrimSpace(auto), "\n") {
		if !strings.Contains(out.String(), l) {
			t.Errorf("auto printed a line --format did not: %s", l)
		}
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3+2+2*2+2*2 {
		t.Fatalf("%d lines:\n%s", len(lines), out.String())
	}
	for i, l := range lines {
		var ev map[string]any
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		if ev["format"] == nil || ev["role"] == nil || ev["network"] != "neta" || ev["event_id"] == nil || ev["correlation_key"] == nil {
			t.Errorf("line %d lacks the common fields: %s", i+1, l)
		}
	}
	const golden = "testdata/crosscommunity.golden.jsonl"
	if *update {
		if err := os.WriteFile(golden, []byte(out.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if out.String() != string(want) {
		t.Fatalf("output differs from %s:\n got %s\nwant %s", golden, out.String(), want)
	}
}

// TestInspectCrossCommunityRefuses: input the format cannot identify exits
// 1 naming the file and the reason; a bad --side is a usage error.
func TestInspectCrossCommunityRefuses(t *testing.T) {
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"inspect", "--format", "soap", "testdata/query.hl7"}, 1, "query.hl7"},
		{[]string{"inspect", "--format", "soap", "testdata/crosscommunity/audit_iti55_responding.xml"}, 1, "root element <AuditMessage> is not a SOAP Envelope"},
		{[]string{"inspect", "--format", "atna", "testdata/crosscommunity/iti55_request.xml"}, 1, "root element <Envelope>"},
		{[]string{"inspect", "--format", "atna", "testdata/query.hl7"}, 1, "neither an AuditMessage nor a syslog capture"},
		{[]string{"inspect", "--format", "soap", "--side", "both", "testdata/query.hl7"}, 2, "--side"},
		{[]string{"import", "--network", "n", "--format", "soap", "--side", "x", "f"}, 2, "--side"},
	}
	for _, tc := range cases {
		code, _, stderr := run(t, tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d %q, want %d with %q", tc.args, code, stderr, tc.code, tc.want)
		}
	}
}

// TestImportSOAP imports SOAP copies twice: stored, then already held;
// EVENTS holds each once.
func TestImportSOAP(t *testing.T) {
	srv, err := natsembed.Start(t.TempDir(), "127.0.0.1", -1)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	files := []string{"testdata/crosscommunity/iti55_request.xml", "testdata/crosscommunity/iti55_response_ok.xml"}
	for i, want := range []string{"stored", "already held"} {
		code, out, stderr := run(t, append([]string{"import", "--nats", srv.URL(), "--network", "northstar", "--format", "soap"}, files...)...)
		if code != 0 || strings.Count(out, want) != 2 {
			t.Fatalf("import %d: exit %d %q %s", i, code, out, stderr)
		}
	}
	if n := eventsHeld(t, srv.URL()); n != 2 {
		t.Fatalf("EVENTS holds %d messages, want 2", n)
	}
}

// TestImportAudits imports audit captures through atna-ingest's path
// twice: octet-counted frames, messages one after another, a bare
// AuditMessage. A record found in two captures (the same AuditMessage) and
// a second import store nothing twice: 4 distinct records, 2 events each.
func TestImportAudits(t *testing.T) {
	srv, err := natsembed.Start(t.TempDir(), "127.0.0.1", -1)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	const dir = "testdata/crosscommunity/"
	files := []string{dir + "audits.octet", dir + "audits.lines", dir + "audit_iti55_responding.xml"}
	for i := 0; i < 2; i++ {
		code, out, stderr := run(t, append([]string{"import", "--nats", srv.URL(), "--network", "carequal-east", "--format", "atna"}, files...)...)
		if code != 0 || strings.Count(out, "2 audit records, 2 stored, 0 refused") != 2 || !strings.Contains(out, "1 audit records, 1 stored") {
			t.Fatalf("import %d: exit %d %q %s", i, code, out, stderr)
		}
	}
	if n := eventsHeld(t, srv.URL()); n != 8 {
		t.Fatalf("EVENTS holds %d messages, want 8", n)
	}
	if code, _, stderr := run(t, "import", "--nats", srv.URL(), "--network", "n", "--format", "atna", "testdata/query.hl7"); code != 1 || !strings.Contains(stderr, "neither an AuditMessage") {
		t.Errorf("an HL7 file as atna: exit %d %s", code, stderr)
	}
}
