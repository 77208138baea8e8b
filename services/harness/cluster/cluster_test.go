package cluster

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hinscore/hinscore/services/lib/bus"
)

// TestNodeLossLosesAndDoublesNothing runs simulated HL7 v2 traffic through
// the pipeline against a 3-node JetStream cluster with R3 streams, every
// service connected as its own least-privileged user of
// deploy/nats/accounts.conf, and shuts down the node leading EVENTS while
// the traffic flows. ClickHouse must end up with exactly the simulator's
// truth: nothing lost, nothing counted twice.
func TestNodeLossLosesAndDoublesNothing(t *testing.T) {
	// The simulator stamps a day of traffic that is sent in seconds, so a
	// wall-clock second is many event-time minutes. A message the ingest
	// refused during the election is re-sent seconds later: in event time,
	// hours late. Two hours of traffic and six hours of allowed lateness keep
	// such re-sends within the lateness, as a few seconds are with real
	// traffic; the outcomes are then decided once the traffic stops.
	plan := generateSpan(t, 2000, 11, 2*time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// The idle rule must not run while a stream elects its new leader: the
	// linker, seeing no message for a while, would take itself for caught up
	// and decide pending requests early. 20 s outlasts the election by far.
	s := startStage(t, ctx, plan.Networks(), topology{linkers: 1, writers: 1, partitions: 4, idle: 20 * time.Second, lateness: 6 * time.Hour})

	for _, name := range []string{bus.StreamRaw, bus.StreamEvents, bus.StreamOutcomes, bus.StreamDLQ, bus.StreamScorecards, bus.StreamAudit} {
		st, err := s.admin.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if r := st.CachedInfo().Config.Replicas; r != 3 {
			t.Fatalf("%s has %d replicas, want 3", name, r)
		}
	}

	sent := make(chan error, 1)
	go func() {
		stats, err := plan.Send(ctx, s.ingest.Addrs())
		if err == nil && (stats.Failed != 0 || stats.Unexpected != 0) {
			t.Errorf("simulator: %s", stats)
		}
		sent <- err
	}()

	// Wait for a third of the traffic, then stop the node leading EVENTS,
	// so that its stream, its consumers and probably the meta leader move.
	events, err := s.admin.Stream(ctx, bus.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	var leader string
	for {
		info, err := events.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.State.Msgs >= uint64(plan.ValidMessages()/3) {
			leader = info.Cluster.Leader
			break
		}
		select {
		case err := <-sent:
			t.Fatalf("the traffic ended before a third of it was stored: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	node := strings.TrimPrefix(leader, "n")
	if len(node) != 1 || node[0] < '0' || node[0] > '2' {
		t.Fatalf("EVENTS leader %q is not one of n0..n2", leader)
	}
	t.Logf("stopping %s, the EVENTS leader", leader)
	s.nats.StopNode(int(node[0] - '0'))

	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	s.assertTruth(ctx, plan)

	info, err := events.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Cluster.Leader == leader || info.Cluster.Leader == "" {
		t.Fatalf("EVENTS leader after the loss is %q", info.Cluster.Leader)
	}
}

// TestReplicasGiveTheSameOutcomes runs the same traffic twice against a
// 3-node cluster: with one linker and one writer, then with two of each
// (the linkers share 8 partitions through their leases, the writers one
// durable consumer per stream). Both must store the simulator's truth and
// the very same outcome set.
func TestReplicasGiveTheSameOutcomes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	run := func(t *testing.T, topo topology) map[string]string {
		plan := generate(t, 1500, 5)
		s := startStage(t, ctx, plan.Networks(), topo)
		if topo.linkers > 1 {
			// The replicas share the partitions before the traffic comes,
			// so that both link some of it.
			s.waitSharedPartitions(ctx, topo, time.Minute)
		}
		s.send(ctx, plan)
		s.assertTruth(ctx, plan)
		if topo.linkers > 1 {
			s.assertSharedPartitions(ctx, topo)
		}
		return s.outcomeSet(ctx)
	}
	var one, two map[string]string
	t.Run("one of each", func(t *testing.T) {
		one = run(t, topology{linkers: 1, writers: 1, partitions: 8, idle: 3 * time.Second})
	})
	t.Run("two of each", func(t *testing.T) {
		two = run(t, topology{linkers: 2, writers: 2, partitions: 8, idle: 3 * time.Second})
	})
	if t.Failed() {
		return
	}
	if len(one) != len(two) {
		t.Fatalf("one linker and writer stored %d outcomes, two of each %d", len(one), len(two))
	}
	diffs := 0
	for _, id := range slices.Sorted(maps.Keys(one)) {
		if one[id] != two[id] && diffs < 10 {
			diffs++
			t.Errorf("outcome %s: one of each %q, two of each %q", id, one[id], two[id])
		}
	}
}

// assertSharedPartitions checks that the linker replicas really split the
// partitions between them: every partition has a lease, and each replica
// holds some.
func (s *stage) assertSharedPartitions(ctx context.Context, topo topology) {
	s.t.Helper()
	owners, err := s.leaseOwners(ctx, topo)
	if err != nil {
		s.t.Fatal(err)
	}
	if len(owners) != topo.linkers {
		s.t.Fatalf("leases held by %v, want %d replicas sharing them", owners, topo.linkers)
	}
	s.t.Logf("partition leases: %v", owners)
}

// waitSharedPartitions waits until every partition has a lease and the
// leases are spread over topo.linkers replicas: a replica whose stores
// were not ready at its start (the lease bucket being created on the
// cluster) joins later and takes its share.
func (s *stage) waitSharedPartitions(ctx context.Context, topo topology, limit time.Duration) {
	s.t.Helper()
	deadline := time.Now().Add(limit)
	for {
		owners, err := s.leaseOwners(ctx, topo)
		if err == nil && len(owners) == topo.linkers {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("after %s the leases are held by %v (%v), want %d replicas sharing them", limit, owners, err, topo.linkers)
		}
		select {
		case <-ctx.Done():
			s.t.Fatal(ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// leaseOwners counts the partitions each replica holds.
func (s *stage) leaseOwners(ctx context.Context, topo topology) (map[string]int, error) {
	kv, err := s.admin.KeyValue(ctx, "linker_leases")
	if err != nil {
		return nil, err
	}
	owners := map[string]int{}
	for p := range topo.partitions {
		e, err := kv.Get(ctx, "partition."+strconv.Itoa(p))
		if err != nil {
			return owners, fmt.Errorf("partition %d has no lease: %w", p, err)
		}
		owners[string(e.Value())]++
	}
	return owners, nil
}
