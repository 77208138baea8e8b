// Package join is the linker's request↔answer join of one partition, pure
// and deterministic: no bus, no goroutine, no clock of its own. Observe
// takes an event (and the wall-clock time it was seen), Advance and the idle
// plan move a network's watermark, and each appends the outcomes that
// result, encoded as the linker publishes them. Event time decides, versions
// count re-decisions, so the same inputs in the same order always give the
// same outcomes, ids and versions included. Snapshot and Restore carry the
// whole state across a restart (checkpoint.go); EncodeMark and DecodeMark
// the idle rule's decisions (marks.go).
package join

import (
	"hash/maphash"
	"math"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
)

// RuleVersion names the linking and classification rules of this package; it
// is stamped on every outcome so a scorecard can say which rules decided it.
const RuleVersion = "link/1"

// OverflowReason is the reason code of a chain closed because its partition
// reached its cap of pending chains (Rules.MaxPending).
const OverflowReason = "hinscore|overflow"

// Rules configure a join. Times are milliseconds of event time, except Idle.
type Rules struct {
	// Limits returns the SLA and the grace of a request kind in a network
	// (asked once per kind and network, then cached).
	Limits func(network, kind string) (sla, grace int64)
	// Lateness is how far behind its network's newest event time an event
	// may arrive and still be linked as if in order.
	Lateness int64
	// Idle is the wall-clock silence after which the idle rule moves a
	// network's watermark.
	Idle time.Duration
	// Retention is how long after its deadline a chain is remembered.
	Retention int64
	// MaxPending caps the pending chains; 0 means no cap.
	MaxPending int
}

// chainState is where a chain is in its life.
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
	deadline   int64 // request time + SLA + grace
	expireAt   int64 // forgotten once the watermark passes this
	decidedAt  int64 // event time an unanswered or orphan decision is as of: its deadline or orphan expiry (newest event time on overflow)
	version    uint32
	net        uint16 // index of its network in chains.netList
	state      chainState
	flags      uint8
}

func (ch *chain) key() string {
	n, off := uvarintStr(ch.data, 0)
	return ch.data[off : off+int(n)]
}

func (ch *chain) stepsOff() int {
	n, off := uvarintStr(ch.data, 0)
	return off + int(n)
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

// decider is the index of the earliest eligible final answer in steps
// sorted by stepLess, or -1.
func (ch *chain) decider(sorted []step) int {
	for i := range sorted {
		if ch.eligible(&sorted[i]) {
			return i
		}
	}
	return -1
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
	// limits caches rules.limits per request kind (a handful of kinds).
	limits map[string][2]int64
}

// maxCachedKinds bounds netState.limits: a feed with ever new kinds falls
// back to the rules' own maps.
const maxCachedKinds = 256

func (j *Join) limits(n *netState, kind string) (sla, grace int64) {
	if l, ok := n.limits[kind]; ok {
		return l[0], l[1]
	}
	sla, grace = j.rules.Limits(n.name, kind)
	if len(n.limits) < maxCachedKinds {
		if n.limits == nil {
			n.limits = map[string][2]int64{}
		}
		n.limits[strings.Clone(kind)] = [2]int64{sla, grace}
	}
	return sla, grace
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

// Stats counts what the join did, for the metrics.
type Stats struct {
	Events        uint64 // every event observed
	Notifications uint64 // no chain: notifications and unknown roles
	Duplicates    uint64 // an event id already in its chain
	Stragglers    uint64 // for a chain already closed and compacted
	Unlinkable    uint64 // no correlation key, or too many networks
	LateAnswers   uint64 // a final answer after the unanswered decision
	Orphans       uint64 // chains declared orphan
	Overflows     uint64 // chains closed by the pending cap
}

// Join is the pure request↔answer join of one partition. It knows nothing
// of the bus: Observe and the Advance methods return the outcomes to publish,
// and the same inputs in the same order always give the same outcomes.
type Join struct {
	rules    Rules
	seed     maphash.Seed
	nets     map[string]*netState
	last     *netState   // the network of the previous event
	netList  []*netState // by netState.idx
	names    []string    // sorted, for a deterministic idle pass
	profiles profileTable
	// pending chains (open requests, waiting answers), oldest first.
	head, tail *chain
	pending    int
	stats      Stats

	ids     outcomeIDs
	scratch []byte
	idBuf   []byte
	stepBuf []step
}

// New returns an empty join.
func New(r Rules) *Join {
	return &Join{rules: r, seed: maphash.MakeSeed(), nets: map[string]*netState{}, profiles: newProfileTable(), ids: newOutcomeIDs()}
}

// maxNetworks bounds the networks of one partition (chain.net is 16 bits).
const maxNetworks = math.MaxUint16

func (j *Join) net(name string) *netState {
	// Consecutive events mostly share their network.
	if j.last != nil && j.last.name == name {
		return j.last
	}
	n := j.nets[name]
	if n == nil {
		if len(j.netList) >= maxNetworks {
			return nil
		}
		n = &netState{name: name, idx: uint16(len(j.netList)), maxSeen: math.MinInt64, wm: math.MinInt64, chains: map[uint64]*chain{}}
		j.nets[name] = n
		j.netList = append(j.netList, n)
		i, _ := slices.BinarySearch(j.names, name)
		j.names = slices.Insert(j.names, i, name)
	}
	j.last = n
	return n
}

// Observe applies one event seen at wall-clock time now, then advances its
// network's watermark to its newest event time minus the lateness, and
// appends the outcomes that produced to out.
func (j *Join) Observe(ev *hinscorev1.ExchangeEvent, now time.Time, out *Outcomes) {
	j.stats.Events++
	n := j.net(ev.GetNetwork())
	if n == nil {
		j.stats.Unlinkable++
		return
	}
	n.lastSeen = now
	if t := ev.GetEventTimeMs(); t > n.maxSeen {
		n.maxSeen = t
	}
	switch {
	case ev.GetRole() == hinscorev1.Role_ROLE_NOTIFICATION || ev.GetRole() == hinscorev1.Role_ROLE_UNSPECIFIED:
		j.stats.Notifications++
	case ev.GetCorrelationKey() == "":
		j.stats.Unlinkable++
	default:
		j.apply(n, ev, out)
	}
	// The event is applied before the watermark moves, so an answer that
	// itself carries the clock past its request's deadline links directly.
	j.advance(n, n.maxSeen-j.rules.Lateness, out)
}

// Advance moves a network's watermark to wm (never backwards).
func (j *Join) Advance(network string, wm int64, out *Outcomes) {
	n := j.net(network)
	if n == nil {
		return
	}
	j.advance(n, wm, out)
}

// Move is one watermark move of the idle rule.
type Move struct {
	Network   string
	Watermark int64
}

// idle reports whether network n has seen no event for the idle duration at
// wall-clock time now, counting from activeSince at the earliest (when the
// consumer caught up with its stream).
func (j *Join) idle(n *netState, now, activeSince time.Time) bool {
	since := n.lastSeen
	if activeSince.After(since) {
		since = activeSince
	}
	return now.Sub(since) >= j.rules.Idle
}

// IdlePlan applies nothing: it returns the watermark moves the idle rule
// makes at wall-clock time now. An idle network moves to now minus the
// lateness, but only when that decides something (a timer is due): a move is
// a wall-clock decision that must be recorded to be replayed, so the linker
// makes as few as it can.
func (j *Join) IdlePlan(now, activeSince time.Time) []Move {
	var plan []Move
	for _, name := range j.names {
		n := j.nets[name]
		if !j.idle(n, now, activeSince) {
			continue
		}
		wm := now.UnixMilli() - j.rules.Lateness
		if wm > n.wm && n.timers.due(wm) {
			plan = append(plan, Move{Network: name, Watermark: wm})
		}
	}
	return plan
}

// AdvanceIdle applies the idle rule at wall-clock time now (IdlePlan, then
// each move).
func (j *Join) AdvanceIdle(now, activeSince time.Time, out *Outcomes) {
	for _, a := range j.IdlePlan(now, activeSince) {
		j.Advance(a.Network, a.Watermark, out)
	}
}

// Watermark returns a network's watermark, false before its first event.
func (j *Join) Watermark(network string) (int64, bool) {
	n := j.nets[network]
	if n == nil || n.wm == math.MinInt64 {
		return 0, false
	}
	return n.wm, true
}

// LiveWatermark is the oldest watermark over the networks (false when none)
// as the idle rule sees it at now: once the consumer caught up, an idle
// network's watermark is the wall clock minus the lateness even when no move
// was needed (and so none was recorded).
func (j *Join) LiveWatermark(now, activeSince time.Time, caughtUp bool) (int64, bool) {
	wm, ok := int64(math.MaxInt64), false
	for _, n := range j.netList {
		w := n.wm
		if caughtUp && j.idle(n, now, activeSince) {
			w = max(w, now.UnixMilli()-j.rules.Lateness)
		}
		if w != math.MinInt64 && w < wm {
			wm, ok = w, true
		}
	}
	return wm, ok
}

// Stats returns what the join counted since it was made (or restored).
func (j *Join) Stats() Stats { return j.stats }

// Pending is the number of pending chains: open requests, and answers
// waiting for their request.
func (j *Join) Pending() int { return j.pending }

// ChainCount is the number of chains remembered (pending or not).
func (j *Join) ChainCount() int {
	total := 0
	for _, n := range j.netList {
		total += n.size()
	}
	return total
}

// Profiles is the number of interned profiles the remembered chains use.
func (j *Join) Profiles() int { return j.profiles.live() }

func (j *Join) linkPending(ch *chain) {
	ch.prev, ch.next = j.tail, nil
	if j.tail != nil {
		j.tail.next = ch
	} else {
		j.head = ch
	}
	j.tail = ch
	j.pending++
}

func (j *Join) unlinkPending(ch *chain) {
	if ch.prev != nil {
		ch.prev.next = ch.next
	} else {
		j.head = ch.next
	}
	if ch.next != nil {
		ch.next.prev = ch.prev
	} else {
		j.tail = ch.prev
	}
	ch.prev, ch.next = nil, nil
	j.pending--
}

// admit makes ch pending, first closing the oldest pending chains while the
// partition is at its cap. The oldest is the one that became pending first
// in stream order, so a replay closes the same ones.
func (j *Join) admit(ch *chain, out *Outcomes) {
	for j.rules.MaxPending > 0 && j.pending >= j.rules.MaxPending && j.head != nil {
		j.overflow(j.head, out)
	}
	j.linkPending(ch)
}

// overflow closes a pending chain for lack of room: an open request as
// unanswered, answers still waiting for their request as orphan, both with
// OverflowReason. decided_at is the newest event time of its network: the
// moment, in event time, the linker gave up on it.
func (j *Join) overflow(ch *chain, out *Outcomes) {
	n := j.netList[ch.net]
	j.unlinkPending(ch)
	j.stats.Overflows++
	if ch.state == stateWaiting {
		ch.state = stateOrphan
		j.stats.Orphans++
	} else {
		ch.state = stateUnanswered
	}
	ch.flags |= flagOverflow
	ch.decidedAt = n.maxSeen
	n.schedule(ch.expireAt, timerExpire, ch)
	j.outcome(n, ch, out)
}

// newChain starts a chain with its first event.
func (j *Join) newChain(n *netState, ev *hinscorev1.ExchangeEvent) *chain {
	key := ev.GetCorrelationKey()
	b := appendStr(j.scratch[:0], key)
	b = appendStep(b, ev, j.profiles.ref(profileOf(ev)))
	j.scratch = b
	ch := &chain{data: string(b), net: n.idx}
	n.insert(j.seed, ch)
	return ch
}

// addStep appends an event to a chain's data.
func (j *Join) addStep(ch *chain, ev *hinscorev1.ExchangeEvent) {
	j.scratch = appendStep(j.scratch[:0], ev, j.profiles.ref(profileOf(ev)))
	var sb strings.Builder
	sb.Grow(len(ch.data) + len(j.scratch))
	sb.WriteString(ch.data)
	sb.Write(j.scratch)
	ch.data = sb.String()
}

// dropSteps forgets a chain's events, keeping its key.
func (j *Join) dropSteps(ch *chain) {
	for off := ch.stepsOff(); off < len(ch.data); {
		var s step
		s, off = decodeStep(ch.data, off)
		j.profiles.unref(s.profile)
	}
	ch.data = string(appendStr(nil, ch.key()))
}

func (j *Join) apply(n *netState, ev *hinscorev1.ExchangeEvent, out *Outcomes) {
	t := ev.GetEventTimeMs()
	ch := n.lookup(j.seed, ev.GetCorrelationKey())
	if ch == nil {
		ch = j.newChain(n, ev)
		if ev.GetRole() == hinscorev1.Role_ROLE_REQUEST {
			j.admit(ch, out)
			j.open(n, ch, ev)
			return
		}
		ch.state = stateWaiting
		ch.expireAt = t + j.rules.Lateness + j.rules.Retention
		j.admit(ch, out)
		n.schedule(t+j.rules.Lateness, timerOrphan, ch)
		return
	}
	if ch.state == stateClosed {
		j.stats.Stragglers++
		return
	}
	var packed bool
	j.idBuf, packed = encodeEventID(j.idBuf, ev.GetEventId())
	if ch.has(j.idBuf, packed) {
		j.stats.Duplicates++
		return
	}
	if ch.state == stateWaiting && t < ch.first() {
		// Answers wait for their request from the earliest of them, in
		// event time, whatever order they arrive in: an earlier one moves
		// the orphan decision (and when the chain is forgotten) forward.
		// The timer already set finds the chain decided and does nothing.
		ch.expireAt = t + j.rules.Lateness + j.rules.Retention
		n.schedule(t+j.rules.Lateness, timerOrphan, ch)
	}
	j.addStep(ch, ev)
	if ev.GetRole() == hinscorev1.Role_ROLE_REQUEST {
		if ch.flags&flagHasReq != 0 {
			// A re-sent request (other bytes, same key) is a step of the
			// chain it repeats, not a new one.
			j.republish(n, ch, out)
			return
		}
		// The request of answers that came first (and maybe were declared
		// orphan meanwhile).
		if ch.state == stateOrphan {
			ch.flags &^= flagOverflow
			j.admit(ch, out)
		}
		j.open(n, ch, ev)
		if j.decide(n, ch) {
			j.outcome(n, ch, out)
			return
		}
		return
	}
	s := step{t: t, role: ev.GetRole(), status: ev.GetStatus()}
	switch ch.state {
	case stateOpen:
		if ch.eligible(&s) && j.decide(n, ch) {
			j.outcome(n, ch, out)
		}
	case stateDecided, stateOrphan:
		// A later (or, by event time, earlier) final answer; the earliest
		// decides and the outcome is re-issued with the new step.
		j.republish(n, ch, out)
	case stateUnanswered:
		if ch.eligible(&s) {
			j.stats.LateAnswers++
			// A chain closed by the cap was not declared unanswered by its
			// deadline: its answer is classified on its own time.
			if ch.flags&flagOverflow == 0 {
				ch.flags |= flagLate
			}
			j.decide(n, ch)
		}
		j.republish(n, ch, out)
	}
}

// open records the request of a chain and schedules its deadline.
func (j *Join) open(n *netState, ch *chain, req *hinscorev1.ExchangeEvent) {
	ch.flags |= flagHasReq
	ch.state = stateOpen
	sla, grace := j.limits(n, req.GetRequestKind())
	ch.deadline = req.GetEventTimeMs() + sla + grace
	ch.expireAt = max(ch.expireAt, ch.deadline+j.rules.Retention)
	n.schedule(ch.deadline, timerDeadline, ch)
}

// decide closes a chain on its earliest eligible final answer, if any.
func (j *Join) decide(n *netState, ch *chain) bool {
	j.stepBuf = ch.decode(j.stepBuf[:0])
	found, last := false, int64(math.MinInt64)
	for i := range j.stepBuf {
		found = found || ch.eligible(&j.stepBuf[i])
		last = max(last, j.stepBuf[i].t)
	}
	if !found {
		return false
	}
	if ch.state == stateOpen || ch.state == stateWaiting {
		j.unlinkPending(ch)
	}
	ch.state = stateDecided
	n.schedule(last+j.rules.Lateness, timerCompact, ch)
	return true
}

// republish re-issues a published chain with the steps it has now.
func (j *Join) republish(n *netState, ch *chain, out *Outcomes) {
	switch ch.state {
	case stateDecided, stateUnanswered, stateOrphan:
		j.outcome(n, ch, out)
		return
	}
}

// forget removes a chain; its remaining timers find it gone.
func (j *Join) forget(n *netState, ch *chain) {
	if ch.state == stateOpen || ch.state == stateWaiting {
		j.unlinkPending(ch)
	}
	for off := ch.stepsOff(); off < len(ch.data); {
		var s step
		s, off = decodeStep(ch.data, off)
		j.profiles.unref(s.profile)
	}
	n.remove(j.seed, ch)
	ch.state = stateClosed
	ch.data = ""
}

func (j *Join) advance(n *netState, wm int64, out *Outcomes) {
	if wm <= n.wm {
		return
	}
	n.wm = wm
	for n.timers.due(wm) {
		t := n.timers.pop()
		ch := t.ch
		switch t.kind() {
		case timerDeadline:
			if ch.state == stateOpen {
				j.unlinkPending(ch)
				ch.state = stateUnanswered
				ch.decidedAt = t.at
				n.schedule(ch.expireAt, timerExpire, ch)
				j.outcome(n, ch, out)
			}
		case timerOrphan:
			if ch.state == stateWaiting {
				j.unlinkPending(ch)
				ch.state = stateOrphan
				ch.decidedAt = t.at
				j.stats.Orphans++
				n.schedule(ch.expireAt, timerExpire, ch)
				j.outcome(n, ch, out)
			}
		case timerCompact:
			if ch.state != stateDecided {
				continue
			}
			if _, last := ch.span(); last+j.rules.Lateness >= wm {
				n.schedule(last+j.rules.Lateness, timerCompact, ch)
				continue
			}
			ch.state = stateClosed
			j.dropSteps(ch)
			n.schedule(ch.expireAt, timerExpire, ch)
		case timerExpire:
			// forget is the only way out of the index, and it empties data.
			if ch.data == "" {
				continue
			}
			if ch.expireAt >= wm {
				n.schedule(ch.expireAt, timerExpire, ch)
				continue
			}
			j.forget(n, ch)
		}
	}
}

func nonNegative(d int64) uint64 {
	if d < 0 {
		// Clocks of different systems disagree; an answer stamped before
		// its request was answered at once.
		return 0
	}
	return uint64(d)
}

// outcome appends the next version of a chain's outcome to out, encoded.
func (j *Join) outcome(n *netState, ch *chain, out *Outcomes) {
	steps := ch.decode(j.stepBuf[:0])
	j.stepBuf = steps
	// The request is the first to arrive (a re-sent one is only a step).
	var req step
	hasReq := false
	for i := range steps {
		if steps[i].role == hinscorev1.Role_ROLE_REQUEST {
			req, hasReq = steps[i], true
			break
		}
	}
	sortSteps(steps)
	key := ch.key()
	ch.version++

	// Who asked comes from the request; an orphan only has its answers.
	src := &req
	if !hasReq {
		src = &steps[0]
	}
	sp := j.profiles.get(src.profile)
	responder := sp.responderOrg
	token := src
	var acked int64
	for i := range steps {
		s := &steps[i]
		if responder == "" && s.answer() {
			responder = j.profiles.get(s.profile).responderOrg
		}
		if token.token == "" {
			token = s
		}
		if acked == 0 && s.answer() {
			acked = s.t
		}
	}
	sla, grace := j.limits(n, sp.requestKind)
	hasTta := hasReq && acked != 0
	var tta uint64
	if hasTta {
		tta = nonNegative(acked - req.t)
	}

	// What decided it: the deciding message (an orphan's is its first
	// answer), and the class.
	var (
		class    hinscorev1.OutcomeClass
		decided  int64
		d        *step
		hasTtf   bool
		ttf      uint64
		overflow = ch.flags&flagOverflow != 0
	)
	switch ch.state {
	case stateOrphan:
		class, decided, d = hinscorev1.OutcomeClass_OUTCOME_CLASS_ORPHAN, ch.decidedAt, src
	case stateUnanswered:
		class, decided = hinscorev1.OutcomeClass_OUTCOME_CLASS_UNANSWERED, ch.decidedAt
	case stateDecided:
		d = &steps[ch.decider(steps)]
		t := d.t - req.t
		class = classifyParts(d.role, d.status, j.profiles.get(d.profile).exceptionCode, t, sla, ch.flags&flagLate != 0)
		decided = d.t
		if d.answer() {
			hasTtf, ttf = true, nonNegative(t)
		}
	}

	w := Entry{start: len(out.buf), Version: uint64(ch.version), Network: n.name, Class: class}
	j.ids.outcomeID(&w.ID, n.name, key)
	b := protowire.AppendTag(out.buf, fOutcomeID, protowire.BytesType)
	b = protowire.AppendBytes(b, w.ID[:])
	b = appendUintField(b, fVersion, w.Version)
	b = appendStrField(b, fNetwork, n.name)
	b = appendStrField(b, fRequestID, src.messageID)
	b = appendStrField(b, fCorrelationKey, key)
	b = appendStrField(b, fRequestKind, sp.requestKind)
	b = appendStrField(b, fRequesterOrg, sp.requesterOrg)
	b = appendStrField(b, fResponderOrg, responder)
	b = appendIntField(b, fOutcomeClass, int64(class))
	if d != nil {
		b = appendStrField(b, fExceptionCode, j.profiles.get(d.profile).exceptionCode)
		b = appendReasons(b, d.reasons)
	}
	if overflow && ch.state != stateDecided {
		b = appendStrField(b, fReasonCodes, OverflowReason)
	}
	b = appendStepText(b, fPatientToken, token, true)
	b = appendIntField(b, fRequestedAtMs, src.t)
	b = appendIntField(b, fAcknowledgedAtMs, acked)
	if d != nil && d.answer() {
		b = appendIntField(b, fAnsweredAtMs, d.t)
	}
	b = appendBoolField(b, fHasTta, hasTta)
	b = appendUintField(b, fTtaMs, tta)
	b = appendBoolField(b, fHasTtf, hasTtf)
	b = appendUintField(b, fTtfMs, ttf)
	b = appendUintField(b, fSlaMs, uint64(sla))
	b = appendUintField(b, fGraceMs, uint64(grace))
	b = appendIntField(b, fDecidedAtMs, decided)
	b = appendStrField(b, fRuleVersion, RuleVersion)
	b = appendStrField(b, fMappingVersion, sp.mappingVersion)
	if d != nil {
		b = appendStrField(b, fResponseID, d.messageID)
		b = appendUintField(b, fRecordCount, uint64(d.recordCount))
	}
	for i := range steps {
		b = appendStepMsg(b, &steps[i], j.profiles.get(steps[i].profile).messageType)
	}
	out.buf = b
	w.end = len(b)
	out.list = append(out.list, w)
}
