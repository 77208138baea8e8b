package chstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"regexp"
	"slices"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// ResponderSQL is the responder identifier of an outcome, as the
// scorecards and the outcomes_daily rollup (its responder_org) count it:
// the responding gateway's home community id for an IHE cross-community
// transaction, which the organisation directory names (its
// home_community_ids), else responder_org. A transaction names its
// responding community by that id, while what an audit gives as the
// responder's own identifier varies from gateway to gateway.
const ResponderSQL = "if(responder_community != '', responder_community, responder_org)"

// outcomesDailySelect computes one month of the outcomes_daily rollup from
// the deduplicated outcomes view. The figures mirror the scorecard's:
// very_late is a fulfilled request answered after 3 × its SLA (DOMAIN.md's
// "suspect" lateness), answered and within_sla count only requests with a
// time to fulfil, and ttf keeps every time to fulfil so that the quantiles of
// any set of days are exact; acknowledged and tta do the same for the time
// to acknowledge.
const outcomesDailySelect = `SELECT
    toDate(requested_at) AS day,
    network,
    ` + ResponderSQL + ` AS responder,
    request_kind,
    outcome,
    exception_code,
    countState(),
    sumState(toUInt64(outcome IN ('fulfilled', 'fulfilled_late') AND ifNull(ttf_ms, 0) > 3 * sla_ms)),
    sumState(toUInt64(ttf_ms IS NOT NULL)),
    sumState(toUInt64(ttf_ms IS NOT NULL AND ifNull(ttf_ms, 0) <= sla_ms)),
    minState(sla_ms),
    maxState(sla_ms),
    quantilesExactStateIf(0.5, 0.9, 0.99)(ifNull(ttf_ms, 0), ttf_ms IS NOT NULL),
    maxState(toDateTime(?, 'UTC')),
    sumState(toUInt64(tta_ms IS NOT NULL)),
    quantilesExactStateIf(0.5, 0.9, 0.99)(ifNull(tta_ms, 0), tta_ms IS NOT NULL),
    sumState(toUInt64(tta_ms IS NOT NULL AND ifNull(tta_ms, 0) <= sla_ms)),
    maxState(toUInt32(?)),
    purpose
FROM %s
WHERE requested_at >= toDateTime(?, 'UTC') AND requested_at < toDateTime(?, 'UTC')
GROUP BY day, network, responder, request_kind, outcome, exception_code, purpose`

const outcomesDailyColumns = `(day, network, responder_org, request_kind, outcome, exception_code,
 requests, very_late, answered, within_sla, sla_min, sla_max, ttf, rebuilt_at, acknowledged, tta,
 acknowledged_within_sla, rollup_format, purpose)`

// RollupFormat is the rollup_format a rebuild gives each month of
// outcomes_daily: 2 means acknowledged, acknowledged_within_sla and tta
// are filled in (migration 005); 3 means purpose is too (migration 007).
// A month below 2 (0: rolled up before, or by a program that predates it)
// lacks the time to acknowledge until its next rebuild, so a reader of it
// asks the outcomes view about it; a reader of the purpose does the same
// for a month below RollupFormatPurpose.
const RollupFormat = 3

// RollupFormatTTA and RollupFormatPurpose are the first rollup formats
// that fill the time to acknowledge and the purpose.
const (
	RollupFormatTTA     = 2
	RollupFormatPurpose = 3
)

// RollupTables names what a rebuild reads and what it swaps months into.
type RollupTables struct {
	// Outcomes is the deduplicated outcomes view the months are computed
	// from; Daily is the outcomes_daily table they replace.
	Outcomes, Daily string
}

var (
	// SingleServer is the schema of schemas/clickhouse on one server.
	SingleServer = RollupTables{Outcomes: "outcomes", Daily: "outcomes_daily"}
	// ShardLocal is one shard's own tables in the cluster schema
	// (deploy/clickhouse/cluster/schema.sql): REPLACE PARTITION cannot go
	// through a Distributed table, so on a cluster every shard rebuilds its
	// outcomes_daily_local from its own outcomes (all versions of an outcome
	// are on the shard its id hashes to, so outcomes_local is exact there);
	// a query of the Distributed outcomes_daily merges the shards' states.
	ShardLocal = RollupTables{Outcomes: "outcomes_local", Daily: "outcomes_daily_local"}
)

// RebuildRollups recomputes the outcomes_daily rollup for each month that
// contains one of months (any instant of the month will do), from the
// deduplicated outcomes view, and swaps each month in whole: readers see the
// old month or the new one, never a mix. Rebuilding a month twice, or two
// processes rebuilding it at once, leaves one exact copy (the last swap
// wins), so the writer can call it after every batch it wrote.
func RebuildRollups(ctx context.Context, conn driver.Conn, now time.Time, months ...time.Time) error {
	return RebuildRollupsOf(ctx, conn, SingleServer, now, months...)
}

// RebuildRollupsOf is RebuildRollups over the given tables: SingleServer,
// or ShardLocal on each shard of a cluster (one node of each; replication
// carries the swap to the shard's other replicas).
func RebuildRollupsOf(ctx context.Context, conn driver.Conn, t RollupTables, now time.Time, months ...time.Time) error {
	engine, err := stagingEngine(ctx, conn, t.Daily)
	if err != nil {
		return fmt.Errorf("chstore.RebuildRollups: %w", err)
	}
	starts := make([]time.Time, 0, len(months))
	for _, m := range months {
		m = m.UTC()
		starts = append(starts, time.Date(m.Year(), m.Month(), 1, 0, 0, 0, 0, time.UTC))
	}
	slices.SortFunc(starts, func(a, b time.Time) int { return a.Compare(b) })
	starts = slices.Compact(starts)
	for _, start := range starts {
		if err := rebuildMonth(ctx, conn, t, engine, now, start); err != nil {
			return fmt.Errorf("chstore.RebuildRollups %s: %w", start.Format("2006-01"), err)
		}
	}
	return nil
}

// replicatedEngine matches the replication arguments of a Replicated*
// engine: its ZooKeeper path and replica name.
var replicatedEngine = regexp.MustCompile(`^Replicated(\w*MergeTree)\(\s*'[^']*'\s*,\s*'[^']*'\s*,?\s*`)

// plainEngine is the engine clause of a table (system.tables.engine_full)
// without replication: a staging table must not join the table's
// replication, and REPLACE PARTITION takes parts from a plain table into a
// replicated one (the swap is then replicated).
func plainEngine(full string) string {
	return replicatedEngine.ReplaceAllString(full, "$1(")
}

// stagingEngine reads the engine clause a staging table of daily needs:
// the same partitioning, sorting and aggregation, without replication.
func stagingEngine(ctx context.Context, conn driver.Conn, daily string) (string, error) {
	var full string
	if err := conn.QueryRow(ctx, "SELECT engine_full FROM system.tables WHERE database = currentDatabase() AND name = ?", daily).Scan(&full); err != nil {
		return "", fmt.Errorf("engine of %s: %w", daily, err)
	}
	return plainEngine(full), nil
}

func rebuildMonth(ctx context.Context, conn driver.Conn, t RollupTables, engine string, now, start time.Time) error {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		return err
	}
	// A staging table of its own per run: concurrent rebuilds never add to
	// each other's states.
	stage := "outcomes_daily_stage_" + hex.EncodeToString(b[:])
	if err := conn.Exec(ctx, "CREATE TABLE "+stage+" AS "+t.Daily+" ENGINE = "+engine); err != nil {
		return fmt.Errorf("create %s: %w", stage, err)
	}
	defer func() {
		// Not ctx: the staging table must go even when the caller gave up.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_ = conn.Exec(dctx, "DROP TABLE IF EXISTS "+stage)
	}()
	end := start.AddDate(0, 1, 0)
	if err := conn.Exec(ctx, "INSERT INTO "+stage+" "+outcomesDailyColumns+"\n"+fmt.Sprintf(outcomesDailySelect, t.Outcomes),
		uint32(now.Unix()), uint32(RollupFormat), uint32(start.Unix()), uint32(end.Unix())); err != nil {
		return fmt.Errorf("fill %s: %w", stage, err)
	}
	// The partition id of toYYYYMM(day) is the number itself; an empty
	// staging partition empties the month, which is right when the month no
	// longer has outcomes.
	partition := start.Year()*100 + int(start.Month())
	if err := conn.Exec(ctx, fmt.Sprintf("ALTER TABLE %s REPLACE PARTITION %d FROM %s", t.Daily, partition, stage)); err != nil {
		return fmt.Errorf("replace partition %d: %w", partition, err)
	}
	return nil
}
