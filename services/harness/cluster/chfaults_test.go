package cluster

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/hinscore/hinscore/schemas"
	"github.com/hinscore/hinscore/services/harness/cluster/chschema"
	"github.com/hinscore/hinscore/services/harness/simulator"
	"github.com/hinscore/hinscore/services/lib/bus"
	"github.com/hinscore/hinscore/services/lib/chstore"
)

// TestClusterMigrationAppearsOnEveryServer adds a migration after those
// of schemas/ (a column of exchange_outcomes and a view reading it),
// generates its cluster form as deploygen does (chschema, From the new
// file) and applies it through server 0-0 as schema.sql is applied: the
// column must be on every server's local and Distributed tables, the view
// on every server, and a row written through one shard's server must be
// read through the view of every server.
func TestClusterMigrationAppearsOnEveryServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c := liveCHCluster(t, ctx)
	var stale uint64
	if err := c.nodes[0].QueryRow(ctx, "SELECT count() FROM system.columns WHERE database = currentDatabase() AND name = 'cluster_test_note'").Scan(&stale); err != nil {
		t.Fatal(err)
	}
	if stale > 0 {
		// A run before this one left its migration: start from schema.sql.
		c.reset(t, ctx, generated(t, chschema.DefaultOptions(), nil))
	}
	migration := "-- A migration added after the others.\n" +
		"ALTER TABLE exchange_outcomes ADD COLUMN cluster_test_note String DEFAULT 'none';\n\n" +
		"CREATE VIEW IF NOT EXISTS cluster_test_notes AS\nSELECT outcome_id, cluster_test_note FROM exchange_outcomes FINAL;\n"
	o := chschema.DefaultOptions()
	o.From = "999"
	start := time.Now()
	if _, err := c.script(ctx, generated(t, o, map[string]string{"999_cluster_test.sql": migration}), "client", "--multiquery"); err != nil {
		t.Fatal(err)
	}
	t.Logf("migration applied through 0-0 in %s", time.Since(start).Round(time.Millisecond))
	// Through server 1-1 (shard 1), with the column set, and without it.
	id1, id2 := "00000000-0000-0000-0000-00000000a001", "00000000-0000-0000-0000-00000000a002"
	for _, row := range []struct {
		columns string
		values  []any
	}{
		{"outcome_id, version, network, requested_at, cluster_test_note", []any{id1, uint64(1), "migration-test", time.Now(), "written through 1-1"}},
		{"outcome_id, version, network, requested_at", []any{id2, uint64(1), "migration-test", time.Now()}},
	} {
		batch, err := c.nodes[3].PrepareBatch(ctx, "INSERT INTO exchange_outcomes ("+row.columns+")")
		if err != nil {
			t.Fatal(err)
		}
		if err := batch.Append(row.values...); err != nil {
			t.Fatal(err)
		}
		if err := batch.Send(); err != nil {
			t.Fatal(err)
		}
	}
	c.syncReplicas(t, ctx)
	for i, conn := range c.nodes {
		var n uint64
		if err := conn.QueryRow(ctx, `SELECT count() FROM system.columns WHERE database = currentDatabase()
			AND table IN ('exchange_outcomes', 'exchange_outcomes_local') AND name = 'cluster_test_note'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 2 {
			t.Errorf("server %s: the new column is on %d of exchange_outcomes and exchange_outcomes_local", c.name(i), n)
		}
		got := map[string]string{}
		rows, err := conn.Query(ctx, "SELECT toString(outcome_id), cluster_test_note FROM cluster_test_notes WHERE outcome_id IN (?, ?)", id1, id2)
		if err != nil {
			t.Fatalf("server %s: the new view: %v", c.name(i), err)
		}
		for rows.Next() {
			var id, note string
			if err := rows.Scan(&id, &note); err != nil {
				t.Fatal(err)
			}
			got[id] = note
		}
		rows.Close()
		if want := map[string]string{id1: "written through 1-1", id2: "none"}; !maps.Equal(got, want) {
			t.Errorf("server %s: the new view gives %v, want %v", c.name(i), got, want)
		}
	}
	// The cluster keeps the migration: the other tests start from an empty
	// database, and this one again from schema.sql (above).
}

// generated is the cluster schema of schemas/clickhouse plus extra
// migrations (file name → SQL).
func generated(t *testing.T, o chschema.Options, extra map[string]string) []byte {
	t.Helper()
	src := fstest.MapFS{}
	files, err := schemas.ClickHouse.ReadDir("clickhouse")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		data, err := schemas.ClickHouse.ReadFile("clickhouse/" + f.Name())
		if err != nil {
			t.Fatal(err)
		}
		src["clickhouse/"+f.Name()] = &fstest.MapFile{Data: data}
	}
	for name, sql := range extra {
		src["clickhouse/"+name] = &fstest.MapFile{Data: []byte(sql)}
	}
	out, err := chschema.Generate(src, o)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// rows is what a run stored, read through server 0-0's deduplicated
// views: every outcome (stage.outcomeSet) and every event, without what
// depends on the run's wall clock or its EVENTS sequences.
type rows struct{ outcomes, events map[string]string }

func (c *chCluster) rows(t *testing.T, ctx context.Context, s *stage) rows {
	t.Helper()
	r := rows{outcomes: s.outcomeSet(ctx), events: map[string]string{}}
	res, err := c.nodes[0].Query(ctx, `SELECT toString(event_id), concat(network, ' ', format, ' ', message_id, ' ', message_type, ' ', role,
		' ', request_kind, ' ', correlation_key, ' ', in_reply_to, ' ', requester_org, ' ', responder_org, ' ', toString(event_time_ms),
		' ', status, ' ', ack_code, ' ', arrayStringConcat(reason_codes, ','), ' ', exception_code, ' ', patient_token,
		' ', toString(record_count), ' ', raw_subject, ' ', purpose) FROM events`)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	for res.Next() {
		var id, row string
		if err := res.Scan(&id, &row); err != nil {
			t.Fatal(err)
		}
		r.events[id] = row
	}
	if err := res.Err(); err != nil {
		t.Fatal(err)
	}
	return r
}

// compare reports every row of want missing from got or different there,
// and every row got has beyond want.
func compare(t *testing.T, what string, want, got map[string]string) (lost, extra, changed int) {
	t.Helper()
	for _, id := range slices.Sorted(maps.Keys(want)) {
		g, ok := got[id]
		switch {
		case !ok:
			lost++
		case g != want[id]:
			changed++
		default:
			continue
		}
		if lost+changed <= 10 {
			t.Errorf("%s %s: uninterrupted %q, under the fault %q", what, id, want[id], g)
		}
	}
	for id := range got {
		if _, ok := want[id]; !ok {
			extra++
		}
	}
	if extra > 0 {
		t.Errorf("%s: %d rows the uninterrupted run does not have", what, extra)
	}
	return lost, extra, changed
}

// fault is injected while the traffic flows, once a quarter of the
// messages are stored; it returns once the ClickHouse cluster is whole
// again.
type fault func(t *testing.T, ctx context.Context, s *stage)

// clusterTopology is the pipeline of the cluster tests: one linker, one
// writer through server 0-0, the rollup rebuilt on 0-0 and 1-0.
func (c *chCluster) topology(idle, lateness time.Duration) topology {
	return topology{linkers: 1, writers: 1, partitions: 4, idle: idle, lateness: lateness,
		ch: c.nodes[0], rollupShards: []chstore.DSN{c.dsns[0], c.dsns[2]}}
}

// runUnder runs clusterPlan on an empty cluster with the fault (nil: none)
// and returns what was stored, once every message and request is there,
// the pipeline settled and the replicas in sync; each read through every
// server matches the truth.
func (c *chCluster) runUnder(t *testing.T, ctx context.Context, plan *simulator.Plan, schema []byte, topo topology, f fault) rows {
	t.Helper()
	c.reset(t, ctx, schema)
	topo.ch = c.nodes[0]
	s := startStage(t, ctx, plan.Networks(), topo)
	sent := make(chan error, 1)
	go func() {
		stats, err := plan.Send(ctx, s.ingest.Addrs())
		if err == nil && (stats.Failed != 0 || stats.Unexpected != 0) {
			err = fmt.Errorf("simulator: %s", stats)
		}
		sent <- err
	}()
	var whole time.Time
	if f != nil {
		c.waitEvents(t, ctx, uint64(plan.ValidMessages()/4))
		f(t, ctx, s)
		whole = time.Now()
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	s.assertTruth(ctx, plan)
	if f != nil {
		t.Logf("every message and request stored, the pipeline settled, %s after the cluster was whole again", time.Since(whole).Round(time.Millisecond))
	}
	c.syncReplicas(t, ctx)
	c.assertEveryNodeMatchesTruth(t, ctx, plan)
	return c.rows(t, ctx, s)
}

// waitEvents waits until the cluster holds n events (every copy counted).
func (c *chCluster) waitEvents(t *testing.T, ctx context.Context, n uint64) {
	t.Helper()
	for {
		var got uint64
		if err := c.nodes[0].QueryRow(ctx, "SELECT count() FROM exchange_events").Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got >= n {
			t.Logf("fault injected with %d events stored", got)
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%d events stored, waiting for %d: %v", got, n, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestClusterFaults runs the same traffic on an uninterrupted cluster and
// under each fault, and compares what each stored with the uninterrupted
// run row by row: nothing lost, nothing doubled in the deduplicated views,
// nothing changed.
func TestClusterFaults(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	c := liveCHCluster(t, ctx)
	schema := generated(t, chschema.DefaultOptions(), nil)
	plan := clusterPlan(t)
	var want rows
	topo := c.topology(3*time.Second, 0)
	t.Run("uninterrupted", func(t *testing.T) { want = c.runUnder(t, ctx, plan, schema, topo, nil) })
	if t.Failed() {
		return
	}
	for _, tc := range []struct {
		name string
		f    fault
	}{
		{"replica killed and restarted", c.killReplica},
		{"ZooKeeper down 30s", c.zookeeperDown},
		{"shard down 60s", c.shardDown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			compareRuns(t, want, c.runUnder(t, ctx, plan, schema, topo, tc.f))
		})
	}
}

func compareRuns(t *testing.T, want, got rows) {
	t.Helper()
	ol, oe, oc := compare(t, "outcome", want.outcomes, got.outcomes)
	el, ee, ec := compare(t, "event", want.events, got.events)
	t.Logf("outcomes: %d lost, %d extra, %d changed of %d; events: %d lost, %d extra, %d changed of %d",
		ol, oe, oc, len(want.outcomes), el, ee, ec, len(want.events))
}

// TestClusterNATSNodeAndReplicaLost stops the NATS node leading EVENTS and
// kills ClickHouse server 1-1 at once, while the traffic flows, and
// compares what was stored with the same run uninterrupted. As in
// TestNodeLossLosesAndDoublesNothing, a message the ingest refused during
// the election is sent again seconds later, hours late in the simulator's
// event time: two hours of traffic, six hours of lateness and a 20 s idle
// rule keep the re-sends within the lateness in both runs.
func TestClusterNATSNodeAndReplicaLost(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	c := liveCHCluster(t, ctx)
	schema := generated(t, chschema.DefaultOptions(), nil)
	plan, err := simulator.Generate(simulator.Config{Requests: 2000, Seed: 26, Start: time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC),
		Span: 2 * time.Hour, MaxRetries: 100, AckTimeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	topo := c.topology(20*time.Second, 6*time.Hour)
	var want rows
	t.Run("uninterrupted", func(t *testing.T) { want = c.runUnder(t, ctx, plan, schema, topo, nil) })
	if t.Failed() {
		return
	}
	t.Run("NATS node and replica lost", func(t *testing.T) {
		compareRuns(t, want, c.runUnder(t, ctx, plan, schema, topo, c.natsNodeAndReplica))
	})
}

// natsNodeAndReplica stops the NATS node leading EVENTS (it stays down,
// as in TestNodeLossLosesAndDoublesNothing) and kills server 1-1 at the
// same moment, then restarts 1-1.
func (c *chCluster) natsNodeAndReplica(t *testing.T, ctx context.Context, s *stage) {
	events, err := s.admin.Stream(ctx, bus.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	info, err := events.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	node := strings.TrimPrefix(info.Cluster.Leader, "n")
	if len(node) != 1 || node[0] < '0' || node[0] > '2' {
		t.Fatalf("EVENTS leader %q is not one of n0..n2", info.Cluster.Leader)
	}
	s.nats.StopNode(int(node[0] - '0'))
	t.Logf("stopped NATS node %s, the EVENTS leader", info.Cluster.Leader)
	c.killReplica(t, ctx, s)
}

// killReplica kills server 1-1 with SIGKILL while the writer writes
// through 0-0 into both shards, starts it again after 5 s and measures
// how long it takes to catch up from its peer 1-0.
func (c *chCluster) killReplica(t *testing.T, ctx context.Context, _ *stage) {
	if _, err := c.script(ctx, nil, "kill", "1-1"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Second)
	start := time.Now()
	if _, err := c.script(ctx, nil, "start-node", "1-1"); err != nil {
		t.Fatal(err)
	}
	c.reconnect(t, ctx, 3)
	tables, err := c.localTables(ctx, c.nodes[3])
	if err != nil {
		t.Fatal(err)
	}
	for _, table := range tables {
		if err := c.nodes[3].Exec(ctx, "SYSTEM SYNC REPLICA "+table); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("1-1 restarted and caught up with 1-0 in %s", time.Since(start).Round(time.Millisecond))
}

// zookeeperDown stops ZooKeeper for 30 s: the replicated tables turn
// read-only and the writer's inserts fail until it is back.
func (c *chCluster) zookeeperDown(t *testing.T, ctx context.Context, _ *stage) {
	if _, err := c.script(ctx, nil, "zk-stop"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(30 * time.Second)
	if _, err := c.script(ctx, nil, "zk-start"); err != nil {
		t.Fatal(err)
	}
}

// shardDown stops both servers of shard 1 for 60 s: every insert through
// the Distributed tables (insert_distributed_sync) fails until they are
// back.
func (c *chCluster) shardDown(t *testing.T, ctx context.Context, _ *stage) {
	for _, n := range []string{"1-0", "1-1"} {
		if _, err := c.script(ctx, nil, "stop-node", n); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(60 * time.Second)
	for i, n := range []string{"1-0", "1-1"} {
		if _, err := c.script(ctx, nil, "start-node", n); err != nil {
			t.Fatal(err)
		}
		c.reconnect(t, ctx, 2+i)
	}
}

// reconnect opens server i's connection again after a restart.
func (c *chCluster) reconnect(t *testing.T, ctx context.Context, i int) {
	t.Helper()
	conn, err := chstore.Connect(ctx, c.dsns[i], c.dsns[i].Database)
	if err != nil {
		t.Fatal(err)
	}
	c.nodes[i].Close()
	c.nodes[i] = conn
}
