package scorecard

import (
	"bytes"
	"context"
	"encoding/csv"
	"html"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
)

// TestFormulaOnEveryOutput builds the fixture's day with parameters that
// are not the defaults and checks that the formula version and every
// parameter are printed on every output: the JSON, each CSV row, the
// page's formula box, the offenders CSV and page, the command's table.
func TestFormulaOnEveryOutput(t *testing.T) {
	conn := testDatabase(t)
	insert(t, conn, fixture())
	params := Params{FlagThreshold: 0.07, FlagK: 2, FlagN: 5, OveruseMultiple: 4, OveruseFloor: 0.03, EvidenceLimit: 7,
		UnequalMinDifference: 0.08, UnequalFamilyError: 0.01}
	cards, err := Build(context.Background(), conn, Query{Granularity: Day, Params: params}, testNow)
	if err != nil {
		t.Fatal(err)
	}
	want := params.Formula()
	var alpha *hinscorev1.Scorecard
	for _, c := range cards {
		if c.GetNetwork() == "alpha" {
			alpha = c
		}
	}
	if alpha == nil || len(Offenders(cards)) == 0 {
		t.Fatalf("no alpha card or no offender among %d cards", len(cards))
	}
	op := OperatorCopy(alpha)
	z := strconv.FormatFloat(want.GetZ(), 'g', -1, 64)

	t.Run("json", func(t *testing.T) {
		b, err := Marshal(op)
		if err != nil {
			t.Fatal(err)
		}
		var c hinscorev1.Scorecard
		if err := protojson.Unmarshal(b, &c); err != nil {
			t.Fatal(err)
		}
		if c.GetFormulaVersion() != FormulaVersion || !proto.Equal(c.GetFormula(), want) {
			t.Errorf("formula %s %v, want %v", c.GetFormulaVersion(), c.GetFormula(), want)
		}
	})

	t.Run("csv", func(t *testing.T) {
		b, err := CSV(op)
		if err != nil {
			t.Fatal(err)
		}
		checkFormulaColumns(t, b)
	})
	t.Run("offenders csv", func(t *testing.T) {
		b, err := OffendersCSV(Offenders(cards))
		if err != nil {
			t.Fatal(err)
		}
		checkFormulaColumns(t, b)
	})

	// The same parameters in words on the pages and the table.
	t.Run("page formula box", func(t *testing.T) { checkFormulaBox(t, op, z) })
	t.Run("offenders page", func(t *testing.T) {
		b, err := OffendersHTML(alpha.GetPeriod(), alpha.GetFormula(), Offenders(cards))
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range []string{"Formula " + FormulaVersion, "Threshold 7.0%", "2 of 5 periods", "minimum sample 30", "z = " + z,
			"3 × SLA", "max(4 × peer median, 3.0%)", "up to 7 chains per flag", peerRule, priorityRule,
			"unequal treatment at 8.0% or more, family-wise error 0.01, groups of 30 or more"} {
			if !strings.Contains(html.UnescapeString(string(b)), w) {
				t.Errorf("offenders page lacks %q", w)
			}
		}
	})
	t.Run("table", func(t *testing.T) {
		var buf bytes.Buffer
		if err := PrintTable(&buf, cards); err != nil {
			t.Fatal(err)
		}
		for _, w := range []string{"formula " + FormulaVersion, "z=" + z, "below 30 requests", "> 0.07", "2 of the last 5 periods",
			"max(4 x peer median, 0.03)", "7 chains per flag", "after 3x SLA", "by >= 0.08 with Holm-adjusted p <= 0.01 (groups of >= 30 requests)"} {
			if !strings.Contains(buf.String(), w) {
				t.Errorf("table lacks %q:\n%s", w, buf.String())
			}
		}
	})
}

// formulaColumns are the formula's columns of every CSV row with
// TestFormulaOnEveryOutput's parameters.
var formulaColumns = map[string]string{
	"formula_version": FormulaVersion, "flag_threshold": "0.070000", "flag_k": "2", "flag_n": "5", "min_sample": "30",
	"z": "1.959964", "suspect_sla_multiple": "3", "overuse_multiple": "4.000000", "overuse_floor": "0.030000", "evidence_limit": "7",
	"unequal_min_difference": "0.080000", "unequal_family_error": "0.010000", "unequal_min_group": "30",
}

// checkFormulaColumns checks that every row of the CSV b carries
// formulaColumns.
func checkFormulaColumns(t *testing.T, b []byte) {
	t.Helper()
	recs, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil || len(recs) < 2 {
		t.Fatalf("%d records (%v)", len(recs), err)
	}
	col := map[string]int{}
	for i, h := range recs[0] {
		col[h] = i
	}
	for name, v := range formulaColumns {
		i, ok := col[name]
		if !ok {
			t.Errorf("no column %s", name)
			continue
		}
		for _, r := range recs[1:] {
			if r[i] != v {
				t.Errorf("%s = %q, want %q", name, r[i], v)
			}
		}
	}
}

// checkFormulaBox checks that the page of the operator's copy op states
// TestFormulaOnEveryOutput's parameters (z, printed as given) in its
// formula box, under a heading with the formula version.
func checkFormulaBox(t *testing.T, op *hinscorev1.Scorecard, z string) {
	t.Helper()
	b, err := HTML(op)
	if err != nil {
		t.Fatal(err)
	}
	_, box, ok := strings.Cut(string(b), `<div class="formula">`)
	box, _, _ = strings.Cut(box, "</div>")
	if !ok {
		t.Fatal("no formula box")
	}
	box = html.UnescapeString(box)
	for _, w := range []string{"z = " + z, "fewer than 30 requests", "later than 3 × SLA", "threshold 7.0%", "flagged in 2 of the last 5 periods",
		"max(4 × peer median, 3.0%)", "Up to 7 chains per flag", peerRule, priorityRule,
		"minimum difference 8.0%, family-wise error 0.01, minimum group 30 requests", unequalTest} {
		if !strings.Contains(box, w) {
			t.Errorf("formula box lacks %q:\n%s", w, box)
		}
	}
	if !strings.Contains(string(b), "<h2>Formula "+FormulaVersion+"</h2>") {
		t.Error("no formula heading with the version")
	}
}
