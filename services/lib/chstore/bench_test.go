package chstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/hinscore/hinscore/services/lib/chstore"
	"github.com/hinscore/hinscore/services/lib/chstore/chtest"
)

// The standard scorecard query (the shape services/scorecard builds): per
// network and month, outcome counts by request kind and class with the
// very-late count, then time-to-fulfil quantiles of the fulfilled requests.
const (
	scorecardCountsView = `SELECT network, toStartOfMonth(requested_at) AS period, request_kind, outcome, count() AS n,
       countIf(outcome IN ('fulfilled', 'fulfilled_late') AND ifNull(ttf_ms, 0) > 3 * sla_ms) AS very_late,
       min(sla_ms) AS sla_min, max(sla_ms) AS sla_max
FROM outcomes
WHERE requested_at >= toDateTime('2024-03-01 00:00:00', 'UTC') AND requested_at < toDateTime('2024-05-01 00:00:00', 'UTC')
GROUP BY network, period, request_kind, outcome`
	scorecardLatencyView = `SELECT network, toStartOfMonth(requested_at) AS period, count() AS n,
       quantilesExact(0.5, 0.9, 0.99)(ifNull(ttf_ms, 0)) AS q,
       countIf(ifNull(ttf_ms, 0) <= sla_ms) AS within_sla
FROM outcomes
WHERE requested_at >= toDateTime('2024-03-01 00:00:00', 'UTC') AND requested_at < toDateTime('2024-05-01 00:00:00', 'UTC')
  AND outcome IN ('fulfilled', 'fulfilled_late') AND ttf_ms IS NOT NULL
GROUP BY network, period`
	scorecardCountsRollup = `SELECT network, toStartOfMonth(day) AS period, request_kind, outcome, countMerge(requests) AS n,
       sumMerge(very_late) AS very_late, minMerge(sla_min) AS sla_min, maxMerge(sla_max) AS sla_max
FROM outcomes_daily
WHERE day >= toDate('2024-03-01') AND day < toDate('2024-05-01')
GROUP BY network, period, request_kind, outcome`
	scorecardLatencyRollup = `SELECT network, toStartOfMonth(day) AS period, sumMerge(answered) AS n,
       quantilesExactMerge(0.5, 0.9, 0.99)(ttf) AS q, sumMerge(within_sla) AS within_sla
FROM outcomes_daily
WHERE day >= toDate('2024-03-01') AND day < toDate('2024-05-01')
  AND outcome IN ('fulfilled', 'fulfilled_late')
GROUP BY network, period`
)

// BenchmarkScorecardQuery10M builds 10 million outcomes (plus a second
// version for one in ten, as late answers make) in a database of its own,
// then times the standard scorecard query over the FINAL view and over the
// outcomes_daily rollup, next to the 3 s limit, and the rebuild of the two
// months of rollups. The database is dropped afterwards.
func BenchmarkScorecardQuery10M(b *testing.B) {
	conn, _ := chtest.Database(b)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	const n = 10_000_000
	setup := time.Now()
	for from := 0; from < n; from += 2_000_000 {
		genOutcomes(ctx, b, conn, 1, from, 2_000_000)
	}
	genOutcomes(ctx, b, conn, 2, 0, n/10)
	b.Logf("generated %d outcomes in %s", n, time.Since(setup).Round(time.Second))
	rebuildStart := time.Now()
	if err := chstore.RebuildRollups(ctx, conn, time.Now(), time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC), time.Date(2024, 4, 1, 0, 0, 0, 0, time.UTC)); err != nil {
		b.Fatal(err)
	}
	rebuild := time.Since(rebuildStart)

	run := func(queries ...string) time.Duration {
		start := time.Now()
		for _, q := range queries {
			drain(ctx, b, conn, q)
		}
		return time.Since(start)
	}
	b.ResetTimer()
	var view, rollup time.Duration
	for range b.N {
		view += run(scorecardCountsView, scorecardLatencyView)
		rollup += run(scorecardCountsRollup, scorecardLatencyRollup)
	}
	b.StopTimer()
	b.ReportMetric(view.Seconds()/float64(b.N), "view_s/op")
	b.ReportMetric(rollup.Seconds()/float64(b.N), "rollup_s/op")
	b.ReportMetric(3, "limit_s")
	b.ReportMetric(rebuild.Seconds(), "rebuild_2_months_s")
	var total uint64
	if err := conn.QueryRow(ctx, "SELECT countMerge(requests) FROM outcomes_daily").Scan(&total); err != nil || total != n {
		b.Errorf("rollup counts %d outcomes (%v), want %d", total, err, n)
	}
}

func drain(ctx context.Context, b *testing.B, conn driver.Conn, q string) {
	rows, err := conn.Query(ctx, q)
	if err != nil {
		b.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	for rows.Next() {
	}
	if err := rows.Err(); err != nil {
		b.Fatal(err)
	}
}
