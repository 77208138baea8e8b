package scorecard

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"google.golang.org/protobuf/proto"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
	"github.com/hinscore/hinscore/services/lib/chstore"
)

// groupSet binds a list as the set of an IN: (a, b, ...).
func groupSet(vs []string) clickhouse.GroupSet {
	g := clickhouse.GroupSet{Value: make([]any, len(vs))}
	for i, v := range vs {
		g.Value[i] = v
	}
	return g
}

// suspectWhat is the evidence group of the suspect and repeat_offender
// flags; an overuse flag's group is its exception code.
const suspectWhat = "suspect"

// chainKey groups evidence rows by network, identifier and group.
type chainKey struct{ network, org, what string }

// attachEvidence lists, for every flag of every card, the first request
// chains behind it: one query per period over the flagged identifiers,
// at most EvidenceLimit chains per identifier and group, oldest first.
func attachEvidence(ctx context.Context, conn driver.Conn, q Query, w *world, cards []*hinscorev1.Scorecard) error {
	byPeriod := map[int64][]*hinscorev1.Scorecard{}
	var periods []int64
	for _, c := range cards {
		if len(byPeriod[c.GetPeriodStartMs()]) == 0 {
			periods = append(periods, c.GetPeriodStartMs())
		}
		byPeriod[c.GetPeriodStartMs()] = append(byPeriod[c.GetPeriodStartMs()], c)
	}
	slices.Sort(periods)
	for _, p := range periods {
		if err := evidenceFor(ctx, conn, q, byPeriod[p]); err != nil {
			return err
		}
	}
	return nil
}

// flagged calls fn for every flag of a card with the identifiers it covers.
func eachFlag(c *hinscorev1.Scorecard, fn func(f *hinscorev1.Flag, identifiers []string)) {
	var all []string
	for _, e := range c.GetResponders() {
		all = append(all, e.GetIdentifiers()...)
	}
	for _, f := range c.GetFlags() {
		fn(f, all)
	}
	for _, es := range [][]*hinscorev1.Entity{c.GetResponders(), c.GetDevelopers()} {
		for _, e := range es {
			for _, f := range e.GetFlags() {
				fn(f, e.GetIdentifiers())
			}
		}
	}
}

func flagWhat(f *hinscorev1.Flag) string {
	if f.GetKind() == "exception_overuse" {
		return f.GetExceptionCode()
	}
	return suspectWhat
}

func evidenceFor(ctx context.Context, conn driver.Conn, q Query, cards []*hinscorev1.Scorecard) error {
	networks, orgs, codes := map[string]bool{}, map[string]bool{}, map[string]bool{"": true}
	for _, c := range cards {
		eachFlag(c, func(f *hinscorev1.Flag, ids []string) {
			networks[c.GetNetwork()] = true
			for _, id := range ids {
				orgs[id] = true
			}
			if f.GetKind() == "exception_overuse" {
				codes[f.GetExceptionCode()] = true
			}
		})
	}
	if len(networks) == 0 || len(orgs) == 0 {
		return nil
	}
	start := time.UnixMilli(cards[0].GetPeriodStartMs()).UTC()
	end := time.UnixMilli(cards[0].GetPeriodEndMs()).UTC()
	limit := q.Params.EvidenceLimit
	var chains map[chainKey][]*hinscorev1.Evidence
	// Most outcomes have one version, so twice the limit of candidates
	// usually leaves enough latest ones; when a group falls short, read
	// more.
	for k := 2 * limit; ; k *= 8 {
		var complete bool
		var err error
		chains, complete, err = evidenceChains(ctx, conn, start, end, k, limit, sortedKeys(networks), sortedKeys(orgs), sortedKeys(codes))
		if err != nil {
			return err
		}
		if complete {
			break
		}
	}
	for _, c := range cards {
		eachFlag(c, func(f *hinscorev1.Flag, ids []string) {
			var evs []*hinscorev1.Evidence
			for _, id := range ids {
				for _, ev := range chains[chainKey{c.GetNetwork(), id, flagWhat(f)}] {
					// A chain may back several flags; each gets its own copy.
					evs = append(evs, proto.Clone(ev).(*hinscorev1.Evidence))
				}
			}
			slices.SortFunc(evs, func(a, b *hinscorev1.Evidence) int {
				return cmp.Or(cmp.Compare(a.GetRequestedAtMs(), b.GetRequestedAtMs()), strings.Compare(a.GetRequestId(), b.GetRequestId()),
					strings.Compare(a.GetOutcomeId(), b.GetOutcomeId()))
			})
			if len(evs) > q.Params.EvidenceLimit {
				evs = evs[:q.Params.EvidenceLimit]
			}
			f.Evidence = evs
		})
	}
	return nil
}

// evidenceRow is one version of an outcome of a flagged identifier.
type evidenceRow struct {
	network, what string
	version       uint64
	ev            *hinscorev1.Evidence
}

// before orders evidence as the flags list it: oldest request first.
func (r evidenceRow) before(o evidenceRow) int {
	return cmp.Or(cmp.Compare(r.ev.GetRequestedAtMs(), o.ev.GetRequestedAtMs()), strings.Compare(r.ev.GetRequestId(), o.ev.GetRequestId()),
		strings.Compare(r.ev.GetOutcomeId(), o.ev.GetOutcomeId()))
}

// evidenceChains returns, per network, identifier and group, the first limit
// outcomes of the period whose latest version is evidence (suspect, or a
// refusal citing one of codes), oldest first, as the outcomes view would
// give them; complete is false when some group may have more than the k
// candidates read, and a larger k is needed.
//
// Not through the FINAL view, which would merge every row of the period
// (seconds on 18.16), nor by grouping every version of the flagged
// identifiers' outcomes: one pass over the period's rows keeps, per group,
// the first k versions that look like evidence, and every version of those
// outcomes is then read by the key of exchange_outcomes (network,
// outcome_id), a few granules. Of each outcome only the latest version
// counts, and it must itself be evidence. The first k candidates of a group
// contain every one up to the k-th, so the latest versions among them that
// come no later than the k-th are exact; a group with fewer than limit of
// them and k candidates or more may have more past the k-th.
//
// The candidates are chosen by GLOBAL IN: on a cluster exchange_outcomes is
// Distributed, a plain IN of it in itself is refused there, and the first
// k of a group must be those of every shard, which only the subquery run
// once over the whole table gives. On one server it is the same IN.
func evidenceChains(ctx context.Context, conn driver.Conn, start, end time.Time, k, limit int, networks, orgs, codes []string) (map[chainKey][]*hinscorev1.Evidence, bool, error) {
	what := `if(outcome IN ('refused_unjustified', 'redirected', 'unanswered')
          OR (outcome IN ` + veryLateClasses + ` AND ifNull(ttf_ms, 0) > ` + fmt.Sprint(SuspectSLAMultiple) + ` * sla_ms),
          '` + suspectWhat + `', if(outcome = 'refused_exception' AND exception_code IN ?, exception_code, ''))`
	period := `requested_at >= toDateTime(?, 'UTC') AND requested_at < toDateTime(?, 'UTC') AND network IN ?`
	// IN sets, not has(): a hash lookup per row instead of a walk of the
	// list (seconds for a network's hundred identifiers over a month).
	sql := `SELECT network, ` + chstore.ResponderSQL + ` AS responder, toString(outcome_id) AS oid, version, request_id, outcome, exception_code, requested_at_ms,
       ifNull(ttf_ms, 0) AS ttf, sla_ms, ` + what + ` AS what
FROM exchange_outcomes
WHERE ` + period + ` AND (network, outcome_id) GLOBAL IN
(
    SELECT network, outcome_id
    FROM
    (
        SELECT network, ` + chstore.ResponderSQL + ` AS responder, outcome_id, toString(outcome_id) AS oid, request_id, requested_at_ms,
            ` + what + ` AS what
        FROM exchange_outcomes
        WHERE ` + period + ` AND responder IN ? AND what != ''
    )
    ORDER BY requested_at_ms, request_id, oid
    LIMIT ` + fmt.Sprint(k) + ` BY network, responder, what
)`
	from, to := uint32(start.Unix()), uint32(end.Unix())
	args := []any{groupSet(codes), from, to, groupSet(networks), groupSet(codes), from, to, groupSet(networks), groupSet(orgs)}
	rows, err := conn.Query(ctx, sql, args...)
	if err != nil {
		return nil, false, fmt.Errorf("evidence: %w", err)
	}
	defer rows.Close()
	type outcomeKey struct{ network, oid string }
	latest := map[outcomeKey]uint64{}
	candidates := map[chainKey][]evidenceRow{}
	for rows.Next() {
		r := evidenceRow{ev: &hinscorev1.Evidence{}}
		if err := rows.Scan(&r.network, &r.ev.ResponderOrg, &r.ev.OutcomeId, &r.version, &r.ev.RequestId, &r.ev.Outcome, &r.ev.ExceptionCode,
			&r.ev.RequestedAtMs, &r.ev.TtfMs, &r.ev.SlaMs, &r.what); err != nil {
			return nil, false, fmt.Errorf("evidence: %w", err)
		}
		ok := outcomeKey{r.network, r.ev.GetOutcomeId()}
		latest[ok] = max(latest[ok], r.version)
		if r.what != "" {
			ck := chainKey{r.network, r.ev.GetResponderOrg(), r.what}
			candidates[ck] = append(candidates[ck], r)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("evidence: %w", err)
	}
	chains := map[chainKey][]*hinscorev1.Evidence{}
	complete := true
	for ck, rs := range candidates {
		// Every row of this group up to the k-th it holds was among the
		// first k read (the rows here include those k), so none is
		// missing before it.
		slices.SortFunc(rs, evidenceRow.before)
		last := len(rs) - 1
		if len(rs) >= k {
			last = k - 1
		}
		seen := map[string]bool{}
		var evs []*hinscorev1.Evidence
		for _, r := range rs[:last+1] {
			oid := r.ev.GetOutcomeId()
			// A version written twice (a writer retry before the merge)
			// counts once.
			if r.version != latest[outcomeKey{r.network, oid}] || seen[oid] {
				continue
			}
			seen[oid] = true
			evs = append(evs, r.ev)
			if len(evs) == limit {
				break
			}
		}
		if len(evs) < limit && len(rs) >= k {
			complete = false
		}
		chains[ck] = evs
	}
	return chains, complete, nil
}
