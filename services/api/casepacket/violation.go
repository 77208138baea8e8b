package casepacket

import (
	"github.com/hinscore/hinscore/services/lib/domain/outcome"
	"github.com/hinscore/hinscore/services/lib/domain/purpose"
)

// ViolationRuleVersion names ViolationRule; it changes with the rule.
const ViolationRuleVersion = "violation-units/2"

// ViolationRule is the rule by which a packet counts violation units,
// printed in every packet's summary: penalties under 45 CFR part 171 are
// per violation, and this is what hinscore can show to be one.
const ViolationRule = ViolationRuleVersion + ": one unit per request whose class is " +
	"refused_unjustified (refused without a recognised 45 CFR 171 exception) or unanswered " +
	"(no final answer by its SLA plus grace), made for a purpose that requires a response " +
	"(TEFCA Exchange Purposes SOP: treatment and individual access, purpose " + purpose.Version + "). " +
	"Not counted: refusals citing an exception (refused_exception: lawful on their face, reported), " +
	"redirects, errors, cancelled, not found, orphans, and requests whose purpose is not known " +
	"(none carried: no duty to respond can be shown). A cited exception counts as valid here. " +
	"Counted apart (contradicted_exception_units): refusals citing an exception, made for such a " +
	"purpose, that a check of the responder's own behaviour flags (exception-rules, the rule and " +
	"its figures in the chain's file): evidence that the exception does not hold, not proof."

// ContradictedException reports whether a request of this class and
// canonical purpose, whose cited exception a behaviour check flagged, is
// counted apart under ViolationRule: a refusal citing an exception, for a
// purpose that requires a response.
func ContradictedException(class, purposeName string, flagged bool) bool {
	c, err := outcome.Parse(class)
	return err == nil && c == outcome.RefusedException && flagged && responseRequired(purposeName)
}

// ViolationUnit reports whether a request of this class and canonical
// purpose is one violation unit under ViolationRule.
func ViolationUnit(class, purposeName string) bool {
	c, err := outcome.Parse(class)
	return err == nil && (c == outcome.RefusedUnjustified || c == outcome.Unanswered) && responseRequired(purposeName)
}

// responseRequired reports whether a canonical purpose requires a response.
func responseRequired(purposeName string) bool {
	p, err := purpose.Parse(purposeName)
	return err == nil && purpose.RequiredResponse(p)
}
