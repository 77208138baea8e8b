package cluster

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/hinscore/hinscore/services/chwriter"
	"github.com/hinscore/hinscore/services/harness/simulator"
	"github.com/hinscore/hinscore/services/lib/chstore"
	"github.com/hinscore/hinscore/services/scorecard"
)

// envCHCluster holds the DSNs of the live ClickHouse cluster of
// scripts/chcluster.sh, as its `env` command prints them: the writer's
// DSN of each server, shard 0 replica 0, 0-1, 1-0, 1-1, comma-separated.
const envCHCluster = "HINSCORE_TEST_CHCLUSTER"

// chScript is scripts/chcluster.sh, seen from this module.
const chScript = "../../../scripts/chcluster.sh"

// chCluster is the live cluster: a connection to each server as the
// writer, and the script that started it (for DDL as `default` and for
// faults).
type chCluster struct {
	raw   []string // the DSNs as given: password_file, never a password
	dsns  []chstore.DSN
	nodes []driver.Conn
}

// envCHClusterRequired, set by make cluster-test, fails a test that finds
// no cluster. Without it the test skips, also under make test and CI,
// which start no cluster (testenv.Required would fail them there).
const envCHClusterRequired = "HINSCORE_TEST_CHCLUSTER_REQUIRED"

// liveCHCluster connects to every server of the cluster, or ends the test
// (skipped, or failed under make cluster-test) when there is none.
func liveCHCluster(t *testing.T, ctx context.Context) *chCluster {
	t.Helper()
	v := os.Getenv(envCHCluster)
	if v == "" {
		msg := envCHCluster + " is not set: start the ClickHouse cluster with `make cluster-test`, or " +
			"scripts/chcluster.sh start && export $(scripts/chcluster.sh env)"
		if os.Getenv(envCHClusterRequired) != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	c := &chCluster{raw: strings.Split(v, ",")}
	if len(c.raw) != 4 {
		t.Fatalf("%s names %d servers, want 4 (2 shards x 2 replicas)", envCHCluster, len(c.raw))
	}
	for _, s := range c.raw {
		d, err := chstore.ParseDSN(s)
		if err != nil {
			t.Fatal(err)
		}
		conn, err := chstore.Connect(ctx, d, d.Database)
		if err != nil {
			t.Fatalf("server %s: %v", d.Addr(), err)
		}
		c.dsns, c.nodes = append(c.dsns, d), append(c.nodes, conn)
	}
	// The connections of the end: a fault reconnects to a restarted server.
	t.Cleanup(func() {
		for _, conn := range c.nodes {
			conn.Close()
		}
	})
	return c
}

// script runs scripts/chcluster.sh with args, stdin as its input.
func (c *chCluster) script(ctx context.Context, stdin []byte, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, chScript, args...)
	cmd.Stdin = bytes.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("chcluster.sh %s: %w: %s", strings.Join(args, " "), err, errb.String())
	}
	return out.String(), nil
}

// reset drops the database on every server and applies schema (the
// generated cluster schema) through server 0-0, as an administrator
// provisions it: each run starts empty, with no replicated block a
// previous run inserted remembered for deduplication.
func (c *chCluster) reset(t *testing.T, ctx context.Context, schema []byte) {
	t.Helper()
	start := time.Now()
	if _, err := c.script(ctx, nil, "client", "--query", "DROP DATABASE IF EXISTS hinscore ON CLUSTER hinscore"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.script(ctx, schema, "client", "--multiquery"); err != nil {
		t.Fatal(err)
	}
	t.Logf("cluster schema applied through 0-0 in %s", time.Since(start).Round(time.Millisecond))
}

// syncReplicas waits until every replica has fetched what its peer holds,
// for every replicated table, so that a read through any server sees
// every row whichever replica answers it.
func (c *chCluster) syncReplicas(t *testing.T, ctx context.Context) {
	t.Helper()
	start := time.Now()
	for i, conn := range c.nodes {
		tables, err := c.localTables(ctx, conn)
		if err != nil {
			t.Fatal(err)
		}
		for _, table := range tables {
			if err := conn.Exec(ctx, "SYSTEM SYNC REPLICA "+table); err != nil {
				t.Fatalf("server %s: SYNC REPLICA %s: %v", c.name(i), table, err)
			}
		}
	}
	t.Logf("replicas in sync after %s", time.Since(start).Round(time.Millisecond))
}

func (c *chCluster) localTables(ctx context.Context, conn driver.Conn) ([]string, error) {
	rows, err := conn.Query(ctx, "SELECT name FROM system.tables WHERE database = currentDatabase() AND engine LIKE 'Replicated%'")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, err
		}
		out = append(out, name)
	}
	return out, rows.Err()
}

// name is a server's place: shard-replica.
func (c *chCluster) name(i int) string { return fmt.Sprintf("%d-%d", i/2, i%2) }

// clusterPlan is the traffic of the cluster tests: ~2,000 requests on a
// fixed day in the past, so every outcome is decided by its answers or
// its deadline, never by the clock.
func clusterPlan(t *testing.T) *simulator.Plan {
	t.Helper()
	plan, err := simulator.Generate(simulator.Config{Requests: 2000, Seed: 26, Start: time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC),
		MaxRetries: 100, AckTimeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return plan
}

// TestClusterPipelineMatchesTruth runs the pipeline (mllp-ingest, linker,
// chwriter against the 3-node NATS cluster, each as its NATS user) with
// the chwriter writing through the Distributed tables of a live ClickHouse
// cluster (2 shards x 2 replicas on ZooKeeper, scripts/chcluster.sh), then
// checks through each of the four servers that every outcome matches the
// simulator's truth field by field (`hinscore verify`), each counted once
// in the deduplicated views; that the per-shard rollup rebuild swapped
// into the replicated outcomes_daily_local of both replicas and agrees
// with the outcomes; and that the api's chain and journey lookups answer
// across shards.
func TestClusterPipelineMatchesTruth(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	c := liveCHCluster(t, ctx)
	schema, err := os.ReadFile(filepath.Join(deployDir, "clickhouse", "cluster", "schema.sql"))
	if err != nil {
		t.Fatal(err)
	}
	c.reset(t, ctx, schema)
	plan := clusterPlan(t)
	started := time.Now()
	s := startStage(t, ctx, plan.Networks(), c.topology(3*time.Second, 0))
	s.send(ctx, plan)
	s.assertTruth(ctx, plan)
	t.Logf("%d requests, %d messages stored through the cluster in %s", len(plan.Requests()), plan.ValidMessages(),
		time.Since(started).Round(time.Millisecond))
	c.syncReplicas(t, ctx)
	c.assertEveryNodeMatchesTruth(t, ctx, plan)
	t.Run("rollup rebuilt per shard", func(t *testing.T) { c.assertRollup(t, ctx, s) })
	t.Run("lookups across shards", func(t *testing.T) { c.assertLookups(t, ctx, s) })
	t.Run("scorecards through the cluster", func(t *testing.T) { c.assertScorecards(t, ctx) })
}

// assertScorecards builds the day scorecards (the scorecard service's
// queries: the outcomes view, or the rollup merged across the shards,
// joined with the directory) through server 0-0 and through server 1-1,
// from each source: all four must be the same cards.
func (c *chCluster) assertScorecards(t *testing.T, ctx context.Context) {
	now := time.Now()
	build := func(i int, source string) []string {
		t.Helper()
		cards, err := scorecard.Build(ctx, c.nodes[i], scorecard.Query{Granularity: "day", Source: source}, now)
		if err != nil {
			t.Fatalf("scorecards from the %s through %s: %v", source, c.name(i), err)
		}
		var out []string
		for _, card := range cards {
			b, err := scorecard.Marshal(card)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, string(b))
		}
		return out
	}
	want := build(0, scorecard.SourceView)
	if len(want) == 0 {
		t.Fatal("no scorecard")
	}
	for _, v := range []struct {
		node   int
		source string
	}{{3, scorecard.SourceView}, {0, scorecard.SourceRollup}, {3, scorecard.SourceRollup}} {
		got := build(v.node, v.source)
		if !slices.Equal(got, want) {
			t.Errorf("scorecards from the %s through %s differ from the view's through 0-0:\n%.2000s\nwant\n%.2000s",
				v.source, c.name(v.node), strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
	t.Logf("%d day scorecards, the same through 0-0 and 1-1 from the view and the rollup", len(want))
}

// send sends the plan's traffic to the ingest; every message must be
// answered as the plan expects.
func (s *stage) send(ctx context.Context, plan *simulator.Plan) {
	s.t.Helper()
	stats, err := plan.Send(ctx, s.ingest.Addrs())
	if err != nil {
		s.t.Fatal(err)
	}
	if stats.Failed != 0 || stats.Unexpected != 0 {
		s.t.Fatalf("simulator: %s", stats)
	}
}

// assertEveryNodeMatchesTruth reads through each server's Distributed
// tables: the deduplicated views hold each message and each request once,
// and `hinscore verify` (truthcheck.Compare) finds no difference.
func (c *chCluster) assertEveryNodeMatchesTruth(t *testing.T, ctx context.Context, plan *simulator.Plan) {
	t.Helper()
	dir := t.TempDir()
	if err := plan.WriteTruth(dir); err != nil {
		t.Fatal(err)
	}
	bin := buildHinscore(t, ctx)
	for i, conn := range c.nodes {
		var events, eventIDs, outcomes, outcomeIDs uint64
		if err := conn.QueryRow(ctx, "SELECT count(), uniqExact(event_id) FROM events").Scan(&events, &eventIDs); err != nil {
			t.Fatal(err)
		}
		if err := conn.QueryRow(ctx, "SELECT count(), uniqExact(outcome_id) FROM outcomes").Scan(&outcomes, &outcomeIDs); err != nil {
			t.Fatal(err)
		}
		if events != uint64(plan.ValidMessages()) || eventIDs != events || outcomes != uint64(len(plan.Requests())) || outcomeIDs != outcomes {
			t.Errorf("through %s: %d events (%d ids), %d outcomes (%d ids); the simulator sent %d messages, %d requests",
				c.name(i), events, eventIDs, outcomes, outcomeIDs, plan.ValidMessages(), len(plan.Requests()))
		}
		out, err := exec.CommandContext(ctx, bin, "verify", "--truth", dir, "--clickhouse", c.raw[i]).CombinedOutput()
		if err != nil {
			t.Errorf("hinscore verify through %s: %v\n%s", c.name(i), err, out)
			continue
		}
		t.Logf("verify through %s: no difference (%d outcomes)", c.name(i), outcomes)
	}
}

// buildHinscore builds the hinscore binary (its verify is the truth
// comparison, internal to that module).
func buildHinscore(t *testing.T, ctx context.Context) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "hinscore")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/hinscore")
	cmd.Dir = "../../hinscore"
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build hinscore: %v\n%s", err, out)
	}
	return bin
}

// assertRollup runs the writer's rebuild of the months it wrote, which on
// a cluster swaps each shard's month into its outcomes_daily_local
// (REPLACE PARTITION into a replicated table, carried to the other
// replica), then checks that both replicas of each shard hold the same
// rollup, each shard some of it, and that outcomes_daily read through
// any server gives the outcomes view's counts.
func (c *chCluster) assertRollup(t *testing.T, ctx context.Context, s *stage) {
	var w *chwriter.Writer
	for _, comp := range s.comps {
		if x, ok := comp.(*chwriter.Writer); ok {
			w = x
		}
	}
	if err := w.RebuildStale(ctx); err != nil {
		t.Fatalf("rollup rebuild on the shards: %v", err)
	}
	c.syncReplicas(t, ctx)
	const local = "SELECT toUInt64(countMerge(requests)) FROM outcomes_daily_local"
	perNode := make([]uint64, len(c.nodes))
	for i, conn := range c.nodes {
		if err := conn.QueryRow(ctx, local).Scan(&perNode[i]); err != nil {
			t.Fatal(err)
		}
	}
	if perNode[0] != perNode[1] || perNode[2] != perNode[3] || perNode[0] == 0 || perNode[2] == 0 {
		t.Errorf("requests in outcomes_daily_local per server (0-0, 0-1, 1-0, 1-1): %v; want the replicas of a shard equal, each shard some", perNode)
	}
	want := c.counts(t, ctx, c.nodes[0], "SELECT network, outcome, count() FROM outcomes GROUP BY network, outcome")
	if total := perNode[0] + perNode[2]; total != sum(want) {
		t.Errorf("the shards' rollups hold %d requests, the outcomes %d", total, sum(want))
	}
	for i, conn := range c.nodes {
		got := c.counts(t, ctx, conn, "SELECT network, outcome, toUInt64(countMerge(requests)) FROM outcomes_daily GROUP BY network, outcome")
		if !maps.Equal(got, want) {
			t.Errorf("outcomes_daily through %s: %v, the outcomes view %v", c.name(i), got, want)
		}
	}
	t.Logf("rollup: shard 0 %d requests, shard 1 %d, on both replicas of each", perNode[0], perNode[2])
}

// counts reads (key, key, count) rows into "key key" → count.
func (c *chCluster) counts(t *testing.T, ctx context.Context, conn driver.Conn, q string) map[string]uint64 {
	t.Helper()
	rows, err := conn.Query(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]uint64{}
	for rows.Next() {
		var a, b string
		var n uint64
		if err := rows.Scan(&a, &b, &n); err != nil {
			t.Fatal(err)
		}
		out[a+" "+b] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func sum(m map[string]uint64) uint64 {
	var n uint64
	for _, v := range slices.Collect(maps.Values(m)) {
		n += v
	}
	return n
}
