package chstore

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"google.golang.org/protobuf/encoding/protojson"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
)

// InsertScorecards records scorecards of one granularity (day, week or month)
// in the scorecards history: the headline figures as columns, the whole card
// as JSON. Inserting the same cards again (a retried run) adds nothing the
// table keeps: the key is network, granularity, period start and generation
// time.
func InsertScorecards(ctx context.Context, conn driver.Conn, granularity string, cards []*hinscorev1.Scorecard) error {
	if len(cards) == 0 {
		return nil
	}
	batch, err := conn.PrepareBatch(ctx, `INSERT INTO scorecards (network, granularity, period, period_start, period_start_ms,
 period_end_ms, generated_at, generated_at_ms, formula_version, requests, suspect, suspect_rate, suspect_ci_low,
 suspect_ci_high, ttf_count, ttf_p50_ms, ttf_p90_ms, ttf_p99_ms, within_sla_rate, scorecard_json)`)
	if err != nil {
		return fmt.Errorf("chstore.InsertScorecards: %w", err)
	}
	for _, c := range cards {
		js, err := protojson.Marshal(c)
		if err != nil {
			_ = batch.Abort()
			return fmt.Errorf("chstore.InsertScorecards: %s %s: %w", c.GetNetwork(), c.GetPeriod(), err)
		}
		s, t := c.GetSuspect(), c.GetTimeToFulfil()
		err = batch.Append(c.GetNetwork(), granularity, c.GetPeriod(),
			time.UnixMilli(c.GetPeriodStartMs()).UTC(), c.GetPeriodStartMs(), c.GetPeriodEndMs(),
			time.UnixMilli(c.GetGeneratedAtMs()).UTC(), c.GetGeneratedAtMs(), c.GetFormulaVersion(),
			c.GetRequests(), s.GetCount(), s.GetRate(), s.GetCiLow(), s.GetCiHigh(),
			t.GetCount(), t.GetP50Ms(), t.GetP90Ms(), t.GetP99Ms(), t.GetWithinSla().GetRate(), string(js))
		if err != nil {
			_ = batch.Abort()
			return fmt.Errorf("chstore.InsertScorecards: %s %s: %w", c.GetNetwork(), c.GetPeriod(), err)
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("chstore.InsertScorecards: %w", err)
	}
	return nil
}
