package scorecard

import (
	"cmp"
	"math"
	"slices"
	"time"

	"github.com/hinscore/hinscore/services/lib/domain/calendar"
	"github.com/hinscore/hinscore/services/lib/domain/exceptionrule"
)

// chainRow is one outcome as the exception checks read it.
type chainRow struct {
	outcomeID, requestID, network string
	// responder is the responder identifier (chstore.ResponderSQL): the
	// system that answered, which "the same responder" means; org and
	// developer are the directory's, for the cards.
	responder, org, developer string
	requester, kind, purpose  string
	outcome, code             string
	requestedMs, answeredMs   int64
	slaMs                     uint64
	untimed                   bool
}

// fulfilled reports whether the chain ended with the records (late or
// partial ones too): the responder was answering.
func (r *chainRow) fulfilled() bool { return fulfilledClass(r.outcome) }

func fulfilledClass(outcome string) bool {
	return outcome == "fulfilled" || outcome == "fulfilled_late" || outcome == "partial"
}

// groupRow counts a responder's chains of one month by requester, request
// kind, purpose, cited code and whether they were fulfilled: what the
// monthly rules compare a citation with.
type groupRow struct {
	responder, requester, kind, purpose, code string
	month                                     int64
	fulfilled                                 bool
	n                                         uint64
}

// checkInput is what the rules read for one month: every chain citing a
// checked code requested in it, the chains of the responders near a
// 171.205 citation (a rule window either side, the citing ones among
// them), and the month's chains of the citing responders as groupRows.
type checkInput struct {
	citing, near []chainRow
	groups       []groupRow
}

// chainCheck is what one rule found for one chain citing its code.
type chainCheck struct {
	row     *chainRow
	rule    exceptionrule.Rule
	checked bool
	flagged bool
	// others are the chains the rule compared with, othersFulfilled those
	// fulfilled; measure is the share, the z statistic (CitedUnequally) or
	// the business days to the answer (NoTimelyWrittenAnswer; -1 when none).
	others, othersFulfilled uint64
	measure                 float64
}

// checkChains applies every rule to each chain of in.citing requested in
// [from, to) that cites one of its codes; from and to are month starts.
// now decides whether a missing written answer is overdue yet.
func checkChains(in checkInput, from, to, now time.Time) []chainCheck {
	near := map[string][]*chainRow{}
	for i := range in.near {
		r := &in.near[i]
		near[r.responder] = append(near[r.responder], r)
	}
	for _, rows := range near {
		slices.SortStableFunc(rows, func(a, b *chainRow) int { return cmp.Compare(a.requestedMs, b.requestedMs) })
	}
	manner, unequal := monthTallies(in.groups)
	var out []chainCheck
	for _, rule := range exceptionrule.Table() {
		for i := range in.citing {
			r := &in.citing[i]
			if !cites(rule, r, from, to) {
				continue
			}
			var c chainCheck
			switch rule.Condition {
			case exceptionrule.ServingWhileCiting:
				c = checkServing(rule, r, near[r.responder])
			case exceptionrule.NoTimelyWrittenAnswer:
				c = checkWrittenAnswer(rule, r, now)
			case exceptionrule.RedirectedWhileElectronic:
				c = checkManner(rule, r, manner)
			case exceptionrule.CitedUnequally:
				c = checkUnequal(rule, r, unequal)
			}
			out = append(out, c)
		}
	}
	return out
}

// cites reports whether a chain requested in [from, to) cites one of the
// rule's codes.
func cites(rule exceptionrule.Rule, r *chainRow, from, to time.Time) bool {
	return r.requestedMs >= from.UnixMilli() && r.requestedMs < to.UnixMilli() && slices.Contains(rule.Codes, r.code)
}

// shareOf is n of total, 0 of nothing.
func shareOf(n, total uint64) float64 {
	if total == 0 {
		return 0
	}
	return float64(n) / float64(total)
}

// checkServing: the responder's other chains within ±WindowAround of the
// citing one (near, sorted by request time), every requester's.
func checkServing(rule exceptionrule.Rule, r *chainRow, near []*chainRow) chainCheck {
	w := rule.WindowAround.Milliseconds()
	c := chainCheck{row: r, rule: rule}
	lo, _ := slices.BinarySearchFunc(near, r.requestedMs-w, func(x *chainRow, t int64) int { return cmp.Compare(x.requestedMs, t) })
	for _, o := range near[lo:] {
		if o.requestedMs > r.requestedMs+w {
			break
		}
		if o.outcomeID == r.outcomeID {
			continue
		}
		c.others++
		if o.fulfilled() {
			c.othersFulfilled++
		}
	}
	c.measure = shareOf(c.othersFulfilled, c.others)
	c.checked = c.others >= uint64(rule.MinOthers)
	c.flagged = c.checked && c.measure >= rule.Threshold
	return c
}

// checkWrittenAnswer: the deciding answer citing the code is the written
// response; it is due BusinessDays US federal business days after the
// request (calendar.AddBusinessDays: the day of receipt is not one of
// them). A chain without an answer is checked once that deadline has
// passed at now; an untimed chain (its request time is when it was
// recorded) cannot be checked.
func checkWrittenAnswer(rule exceptionrule.Rule, r *chainRow, now time.Time) chainCheck {
	cal := calendar.USFederal()
	c := chainCheck{row: r, rule: rule, measure: -1}
	requested := time.UnixMilli(r.requestedMs).UTC()
	due := cal.AddBusinessDays(requested, rule.BusinessDays)
	switch {
	case r.untimed:
	case r.answeredMs > 0:
		answered := time.UnixMilli(r.answeredMs).UTC()
		c.checked, c.flagged = true, answered.After(due)
		c.measure = float64(cal.BusinessDaysBetween(requested, answered))
	case now.After(due):
		c.checked, c.flagged = true, true
	}
	return c
}

// monthKey groups a responder's chains of a calendar month by what a
// rule compares within it.
type monthKey struct {
	responder     string
	month         int64
	kind, purpose string
}

func monthOf(ms int64) int64 { return PeriodStart(Month, time.UnixMilli(ms)).UnixMilli() }

// citeTally counts a group's chains, and those that count (fulfilled, or
// citing), in all and per requester.
type citeTally struct {
	n, hits       uint64
	byReq, hitReq map[string]uint64
}

func (t *citeTally) add(requester string, n uint64, hit bool) {
	if t.byReq == nil {
		t.byReq, t.hitReq = map[string]uint64{}, map[string]uint64{}
	}
	t.n += n
	t.byReq[requester] += n
	if hit {
		t.hits += n
		t.hitReq[requester] += n
	}
}

// others are the group's chains of every other requester, and their hits.
func (t *citeTally) others(requester string) (n, hits uint64) {
	if t == nil {
		return 0, 0
	}
	return t.n - t.byReq[requester], t.hits - t.hitReq[requester]
}

// own are the requester's chains of the group, and their hits.
func (t *citeTally) own(requester string) (n, hits uint64) {
	if t == nil {
		return 0, 0
	}
	return t.byReq[requester], t.hitReq[requester]
}

// monthTallies counts the groups for the monthly rules: fulfilled chains
// by responder, month and kind (manner), and chains citing each code by
// responder, month, kind and purpose (unequal, keyed by code too).
func monthTallies(groups []groupRow) (manner map[monthKey]*citeTally, unequal map[string]map[monthKey]*citeTally) {
	manner, unequal = map[monthKey]*citeTally{}, map[string]map[monthKey]*citeTally{}
	for _, rule := range exceptionrule.Table() {
		if rule.Condition == exceptionrule.CitedUnequally {
			unequal[rule.ID] = map[monthKey]*citeTally{}
		}
	}
	get := func(m map[monthKey]*citeTally, k monthKey) *citeTally {
		if m[k] == nil {
			m[k] = &citeTally{}
		}
		return m[k]
	}
	for _, g := range groups {
		get(manner, monthKey{responder: g.responder, month: g.month, kind: g.kind}).add(g.requester, g.n, g.fulfilled)
		for _, rule := range exceptionrule.Table() {
			if m := unequal[rule.ID]; m != nil {
				k := monthKey{responder: g.responder, month: g.month, kind: g.kind, purpose: g.purpose}
				get(m, k).add(g.requester, g.n, slices.Contains(rule.Codes, g.code))
			}
		}
	}
	return manner, unequal
}

// checkManner: the other requesters' chains of the same request kind in the
// month, and how many the responder fulfilled. Every request hinscore
// records came in a standard electronic form (HL7 v2, FHIR, XCPD/XCA).
func checkManner(rule exceptionrule.Rule, r *chainRow, manner map[monthKey]*citeTally) chainCheck {
	c := chainCheck{row: r, rule: rule}
	c.others, c.othersFulfilled = manner[monthKey{responder: r.responder, month: monthOf(r.requestedMs), kind: r.kind}].others(r.requester)
	c.measure = shareOf(c.othersFulfilled, c.others)
	c.checked = c.others >= uint64(rule.MinOthers)
	c.flagged = c.checked && c.measure >= rule.Threshold
	return c
}

// checkUnequal: within the month, request kind and purpose, the
// requester's rate of citing the code against the other requesters'
// together, by a pooled two-proportion z statistic. othersFulfilled holds
// the other requesters' citations here.
func checkUnequal(rule exceptionrule.Rule, r *chainRow, unequal map[string]map[monthKey]*citeTally) chainCheck {
	g := unequal[rule.ID][monthKey{responder: r.responder, month: monthOf(r.requestedMs), kind: r.kind, purpose: r.purpose}]
	c := chainCheck{row: r, rule: rule}
	c.others, c.othersFulfilled = g.others(r.requester)
	n1, x1 := g.own(r.requester)
	c.measure = twoProportionZ(x1, n1, c.othersFulfilled, c.others)
	c.checked = n1 >= uint64(rule.MinOthers) && c.others >= uint64(rule.MinOthers)
	c.flagged = c.checked && c.measure >= rule.Threshold && shareOf(x1, n1)-shareOf(c.othersFulfilled, c.others) >= rule.Margin
	return c
}

// twoProportionZ is the pooled two-proportion z statistic of x1 of n1
// against x2 of n2 (positive when the first rate is higher); 0 when either
// side is empty or the pooled rate is 0 or 1 (no variation to test).
func twoProportionZ(x1, n1, x2, n2 uint64) float64 {
	if n1 == 0 || n2 == 0 {
		return 0
	}
	p := float64(x1+x2) / float64(n1+n2)
	se := math.Sqrt(p * (1 - p) * (1/float64(n1) + 1/float64(n2)))
	if se == 0 {
		return 0
	}
	return (shareOf(x1, n1) - shareOf(x2, n2)) / se
}
