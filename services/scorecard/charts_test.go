package scorecard

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"testing"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
)

// svgOf returns the SVG element with the given aria-label in page, checked
// to be well-formed XML.
func svgOf(t *testing.T, page, label string) string {
	t.Helper()
	start := strings.Index(page, `<svg class="chart" role="img" aria-label="`+label+`"`)
	if start < 0 {
		t.Fatalf("no %q chart", label)
	}
	end := strings.Index(page[start:], "</svg>")
	if end < 0 {
		t.Fatalf("%q chart not closed", label)
	}
	svg := page[start : start+end+len("</svg>")]
	d := xml.NewDecoder(strings.NewReader(svg))
	for {
		if _, err := d.Token(); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("%q chart is not well-formed: %v", label, err)
		}
	}
	return svg
}

// TestPageChartsAndPrint checks the four charts of north's page for
// 2026-05 of figuresWorld (patient queries with a 60 s SLA and document
// retrievals with 5 min) and the print rules.
func TestPageChartsAndPrint(t *testing.T) {
	conn := testDatabase(t)
	insertObs(t, conn, figuresWorld())
	cards, err := Build(context.Background(), conn, Query{Granularity: Month, Network: "north", From: may, To: may.AddDate(0, 1, 0)}, testNow)
	if err != nil || len(cards) != 1 {
		t.Fatalf("%d cards (%v)", len(cards), err)
	}
	c := OperatorCopy(cards[0])
	b, err := HTML(c)
	if err != nil {
		t.Fatal(err)
	}
	page := string(b)
	count := func(s, sub string) int { return strings.Count(s, sub) }

	t.Run("outcome mix", func(t *testing.T) {
		svg := svgOf(t, page, "Outcome mix")
		// One bar segment and one legend entry per class seen.
		for _, o := range c.GetOutcomes() {
			want := 0
			if o.GetOutcome() != "orphan" && o.GetRate().GetCount() > 0 {
				want = 1
			}
			if got := count(svg, "<title>"+o.GetOutcome()+" "); got != want {
				t.Errorf("%s: %d segments, want %d", o.GetOutcome(), got, want)
			}
		}
		r := classRate(c.GetOutcomes(), "fulfilled")
		if want := fmt.Sprintf(">fulfilled %.1f%% [%.1f–%.1f]</text>", 100*r.GetRate(), 100*r.GetCiLow(), 100*r.GetCiHigh()); !strings.Contains(svg, want) {
			t.Errorf("no legend %s:\n%s", want, svg)
		}
	})
	t.Run("time to fulfil against each kind's SLA", func(t *testing.T) { checkFulfilChart(t, page, c) })
	t.Run("trend", func(t *testing.T) {
		svg := svgOf(t, page, "Suspect rate trend")
		// 2026-02 … 2026-05: the last flag_n periods, each labelled.
		for _, p := range []string{"2026-02", "2026-03", "2026-04", "2026-05"} {
			if !strings.Contains(svg, ">"+p+"</text>") {
				t.Errorf("trend lacks period %s", p)
			}
		}
		// north had requests in March and May: two points with intervals.
		if n := len(regexp.MustCompile(`<circle [^>]*><title>2026-0[35]: `).FindAllString(svg, -1)); n != 2 {
			t.Errorf("%d trend points, want 2", n)
		}
		if !strings.Contains(svg, "flag threshold 5%") {
			t.Error("trend lacks the flag threshold")
		}
	})
	t.Run("position against peers", func(t *testing.T) {
		svg := svgOf(t, page, "Position against peers")
		if !strings.Contains(svg, "<title>peer responders p25–p75</title>") || !strings.Contains(svg, "peer median ") {
			t.Error("no peer band or median")
		}
		for _, e := range c.GetResponders() {
			if !strings.Contains(svg, "<title>"+e.GetName()+": ") {
				t.Errorf("no point for %s", e.GetName())
			}
		}
	})
	t.Run("print", func(t *testing.T) {
		_, print, ok := strings.Cut(page, "@media print{")
		if !ok {
			t.Fatal("no @media print rules")
		}
		print, _, _ = strings.Cut(print, "}}")
		for _, want := range []string{"body{margin:0", "h2{page-break-after:avoid}", "table,svg,.formula{page-break-inside:avoid}"} {
			if !strings.Contains(print, want) {
				t.Errorf("@media print lacks %q: %s", want, print)
			}
		}
		if !strings.Contains(page, "@page{size:A4;") {
			t.Error("no A4 @page rule")
		}
	})
	t.Run("self-contained", func(t *testing.T) {
		if m := regexp.MustCompile(`(?i)<script|<link|<img|\b(src|href)=|url\(|https?://`).FindAllString(page, -1); len(m) > 0 {
			t.Errorf("page references %q", m)
		}
	})
}

// checkFulfilChart checks the time-to-fulfil chart of north's page: a line
// for the SLA of each request kind and a row for the network and each of
// card c's responders.
func checkFulfilChart(t *testing.T, page string, c *hinscorev1.Scorecard) {
	t.Helper()
	svg := svgOf(t, page, "Time to fulfil against SLA")
	for _, want := range []string{
		`<title>SLA 1.0m: patient_query</title>`, `<title>3×SLA 3.0m: patient_query</title>`,
		`<title>SLA 5.0m: document_retrieve</title>`, `<title>3×SLA 15.0m: document_retrieve</title>`,
		`patient_query SLA 1.0m (dotted: 3× 3.0m)`, `document_retrieve SLA 5.0m (dotted: 3× 15.0m)`,
	} {
		if !strings.Contains(svg, want) {
			t.Errorf("time-to-fulfil chart lacks %q", want)
		}
	}
	if n := strings.Count(svg, `class="sla"`); n != 2 {
		t.Errorf("%d SLA lines, want one per kind (2)", n)
	}
	// The network and each of its 4 responder organisations has a bar
	// or says it has no fulfilment.
	if n := strings.Count(svg, `stroke-width="6"><title>p50 `) + strings.Count(svg, "no fulfilment"); n != 1+len(c.GetResponders()) {
		t.Errorf("%d rows, want %d", n, 1+len(c.GetResponders()))
	}
	if !strings.Contains(page, "the SLA of each request kind") {
		t.Error("the caption does not say the lines are per kind")
	}
}
