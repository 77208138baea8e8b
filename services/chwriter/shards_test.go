package chwriter_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/hinscore/hinscore/services/chwriter"
	"github.com/hinscore/hinscore/services/lib/chstore"
	"github.com/hinscore/hinscore/services/lib/chstore/chtest"
	"github.com/hinscore/hinscore/services/lib/service"
)

// shardDatabase is a database of the local server standing for one shard
// of a cluster: its outcomes_daily under the shard-local name and the
// outcomes_local view over its own outcomes, holding outcomes [from, to)
// of March 2024, one version each, every third one fulfilled in 30 s.
func shardDatabase(t *testing.T, from, to int) (driver.Conn, chstore.DSN) {
	t.Helper()
	conn, d := chtest.Database(t)
	ctx := context.Background()
	for _, q := range []string{"RENAME TABLE outcomes_daily TO outcomes_daily_local", "CREATE VIEW outcomes_local AS SELECT * FROM outcomes"} {
		if err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	batch, err := conn.PrepareBatch(ctx, "INSERT INTO exchange_outcomes (outcome_id, version, network, request_id, request_kind, responder_org, outcome, requested_at, requested_at_ms, ttf_ms, sla_ms)")
	if err != nil {
		t.Fatal(err)
	}
	march := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
	for i := from; i < to; i++ {
		at := march.Add(time.Duration(i) * time.Minute)
		class, ttf := "unanswered", (*uint64)(nil)
		if i%3 == 0 {
			v := uint64(30_000)
			class, ttf = "fulfilled", &v
		}
		id := uuid.NewSHA1(uuid.NameSpaceOID, []byte{byte(i), byte(i >> 8)})
		if err := batch.Append(id, uint64(1), "netA", "R"+string(rune('a'+i%26)), "patient_query", "HOSP", class, at, at.UnixMilli(), ttf, uint64(3_600_000)); err != nil {
			t.Fatal(err)
		}
	}
	if err := batch.Send(); err != nil {
		t.Fatal(err)
	}
	return conn, d
}

// TestRebuildPerShard: with RollupShards set, the writer rebuilds each
// shard's outcomes_daily_local from that shard's own outcomes and leaves the
// table behind its own connection (on a cluster, the Distributed one)
// alone; an unreachable shard fails the rebuild and keeps the months stale.
func TestRebuildPerShard(t *testing.T) {
	h := newHarness(t)
	s1, d1 := shardDatabase(t, 0, 300)
	s2, d2 := shardDatabase(t, 300, 500)
	cfg := chwriter.DefaultConfig()
	cfg.RollupShards = []chstore.DSN{d1, d2}
	w, err := chwriter.New(cfg, service.Deps{JetStream: h.js, ClickHouse: h.conn, Log: testLogger(t), Metrics: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	march := time.Date(2024, 3, 15, 0, 0, 0, 0, time.UTC)
	chwriter.MarkDirty(w, march)
	if err := w.RebuildStale(h.ctx); err != nil {
		t.Fatal(err)
	}
	rolled := func(c driver.Conn, table string) (requests, answered uint64) {
		t.Helper()
		if err := c.QueryRow(h.ctx, "SELECT countMerge(requests), sumMerge(answered) FROM "+table).Scan(&requests, &answered); err != nil {
			t.Fatal(err)
		}
		return requests, answered
	}
	for _, c := range []struct {
		conn           driver.Conn
		requests, done uint64
	}{{s1, 300, 100}, {s2, 200, 67}} {
		if r, a := rolled(c.conn, "outcomes_daily_local"); r != c.requests || a != c.done {
			t.Errorf("shard rollup holds %d requests, %d answered; want %d, %d", r, a, c.requests, c.done)
		}
	}
	if r, _ := rolled(h.conn, "outcomes_daily"); r != 0 {
		t.Errorf("the writer's own outcomes_daily was rebuilt too (%d requests)", r)
	}

	// A shard that cannot be reached: the rebuild fails naming it.
	bad := d2
	bad.Database = "hinscore_no_such_shard"
	cfg.RollupShards = []chstore.DSN{d1, bad}
	w2, err := chwriter.New(cfg, service.Deps{JetStream: h.js, ClickHouse: h.conn, Log: testLogger(t), Metrics: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	chwriter.MarkDirty(w2, march)
	err = w2.RebuildStale(h.ctx)
	if err == nil || !strings.Contains(err.Error(), "hinscore_no_such_shard") {
		t.Fatalf("rebuild with a missing shard: %v, want an error naming it", err)
	}
	if err := w2.RebuildStale(h.ctx); err == nil {
		t.Fatal("the months were not kept stale after the failed rebuild")
	}
	if err := w2.Shutdown(h.ctx); err != nil {
		t.Fatal(err)
	}
}
