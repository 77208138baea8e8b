package join

import (
	"github.com/hinscore/hinscore/services/lib/domain/partition"
)

// hold is how long after its last step a decided chain keeps its steps:
// the lateness, or for a cross-community transaction's chain (a windowed
// key or a transaction key, partition.TwoSided) Rules.SideWait when it is
// longer, so that the other gateway's record, delivered late, still joins
// it (and shows in its sides) rather than being a straggler.
func (j *Join) hold(ch *chain) int64 {
	if partition.TwoSided(ch.key()) {
		return max(j.rules.Lateness, j.rules.SideWait)
	}
	return j.rules.Lateness
}

// neighbour finds the chain an event with a windowed correlation key
// belongs to when its own window has none: the two gateways' records of one
// transaction are less than a window apart, so they are in the same window
// or in adjacent ones (lib/domain/partition). A chain of the same base in
// the window before or after joins the event when every event of it is
// within Rules.Window of the event's time; when both do, the one nearer in
// time, then the earlier window. Only the join's state decides, so a replay
// (or a join restored from a checkpoint) finds the same chain.
func (j *Join) neighbour(n *netState, key string, t int64) *chain {
	if j.rules.Window <= 0 {
		return nil
	}
	var best *chain
	var bestGap int64
	for _, d := range [...]int64{-1, 1} {
		next := partition.Neighbour(key, d)
		if next == "" {
			return nil // not a windowed key
		}
		ch := n.lookup(j.seed, next)
		if ch == nil {
			continue
		}
		first, last := ch.bounds()
		if t < last-j.rules.Window || t > first+j.rules.Window {
			continue
		}
		gap := max(first-t, t-last, 0)
		if best == nil || gap < bestGap {
			best, bestGap = ch, gap
		}
	}
	return best
}
