package scorecard

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
	"github.com/hinscore/hinscore/proto/outcomeclass"
)

// Query selects the scorecards to build.
type Query struct {
	// Granularity is day, week or month.
	Granularity string
	// Network restricts to one network; "" means every network.
	Network string
	// From and To bound requested_at to [From, To); zero means unbounded.
	From, To time.Time
}

func (q Query) validate() error {
	var errs []error
	if _, ok := periodExprs[q.Granularity]; !ok {
		errs = append(errs, fmt.Errorf("Granularity: %q: want day, week or month", q.Granularity))
	}
	if !q.From.IsZero() && !q.To.IsZero() && !q.From.Before(q.To) {
		errs = append(errs, fmt.Errorf("To: %s is not after From %s", q.To, q.From))
	}
	return errors.Join(errs...)
}

// periodExprs maps a granularity to the ClickHouse expression for the start
// of its period. These functions exist on 18.16 and evaluate in the
// column's time zone (UTC). Only these fixed strings ever reach the SQL.
var periodExprs = map[string]string{
	Day:   "toDate(requested_at)",
	Week:  "toMonday(requested_at)",
	Month: "toStartOfMonth(requested_at)",
}

// The classes whose time to fulfil is measured.
const fulfilledClasses = "('fulfilled', 'fulfilled_late', 'partial')"

// where returns the filter of q as fixed SQL with ? placeholders and the
// values to bind.
func (q Query) where() (string, []any) {
	conds := []string{"1 = 1"}
	var args []any
	if q.Network != "" {
		conds = append(conds, "network = ?")
		args = append(args, q.Network)
	}
	if !q.From.IsZero() {
		conds = append(conds, "requested_at_ms >= ?")
		args = append(args, q.From.UnixMilli())
	}
	if !q.To.IsZero() {
		conds = append(conds, "requested_at_ms < ?")
		args = append(args, q.To.UnixMilli())
	}
	return strings.Join(conds, " AND "), args
}

type cardKey struct {
	network string
	start   time.Time
}

// Build reads the outcomes view and returns one scorecard per network and
// period that has outcomes, ordered by network then period. All aggregation
// happens in ClickHouse: one query groups by class and request kind, one
// computes the time-to-fulfil quantiles.
func Build(ctx context.Context, conn driver.Conn, q Query, now time.Time) ([]*hinscorev1.Scorecard, error) {
	if err := q.validate(); err != nil {
		return nil, fmt.Errorf("scorecard.Build: %w", err)
	}
	period := periodExprs[q.Granularity]
	where, args := q.where()

	cards := map[cardKey]*hinscorev1.Scorecard{}
	counts := map[cardKey]map[string]uint64{}
	kinds := map[cardKey]map[string]kindVolume{}
	lateSuspect := map[cardKey]uint64{}
	card := func(network string, start time.Time) (cardKey, error) {
		start = time.Date(start.Year(), start.Month(), start.Day(), 0, 0, 0, 0, time.UTC)
		k := cardKey{network, start}
		if cards[k] != nil {
			return k, nil
		}
		label, end, err := Period(q.Granularity, start)
		if err != nil {
			return k, err
		}
		cards[k] = &hinscorev1.Scorecard{
			Network: network, Period: label,
			PeriodStartMs: start.UnixMilli(), PeriodEndMs: end.UnixMilli(),
			FormulaVersion: FormulaVersion, GeneratedAtMs: now.UnixMilli(),
		}
		counts[k], kinds[k] = map[string]uint64{}, map[string]kindVolume{}
		return k, nil
	}

	countSQL := `SELECT network, ` + period + ` AS period, request_kind, outcome, count() AS n,
       countIf(outcome IN ` + fulfilledClasses + ` AND ifNull(ttf_ms, 0) > ` + fmt.Sprint(SuspectSLAMultiple) + ` * sla_ms) AS very_late,
       min(sla_ms) AS sla_min, max(sla_ms) AS sla_max
FROM outcomes
WHERE ` + where + `
GROUP BY network, period, request_kind, outcome`
	rows, err := conn.Query(ctx, countSQL, args...)
	if err != nil {
		return nil, fmt.Errorf("scorecard.Build: counts: %w", err)
	}
	for rows.Next() {
		var (
			network, kind, outcome string
			start                  time.Time
			n, veryLate            uint64
			slaMin, slaMax         uint64
		)
		if err := rows.Scan(&network, &start, &kind, &outcome, &n, &veryLate, &slaMin, &slaMax); err != nil {
			rows.Close()
			return nil, fmt.Errorf("scorecard.Build: counts: %w", err)
		}
		k, err := card(network, start)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("scorecard.Build: %w", err)
		}
		counts[k][outcome] += n
		if outcome != outcomeclass.Name(hinscorev1.OutcomeClass_OUTCOME_CLASS_ORPHAN) {
			kinds[k][kind] = kinds[k][kind].add(n, slaMin, slaMax)
			lateSuspect[k] += veryLate
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("scorecard.Build: counts: %w", err)
	}

	latencySQL := `SELECT network, ` + period + ` AS period, count() AS n,
       quantilesExact(0.5, 0.9, 0.99)(ifNull(ttf_ms, 0)) AS q,
       countIf(ifNull(ttf_ms, 0) <= sla_ms) AS within_sla
FROM outcomes
WHERE ` + where + ` AND outcome IN ` + fulfilledClasses + ` AND ttf_ms IS NOT NULL
GROUP BY network, period`
	rows, err = conn.Query(ctx, latencySQL, args...)
	if err != nil {
		return nil, fmt.Errorf("scorecard.Build: latency: %w", err)
	}
	latency := map[cardKey]*hinscorev1.Latency{}
	for rows.Next() {
		var (
			network   string
			start     time.Time
			n, within uint64
			qs        []uint64
		)
		if err := rows.Scan(&network, &start, &n, &qs, &within); err != nil {
			rows.Close()
			return nil, fmt.Errorf("scorecard.Build: latency: %w", err)
		}
		if len(qs) != 3 {
			rows.Close()
			return nil, fmt.Errorf("scorecard.Build: latency: %d quantiles, want 3", len(qs))
		}
		k, err := card(network, start)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("scorecard.Build: %w", err)
		}
		latency[k] = &hinscorev1.Latency{Count: n, P50Ms: qs[0], P90Ms: qs[1], P99Ms: qs[2], WithinSla: NewRate(within, n)}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("scorecard.Build: latency: %w", err)
	}

	keys := make([]cardKey, 0, len(cards))
	for k := range cards {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b cardKey) int {
		if c := strings.Compare(a.network, b.network); c != 0 {
			return c
		}
		return a.start.Compare(b.start)
	})
	out := make([]*hinscorev1.Scorecard, 0, len(keys))
	for _, k := range keys {
		c := cards[k]
		fill(c, counts[k], kinds[k], lateSuspect[k])
		c.TimeToFulfil = latency[k]
		if c.TimeToFulfil == nil {
			c.TimeToFulfil = &hinscorev1.Latency{WithinSla: NewRate(0, 0)}
		}
		out = append(out, c)
	}
	return out, nil
}

// kindVolume is one request kind's count and the SLA range applied to it.
type kindVolume struct {
	requests       uint64
	slaMin, slaMax uint64
}

func (v kindVolume) add(n, slaMin, slaMax uint64) kindVolume {
	if v.requests == 0 || slaMin < v.slaMin {
		v.slaMin = slaMin
	}
	v.slaMax = max(v.slaMax, slaMax)
	v.requests += n
	return v
}

// fill computes the request total, volumes, class rates and suspect rate
// of one card from its per-class and per-kind counts.
func fill(c *hinscorev1.Scorecard, counts map[string]uint64, kinds map[string]kindVolume, veryLate uint64) {
	orphan := outcomeclass.Name(hinscorev1.OutcomeClass_OUTCOME_CLASS_ORPHAN)
	var requests uint64
	for class, n := range counts {
		if class != orphan {
			requests += n
		}
	}
	c.Requests = requests
	kindNames := make([]string, 0, len(kinds))
	for k := range kinds {
		kindNames = append(kindNames, k)
	}
	slices.Sort(kindNames)
	for _, k := range kindNames {
		v := kinds[k]
		c.Volumes = append(c.Volumes, &hinscorev1.KindVolume{RequestKind: k, Requests: v.requests, SlaMinMs: v.slaMin, SlaMaxMs: v.slaMax})
	}
	var suspect uint64
	for _, class := range outcomeclass.All {
		name := outcomeclass.Name(class)
		n := counts[name]
		total := requests
		if name == orphan {
			// Orphans are answers without a request: their share is of
			// everything linked, requests and orphans together.
			total = requests + n
		}
		c.Outcomes = append(c.Outcomes, &hinscorev1.ClassRate{Outcome: name, Rate: NewRate(n, total)})
		if outcomeclass.Suspect(class) {
			suspect += n
		}
	}
	c.Suspect = NewRate(suspect+veryLate, requests)
}
