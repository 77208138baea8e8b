package join

import (
	"hash/maphash"
	"math"
	"strings"
	"time"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
)

type chainState uint8

const (
	// stateWaiting: answers seen, their request not yet; they wait up to the
	// lateness for it.
	stateWaiting chainState = iota
	// stateOpen: request seen, no final answer, deadline not passed.
	stateOpen
	// stateDecided: a final answer (or the requester's cancel) decided it.
	stateDecided
	// stateUnanswered: the watermark passed the deadline with no final
	// answer, or the partition's cap closed it (flagOverflow).
	stateUnanswered
	// stateOrphan: answers that never met their request within the lateness.
	stateOrphan
	// stateClosed: decided and compacted; remembered only so that stragglers
	// (re-sent answers) do not become orphans under the same outcome id.
	stateClosed
	stateCount // not a state: the number of states, for checkpoint checks
)

const (
	flagLate     uint8 = 1 << iota // declared unanswered before a final answer came
	flagHasReq                     // a request step exists
	flagOverflow                   // closed by the pending cap
	flagMask     = flagLate | flagHasReq | flagOverflow
)

// chain is one request (or its answers waiting for it) and every event linked
// to it, in 64 bytes plus its data (see compact.go). prev/next link the
// partition's pending chains in the order they became pending, so the
// overflow policy finds the oldest in O(1).
type chain struct {
	data       string // key, then the steps in arrival order
	prev, next *chain
	deadline   int64 // request time + SLA + grace; once closed, the time of its latest step
	expireAt   int64 // forgotten once the watermark passes this
	decidedAt  int64 // event time an unanswered or orphan decision is as of: its deadline or orphan expiry (newest event time on overflow); once closed, the time of its earliest step
	version    uint32
	net        uint16 // index of its network in chains.netList
	state      chainState
	flags      uint8
}

// key is the chain's correlation key, the head of its data ("" once the
// chain is forgotten).
func (ch *chain) key() string {
	n, off := uvarintAt(ch.data, 0)
	if off < 0 {
		return ""
	}
	return ch.data[off : off+int(n)]
}

// stepsOff is where the chain's steps start in its data, after its key.
func (ch *chain) stepsOff() int {
	n, off := uvarintAt(ch.data, 0)
	return max(off, 0) + int(n)
}

// decode appends the chain's steps, in arrival order, to buf.
func (ch *chain) decode(buf []step) []step {
	for off := ch.stepsOff(); off < len(ch.data); {
		var s step
		s, off = decodeStep(ch.data, off)
		buf = append(buf, s)
	}
	return buf
}

func (ch *chain) has(id []byte, packed bool) bool {
	for off := ch.stepsOff(); off < len(ch.data); {
		var s step
		s, off = decodeStep(ch.data, off)
		if s.idPacked == packed && s.eventID == string(id) {
			return true
		}
	}
	return false
}

// span is the event time of the chain's earliest and of its latest step.
func (ch *chain) span() (first, last int64) {
	first, last = math.MaxInt64, math.MinInt64
	for off := ch.stepsOff(); off < len(ch.data); {
		var s step
		s, off = decodeStep(ch.data, off)
		first, last = min(first, s.t), max(last, s.t)
	}
	return first, last
}

// bounds is span, also for a closed chain, which no longer has its steps
// but keeps their first and last time (in decidedAt and deadline, which a
// closed chain has no more use for): a record of a neighbouring window
// needs them to know whether it belongs to the chain. (A chain closed
// before checkpoint version 2 has no such times; its key, from before
// windowed keys, is never a neighbour's.)
func (ch *chain) bounds() (first, last int64) {
	if ch.state == stateClosed {
		return ch.decidedAt, ch.deadline
	}
	return ch.span()
}

// close compacts a decided chain to its key and its bounds.
func (ch *chain) close() {
	ch.decidedAt, ch.deadline = ch.span()
	ch.state = stateClosed
}

func (ch *chain) first() int64 {
	first, _ := ch.span()
	return first
}

// eligible reports whether s may decide the chain. A cancel only counts
// before the deadline: a requester that gives up after it was left
// unanswered does not excuse the responder.
func (ch *chain) eligible(s *step) bool {
	if !s.final() {
		return false
	}
	return s.role != hinscorev1.Role_ROLE_CANCEL || ch.flags&flagHasReq == 0 || s.t <= ch.deadline
}

// decider is the index of the deciding step in steps sorted by stepLess, or
// -1: the earliest eligible final answer, except when both gateways of a
// cross-community transaction answered (side rule): then the responding
// gateway's earliest final response decides, as the record of what was
// answered, unless it did not fail and the initiating gateway's did: what
// the requester received is then what counts. A failure on either side is
// never hidden behind the other side's success. A cancel earlier than
// every answer decides as before.
func (j *Join) decider(ch *chain, sorted []step) int {
	first, initiating, responding := -1, -1, -1
	for i := range sorted {
		s := &sorted[i]
		if !ch.eligible(s) {
			continue
		}
		if first < 0 {
			first = i
		}
		if s.role != hinscorev1.Role_ROLE_RESPONSE {
			continue
		}
		switch j.stepCross(s).side {
		case hinscorev1.Side_SIDE_INITIATING:
			if initiating < 0 {
				initiating = i
			}
		case hinscorev1.Side_SIDE_RESPONDING:
			if responding < 0 {
				responding = i
			}
		}
	}
	if first < 0 || sorted[first].role == hinscorev1.Role_ROLE_CANCEL || initiating < 0 || responding < 0 {
		return first
	}
	if !failed(sorted[responding].status) && failed(sorted[initiating].status) {
		return initiating
	}
	return responding
}

// failed reports whether a final response says the request was not
// answered: anything but records, some records or "no such patient".
func failed(st hinscorev1.Status) bool {
	switch st {
	case hinscorev1.Status_STATUS_OK, hinscorev1.Status_STATUS_PARTIAL, hinscorev1.Status_STATUS_NOT_FOUND:
		return false
	}
	return true
}

func sortSteps(s []step) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && stepLess(&s[j], &s[j-1]); j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

type timerKind uint8

const (
	timerDeadline timerKind = iota // open → unanswered
	timerOrphan                    // waiting → orphan
	timerCompact                   // decided → closed
	timerExpire                    // forget the chain
)

// timer fires once the watermark passes at. Timers are never removed: a
// handler checks that its condition still holds (lazy deletion), which keeps
// every transition cheap without back-pointers into the queue. A pending
// chain has exactly one timer (its deadline or orphan time); the expiry is
// scheduled only when it stops pending, which keeps the queue small.
type timer struct {
	at int64
	sk uint64 // insertion sequence << 2 | kind: equal times fire deterministically
	ch *chain
}

func (t timer) kind() timerKind { return timerKind(t.sk & 3) }

// netState is the join state of one network within one partition: its own
// watermark, so that a quiet network is never decided by a busy one's clock.
type netState struct {
	name     string
	idx      uint16
	maxSeen  int64 // newest event time seen
	wm       int64 // watermark: nothing older than this is still expected
	lastSeen time.Time
	// chains are found by a hash of their key, so the map holds no key
	// strings; the rare keys whose hash is taken by another live chain go
	// to collide.
	chains  map[uint64]*chain
	collide map[string]*chain
	timers  timerQueue
	seq     uint64
	// limits caches rules.Limits per request kind and purpose (a handful).
	limits map[[2]string]Limit
}

// maxCachedKinds bounds netState.limits: a feed with ever new kinds falls
// back to the rules' own maps.
const maxCachedKinds = 256

func (j *Join) limits(n *netState, kind, purpose string) Limit {
	k := [2]string{kind, purpose}
	if l, ok := n.limits[k]; ok {
		return l
	}
	l := j.rules.Limits(n.name, kind, purpose)
	if len(n.limits) < maxCachedKinds {
		if n.limits == nil {
			n.limits = map[[2]string]Limit{}
		}
		n.limits[[2]string{strings.Clone(kind), strings.Clone(purpose)}] = l
	}
	return l
}

// span is the SLA that limit l gives a request made at t, in milliseconds:
// its duration, or the time to the end of its business days.
func (j *Join) span(l Limit, t int64) int64 {
	if l.BusinessDays <= 0 {
		return l.SLA
	}
	return j.rules.Calendar.AddBusinessDays(time.UnixMilli(t), l.BusinessDays).UnixMilli() - t
}

func (n *netState) schedule(at int64, kind timerKind, ch *chain) {
	n.seq++
	n.timers.push(timer{at: at, sk: n.seq<<2 | uint64(kind), ch: ch})
}

func (n *netState) lookup(seed maphash.Seed, key string) *chain {
	if ch := n.chains[maphash.String(seed, key)]; ch != nil && ch.key() == key {
		return ch
	}
	if len(n.collide) > 0 {
		return n.collide[key]
	}
	return nil
}

func (n *netState) insert(seed maphash.Seed, ch *chain) {
	key := ch.key()
	h := maphash.String(seed, key)
	if n.chains[h] == nil {
		n.chains[h] = ch
		return
	}
	if n.collide == nil {
		n.collide = map[string]*chain{}
	}
	n.collide[key] = ch
}

func (n *netState) remove(seed maphash.Seed, ch *chain) {
	key := ch.key()
	if h := maphash.String(seed, key); n.chains[h] == ch {
		delete(n.chains, h)
		return
	}
	delete(n.collide, key)
}

func (n *netState) size() int { return len(n.chains) + len(n.collide) }
