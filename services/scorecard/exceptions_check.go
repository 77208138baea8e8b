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
	// responder is the responder identifier (chstore.ResponderSQL); org
	// the directory's organisation of it, which "the same responder" means.
	responder, org, developer string
	requester, kind, purpose  string
	outcome, code             string
	requestedMs, answeredMs   int64
	slaMs                     uint64
	untimed                   bool
}

// fulfilled reports whether the chain ended with the records (late or
// partial ones too): the responder was answering.
func (r *chainRow) fulfilled() bool {
	return r.outcome == "fulfilled" || r.outcome == "fulfilled_late" || r.outcome == "partial"
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

// checkChains applies every rule to each chain of rows requested in
// [from, to) that cites one of its codes. rows must hold every chain of the
// citing responders from a rule window before from to one after to, and
// whole calendar months for the monthly rules (from and to are month
// starts). now decides whether a missing written answer is overdue yet.
func checkChains(rows []chainRow, from, to, now time.Time) []chainCheck {
	byOrg := map[string][]*chainRow{}
	for i := range rows {
		r := &rows[i]
		byOrg[r.org] = append(byOrg[r.org], r)
	}
	orgs := sortedKeys(byOrg)
	for _, org := range orgs {
		slices.SortStableFunc(byOrg[org], func(a, b *chainRow) int { return cmp.Compare(a.requestedMs, b.requestedMs) })
	}
	var out []chainCheck
	for _, rule := range exceptionrule.Table() {
		for _, org := range orgs {
			chains := byOrg[org]
			switch rule.Condition {
			case exceptionrule.ServingWhileCiting:
				out = append(out, checkServing(rule, chains, from, to)...)
			case exceptionrule.NoTimelyWrittenAnswer:
				out = append(out, checkWrittenAnswer(rule, chains, from, to, now)...)
			case exceptionrule.RedirectedWhileElectronic:
				out = append(out, checkManner(rule, chains, from, to)...)
			case exceptionrule.CitedUnequally:
				out = append(out, checkUnequal(rule, chains, from, to)...)
			}
		}
	}
	return out
}

// cites reports whether a chain requested in [from, to) cites one of the
// rule's codes.
func cites(rule exceptionrule.Rule, r *chainRow, from, to time.Time) bool {
	return r.requestedMs >= from.UnixMilli() && r.requestedMs < to.UnixMilli() && slices.Contains(rule.Codes, r.code)
}

// share is n of total, 0 of nothing.
func share(n, total uint64) float64 {
	if total == 0 {
		return 0
	}
	return float64(n) / float64(total)
}

// checkServing: the responder's other chains within ±WindowAround of a
// citing one (sorted by request time), every requester's.
func checkServing(rule exceptionrule.Rule, chains []*chainRow, from, to time.Time) []chainCheck {
	var out []chainCheck
	w := rule.WindowAround.Milliseconds()
	lo := 0
	for i, r := range chains {
		if !cites(rule, r, from, to) {
			continue
		}
		for chains[lo].requestedMs < r.requestedMs-w {
			lo++
		}
		c := chainCheck{row: r, rule: rule}
		for j := lo; j < len(chains) && chains[j].requestedMs <= r.requestedMs+w; j++ {
			if j == i {
				continue
			}
			c.others++
			if chains[j].fulfilled() {
				c.othersFulfilled++
			}
		}
		c.measure = share(c.othersFulfilled, c.others)
		c.checked = c.others >= uint64(rule.MinOthers)
		c.flagged = c.checked && c.measure >= rule.Threshold
		out = append(out, c)
	}
	return out
}

// checkWrittenAnswer: the deciding answer citing the code is the written
// response; it is due BusinessDays US federal business days after the
// request (calendar.AddBusinessDays: the day of receipt is not one of
// them). A chain without an answer is checked once that deadline has
// passed at now; an untimed chain (its request time is when it was
// recorded) cannot be checked.
func checkWrittenAnswer(rule exceptionrule.Rule, chains []*chainRow, from, to, now time.Time) []chainCheck {
	cal := calendar.USFederal()
	var out []chainCheck
	for _, r := range chains {
		if !cites(rule, r, from, to) {
			continue
		}
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
		out = append(out, c)
	}
	return out
}

// monthKey groups chains by calendar month and what a rule compares
// within it.
type monthKey struct {
	month         int64
	kind, purpose string
}

func monthOf(ms int64) int64 { return PeriodStart(Month, time.UnixMilli(ms)).UnixMilli() }

// tally counts a group's chains, and those that count (fulfilled, or
// citing), in all and per requester.
type tally struct {
	n, hits       uint64
	byReq, hitReq map[string]uint64
}

func (t *tally) add(requester string, hit bool) {
	if t.byReq == nil {
		t.byReq, t.hitReq = map[string]uint64{}, map[string]uint64{}
	}
	t.n++
	t.byReq[requester]++
	if hit {
		t.hits++
		t.hitReq[requester]++
	}
}

// others are the group's chains of every other requester, and their hits.
func (t *tally) others(requester string) (n, hits uint64) {
	return t.n - t.byReq[requester], t.hits - t.hitReq[requester]
}

// checkManner: the other requesters' chains of the same request kind in the
// month, and how many the responder fulfilled. Every request hinscore
// records came in a standard electronic form (HL7 v2, FHIR, XCPD/XCA).
func checkManner(rule exceptionrule.Rule, chains []*chainRow, from, to time.Time) []chainCheck {
	groups := map[monthKey]*tally{}
	for _, r := range chains {
		k := monthKey{month: monthOf(r.requestedMs), kind: r.kind}
		if groups[k] == nil {
			groups[k] = &tally{}
		}
		groups[k].add(r.requester, r.fulfilled())
	}
	var out []chainCheck
	for _, r := range chains {
		if !cites(rule, r, from, to) {
			continue
		}
		c := chainCheck{row: r, rule: rule}
		c.others, c.othersFulfilled = groups[monthKey{month: monthOf(r.requestedMs), kind: r.kind}].others(r.requester)
		c.measure = share(c.othersFulfilled, c.others)
		c.checked = c.others >= uint64(rule.MinOthers)
		c.flagged = c.checked && c.measure >= rule.Threshold
		out = append(out, c)
	}
	return out
}

// checkUnequal: within the month, request kind and purpose, the
// requester's rate of citing the code against the other requesters'
// together, by a pooled two-proportion z statistic. othersFulfilled holds
// the other requesters' citations here.
func checkUnequal(rule exceptionrule.Rule, chains []*chainRow, from, to time.Time) []chainCheck {
	groups := map[monthKey]*tally{}
	for _, r := range chains {
		k := monthKey{month: monthOf(r.requestedMs), kind: r.kind, purpose: r.purpose}
		if groups[k] == nil {
			groups[k] = &tally{}
		}
		groups[k].add(r.requester, slices.Contains(rule.Codes, r.code))
	}
	var out []chainCheck
	for _, r := range chains {
		if !cites(rule, r, from, to) {
			continue
		}
		g := groups[monthKey{month: monthOf(r.requestedMs), kind: r.kind, purpose: r.purpose}]
		c := chainCheck{row: r, rule: rule}
		c.others, c.othersFulfilled = g.others(r.requester)
		n1, x1 := g.byReq[r.requester], g.hitReq[r.requester]
		c.measure = twoProportionZ(x1, n1, c.othersFulfilled, c.others)
		c.checked = n1 >= uint64(rule.MinOthers) && c.others >= uint64(rule.MinOthers)
		c.flagged = c.checked && c.measure >= rule.Threshold && share(x1, n1)-share(c.othersFulfilled, c.others) >= rule.Margin
		out = append(out, c)
	}
	return out
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
	return (share(x1, n1) - share(x2, n2)) / se
}
