package scorecard

import (
	"context"
	"testing"
	"time"

	"github.com/hinscore/hinscore/services/lib/chstore/chtest"
)

// BenchmarkExceptionChecks2M times the exception checks alone over the
// benchmark world of BenchmarkMonthlyScorecards10M cut to 2 million
// outcomes (March and April 2024, 200 responders, every one citing 171.202,
// 171.204 and 171.205 now and then), in a database of its own.
func BenchmarkExceptionChecks2M(b *testing.B) {
	conn, _ := chtest.Database(b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	const n = 2_000_000
	if err := conn.Exec(ctx, benchOutcomes, uint64(0), uint64(0), uint64(n)); err != nil {
		b.Fatal(err)
	}
	if err := conn.Exec(ctx, benchDirectory); err != nil {
		b.Fatal(err)
	}
	dir, err := loadDirectory(ctx, conn)
	if err != nil {
		b.Fatal(err)
	}
	var checks []chainCheck
	start := time.Now()
	for b.Loop() {
		if checks, err = checkExceptions(ctx, conn, Query{Granularity: Month}, dir, time.Now()); err != nil {
			b.Fatal(err)
		}
	}
	per := time.Since(start).Seconds() / float64(b.N)
	b.ReportMetric(float64(n)/per, "outcomes/s")
	b.ReportMetric(float64(len(checks)), "checks")
}
