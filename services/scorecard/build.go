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
	"github.com/hinscore/hinscore/services/lib/chstore"
	"github.com/hinscore/hinscore/services/lib/domain/purpose"
)

// Sources of the additive figures and the time-to-fulfil quantiles.
const (
	// SourceView reads the deduplicated outcomes view: exact as of now.
	SourceView = "view"
	// SourceRollup reads the outcomes_daily rollup (exact as of its last
	// rebuild, much faster over long periods), the time to acknowledge too
	// unless a month of the rollup predates its columns (rollupHasTTA); the
	// evidence chains come from exchange_outcomes.
	SourceRollup = "rollup"
)

// Query selects the scorecards to build.
type Query struct {
	// Granularity is day, week or month.
	Granularity string
	// Network restricts the returned cards to one network; "" means every
	// network. Peers are always every network.
	Network string
	// From and To select the periods: a card for every period that starts
	// at or after the start of the period containing From and before To.
	// Periods are always whole. Zero means unbounded.
	From, To time.Time
	// Source is SourceView (default) or SourceRollup.
	Source string
	// Params are the formula parameters; the zero value means
	// DefaultParams().
	Params Params
	// ClosedBefore marks as closed every period that ends at or before it
	// (the service passes its event-time watermark); zero marks none.
	ClosedBefore time.Time
	// StoreChecks writes what the exception checks found for each citing
	// chain to exception_checks (the command and the service store them
	// once per run, before building every granularity).
	StoreChecks bool
}

func (q Query) validate() error {
	var errs []error
	if _, ok := periodExprs[q.Granularity]; !ok {
		errs = append(errs, fmt.Errorf("Granularity: %q: want day, week or month", q.Granularity))
	}
	if !q.From.IsZero() && !q.To.IsZero() && !q.From.Before(q.To) {
		errs = append(errs, fmt.Errorf("To: %s is not after From %s", q.To, q.From))
	}
	if q.Source != "" && q.Source != SourceView && q.Source != SourceRollup {
		errs = append(errs, fmt.Errorf("Source: %q: want view or rollup", q.Source))
	}
	if q.Params != (Params{}) {
		if err := q.Params.validate(); err != nil {
			errs = append(errs, fmt.Errorf("Params: %w", err))
		}
	}
	return errors.Join(errs...)
}

// periodExprs maps a granularity to the ClickHouse function giving the
// start of its period. These exist on 18.16 and evaluate in the column's
// time zone (UTC). Only these fixed strings ever reach the SQL.
var periodExprs = map[string]string{
	Day:   "toDate",
	Week:  "toMonday",
	Month: "toStartOfMonth",
}

// The classes whose time to fulfil is measured.
const fulfilledClasses = "('fulfilled', 'fulfilled_late', 'partial')"

// The classes whose late fulfilment is suspect. partial is not among them
// because the outcomes_daily rollup does not count it, and both sources must
// give the same numbers.
const veryLateClasses = "('fulfilled', 'fulfilled_late')"

// Entity levels.
const (
	LevelNetwork   = "network"
	LevelResponder = "responder"
	LevelDeveloper = "developer"
)

// entityKey names one entity within a period.
type entityKey struct {
	network string
	level   string
	id      string
}

// figures are the additive counts of one entity in one period.
type figures struct {
	requests uint64
	orphans  uint64
	classes  map[string]uint64
	kinds    map[string]kindVolume
	codes    map[codeKey]uint64
	veryLate uint64
	answered uint64 // fulfilled classes with a time to fulfil
	within   uint64
	ids      map[string]bool
	// purposes are the same figures by exchange purpose (the figures of a
	// purpose have none of their own).
	purposes map[string]*figures
}

type codeKey struct{ outcome, code string }

func newFigures() *figures {
	return &figures{classes: map[string]uint64{}, kinds: map[string]kindVolume{}, codes: map[codeKey]uint64{}, ids: map[string]bool{},
		purposes: map[string]*figures{}}
}

// countRow is one group of the counts query.
type countRow struct {
	network, org, kind, outcome, code, purpose string
	n, veryLate, answered, within, slaMin      uint64
	slaMax                                     uint64
}

// add counts a group of requests (an orphan group counts as orphans).
func (f *figures) add(r countRow) {
	if r.outcome == outcomeclass.Name(hinscorev1.OutcomeClass_OUTCOME_CLASS_ORPHAN) {
		f.orphans += r.n
		return
	}
	f.requests += r.n
	f.classes[r.outcome] += r.n
	f.kinds[r.kind] = f.kinds[r.kind].add(r.n, r.slaMin, r.slaMax)
	f.veryLate += r.veryLate
	if strings.Contains(fulfilledClasses, "'"+r.outcome+"'") {
		f.answered += r.answered
		f.within += r.within
	}
	if r.code != "" && (r.outcome == "refused_exception" || r.outcome == "redirected") {
		f.codes[codeKey{r.outcome, r.code}] += r.n
	}
}

// addPurpose counts a group of requests in the figures and in those of its
// purpose; a purpose the data leaves empty (a rollup month from before
// purposes) is unknown, like one never sent.
func (f *figures) addPurpose(r countRow) {
	f.add(r)
	p := r.purpose
	if p == "" {
		p = string(purpose.Unknown)
	}
	pf := f.purposes[p]
	if pf == nil {
		pf = &figures{classes: map[string]uint64{}, kinds: map[string]kindVolume{}, codes: map[codeKey]uint64{}}
		f.purposes[p] = pf
	}
	pf.add(r)
}

func (f *figures) suspect() uint64 {
	var n uint64
	for _, class := range outcomeclass.All {
		if outcomeclass.Suspect(class) {
			n += f.classes[outcomeclass.Name(class)]
		}
	}
	return n + f.veryLate
}

// quantiles are p50/p90/p99, the count they were computed over and, for
// the time to acknowledge, how many of those were within their SLA (the time
// to fulfil keeps that count in figures, additive from the counts query).
type quantiles struct {
	n      uint64
	qs     [3]uint64
	within uint64
}

// world is everything read from ClickHouse for a range of periods.
type world struct {
	dir  directory
	figs map[time.Time]map[entityKey]*figures
	ttf  map[time.Time]map[entityKey]quantiles
	tta  map[time.Time]map[entityKey]quantiles
	// pairs are the requester-responder counts by period and network
	// (unequal treatment).
	pairs   map[time.Time]map[string][]pairCount
	periods []time.Time // every period start of the scan range, ascending
}

// Build reads the outcomes and returns one scorecard per network and period
// that has outcomes, ordered by network then period, each with its
// responder organisations and developers, their ranking against every
// network's peers, flags and the request chains behind them. Aggregation
// happens in ClickHouse; the earlier periods needed by the trend and the
// k-of-n flags are read in the same queries.
func Build(ctx context.Context, conn driver.Conn, q Query, now time.Time) ([]*hinscorev1.Scorecard, error) {
	return build(ctx, conn, q, now, nil)
}

// build is Build with the exception checks already run (runChecks; nil:
// run them here, and store them when q.StoreChecks), so that a run of
// several granularities checks each month once.
func build(ctx context.Context, conn driver.Conn, q Query, now time.Time, checks *sharedChecks) ([]*hinscorev1.Scorecard, error) {
	if err := q.validate(); err != nil {
		return nil, fmt.Errorf("scorecard.Build: %w", err)
	}
	if q.Params == (Params{}) {
		q.Params = DefaultParams()
	}
	if q.Source == "" {
		q.Source = SourceView
	}
	if q.Source == SourceRollup {
		copies, err := countedElsewhere(ctx, conn, q)
		if err != nil {
			return nil, fmt.Errorf("scorecard.Build: %w", err)
		}
		if copies {
			// The rollup counts every network's copy of an exchange.
			q.Source = SourceView
		}
	}
	w, err := load(ctx, conn, q)
	if err != nil {
		return nil, fmt.Errorf("scorecard.Build: %w", err)
	}
	cards := assemble(w, q, now)
	if err := attachEvidence(ctx, conn, q, w, cards); err != nil {
		return nil, fmt.Errorf("scorecard.Build: %w", err)
	}
	if err := attachDataQuality(ctx, conn, q, cards); err != nil {
		return nil, fmt.Errorf("scorecard.Build: %w", err)
	}
	if err := attachFeedHealth(ctx, conn, q, cards, now); err != nil {
		return nil, fmt.Errorf("scorecard.Build: %w", err)
	}
	if err := attachCompleteness(ctx, conn, q, cards); err != nil {
		return nil, fmt.Errorf("scorecard.Build: %w", err)
	}
	if checks == nil {
		found, err := checkExceptions(ctx, conn, q, w.dir, now)
		if err != nil {
			return nil, fmt.Errorf("scorecard.Build: %w", err)
		}
		if q.StoreChecks {
			if err := storeChecks(ctx, conn, found, now); err != nil {
				return nil, fmt.Errorf("scorecard.Build: %w", err)
			}
		}
		checks = &sharedChecks{found}
	}
	attachExceptionChecks(q, cards, checks.checks)
	return cards, nil
}

// scanRange returns the requested_at range to read: whole periods, reaching
// back FlagN-1 periods before the first card for the trend and the flags.
func (q Query) scanRange() (from, to time.Time) {
	if !q.From.IsZero() {
		from = PeriodStart(q.Granularity, q.From)
		for range q.Params.FlagN - 1 {
			from = prevPeriod(q.Granularity, from)
		}
	}
	if !q.To.IsZero() {
		to = PeriodStart(q.Granularity, q.To.Add(-time.Millisecond))
		_, to, _ = Period(q.Granularity, to)
	}
	return from, to
}

// wantPeriod reports whether a card is returned for the period at start.
func (q Query) wantPeriod(start time.Time) bool {
	if !q.From.IsZero() && start.Before(PeriodStart(q.Granularity, q.From)) {
		return false
	}
	return q.To.IsZero() || start.Before(q.To)
}

func load(ctx context.Context, conn driver.Conn, q Query) (*world, error) {
	dir, err := loadDirectory(ctx, conn)
	if err != nil {
		return nil, err
	}
	w := &world{dir: dir, figs: map[time.Time]map[entityKey]*figures{}, ttf: map[time.Time]map[entityKey]quantiles{}, tta: map[time.Time]map[entityKey]quantiles{}}
	if err := w.loadCounts(ctx, conn, q); err != nil {
		return nil, err
	}
	if err := w.loadQuantiles(ctx, conn, q); err != nil {
		return nil, err
	}
	if err := w.loadPairs(ctx, conn, q); err != nil {
		return nil, err
	}
	// Every calendar period between the first and the last seen, so that a
	// period without requests counts as "not flagged" in k of n.
	var seen []time.Time
	for p := range w.figs {
		seen = append(seen, p)
	}
	slices.SortFunc(seen, func(a, b time.Time) int { return a.Compare(b) })
	if len(seen) > 0 {
		for p := seen[0]; !p.After(seen[len(seen)-1]); _, p, _ = Period(q.Granularity, p) {
			w.periods = append(w.periods, p)
		}
	}
	return w, nil
}

// timeFilter returns the requested_at (or day) bounds of the scan as SQL
// with ? placeholders; col is requested_at or day.
func (q Query) timeFilter(col string) (string, []any) {
	from, to := q.scanRange()
	conds := []string{"1 = 1"}
	var args []any
	conv := "toDateTime(?, 'UTC')"
	if col == "day" {
		conv = "toDate(toDateTime(?, 'UTC'))"
	}
	if !from.IsZero() {
		conds = append(conds, col+" >= "+conv)
		args = append(args, uint32(from.Unix()))
	}
	if !to.IsZero() {
		conds = append(conds, col+" < "+conv)
		args = append(args, uint32(to.Unix()))
	}
	return strings.Join(conds, " AND "), args
}

func (w *world) loadCounts(ctx context.Context, conn driver.Conn, q Query) error {
	sql, args, err := q.countsSQL(ctx, conn)
	if err != nil {
		return err
	}
	rows, err := conn.Query(ctx, sql, args...)
	if err != nil {
		return fmt.Errorf("counts: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var r countRow
		var start time.Time
		if err := rows.Scan(&r.network, &start, &r.org, &r.kind, &r.outcome, &r.code, &r.purpose,
			&r.n, &r.veryLate, &r.answered, &r.within, &r.slaMin, &r.slaMax); err != nil {
			return fmt.Errorf("counts: %w", err)
		}
		start = midnight(start)
		byEntity := w.figs[start]
		if byEntity == nil {
			byEntity = map[entityKey]*figures{}
			w.figs[start] = byEntity
		}
		entry := w.dir.lookup(r.org)
		for _, k := range []entityKey{
			{r.network, LevelNetwork, ""},
			{r.network, LevelResponder, entry.orgID},
			{r.network, LevelDeveloper, entry.developer},
		} {
			f := byEntity[k]
			if f == nil {
				f = newFigures()
				byEntity[k] = f
			}
			f.ids[r.org] = true
			f.addPurpose(r)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("counts: %w", err)
	}
	return nil
}

// countsSQL is the counts query: from outcomes_daily when the source is
// the rollup and every month of the scan has its purposes
// (chstore.RollupFormatPurpose), else from the outcomes view. Both group by
// the responder identifier (chstore.ResponderSQL), which the rollup stores
// as its responder_org.
func (q Query) countsSQL(ctx context.Context, conn driver.Conn) (string, []any, error) {
	period := periodExprs[q.Granularity]
	if q.Source == SourceRollup {
		where, args := q.timeFilter("day")
		ok, err := rollupHas(ctx, conn, where, args, purposeColumns, chstore.RollupFormatPurpose)
		if err != nil {
			return "", nil, err
		}
		if ok {
			return `SELECT network, ` + period + `(day) AS period, responder_org, request_kind, outcome, exception_code, purpose,
       countMerge(requests), sumMerge(very_late), sumMerge(answered), sumMerge(within_sla), minMerge(sla_min), maxMerge(sla_max)
FROM outcomes_daily
WHERE ` + where + `
GROUP BY network, period, responder_org, request_kind, outcome, exception_code, purpose`, args, nil
		}
	}
	where, args := q.timeFilter("requested_at")
	return `SELECT network, ` + period + `(requested_at) AS period, ` + chstore.ResponderSQL + ` AS responder, request_kind, outcome,
       exception_code, purpose,
       count(),
       toUInt64(countIf(outcome IN ` + veryLateClasses + ` AND ifNull(ttf_ms, 0) > ` + fmt.Sprint(SuspectSLAMultiple) + ` * sla_ms)),
       toUInt64(countIf(ttf_ms IS NOT NULL)),
       toUInt64(countIf(ttf_ms IS NOT NULL AND ifNull(ttf_ms, 0) <= sla_ms)),
       min(sla_ms), max(sla_ms)
FROM outcomes_once
WHERE ` + where + `
GROUP BY network, period, responder, request_kind, outcome, exception_code, purpose`, args, nil
}

// levelsSQL turns per-responder aggregate states (inner's columns
// network, period, responder and states) into one row per entity of
// every level: the directory gives each identifier its organisation and
// developer, and ARRAY JOIN repeats the (small) grouped rows once per level,
// so the outcomes are scanned once. The join sits in a subquery because
// 18.16 applies ARRAY JOIN before a JOIN of the same SELECT.
func levelsSQL(inner string, states []string, aggs []string) string {
	return `SELECT network, period, lk.1 AS level, lk.2 AS key, ` + strings.Join(aggs, ", ") + `
FROM
(
    SELECT network, period, responder, ` + strings.Join(states, ", ") + `, org_id, developer
    FROM (` + inner + `)
    ANY LEFT JOIN (SELECT identifier AS responder, org_id, developer FROM directory) USING responder
)
ARRAY JOIN [('network', ''), ('responder', if(org_id = '', responder, org_id)), ('developer', developer)] AS lk
GROUP BY network, period, level, key`
}

func (w *world) loadQuantiles(ctx context.Context, conn driver.Conn, q Query) error {
	period := periodExprs[q.Granularity]
	levels := "(0.5, 0.9, 0.99)"
	where, args := q.timeFilter("requested_at")
	ttaInner := `SELECT network, ` + period + `(requested_at) AS period, ` + chstore.ResponderSQL + ` AS responder,
       quantilesExactStateIf` + levels + `(ifNull(tta_ms, 0), tta_ms IS NOT NULL) AS a, countIf(tta_ms IS NOT NULL) AS an,
       countIf(tta_ms IS NOT NULL AND ifNull(tta_ms, 0) <= sla_ms) AS aw,
       quantilesExactStateIf` + levels + `(ifNull(ttf_ms, 0), outcome IN ` + fulfilledClasses + ` AND ttf_ms IS NOT NULL) AS f,
       countIf(outcome IN ` + fulfilledClasses + ` AND ttf_ms IS NOT NULL) AS fn
FROM outcomes_once
WHERE ` + where + ` AND outcome != 'orphan'
GROUP BY network, period, responder`
	if q.Source == SourceView {
		// One scan of the view for both.
		if err := w.scanQuantiles(ctx, conn, ttaInner, args, true, true); err != nil {
			return err
		}
		return nil
	}
	dayWhere, dayArgs := q.timeFilter("day")
	rollupTTA, err := rollupHas(ctx, conn, dayWhere, dayArgs, ttaColumns, chstore.RollupFormatTTA)
	if err != nil {
		return err
	}
	if rollupTTA {
		ttaRollup := `SELECT network, ` + period + `(day) AS period, responder_org AS responder,
       quantilesExactMergeState` + levels + `(tta) AS a, sumMerge(acknowledged) AS an, sumMerge(acknowledged_within_sla) AS aw
FROM outcomes_daily
WHERE ` + dayWhere + ` AND outcome != 'orphan'
GROUP BY network, period, responder`
		if err := w.scanQuantiles(ctx, conn, ttaRollup, dayArgs, true, false); err != nil {
			return err
		}
	}
	ttaOnly := `SELECT network, ` + period + `(requested_at) AS period, ` + chstore.ResponderSQL + ` AS responder,
       quantilesExactState` + levels + `(ifNull(tta_ms, 0)) AS a, count() AS an, countIf(ifNull(tta_ms, 0) <= sla_ms) AS aw
FROM outcomes_once
WHERE ` + where + ` AND outcome != 'orphan' AND tta_ms IS NOT NULL
GROUP BY network, period, responder`
	if !rollupTTA {
		if err := w.scanQuantiles(ctx, conn, ttaOnly, args, true, false); err != nil {
			return err
		}
	}
	ttfRollup := `SELECT network, ` + period + `(day) AS period, responder_org AS responder,
       quantilesExactMergeState` + levels + `(ttf) AS f, sumMerge(answered) AS fn
FROM outcomes_daily
WHERE ` + dayWhere + ` AND outcome IN ` + fulfilledClasses + `
GROUP BY network, period, responder`
	return w.scanQuantiles(ctx, conn, ttfRollup, dayArgs, false, true)
}

// rollupHas reports whether outcomes_daily can give figures of every
// month in dayWhere that need its columns (for the time to acknowledge:
// tta, a quantilesExact(0.5, 0.9, 0.99) state of tta_ms; acknowledged, a
// sum of requests with one; acknowledged_within_sla, a sum of those with
// tta_ms <= sla_ms; for the purposes: purpose) and a rebuild of at least
// format (chstore.RollupFormat) since they exist. Otherwise the rollup
// source reads those figures from the view, a scan of every outcome, rather
// than give a month's zeros.
// The columns of outcomes_daily the time to acknowledge and the purposes
// need (migrations 004, 005 and 007).
var (
	ttaColumns     = []string{"tta", "acknowledged", "acknowledged_within_sla", "rollup_format"}
	purposeColumns = []string{"purpose", "rollup_format"}
)

func rollupHas(ctx context.Context, conn driver.Conn, dayWhere string, dayArgs []any, columns []string, format uint32) (bool, error) {
	var n uint64
	if err := conn.QueryRow(ctx, `SELECT count() FROM system.columns
WHERE database = currentDatabase() AND table = 'outcomes_daily' AND name IN ?`, groupSet(columns)).Scan(&n); err != nil {
		return false, fmt.Errorf("rollup columns: %w", err)
	}
	if n != uint64(len(columns)) {
		return false, nil
	}
	// A month is swapped in whole, so one format per month.
	var stale uint64
	args := append(slices.Clone(dayArgs), format)
	if err := conn.QueryRow(ctx, `SELECT count() FROM
(
    SELECT toYYYYMM(day) AS month, maxMerge(rollup_format) AS format
    FROM outcomes_daily
    WHERE `+dayWhere+`
    GROUP BY month
)
WHERE format < ?`, args...).Scan(&stale); err != nil {
		return false, fmt.Errorf("rollup format: %w", err)
	}
	return stale == 0, nil
}

// scanQuantiles runs inner (grouped by network, period, responder_org with
// states a/an/aw and/or f/fn) through levelsSQL and stores the quantiles.
func (w *world) scanQuantiles(ctx context.Context, conn driver.Conn, inner string, args []any, withTTA, withTTF bool) error {
	levels := "(0.5, 0.9, 0.99)"
	var states, cols []string
	if withTTA {
		states = append(states, "a", "an", "aw")
		cols = append(cols, "quantilesExactMerge"+levels+"(a)", "sum(an)", "sum(aw)")
	}
	if withTTF {
		states = append(states, "f", "fn")
		cols = append(cols, "quantilesExactMerge"+levels+"(f)", "sum(fn)")
	}
	sql := levelsSQL(inner, states, cols)
	rows, err := conn.Query(ctx, sql, args...)
	if err != nil {
		return fmt.Errorf("quantiles: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			network, level, key string
			start               time.Time
			aq, fq              []uint64
			an, aw, fn          uint64
		)
		dest := []any{&network, &start, &level, &key}
		if withTTA {
			dest = append(dest, &aq, &an, &aw)
		}
		if withTTF {
			dest = append(dest, &fq, &fn)
		}
		if err := rows.Scan(dest...); err != nil {
			return fmt.Errorf("quantiles: %w", err)
		}
		start = midnight(start)
		k := entityKey{network, level, key}
		put := func(m map[time.Time]map[entityKey]quantiles, qs []uint64, n, within uint64) error {
			if n == 0 {
				return nil
			}
			if len(qs) != 3 {
				return fmt.Errorf("quantiles: %d values, want 3", len(qs))
			}
			if m[start] == nil {
				m[start] = map[entityKey]quantiles{}
			}
			m[start][k] = quantiles{n: n, qs: [3]uint64{qs[0], qs[1], qs[2]}, within: within}
			return nil
		}
		if withTTA {
			if err := put(w.tta, aq, an, aw); err != nil {
				return err
			}
		}
		if withTTF {
			if err := put(w.ttf, fq, fn, 0); err != nil {
				return err
			}
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("quantiles: %w", err)
	}
	return nil
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

func midnight(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}
