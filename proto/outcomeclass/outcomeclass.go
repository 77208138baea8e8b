// Package outcomeclass names the outcome classes exactly as DOMAIN.md does;
// these names are what analysts see in ClickHouse and on scorecards.
package outcomeclass

import (
	"fmt"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
)

// All lists every class in the order scorecards print them.
var All = []hinscorev1.OutcomeClass{
	hinscorev1.OutcomeClass_OUTCOME_CLASS_FULFILLED,
	hinscorev1.OutcomeClass_OUTCOME_CLASS_FULFILLED_LATE,
	hinscorev1.OutcomeClass_OUTCOME_CLASS_PARTIAL,
	hinscorev1.OutcomeClass_OUTCOME_CLASS_NOT_FOUND,
	hinscorev1.OutcomeClass_OUTCOME_CLASS_REFUSED_EXCEPTION,
	hinscorev1.OutcomeClass_OUTCOME_CLASS_REFUSED_UNJUSTIFIED,
	hinscorev1.OutcomeClass_OUTCOME_CLASS_REDIRECTED,
	hinscorev1.OutcomeClass_OUTCOME_CLASS_ERROR_TRANSIENT,
	hinscorev1.OutcomeClass_OUTCOME_CLASS_ERROR_PERMANENT,
	hinscorev1.OutcomeClass_OUTCOME_CLASS_CANCELLED,
	hinscorev1.OutcomeClass_OUTCOME_CLASS_UNANSWERED,
	hinscorev1.OutcomeClass_OUTCOME_CLASS_ORPHAN,
}

var names = map[hinscorev1.OutcomeClass]string{
	hinscorev1.OutcomeClass_OUTCOME_CLASS_FULFILLED:           "fulfilled",
	hinscorev1.OutcomeClass_OUTCOME_CLASS_FULFILLED_LATE:      "fulfilled_late",
	hinscorev1.OutcomeClass_OUTCOME_CLASS_PARTIAL:             "partial",
	hinscorev1.OutcomeClass_OUTCOME_CLASS_NOT_FOUND:           "not_found",
	hinscorev1.OutcomeClass_OUTCOME_CLASS_REFUSED_EXCEPTION:   "refused_exception",
	hinscorev1.OutcomeClass_OUTCOME_CLASS_REFUSED_UNJUSTIFIED: "refused_unjustified",
	hinscorev1.OutcomeClass_OUTCOME_CLASS_REDIRECTED:          "redirected",
	hinscorev1.OutcomeClass_OUTCOME_CLASS_ERROR_TRANSIENT:     "error_transient",
	hinscorev1.OutcomeClass_OUTCOME_CLASS_ERROR_PERMANENT:     "error_permanent",
	hinscorev1.OutcomeClass_OUTCOME_CLASS_CANCELLED:           "cancelled",
	hinscorev1.OutcomeClass_OUTCOME_CLASS_UNANSWERED:          "unanswered",
	hinscorev1.OutcomeClass_OUTCOME_CLASS_ORPHAN:              "orphan",
}

// Name returns the DOMAIN.md name of a class ("" for unspecified).
func Name(c hinscorev1.OutcomeClass) string { return names[c] }

// Parse returns the class of a DOMAIN.md name.
func Parse(name string) (hinscorev1.OutcomeClass, error) {
	for c, n := range names {
		if n == name {
			return c, nil
		}
	}
	return hinscorev1.OutcomeClass_OUTCOME_CLASS_UNSPECIFIED, fmt.Errorf("outcomeclass: unknown class %q", name)
}

// Suspect reports whether a class counts as suspected blocking by itself
// (fulfilled later than 3x its SLA also counts, which needs the times).
func Suspect(c hinscorev1.OutcomeClass) bool {
	switch c {
	case hinscorev1.OutcomeClass_OUTCOME_CLASS_REFUSED_UNJUSTIFIED,
		hinscorev1.OutcomeClass_OUTCOME_CLASS_REDIRECTED,
		hinscorev1.OutcomeClass_OUTCOME_CLASS_UNANSWERED:
		return true
	}
	return false
}
