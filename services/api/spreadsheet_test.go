package api

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"testing"
	"time"

	"github.com/hinscore/hinscore/services/lib/domain/csvsafe"
	"github.com/hinscore/hinscore/services/scorecard"
)

// TestHostileFacilitiesReachTheScorecardCSVEscaped sends, over MLLP,
// queries to hospitals whose senders spelled their MSH-4 facility as
// spreadsheet formulas, refused by them, through the real pipeline into
// ClickHouse; the scorecard CSV of the day names each hospital, escaped,
// and holds no cell a spreadsheet would run (a safe cell is its own
// csvsafe.Cell).
func TestHostileFacilitiesReachTheScorecardCSVEscaped(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	p := startPipeline(t, ctx, []string{"bayview"}, 1)
	hospitals := []string{"=SUM(1+1)*9", "@SUM(1+1)", "-2+3+cmd", "+HOSP", "-1"}
	const clinic = "@CLINIC(1)"
	hl7 := func(at time.Time) string { return at.UTC().Format("20060102150405.000") + "+0000" }
	t0 := time.Now().UTC().Truncate(24 * time.Hour).Add(-14 * time.Hour)
	var ms []handMsg
	want := map[string]string{}
	for i, h := range hospitals {
		at, id := t0.Add(time.Duration(i)*time.Minute), fmt.Sprintf("HQ%d", i)
		ms = append(ms, handMsg{step: Step{MessageID: id}, raw: "MSH|^~\\&|EHR|" + clinic + "|HIS|" + h + "|" + hl7(at) +
			"||QBP^Q22^QBP_Q21|" + id + "|P|2.5.1\rQPD|IHE PDQ Query|" + id + "T|@PID.3.1^1234~@PID.3.4.1^MPI\rRCP|I|10^RD\r"})
		ms = append(ms, handMsg{step: Step{MessageID: id + "R"}, raw: "MSH|^~\\&|HIS|" + h + "|EHR|" + clinic + "|" +
			hl7(at.Add(2*time.Second)) + "||RSP^K22^RSP_K21|" + id + "R|P|2.5.1\rMSA|AR|" + id + "\rQAK|" + id +
			"T|AR|Q22^Find Candidates^HL7|0|0|0\r"})
		want["bayview/"+id] = "refused_unjustified"
	}
	sendMLLP(t, p.ingest.Addrs()["bayview"], ms)
	waitClasses(t, ctx, p, want)
	cards, err := scorecard.Build(ctx, p.conn, scorecard.Query{Granularity: "day"}, time.Now())
	if err != nil || len(cards) != 1 {
		t.Fatalf("%d cards: %v", len(cards), err)
	}
	b, err := scorecard.CSV(cards[0])
	if err != nil {
		t.Fatal(err)
	}
	records, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for i, r := range records {
		for j, c := range r {
			if csvsafe.Cell(c) != c {
				t.Errorf("row %d column %s: %q would run as a formula", i, records[0][j], c)
			}
			seen[c] = true
		}
	}
	for _, h := range hospitals {
		if w := csvsafe.Cell(h); !seen[w] {
			t.Errorf("no cell %q for the hospital MSH-4 spelled %q:\n%s", w, h, b)
		}
	}
	if !seen["'=SUM(1+1)*9"] || !seen["-1"] {
		t.Errorf("want the formula escaped and the plain number kept:\n%s", b)
	}
}
