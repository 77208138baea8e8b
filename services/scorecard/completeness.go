package scorecard

import (
	"context"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
)

// Completeness of a network's feed against its counterparts' (issue 25):
// both sides of cross-network exchanges, from migration 011's views.
const (
	// RefusedGroup pools refused_exception and refused_unjustified: a feed
	// that leaves out refusals leaves out either kind, and pooled they
	// reach min_sample with half the traffic.
	RefusedGroup = "refused"
	// RefusalZ is the one-sided z above which a network's own refusals are
	// significantly less complete than its other answers (p < 0.0005: one
	// test per network and period, each network tested on every card).
	RefusalZ = 3.29
	// RefusalMargin is the least difference of seen shares (other −
	// refusals) that flags, so that a vast sample does not flag a trifle.
	RefusalMargin = 0.01
)

const completenessRule = "expected = cross-network exchanges (requester and responder on two networks by the directory) that the counterpart network's feed carried, on days this network fed hinscore; seen = those this network's feed carried too; score = the lowest seen/expected of any side (the network as requester or as responder) and outcome group with at least min_sample expected (refused_exception and refused_unjustified pooled as refused), else seen/expected of all; lacks own refusals = as responder, refusals' seen share below the other answers' by at least 1 point with one-sided pooled z >= 3.29 and at least min_sample refusals expected; each exchange is counted once, on the card of the network whose copy counts (the responder's network's when its feed carried it)"

// completenessGroup is the group of an outcome class.
func completenessGroup(outcome string) string {
	if outcome == "refused_exception" || outcome == "refused_unjustified" {
		return RefusedGroup
	}
	return outcome
}

// seenCount is expected and seen exchanges.
type seenCount struct{ expected, seen uint64 }

func (s seenCount) plus(o seenCount) seenCount {
	return seenCount{s.expected + o.expected, s.seen + o.seen}
}

// completenessCounts are one network's counts in one period.
type completenessCounts struct {
	groups    map[string]seenCount // by side/group: responder/refused, requester/fulfilled, ...
	ownRefuse seenCount            // as responder: the refused group
	ownOther  seenCount            // as responder: every other group
	matched   uint64
	elsewhere uint64
	missing   uint64
	chains    []*hinscorev1.OneSidedExchange
}

func (c *completenessCounts) add(side, outcome string, n seenCount) {
	g := completenessGroup(outcome)
	c.groups[side+"/"+g] = c.groups[side+"/"+g].plus(n)
	if side != "responder" {
		return
	}
	if g == RefusedGroup {
		c.ownRefuse = c.ownRefuse.plus(n)
	} else {
		c.ownOther = c.ownOther.plus(n)
	}
}

// feedCompleteness computes a card's figures from its counts.
func feedCompleteness(c *completenessCounts) *hinscorev1.FeedCompleteness {
	var all seenCount
	var names []string
	for g, n := range c.groups {
		all = all.plus(n)
		names = append(names, g)
	}
	slices.Sort(names)
	fc := &hinscorev1.FeedCompleteness{Overall: NewRate(all.seen, all.expected), Score: share(all), Rule: completenessRule,
		Matched: c.matched, CountedElsewhere: c.elsewhere, Missing: c.missing, MissingChains: c.chains,
		OwnRefusals: NewRate(c.ownRefuse.seen, c.ownRefuse.expected), OwnOther: NewRate(c.ownOther.seen, c.ownOther.expected)}
	for _, g := range names {
		n := c.groups[g]
		fc.Groups = append(fc.Groups, &hinscorev1.CompletenessGroup{Group: g, Seen: NewRate(n.seen, n.expected)})
		if n.expected >= MinSample && (fc.ScoreGroup == "" || share(n) < fc.Score) {
			fc.Score, fc.ScoreGroup = share(n), g
		}
	}
	fc.RefusalZ = refusalZ(c.ownRefuse, c.ownOther)
	diff := share(c.ownOther) - share(c.ownRefuse)
	fc.LacksOwnRefusals = c.ownRefuse.expected >= MinSample && diff >= RefusalMargin && fc.RefusalZ >= RefusalZ
	return fc
}

// share is seen/expected; 1 when nothing was expected (nothing missed).
func share(n seenCount) float64 {
	if n.expected == 0 {
		return 1
	}
	return float64(n.seen) / float64(n.expected)
}

// refusalZ is the pooled two-proportion z of the other answers' seen share
// above the refusals'; 0 when either has nothing expected or nothing is
// missing anywhere.
func refusalZ(refused, other seenCount) float64 {
	if refused.expected == 0 || other.expected == 0 {
		return 0
	}
	p := float64(refused.seen+other.seen) / float64(refused.expected+other.expected)
	se := math.Sqrt(p * (1 - p) * (1/float64(refused.expected) + 1/float64(other.expected)))
	if se == 0 {
		return 0
	}
	return (share(other) - share(refused)) / se
}

// attachCompleteness fills each card's feed completeness from the
// feed_completeness view (by day, summed over the card's period), the
// matched and one-sided exchanges from the exchanges views.
func attachCompleteness(ctx context.Context, conn driver.Conn, q Query, cards []*hinscorev1.Scorecard) error {
	if len(cards) == 0 {
		return nil
	}
	counts := map[cardKey]*completenessCounts{}
	get := func(network string, start time.Time) *completenessCounts {
		k := cardKey{network, midnight(start).UnixMilli()}
		if counts[k] == nil {
			counts[k] = &completenessCounts{groups: map[string]seenCount{}}
		}
		return counts[k]
	}
	if err := loadCompleteness(ctx, conn, q, get); err != nil {
		return err
	}
	if err := loadMatched(ctx, conn, q, get); err != nil {
		return err
	}
	if err := loadOneSided(ctx, conn, q, get); err != nil {
		return err
	}
	for _, c := range cards {
		k := cardKey{c.GetNetwork(), c.GetPeriodStartMs()}
		if counts[k] == nil {
			counts[k] = &completenessCounts{groups: map[string]seenCount{}}
		}
		c.Completeness = feedCompleteness(counts[k])
	}
	return nil
}

type cardKey struct {
	network string
	start   int64
}

func loadCompleteness(ctx context.Context, conn driver.Conn, q Query, get func(string, time.Time) *completenessCounts) error {
	where, args := q.timeFilter("day")
	rows, err := conn.Query(ctx, `SELECT network, `+periodExprs[q.Granularity]+`(day) AS period, side, outcome, sum(expected), sum(seen)
FROM feed_completeness
WHERE `+where+`
GROUP BY network, period, side, outcome`, args...)
	if err != nil {
		return fmt.Errorf("completeness: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var network, side, outcome string
		var start time.Time
		var n seenCount
		if err := rows.Scan(&network, &start, &side, &outcome, &n.expected, &n.seen); err != nil {
			return fmt.Errorf("completeness: %w", err)
		}
		get(network, start).add(side, outcome, n)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("completeness: %w", err)
	}
	return nil
}

// loadMatched counts, per network of a party, the exchanges both feeds
// carried, and per network whose copy is not the counted one, its copies
// that another card counts.
func loadMatched(ctx context.Context, conn driver.Conn, q Query, get func(string, time.Time) *completenessCounts) error {
	where, args := q.timeFilter("requested_at")
	rows, err := conn.Query(ctx, `SELECT network, `+periodExprs[q.Granularity]+`(requested_at) AS period,
       count(), toUInt64(countIf(network != counted_network))
FROM exchanges
ARRAY JOIN networks AS network
WHERE `+where+` AND length(networks) > 1
GROUP BY network, period`, args...)
	if err != nil {
		return fmt.Errorf("completeness matched: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var network string
		var start time.Time
		var matched, elsewhere uint64
		if err := rows.Scan(&network, &start, &matched, &elsewhere); err != nil {
			return fmt.Errorf("completeness matched: %w", err)
		}
		c := get(network, start)
		c.matched, c.elsewhere = matched, elsewhere
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("completeness matched: %w", err)
	}
	return nil
}

// loadOneSided counts the exchanges each network's feed lacked and lists
// the first EvidenceLimit of them per period, oldest first.
func loadOneSided(ctx context.Context, conn driver.Conn, q Query, get func(string, time.Time) *completenessCounts) error {
	where, args := q.timeFilter("requested_at")
	period := periodExprs[q.Granularity] + "(requested_at)"
	var totals []struct {
		network string
		start   time.Time
		n       uint64
	}
	rows, err := conn.Query(ctx, `SELECT missing_network, `+period+` AS period, count()
FROM exchanges_one_sided
WHERE `+where+`
GROUP BY missing_network, period`, args...)
	if err != nil {
		return fmt.Errorf("completeness one-sided: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var t struct {
			network string
			start   time.Time
			n       uint64
		}
		if err := rows.Scan(&t.network, &t.start, &t.n); err != nil {
			return fmt.Errorf("completeness one-sided: %w", err)
		}
		totals = append(totals, t)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("completeness one-sided: %w", err)
	}
	for _, t := range totals {
		get(t.network, t.start).missing = t.n
	}
	return listOneSided(ctx, conn, q, get)
}

func listOneSided(ctx context.Context, conn driver.Conn, q Query, get func(string, time.Time) *completenessCounts) error {
	where, args := q.timeFilter("requested_at")
	rows, err := conn.Query(ctx, `SELECT missing_network, `+periodExprs[q.Granularity]+`(requested_at) AS period, toString(outcome_id),
       request_id, request_kind, requester_org, responder_org, seen_network, outcome, exception_code, requested_at_ms
FROM exchanges_one_sided
WHERE `+where+`
ORDER BY missing_network, period, requested_at_ms, request_id
LIMIT `+fmt.Sprint(q.Params.EvidenceLimit)+` BY missing_network, period`, args...)
	if err != nil {
		return fmt.Errorf("completeness one-sided list: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var start time.Time
		x := &hinscorev1.OneSidedExchange{}
		if err := rows.Scan(&x.MissingNetwork, &start, &x.OutcomeId, &x.RequestId, &x.RequestKind, &x.RequesterOrg, &x.ResponderOrg,
			&x.SeenNetwork, &x.Outcome, &x.ExceptionCode, &x.RequestedAtMs); err != nil {
			return fmt.Errorf("completeness one-sided list: %w", err)
		}
		c := get(x.MissingNetwork, start)
		c.chains = append(c.chains, x)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("completeness one-sided list: %w", err)
	}
	return nil
}

// countedElsewhere reports whether the scan holds a copy of a
// cross-network exchange that does not count for its own feed's network
// (exchange_copies: another network's copy stands for it, or it counts
// for the responder's network whose feed lacked it). outcomes_daily counts
// every copy under its own feed's network, so such a scan reads the
// outcomes_once view instead, and both sources keep giving the same cards.
func countedElsewhere(ctx context.Context, conn driver.Conn, q Query) (bool, error) {
	where, args := q.timeFilter("requested_at")
	var n uint64
	if err := conn.QueryRow(ctx, `SELECT count() FROM exchange_copies WHERE counts_for != network AND `+where, args...).Scan(&n); err != nil {
		return false, fmt.Errorf("copies counted elsewhere: %w", err)
	}
	return n > 0, nil
}

// completenessHeader are the last columns of a network's CSV (scorecard/4).
var completenessHeader = []string{"completeness", "completeness_group", "completeness_expected", "completeness_seen", "lacks_own_refusals", "one_sided_missing"}

// completenessCSV is the network row's completeness columns (scorecard/4);
// nil gives as many empty cells, for the entity rows.
func completenessCSV(fc *hinscorev1.FeedCompleteness) []string {
	if fc == nil {
		return []string{"", "", "", "", "", ""}
	}
	return []string{f6(fc.GetScore()), fc.GetScoreGroup(), fmt.Sprint(fc.GetOverall().GetTotal()), fmt.Sprint(fc.GetOverall().GetCount()),
		strconv.FormatBool(fc.GetLacksOwnRefusals()), fmt.Sprint(fc.GetMissing())}
}

// printCompleteness prints, for each card, the feed's completeness: the
// score and its group, the counts, the flag and the one-sided exchanges.
func printCompleteness(w io.Writer, cards []*hinscorev1.Scorecard) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "network\tperiod\tcompleteness\tgroup\tseen/expected\town refusals seen\tlacks own refusals\tmatched\tone-sided missing\t")
	for _, c := range cards {
		fc := c.GetCompleteness()
		o, r := fc.GetOverall(), fc.GetOwnRefusals()
		fmt.Fprintf(tw, "%s\t%s\t%.4f\t%s\t%d/%d\t%d/%d\t%t\t%d\t%d\t\n", c.GetNetwork(), c.GetPeriod(), fc.GetScore(), fc.GetScoreGroup(),
			o.GetCount(), o.GetTotal(), r.GetCount(), r.GetTotal(), fc.GetLacksOwnRefusals(), fc.GetMatched(), fc.GetMissing())
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintln(w, "completeness: "+completenessRule)
	return err
}

// completenessTmpl is the page's section "Feed completeness".
const completenessTmpl = `{{define "completeness"}}<h2>Feed completeness</h2>
<table class="small"><tr><th class="l">score</th><th class="l">group</th><th>seen / expected</th><th>95% interval</th>{{range .Completeness.Groups}}<th>{{.Group}}</th>{{end}}<th>own refusals seen</th><th>other answers seen</th><th>z</th><th>matched</th><th>counted on the other card</th><th>one-sided, missing here</th></tr>
<tr><td class="l">{{printf "%.4f" .Completeness.Score}}{{if .Completeness.LacksOwnRefusals}} <span class="flag">lacks its own refusals</span>{{end}}</td><td class="l">{{.Completeness.ScoreGroup}}</td><td>{{.Completeness.Overall.Count}} / {{.Completeness.Overall.Total}}</td><td>{{ci .Completeness.Overall}}</td>
{{range .Completeness.Groups}}<td>{{.Seen.Count}}/{{.Seen.Total}}</td>{{end}}<td>{{.Completeness.OwnRefusals.Count}}/{{.Completeness.OwnRefusals.Total}}</td><td>{{.Completeness.OwnOther.Count}}/{{.Completeness.OwnOther.Total}}</td><td>{{printf "%.2f" .Completeness.RefusalZ}}</td><td>{{.Completeness.Matched}}</td><td>{{.Completeness.CountedElsewhere}}</td><td>{{.Completeness.Missing}}</td></tr></table>
{{if .Completeness.MissingChains}}<table class="small"><tr><th class="l">request id</th><th class="l">outcome id (the other copy)</th><th class="l">requester</th><th class="l">responder</th><th class="l">seen by</th><th class="l">outcome</th><th>requested</th></tr>
{{range .Completeness.MissingChains}}<tr><td class="l"><code>{{.RequestId}}</code></td><td class="l"><code>{{.OutcomeId}}</code></td><td class="l">{{.RequesterOrg}}</td><td class="l">{{.ResponderOrg}}</td><td class="l">{{.SeenNetwork}}</td><td class="l">{{.Outcome}} {{.ExceptionCode}}</td><td>{{time .RequestedAtMs}}</td></tr>{{end}}</table>{{end}}
<p class="muted">{{.Completeness.Rule}}.</p>{{end}}`
