package scorecard

import (
	"bytes"
	"cmp"
	"fmt"
	"html/template"
	"slices"
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
	"github.com/hinscore/hinscore/proto/outcomeclass"
	"github.com/hinscore/hinscore/services/lib/domain/csvsafe"
)

// OperatorCopy returns the copy of an analyst scorecard that goes to the
// network's operator: its own participants by name, the other networks
// only in aggregate (PeerNetworks, PeerResponders), never named.
func OperatorCopy(c *hinscorev1.Scorecard) *hinscorev1.Scorecard {
	o := proto.Clone(c).(*hinscorev1.Scorecard)
	o.Copy = CopyOperator
	o.Peers = nil
	hideOutsideGroups(o)
	// The one-sided chains name the other network and its participants.
	if fc := o.GetCompleteness(); fc != nil {
		fc.MissingChains = nil
	}
	return o
}

func f6(v float64) string { return strconv.FormatFloat(v, 'f', 6, 64) }

// csvHeader is the column list of a network's CSV (SchemaVersion): one row
// for the network, then one per responder organisation and developer.
func csvHeader() []string {
	h := []string{"schema_version", "formula_version", "flag_threshold", "flag_k", "flag_n", "min_sample",
		"network", "granularity", "period", "closed", "copy", "level", "id", "name", "developer", "requests", "small_sample"}
	for _, class := range outcomeclass.All {
		if class == hinscorev1.OutcomeClass_OUTCOME_CLASS_ORPHAN {
			continue
		}
		n := outcomeclass.Name(class)
		h = append(h, n, n+"_rate", n+"_ci_low", n+"_ci_high")
	}
	return append(h, "suspect", "suspect_rate", "suspect_ci_low", "suspect_ci_high", "peer_median", "excess_events",
		"flagged", "flagged_periods", "consecutive", "repeat_offender", "priority", "rank", "ranked",
		"ttf_count", "ttf_p50_ms", "ttf_p90_ms", "ttf_p99_ms", "within_sla_rate", "tta_count", "tta_p50_ms", "tta_p90_ms", "tta_p99_ms",
		"refusals", "overuse", "flags", "tta_within_sla_rate",
		// Appended after the columns of the first layout so that a sheet
		// reading columns by position keeps working.
		"z", "suspect_sla_multiple", "overuse_multiple", "overuse_floor", "evidence_limit",
		// scorecard/3: request kinds and exchange purposes.
		"volumes", "required_purposes", "required_response_requests", "required_response_denied",
		"required_response_denied_rate", "required_response_denied_ci_low", "required_response_denied_ci_high",
		"required_response_suspect_rate", "purposes",
		// scorecard/4: unequal treatment.
		"unequal_min_difference", "unequal_family_error", "unequal_min_group", "unequal_flagged")
}

// purposeCSV gives the CSV columns of scorecard/3: volumes by request
// kind (kind=requests;...), the required-response line, and every purpose
// as purpose=requests/suspect/denied;...
func purposeCSV(p *hinscorev1.FormulaParams, e *hinscorev1.Entity) []string {
	var volumes, purposes []string
	for _, v := range e.GetVolumes() {
		volumes = append(volumes, fmt.Sprintf("%s=%d", v.GetRequestKind(), v.GetRequests()))
	}
	for _, pf := range e.GetPurposes() {
		purposes = append(purposes, fmt.Sprintf("%s=%d/%d/%d", pf.GetPurpose(), pf.GetRequests(), pf.GetSuspect().GetCount(), pf.GetDenied().GetCount()))
	}
	r := e.GetRequiredResponse()
	d := r.GetDenied()
	return []string{strings.Join(volumes, ";"), strings.Join(p.GetRequiredPurposes(), ";"), fmt.Sprint(r.GetRequests()), fmt.Sprint(d.GetCount()),
		f6(d.GetRate()), f6(d.GetCiLow()), f6(d.GetCiHigh()), f6(r.GetSuspect().GetRate()), strings.Join(purposes, ";")}
}

func entityRow(c *hinscorev1.Scorecard, e *hinscorev1.Entity) []string {
	p := c.GetFormula()
	row := []string{c.GetSchemaVersion(), c.GetFormulaVersion(), f6(p.GetFlagThreshold()), fmt.Sprint(p.GetFlagK()), fmt.Sprint(p.GetFlagN()), fmt.Sprint(p.GetMinSample()),
		c.GetNetwork(), c.GetGranularity(), c.GetPeriod(), strconv.FormatBool(c.GetClosed()), c.GetCopy(),
		e.GetLevel(), e.GetId(), e.GetName(), e.GetDeveloper(), fmt.Sprint(e.GetRequests()), strconv.FormatBool(e.GetSuspect().GetSmallSample())}
	for _, class := range outcomeclass.All {
		if class == hinscorev1.OutcomeClass_OUTCOME_CLASS_ORPHAN {
			continue
		}
		r := classRate(e.GetOutcomes(), outcomeclass.Name(class))
		row = append(row, fmt.Sprint(r.GetCount()), f6(r.GetRate()), f6(r.GetCiLow()), f6(r.GetCiHigh()))
	}
	s, rk, t, a := e.GetSuspect(), e.GetRanking(), e.GetTimeToFulfil(), e.GetTimeToAcknowledge()
	var refusals, overuse, flags []string
	for _, x := range e.GetRefusals() {
		refusals = append(refusals, fmt.Sprintf("%s=%d", x.GetCode(), x.GetRate().GetCount()))
		if x.GetOveruse() {
			overuse = append(overuse, x.GetCode())
		}
	}
	for _, f := range e.GetFlags() {
		flags = append(flags, f.GetKind())
	}
	row = append(row, fmt.Sprint(s.GetCount()), f6(s.GetRate()), f6(s.GetCiLow()), f6(s.GetCiHigh()), f6(rk.GetPeerMedian()), f6(rk.GetExcessEvents()),
		strconv.FormatBool(rk.GetFlagged()), fmt.Sprint(rk.GetFlaggedPeriods()), fmt.Sprint(rk.GetConsecutive()), strconv.FormatBool(rk.GetRepeatOffender()),
		f6(rk.GetPriority()), fmt.Sprint(rk.GetRank()), fmt.Sprint(rk.GetRanked()),
		fmt.Sprint(t.GetCount()), fmt.Sprint(t.GetP50Ms()), fmt.Sprint(t.GetP90Ms()), fmt.Sprint(t.GetP99Ms()), f6(t.GetWithinSla().GetRate()),
		fmt.Sprint(a.GetCount()), fmt.Sprint(a.GetP50Ms()), fmt.Sprint(a.GetP90Ms()), fmt.Sprint(a.GetP99Ms()),
		strings.Join(refusals, ";"), strings.Join(overuse, ";"), strings.Join(flags, ";"), f6(a.GetWithinSla().GetRate()),
		f6(p.GetZ()), fmt.Sprint(p.GetSuspectSlaMultiple()), f6(p.GetOveruseMultiple()), f6(p.GetOveruseFloor()), fmt.Sprint(p.GetEvidenceLimit()))
	return append(append(row, purposeCSV(p, e)...), unequalCSV(c, e)...)
}

// networkEntity presents a card's network-level figures as an Entity.
func networkEntity(c *hinscorev1.Scorecard) *hinscorev1.Entity {
	return &hinscorev1.Entity{Level: LevelNetwork, Id: c.GetNetwork(), Name: c.GetNetwork(), Requests: c.GetRequests(),
		Volumes: c.GetVolumes(), Outcomes: c.GetOutcomes(), TimeToFulfil: c.GetTimeToFulfil(), TimeToAcknowledge: c.GetTimeToAcknowledge(),
		Suspect: c.GetSuspect(), Refusals: c.GetRefusals(), Ranking: c.GetRanking(), Trend: c.GetTrend(), Flags: c.GetFlags(),
		Purposes: c.GetPurposes(), RequiredResponse: c.GetRequiredResponse(), ExceptionChecks: c.GetExceptionChecks()}
}

// CSV renders a card for spreadsheets: the network, then its responder
// organisations and developers, one row each, with the formula on every row;
// csvsafe escapes the names a sender or the directory made formulas of.
func CSV(c *hinscorev1.Scorecard) ([]byte, error) {
	var buf bytes.Buffer
	w := csvsafe.NewWriter(&buf)
	// scorecard/5 appends the exception checks after the completeness, so
	// that every earlier column keeps its position.
	_ = w.Write(append(append(csvHeader(), completenessHeader...), exceptionChecksHeader...))
	net := networkEntity(c)
	_ = w.Write(append(append(entityRow(c, net), completenessCSV(c.GetCompleteness())...), exceptionChecksCSV(c.GetFormula(), net)...))
	for _, es := range [][]*hinscorev1.Entity{c.GetResponders(), c.GetDevelopers()} {
		for _, e := range es {
			_ = w.Write(append(append(entityRow(c, e), make([]string, len(completenessCSV(nil)))...), exceptionChecksCSV(c.GetFormula(), e)...))
		}
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return nil, fmt.Errorf("scorecard.CSV: %w", err)
	}
	return buf.Bytes(), nil
}

// Offender is one flagged entity on the analysts' cross-network list.
type Offender struct {
	Card   *hinscorev1.Scorecard
	Entity *hinscorev1.Entity
}

// Offenders lists every flagged entity (network, responder organisation,
// developer) of the analyst cards of one period, across networks, by
// priority (then rank, network, level, id).
func Offenders(cards []*hinscorev1.Scorecard) []Offender {
	var out []Offender
	for _, c := range cards {
		for _, e := range append(append([]*hinscorev1.Entity{networkEntity(c)}, c.GetResponders()...), c.GetDevelopers()...) {
			if len(e.GetFlags()) > 0 {
				out = append(out, Offender{c, e})
			}
		}
	}
	slices.SortFunc(out, func(a, b Offender) int {
		return cmp.Or(cmp.Compare(b.Entity.GetRanking().GetPriority(), a.Entity.GetRanking().GetPriority()),
			strings.Compare(a.Entity.GetLevel(), b.Entity.GetLevel()),
			cmp.Compare(a.Entity.GetRanking().GetRank(), b.Entity.GetRanking().GetRank()),
			strings.Compare(a.Card.GetNetwork(), b.Card.GetNetwork()), strings.Compare(a.Entity.GetId(), b.Entity.GetId()))
	})
	return out
}

func evidenceIDs(e *hinscorev1.Entity) (requests, outcomes []string) {
	for _, f := range e.GetFlags() {
		for _, ev := range f.GetEvidence() {
			requests = append(requests, ev.GetRequestId())
			outcomes = append(outcomes, ev.GetOutcomeId())
		}
	}
	return requests, outcomes
}

// OffendersCSV renders the offenders list: the entity row of the network CSV
// plus the request and outcome ids of its evidence chains.
func OffendersCSV(list []Offender) ([]byte, error) {
	var buf bytes.Buffer
	w := csvsafe.NewWriter(&buf)
	_ = w.Write(append(csvHeader(), "evidence_request_ids", "evidence_outcome_ids"))
	for _, o := range list {
		reqs, outs := evidenceIDs(o.Entity)
		_ = w.Write(append(entityRow(o.Card, o.Entity), strings.Join(reqs, ";"), strings.Join(outs, ";")))
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return nil, fmt.Errorf("scorecard.OffendersCSV: %w", err)
	}
	return buf.Bytes(), nil
}

var offendersTmpl = template.Must(template.New("offenders").Funcs(template.FuncMap{
	"pct": func(r *hinscorev1.Rate) string { return fmt.Sprintf("%.1f%%", 100*r.GetRate()) },
	"ci": func(r *hinscorev1.Rate) string {
		return fmt.Sprintf("%.1f–%.1f%%", 100*r.GetCiLow(), 100*r.GetCiHigh())
	},
	"pct1": func(f float64) string { return fmt.Sprintf("%.1f%%", 100*f) },
	"f1":   func(f float64) string { return fmt.Sprintf("%.1f", f) },
	"inc":  func(i int) int { return i + 1 },
}).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Offenders {{.Period}}</title><style>{{.CSS}}</style></head>
<body>
<h1>Repeat offenders and flags, all networks: {{.Period}}</h1>
<p class="muted">Analysts' copy (names every network). Formula {{.Formula.Version}}: {{.Formula.PriorityRule}}. Threshold {{pct1 .Formula.FlagThreshold}}, {{.Formula.FlagK}} of {{.Formula.FlagN}} periods, minimum sample {{.Formula.MinSample}}, Wilson z = {{.Formula.Z}}; suspect includes fulfilments later than {{.Formula.SuspectSlaMultiple}} × SLA; exception overuse above max({{.Formula.OveruseMultiple}} × peer median, {{pct1 .Formula.OveruseFloor}}); up to {{.Formula.EvidenceLimit}} chains per flag; unequal treatment at {{pct1 .Formula.UnequalMinDifference}} or more, family-wise error {{.Formula.UnequalFamilyError}}, groups of {{.Formula.UnequalMinGroup}} or more (on each network's card). {{.Formula.PeerRule}}.</p>
<table><tr><th>#</th><th class="l">level</th><th class="l">network</th><th class="l">name</th><th class="l">developer</th><th>requests</th><th>suspect</th><th>95% interval</th><th>peer median</th><th>flagged of last n</th><th>in a row</th><th>priority</th><th class="l">request kinds</th><th>required response: requests, denied</th><th class="l">flags</th><th class="l">first chains (request ids)</th></tr>
{{range $i, $o := .List}}<tr><td>{{inc $i}}</td><td class="l">{{$o.Entity.Level}}</td><td class="l">{{$o.Card.Network}}</td><td class="l">{{$o.Entity.Name}}</td><td class="l">{{$o.Entity.Developer}}</td><td>{{$o.Entity.Requests}}</td>
<td>{{pct $o.Entity.Suspect}}</td><td>{{ci $o.Entity.Suspect}}</td><td>{{pct1 $o.Entity.Ranking.PeerMedian}}</td><td>{{$o.Entity.Ranking.FlaggedPeriods}}</td><td>{{$o.Entity.Ranking.Consecutive}}</td><td>{{f1 $o.Entity.Ranking.Priority}}</td>
<td class="l small">{{range $o.Entity.Volumes}}{{.RequestKind}} {{.Requests}}<br>{{end}}</td><td>{{if $o.Entity.RequiredResponse.Requests}}{{$o.Entity.RequiredResponse.Requests}}, {{pct $o.Entity.RequiredResponse.Denied}}{{else}}-{{end}}</td>
<td class="l">{{range $o.Entity.Flags}}<span class="flag">{{.Kind}}{{if .ExceptionCode}} {{.ExceptionCode}}{{end}}</span> ({{.EvidenceTotal}})<br>{{end}}</td>
<td class="l small">{{range $o.Entity.Flags}}{{range $j, $e := .Evidence}}{{if lt $j 5}}<code>{{$e.RequestId}}</code> {{end}}{{end}}<br>{{end}}</td></tr>
{{else}}<tr><td colspan="16" class="l">No entity flagged in this period.</td></tr>{{end}}</table>
</body></html>
`))

// OffendersHTML renders the offenders list of one period as a page.
func OffendersHTML(period string, params *hinscorev1.FormulaParams, list []Offender) ([]byte, error) {
	var buf bytes.Buffer
	if err := offendersTmpl.Execute(&buf, map[string]any{"Period": period, "Formula": params, "List": list, "CSS": template.CSS(pageCSS)}); err != nil {
		return nil, fmt.Errorf("scorecard.OffendersHTML: %w", err)
	}
	return buf.Bytes(), nil
}
