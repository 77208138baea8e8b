package join

import (
	"math/rand/v2"
	"testing"
)

// TestTimerQueueOrder checks that the lane queue gives timers back in
// exactly the order of a single heap, pushes and pops interleaved, for
// timers pushed in order, nearly in order (more sequences than lanes, with
// jitter), and at random.
func TestTimerQueueOrder(t *testing.T) {
	for _, c := range []struct {
		name   string
		seqs   int   // interleaved sequences, each with its own offset
		jitter int64 // how far a timer may come before its sequence's last
	}{
		{"in order", 1, 0},
		{"a few kinds", 4, 0},
		{"more kinds than lanes", 3 * maxLanes, 0},
		{"nearly in order", 4, 50},
		{"random", 1, 1 << 40},
	} {
		t.Run(c.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(11, uint64(c.seqs)))
			var q timerQueue
			var ref timerHeap
			var seq uint64
			clock := int64(0)
			pops, spilled := 0, 0
			for i := range 200_000 {
				clock += rng.Int64N(3)
				at := clock + int64(rng.IntN(c.seqs))*10_000
				if c.jitter > 0 {
					at -= rng.Int64N(c.jitter)
				}
				seq++
				tm := timer{at: at, sk: seq<<2 | uint64(i&3)}
				q.push(tm)
				ref.push(tm)
				for rng.IntN(3) == 0 && len(ref) > 0 {
					want, got := ref.pop(), q.pop()
					pops++
					if got != want {
						t.Fatalf("pop %d: got %+v, want %+v", pops, got, want)
					}
				}
				spilled = max(spilled, len(q.heap))
				if q.len() != len(ref) {
					t.Fatalf("len %d, want %d", q.len(), len(ref))
				}
			}
			for len(ref) > 0 {
				want, got := ref.pop(), q.pop()
				pops++
				if got != want {
					t.Fatalf("drain pop %d: got %+v, want %+v", pops, got, want)
				}
			}
			if q.len() != 0 || q.due(1<<62) {
				t.Fatalf("queue not empty after every pop: %d", q.len())
			}
			if c.seqs > maxLanes && spilled == 0 {
				t.Fatalf("%d sequences never used the heap", c.seqs)
			}
			if c.seqs == 1 && c.jitter == 0 && (spilled != 0 || len(q.lanes) != 1) {
				t.Fatalf("timers in order took %d lanes and %d heap places, want 1 lane", len(q.lanes), spilled)
			}
			t.Logf("%d pops, %d lanes, at most %d timers on the heap", pops, len(q.lanes), spilled)
		})
	}
}
