package linker

import (
	"context"
	"errors"
	"hash/fnv"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/nats-io/nats.go/jetstream"
)

// Partition leases. Each partition has a key partition.<p> in the lease
// bucket whose value is the owning replica's id; the bucket's TTL (LeaseTTL)
// removes a key its owner stopped renewing. Each replica also keeps a
// replica.<id> key alive, so that everyone can count the live replicas.
// Every LeaseTTL/3 a replica
//   - renews its keys, with a revision check: a lease that changed hands
//     stops its partition at once; one it could not renew for 2/3 of the
//     TTL stops it too (the key may have expired and been taken);
//   - in shared mode (no static Partitions) computes its fair share,
//     ceil(partitions / live replicas), hands over (checkpoint, then
//     delete the key) what it holds beyond it, and claims free partitions up
//     to it, in an order rotated by its id so replicas rarely race for the
//     same key; in static mode it claims its listed partitions;
//   - takes back at once a lease whose value is its own id: that is its
//     previous incarnation, dead (ids are unique among live replicas).
// A new owner restores the partition's checkpoint and replays from there.

// runner is one partition this replica consumes.
type runner struct {
	p         uint32
	cancel    context.CancelFunc // abort: the lease is gone
	release   chan struct{}      // closed to hand the partition over
	done      chan struct{}
	consuming atomic.Bool

	// owned by the balancer goroutine
	rev       uint64
	renewedAt time.Time
	releasing bool
	lost      bool
}

// balance runs the leases until the run ends (kill) or the drain is over.
func (l *Linker) balance(ctx context.Context) {
	var wg sync.WaitGroup
	ended := make(chan *runner, l.cfg.PartitionCount)
	defer func() {
		wg.Wait()
		l.m.owned.Set(0)
		close(l.done)
	}()
	st := l.openStoresRetry(ctx)
	if st == nil {
		return
	}
	tick := time.NewTicker(l.cfg.LeaseTTL / 3)
	defer tick.Stop()
	draining, drain := false, l.drain
	for {
		if ctx.Err() != nil {
			return // killed: runners end with ctx, nothing is released
		}
		l.renew(ctx, st)
		scanned := false
		if !draining {
			scanned = l.claim(ctx, st, &wg, ended)
		}
		l.mu.Lock()
		l.balanced = l.balanced || scanned
		n := len(l.owned)
		l.mu.Unlock()
		if draining && n == 0 {
			l.releaseReplica(ctx, st)
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case r := <-ended:
			l.ended(ctx, st, r)
		case <-drain:
			// Runners see the drain themselves: each finishes its stream,
			// checkpoints and ends; its lease goes when it does.
			draining, drain = true, nil
		}
	}
}

func (l *Linker) openStoresRetry(ctx context.Context) *stores {
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval = 100 * time.Millisecond
	bo.MaxInterval = 5 * time.Second
	bo.MaxElapsedTime = 0
	// A bus that never appears must not hold Shutdown up.
	waitCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(drainContext{l.drain}, cancel)
	defer stop()
	for {
		st, err := openStores(waitCtx, l.js, l.cfg)
		if err == nil {
			return st
		}
		if waitCtx.Err() != nil {
			return nil
		}
		wait := bo.NextBackOff()
		l.log.Error().Err(err).Dur("retry_in", wait).Msg("linker stores unavailable")
		select {
		case <-waitCtx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

// opTimeout bounds one lease operation, well under the renewal period.
func (l *Linker) opTimeout() time.Duration { return max(l.cfg.LeaseTTL/6, 50*time.Millisecond) }

// renew keeps the replica's presence and its leases alive.
func (l *Linker) renew(ctx context.Context, st *stores) {
	octx, cancel := context.WithTimeout(ctx, l.opTimeout())
	_, err := st.leases.Put(octx, replicaPrefix+l.cfg.ReplicaID, []byte(l.cfg.ReplicaID))
	cancel()
	if err != nil && ctx.Err() == nil {
		l.log.Warn().Err(err).Msg("replica presence not renewed")
	}
	now := time.Now()
	for _, r := range l.runners() {
		if r.lost {
			continue
		}
		octx, cancel := context.WithTimeout(ctx, l.opTimeout())
		rev, err := st.leases.Update(octx, leaseKey(r.p), []byte(l.cfg.ReplicaID), r.rev)
		cancel()
		switch {
		case err == nil:
			r.rev, r.renewedAt = rev, now
		case ctx.Err() != nil:
			return
		case errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyNotFound):
			l.lose(r, "taken by another replica")
		case now.Sub(r.renewedAt) > 2*l.cfg.LeaseTTL/3:
			// The key may have expired meanwhile: stop before another
			// replica can have taken it.
			l.lose(r, "not renewed in time: "+err.Error())
		default:
			l.log.Warn().Err(err).Uint32("partition", r.p).Msg("lease not renewed; retrying")
		}
	}
}

func (l *Linker) lose(r *runner, why string) {
	r.lost = true
	r.cancel()
	l.m.leases.WithLabelValues("lost").Inc()
	l.log.Warn().Uint32("partition", r.p).Str("why", why).Msg("partition lease lost; stopped consuming it")
}

// runners returns the partitions held, in partition order.
func (l *Linker) runners() []*runner {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]*runner, 0, len(l.owned))
	for _, r := range l.owned {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b *runner) int { return int(a.p) - int(b.p) })
	return out
}

// preference is the order in which this replica claims partitions: all of
// them (or its static list), rotated by a hash of its id.
func (l *Linker) preference() []uint32 {
	parts := l.cfg.partitions()
	h := fnv.New32a()
	_, _ = h.Write([]byte(l.cfg.ReplicaID))
	k := int(h.Sum32() % uint32(len(parts)))
	return append(parts[k:], parts[:k]...)
}

// leaseView is the lease bucket as one scan saw it.
type leaseView struct {
	owners   map[string]jetstream.KeyValueEntry // lease key → entry
	replicas int
}

func (l *Linker) scan(ctx context.Context, st *stores) (leaseView, error) {
	v := leaseView{owners: map[string]jetstream.KeyValueEntry{}}
	octx, cancel := context.WithTimeout(ctx, l.opTimeout())
	defer cancel()
	w, err := st.leases.WatchAll(octx)
	if err != nil {
		return v, err
	}
	defer func() { _ = w.Stop() }()
	for {
		select {
		case <-octx.Done():
			return v, octx.Err()
		case e := <-w.Updates():
			if e == nil {
				v.replicas = max(v.replicas, 1)
				return v, nil
			}
			if e.Operation() != jetstream.KeyValuePut {
				continue
			}
			if strings.HasPrefix(e.Key(), replicaPrefix) {
				v.replicas++
			} else {
				v.owners[e.Key()] = e
			}
		}
	}
}

// claim hands over what exceeds the fair share and takes free partitions up
// to it. It reports whether it could read the leases.
func (l *Linker) claim(ctx context.Context, st *stores, wg *sync.WaitGroup, ended chan<- *runner) bool {
	view, err := l.scan(ctx, st)
	if err != nil {
		if ctx.Err() == nil {
			l.log.Warn().Err(err).Msg("lease scan failed")
		}
		return false
	}
	held := 0
	for _, r := range l.runners() {
		if !r.lost && !r.releasing {
			held++
		}
	}
	share := len(l.cfg.partitions())
	if l.cfg.dynamic() {
		share = (l.cfg.PartitionCount + view.replicas - 1) / view.replicas
	}
	pref := l.preference()
	if held > share {
		// Hand over the partitions least preferred first.
		for i := len(pref) - 1; i >= 0 && held > share; i-- {
			l.mu.Lock()
			r := l.owned[pref[i]]
			l.mu.Unlock()
			if r != nil && !r.lost && !r.releasing {
				r.releasing = true
				close(r.release)
				held--
				l.log.Info().Uint32("partition", r.p).Int("share", share).Msg("handing partition over")
			}
		}
		return true
	}
	for _, p := range pref {
		if held >= share {
			break
		}
		l.mu.Lock()
		_, mine := l.owned[p]
		l.mu.Unlock()
		if mine {
			continue
		}
		var rev uint64
		octx, cancel := context.WithTimeout(ctx, l.opTimeout())
		switch e := view.owners[leaseKey(p)]; {
		case e == nil:
			rev, err = st.leases.Create(octx, leaseKey(p), []byte(l.cfg.ReplicaID))
		case string(e.Value()) == l.cfg.ReplicaID:
			rev, err = st.leases.Update(octx, leaseKey(p), []byte(l.cfg.ReplicaID), e.Revision())
		default:
			cancel()
			continue
		}
		cancel()
		if err != nil {
			if !errors.Is(err, jetstream.ErrKeyExists) && ctx.Err() == nil {
				l.log.Warn().Err(err).Uint32("partition", p).Msg("lease not taken")
			}
			continue
		}
		held++
		l.startRunner(ctx, st, p, rev, wg, ended)
	}
	return true
}

func (l *Linker) startRunner(ctx context.Context, st *stores, p uint32, rev uint64, wg *sync.WaitGroup, ended chan<- *runner) {
	rctx, cancel := context.WithCancel(ctx)
	r := &runner{p: p, cancel: cancel, release: make(chan struct{}), done: make(chan struct{}), rev: rev, renewedAt: time.Now()}
	l.mu.Lock()
	l.owned[p] = r
	l.m.owned.Set(float64(len(l.owned)))
	l.mu.Unlock()
	l.m.leases.WithLabelValues("acquired").Inc()
	l.log.Info().Uint32("partition", p).Msg("partition lease acquired")
	wg.Add(1)
	go func() {
		defer wg.Done()
		l.runPartition(rctx, st, r)
		cancel()
		close(r.done)
		ended <- r
	}()
}

// ended forgets a runner that stopped and, unless its lease was lost or the
// run killed, deletes its lease so that the next owner need not wait for it
// to expire.
func (l *Linker) ended(ctx context.Context, st *stores, r *runner) {
	l.mu.Lock()
	delete(l.owned, r.p)
	l.m.owned.Set(float64(len(l.owned)))
	l.mu.Unlock()
	if r.lost || ctx.Err() != nil {
		return
	}
	octx, cancel := context.WithTimeout(ctx, l.opTimeout())
	defer cancel()
	if err := st.leases.Delete(octx, leaseKey(r.p), jetstream.LastRevision(r.rev)); err != nil {
		l.log.Warn().Err(err).Uint32("partition", r.p).Msg("lease not released; it will expire")
		return
	}
	l.m.leases.WithLabelValues("released").Inc()
	l.log.Info().Uint32("partition", r.p).Msg("partition lease released")
}

// releaseReplica removes the replica's presence key when it stops.
func (l *Linker) releaseReplica(ctx context.Context, st *stores) {
	octx, cancel := context.WithTimeout(ctx, l.opTimeout())
	defer cancel()
	if err := st.leases.Delete(octx, replicaPrefix+l.cfg.ReplicaID); err != nil {
		l.log.Warn().Err(err).Msg("replica presence not removed; it will expire")
	}
}

// drainContext is a context that ends when the drain begins, so AfterFunc
// can follow it.
type drainContext struct{ ch chan struct{} }

func (d drainContext) Deadline() (time.Time, bool) { return time.Time{}, false }
func (d drainContext) Done() <-chan struct{}       { return d.ch }
func (d drainContext) Err() error {
	if closed(d.ch) {
		return context.Canceled
	}
	return nil
}
func (d drainContext) Value(any) any { return nil }
