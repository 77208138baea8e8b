package api

import (
	"math"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// maxGuardedAddrs bounds the addresses tracked: at the bound, addresses
// whose buckets have refilled are forgotten, and a flood of new addresses
// beyond it shares one bucket (so spreading over addresses gains nothing
// once memory is full).
const maxGuardedAddrs = 10000

// overflowAddr is the shared bucket's key.
const overflowAddr = "*"

// guard is the per-address limit of authentication failures
// (AuthFailures).
type guard struct {
	mu      sync.Mutex
	limit   RateLimit
	buckets map[string]*tokenBucket
}

func newGuard(l RateLimit) *guard { return &guard{limit: l, buckets: map[string]*tokenBucket{}} }

// remoteHost is the address a request came from, without its port.
func remoteHost(r *http.Request) string {
	if h, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return h
	}
	return r.RemoteAddr
}

// blocked reports whether addr has spent its failures, and how long until
// it may try again.
func (g *guard) blocked(addr string, now time.Time) (bool, time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	b := g.buckets[g.key(addr, now, false)]
	if b == nil {
		return false, 0
	}
	b.refill(now, g.limit)
	if b.tokens >= 1 {
		return false, 0
	}
	return true, b.wait(g.limit)
}

// fail takes one failure from addr's bucket.
func (g *guard) fail(addr string, now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	key := g.key(addr, now, true)
	b := g.buckets[key]
	if b == nil {
		b = &tokenBucket{}
		g.buckets[key] = b
	}
	b.take(now, g.limit)
}

// key is the bucket of addr: its own, or the shared one when the table is
// full and nothing in it may be forgotten. With add, a table at its bound
// first forgets the addresses whose buckets are full again.
func (g *guard) key(addr string, now time.Time, add bool) string {
	if _, ok := g.buckets[addr]; ok || len(g.buckets) < maxGuardedAddrs {
		return addr
	}
	if add {
		for a, b := range g.buckets {
			if a != overflowAddr && now.Sub(b.last).Seconds()*g.limit.PerSecond >= float64(g.limit.Burst) {
				delete(g.buckets, a)
			}
		}
		if len(g.buckets) < maxGuardedAddrs {
			return addr
		}
	}
	return overflowAddr
}

// size is how many addresses the guard tracks.
func (g *guard) size() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.buckets)
}

// retryAfter is a wait in whole seconds, rounded up: a client that waits
// exactly this long finds its bucket holding a request again.
func retryAfter(wait time.Duration) string {
	return strconv.Itoa(max(1, int(math.Ceil(wait.Seconds()))))
}
