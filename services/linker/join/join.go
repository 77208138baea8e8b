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
	"time"

	"github.com/hinscore/hinscore/services/lib/domain/calendar"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
)

// RuleVersion names the linking and classification rules of this package; it
// is stamped on every outcome so a scorecard can say which rules decided it.
// link/2: windowed keys join a chain of a neighbouring window, the two
// gateways' records of one transaction meet in one chain and the side rule
// picks their decider, untimed events report no times and are never late,
// SLAs in business days and per purpose.
const RuleVersion = "link/2"

// OverflowReason is the reason code of a chain closed because its partition
// reached its cap of pending chains (Rules.MaxPending).
const OverflowReason = "hinscore|overflow"

// Limit is the time a request has to be answered: its SLA, a span of event
// time or a number of business days, and the grace after it before the
// request is unanswered.
type Limit struct {
	// SLA in milliseconds; unused when BusinessDays is set.
	SLA int64
	// BusinessDays, when positive, is the SLA: the deadline is that many
	// business days (Rules.Calendar) after the date of the request, at its
	// time of day; the day of receipt does not count.
	BusinessDays int
	// Grace in milliseconds.
	Grace int64
}

// Rules configure a join. Times are milliseconds of event time, except Idle.
type Rules struct {
	// Limits returns the limit of a request kind made for a purpose (its
	// canonical name, "" when the request carried none) in a network; asked
	// once per network, kind and purpose, then cached.
	Limits func(network, kind, purpose string) Limit
	// Calendar counts the business days of a Limit given in them; the zero
	// value is the US federal calendar in UTC.
	Calendar calendar.Calendar
	// Window is the width of the windows of windowed correlation keys
	// (lib/domain/partition.Windowed): an event whose windowed key has no
	// chain joins a chain of the same base in a neighbouring window when
	// every event of that chain is within Window of it. 0 turns the lookup
	// off.
	Window int64
	// SideWait is how long after its last event a decided chain of a
	// windowed key keeps its events (rather than the lateness), waiting for
	// the other gateway's record: one that comes later is a straggler.
	SideWait int64
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
	WindowJoins   uint64 // events that joined a chain of a neighbouring window
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
	profiles internTable[profile]
	crosses  internTable[crossFields] // the profiles' cross-community fields
	noCross  crossFields              // a profile's without any: never written
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
	return &Join{rules: r, seed: maphash.MakeSeed(), nets: map[string]*netState{}, profiles: newInternTable[profile](), crosses: newInternTable[crossFields](), ids: newOutcomeIDs()}
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
