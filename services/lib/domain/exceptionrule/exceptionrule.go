// Package exceptionrule holds the rules by which a cited exception of 45
// CFR part 171 is checked against the responder's own behaviour (DOMAIN.md,
// "Feed integrity and exception claims"), as one versioned table of data:
// one row per rule with its exception codes, condition, window, threshold
// and reasoning. The scorecard applies them over a period's chains and
// prints every parameter; migration 013 copies the rows into the
// exception_rules table so analysts can join a chain's flag to its rule.
package exceptionrule

import (
	"fmt"
	"strings"
	"time"
)

// Version names the table below. Change it with the table, and add a
// migration that inserts the new rows (TestMigrationHoldsTheTable in the
// scorecard fails until it does): a chain's flag names the version that
// decided it.
const Version = "exception-rules/1"

// Conditions: how a rule tests a citation. Each is implemented once, in
// the scorecard's exception checks.
const (
	// ServingWhileCiting: the responder fulfilled at least Threshold of its
	// other requests (at least MinOthers of them, every requester) within
	// ±Window of the citing request.
	ServingWhileCiting = "others_fulfilled_share_at_least"
	// NoTimelyWrittenAnswer: the chain's deciding answer citing the code
	// (the written response) came later than BusinessDays US federal
	// business days after the request, or never came and that deadline
	// has passed.
	NoTimelyWrittenAnswer = "no_written_answer_within_business_days"
	// RedirectedWhileElectronic: the responder fulfilled at least
	// Threshold of the other requesters' requests of the same request kind
	// (at least MinOthers of them) in the same calendar month (UTC).
	RedirectedWhileElectronic = "others_fulfilled_electronically_share_at_least"
	// CitedUnequally: within one responder, request kind, exchange purpose
	// and calendar month, the requester's citation rate of the code is
	// above that of the other requesters together by a two-proportion z
	// statistic of at least Threshold and by at least Margin, with at
	// least MinOthers requests on each side.
	CitedUnequally = "citation_rate_above_other_requesters"
)

// Windows a rule's condition is evaluated over.
const (
	WindowMonth = "calendar month (UTC) of the request"
)

// Rule is one row of the table.
type Rule struct {
	// ID is stable across versions: "171.205-serving".
	ID string
	// Codes are the exception (or redirect) codes whose citation the rule
	// checks, as the outcome's exception_code holds them.
	Codes []string
	// Condition is one of the conditions above.
	Condition string
	// Window is the span around (or containing) the citation the other
	// chains are taken from, in words; WindowAround is that span for the
	// windows that are a duration either side (0 otherwise).
	Window       string
	WindowAround time.Duration
	// BusinessDays is the deadline of NoTimelyWrittenAnswer.
	BusinessDays int
	// Threshold is the share (or the z statistic for CitedUnequally) the
	// condition compares with; Margin the least difference of rates
	// CitedUnequally asks for.
	Threshold float64
	Margin    float64
	// MinOthers is the fewest other chains for a citation to be checked
	// at all: with fewer, it is counted as cited, not checked.
	MinOthers int
	// Reasoning says, for an investigator, why a flagged citation is not
	// what the exception allows.
	Reasoning string
}

// table is every rule, in the order of the exceptions.
var table = [...]Rule{
	{
		ID: "171.202-unequal", Codes: []string{"171.202"}, Condition: CitedUnequally, Window: WindowMonth,
		Threshold: 3.29, Margin: 0.05, MinOthers: 30,
		Reasoning: "The privacy exception requires a consistent, non-discriminatory practice: this requester met 171.202 far more often " +
			"than the other requesters of the same responder, for the same request kind and purpose in the same month " +
			"(two-proportion z >= 3.29, two-sided p < 0.001, and at least 5 points apart).",
	},
	{
		ID: "171.203-unequal", Codes: []string{"171.203"}, Condition: CitedUnequally, Window: WindowMonth,
		Threshold: 3.29, Margin: 0.05, MinOthers: 30,
		Reasoning: "The security exception requires a consistent, non-discriminatory practice: this requester met 171.203 far more often " +
			"than the other requesters of the same responder, for the same request kind and purpose in the same month " +
			"(two-proportion z >= 3.29, two-sided p < 0.001, and at least 5 points apart).",
	},
	{
		ID: "171.204-written-answer", Codes: []string{"171.204"}, Condition: NoTimelyWrittenAnswer,
		Window: "10 US federal business days after the request", BusinessDays: 10,
		Reasoning: "45 CFR 171.204(b) asks for the infeasibility answer in writing within ten business days of the request: " +
			"the answer citing 171.204 (the written response) came later, or not at all.",
	},
	{
		ID: "171.205-serving", Codes: []string{"171.205"}, Condition: ServingWhileCiting,
		Window: "5 minutes either side of the request", WindowAround: 5 * time.Minute,
		Threshold: 0.5, MinOthers: 5,
		Reasoning: "The health IT performance exception covers a system that cannot answer (maintenance, overload): " +
			"the same responder fulfilled at least half of its other requests in the same minutes, so it was answering.",
	},
	{
		ID: "171.301-electronic", Codes: []string{"171.301", "redirect-fax", "redirect-portal"}, Condition: RedirectedWhileElectronic,
		Window: WindowMonth, Threshold: 0.5, MinOthers: 30,
		Reasoning: "The manner exception allows another manner only when the requested one cannot be met: the request came " +
			"in a standard electronic form (HL7 v2, FHIR, IHE XCPD/XCA) and the responder fulfilled at least half of the " +
			"other requesters' requests of that kind electronically in the same month, yet sent this one to fax or a portal.",
	},
}

// Table returns a copy of every rule.
func Table() []Rule {
	out := make([]Rule, len(table))
	for i, r := range table {
		r.Codes = append([]string(nil), r.Codes...)
		out[i] = r
	}
	return out
}

// ForCode returns the rules that check a citation of code.
func ForCode(code string) []Rule {
	var out []Rule
	for _, r := range Table() {
		for _, c := range r.Codes {
			if c == code {
				out = append(out, r)
			}
		}
	}
	return out
}

// Lookup returns the rule with the id.
func Lookup(id string) (Rule, bool) {
	for _, r := range Table() {
		if r.ID == id {
			return r, true
		}
	}
	return Rule{}, false
}

// Parameters is the rule's parameters in one line, as printed beside its
// figures and stored with each checked chain.
func (r Rule) Parameters() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s; window %s", r.Condition, strings.Join(r.Codes, ","), r.Window)
	switch r.Condition {
	case NoTimelyWrittenAnswer:
		fmt.Fprintf(&b, "; %d business days", r.BusinessDays)
	case CitedUnequally:
		fmt.Fprintf(&b, "; z >= %g; margin %g; min %d each side", r.Threshold, r.Margin, r.MinOthers)
	default:
		fmt.Fprintf(&b, "; share >= %g; min %d others", r.Threshold, r.MinOthers)
	}
	return b.String()
}
