package linker

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/hinscore/hinscore/services/linker/join/jointest"
)

// leaseOwners reads who holds each partition's lease.
func leaseOwners(t *testing.T, kv jetstream.KeyValue, parts int) []string {
	t.Helper()
	out := make([]string, parts)
	for p := range parts {
		e, err := kv.Get(context.Background(), leaseKey(uint32(p)))
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
		case err != nil:
			t.Fatal(err)
		default:
			out[p] = string(e.Value())
		}
	}
	return out
}

func (l *Linker) ownedSet() []uint32 {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []uint32
	for p := range l.owned {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// leaseTestTTL is the lease TTL of TestLeases' replica.
const leaseTestTTL = 900 * time.Millisecond

// leaseCase is a lease bucket prepared in one way a replica finds it, and
// what the replica must take and leave.
type leaseCase struct {
	name  string
	cfg   func(*Config)
	setup func(t *testing.T, kv jetstream.KeyValue) (stop func())
	check func(t *testing.T, l *Linker, reg *prometheus.Registry, kv jetstream.KeyValue)
}

// leaseClaimCases: what a replica claims of a bucket others use or used.
func leaseClaimCases() []leaseCase {
	return []leaseCase{
		{
			name: "a lone replica claims every partition",
			check: func(t *testing.T, l *Linker, reg *prometheus.Registry, kv jetstream.KeyValue) {
				waitFor(t, waitLimit, "4 partitions", func() bool { return l.ownedCount() == 4 })
				if got := leaseOwners(t, kv, 4); !slices.Equal(got, []string{"me", "me", "me", "me"}) {
					t.Fatalf("owners %v", got)
				}
			},
		},
		{
			name:  "a live replica's leases are left alone; the fair share is taken",
			setup: renewingReplica,
			check: func(t *testing.T, l *Linker, reg *prometheus.Registry, kv jetstream.KeyValue) {
				waitFor(t, waitLimit, "partitions 2 and 3", func() bool { return slices.Equal(l.ownedSet(), []uint32{2, 3}) })
				time.Sleep(2 * leaseTestTTL) // and no more, however long it runs
				if got := l.ownedSet(); !slices.Equal(got, []uint32{2, 3}) {
					t.Fatalf("owns %v, want [2 3]", got)
				}
			},
		},
		{
			name: "an expired lease is taken over",
			setup: func(t *testing.T, kv jetstream.KeyValue) func() {
				if _, err := kv.PutString(context.Background(), leaseKey(0), "dead"); err != nil {
					t.Fatal(err)
				}
				return func() {}
			},
			check: func(t *testing.T, l *Linker, reg *prometheus.Registry, kv jetstream.KeyValue) {
				waitFor(t, waitLimit, "partitions 1-3", func() bool { return l.ownedCount() >= 3 })
				waitFor(t, waitLimit, "partition 0 after its lease expired", func() bool { return l.ownedCount() == 4 })
				if got := leaseOwners(t, kv, 4); got[0] != "me" {
					t.Fatalf("partition 0 owned by %q", got[0])
				}
			},
		},
	}
}

// renewingReplica is another live replica, "other", holding partitions 0
// and 1 and renewing them until stopped.
func renewingReplica(t *testing.T, kv jetstream.KeyValue) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	put := func() {
		for _, k := range []string{replicaPrefix + "other", leaseKey(0), leaseKey(1)} {
			if _, err := kv.PutString(ctx, k, "other"); err != nil && ctx.Err() == nil {
				t.Error(err)
			}
		}
	}
	put()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			select {
			case <-ctx.Done():
			case <-time.After(leaseTestTTL / 4):
				put()
			}
		}
	}()
	return func() { cancel(); <-done }
}

// leaseOwnCases: its own leases, lost, taken back or listed.
func leaseOwnCases() []leaseCase {
	return []leaseCase{
		{
			name: "its own previous incarnation's leases are taken back at once",
			cfg:  func(c *Config) { c.LeaseTTL = 30 * time.Second },
			setup: func(t *testing.T, kv jetstream.KeyValue) func() {
				for p := range uint32(4) {
					if _, err := kv.PutString(context.Background(), leaseKey(p), "me"); err != nil {
						t.Fatal(err)
					}
				}
				return func() {}
			},
			check: func(t *testing.T, l *Linker, reg *prometheus.Registry, kv jetstream.KeyValue) {
				// Far sooner than the 30s TTL.
				waitFor(t, waitLimit, "4 partitions", func() bool { return l.ownedCount() == 4 })
			},
		},
		{
			name: "a lease taken by another replica stops its partition",
			check: func(t *testing.T, l *Linker, reg *prometheus.Registry, kv jetstream.KeyValue) {
				waitFor(t, waitLimit, "4 partitions", func() bool { return l.ownedCount() == 4 })
				if _, err := kv.PutString(context.Background(), leaseKey(2), "thief"); err != nil {
					t.Fatal(err)
				}
				waitFor(t, waitLimit, "partition 2 stopped", func() bool { return !slices.Contains(l.ownedSet(), 2) })
				if n := metricValue(t, reg, "hinscore_linker_lease_events_total", "lost"); n != 1 {
					t.Fatalf("lease_events_total{event=lost} = %v, want 1", n)
				}
			},
		},
		{
			name: "static partitions: exactly those",
			cfg:  func(c *Config) { c.Partitions = []uint32{1, 3} },
			check: func(t *testing.T, l *Linker, reg *prometheus.Registry, kv jetstream.KeyValue) {
				waitFor(t, waitLimit, "partitions 1 and 3", func() bool { return slices.Equal(l.ownedSet(), []uint32{1, 3}) })
				if got := leaseOwners(t, kv, 4); !slices.Equal(got, []string{"", "me", "", "me"}) {
					t.Fatalf("owners %v", got)
				}
			},
		},
	}
}

// TestLeases runs one replica against lease buckets prepared in each way a
// replica finds them, and checks what it takes and what it leaves.
func TestLeases(t *testing.T) {
	for _, tc := range slices.Concat(leaseClaimCases(), leaseOwnCases()) {
		t.Run(tc.name, func(t *testing.T) {
			js := startBus(t)
			mutate := func(c *Config) {
				c.ReplicaID = "me"
				c.LeaseTTL = leaseTestTTL
				if tc.cfg != nil {
					tc.cfg(c)
				}
			}
			cfg := DefaultConfig()
			mutate(&cfg)
			st, err := openStores(context.Background(), js, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if tc.setup != nil {
				defer tc.setup(t, st.leases)()
			}
			l, reg := newLinker(t, js, &fakeClock{now: jointest.T0}, mutate)
			if err := l.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			tc.check(t, l, reg, st.leases)
			if err := l.Shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}
			// Shutdown hands every lease back.
			for p, o := range leaseOwners(t, st.leases, 4) {
				if o == "me" {
					t.Fatalf("partition %d still leased after Shutdown", p)
				}
			}
			if _, err := st.leases.Get(context.Background(), replicaPrefix+"me"); !errors.Is(err, jetstream.ErrKeyNotFound) {
				t.Fatalf("replica key after Shutdown: %v", err)
			}
		})
	}
}
