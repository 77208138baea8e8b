package scorecard

import (
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/hinscore/hinscore/services/lib/domain/exceptionrule"
)

// checkWorld builds chains of one responder for the rule tests.
type checkWorld struct {
	rows []chainRow
	n    int
}

func (w *checkWorld) add(requester, kind, purpose, outcome, code string, at time.Time) *chainRow {
	w.n++
	w.rows = append(w.rows, chainRow{
		outcomeID: fmt.Sprintf("o%04d", w.n), requestID: fmt.Sprintf("r%04d", w.n), network: "net",
		responder: "H1", org: "h1", requester: requester, kind: kind, purpose: purpose,
		outcome: outcome, code: code, requestedMs: at.UnixMilli(), answeredMs: at.Add(2 * time.Second).UnixMilli(), slaMs: 60_000,
	})
	return &w.rows[len(w.rows)-1]
}

// inputOf is what loadCheckInput reads from ClickHouse, from the rows
// themselves: the citing ones, every one as near, and the groups counted.
func inputOf(rows []chainRow) checkInput {
	in := checkInput{near: rows}
	counts := map[groupRow]uint64{}
	for _, r := range rows {
		if slices.Contains(checkedCodes(), r.code) {
			in.citing = append(in.citing, r)
		}
		counts[groupRow{responder: r.responder, requester: r.requester, kind: r.kind, purpose: r.purpose, code: r.code,
			month: monthOf(r.requestedMs), fulfilled: r.fulfilled()}]++
	}
	for g, n := range counts {
		g.n = n
		in.groups = append(in.groups, g)
	}
	return in
}

// only returns the checks of one rule, by outcome id.
func only(checks []chainCheck, rule string) map[string]chainCheck {
	out := map[string]chainCheck{}
	for _, c := range checks {
		if c.rule.ID == rule {
			out[c.row.outcomeID] = c
		}
	}
	return out
}

var (
	checkMonth = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	checkEnd   = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	checkNow   = time.Date(2027, 1, 15, 0, 0, 0, 0, time.UTC)
)

func TestPerformanceCitedWhileServing(t *testing.T) {
	t0 := time.Date(2026, 11, 10, 14, 0, 0, 0, time.UTC)
	window := 5 * time.Minute
	cases := []struct {
		name              string
		others            []time.Duration // offsets of the other chains
		fulfilled         int             // the first this many of them are fulfilled
		checked, flagged  bool
		others_, fulfill_ uint64
	}{
		{"half fulfilled: just flagged", []time.Duration{-4 * time.Minute, -time.Minute, 0, time.Minute, 2 * time.Minute, 3 * time.Minute}, 3, true, true, 6, 3},
		{"under half: just not flagged", []time.Duration{-4 * time.Minute, -time.Minute, 0, time.Minute, 2 * time.Minute, 3 * time.Minute}, 2, true, false, 6, 2},
		{"a real outage: fulfilling nothing", []time.Duration{-4 * time.Minute, -3 * time.Minute, -2 * time.Minute, -time.Minute, time.Minute, 2 * time.Minute, 3 * time.Minute}, 0, true, false, 7, 0},
		{"window edges: 5 min in, 5 min 1 ms out", []time.Duration{-window, window, -window - time.Millisecond, window + time.Millisecond, 0, time.Second, 2 * time.Second}, 5, true, true, 5, 3},
		{"too few others: cited, not checked", []time.Duration{-time.Minute, 0, time.Minute, 2 * time.Minute}, 4, false, false, 4, 4},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var w checkWorld
			cite := w.add("C1", "patient_query", "treatment", "refused_exception", "171.205", t0)
			for i, off := range tc.others {
				outcome, code := "refused_exception", "171.205"
				if i < tc.fulfilled {
					outcome, code = "fulfilled", ""
				}
				w.add(fmt.Sprintf("C%d", 2+i%3), "patient_query", "treatment", outcome, code, t0.Add(off))
			}
			got := only(checkChains(inputOf(w.rows), checkMonth, checkEnd, checkNow), "171.205-serving")[cite.outcomeID]
			if got.checked != tc.checked || got.flagged != tc.flagged || got.others != tc.others_ || got.othersFulfilled != tc.fulfill_ {
				t.Fatalf("checked %v flagged %v others %d fulfilled %d, want %v %v %d %d",
					got.checked, got.flagged, got.others, got.othersFulfilled, tc.checked, tc.flagged, tc.others_, tc.fulfill_)
			}
		})
	}
}

func TestInfeasibilityWrittenAnswer(t *testing.T) {
	// Wednesday 11 November 2026 is Veterans Day: ten business days after
	// Monday 2 November end on Tuesday 17 November, at the request's time.
	requested := time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)
	due := time.Date(2026, 11, 17, 10, 0, 0, 0, time.UTC)
	cases := []struct {
		name             string
		answered         time.Time // zero: no answer
		untimed          bool
		now              time.Time
		checked, flagged bool
	}{
		{"answered on the deadline: not flagged", due, false, checkNow, true, false},
		{"answered 1 ms after it: flagged", due.Add(time.Millisecond), false, checkNow, true, true},
		{"no answer, deadline passed: flagged", time.Time{}, false, due.Add(time.Millisecond), true, true},
		{"no answer yet, deadline ahead: not checked", time.Time{}, false, due, false, false},
		{"untimed: not checked", due.Add(time.Hour), true, checkNow, false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var w checkWorld
			r := w.add("C1", "record_request", "treatment", "refused_exception", "171.204", requested)
			r.answeredMs, r.untimed = 0, tc.untimed
			if !tc.answered.IsZero() {
				r.answeredMs = tc.answered.UnixMilli()
			}
			got := only(checkChains(inputOf(w.rows), checkMonth, checkEnd, tc.now), "171.204-written-answer")[r.outcomeID]
			if got.row == nil || got.checked != tc.checked || got.flagged != tc.flagged {
				t.Fatalf("checked %v flagged %v, want %v %v", got.checked, got.flagged, tc.checked, tc.flagged)
			}
		})
	}
}

func TestMannerRedirectWhileAnsweringOthers(t *testing.T) {
	at := time.Date(2026, 11, 3, 9, 0, 0, 0, time.UTC)
	cases := []struct {
		name                     string
		others, fulfilled        int
		ownFulfilled             int // the redirected requester's own fulfilled requests: never counted
		checked, flagged         bool
		otherKindFulfilled, next int // fulfilled chains of another kind, of the next month: never counted
	}{
		{"half of 30 others fulfilled: just flagged", 30, 15, 0, true, true, 0, 0},
		{"14 of 30: just not flagged", 30, 14, 20, true, false, 20, 20},
		{"29 others: not checked", 29, 29, 0, false, false, 0, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var w checkWorld
			r := w.add("C1", "patient_query", "treatment", "redirected", "redirect-fax", at)
			for i := range tc.others {
				outcome := "not_found"
				if i < tc.fulfilled {
					outcome = "fulfilled"
				}
				w.add(fmt.Sprintf("C%d", 2+i%4), "patient_query", "treatment", outcome, "", at.Add(time.Duration(i)*time.Hour))
			}
			for i := range tc.ownFulfilled {
				w.add("C1", "patient_query", "treatment", "fulfilled", "", at.Add(time.Duration(i)*time.Minute))
			}
			for i := range tc.otherKindFulfilled {
				w.add("C2", "referral", "treatment", "fulfilled", "", at.Add(time.Duration(i)*time.Minute))
			}
			for i := range tc.next {
				w.add("C2", "patient_query", "treatment", "fulfilled", "", checkEnd.Add(time.Duration(i)*time.Minute))
			}
			got := only(checkChains(inputOf(w.rows), checkMonth, checkEnd, checkNow), "171.301-electronic")[r.outcomeID]
			if got.checked != tc.checked || got.flagged != tc.flagged || got.others != uint64(tc.others) {
				t.Fatalf("checked %v flagged %v others %d, want %v %v %d", got.checked, got.flagged, got.others, tc.checked, tc.flagged, tc.others)
			}
		})
	}
}

func TestPrivacyCitedUnequally(t *testing.T) {
	at := time.Date(2026, 11, 4, 9, 0, 0, 0, time.UTC)
	cases := []struct {
		name                   string
		n1, x1, n2, x2         int
		code                   string
		z                      float64 // by hand: (p1-p2)/sqrt(p(1-p)(1/n1+1/n2)), p pooled
		checked, flagged       bool
		otherPurposeCitedByAll int // citations of the others for another purpose: a group of its own
	}{
		{"10 of 30 against 0 of 30: just flagged", 30, 10, 30, 0, "171.202", 3.4641, true, true, 30},
		{"9 of 30 against 0 of 30: just not flagged", 30, 9, 30, 0, "171.202", 3.2540, true, false, 0},
		{"significant but under 5 points", 2000, 100, 2000, 40, "171.203", 5.1621, true, false, 0},
		{"29 requests of the requester: not checked", 29, 20, 30, 0, "171.202", 5.5946, false, false, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var w checkWorld
			var first *chainRow
			for i := range tc.n1 {
				outcome, code := "fulfilled", ""
				if i < tc.x1 {
					outcome, code = "refused_exception", tc.code
				}
				r := w.add("C1", "patient_query", "treatment", outcome, code, at.Add(time.Duration(i)*time.Minute))
				if i == 0 {
					first = r
				}
			}
			id := first.outcomeID
			for i := range tc.n2 {
				outcome, code := "fulfilled", ""
				if i < tc.x2 {
					outcome, code = "refused_exception", tc.code
				}
				w.add(fmt.Sprintf("C%d", 2+i%5), "patient_query", "treatment", outcome, code, at.Add(time.Duration(i)*time.Minute))
			}
			for i := range tc.otherPurposeCitedByAll {
				w.add(fmt.Sprintf("C%d", 2+i%5), "patient_query", "payment", "refused_exception", tc.code, at.Add(time.Duration(i)*time.Minute))
			}
			got := only(checkChains(inputOf(w.rows), checkMonth, checkEnd, checkNow), tc.code+"-unequal")[id]
			if math.Abs(got.measure-tc.z) > 1e-4 || got.checked != tc.checked || got.flagged != tc.flagged {
				t.Fatalf("z %.4f checked %v flagged %v, want %.4f %v %v", got.measure, got.checked, got.flagged, tc.z, tc.checked, tc.flagged)
			}
		})
	}
}

func TestChecksOnlyTheMonthAsked(t *testing.T) {
	var w checkWorld
	w.add("C1", "patient_query", "treatment", "refused_exception", "171.205", checkMonth.Add(-time.Millisecond))
	in := w.add("C1", "patient_query", "treatment", "refused_exception", "171.205", checkMonth)
	w.add("C1", "patient_query", "treatment", "refused_exception", "171.205", checkEnd)
	checks := checkChains(inputOf(w.rows), checkMonth, checkEnd, checkNow)
	if len(checks) != 1 || checks[0].row.outcomeID != in.outcomeID || checks[0].rule.ID != "171.205-serving" {
		t.Fatalf("checks %+v, want the one citation of the month", checks)
	}
	for _, r := range exceptionrule.Table() {
		if r.ID == "" || len(r.Codes) == 0 || r.Reasoning == "" {
			t.Errorf("rule %+v incomplete", r)
		}
	}
}
