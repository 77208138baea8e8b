package fhirmap

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
	"github.com/hinscore/hinscore/services/lib/domain/quality"
)

var update = flag.Bool("update", false, "rewrite the golden files")

var testIngest = time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)

// testPatientKey is the key of testMapper's tokens.
var testPatientKey = []byte("0123456789abcdef-test-key")

func testMapper() Mapper { return NewMapper(testPatientKey, "k1") }

func readExample(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "examples", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// render writes events one JSON line each, normalised (protojson varies
// its whitespace on purpose).
func render(t testing.TB, events []*hinscorev1.ExchangeEvent) []byte {
	t.Helper()
	var out bytes.Buffer
	for _, ev := range events {
		b, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Compact(&out, b); err != nil {
			t.Fatal(err)
		}
		out.WriteByte('\n')
	}
	return out.Bytes()
}

func TestMapExamples(t *testing.T) {
	cases := []struct {
		file, corr string
		// roles and statuses expected, event by event (the golden file holds every field)
		want []string
		// for refusals: the sentinel and the element named
		err  error
		path string
	}{
		{file: "task-requested.json", want: []string{"ROLE_REQUEST/STATUS_UNSPECIFIED"}},
		{file: "task-requested-purpose.json", want: []string{"ROLE_REQUEST/STATUS_UNSPECIFIED"}},
		{file: "task-accepted.json", want: []string{"ROLE_INTERIM/STATUS_ACCEPTED"}},
		{file: "task-completed.json", want: []string{"ROLE_RESPONSE/STATUS_OK"}},
		{file: "task-rejected-exception.json", want: []string{"ROLE_RESPONSE/STATUS_REFUSED"}},
		{file: "task-rejected-portal.json", want: []string{"ROLE_RESPONSE/STATUS_REDIRECTED"}},
		{file: "task-failed-throttled.json", want: []string{"ROLE_RESPONSE/STATUS_REFUSED"}},
		{file: "task-cancelled.json", want: []string{"ROLE_CANCEL/STATUS_CANCELLED"}},
		{file: "task-bad-status.json", err: ErrInvalid, path: "Task.status"},
		{file: "task-bad-time.json", want: []string{"ROLE_REQUEST/STATUS_UNSPECIFIED"}}, // dated by its arrival, flagged
		{file: "message-request.json", want: []string{"ROLE_REQUEST/STATUS_UNSPECIFIED"}},
		{file: "message-response-ok.json", want: []string{"ROLE_RESPONSE/STATUS_OK"}},
		{file: "message-response-refused.json", want: []string{"ROLE_RESPONSE/STATUS_REFUSED"}},
		{file: "bundle-message-notify.json", want: []string{"ROLE_NOTIFICATION/STATUS_UNSPECIFIED"}},
		{file: "messageheader-example.json", want: []string{"ROLE_RESPONSE/STATUS_OK"}},
		{file: "batch-request.json", corr: "corr-1", want: []string{"ROLE_REQUEST/STATUS_UNSPECIFIED", "ROLE_REQUEST/STATUS_UNSPECIFIED", "ROLE_REQUEST/STATUS_UNSPECIFIED"}},
		{file: "batch-response.json", corr: "corr-1", want: []string{"ROLE_RESPONSE/STATUS_OK", "ROLE_RESPONSE/STATUS_REFUSED", "ROLE_RESPONSE/STATUS_NOT_FOUND"}},
		{file: "transaction.json", want: []string{"ROLE_REQUEST/STATUS_UNSPECIFIED", "ROLE_REQUEST/STATUS_UNSPECIFIED", "ROLE_REQUEST/STATUS_UNSPECIFIED"}},
		{file: "transaction-purpose.json", want: []string{"ROLE_REQUEST/STATUS_UNSPECIFIED", "ROLE_REQUEST/STATUS_UNSPECIFIED"}},
		{file: "transaction-response-odd-status.json", corr: "tx-2", want: []string{"ROLE_RESPONSE/STATUS_OK", "ROLE_RESPONSE/STATUS_OK",
			"ROLE_RESPONSE/STATUS_OK", "ROLE_RESPONSE/STATUS_OK", "ROLE_RESPONSE/STATUS_NOT_FOUND", "ROLE_RESPONSE/STATUS_REFUSED",
			"ROLE_RESPONSE/STATUS_UNSPECIFIED", "ROLE_RESPONSE/STATUS_UNSPECIFIED"}},
		{file: "transaction-response.json", corr: "tx-1", want: []string{"ROLE_RESPONSE/STATUS_OK", "ROLE_RESPONSE/STATUS_OK", "ROLE_RESPONSE/STATUS_OK"}},
		{file: "auditevent-rest.json", want: []string{"ROLE_REQUEST/STATUS_UNSPECIFIED", "ROLE_RESPONSE/STATUS_OK"}},
		{file: "auditevent-refused.json", want: []string{"ROLE_REQUEST/STATUS_UNSPECIFIED", "ROLE_RESPONSE/STATUS_REFUSED"}},
		{file: "auditevent-serious-failure.json", want: []string{"ROLE_REQUEST/STATUS_UNSPECIFIED", "ROLE_RESPONSE/STATUS_ERROR_TRANSIENT"}},
		{file: "auditevent-major-failure.json", want: []string{"ROLE_REQUEST/STATUS_UNSPECIFIED", "ROLE_RESPONSE/STATUS_ERROR_TRANSIENT"}},
		{file: "auditevent-login.json", want: []string{"ROLE_NOTIFICATION/STATUS_UNSPECIFIED"}},
		{file: "auditevent-no-outcome.json", want: []string{"ROLE_NOTIFICATION/STATUS_UNSPECIFIED"}},
		{file: "auditevent-xcpd-responding.json", want: []string{"ROLE_REQUEST/STATUS_UNSPECIFIED", "ROLE_RESPONSE/STATUS_OK"}},
		{file: "auditevent-xca-retrieve-import.json", want: []string{"ROLE_REQUEST/STATUS_UNSPECIFIED", "ROLE_RESPONSE/STATUS_ERROR_TRANSIENT"}},
		{file: "operationoutcome.json", corr: "corr-9", want: []string{"ROLE_RESPONSE/STATUS_REFUSED"}},
		{file: "operationoutcome.json", err: ErrNotExchange, path: "OperationOutcome"},
		{file: "documentreference.json", err: ErrNotExchange, path: "DocumentReference"},
		{file: "searchset.json", err: ErrNotExchange, path: "Bundle.type"},
		{file: "subscription-notification.json", want: []string{"ROLE_RESPONSE/STATUS_OK"}},
	}
	m := testMapper()
	for _, tc := range cases {
		name := strings.TrimSuffix(tc.file, ".json")
		if tc.corr != "" {
			name += "+" + tc.corr
		}
		t.Run(name, func(t *testing.T) {
			res, err := m.Map(Input{Network: "neta", Body: readExample(t, tc.file), CorrelationID: tc.corr, Ingest: testIngest})
			if tc.err != nil {
				var fe *Error
				if !errors.Is(err, tc.err) || !errors.As(err, &fe) || fe.Path != tc.path {
					t.Fatalf("got %v, want %v at %s", err, tc.err, tc.path)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, ev := range res.Events {
				got = append(got, ev.Role.String()+"/"+ev.Status.String())
				if !strings.HasPrefix(ev.MappingVersion, "fhir-map/5+fhir-class/2") || ev.Format != hinscorev1.Format_FORMAT_FHIR || ev.Network != "neta" {
					t.Errorf("event header: %v", ev)
				}
			}
			if strings.Join(got, " ") != strings.Join(tc.want, " ") {
				t.Fatalf("roles/statuses %v, want %v", got, tc.want)
			}
			golden := filepath.Join("testdata", "golden", name+".golden")
			out := render(t, res.Events)
			if *update {
				if err := os.WriteFile(golden, out, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out, want) {
				t.Errorf("differs from %s:\n got %s\nwant %s", golden, out, want)
			}
		})
	}
}

// TestReadHTTPStatus: an entry's response.status is a string; a status
// line is exact, anything else is read as well as it can be.
func TestReadHTTPStatus(t *testing.T) {
	for _, c := range []struct {
		in, code string
		exact    bool
	}{
		{"200 OK", "200", true},
		{" 201 Created ", "201", true},
		{"404", "404", true},
		{"201Created", "201", false},
		{"HTTP/1.1 404 Not Found", "404", false},
		{"created", "201", false},
		{"OK", "200", false},
		{"no_content", "204", false},
		{"Not-Found", "404", false},
		{"2010", "", false},
		{"600 Odd", "", false},
		{"done", "", false},
		{"", "", false},
	} {
		if code, exact := readHTTPStatus(c.in); code != c.code || exact != c.exact {
			t.Errorf("readHTTPStatus(%q) = %q, %v; want %q, %v", c.in, code, exact, c.code, c.exact)
		}
	}
}

// TestObservedDefectsFlagged: a transaction-response whose entries'
// statuses are no HTTP status lines (one without any response at all), an
// AuditEvent without recorded and a Task whose authoredOn cannot be read
// are mapped, each defective event flagged; the well-formed ones are not.
func TestObservedDefectsFlagged(t *testing.T) {
	m := testMapper()
	res, err := m.Map(Input{Network: "neta", Body: readExample(t, "transaction-response-odd-status.json"), CorrelationID: "tx-2", Ingest: testIngest})
	if err != nil {
		t.Fatal(err)
	}
	flagged := quality.Code(quality.BadEntryStatus)
	for i, ev := range res.Events {
		want := 1
		if i == 2 {
			want = 0 // "201": a status line without its phrase, which FHIR allows
		}
		if n := strings.Count(strings.Join(ev.ReasonCodes, " "), flagged); n != want {
			t.Errorf("entry %d (%s): reasons %q, want the flag %d time(s)", i, ev.AckCode, ev.ReasonCodes, want)
		}
	}
	res, err = m.Map(Input{Network: "neta", Body: readExample(t, "transaction-response.json"), CorrelationID: "tx-1", Ingest: testIngest})
	if err != nil {
		t.Fatal(err)
	}
	for i, ev := range res.Events {
		if len(quality.Flags(ev.ReasonCodes)) != 0 {
			t.Errorf("well-formed entry %d flagged: %q", i, ev.ReasonCodes)
		}
	}
	// An AuditEvent without recorded (nor period): dated by its arrival.
	var audit map[string]any
	if err := json.Unmarshal(readExample(t, "auditevent-rest.json"), &audit); err != nil {
		t.Fatal(err)
	}
	delete(audit, "recorded")
	delete(audit, "period")
	body, err := json.Marshal(audit)
	if err != nil {
		t.Fatal(err)
	}
	res, err = m.Map(Input{Network: "neta", Body: body, Ingest: testIngest})
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range res.Events {
		if ev.EventTimeMs != testIngest.UnixMilli() || !slices.Equal(quality.Flags(ev.ReasonCodes), []string{quality.NoTimestamp}) {
			t.Errorf("AuditEvent without recorded: %s at %d, reasons %q", ev.Role, ev.EventTimeMs, ev.ReasonCodes)
		}
	}
	res, err = m.Map(Input{Network: "neta", Body: readExample(t, "task-bad-time.json"), Ingest: testIngest})
	if err != nil {
		t.Fatal(err)
	}
	if ev := res.Events[0]; ev.EventTimeMs != testIngest.UnixMilli() || !slices.Equal(quality.Flags(ev.ReasonCodes), []string{quality.BadTimestamp}) {
		t.Errorf("task with a bad time: at %d, reasons %q", ev.EventTimeMs, ev.ReasonCodes)
	}
}
