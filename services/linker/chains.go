package linker

import (
	"math"
	"slices"
	"time"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
	"github.com/hinscore/hinscore/services/bus"
)

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
	// stateUnanswered: the watermark passed the deadline with no final answer.
	stateUnanswered
	// stateOrphan: answers that never met their request within the lateness.
	stateOrphan
	// stateClosed: decided and compacted; remembered only so that stragglers
	// (re-sent answers) do not become orphans under the same outcome id.
	stateClosed
)

// chain is one request (or its answers waiting for it) and every event linked
// to it. Steps are kept sorted by (event time, event id), so the result does
// not depend on the order events arrive in within the lateness.
type chain struct {
	key       string
	id        string // outcome id, computed on first publish
	req       *hinscorev1.ExchangeEvent
	steps     []*hinscorev1.ExchangeEvent
	state     chainState
	late      bool // declared unanswered before a final answer came
	version   uint64
	sla       int64
	grace     int64
	deadline  int64 // request time + SLA + grace
	decidedAt int64 // watermark at an unanswered or orphan decision
	expireAt  int64 // forgotten once the watermark passes this
}

func (ch *chain) has(eventID string) bool {
	for _, s := range ch.steps {
		if s.GetEventId() == eventID {
			return true
		}
	}
	return false
}

func stepLess(a, b *hinscorev1.ExchangeEvent) bool {
	if a.GetEventTimeMs() != b.GetEventTimeMs() {
		return a.GetEventTimeMs() < b.GetEventTimeMs()
	}
	return a.GetEventId() < b.GetEventId()
}

func (ch *chain) insert(ev *hinscorev1.ExchangeEvent) {
	i := len(ch.steps)
	ch.steps = append(ch.steps, ev)
	for ; i > 0 && stepLess(ev, ch.steps[i-1]); i-- {
		ch.steps[i] = ch.steps[i-1]
	}
	ch.steps[i] = ev
}

func (ch *chain) lastAt() int64 { return ch.steps[len(ch.steps)-1].GetEventTimeMs() }

// eligible reports whether ev may decide the chain. A cancel only counts
// before the deadline: a requester that gives up after it was left
// unanswered does not excuse the responder.
func (ch *chain) eligible(ev *hinscorev1.ExchangeEvent) bool {
	if !isFinal(ev) {
		return false
	}
	return ev.GetRole() != hinscorev1.Role_ROLE_CANCEL || ch.req == nil || ev.GetEventTimeMs() <= ch.deadline
}

// decider is the earliest eligible final answer (steps are sorted), or nil.
func (ch *chain) decider() *hinscorev1.ExchangeEvent {
	for _, s := range ch.steps {
		if ch.eligible(s) {
			return s
		}
	}
	return nil
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
// every transition O(log n) without back-pointers into the heap.
type timer struct {
	at   int64
	seq  uint64 // insertion order: equal times fire deterministically
	kind timerKind
	ch   *chain
}

type timerHeap []timer

func (h timerHeap) less(i, j int) bool {
	if h[i].at != h[j].at {
		return h[i].at < h[j].at
	}
	return h[i].seq < h[j].seq
}

func (h *timerHeap) push(t timer) {
	*h = append(*h, t)
	s := *h
	for i := len(s) - 1; i > 0; {
		p := (i - 1) / 2
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
		l, r, m := 2*i+1, 2*i+2, i
		if l < len(s) && s.less(l, m) {
			m = l
		}
		if r < len(s) && s.less(r, m) {
			m = r
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

// netState is the join state of one network within one partition: its own
// watermark, so that a quiet network is never decided by a busy one's clock.
type netState struct {
	name     string
	maxSeen  int64 // newest event time seen
	wm       int64 // watermark: nothing older than this is still expected
	lastSeen time.Time
	chains   map[string]*chain
	timers   timerHeap
	seq      uint64
}

func (n *netState) schedule(at int64, kind timerKind, ch *chain) {
	n.seq++
	n.timers.push(timer{at: at, seq: n.seq, kind: kind, ch: ch})
}

// joinStats counts what the join did, for the metrics.
type joinStats struct {
	events        uint64 // every event observed
	notifications uint64 // no chain: notifications and unknown roles
	duplicates    uint64 // an event id already in its chain
	stragglers    uint64 // for a chain already closed and compacted
	unlinkable    uint64 // no correlation key
	lateAnswers   uint64 // a final answer after the unanswered decision
}

// chains is the pure request↔answer join of one partition. It knows nothing
// of the bus: Observe and the Advance methods return the outcomes to publish,
// and the same inputs in the same order always give the same outcomes.
type chains struct {
	rules   rules
	nets    map[string]*netState
	names   []string // sorted, for a deterministic idle pass
	pending int      // open and waiting chains
	stats   joinStats
}

func newChains(r rules) *chains {
	return &chains{rules: r, nets: map[string]*netState{}}
}

func (c *chains) net(name string) *netState {
	n := c.nets[name]
	if n == nil {
		n = &netState{name: name, maxSeen: math.MinInt64, wm: math.MinInt64, chains: map[string]*chain{}}
		c.nets[name] = n
		i, _ := slices.BinarySearch(c.names, name)
		c.names = slices.Insert(c.names, i, name)
	}
	return n
}

// Observe applies one event seen at wall-clock time now, then advances its
// network's watermark to its newest event time minus the lateness, and
// appends the outcomes that produced to out.
func (c *chains) Observe(ev *hinscorev1.ExchangeEvent, now time.Time, out []*hinscorev1.Outcome) []*hinscorev1.Outcome {
	c.stats.events++
	n := c.net(ev.GetNetwork())
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
		out = c.apply(n, ev, out)
	}
	// The event is applied before the watermark moves, so an answer that
	// itself carries the clock past its request's deadline links directly.
	return c.advance(n, n.maxSeen-c.rules.lateness, out)
}

// Advance moves a network's watermark to wm (never backwards).
func (c *chains) Advance(network string, wm int64, out []*hinscorev1.Outcome) []*hinscorev1.Outcome {
	return c.advance(c.net(network), wm, out)
}

// AdvanceIdle applies the idle rule at wall-clock time now: a network that
// has seen no event for the idle duration (counted from activeSince at the
// earliest, when the consumer caught up with its stream) gets its watermark
// moved to now minus the lateness, so that unanswered requests show up live.
func (c *chains) AdvanceIdle(now, activeSince time.Time, out []*hinscorev1.Outcome) []*hinscorev1.Outcome {
	for _, name := range c.names {
		n := c.nets[name]
		since := n.lastSeen
		if activeSince.After(since) {
			since = activeSince
		}
		if now.Sub(since) >= c.rules.idle {
			out = c.advance(n, now.UnixMilli()-c.rules.lateness, out)
		}
	}
	return out
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
	for _, n := range c.nets {
		if n.wm != math.MinInt64 && n.wm < wm {
			wm, ok = n.wm, true
		}
	}
	return wm, ok
}

func (c *chains) apply(n *netState, ev *hinscorev1.ExchangeEvent, out []*hinscorev1.Outcome) []*hinscorev1.Outcome {
	key := ev.GetCorrelationKey()
	t := ev.GetEventTimeMs()
	ch := n.chains[key]
	if ch == nil {
		ch = &chain{key: key}
		n.chains[key] = ch
		c.pending++
		ch.insert(ev)
		if ev.GetRole() == hinscorev1.Role_ROLE_REQUEST {
			c.open(n, ch, ev)
			return out
		}
		ch.state = stateWaiting
		ch.expireAt = t + c.rules.lateness + c.rules.retention
		n.schedule(t+c.rules.lateness, timerOrphan, ch)
		n.schedule(ch.expireAt, timerExpire, ch)
		return out
	}
	if ch.state == stateClosed {
		c.stats.stragglers++
		return out
	}
	if ch.has(ev.GetEventId()) {
		c.stats.duplicates++
		return out
	}
	ch.insert(ev)
	if ev.GetRole() == hinscorev1.Role_ROLE_REQUEST {
		if ch.req != nil {
			// A re-sent request (other bytes, same key) is a step of the
			// chain it repeats, not a new one.
			return c.republish(n, ch, out)
		}
		// The request of answers that came first.
		wasOrphan := ch.state == stateOrphan
		if wasOrphan {
			c.pending++
		}
		c.open(n, ch, ev)
		if c.decide(n, ch) {
			return append(out, c.outcome(n, ch))
		}
		return out
	}
	switch ch.state {
	case stateOpen:
		if ch.eligible(ev) && c.decide(n, ch) {
			out = append(out, c.outcome(n, ch))
		}
	case stateDecided, stateOrphan:
		// A later (or, by event time, earlier) final answer; the earliest
		// decides and the outcome is re-issued with the new step.
		out = c.republish(n, ch, out)
	case stateUnanswered:
		if ch.eligible(ev) {
			c.stats.lateAnswers++
			ch.late = true
			c.decide(n, ch)
		}
		out = c.republish(n, ch, out)
	}
	return out
}

// open records the request of a chain and schedules its deadline.
func (c *chains) open(n *netState, ch *chain, req *hinscorev1.ExchangeEvent) {
	ch.req = req
	ch.state = stateOpen
	ch.sla, ch.grace = c.rules.limits(n.name, req.GetRequestKind())
	ch.deadline = req.GetEventTimeMs() + ch.sla + ch.grace
	ch.expireAt = max(ch.expireAt, ch.deadline+c.rules.retention)
	n.schedule(ch.deadline, timerDeadline, ch)
	n.schedule(ch.expireAt, timerExpire, ch)
}

// decide closes a chain on its earliest eligible final answer, if any.
func (c *chains) decide(n *netState, ch *chain) bool {
	if ch.decider() == nil {
		return false
	}
	if ch.state == stateOpen || ch.state == stateWaiting {
		c.pending--
	}
	ch.state = stateDecided
	n.schedule(ch.lastAt()+c.rules.lateness, timerCompact, ch)
	return true
}

// republish re-issues a published chain with the steps it has now.
func (c *chains) republish(n *netState, ch *chain, out []*hinscorev1.Outcome) []*hinscorev1.Outcome {
	switch ch.state {
	case stateDecided, stateUnanswered, stateOrphan:
		return append(out, c.outcome(n, ch))
	}
	return out
}

func (c *chains) advance(n *netState, wm int64, out []*hinscorev1.Outcome) []*hinscorev1.Outcome {
	if wm <= n.wm {
		return out
	}
	n.wm = wm
	for len(n.timers) > 0 && n.timers[0].at < wm {
		t := n.timers.pop()
		ch := t.ch
		switch t.kind {
		case timerDeadline:
			if ch.state == stateOpen {
				ch.state = stateUnanswered
				ch.decidedAt = wm
				c.pending--
				out = append(out, c.outcome(n, ch))
			}
		case timerOrphan:
			if ch.state == stateWaiting {
				ch.state = stateOrphan
				ch.decidedAt = wm
				c.pending--
				out = append(out, c.outcome(n, ch))
			}
		case timerCompact:
			if ch.state != stateDecided {
				continue
			}
			if at := ch.lastAt() + c.rules.lateness; at >= wm {
				n.schedule(at, timerCompact, ch)
				continue
			}
			ch.state = stateClosed
			ch.req, ch.steps = nil, nil
		case timerExpire:
			if n.chains[ch.key] != ch {
				continue
			}
			if ch.expireAt >= wm {
				n.schedule(ch.expireAt, timerExpire, ch)
				continue
			}
			if ch.state == stateOpen || ch.state == stateWaiting {
				c.pending--
			}
			delete(n.chains, ch.key)
		}
	}
	return out
}

func nonNegative(d int64) uint64 {
	if d < 0 {
		// Clocks of different systems disagree; an answer stamped before
		// its request was answered at once.
		return 0
	}
	return uint64(d)
}

// outcome builds the next version of a chain's outcome.
func (c *chains) outcome(n *netState, ch *chain) *hinscorev1.Outcome {
	if ch.id == "" {
		ch.id = bus.OutcomeID(n.name, ch.key).String()
	}
	ch.version++
	o := &hinscorev1.Outcome{
		OutcomeId:      ch.id,
		Version:        ch.version,
		Network:        n.name,
		CorrelationKey: ch.key,
		RuleVersion:    RuleVersion,
		Steps:          make([]*hinscorev1.Step, len(ch.steps)),
	}
	for i, s := range ch.steps {
		o.Steps[i] = &hinscorev1.Step{
			EventId:     s.GetEventId(),
			MessageId:   s.GetMessageId(),
			MessageType: s.GetMessageType(),
			Role:        s.GetRole(),
			Status:      s.GetStatus(),
			EventTimeMs: s.GetEventTimeMs(),
			RawSeq:      s.GetRawSeq(),
		}
	}
	// Who asked comes from the request; an orphan only has its answers.
	src := ch.req
	if src == nil {
		src = ch.steps[0]
	}
	o.RequestId = src.GetMessageId()
	o.RequestKind = src.GetRequestKind()
	o.RequesterOrg = src.GetRequesterOrg()
	o.ResponderOrg = src.GetResponderOrg()
	o.PatientToken = src.GetPatientToken()
	o.RequestedAtMs = src.GetEventTimeMs()
	o.MappingVersion = src.GetMappingVersion()
	for _, s := range ch.steps {
		if o.ResponderOrg == "" && isAnswer(s) {
			o.ResponderOrg = s.GetResponderOrg()
		}
		if o.PatientToken == "" {
			o.PatientToken = s.GetPatientToken()
		}
		if o.AcknowledgedAtMs == 0 && isAnswer(s) {
			o.AcknowledgedAtMs = s.GetEventTimeMs()
		}
	}
	if ch.req != nil {
		o.SlaMs, o.GraceMs = uint64(ch.sla), uint64(ch.grace)
		if o.AcknowledgedAtMs != 0 {
			o.HasTta = true
			o.TtaMs = nonNegative(o.AcknowledgedAtMs - ch.req.GetEventTimeMs())
		}
	} else {
		sla, grace := c.rules.limits(n.name, src.GetRequestKind())
		o.SlaMs, o.GraceMs = uint64(sla), uint64(grace)
	}

	switch ch.state {
	case stateOrphan:
		o.OutcomeClass = hinscorev1.OutcomeClass_OUTCOME_CLASS_ORPHAN
		o.DecidedAtMs = ch.decidedAt
		fillAnswer(o, src)
	case stateUnanswered:
		o.OutcomeClass = hinscorev1.OutcomeClass_OUTCOME_CLASS_UNANSWERED
		o.DecidedAtMs = ch.decidedAt
	case stateDecided:
		d := ch.decider()
		ttf := d.GetEventTimeMs() - ch.req.GetEventTimeMs()
		o.OutcomeClass = classify(d, ttf, ch.sla, ch.late)
		o.DecidedAtMs = d.GetEventTimeMs()
		fillAnswer(o, d)
		if isAnswer(d) {
			o.HasTtf = true
			o.TtfMs = nonNegative(ttf)
		}
	}
	return o
}

// fillAnswer copies what the deciding message said.
func fillAnswer(o *hinscorev1.Outcome, d *hinscorev1.ExchangeEvent) {
	o.ResponseId = d.GetMessageId()
	o.ExceptionCode = d.GetExceptionCode()
	o.ReasonCodes = d.GetReasonCodes()
	o.RecordCount = d.GetRecordCount()
	if isAnswer(d) {
		o.AnsweredAtMs = d.GetEventTimeMs()
	}
}
