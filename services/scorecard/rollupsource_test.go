package scorecard

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
	"github.com/hinscore/hinscore/services/lib/chstore"
)

// A month of outcomes_daily rebuilt before the time-to-acknowledge columns
// existed (zeros in acknowledged, acknowledged_within_sla and tta, format
// 0) must not give zeros: the rollup source asks the view about the time
// to acknowledge until the month is rebuilt, and the figures stay those of
// the reference.
func TestRollupMonthWithoutTTA(t *testing.T) {
	conn := testDatabase(t)
	ctx := context.Background()
	rows := figuresWorld()
	insertObs(t, conn, rows)
	ref := reference(rows)
	if err := chstore.RebuildRollups(ctx, conn, testNow, march, april, may); err != nil {
		t.Fatal(err)
	}
	all, args := Query{Granularity: Month}.timeFilter("day")
	rollupHasTTA := func(ctx context.Context, conn driver.Conn, where string, args []any) (bool, error) {
		return rollupHas(ctx, conn, where, args, ttaColumns, chstore.RollupFormatTTA)
	}
	if ok, err := rollupHas(ctx, conn, all, args, purposeColumns, chstore.RollupFormatPurpose); err != nil || !ok {
		t.Fatalf("rollup purposes after a rebuild: %v, %v; want true", ok, err)
	}
	if ok, err := rollupHasTTA(ctx, conn, all, args); err != nil || !ok {
		t.Fatalf("rollupHasTTA after a rebuild: %v, %v; want true", ok, err)
	}

	// April as a program before migration 004 rolled it up.
	const stage = "outcomes_daily_old_april"
	for _, sql := range []string{
		"CREATE TABLE " + stage + " AS outcomes_daily",
		`INSERT INTO ` + stage + ` (day, network, responder_org, request_kind, outcome, exception_code,
 requests, very_late, answered, within_sla, sla_min, sla_max, ttf, rebuilt_at)
SELECT toDate(requested_at) AS day, network, responder_org, request_kind, outcome, exception_code,
    countState(),
    sumState(toUInt64(outcome IN ('fulfilled', 'fulfilled_late') AND ifNull(ttf_ms, 0) > 3 * sla_ms)),
    sumState(toUInt64(ttf_ms IS NOT NULL)),
    sumState(toUInt64(ttf_ms IS NOT NULL AND ifNull(ttf_ms, 0) <= sla_ms)),
    minState(sla_ms), maxState(sla_ms),
    quantilesExactStateIf(0.5, 0.9, 0.99)(ifNull(ttf_ms, 0), ttf_ms IS NOT NULL),
    maxState(toDateTime('2026-06-01 00:00:00', 'UTC'))
FROM outcomes
WHERE requested_at >= toDateTime('2026-04-01 00:00:00', 'UTC') AND requested_at < toDateTime('2026-05-01 00:00:00', 'UTC')
GROUP BY day, network, responder_org, request_kind, outcome, exception_code`,
		"ALTER TABLE outcomes_daily REPLACE PARTITION 202604 FROM " + stage,
		"DROP TABLE " + stage,
	} {
		if err := conn.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	if ok, err := rollupHasTTA(ctx, conn, all, args); err != nil || ok {
		t.Fatalf("rollupHasTTA with April from before the columns: %v, %v; want false", ok, err)
	}
	if ok, err := rollupHas(ctx, conn, all, args, purposeColumns, chstore.RollupFormatPurpose); err != nil || ok {
		t.Fatalf("rollup purposes with April from before them: %v, %v; want false", ok, err)
	}
	mayOnly, args := Query{Granularity: Month, From: may, To: may.AddDate(0, 1, 0), Params: DefaultParams()}.timeFilter("day")
	if ok, err := rollupHasTTA(ctx, conn, mayOnly, args); err != nil || ok {
		// May's cards reach back to April for the trend and the flags.
		t.Fatalf("rollupHasTTA of May's scan (from February): %v, %v; want false", ok, err)
	}
	rolled, err := Build(ctx, conn, Query{Granularity: Month, Source: SourceRollup}, testNow)
	if err != nil {
		t.Fatal(err)
	}
	checkAgainstReference(t, rolled, ref)
}

// The evidence of a flag is the oldest outcomes whose latest version is
// suspect, whatever their earlier versions were: here the oldest 30
// outcomes of W1 were first stored unanswered and then fulfilled in time,
// so the first candidates read are all stale, and the query must read on.
// One latest version is stored twice (a writer retry) and counts once.
func TestEvidenceSkipsSupersededVersions(t *testing.T) {
	conn := testDatabase(t)
	ctx := context.Background()
	b, err := conn.PrepareBatch(ctx, `INSERT INTO exchange_outcomes (outcome_id, version, network, request_id,
		request_kind, responder_org, outcome, exception_code, requested_at, requested_at_ms, tta_ms, ttf_ms, sla_ms, grace_ms)`)
	if err != nil {
		t.Fatal(err)
	}
	fast := uint64(1_000)
	for i := range 70 {
		at := may.Add(time.Duration(i) * time.Hour)
		add := func(version uint64, outcome string, ttf *uint64) {
			if err := b.Append(id(i), version, "west", fmt.Sprintf("req-%d", i), "patient_query", "W1",
				outcome, "", at, at.UnixMilli(), ttf, ttf, uint64(60_000), uint64(30_000)); err != nil {
				t.Fatal(err)
			}
		}
		add(1, "unanswered", nil)
		switch {
		case i < 30:
			add(2, "fulfilled", &fast)
		case i == 31:
			add(2, "refused_unjustified", &fast)
			add(2, "refused_unjustified", &fast)
		case i >= 60:
			add(2, "fulfilled", &fast)
		}
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
	p := DefaultParams()
	p.EvidenceLimit = 5
	cards, err := Build(ctx, conn, Query{Granularity: Month, Params: p}, testNow)
	if err != nil {
		t.Fatal(err)
	}
	want := referenceEvidence(t, conn, p.EvidenceLimit)
	if len(want) != p.EvidenceLimit {
		t.Fatalf("reference evidence %v, want %d chains", want, p.EvidenceLimit)
	}
	var flags int
	for _, c := range cards {
		for _, e := range c.GetResponders() {
			for _, f := range e.GetFlags() {
				if flagWhat(f) != suspectWhat {
					continue
				}
				flags++
				var got []string
				for _, ev := range f.GetEvidence() {
					got = append(got, ev.GetRequestId()+"/"+ev.GetOutcome())
				}
				if !slices.Equal(got, want) {
					t.Errorf("%s %s flag %s: evidence %v, want %v", c.GetPeriod(), e.GetId(), f.GetKind(), got, want)
				}
			}
		}
	}
	if flags == 0 {
		t.Fatalf("W1 has no suspect flag: %v", cardsSummary(cards))
	}
}

// referenceEvidence asks the outcomes view for W1's oldest suspect chains.
func referenceEvidence(t *testing.T, conn driver.Conn, limit int) []string {
	t.Helper()
	rows, err := conn.Query(context.Background(), `SELECT request_id, outcome FROM outcomes
WHERE network = 'west' AND responder_org = 'W1' AND outcome IN ('refused_unjustified', 'redirected', 'unanswered')
ORDER BY requested_at_ms, request_id, toString(outcome_id) LIMIT ?`, uint64(limit))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var req, outcome string
		if err := rows.Scan(&req, &outcome); err != nil {
			t.Fatal(err)
		}
		out = append(out, req+"/"+outcome)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func cardsSummary(cards []*hinscorev1.Scorecard) string {
	var s []string
	for _, c := range cards {
		for _, e := range c.GetResponders() {
			s = append(s, fmt.Sprintf("%s/%s %s: %d requests, %d flags", c.GetNetwork(), c.GetPeriod(), e.GetId(), e.GetRequests(), len(e.GetFlags())))
		}
	}
	return strings.Join(s, "; ")
}
