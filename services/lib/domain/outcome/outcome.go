// Package outcome names the outcome classes of a request chain exactly as
// DOMAIN.md does; these names are what analysts see in ClickHouse and on
// scorecards, and what the API takes as a filter.
package outcome

import "fmt"

// Class is an outcome class, by its DOMAIN.md name.
type Class string

// The classes, in the order scorecards print them.
const (
	Fulfilled          Class = "fulfilled"
	FulfilledLate      Class = "fulfilled_late"
	Partial            Class = "partial"
	NotFound           Class = "not_found"
	RefusedException   Class = "refused_exception"
	RefusedUnjustified Class = "refused_unjustified"
	Redirected         Class = "redirected"
	ErrorTransient     Class = "error_transient"
	ErrorPermanent     Class = "error_permanent"
	Cancelled          Class = "cancelled"
	Unanswered         Class = "unanswered"
	Orphan             Class = "orphan"
)

// All lists every class in the order scorecards print them.
var All = [...]Class{
	Fulfilled, FulfilledLate, Partial, NotFound, RefusedException, RefusedUnjustified,
	Redirected, ErrorTransient, ErrorPermanent, Cancelled, Unanswered, Orphan,
}

// Parse returns the class of a DOMAIN.md name.
func Parse(name string) (Class, error) {
	for _, c := range All {
		if string(c) == name {
			return c, nil
		}
	}
	return "", fmt.Errorf("outcome: unknown class %q", name)
}

// Suspect reports whether a class counts as suspected blocking by itself
// (fulfilled later than 3x its SLA also counts, which needs the times).
func (c Class) Suspect() bool {
	return c == RefusedUnjustified || c == Redirected || c == Unanswered
}
