package scorecard

import (
	"cmp"
	"fmt"
	"html"
	"html/template"
	"math"
	"slices"
	"strings"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
)

// Inline SVG charts of the HTML page. Every text that comes from the data
// goes through html.EscapeString; the charts are returned as template.HTML
// because they are built here, not by the template.

// classColors gives each outcome class a colour that survives greyscale
// printing reasonably (suspect classes dark, fulfilled light).
var classColors = map[string]string{
	"fulfilled": "#9ecae1", "fulfilled_late": "#6baed6", "partial": "#c6dbef", "not_found": "#d9d9d9",
	"refused_exception": "#fdae6b", "refused_unjustified": "#d94801", "redirected": "#8c2d04",
	"error_transient": "#bcbddc", "error_permanent": "#756bb1", "cancelled": "#f0f0f0", "unanswered": "#252525", "orphan": "#ffffff",
}

func esc(s string) string { return html.EscapeString(s) }

// mixChart is a 100% stacked bar of the outcome classes with a legend.
func mixChart(outcomes []*hinscorev1.ClassRate) template.HTML {
	const w, barH = 720.0, 28.0
	var b strings.Builder
	var legend []*hinscorev1.ClassRate
	for _, o := range outcomes {
		if o.GetOutcome() != "orphan" && o.GetRate().GetCount() > 0 {
			legend = append(legend, o)
		}
	}
	h := barH + 12 + 18*float64((len(legend)+2)/3)
	fmt.Fprintf(&b, `<svg class="chart" role="img" aria-label="Outcome mix" viewBox="0 0 %.0f %.0f" width="%.0f" height="%.0f">`, w, h, w, h)
	x := 0.0
	for _, o := range legend {
		bw := o.GetRate().GetRate() * w
		fmt.Fprintf(&b, `<rect x="%.2f" y="0" width="%.2f" height="%.0f" fill="%s" stroke="#fff" stroke-width="0.5"><title>%s %.1f%%</title></rect>`,
			x, bw, barH, classColors[o.GetOutcome()], esc(o.GetOutcome()), 100*o.GetRate().GetRate())
		x += bw
	}
	for i, o := range legend {
		lx, ly := float64(i%3)*240, barH+12+float64(i/3)*18
		fmt.Fprintf(&b, `<rect x="%.0f" y="%.0f" width="12" height="12" fill="%s" stroke="#555" stroke-width="0.5"/><text x="%.0f" y="%.0f">%s %.1f%% [%.1f–%.1f]</text>`,
			lx, ly, classColors[o.GetOutcome()], lx+16, ly+10, esc(o.GetOutcome()), 100*o.GetRate().GetRate(), 100*o.GetRate().GetCiLow(), 100*o.GetRate().GetCiHigh())
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// latencyRow is one line of the time-to-fulfil chart.
type latencyRow struct {
	label string
	l     *hinscorev1.Latency
}

// slaLine is one SLA drawn on the time-to-fulfil chart with the request
// kinds it applies to.
type slaLine struct {
	ms    uint64
	kinds []string
}

// slaLines returns each distinct SLA of the volumes (a kind whose SLA
// differs between networks or over the period gives its minimum and its
// maximum) with its kinds, shortest first.
func slaLines(volumes []*hinscorev1.KindVolume) []slaLine {
	byMs := map[uint64][]string{}
	for _, v := range volumes {
		for _, ms := range []uint64{v.GetSlaMinMs(), v.GetSlaMaxMs()} {
			if ms > 0 && !slices.Contains(byMs[ms], v.GetRequestKind()) {
				byMs[ms] = append(byMs[ms], v.GetRequestKind())
			}
		}
	}
	var out []slaLine
	for ms, kinds := range byMs {
		slices.Sort(kinds)
		out = append(out, slaLine{ms, kinds})
	}
	slices.SortFunc(out, func(a, b slaLine) int { return cmp.Compare(a.ms, b.ms) })
	return out
}

// ttfChart draws each row's p50–p99 range (p90 marked) on a logarithmic
// axis against the SLA of every request kind (dashed) and 3 × that SLA
// (dotted). A row's times mix its request kinds, so each SLA line is
// labelled with the kinds it applies to rather than one SLA standing for
// all.
func ttfChart(rows []latencyRow, slas []slaLine) template.HTML {
	const left, w, rowH = 170.0, 540.0, 22.0
	var longest uint64
	for _, l := range slas {
		longest = max(longest, l.ms)
	}
	lo, hi := 100.0, float64(max(longest*6, 1000))
	for _, r := range rows {
		hi = math.Max(hi, float64(r.l.GetP99Ms())*1.2)
	}
	xOf := func(ms float64) float64 {
		ms = math.Max(ms, lo)
		return left + w*(math.Log10(ms)-math.Log10(lo))/(math.Log10(hi)-math.Log10(lo))
	}
	// The SLA labels sit under the rows, one line each.
	top := 30 + rowH*float64(len(rows))
	h := top + 14*float64(len(slas))
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" role="img" aria-label="Time to fulfil against SLA" viewBox="0 0 %.0f %.0f" width="%.0f" height="%.0f">`, left+w+20, h, left+w+20, h)
	for _, tick := range []float64{100, 1000, 10_000, 60_000, 600_000, 3_600_000, 86_400_000, 864_000_000} {
		if tick > hi {
			break
		}
		x := xOf(tick)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="14" x2="%.1f" y2="%.0f" stroke="#ddd"/><text x="%.1f" y="10" text-anchor="middle" class="small">%s</text>`, x, x, top, x, fmtMs(uint64(tick)))
	}
	for i, l := range slas {
		kinds := esc(strings.Join(l.kinds, ", "))
		x, x3 := xOf(float64(l.ms)), xOf(float64(l.ms)*SuspectSLAMultiple)
		fmt.Fprintf(&b, `<line class="sla" x1="%.1f" y1="14" x2="%.1f" y2="%.0f" stroke="#d94801" stroke-dasharray="4 3"><title>SLA %s: %s</title></line>`, x, x, top, fmtMs(l.ms), kinds)
		fmt.Fprintf(&b, `<line class="sla3" x1="%.1f" y1="14" x2="%.1f" y2="%.0f" stroke="#d94801" stroke-dasharray="1 3"><title>%d×SLA %s: %s</title></line>`, x3, x3, top, SuspectSLAMultiple, fmtMs(l.ms*SuspectSLAMultiple), kinds)
		// A label right of the middle ends at its line, so it stays inside.
		lx, anchor := x+3, "start"
		if x > left+w/2 {
			lx, anchor = x-3, "end"
		}
		fmt.Fprintf(&b, `<text x="%.1f" y="%.0f" text-anchor="%s" class="small" fill="#d94801">%s SLA %s (dotted: %d× %s)</text>`, lx, top+10+14*float64(i), anchor, kinds, fmtMs(l.ms), SuspectSLAMultiple, fmtMs(l.ms*SuspectSLAMultiple))
	}
	for i, r := range rows {
		y := 24 + rowH*float64(i)
		fmt.Fprintf(&b, `<text x="0" y="%.0f">%s</text>`, y+5, esc(truncate(r.label, 24)))
		if r.l.GetCount() == 0 {
			fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" class="small">no fulfilment</text>`, left, y+5)
			continue
		}
		x50, x90, x99 := xOf(float64(r.l.GetP50Ms())), xOf(float64(r.l.GetP90Ms())), xOf(float64(r.l.GetP99Ms()))
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.0f" x2="%.1f" y2="%.0f" stroke="#3182bd" stroke-width="6"><title>p50 %s, p90 %s, p99 %s; %.1f%% within SLA</title></line>`,
			x50, y, x99, y, fmtMs(r.l.GetP50Ms()), fmtMs(r.l.GetP90Ms()), fmtMs(r.l.GetP99Ms()), 100*r.l.GetWithinSla().GetRate())
		fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.0f" r="4" fill="#08519c"/><line x1="%.1f" y1="%.0f" x2="%.1f" y2="%.0f" stroke="#08306b" stroke-width="2"/>`, x50, y, x90, y-6, x90, y+6)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// trendChart plots the suspect rate per period with its Wilson interval and
// the flag threshold.
func trendChart(points []*hinscorev1.TrendPoint, threshold float64) template.HTML {
	const left, w, h, top = 50.0, 640.0, 180.0, 10.0
	maxRate := threshold * 2
	for _, p := range points {
		if p.GetRequests() > 0 {
			maxRate = math.Max(maxRate, p.GetSuspect().GetCiHigh())
		}
	}
	maxRate = math.Min(1, maxRate*1.1)
	yOf := func(r float64) float64 { return top + h - h*r/maxRate }
	step := w / float64(max(len(points), 1))
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" role="img" aria-label="Suspect rate trend" viewBox="0 0 %.0f %.0f" width="%.0f" height="%.0f">`, left+w, h+40, left+w, h+40)
	for _, t := range []float64{0, maxRate / 2, maxRate} {
		fmt.Fprintf(&b, `<line x1="%.0f" y1="%.1f" x2="%.0f" y2="%.1f" stroke="#eee"/><text x="0" y="%.1f" class="small">%.1f%%</text>`, left, yOf(t), left+w, yOf(t), yOf(t)+4, 100*t)
	}
	fmt.Fprintf(&b, `<line x1="%.0f" y1="%.1f" x2="%.0f" y2="%.1f" stroke="#d94801" stroke-dasharray="4 3"/><text x="%.0f" y="%.1f" class="small" fill="#d94801">flag threshold %.0f%%</text>`,
		left, yOf(threshold), left+w, yOf(threshold), left+4, yOf(threshold)-3, 100*threshold)
	var path []string
	for i, p := range points {
		x := left + step*(float64(i)+0.5)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.0f" text-anchor="middle" class="small">%s</text>`, x, top+h+16, esc(p.GetPeriod()))
		if p.GetRequests() == 0 {
			fmt.Fprintf(&b, `<text x="%.1f" y="%.0f" text-anchor="middle" class="small">no data</text>`, x, top+h-4)
			continue
		}
		s := p.GetSuspect()
		fill := "#3182bd"
		if p.GetFlagged() {
			fill = "#d94801"
		}
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#999" stroke-width="2"/><circle cx="%.1f" cy="%.1f" r="5" fill="%s"><title>%s: %.1f%% [%.1f–%.1f] of %d</title></circle>`,
			x, yOf(s.GetCiLow()), x, yOf(s.GetCiHigh()), x, yOf(s.GetRate()), fill, esc(p.GetPeriod()), 100*s.GetRate(), 100*s.GetCiLow(), 100*s.GetCiHigh(), p.GetRequests())
		fmt.Fprintf(&b, `<text x="%.1f" y="%.0f" text-anchor="middle" class="small">n=%d</text>`, x, top+h+30, p.GetRequests())
		path = append(path, fmt.Sprintf("%.1f,%.1f", x, yOf(s.GetRate())))
	}
	if len(path) > 1 {
		fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="#3182bd"/>`, strings.Join(path, " "))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// peerChart places the network and each own responder (with its interval)
// against the peers' distribution (p25–p75 band and median), unnamed.
func peerChart(c *hinscorev1.Scorecard) template.HTML {
	const left, w, rowH = 170.0, 540.0, 22.0
	rows := []struct {
		label string
		r     *hinscorev1.Rate
	}{{"network " + c.GetNetwork(), c.GetSuspect()}}
	for _, e := range c.GetResponders() {
		rows = append(rows, struct {
			label string
			r     *hinscorev1.Rate
		}{e.GetName(), e.GetSuspect()})
	}
	maxRate := 0.1
	for _, r := range rows {
		maxRate = math.Max(maxRate, r.r.GetCiHigh())
	}
	maxRate = math.Min(1, maxRate*1.05)
	pr := c.GetPeerResponders()
	xOf := func(r float64) float64 { return left + w*r/maxRate }
	h := 30 + rowH*float64(len(rows))
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" role="img" aria-label="Position against peers" viewBox="0 0 %.0f %.0f" width="%.0f" height="%.0f">`, left+w+20, h, left+w+20, h)
	if pr.GetCount() > 0 {
		fmt.Fprintf(&b, `<rect x="%.1f" y="14" width="%.1f" height="%.0f" fill="#eee"><title>peer responders p25–p75</title></rect>`, xOf(pr.GetP25()), xOf(pr.GetP75())-xOf(pr.GetP25()), h-14)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="14" x2="%.1f" y2="%.0f" stroke="#555" stroke-dasharray="2 2"/><text x="%.1f" y="10" class="small">peer median %.1f%%</text>`, xOf(pr.GetMedian()), xOf(pr.GetMedian()), h, xOf(pr.GetMedian()), 100*pr.GetMedian())
	}
	threshold := c.GetFormula().GetFlagThreshold()
	fmt.Fprintf(&b, `<line x1="%.1f" y1="14" x2="%.1f" y2="%.0f" stroke="#d94801" stroke-dasharray="4 3"/>`, xOf(threshold), xOf(threshold), h)
	for i, r := range rows {
		y := 26 + rowH*float64(i)
		fill := "#3182bd"
		if r.r.GetCiLow() > threshold && !r.r.GetSmallSample() {
			fill = "#d94801"
		}
		note := ""
		if r.r.GetSmallSample() {
			note = " (small sample)"
		}
		fmt.Fprintf(&b, `<text x="0" y="%.0f">%s</text>`, y+4, esc(truncate(r.label, 24)))
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.0f" x2="%.1f" y2="%.0f" stroke="#999" stroke-width="2"/><circle cx="%.1f" cy="%.0f" r="5" fill="%s"><title>%s: %.1f%% [%.1f–%.1f]%s</title></circle>`,
			xOf(r.r.GetCiLow()), y, xOf(r.r.GetCiHigh()), y, xOf(r.r.GetRate()), y, fill, esc(r.label), 100*r.r.GetRate(), 100*r.r.GetCiLow(), 100*r.r.GetCiHigh(), note)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// fmtMs prints a duration in ms compactly: 850ms, 12.5s, 4.0m, 3.0h, 2.0d.
func fmtMs(ms uint64) string {
	f := float64(ms)
	switch {
	case f < 1000:
		return fmt.Sprintf("%.0fms", f)
	case f < 60_000:
		return fmt.Sprintf("%.1fs", f/1000)
	case f < 3_600_000:
		return fmt.Sprintf("%.1fm", f/60_000)
	case f < 86_400_000:
		return fmt.Sprintf("%.1fh", f/3_600_000)
	}
	return fmt.Sprintf("%.1fd", f/86_400_000)
}
