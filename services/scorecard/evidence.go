package scorecard

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"google.golang.org/protobuf/proto"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
)

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
	if len(networks) == 0 {
		return nil
	}
	start := time.UnixMilli(cards[0].GetPeriodStartMs()).UTC()
	end := time.UnixMilli(cards[0].GetPeriodEndMs()).UTC()
	// Not through the FINAL view, which would merge every row of the
	// period (seconds on 18.16): the candidates are the outcomes of the
	// flagged identifiers with any version that looks like evidence; of
	// those, only the latest version counts, and it must itself be
	// evidence. Exact, and it reads few rows.
	what := `if(outcome IN ('refused_unjustified', 'redirected', 'unanswered')
          OR (outcome IN ` + veryLateClasses + ` AND ifNull(ttf_ms, 0) > ` + fmt.Sprint(SuspectSLAMultiple) + ` * sla_ms),
          '` + suspectWhat + `', if(outcome = 'refused_exception' AND has(?, exception_code), exception_code, ''))`
	scope := `requested_at >= toDateTime(?, 'UTC') AND requested_at < toDateTime(?, 'UTC') AND has(?, network) AND has(?, responder_org)`
	sql := `SELECT network, responder_org, oid, request_id, outcome, exception_code, requested_at_ms, ttf, sla_ms, what
FROM
(
SELECT network, responder_org, toString(outcome_id) AS oid, request_id, outcome, exception_code, requested_at_ms,
       ifNull(ttf_ms, 0) AS ttf, sla_ms, ` + what + ` AS what
FROM exchange_outcomes
WHERE ` + scope + `
  AND (network, outcome_id, version) IN
  (
      SELECT network, outcome_id, max(version) FROM exchange_outcomes
      WHERE ` + scope + ` AND (network, outcome_id) IN
          (SELECT network, outcome_id FROM exchange_outcomes WHERE ` + scope + ` AND ` + what + ` != '')
      GROUP BY network, outcome_id
  )
  AND what != ''
ORDER BY network, responder_org, what, requested_at_ms, request_id, oid
LIMIT 1 BY network, oid
)
ORDER BY network, responder_org, what, requested_at_ms, request_id, oid
LIMIT ` + fmt.Sprint(q.Params.EvidenceLimit) + ` BY network, responder_org, what`
	// LIMIT 1 BY the outcome drops a version written twice (a writer retry
	// before the merge).
	codeList, netList, orgList := sortedKeys(codes), sortedKeys(networks), sortedKeys(orgs)
	from, to := uint32(start.Unix()), uint32(end.Unix())
	var args []any
	args = append(args, codeList, from, to, netList, orgList) // select: what, scope
	args = append(args, from, to, netList, orgList)           // latest versions: scope
	args = append(args, from, to, netList, orgList, codeList) // candidates: scope, what
	rows, err := conn.Query(ctx, sql, args...)
	if err != nil {
		return fmt.Errorf("evidence: %w", err)
	}
	defer rows.Close()
	chains := map[chainKey][]*hinscorev1.Evidence{}
	for rows.Next() {
		var (
			network, what string
			ev            hinscorev1.Evidence
		)
		if err := rows.Scan(&network, &ev.ResponderOrg, &ev.OutcomeId, &ev.RequestId, &ev.Outcome, &ev.ExceptionCode,
			&ev.RequestedAtMs, &ev.TtfMs, &ev.SlaMs, &what); err != nil {
			return fmt.Errorf("evidence: %w", err)
		}
		k := chainKey{network, ev.ResponderOrg, what}
		if len(chains[k]) < q.Params.EvidenceLimit {
			chains[k] = append(chains[k], &ev)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("evidence: %w", err)
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
