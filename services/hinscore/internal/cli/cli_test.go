package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hinscore/hinscore/services/lib/bus/natsembed"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hinscore/hinscore/services/api"
	"github.com/hinscore/hinscore/services/lib/bus"
	"github.com/hinscore/hinscore/services/lib/service"
	"github.com/hinscore/hinscore/services/lib/service/servicetest"
)

var update = flag.Bool("update", false, "rewrite golden files")

func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestInspectGolden(t *testing.T) {
	code, out, stderr := run(t, "inspect", "testdata/query.hl7")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if *update {
		if err := os.WriteFile("testdata/query.golden.jsonl", []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile("testdata/query.golden.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	if out != string(want) {
		t.Fatalf("inspect output differs from testdata/query.golden.jsonl:\n got %s\nwant %s", out, want)
	}
	// The same bytes always give the same lines (no wall-clock field).
	if _, again, _ := run(t, "inspect", "testdata/query.hl7"); again != out {
		t.Fatal("inspect output is not deterministic")
	}
}

func TestInspectErrorsNameFileMessageAndField(t *testing.T) {
	code, out, stderr := run(t, "inspect", "testdata/query.hl7", "testdata/badsegment.hl7")
	if code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	for _, want := range []string{"testdata/badsegment.hl7", "message 1", "segment 2"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("error %q does not name %q", stderr, want)
		}
	}
	if strings.Count(out, "\n") != 2 {
		t.Errorf("the good file before the bad one should still print its 2 events, got %q", out)
	}
}

// TestInspectFlagsDefects: a message whose MSH-7 cannot be read is still
// an event, at the ingest time, flagged.
func TestInspectFlagsDefects(t *testing.T) {
	code, out, stderr := run(t, "inspect", "testdata/badtime.hl7")
	if code != 0 || strings.Count(out, "\n") != 1 || !strings.Contains(out, `"reason_codes":["dq|bad-timestamp"]`) {
		t.Fatalf("exit %d, out %q, stderr %q", code, out, stderr)
	}
}

func TestUsageErrors(t *testing.T) {
	t.Setenv(service.EnvEnvironment, service.Production) // as a deployment runs up and nats
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no command", nil, 2, "Usage"},
		{"usage names the scorecard periods", nil, 2, "hinscore scorecard [--clickhouse DSN] [--period 2026-10|2026-W43|2026-10-05|day,week,month]"},
		{"unknown command", []string{"frobnicate"}, 2, "unknown command"},
		{"inspect without file", []string{"inspect"}, 2, "no FILE"},
		{"inspect bad format", []string{"inspect", "--format", "x12", "f"}, 2, "--format"},
		{"inspect bad network", []string{"inspect", "--network", "a.b", "testdata/query.hl7"}, 2, "network"},
		{"inspect missing file", []string{"inspect", "testdata/nope.hl7"}, 1, "nope.hl7"},
		{"up api without tokens", []string{"up", "--api", "127.0.0.1:8090"}, 1, "HINSCORE_API_TOKENS"},
		{"chain without id", []string{"chain"}, 2, "chain"},
		{"up fhir without tokens", []string{"up", "--fhir", "127.0.0.1:8080"}, 1, "HINSCORE_FHIR_TOKENS"},
		{"up bad listener", []string{"up", "--mllp", "north"}, 2, "--mllp"},
		{"up bad network", []string{"up", "--mllp", "no rth=127.0.0.1:1"}, 2, "--mllp"},
		{"up bad audit listener", []string{"up", "--atna", "hin1=nowhere"}, 2, "--atna"},
		{"up in production: the embedded NATS on every interface", []string{"up", "--nats", "0.0.0.0:4222"}, 1, "--nats: 0.0.0.0:4222: the embedded NATS authenticates nobody"},
		{"up in production: development keys", []string{"up"}, 1, "HINSCORE_RAW_KEYS: the public development key"},
		{"up in production: plain MLLP", []string{"up"}, 1, "HINSCORE_MLLP_LISTENERS: TLS is off"},
		{"nats in production on every interface", []string{"nats", "--addr", "0.0.0.0:0"}, 1, "--addr: 0.0.0.0:0: the embedded NATS"},
		{"demo bad requests", []string{"demo", "--requests", "0"}, 2, "--requests"},
		{"demo bad journeys", []string{"demo", "--journeys", "-1"}, 2, "--journeys"},
		{"bad flag", []string{"demo", "--nope"}, 2, "nope"},
		{"import without network", []string{"import", "testdata/query.hl7"}, 2, "--network"},
		{"import without file", []string{"import", "--network", "north"}, 2, "no FILE"},
		{"import bad format", []string{"import", "--network", "north", "--format", "x12", "f"}, 2, "--format"},
		{"directory without file", []string{"directory", "--clickhouse", "clickhouse://127.0.0.1:1/x"}, 2, "CSV"},
		{"inspect fhir on hl7", []string{"inspect", "--format", "fhir", "testdata/query.hl7"}, 1, "query.hl7"},
		{"nats bad addr", []string{"nats", "--addr", "localhost"}, 2, "--addr"},
		{"nats bad port", []string{"nats", "--addr", "127.0.0.1:http"}, 2, "--addr"},
		{"scorecard bad period", []string{"scorecard", "--clickhouse", "clickhouse://127.0.0.1:1/x", "--period", "fortnight"}, 2, "fortnight"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, stderr := run(t, tt.args...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d (stderr %q)", code, tt.code, stderr)
			}
			if !strings.Contains(stderr+out, tt.want) {
				t.Fatalf("output %q does not mention %q", stderr+out, tt.want)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	code, out, _ := run(t, "version")
	if code != 0 || !strings.HasPrefix(out, "hinscore ") {
		t.Fatalf("version: exit %d, %q", code, out)
	}
}

func TestNATSRunsUntilCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var out, errb servicetest.Buffer
	done := make(chan int)
	go func() {
		done <- Main(ctx, []string{"nats", "--data", t.TempDir(), "--addr", "127.0.0.1:0"}, &out, &errb)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.HasPrefix(out.String(), "nats://") {
		if time.Now().After(deadline) {
			t.Fatalf("no URL printed; stderr %q", errb.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	nc, err := bus.Connect(strings.TrimSpace(out.String()), "test")
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.AccountInfo(ctx); err != nil {
		t.Fatalf("JetStream not enabled: %v", err)
	}
	nc.Close()
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
}

// TestImportStoresOnceAndReimportsNothing imports an HL7 file twice into a
// NATS server and checks the EVENTS stream holds each message once.
func TestImportStoresOnceAndReimportsNothing(t *testing.T) {
	srv, err := natsembed.Start(t.TempDir(), "127.0.0.1", -1)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	for i := 0; i < 2; i++ {
		code, out, stderr := run(t, "import", "--nats", srv.URL(), "--network", "northstar", "testdata/query.hl7")
		if code != 0 {
			t.Fatalf("import %d: exit %d: %s", i, code, stderr)
		}
		if !strings.Contains(out, "2 messages, 2 stored, 0 refused") {
			t.Fatalf("import %d: %q", i, out)
		}
	}
	if n := eventsHeld(t, srv.URL()); n != 2 {
		t.Fatalf("EVENTS holds %d messages after two imports of 2, want 2", n)
	}
}

// eventsHeld is the number of messages EVENTS holds on the NATS at url.
func eventsHeld(t *testing.T, url string) uint64 {
	t.Helper()
	nc, err := bus.Connect(url, "test")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	s, err := js.Stream(context.Background(), bus.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// TestAuditListsTheStream: hinscore audit lists what the api recorded in
// AUDIT, filtered by network and holder, as a table or the JSON written.
func TestAuditListsTheStream(t *testing.T) {
	srv, err := natsembed.Start(t.TempDir(), "127.0.0.1", -1)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	nc, err := bus.Connect(srv.URL(), "test")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	if err := bus.EnsureStreams(ctx, js, bus.DefaultStreamOptions()); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	entries := []api.AuditEntry{
		{Time: at, Who: "ivy", Role: api.RoleInvestigator, Action: "raw", Chain: "c-1", Network: "bayview", Reason: "case 42", Messages: 3, RequestID: "r1", Outcome: api.AuditServed},
		{Time: at.Add(time.Minute), Who: "ann", Role: api.RoleAnalyst, Action: "raw", Chain: "c-2", Network: "northstar", Reason: "curious", RequestID: "r2", Outcome: api.AuditDenied, Refusal: "raw messages are for investigators"},
		{Time: at.Add(2 * time.Minute), Who: "ivy", Role: api.RoleInvestigator, Action: "evidence", Chain: "c-3", Network: "northstar", Reason: "case 43", Messages: 2, RequestID: "r3", Outcome: api.AuditServed},
	}
	var lines []string
	for _, e := range entries {
		b, _ := json.Marshal(e)
		lines = append(lines, string(b))
		if _, err := js.Publish(ctx, bus.AuditSubject(e.Network), b); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		args []string
		want []string // lines the output holds, in order
		n    int
	}{
		{nil, []string{"2026-12-04T10:00:00Z  ivy", "ann", "refused: raw messages are for investigators", "evidence"}, 3},
		{[]string{"--network", "northstar"}, []string{"c-2", "c-3"}, 2},
		{[]string{"--who", "ivy"}, []string{"c-1", "c-3"}, 2},
		{[]string{"--since", "1h"}, nil, 3},
		{[]string{"--since", "2099-01-01T00:00:00Z"}, nil, 0},
	}
	for _, c := range cases {
		code, out, stderr := run(t, append([]string{"audit", "--nats", srv.URL()}, c.args...)...)
		if code != 0 {
			t.Fatalf("audit %v: exit %d: %s", c.args, code, stderr)
		}
		rest := out
		for _, w := range c.want {
			i := strings.Index(rest, w)
			if i < 0 {
				t.Errorf("audit %v: %q missing or out of order in\n%s", c.args, w, out)
				break
			}
			rest = rest[i+len(w):]
		}
		if !strings.HasSuffix(out, fmt.Sprintf("\n%d entries\n", c.n)) {
			t.Errorf("audit %v: want %d entries:\n%s", c.args, c.n, out)
		}
	}
	code, out, _ := run(t, "audit", "--nats", srv.URL(), "--json", "--network", "bayview")
	if code != 0 || out != lines[0]+"\n" {
		t.Errorf("audit --json: exit %d %q, want the entry as written", code, out)
	}
	for _, bad := range [][]string{{"--since", "yesterday"}, {"--since", "-3h"}, {"--network", "no such"}} {
		if code, _, _ := run(t, append([]string{"audit", "--nats", srv.URL()}, bad...)...); code != 2 {
			t.Errorf("audit %v: exit %d, want 2", bad, code)
		}
	}
}
