package join

import (
	"math"
	"strings"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
)

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
	b = appendStep(b, ev, j.refProfile(ev))
	j.scratch = b
	ch := &chain{data: string(b), net: n.idx}
	n.insert(j.seed, ch)
	return ch
}

// addStep appends an event to a chain's data.
func (j *Join) addStep(ch *chain, ev *hinscorev1.ExchangeEvent) {
	j.scratch = appendStep(j.scratch[:0], ev, j.refProfile(ev))
	var sb strings.Builder
	sb.Grow(len(ch.data) + len(j.scratch))
	sb.WriteString(ch.data)
	sb.Write(j.scratch)
	ch.data = sb.String()
}

// unrefSteps lets go of the profiles of a chain's events.
func (j *Join) unrefSteps(ch *chain) {
	for off := ch.stepsOff(); off < len(ch.data); {
		var s step
		s, off = decodeStep(ch.data, off)
		j.unrefProfile(s.profile)
	}
}

// dropSteps forgets a chain's events, keeping its key.
func (j *Join) dropSteps(ch *chain) {
	j.unrefSteps(ch)
	ch.data = string(appendStr(nil, ch.key()))
}

// apply links an event with a correlation key to its chain.
func (j *Join) apply(n *netState, ev *hinscorev1.ExchangeEvent, out *Outcomes) {
	t := ev.GetEventTimeMs()
	ch := n.lookup(j.seed, ev.GetCorrelationKey())
	if ch == nil {
		if ch = j.neighbour(n, ev.GetCorrelationKey(), t); ch != nil {
			j.stats.WindowJoins++
		}
	}
	if ch == nil {
		j.start(n, ev, out)
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
		j.request(n, ch, ev, out)
		return
	}
	j.answer(n, ch, step{t: t, role: ev.GetRole(), status: ev.GetStatus()}, out)
}

// start makes the chain of an event whose key has none: an open request, or
// an answer waiting for its request.
func (j *Join) start(n *netState, ev *hinscorev1.ExchangeEvent, out *Outcomes) {
	ch := j.newChain(n, ev)
	if ev.GetRole() == hinscorev1.Role_ROLE_REQUEST {
		j.admit(ch, out)
		j.open(n, ch, ev)
		return
	}
	t := ev.GetEventTimeMs()
	ch.state = stateWaiting
	ch.expireAt = t + j.rules.Lateness + j.rules.Retention
	j.admit(ch, out)
	n.schedule(t+j.rules.Lateness, timerOrphan, ch)
}

// request applies a request added to an existing chain.
func (j *Join) request(n *netState, ch *chain, ev *hinscorev1.ExchangeEvent, out *Outcomes) {
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
	}
}

// answer applies an answer (or the requester's cancel), s, added to an
// existing chain.
func (j *Join) answer(n *netState, ch *chain, s step, out *Outcomes) {
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
	t := req.GetEventTimeMs()
	l := j.limits(n, req.GetRequestKind(), req.GetPurpose())
	span := j.span(l, t)
	ch.deadline = t + span + l.Grace
	// Remembered Retention after the deadline, or as long again as the
	// SLA when that is longer: an order due in 72 h may be answered days
	// late, and that answer must find its request (fulfilled late), not
	// start an orphan under the outcome id the request already used.
	ch.expireAt = max(ch.expireAt, ch.deadline+max(j.rules.Retention, span))
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
	n.schedule(last+j.hold(ch), timerCompact, ch)
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
	j.unrefSteps(ch)
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
			if _, last := ch.span(); last+j.hold(ch) >= wm {
				n.schedule(last+j.hold(ch), timerCompact, ch)
				continue
			}
			ch.close()
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
