package api

import (
	"slices"
	"testing"
)

// TestCaseSummaryCountsContradictedExceptionsApart: a packet's summary
// counts unjustified refusals and silences of a required-response purpose
// as units, and a refusal citing an exception its check flagged apart
// from them; an exception whose check found nothing is neither.
func TestCaseSummaryCountsContradictedExceptionsApart(t *testing.T) {
	flagged := []ExceptionCheck{{RuleID: "171.205-serving", Checked: true}, {RuleID: "171.205-serving", Checked: true, Flagged: true}}
	clear := []ExceptionCheck{{RuleID: "171.205-serving", Checked: true}}
	p := casePacket{chains: []caseChain{
		{view: ChainView{Outcome: Outcome{ID: "a", Class: "refused_unjustified", Purpose: "treatment"}}},
		{view: ChainView{Outcome: Outcome{ID: "b", Class: "refused_exception", Purpose: "treatment"}, ExceptionChecks: flagged}},
		{view: ChainView{Outcome: Outcome{ID: "c", Class: "refused_exception", Purpose: "treatment"}, ExceptionChecks: clear}},
		{view: ChainView{Outcome: Outcome{ID: "d", Class: "refused_exception", Purpose: "payment"}, ExceptionChecks: flagged}},
		{view: ChainView{Outcome: Outcome{ID: "e", Class: "unanswered", Purpose: "individual_access"}}},
	}}
	s := p.summary()
	if s.ViolationUnits != 2 || !slices.Equal(s.Violations, []string{"a", "e"}) {
		t.Errorf("units %d %v, want 2 [a e]", s.ViolationUnits, s.Violations)
	}
	if s.ContradictedExceptionUnits != 1 || !slices.Equal(s.ContradictedExceptions, []string{"b"}) {
		t.Errorf("contradicted %d %v, want 1 [b]", s.ContradictedExceptionUnits, s.ContradictedExceptions)
	}
}
