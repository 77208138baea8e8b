package scorecard

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
	"github.com/hinscore/hinscore/services/lib/chstore"
	"github.com/hinscore/hinscore/services/lib/domain/exceptionrule"
)

// checkedCodes are every code some rule checks.
func checkedCodes() []string {
	return codesOf(exceptionrule.ServingWhileCiting, exceptionrule.NoTimelyWrittenAnswer,
		exceptionrule.RedirectedWhileElectronic, exceptionrule.CitedUnequally)
}

// codesOf returns the codes of the rules with one of the conditions.
func codesOf(conditions ...string) []string {
	var out []string
	for _, r := range exceptionrule.Table() {
		if slices.Contains(conditions, r.Condition) {
			for _, c := range r.Codes {
				if !slices.Contains(out, c) {
					out = append(out, c)
				}
			}
		}
	}
	slices.Sort(out)
	return out
}

// servingWindow is the window either side of a citation the serving rule
// reads (0 without such a rule).
func servingWindow() time.Duration {
	var w time.Duration
	for _, r := range exceptionrule.Table() {
		if r.Condition == exceptionrule.ServingWhileCiting {
			w = max(w, r.WindowAround)
		}
	}
	return w
}

// sharedChecks are the exception checks of a run, shared by the builds of
// its granularities.
type sharedChecks struct{ checks []chainCheck }

// runChecks runs the exception checks once for a run's builds of every
// granularity over [from, to) (zero: unbounded) and stores them: the
// months a month card of that range reads reach furthest back (flag_n - 1
// months before) and forward, so they cover every granularity's cards.
func runChecks(ctx context.Context, conn driver.Conn, from, to, now time.Time) (*sharedChecks, error) {
	dir, err := loadDirectory(ctx, conn)
	if err != nil {
		return nil, err
	}
	q := Query{Granularity: Month, From: from, To: to, Params: DefaultParams()}
	checks, err := checkExceptions(ctx, conn, q, dir, now)
	if err != nil {
		return nil, err
	}
	if err := storeChecks(ctx, conn, checks, now); err != nil {
		return nil, err
	}
	return &sharedChecks{checks}, nil
}

// checkExceptions runs the rules over every calendar month of the scan
// range in which a chain cites a checked code, one month at a time, and
// returns what each rule found for each citing chain.
func checkExceptions(ctx context.Context, conn driver.Conn, q Query, dir directory, now time.Time) ([]chainCheck, error) {
	where, args := q.timeFilter("requested_at")
	// exchange_outcomes without FINAL here and in the prefilters below: a
	// month, bucket or responder that an earlier version cited is read for
	// nothing, and the exact reads decide; FINAL is the expensive part.
	rows, err := conn.Query(ctx, `SELECT DISTINCT toStartOfMonth(requested_at) AS month FROM exchange_outcomes
WHERE `+where+` AND exception_code IN ? ORDER BY month`, append(args, groupSet(checkedCodes()))...)
	if err != nil {
		return nil, fmt.Errorf("exception checks: %w", err)
	}
	var months []time.Time
	for rows.Next() {
		var m time.Time
		if err := rows.Scan(&m); err != nil {
			rows.Close()
			return nil, fmt.Errorf("exception checks: %w", err)
		}
		months = append(months, midnight(m))
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("exception checks: %w", err)
	}
	var out []chainCheck
	for _, m := range months {
		_, end, _ := Period(Month, m)
		in, err := loadCheckInput(ctx, conn, dir, m, end)
		if err != nil {
			return nil, fmt.Errorf("exception checks: %w", err)
		}
		out = append(out, checkChains(in, m, end, now)...)
	}
	return out, nil
}

// chainColumns are the columns scanChains reads.
const chainColumns = `toString(outcome_id), request_id, network, ` + chstore.ResponderSQL + ` AS responder,
    requester_org, request_kind, purpose, outcome, exception_code, requested_at_ms, answered_at_ms, sla_ms, untimed`

// loadCheckInput reads what the rules need for the month [from, to), each
// cross-network exchange once (outcomes_once, as the cards count it), in
// ClickHouse as far as it can: the citing chains one by one; of the other
// chains, only those in the window buckets around a 171.205 citation of
// the same responder (the W-wide bucket of a citation and its two
// neighbours hold every chain within ±W), and for the monthly rules the
// citing responders' chains counted by requester, kind, purpose, code and
// fulfilment, so that a month of millions of chains is not read row by row.
func loadCheckInput(ctx context.Context, conn driver.Conn, dir directory, from, to time.Time) (checkInput, error) {
	var in checkInput
	month := `requested_at >= toDateTime(?, 'UTC') AND requested_at < toDateTime(?, 'UTC')`
	bounds := []any{uint32(from.Unix()), uint32(to.Unix())}
	var err error
	in.citing, err = scanChains(ctx, conn, dir, `SELECT `+chainColumns+` FROM outcomes_once WHERE `+month+` AND outcome != 'orphan' AND exception_code IN ?`,
		append(bounds, groupSet(checkedCodes()))...)
	if err != nil {
		return in, err
	}
	if w := servingWindow(); w > 0 {
		bucket := fmt.Sprintf("intDiv(requested_at_ms, %d)", w.Milliseconds())
		in.near, err = scanChains(ctx, conn, dir, `SELECT `+chainColumns+` FROM outcomes_once
WHERE requested_at >= toDateTime(?, 'UTC') AND requested_at < toDateTime(?, 'UTC') AND outcome != 'orphan'
  AND (`+chstore.ResponderSQL+`, `+bucket+`) IN
    (SELECT r, arrayJoin([b - 1, b, b + 1]) FROM
        (SELECT `+chstore.ResponderSQL+` AS r, `+bucket+` AS b FROM exchange_outcomes WHERE `+month+` AND exception_code IN ?))`,
			uint32(from.Add(-w).Unix()), uint32(to.Add(w+time.Second).Unix()), bounds[0], bounds[1],
			groupSet(codesOf(exceptionrule.ServingWhileCiting)))
		if err != nil {
			return in, err
		}
	}
	in.groups, err = loadGroups(ctx, conn, month, bounds)
	return in, err
}

// loadGroups counts the month's chains of every responder citing a code of
// a monthly rule.
func loadGroups(ctx context.Context, conn driver.Conn, month string, bounds []any) ([]groupRow, error) {
	codes := codesOf(exceptionrule.RedirectedWhileElectronic, exceptionrule.CitedUnequally)
	rows, err := conn.Query(ctx, `SELECT `+chstore.ResponderSQL+` AS responder, requester_org, request_kind, purpose,
    toStartOfMonth(requested_at) AS month, exception_code, outcome IN `+fulfilledClasses+` AS fulfilled, count()
FROM outcomes_once
WHERE `+month+` AND outcome != 'orphan'
  AND responder IN (SELECT `+chstore.ResponderSQL+` FROM exchange_outcomes WHERE `+month+` AND exception_code IN ?)
GROUP BY responder, requester_org, request_kind, purpose, month, exception_code, fulfilled`,
		append(append(slices.Clone(bounds), bounds...), groupSet(codes))...)
	if err != nil {
		return nil, fmt.Errorf("groups: %w", err)
	}
	defer rows.Close()
	var out []groupRow
	for rows.Next() {
		var g groupRow
		var m time.Time
		var fulfilled uint8
		if err := rows.Scan(&g.responder, &g.requester, &g.kind, &g.purpose, &m, &g.code, &fulfilled, &g.n); err != nil {
			return nil, fmt.Errorf("groups: %w", err)
		}
		g.month, g.fulfilled = midnight(m).UnixMilli(), fulfilled == 1
		out = append(out, g)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("groups: %w", err)
	}
	return out, nil
}

// scanChains reads the chainColumns rows of a query, with each responder's
// organisation and developer from the directory.
func scanChains(ctx context.Context, conn driver.Conn, dir directory, query string, args ...any) ([]chainRow, error) {
	rows, err := conn.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("chains: %w", err)
	}
	defer rows.Close()
	var out []chainRow
	for rows.Next() {
		var r chainRow
		var untimed uint8
		if err := rows.Scan(&r.outcomeID, &r.requestID, &r.network, &r.responder, &r.requester, &r.kind, &r.purpose,
			&r.outcome, &r.code, &r.requestedMs, &r.answeredMs, &r.slaMs, &untimed); err != nil {
			return nil, fmt.Errorf("chains: %w", err)
		}
		e := dir.lookup(r.responder)
		r.org, r.developer, r.untimed = e.orgID, e.developer, untimed != 0
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("chains: %w", err)
	}
	return out, nil
}

// storeChecks writes one exception_checks row per chain and rule: the
// per-chain flags the api's chain view shows.
func storeChecks(ctx context.Context, conn driver.Conn, checks []chainCheck, now time.Time) error {
	if len(checks) == 0 {
		return nil
	}
	batch, err := conn.PrepareBatch(ctx, `INSERT INTO exception_checks (outcome_id, network, responder, requester_org,
    request_kind, purpose, exception_code, rule_id, rule_version, requested_at, requested_at_ms, checked, flagged,
    others, others_fulfilled, measure, parameters, checked_at_ms)`)
	if err != nil {
		return fmt.Errorf("exception checks: store: %w", err)
	}
	defer batch.Abort()
	for _, c := range checks {
		r := c.row
		if err := batch.Append(r.outcomeID, r.network, r.responder, r.requester, r.kind, r.purpose, r.code,
			c.rule.ID, exceptionrule.Version, time.UnixMilli(r.requestedMs).UTC(), r.requestedMs, boolByte(c.checked),
			boolByte(c.flagged), c.others, c.othersFulfilled, c.measure, c.rule.Parameters(), now.UnixMilli()); err != nil {
			return fmt.Errorf("exception checks: store: %w", err)
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("exception checks: store: %w", err)
	}
	return nil
}

func boolByte(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

// checkFigures are one rule's counts over one entity's chains of a period.
type checkFigures struct {
	cited, checked, flagged uint64
	evidence                []*chainRow
}

type checkKey struct {
	period int64
	entity entityKey
	rule   string
}

// attachExceptionChecks puts every rule's figures on each card and on each
// of its responders and developers (every rule, zeros included), with the
// first EvidenceLimit flagged chains, oldest first.
func attachExceptionChecks(q Query, cards []*hinscorev1.Scorecard, checks []chainCheck) {
	figs := map[checkKey]*checkFigures{}
	for _, c := range checks {
		r := c.row
		p := PeriodStart(q.Granularity, time.UnixMilli(r.requestedMs)).UnixMilli()
		for _, e := range []entityKey{{r.network, LevelNetwork, ""}, {r.network, LevelResponder, r.org}, {r.network, LevelDeveloper, r.developer}} {
			k := checkKey{p, e, c.rule.ID}
			f := figs[k]
			if f == nil {
				f = &checkFigures{}
				figs[k] = f
			}
			f.cited++
			if c.checked {
				f.checked++
			}
			if c.flagged {
				f.flagged++
				f.evidence = append(f.evidence, r)
			}
		}
	}
	lines := func(p int64, e entityKey) []*hinscorev1.ExceptionCheck {
		var out []*hinscorev1.ExceptionCheck
		for _, rule := range exceptionrule.Table() {
			f := figs[checkKey{p, e, rule.ID}]
			if f == nil {
				f = &checkFigures{}
			}
			out = append(out, exceptionCheckLine(rule, f, q.Params.EvidenceLimit))
		}
		return out
	}
	for _, c := range cards {
		p := c.GetPeriodStartMs()
		c.ExceptionChecks = lines(p, entityKey{c.GetNetwork(), LevelNetwork, ""})
		for _, e := range c.GetResponders() {
			e.ExceptionChecks = lines(p, entityKey{c.GetNetwork(), LevelResponder, e.GetId()})
		}
		for _, e := range c.GetDevelopers() {
			e.ExceptionChecks = lines(p, entityKey{c.GetNetwork(), LevelDeveloper, e.GetId()})
		}
	}
}

// exceptionCheckLine is one rule's line: its parameters, counts and the
// first limit flagged chains, oldest first.
func exceptionCheckLine(rule exceptionrule.Rule, f *checkFigures, limit int) *hinscorev1.ExceptionCheck {
	ev := slices.Clone(f.evidence)
	slices.SortFunc(ev, func(a, b *chainRow) int {
		return cmp.Or(cmp.Compare(a.requestedMs, b.requestedMs), strings.Compare(a.outcomeID, b.outcomeID))
	})
	line := &hinscorev1.ExceptionCheck{
		RuleId: rule.ID, RuleVersion: exceptionrule.Version, Codes: rule.Codes, Parameters: rule.Parameters(),
		Reasoning: rule.Reasoning, Cited: f.cited, Checked: f.checked, Flagged: NewRate(f.flagged, f.checked),
	}
	for _, r := range ev[:min(len(ev), limit)] {
		e := &hinscorev1.Evidence{OutcomeId: r.outcomeID, RequestId: r.requestID, ResponderOrg: r.responder,
			Outcome: r.outcome, ExceptionCode: r.code, RequestedAtMs: r.requestedMs, SlaMs: r.slaMs}
		if r.answeredMs > 0 && !r.untimed {
			e.TtfMs = uint64(max(0, r.answeredMs-r.requestedMs))
		}
		line.Evidence = append(line.Evidence, e)
	}
	return line
}
