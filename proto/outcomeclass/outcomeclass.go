// Package outcomeclass maps the protobuf OutcomeClass enum to the outcome
// classes of services/lib/domain/outcome, whose names (DOMAIN.md's) are what
// analysts see in ClickHouse and on scorecards.
package outcomeclass

import (
	"fmt"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
	"github.com/hinscore/hinscore/services/lib/domain/outcome"
)

// byEnum gives each enum value its class.
var byEnum = map[hinscorev1.OutcomeClass]outcome.Class{
	hinscorev1.OutcomeClass_OUTCOME_CLASS_FULFILLED:           outcome.Fulfilled,
	hinscorev1.OutcomeClass_OUTCOME_CLASS_FULFILLED_LATE:      outcome.FulfilledLate,
	hinscorev1.OutcomeClass_OUTCOME_CLASS_PARTIAL:             outcome.Partial,
	hinscorev1.OutcomeClass_OUTCOME_CLASS_NOT_FOUND:           outcome.NotFound,
	hinscorev1.OutcomeClass_OUTCOME_CLASS_REFUSED_EXCEPTION:   outcome.RefusedException,
	hinscorev1.OutcomeClass_OUTCOME_CLASS_REFUSED_UNJUSTIFIED: outcome.RefusedUnjustified,
	hinscorev1.OutcomeClass_OUTCOME_CLASS_REDIRECTED:          outcome.Redirected,
	hinscorev1.OutcomeClass_OUTCOME_CLASS_ERROR_TRANSIENT:     outcome.ErrorTransient,
	hinscorev1.OutcomeClass_OUTCOME_CLASS_ERROR_PERMANENT:     outcome.ErrorPermanent,
	hinscorev1.OutcomeClass_OUTCOME_CLASS_CANCELLED:           outcome.Cancelled,
	hinscorev1.OutcomeClass_OUTCOME_CLASS_UNANSWERED:          outcome.Unanswered,
	hinscorev1.OutcomeClass_OUTCOME_CLASS_ORPHAN:              outcome.Orphan,
}

// byClass is byEnum reversed.
var byClass = func() map[outcome.Class]hinscorev1.OutcomeClass {
	m := make(map[outcome.Class]hinscorev1.OutcomeClass, len(byEnum))
	for e, c := range byEnum {
		m[c] = e
	}
	return m
}()

// All lists every class in the order scorecards print them (outcome.All's).
var All = func() []hinscorev1.OutcomeClass {
	out := make([]hinscorev1.OutcomeClass, len(outcome.All))
	for i, c := range outcome.All {
		out[i] = byClass[c]
	}
	return out
}()

// Name returns the DOMAIN.md name of a class ("" for unspecified).
func Name(c hinscorev1.OutcomeClass) string { return string(byEnum[c]) }

// Parse returns the class of a DOMAIN.md name.
func Parse(name string) (hinscorev1.OutcomeClass, error) {
	c, err := outcome.Parse(name)
	if err != nil {
		return hinscorev1.OutcomeClass_OUTCOME_CLASS_UNSPECIFIED, fmt.Errorf("outcomeclass: %w", err)
	}
	return byClass[c], nil
}

// Suspect reports whether a class counts as suspected blocking by itself
// (fulfilled later than 3x its SLA also counts, which needs the times).
func Suspect(c hinscorev1.OutcomeClass) bool { return byEnum[c].Suspect() }
