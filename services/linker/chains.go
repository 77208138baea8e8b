package linker

import (
	"hash/maphash"

	"google.golang.org/protobuf/encoding/protowire"
	"math"
	"slices"
	"strings"
	"time"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
)

// OverflowReason is the reason code of a chain closed because its partition
// reached its cap of pending chains (Config.MaxPending).
const OverflowReason = "hinscore|overflow"

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

func (c *chains) limits(n *netState, kind string) (sla, grace int64) {
	if l, ok := n.limits[kind]; ok {
		return l[0], l[1]
	}
	sla, grace = c.rules.limits(n.name, kind)
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

// joinStats counts what the join did, for the metrics.
type joinStats struct {
	events        uint64 // every event observed
	notifications uint64 // no chain: notifications and unknown roles
	duplicates    uint64 // an event id already in its chain
	stragglers    uint64 // for a chain already closed and compacted
	unlinkable    uint64 // no correlation key, or too many networks
	lateAnswers   uint64 // a final answer after the unanswered decision
	orphans       uint64 // chains declared orphan
	overflows     uint64 // chains closed by the pending cap
}

// chains is the pure request↔answer join of one partition. It knows nothing
// of the bus: Observe and the Advance methods return the outcomes to publish,
// and the same inputs in the same order always give the same outcomes.
type chains struct {
	rules    rules
	seed     maphash.Seed
	nets     map[string]*netState
	last     *netState   // the network of the previous event
	netList  []*netState // by netState.idx
	names    []string    // sorted, for a deterministic idle pass
	profiles profileTable
	// pending chains (open requests, waiting answers), oldest first.
	head, tail *chain
	pending    int
	stats      joinStats

	ids     outcomeIDs
	scratch []byte
	idBuf   []byte
	stepBuf []step
}

func newChains(r rules) *chains {
	return &chains{rules: r, seed: maphash.MakeSeed(), nets: map[string]*netState{}, profiles: newProfileTable(), ids: newOutcomeIDs()}
}

// maxNetworks bounds the networks of one partition (chain.net is 16 bits).
const maxNetworks = math.MaxUint16

func (c *chains) net(name string) *netState {
	// Consecutive events mostly share their network.
	if c.last != nil && c.last.name == name {
		return c.last
	}
	n := c.nets[name]
	if n == nil {
		if len(c.netList) >= maxNetworks {
			return nil
		}
		n = &netState{name: name, idx: uint16(len(c.netList)), maxSeen: math.MinInt64, wm: math.MinInt64, chains: map[uint64]*chain{}}
		c.nets[name] = n
		c.netList = append(c.netList, n)
		i, _ := slices.BinarySearch(c.names, name)
		c.names = slices.Insert(c.names, i, name)
	}
	c.last = n
	return n
}

// Observe applies one event seen at wall-clock time now, then advances its
// network's watermark to its newest event time minus the lateness, and
// appends the outcomes that produced to out.
func (c *chains) Observe(ev *hinscorev1.ExchangeEvent, now time.Time, out *outcomes) {
	c.stats.events++
	n := c.net(ev.GetNetwork())
	if n == nil {
		c.stats.unlinkable++
		return
	}
	n.lastSeen = now
	if t := ev.GetEventTimeMs(); t > n.maxSeen {
		n.maxSeen = t
	}
	switch {
	case ev.GetRole() == hinscorev1.Role_ROLE_NOTIFICATION || ev.GetRole() == hinscorev1.Role_ROLE_UNSPECIFIED:
		c.stats.notifications++
	case ev.GetCorrelationKey() == "":
		c.stats.unlinkable++
	default:
		c.apply(n, ev, out)
	}
	// The event is applied before the watermark moves, so an answer that
	// itself carries the clock past its request's deadline links directly.
	c.advance(n, n.maxSeen-c.rules.lateness, out)
}

// Advance moves a network's watermark to wm (never backwards).
func (c *chains) Advance(network string, wm int64, out *outcomes) {
	n := c.net(network)
	if n == nil {
		return
	}
	c.advance(n, wm, out)
}

// idleAdvance is one watermark move of the idle rule.
type idleAdvance struct {
	network string
	wm      int64
}

// IdlePlan applies nothing: it returns the watermark moves the idle rule
// makes at wall-clock time now. A network that has seen no event for the
// idle duration (counted from activeSince at the earliest, when the consumer
// caught up with its stream) moves to now minus the lateness, but only when
// that decides something (a timer is due): a move is a wall-clock decision
// that must be recorded to be replayed, so the linker makes as few as it can.
func (c *chains) IdlePlan(now, activeSince time.Time) []idleAdvance {
	var plan []idleAdvance
	for _, name := range c.names {
		n := c.nets[name]
		since := n.lastSeen
		if activeSince.After(since) {
			since = activeSince
		}
		if now.Sub(since) < c.rules.idle {
			continue
		}
		wm := now.UnixMilli() - c.rules.lateness
		if wm > n.wm && n.timers.due(wm) {
			plan = append(plan, idleAdvance{network: name, wm: wm})
		}
	}
	return plan
}

// AdvanceIdle applies the idle rule at wall-clock time now (IdlePlan, then
// each move).
func (c *chains) AdvanceIdle(now, activeSince time.Time, out *outcomes) {
	for _, a := range c.IdlePlan(now, activeSince) {
		c.Advance(a.network, a.wm, out)
	}
}

// Watermark returns a network's watermark, false before its first event.
func (c *chains) Watermark(network string) (int64, bool) {
	n := c.nets[network]
	if n == nil || n.wm == math.MinInt64 {
		return 0, false
	}
	return n.wm, true
}

// MinWatermark is the oldest watermark over the networks (false when none).
func (c *chains) MinWatermark() (int64, bool) {
	wm, ok := int64(math.MaxInt64), false
	for _, n := range c.netList {
		if n.wm != math.MinInt64 && n.wm < wm {
			wm, ok = n.wm, true
		}
	}
	return wm, ok
}

// liveWatermark is MinWatermark as the idle rule sees it at now: an idle
// network's watermark is the wall clock minus the lateness even when no
// move was needed (and so none was recorded).
func (c *chains) liveWatermark(now, activeSince time.Time, caughtUp bool) (int64, bool) {
	wm, ok := int64(math.MaxInt64), false
	for _, n := range c.netList {
		w := n.wm
		since := n.lastSeen
		if activeSince.After(since) {
			since = activeSince
		}
		if caughtUp && now.Sub(since) >= c.rules.idle {
			w = max(w, now.UnixMilli()-c.rules.lateness)
		}
		if w != math.MinInt64 && w < wm {
			wm, ok = w, true
		}
	}
	return wm, ok
}

// chainCount is the number of chains remembered (pending or not).
func (c *chains) chainCount() int {
	total := 0
	for _, n := range c.netList {
		total += n.size()
	}
	return total
}

func (c *chains) linkPending(ch *chain) {
	ch.prev, ch.next = c.tail, nil
	if c.tail != nil {
		c.tail.next = ch
	} else {
		c.head = ch
	}
	c.tail = ch
	c.pending++
}

func (c *chains) unlinkPending(ch *chain) {
	if ch.prev != nil {
		ch.prev.next = ch.next
	} else {
		c.head = ch.next
	}
	if ch.next != nil {
		ch.next.prev = ch.prev
	} else {
		c.tail = ch.prev
	}
	ch.prev, ch.next = nil, nil
	c.pending--
}

// admit makes ch pending, first closing the oldest pending chains while the
// partition is at its cap. The oldest is the one that became pending first
// in stream order, so a replay closes the same ones.
func (c *chains) admit(ch *chain, out *outcomes) {
	for c.rules.maxPending > 0 && c.pending >= c.rules.maxPending && c.head != nil {
		c.overflow(c.head, out)
	}
	c.linkPending(ch)
}

// overflow closes a pending chain for lack of room: an open request as
// unanswered, answers still waiting for their request as orphan, both with
// OverflowReason. decided_at is the newest event time of its network: the
// moment, in event time, the linker gave up on it.
func (c *chains) overflow(ch *chain, out *outcomes) {
	n := c.netList[ch.net]
	c.unlinkPending(ch)
	c.stats.overflows++
	if ch.state == stateWaiting {
		ch.state = stateOrphan
		c.stats.orphans++
	} else {
		ch.state = stateUnanswered
	}
	ch.flags |= flagOverflow
	ch.decidedAt = n.maxSeen
	n.schedule(ch.expireAt, timerExpire, ch)
	c.outcome(n, ch, out)
}

// newChain starts a chain with its first event.
func (c *chains) newChain(n *netState, ev *hinscorev1.ExchangeEvent) *chain {
	key := ev.GetCorrelationKey()
	b := appendStr(c.scratch[:0], key)
	b = appendStep(b, ev, c.profiles.ref(profileOf(ev)))
	c.scratch = b
	ch := &chain{data: string(b), net: n.idx}
	n.insert(c.seed, ch)
	return ch
}

// addStep appends an event to a chain's data.
func (c *chains) addStep(ch *chain, ev *hinscorev1.ExchangeEvent) {
	c.scratch = appendStep(c.scratch[:0], ev, c.profiles.ref(profileOf(ev)))
	var sb strings.Builder
	sb.Grow(len(ch.data) + len(c.scratch))
	sb.WriteString(ch.data)
	sb.Write(c.scratch)
	ch.data = sb.String()
}

// dropSteps forgets a chain's events, keeping its key.
func (c *chains) dropSteps(ch *chain) {
	for off := ch.stepsOff(); off < len(ch.data); {
		var s step
		s, off = decodeStep(ch.data, off)
		c.profiles.unref(s.profile)
	}
	ch.data = string(appendStr(nil, ch.key()))
}

func (c *chains) apply(n *netState, ev *hinscorev1.ExchangeEvent, out *outcomes) {
	t := ev.GetEventTimeMs()
	ch := n.lookup(c.seed, ev.GetCorrelationKey())
	if ch == nil {
		ch = c.newChain(n, ev)
		if ev.GetRole() == hinscorev1.Role_ROLE_REQUEST {
			c.admit(ch, out)
			c.open(n, ch, ev)
			return
		}
		ch.state = stateWaiting
		ch.expireAt = t + c.rules.lateness + c.rules.retention
		c.admit(ch, out)
		n.schedule(t+c.rules.lateness, timerOrphan, ch)
		return
	}
	if ch.state == stateClosed {
		c.stats.stragglers++
		return
	}
	var packed bool
	c.idBuf, packed = encodeEventID(c.idBuf, ev.GetEventId())
	if ch.has(c.idBuf, packed) {
		c.stats.duplicates++
		return
	}
	if ch.state == stateWaiting && t < ch.first() {
		// Answers wait for their request from the earliest of them, in
		// event time, whatever order they arrive in: an earlier one moves
		// the orphan decision (and when the chain is forgotten) forward.
		// The timer already set finds the chain decided and does nothing.
		ch.expireAt = t + c.rules.lateness + c.rules.retention
		n.schedule(t+c.rules.lateness, timerOrphan, ch)
	}
	c.addStep(ch, ev)
	if ev.GetRole() == hinscorev1.Role_ROLE_REQUEST {
		if ch.flags&flagHasReq != 0 {
			// A re-sent request (other bytes, same key) is a step of the
			// chain it repeats, not a new one.
			c.republish(n, ch, out)
			return
		}
		// The request of answers that came first (and maybe were declared
		// orphan meanwhile).
		if ch.state == stateOrphan {
			ch.flags &^= flagOverflow
			c.admit(ch, out)
		}
		c.open(n, ch, ev)
		if c.decide(n, ch) {
			c.outcome(n, ch, out)
			return
		}
		return
	}
	s := step{t: t, role: ev.GetRole(), status: ev.GetStatus()}
	switch ch.state {
	case stateOpen:
		if ch.eligible(&s) && c.decide(n, ch) {
			c.outcome(n, ch, out)
		}
	case stateDecided, stateOrphan:
		// A later (or, by event time, earlier) final answer; the earliest
		// decides and the outcome is re-issued with the new step.
		c.republish(n, ch, out)
	case stateUnanswered:
		if ch.eligible(&s) {
			c.stats.lateAnswers++
			// A chain closed by the cap was not declared unanswered by its
			// deadline: its answer is classified on its own time.
			if ch.flags&flagOverflow == 0 {
				ch.flags |= flagLate
			}
			c.decide(n, ch)
		}
		c.republish(n, ch, out)
	}
}

// open records the request of a chain and schedules its deadline.
func (c *chains) open(n *netState, ch *chain, req *hinscorev1.ExchangeEvent) {
	ch.flags |= flagHasReq
	ch.state = stateOpen
	sla, grace := c.limits(n, req.GetRequestKind())
	ch.deadline = req.GetEventTimeMs() + sla + grace
	ch.expireAt = max(ch.expireAt, ch.deadline+c.rules.retention)
	n.schedule(ch.deadline, timerDeadline, ch)
}

// decide closes a chain on its earliest eligible final answer, if any.
func (c *chains) decide(n *netState, ch *chain) bool {
	c.stepBuf = ch.decode(c.stepBuf[:0])
	found, last := false, int64(math.MinInt64)
	for i := range c.stepBuf {
		found = found || ch.eligible(&c.stepBuf[i])
		last = max(last, c.stepBuf[i].t)
	}
	if !found {
		return false
	}
	if ch.state == stateOpen || ch.state == stateWaiting {
		c.unlinkPending(ch)
	}
	ch.state = stateDecided
	n.schedule(last+c.rules.lateness, timerCompact, ch)
	return true
}

// republish re-issues a published chain with the steps it has now.
func (c *chains) republish(n *netState, ch *chain, out *outcomes) {
	switch ch.state {
	case stateDecided, stateUnanswered, stateOrphan:
		c.outcome(n, ch, out)
		return
	}
}

// forget removes a chain; its remaining timers find it gone.
func (c *chains) forget(n *netState, ch *chain) {
	if ch.state == stateOpen || ch.state == stateWaiting {
		c.unlinkPending(ch)
	}
	for off := ch.stepsOff(); off < len(ch.data); {
		var s step
		s, off = decodeStep(ch.data, off)
		c.profiles.unref(s.profile)
	}
	n.remove(c.seed, ch)
	ch.state = stateClosed
	ch.data = ""
}

func (c *chains) advance(n *netState, wm int64, out *outcomes) {
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
				c.unlinkPending(ch)
				ch.state = stateUnanswered
				ch.decidedAt = t.at
				n.schedule(ch.expireAt, timerExpire, ch)
				c.outcome(n, ch, out)
			}
		case timerOrphan:
			if ch.state == stateWaiting {
				c.unlinkPending(ch)
				ch.state = stateOrphan
				ch.decidedAt = t.at
				c.stats.orphans++
				n.schedule(ch.expireAt, timerExpire, ch)
				c.outcome(n, ch, out)
			}
		case timerCompact:
			if ch.state != stateDecided {
				continue
			}
			if _, last := ch.span(); last+c.rules.lateness >= wm {
				n.schedule(last+c.rules.lateness, timerCompact, ch)
				continue
			}
			ch.state = stateClosed
			c.dropSteps(ch)
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
			c.forget(n, ch)
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
func (c *chains) outcome(n *netState, ch *chain, out *outcomes) {
	steps := ch.decode(c.stepBuf[:0])
	c.stepBuf = steps
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
	sp := c.profiles.get(src.profile)
	responder := sp.responderOrg
	token := src
	var acked int64
	for i := range steps {
		s := &steps[i]
		if responder == "" && s.answer() {
			responder = c.profiles.get(s.profile).responderOrg
		}
		if token.token == "" {
			token = s
		}
		if acked == 0 && s.answer() {
			acked = s.t
		}
	}
	sla, grace := c.limits(n, sp.requestKind)
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
		class = classifyParts(d.role, d.status, c.profiles.get(d.profile).exceptionCode, t, sla, ch.flags&flagLate != 0)
		decided = d.t
		if d.answer() {
			hasTtf, ttf = true, nonNegative(t)
		}
	}

	w := wireOutcome{start: len(out.buf), version: uint64(ch.version), network: n.name, class: class}
	c.ids.outcomeID(&w.id, n.name, key)
	b := protowire.AppendTag(out.buf, fOutcomeID, protowire.BytesType)
	b = protowire.AppendBytes(b, w.id[:])
	b = appendUintField(b, fVersion, w.version)
	b = appendStrField(b, fNetwork, n.name)
	b = appendStrField(b, fRequestID, src.messageID)
	b = appendStrField(b, fCorrelationKey, key)
	b = appendStrField(b, fRequestKind, sp.requestKind)
	b = appendStrField(b, fRequesterOrg, sp.requesterOrg)
	b = appendStrField(b, fResponderOrg, responder)
	b = appendIntField(b, fOutcomeClass, int64(class))
	if d != nil {
		b = appendStrField(b, fExceptionCode, c.profiles.get(d.profile).exceptionCode)
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
		b = appendStepMsg(b, &steps[i], c.profiles.get(steps[i].profile).messageType)
	}
	out.buf = b
	w.end = len(b)
	out.list = append(out.list, w)
}
