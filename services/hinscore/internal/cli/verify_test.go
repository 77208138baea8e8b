package cli

import (
	"bytes"
	"context"
	"encoding/csv"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hinscore/hinscore/services/lib/chstore/chtest"
)

// TestDemoThenVerify runs `hinscore demo` (every HL7 v2 and FHIR pattern
// over six months, and the cross-community networks, through the embedded NATS and the test ClickHouse), which
// checks every stored outcome against the simulator's truth and fails on
// a difference; then `hinscore verify` on the same database and truth
// directory, with and without the patient key; then verify on a truth
// directory with one request's class changed, which must exit 1 and name
// that request's class, and nothing else.
func TestDemoThenVerify(t *testing.T) {
	_, d := chtest.EmptyDatabase(t)
	t.Setenv("HINSCORE_CHROMIUM", filepath.Join(t.TempDir(), "no-browser")) // no screenshot: not what this test is for
	t.Setenv("HINSCORE_PATIENT_KEY", "")
	out := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	if code := Main(ctx, []string{"demo", "--requests", "1500", "--journeys", "120", "--seed", "5", "--out", out, "--clickhouse", d.String()},
		&stdout, &stderr); code != 0 {
		t.Fatalf("demo exit %d\n%s\n%s", code, stdout.String(), stderr.String())
	}
	if !strings.Contains(stdout.String(), "0 differences") || !strings.Contains(stdout.String(), "refused_exception") {
		t.Fatalf("the demo printed no exact check against the truth:\n%s", stdout.String())
	}
	// Every pattern: the FHIR network and the classes only orders and
	// queries in part can say are in the check.
	for _, want := range []string{"lakeshore", "cancelled", "partial", "carequal-east"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("the demo's check has no %q:\n%s", want, stdout.String())
		}
	}
	truth := filepath.Join(out, "truth")
	verify := func(dir string) (int, string) {
		var o, e bytes.Buffer
		code := Main(ctx, []string{"verify", "--clickhouse", d.String(), "--truth", dir}, &o, &e)
		return code, o.String() + e.String()
	}
	if code, text := verify(truth); code != 0 {
		t.Fatalf("verify without the patient key: exit %d\n%s", code, text)
	}
	t.Setenv("HINSCORE_PATIENT_KEY", "hinscore demo patient key")
	code, text := verify(truth)
	if code != 0 {
		t.Fatalf("verify: exit %d\n%s", code, text)
	}
	t.Logf("verify:\n%s", text)

	altered, id := alterOneClass(t, truth)
	code, text = verify(altered)
	if code != 1 || !strings.Contains(text, id+": class fulfilled, truth not_found") || !strings.Contains(text, ": 1 differences (class 1)") {
		t.Fatalf("verify of a truth with %s's class changed: exit %d\n%s", id, code, text)
	}
}

// alterOneClass copies a truth directory with the first fulfilled request
// of truth.csv made not_found, and returns the copy and that request's id.
func alterOneClass(t *testing.T, dir string) (string, string) {
	t.Helper()
	copyDir := t.TempDir()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(copyDir, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.Open(filepath.Join(dir, "truth.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	id := ""
	for _, r := range rows[1:] {
		if r[col["outcome"]] == "fulfilled" {
			r[col["outcome"]], id = "not_found", r[col["control_id"]]
			break
		}
	}
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	_ = w.WriteAll(rows)
	if err := os.WriteFile(filepath.Join(copyDir, "truth.csv"), buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return copyDir, id
}
