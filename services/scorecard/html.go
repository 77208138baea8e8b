package scorecard

import (
	"bytes"
	"fmt"
	"html/template"
	"time"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
)

// The pages are self-contained: inline CSS and SVG, no script, no external
// asset, so they open from a file, a mail attachment or a print queue.
const pageCSS = `
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#222;max-width:1000px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:24px 0 6px;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:6px 0;font-variant-numeric:tabular-nums}
th,td{border:1px solid #ddd;padding:3px 6px;text-align:right}th{background:#f4f4f4}td.l,th.l{text-align:left}
.small{font-size:10px}.muted{color:#666}.flag{color:#b30000;font-weight:600}.ss{color:#666;font-style:italic}
svg.chart text{font-size:11px;fill:#333}svg.chart{max-width:100%;height:auto}
.formula{font-size:12px;color:#444;background:#fafafa;border:1px solid #eee;padding:6px}
code{font-size:12px}
@media print{body{margin:0;font-size:10pt;max-width:none}h2{page-break-after:avoid}
 table,svg,.formula{page-break-inside:avoid}a{color:inherit;text-decoration:none}}
@page{size:A4;margin:14mm}
`

var pageTmpl = template.Must(template.New("page").Funcs(template.FuncMap{
	"pct": func(r *hinscorev1.Rate) string { return fmt.Sprintf("%.1f%%", 100*r.GetRate()) },
	"ci": func(r *hinscorev1.Rate) string {
		return fmt.Sprintf("%.1f–%.1f%%", 100*r.GetCiLow(), 100*r.GetCiHigh())
	},
	"ms":    fmtMs,
	"f1":    func(f float64) string { return fmt.Sprintf("%.1f", f) },
	"pct1":  func(f float64) string { return fmt.Sprintf("%.1f%%", 100*f) },
	"time":  func(ms int64) string { return time.UnixMilli(ms).UTC().Format("2006-01-02 15:04:05Z") },
	"class": func(c *hinscorev1.Scorecard, class string) *hinscorev1.Rate { return classRate(c.GetOutcomes(), class) },
	"pclass": func(p *hinscorev1.PurposeFigures, class string) *hinscorev1.Rate {
		return classRate(p.GetOutcomes(), class)
	},
	"unequal": unequalShown,
	"sci":     func(f float64) string { return fmt.Sprintf("%.3g", f) },
	"purposes": func(c *hinscorev1.Scorecard) []*hinscorev1.PurposeFigures {
		return append([]*hinscorev1.PurposeFigures{c.GetRequiredResponse()}, c.GetPurposes()...)
	},
}).Parse(completenessTmpl + `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>{{.C.Network}} scorecard {{.C.Period}}</title><style>{{.CSS}}</style></head>
<body>
<h1>Scorecard: {{.C.Network}}, {{.C.Granularity}} {{.C.Period}}</h1>
<p class="muted">{{time .C.PeriodStartMs}} to {{time .C.PeriodEndMs}} (end exclusive) · {{if .C.Closed}}closed{{else}}<b>provisional</b> (period not closed in event time){{end}} ·
{{.C.Copy}} copy{{if eq .C.Copy "operator"}}: your participants by name, other networks only in aggregate{{end}} · generated {{time .C.GeneratedAtMs}} · formula {{.C.FormulaVersion}} · schema {{.C.SchemaVersion}}</p>

<h2>Headline</h2>
<table><tr><th class="l">requests</th><th>suspect</th><th>95% interval</th><th>peer networks' median</th><th>ttf p50 / p90 / p99</th><th>within SLA</th><th>tta p50 / p90 / p99</th><th>rank</th></tr>
<tr><td class="l">{{.C.Requests}}{{if .C.Suspect.SmallSample}} <span class="ss">small sample</span>{{end}}</td><td>{{pct .C.Suspect}}</td><td>{{ci .C.Suspect}}</td><td>{{pct1 .C.Ranking.PeerMedian}}</td>
<td>{{if .C.TimeToFulfil.Count}}{{ms .C.TimeToFulfil.P50Ms}} / {{ms .C.TimeToFulfil.P90Ms}} / {{ms .C.TimeToFulfil.P99Ms}}{{else}}-{{end}}</td><td>{{pct .C.TimeToFulfil.WithinSla}}</td>
<td>{{if .C.TimeToAcknowledge.Count}}{{ms .C.TimeToAcknowledge.P50Ms}} / {{ms .C.TimeToAcknowledge.P90Ms}} / {{ms .C.TimeToAcknowledge.P99Ms}}, {{pct .C.TimeToAcknowledge.WithinSla}} within SLA{{else}}-{{end}}</td><td>{{.C.Ranking.Rank}} of {{.C.Ranking.Ranked}}</td></tr></table>
{{range .C.Flags}}<p class="flag">{{.Kind}}: {{.Reason}}</p>{{end}}

<h2>Outcome mix</h2>
{{.Mix}}
<table><tr><th class="l">class</th><th>count</th><th>rate</th><th>95% interval</th></tr>
{{range .C.Outcomes}}<tr><td class="l">{{.Outcome}}</td><td>{{.Rate.Count}}</td><td>{{pct .Rate}}</td><td>{{ci .Rate}}</td></tr>{{end}}</table>
<p class="muted">Volumes and SLAs applied: {{range .C.Volumes}}{{.RequestKind}} {{.Requests}} (SLA {{ms .SlaMinMs}}{{if ne .SlaMinMs .SlaMaxMs}}–{{ms .SlaMaxMs}}{{end}}); {{end}}</p>

<h2>By exchange purpose</h2>
<table class="small"><tr><th class="l">purpose</th><th>requests</th><th>fulfilled</th><th>late</th><th>not found</th><th>refused, exception</th><th>refused, unjustified</th><th>redirected</th><th>unanswered</th><th>denied (95% interval)</th><th>suspect (95% interval)</th><th>within SLA</th></tr>
{{range purposes .C}}<tr><td class="l">{{if eq .Purpose "required_response"}}<b>required response</b><br><span class="muted">{{range $i, $p := $.C.Formula.RequiredPurposes}}{{if $i}}, {{end}}{{$p}}{{end}}</span>{{else}}{{.Purpose}}{{if .RequiredResponse}} <span class="muted">(required)</span>{{end}}{{end}}</td><td>{{.Requests}}{{if .Suspect.SmallSample}}<br><span class="ss">small sample</span>{{end}}</td>
<td>{{pct (pclass . "fulfilled")}}</td><td>{{pct (pclass . "fulfilled_late")}}</td><td>{{pct (pclass . "not_found")}}</td><td>{{pct (pclass . "refused_exception")}}</td><td>{{pct (pclass . "refused_unjustified")}}</td><td>{{pct (pclass . "redirected")}}</td><td>{{pct (pclass . "unanswered")}}</td>
<td>{{if .RequiredResponse}}<b>{{pct .Denied}}</b>{{else}}{{pct .Denied}}{{end}}<br><span class="muted">{{ci .Denied}}</span></td><td>{{pct .Suspect}}<br><span class="muted">{{ci .Suspect}}</span></td><td>{{pct .WithinSla}}</td></tr>{{end}}</table>
<p class="muted">Every rate over the requests of the purpose (unknown: none sent, or a code the purpose table {{.C.Formula.PurposeVersion}} does not know). Denied = unanswered + refused_unjustified: for the required-response purposes, answers a responder owed and did not give.</p>

<h2>Messages with defects</h2>
<table class="small"><tr><th class="l">messages</th><th>with defects</th><th>95% interval</th>{{range .C.DataQuality.Flags}}<th>{{.Flag}}</th>{{end}}</tr>
<tr><td class="l">{{.C.DataQuality.Messages}}</td><td>{{pct .C.DataQuality.Defective}}</td><td>{{ci .C.DataQuality.Defective}}</td>{{range .C.DataQuality.Flags}}<td>{{pct .Share}}</td>{{end}}</tr></table>
<p class="muted">The network's messages of the period recorded with a data-quality flag rather than refused: an odd or missing time (dated by its arrival), an empty control id, a FHIR entry status that is no HTTP status line. A figure about the traffic, not an offence of a responder.</p>

{{with .C.FeedHealth}}<h2>Feed health</h2>
<table class="small"><tr><th class="l">feed</th><th>score</th><th>received</th><th>sequence gaps</th><th>duplicates</th><th>restarts</th><th>silent hours</th><th>shortfall</th><th>orphans (expected)</th><th>unanswered (expected)</th></tr>
<tr><td class="l"><b>all feeds</b></td><td><b>{{printf "%.4f" .Score}}</b></td><td>{{.Received}}</td><td>{{.SequenceGaps}}</td><td>{{.SequenceDuplicates}}</td><td></td><td>{{.SilentHours}}</td><td>{{.SilentShortfall}}</td><td>{{.Orphans.Count}}/{{.Orphans.Total}} ({{pct .OrphansExpected}}){{if .OrphansFlagged}} <b>flagged</b>{{end}}</td><td>{{.Unanswered.Count}}/{{.Unanswered.Total}} ({{pct .UnansweredExpected}}){{if .UnansweredFlagged}} <b>flagged</b>{{end}}</td></tr>
{{range .Feeds}}<tr><td class="l">{{if .Feed}}{{.Feed}}{{else}}(unrecorded){{end}}</td><td>{{printf "%.4f" .Score}}</td><td>{{.Received}}</td><td>{{.SequenceGaps}}</td><td>{{.SequenceDuplicates}}</td><td>{{.Restarts}}</td><td>{{.SilentHours}} of {{.HoursCompared}}</td><td>{{.SilentShortfall}}</td><td>{{.Orphans.Count}}/{{.Orphans.Total}} ({{pct .OrphansExpected}}){{if .OrphansFlagged}} <b>flagged</b>{{end}}</td><td>{{.Unanswered.Count}}/{{.Unanswered.Total}} ({{pct .UnansweredExpected}}){{if .UnansweredFlagged}} <b>flagged</b>{{end}}</td></tr>{{end}}</table>
<p>Orphan answers: {{.Orphans.Count}} of {{.Orphans.Total}} ({{pct .Orphans}}; expected {{pct .OrphansExpected}}){{if .OrphansFlagged}} <b>flagged</b>{{end}}. Unanswered requests: {{.Unanswered.Count}} of {{.Unanswered.Total}} ({{pct .Unanswered}}; expected {{pct .UnansweredExpected}}){{if .UnansweredFlagged}} <b>flagged</b>{{end}}.</p>
<p class="muted">{{.Version}}: score = received / (received + missing), missing = gaps in the senders' own sequence numbers (HL7 MSH-13, syslog sequenceId), the shortfall of hours silent against the same hour of the week in the weeks before (the network's feeds together), and orphans or unanswered beyond their expected rate (the network's own history, else its peers') when flagged. A figure about the feed, not an offence of a responder.</p>
{{end}}
{{template "completeness" .C}}

<h2>Time to fulfil against SLA</h2>
{{.TTF}}
<p class="muted">Bars: p50 (dot) to p99, p90 marked, over every request kind of the row together; dashed: the SLA of each request kind, dotted: {{.C.Formula.SuspectSlaMultiple}}× that SLA (later is suspect), each labelled with its kinds. Within SLA counts each request against its own kind's SLA. Logarithmic axis.</p>

<h2>Trend</h2>
{{.Trend}}

<h2>Position against peers</h2>
{{.Peers}}
<p class="muted">Suspect rate with its 95% Wilson interval; grey band: the middle half of all {{.C.PeerResponders.Count}} responder organisations of every network (median dashed); red dashed: flag threshold. Other networks: {{.C.PeerNetworks.Count}}, median {{pct1 .C.PeerNetworks.Median}}, range {{pct1 .C.PeerNetworks.Min}}–{{pct1 .C.PeerNetworks.Max}}.</p>
{{if .C.Peers}}<table><tr><th class="l">network (analyst copy)</th><th>requests</th><th>suspect</th><th>95% interval</th></tr>
{{range .C.Peers}}<tr><td class="l">{{.Network}}</td><td>{{.Requests}}</td><td>{{pct .Suspect}}</td><td>{{ci .Suspect}}</td></tr>{{end}}</table>{{end}}

{{define "entities"}}<table><tr><th class="l">{{.Title}}</th><th>requests</th><th>suspect</th><th>95% interval</th><th>peer median</th><th>flagged (of last n)</th><th>priority</th><th>rank</th><th>ttf p50/p90/p99</th><th>within SLA</th><th>tta p50/p90, within SLA</th><th>required response: requests, denied</th><th class="l">refusals by cited exception</th></tr>
{{range .List}}<tr><td class="l">{{.Name}}{{if .Developer}} <span class="muted small">({{.Developer}})</span>{{end}}{{range .Flags}}<br><span class="flag small">{{.Kind}}{{if .ExceptionCode}} {{.ExceptionCode}}{{end}}</span>{{end}}</td><td>{{.Requests}}{{if .Suspect.SmallSample}}<br><span class="ss">small sample</span>{{end}}</td>
<td>{{pct .Suspect}}</td><td>{{ci .Suspect}}</td><td>{{pct1 .Ranking.PeerMedian}}</td><td>{{.Ranking.FlaggedPeriods}}{{if .Ranking.RepeatOffender}} <b>repeat</b>{{end}}</td><td>{{f1 .Ranking.Priority}}</td><td>{{.Ranking.Rank}}/{{.Ranking.Ranked}}</td>
<td>{{if .TimeToFulfil.Count}}{{ms .TimeToFulfil.P50Ms}}/{{ms .TimeToFulfil.P90Ms}}/{{ms .TimeToFulfil.P99Ms}}{{else}}-{{end}}</td><td>{{pct .TimeToFulfil.WithinSla}}</td>
<td>{{if .TimeToAcknowledge.Count}}{{ms .TimeToAcknowledge.P50Ms}}/{{ms .TimeToAcknowledge.P90Ms}}, {{pct .TimeToAcknowledge.WithinSla}}{{else}}-{{end}}</td>
<td>{{if .RequiredResponse.Requests}}{{.RequiredResponse.Requests}}, {{pct .RequiredResponse.Denied}}{{else}}-{{end}}</td>
<td class="l small">{{range .Refusals}}{{.Code}} {{pct .Rate}}{{if .Overuse}} <b class="flag">overuse</b> (peers {{pct1 .PeerMedian}}){{end}}<br>{{end}}</td></tr>{{end}}</table>{{end}}

<h2>Responder organisations</h2>
{{template "entities" .Responders}}
<h2>Responder developers (EHR vendors)</h2>
{{template "entities" .Developers}}

<h2>Refusals by cited exception (network)</h2>
<table><tr><th class="l">code</th><th class="l">exception</th><th class="l">class</th><th>count</th><th>share</th><th>peer median</th></tr>
{{range .C.Refusals}}<tr><td class="l">{{.Code}}</td><td class="l">{{.Name}}</td><td class="l">{{.Outcome}}</td><td>{{.Rate.Count}}</td><td>{{pct .Rate}}</td><td>{{pct1 .PeerMedian}}</td></tr>{{end}}</table>

<h2>Cited exceptions checked against behaviour ({{.C.Formula.ExceptionRulesVersion}})</h2>
<table class="small"><tr><th class="l">rule</th><th class="l">codes</th><th>cited</th><th>checked</th><th>flagged</th><th>95% interval</th><th class="l">parameters</th></tr>
{{range .C.ExceptionChecks}}<tr><td class="l">{{.RuleId}}</td><td class="l">{{range $i, $c := .Codes}}{{if $i}}, {{end}}{{$c}}{{end}}</td><td>{{.Cited}}</td><td>{{.Checked}}</td><td>{{.Flagged.Count}} ({{pct .Flagged}})</td><td>{{ci .Flagged}}</td><td class="l">{{.Parameters}}</td></tr>{{end}}</table>
{{range .C.ExceptionChecks}}{{if .Evidence}}<p><b>{{.RuleId}}</b>: {{.Reasoning}}</p>
<table class="small"><tr><th class="l">request id</th><th class="l">outcome id</th><th class="l">responder</th><th class="l">outcome</th><th class="l">code</th><th>requested</th></tr>
{{range .Evidence}}<tr><td class="l"><code>{{.RequestId}}</code></td><td class="l"><code>{{.OutcomeId}}</code></td><td class="l">{{.ResponderOrg}}</td><td class="l">{{.Outcome}}</td><td class="l">{{.ExceptionCode}}</td><td>{{time .RequestedAtMs}}</td></tr>{{end}}</table>{{end}}{{end}}
<p class="muted">A citation is checked when the rule has enough other chains to compare with; flagged when the responder's own behaviour contradicts it. Each flagged chain is listed, with the rule's reasoning, in the api's chain view.</p>

<h2>Evidence: request chains behind each flag</h2>
{{range .Evidence}}<p><b>{{.Who}}</b> · {{.F.Kind}}{{if .F.ExceptionCode}} {{.F.ExceptionCode}}{{end}} · {{len .F.Evidence}} of {{.F.EvidenceTotal}} chains listed</p>
<table class="small"><tr><th class="l">request id</th><th class="l">outcome id</th><th class="l">responder</th><th class="l">outcome</th><th class="l">code</th><th>requested</th><th>ttf</th><th>SLA</th></tr>
{{range .F.Evidence}}<tr><td class="l"><code>{{.RequestId}}</code></td><td class="l"><code>{{.OutcomeId}}</code></td><td class="l">{{.ResponderOrg}}</td><td class="l">{{.Outcome}}</td><td class="l">{{.ExceptionCode}}</td><td>{{time .RequestedAtMs}}</td><td>{{if .TtfMs}}{{ms .TtfMs}}{{else}}-{{end}}</td><td>{{ms .SlaMs}}</td></tr>{{end}}</table>
{{else}}<p class="muted">No flags this period.</p>{{end}}

<h2>Unequal treatment</h2>
<p class="muted">{{len .C.UnequalTreatment}} comparisons of a requester group with the rest of its responder's requests; listed: those {{pct1 .C.Formula.UnequalMinDifference}} or more worse than the rest (flagged when also significant), every comparison in the JSON.</p>
<table class="small"><tr><th class="l">responder</th><th class="l">group</th><th class="l">rate</th><th>n</th><th>k</th><th>rate</th><th>rest n</th><th>rest k</th><th>rest rate</th><th>difference</th><th>p</th><th>adjusted p</th><th class="l">flagged</th></tr>
{{range unequal .C}}<tr><td class="l">{{.ResponderName}}</td><td class="l">{{.GroupKind}}: {{.GroupName}}</td><td class="l">{{.Metric}}</td><td>{{.N}}</td><td>{{.K}}</td><td>{{pct1 .Rate}}</td><td>{{.RestN}}</td><td>{{.RestK}}</td><td>{{pct1 .RestRate}}</td><td>{{pct1 .Difference}}</td><td>{{sci .P}}</td><td>{{sci .AdjustedP}}</td><td class="l">{{if .Flagged}}<b class="flag">flagged</b>{{else}}no{{end}}</td></tr>
{{else}}<tr><td colspan="13" class="l">No requester group fares {{pct1 .C.Formula.UnequalMinDifference}} or more worse than the rest.</td></tr>{{end}}</table>

<h2>Formula {{.C.Formula.Version}}</h2>
<div class="formula">Rates: count / requests (orphans excluded) with the 95% Wilson score interval (z = {{.C.Formula.Z}}); fewer than {{.C.Formula.MinSample}} requests is a small sample: shown, never flagged.
Suspect = refused_unjustified + redirected + unanswered + fulfilled later than {{.C.Formula.SuspectSlaMultiple}} × SLA.
Flag threshold {{pct1 .C.Formula.FlagThreshold}}; repeat offender = flagged in {{.C.Formula.FlagK}} of the last {{.C.Formula.FlagN}} periods.
Exception overuse: lower bound of a code's share &gt; max({{.C.Formula.OveruseMultiple}} × peer median, {{pct1 .C.Formula.OveruseFloor}}).
Up to {{.C.Formula.EvidenceLimit}} chains per flag.
Unequal treatment: {{.C.Formula.UnequalTest}} (minimum difference {{pct1 .C.Formula.UnequalMinDifference}}, family-wise error {{.C.Formula.UnequalFamilyError}}, minimum group {{.C.Formula.UnequalMinGroup}} requests).<br>Rates by exchange purpose ({{.C.Formula.PurposeVersion}}); required-response purposes: {{range $i, $p := .C.Formula.RequiredPurposes}}{{if $i}}, {{end}}{{$p}}{{end}}.<br>{{.C.Formula.PeerRule}}.<br>{{.C.Formula.PriorityRule}}.<br>Cited exceptions checked against behaviour by the rules {{.C.Formula.ExceptionRulesVersion}} (parameters in their table).</div>
</body></html>
`))

type entitiesView struct {
	Title string
	List  []*hinscorev1.Entity
}

type evidenceView struct {
	Who string
	F   *hinscorev1.Flag
}

// HTML renders one scorecard as a self-contained page.
func HTML(c *hinscorev1.Scorecard) ([]byte, error) {
	rows := []latencyRow{{"network " + c.GetNetwork(), c.GetTimeToFulfil()}}
	for _, e := range c.GetResponders() {
		rows = append(rows, latencyRow{e.GetName(), e.GetTimeToFulfil()})
	}
	var ev []evidenceView
	for _, f := range c.GetFlags() {
		ev = append(ev, evidenceView{"network " + c.GetNetwork(), f})
	}
	for _, es := range [][]*hinscorev1.Entity{c.GetResponders(), c.GetDevelopers()} {
		for _, e := range es {
			for _, f := range e.GetFlags() {
				ev = append(ev, evidenceView{e.GetLevel() + " " + e.GetName(), f})
			}
		}
	}
	var buf bytes.Buffer
	err := pageTmpl.Execute(&buf, map[string]any{
		"C": c, "CSS": template.CSS(pageCSS),
		"Mix": mixChart(c.GetOutcomes()), "TTF": ttfChart(rows, slaLines(c.GetVolumes())),
		"Trend": trendChart(c.GetTrend(), c.GetFormula().GetFlagThreshold()), "Peers": peerChart(c),
		"Responders": entitiesView{"responder organisation", c.GetResponders()},
		"Developers": entitiesView{"developer", c.GetDevelopers()},
		"Evidence":   ev,
	})
	if err != nil {
		return nil, fmt.Errorf("scorecard.HTML: %s %s: %w", c.GetNetwork(), c.GetPeriod(), err)
	}
	return buf.Bytes(), nil
}

func classRate(outcomes []*hinscorev1.ClassRate, class string) *hinscorev1.Rate {
	for _, o := range outcomes {
		if o.GetOutcome() == class {
			return o.GetRate()
		}
	}
	return NewRate(0, 0)
}
