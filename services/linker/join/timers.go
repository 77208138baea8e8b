package join

// timerQueue holds a partition network's timers and gives them back in
// (at, sk) order. Most timers are pushed nearly in order: a deadline is its
// request's time plus its kind's SLA, a compaction or an expiry an event's
// time plus a constant, and events come roughly in time order. So the queue
// keeps a few sorted FIFO lanes and puts a timer at the end of the lane it
// fits best (the one whose last timer is the latest not after it, as in
// patience sorting); only a timer that fits no lane goes to a heap. Popping
// compares the lanes' heads and the heap's top. The order timers come out in
// is exactly a single heap's, so the join's outcomes do not depend on where
// a timer was kept (TestTimerQueueOrder).
type timerQueue struct {
	lanes []timerLane
	heap  timerHeap
	n     int
}

// maxLanes bounds the lanes: each pop compares every lane's head.
const maxLanes = 8

// timerLane is a FIFO of timers sorted by (at, sk); buf[head:] are queued.
type timerLane struct {
	buf  []timer
	head int
}

func timerLess(a, b *timer) bool {
	if a.at != b.at {
		return a.at < b.at
	}
	return a.sk < b.sk
}

func (q *timerQueue) len() int { return q.n }

func (q *timerQueue) push(t timer) {
	q.n++
	best, empty := -1, -1
	for i := range q.lanes {
		l := &q.lanes[i]
		if l.head == len(l.buf) {
			if empty < 0 {
				empty = i
			}
			continue
		}
		last := &l.buf[len(l.buf)-1]
		if !timerLess(&t, last) && (best < 0 || timerLess(&q.lanes[best].buf[len(q.lanes[best].buf)-1], last)) {
			best = i
		}
	}
	switch {
	case best >= 0:
	case empty >= 0:
		best = empty
	case len(q.lanes) < maxLanes:
		q.lanes = append(q.lanes, timerLane{})
		best = len(q.lanes) - 1
	default:
		q.heap.push(t)
		return
	}
	q.lanes[best].buf = append(q.lanes[best].buf, t)
}

// min is the lane holding the earliest timer, or -1 for the heap (or when
// the queue is empty).
func (q *timerQueue) min() (lane int, t *timer) {
	lane = -1
	if len(q.heap) > 0 {
		t = &q.heap[0]
	}
	for i := range q.lanes {
		l := &q.lanes[i]
		if l.head < len(l.buf) && (t == nil || timerLess(&l.buf[l.head], t)) {
			lane, t = i, &l.buf[l.head]
		}
	}
	return lane, t
}

// due reports whether the earliest timer fires before wm.
func (q *timerQueue) due(wm int64) bool {
	if q.n == 0 {
		return false
	}
	_, t := q.min()
	return t.at < wm
}

// pop removes and returns the earliest timer; the queue must not be empty.
func (q *timerQueue) pop() timer {
	q.n--
	lane, _ := q.min()
	if lane < 0 {
		return q.heap.pop()
	}
	l := &q.lanes[lane]
	t := l.buf[l.head]
	l.buf[l.head] = timer{} // the chain may be forgotten
	l.head++
	switch {
	case l.head == len(l.buf):
		l.buf, l.head = l.buf[:0], 0
	case l.head >= 1024 && l.head*2 >= len(l.buf):
		// Reuse the front of the buffer once half of it is spent.
		n := copy(l.buf, l.buf[l.head:])
		clear(l.buf[n:])
		l.buf, l.head = l.buf[:n], 0
	}
	return t
}

// all calls f for every queued timer, in no particular order.
func (q *timerQueue) all(f func(*timer)) {
	for i := range q.lanes {
		l := &q.lanes[i]
		for k := l.head; k < len(l.buf); k++ {
			f(&l.buf[k])
		}
	}
	for i := range q.heap {
		f(&q.heap[i])
	}
}

// timerHeap is a 4-ary min-heap of timers: half the levels of a binary heap,
// and a node's children share a cache line, which is what a pop pays for.
type timerHeap []timer

func (h timerHeap) less(i, j int) bool { return timerLess(&h[i], &h[j]) }

func (h *timerHeap) push(t timer) {
	*h = append(*h, t)
	s := *h
	for i := len(s) - 1; i > 0; {
		p := (i - 1) / 4
		if !s.less(i, p) {
			break
		}
		s[i], s[p] = s[p], s[i]
		i = p
	}
}

func (h *timerHeap) pop() timer {
	s := *h
	top := s[0]
	last := len(s) - 1
	s[0] = s[last]
	s[last] = timer{}
	s = s[:last]
	for i := 0; ; {
		m := i
		for c := 4*i + 1; c <= 4*i+4 && c < len(s); c++ {
			if s.less(c, m) {
				m = c
			}
		}
		if m == i {
			break
		}
		s[i], s[m] = s[m], s[i]
		i = m
	}
	*h = s
	return top
}
