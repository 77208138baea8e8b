package scorecard

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
	"github.com/hinscore/hinscore/proto/outcomeclass"
	"github.com/hinscore/hinscore/services/lib/chstore"
)

// Unequal treatment: for each responder, its requesters grouped by their
// network, organisation and EHR developer (from the organisation
// directory), each group's refusal and suspect rates against the rest of
// the responder's requests.

// Group kinds, in the order a card lists them.
const (
	GroupNetwork      = "network"
	GroupOrganisation = "organisation"
	GroupDeveloper    = "developer"
)

// Metrics compared: refusal is refused_unjustified, suspect the card's
// suspect rule.
const (
	MetricRefusal = "refusal"
	MetricSuspect = "suspect"
)

var groupKinds = []string{GroupNetwork, GroupOrganisation, GroupDeveloper}

// Defaults of the unequal-treatment parameters (Params' zero values).
const (
	DefaultUnequalMinDifference = 0.05
	DefaultUnequalFamilyError   = 0.001
)

// unequalTest is the test and correction in words, printed on every card.
const unequalTest = "two-sided Fisher exact test of each requester group (network, organisation, developer) of a responder against the rest of its requests, refusal (refused_unjustified) and suspect rates; p adjusted by Holm's step-down over every comparison of the card; flagged when the group's rate exceeds the rest's by at least unequal_min_difference and the adjusted p is at most unequal_family_error; groups or rests under unequal_min_group requests not compared"

// requesterSQL is the requester identifier of an outcome, the mirror of
// chstore.ResponderSQL: the initiating gateway's home community for an IHE
// cross-community transaction, else requester_org.
const requesterSQL = "if(requester_community != '', requester_community, requester_org)"

// pairCount is what one requester asked of one responder in one period of
// a network: requests, refused_unjustified and suspect among them.
type pairCount struct {
	network   string
	period    time.Time
	responder string // responder identifier (chstore.ResponderSQL)
	requester string // requester identifier (requesterSQL)
	requests  uint64
	refused   uint64
	suspect   uint64
}

// suspectSQL counts an outcome as the card's suspect rule does: a suspect
// class (outcomeclass.Suspect) or a fulfilment later than
// SuspectSLAMultiple x its SLA.
func suspectSQL() string {
	var classes []string
	for _, c := range outcomeclass.All {
		if outcomeclass.Suspect(c) {
			classes = append(classes, "'"+outcomeclass.Name(c)+"'")
		}
	}
	return "outcome IN (" + strings.Join(classes, ", ") + ") OR (outcome IN " + veryLateClasses +
		" AND ifNull(ttf_ms, 0) > " + fmt.Sprint(SuspectSLAMultiple) + " * sla_ms)"
}

// loadPairs reads every (responder, requester) pair's counts of the scan
// from outcomes_once, each exchange once (the outcomes_daily rollup keeps
// no requester, so both sources read it here).
func (w *world) loadPairs(ctx context.Context, conn driver.Conn, q Query) error {
	where, args := q.timeFilter("requested_at")
	sql := `SELECT network, ` + periodExprs[q.Granularity] + `(requested_at) AS period, ` + chstore.ResponderSQL + ` AS responder,
       ` + requesterSQL + ` AS requester, count(),
       toUInt64(countIf(outcome = 'refused_unjustified')), toUInt64(countIf(` + suspectSQL() + `))
FROM outcomes_once
WHERE ` + where + ` AND outcome != 'orphan'
GROUP BY network, period, responder, requester`
	rows, err := conn.Query(ctx, sql, args...)
	if err != nil {
		return fmt.Errorf("requester pairs: %w", err)
	}
	defer rows.Close()
	w.pairs = map[time.Time]map[string][]pairCount{}
	for rows.Next() {
		var r pairCount
		if err := rows.Scan(&r.network, &r.period, &r.responder, &r.requester, &r.requests, &r.refused, &r.suspect); err != nil {
			return fmt.Errorf("requester pairs: %w", err)
		}
		r.period = midnight(r.period)
		if w.pairs[r.period] == nil {
			w.pairs[r.period] = map[string][]pairCount{}
		}
		w.pairs[r.period][r.network] = append(w.pairs[r.period][r.network], r)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("requester pairs: %w", err)
	}
	return nil
}

// tally is a group's requests and the two metrics' counts.
type tally struct{ n, refused, suspect uint64 }

func (t *tally) add(r pairCount) {
	t.n += r.requests
	t.refused += r.refused
	t.suspect += r.suspect
}

func (t tally) count(metric string) uint64 {
	if metric == MetricRefusal {
		return t.refused
	}
	return t.suspect
}

type groupKey struct{ kind, id string }

// requesterGroups returns the requester's group of every kind: its
// networks in the directory (joined by "+" when several; "" unknown), its
// organisation and its developer ("" unknown).
func (d directory) requesterGroups(ident string) [3]groupKey {
	e := d.lookup(ident)
	return [3]groupKey{
		{GroupNetwork, strings.Join(e.networks, "+")},
		{GroupOrganisation, e.orgID},
		{GroupDeveloper, e.developer},
	}
}

// outside reports whether a group is not the network's own: another
// network, or an organisation the directory does not place in it (a
// developer is a vendor, not a participant).
func (d directory) outside(g groupKey, network string) bool {
	switch g.kind {
	case GroupNetwork:
		return g.id != network
	case GroupOrganisation:
		for _, e := range d.byIdentifier {
			if e.orgID == g.id && slices.Contains(e.networks, network) {
				return false
			}
		}
		return true
	}
	return false
}

// hideOutsideGroups removes from an operator's copy the names of the
// groups that are not its network's own (peers only in aggregate).
func hideOutsideGroups(c *hinscorev1.Scorecard) {
	for _, u := range c.GetUnequalTreatment() {
		if u.GetOutside() {
			u.Group, u.GroupName = "", "(requesters outside "+c.GetNetwork()+")"
		}
	}
}

func (d directory) groupName(g groupKey) string {
	switch {
	case g.kind == GroupOrganisation:
		return d.orgName(g.id)
	case g.id == "":
		return "(" + g.kind + " unknown)"
	}
	return g.id
}

// compareRequesters computes the unequal-treatment rows of one card from
// the pairs of its network and period: for every responder, every group
// of every kind with at least the minimum of requests against the rest of
// the responder's requests (also at least the minimum), on both metrics;
// Holm's adjustment runs over all of them. Rows are ordered by responder,
// kind, group, metric.
func compareRequesters(pairs []pairCount, dir directory, p Params) []*hinscorev1.UnequalTreatment {
	totals := map[string]*tally{}
	groups := map[string]map[groupKey]*tally{}
	for _, r := range pairs {
		resp := dir.lookup(r.responder).orgID
		if totals[resp] == nil {
			totals[resp], groups[resp] = &tally{}, map[groupKey]*tally{}
		}
		totals[resp].add(r)
		for _, g := range dir.requesterGroups(r.requester) {
			if groups[resp][g] == nil {
				groups[resp][g] = &tally{}
			}
			groups[resp][g].add(r)
		}
	}
	var out []*hinscorev1.UnequalTreatment
	for _, resp := range sortedKeys(totals) {
		keys := make([]groupKey, 0, len(groups[resp]))
		for g := range groups[resp] {
			keys = append(keys, g)
		}
		slices.SortFunc(keys, func(a, b groupKey) int {
			return cmp.Or(cmp.Compare(slices.Index(groupKinds, a.kind), slices.Index(groupKinds, b.kind)), strings.Compare(a.id, b.id))
		})
		total := *totals[resp]
		for _, g := range keys {
			in := *groups[resp][g]
			rest := tally{n: total.n - in.n, refused: total.refused - in.refused, suspect: total.suspect - in.suspect}
			if in.n < MinSample || rest.n < MinSample {
				continue
			}
			for _, metric := range []string{MetricRefusal, MetricSuspect} {
				u := comparison(dir, resp, g, metric, in, rest)
				u.Outside = dir.outside(g, pairs[0].network)
				out = append(out, u)
			}
		}
	}
	ps := make([]float64, len(out))
	for i, u := range out {
		ps[i] = u.GetP()
	}
	for i, adj := range holm(ps) {
		u := out[i]
		u.AdjustedP = adj
		u.Flagged = u.GetDifference() >= p.unequalMinDifference() && adj <= p.unequalFamilyError()
	}
	return out
}

func comparison(dir directory, resp string, g groupKey, metric string, in, rest tally) *hinscorev1.UnequalTreatment {
	k, restK := in.count(metric), rest.count(metric)
	u := &hinscorev1.UnequalTreatment{
		Responder: resp, ResponderName: dir.orgName(resp), GroupKind: g.kind, Group: g.id, GroupName: dir.groupName(g),
		Metric: metric, N: in.n, K: k, Rate: float64(k) / float64(in.n),
		RestN: rest.n, RestK: restK, RestRate: float64(restK) / float64(rest.n),
		P: fisherExact(k, in.n, restK, rest.n),
	}
	u.Difference = u.Rate - u.RestRate
	return u
}

// unequalMinDifference and unequalFamilyError are the parameters in force
// (the zero value means the default).
func (p Params) unequalMinDifference() float64 {
	return cmp.Or(p.UnequalMinDifference, DefaultUnequalMinDifference)
}

func (p Params) unequalFamilyError() float64 {
	return cmp.Or(p.UnequalFamilyError, DefaultUnequalFamilyError)
}

func (p Params) validateUnequal() error {
	if p.UnequalMinDifference < 0 || p.UnequalMinDifference >= 1 || p.UnequalFamilyError < 0 || p.UnequalFamilyError >= 1 {
		return fmt.Errorf("UnequalMinDifference, UnequalFamilyError: %g, %g: want each in [0, 1) (0 = default)", p.UnequalMinDifference, p.UnequalFamilyError)
	}
	return nil
}

// unequalCSV gives the CSV columns of scorecard/4 for an entity's row: the
// parameters and the flagged comparisons (the network's row: every one of
// the card; a responder's: its own; a developer's: none) as
// kind=group metric rate/rest_rate adjusted_p;...
func unequalCSV(c *hinscorev1.Scorecard, e *hinscorev1.Entity) []string {
	p := c.GetFormula()
	var flagged []string
	for _, u := range c.GetUnequalTreatment() {
		if u.GetFlagged() && (e.GetLevel() == LevelNetwork || e.GetLevel() == LevelResponder && e.GetId() == u.GetResponder()) {
			flagged = append(flagged, fmt.Sprintf("%s %s=%s %s %d/%d vs %d/%d p=%.3g", u.GetResponder(), u.GetGroupKind(), u.GetGroupName(),
				u.GetMetric(), u.GetK(), u.GetN(), u.GetRestK(), u.GetRestN(), u.GetAdjustedP()))
		}
	}
	return []string{f6(p.GetUnequalMinDifference()), f6(p.GetUnequalFamilyError()), fmt.Sprint(p.GetUnequalMinGroup()), strings.Join(flagged, ";")}
}

// unequalShown are the comparisons a page lists: those whose difference
// reaches the minimum, flagged or not (the JSON has every comparison).
func unequalShown(c *hinscorev1.Scorecard) []*hinscorev1.UnequalTreatment {
	var out []*hinscorev1.UnequalTreatment
	for _, u := range c.GetUnequalTreatment() {
		if u.GetDifference() >= c.GetFormula().GetUnequalMinDifference() {
			out = append(out, u)
		}
	}
	return out
}

// printUnequal prints every flagged comparison of the cards, one line each.
func printUnequal(w io.Writer, cards []*hinscorev1.Scorecard) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	n := 0
	for _, c := range cards {
		for _, u := range c.GetUnequalTreatment() {
			if !u.GetFlagged() {
				continue
			}
			if n == 0 {
				fmt.Fprintln(tw, "network\tperiod\tresponder\tgroup\tmetric\tn\tk\trate %\trest n\trest k\trest %\tadjusted p\t")
			}
			n++
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s=%s\t%s\t%d\t%d\t%s\t%d\t%d\t%s\t%.3g\t\n", c.GetNetwork(), c.GetPeriod(), u.GetResponderName(),
				u.GetGroupKind(), u.GetGroupName(), u.GetMetric(), u.GetN(), u.GetK(), pct(u.GetK(), u.GetN()),
				u.GetRestN(), u.GetRestK(), pct(u.GetRestK(), u.GetRestN()), u.GetAdjustedP())
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "unequal treatment: %d comparisons flagged (a requester group refused or suspect more often than the rest of the responder's requests)\n", n)
	return err
}
