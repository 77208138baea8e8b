// Package scorecard turns the deduplicated outcomes in ClickHouse into
// per-network, per-period scorecards: volumes, the rate of every outcome
// class with its 95% Wilson interval, time to fulfil and the suspect rate.
package scorecard

import (
	"errors"
	"fmt"
	"math"
	"time"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
	"github.com/hinscore/hinscore/services/lib/domain/exceptionrule"
	"github.com/hinscore/hinscore/services/lib/domain/purpose"
)

// FormulaVersion names the formulas below; it is printed on every scorecard
// and changes whenever a figure would be computed differently.
const FormulaVersion = "scorecard/5"

// SchemaVersion names the layout of the JSON and CSV outputs; it changes
// whenever a field is renamed or removed (adding one does not).
const SchemaVersion = "scorecard-json/2"

// MinSample is the request count below which a rate is marked small_sample.
const MinSample = 30

// SuspectSLAMultiple: a fulfilment later than this many SLAs is suspect.
const SuspectSLAMultiple = 3

// z95 is the standard normal quantile for a two-sided 95% interval.
const z95 = 1.959963984540054

// Wilson returns the 95% Wilson score interval of count successes out of
// total. With no observations the interval is the whole of [0, 1].
func Wilson(count, total uint64) (low, high float64) {
	if total == 0 {
		return 0, 1
	}
	n := float64(total)
	p := float64(count) / n
	z2 := z95 * z95
	denom := 1 + z2/n
	center := (p + z2/(2*n)) / denom
	half := z95 / denom * math.Sqrt(p*(1-p)/n+z2/(4*n*n))
	low, high = math.Max(0, center-half), math.Min(1, center+half)
	// At the ends the bound is exactly 0 or 1; center ∓ half leaves a
	// rounding error (6.9e-18 for 0 of 57) that would count as excess
	// suspect events and rank a clean responder above others.
	if count == 0 {
		low = 0
	}
	if count == total {
		high = 1
	}
	return low, high
}

// NewRate builds a Rate with its Wilson interval.
func NewRate(count, total uint64) *hinscorev1.Rate {
	r := &hinscorev1.Rate{Count: count, Total: total, SmallSample: total < MinSample}
	if total > 0 {
		r.Rate = float64(count) / float64(total)
	}
	r.CiLow, r.CiHigh = Wilson(count, total)
	return r
}

// Granularities a Query accepts.
const (
	Day   = "day"
	Week  = "week"
	Month = "month"
)

// Period returns the label and the end (exclusive) of the period of the
// given granularity that starts at start (a UTC midnight; Monday for weeks,
// the first for months).
func Period(granularity string, start time.Time) (label string, end time.Time, err error) {
	start = start.UTC()
	switch granularity {
	case Day:
		return start.Format("2006-01-02"), start.AddDate(0, 0, 1), nil
	case Week:
		y, w := start.ISOWeek()
		return fmt.Sprintf("%04d-W%02d", y, w), start.AddDate(0, 0, 7), nil
	case Month:
		return start.Format("2006-01"), start.AddDate(0, 1, 0), nil
	}
	return "", time.Time{}, fmt.Errorf("scorecard: granularity %q: want day, week or month", granularity)
}

// PeriodStart returns the start of the period of the granularity that
// contains t (UTC midnight; Monday for weeks; the 1st for months).
func PeriodStart(granularity string, t time.Time) time.Time {
	d := midnight(t)
	switch granularity {
	case Week:
		return d.AddDate(0, 0, -((int(d.Weekday()) + 6) % 7))
	case Month:
		return time.Date(d.Year(), d.Month(), 1, 0, 0, 0, 0, time.UTC)
	}
	return d
}

// prevPeriod returns the start of the period before the one at start.
func prevPeriod(granularity string, start time.Time) time.Time {
	switch granularity {
	case Week:
		return start.AddDate(0, 0, -7)
	case Month:
		return start.AddDate(0, -1, 0)
	}
	return start.AddDate(0, 0, -1)
}

// ErrBadPeriod is wrapped by ParsePeriod's errors.
var ErrBadPeriod = errors.New("scorecard: bad period")

// ParsePeriod reads one period label, 2026-10 (month), 2026-W43 (ISO
// week) or 2026-10-05 (day), and returns its granularity and start.
func ParsePeriod(label string) (granularity string, start time.Time, err error) {
	if t, err := time.Parse("2006-01-02", label); err == nil {
		return Day, t.UTC(), nil
	}
	if t, err := time.Parse("2006-01", label); err == nil {
		return Month, t.UTC(), nil
	}
	var y, w int
	if n, _ := fmt.Sscanf(label, "%4d-W%2d", &y, &w); n == 2 && len(label) == 8 && w >= 1 && w <= 53 {
		// ISO week 1 is the week with January 4th in it.
		jan4 := time.Date(y, 1, 4, 0, 0, 0, 0, time.UTC)
		start := PeriodStart(Week, jan4).AddDate(0, 0, 7*(w-1))
		if gy, gw := start.ISOWeek(); gy == y && gw == w {
			return Week, start, nil
		}
	}
	return "", time.Time{}, fmt.Errorf("%w: %q: want 2026-10, 2026-W43 or 2026-10-05", ErrBadPeriod, label)
}

// Params are the formula parameters (DOMAIN.md defaults in DefaultParams).
type Params struct {
	// FlagThreshold: a period is flagged when the suspect-rate Wilson lower
	// bound is above it (with at least MinSample requests).
	FlagThreshold float64
	// FlagK of the last FlagN periods flagged make a repeat offender.
	FlagK, FlagN int
	// OveruseMultiple and OveruseFloor: an exception is overused when the
	// lower bound of its citing share exceeds
	// max(OveruseMultiple x peer median share, OveruseFloor).
	OveruseMultiple, OveruseFloor float64
	// EvidenceLimit is the number of request chains listed per flag.
	EvidenceLimit int
	// UnequalMinDifference and UnequalFamilyError: a requester group of a
	// responder is flagged for unequal treatment when its rate exceeds the
	// rest's by at least the difference and Holm's adjusted p is at most
	// the family-wise error (unequal.go); 0 means the default (5 points,
	// 0.001).
	UnequalMinDifference, UnequalFamilyError float64
}

// DefaultParams returns DOMAIN.md's defaults: 5%, 3 of 4; overuse at three
// times the peers' median share and at least 2% of requests; 20 chains.
func DefaultParams() Params {
	return Params{FlagThreshold: 0.05, FlagK: 3, FlagN: 4, OveruseMultiple: 3, OveruseFloor: 0.02, EvidenceLimit: 20,
		UnequalMinDifference: DefaultUnequalMinDifference, UnequalFamilyError: DefaultUnequalFamilyError}
}

func (p Params) validate() error {
	var errs []error
	if p.FlagThreshold <= 0 || p.FlagThreshold >= 1 {
		errs = append(errs, fmt.Errorf("FlagThreshold: %g is outside (0, 1)", p.FlagThreshold))
	}
	if p.FlagN < 1 || p.FlagN > 52 || p.FlagK < 1 || p.FlagK > p.FlagN {
		errs = append(errs, fmt.Errorf("FlagK, FlagN: %d of %d: want 1 <= k <= n <= 52", p.FlagK, p.FlagN))
	}
	if p.OveruseMultiple < 1 || p.OveruseFloor < 0 || p.OveruseFloor >= 1 {
		errs = append(errs, fmt.Errorf("OveruseMultiple, OveruseFloor: %g, %g: want a multiple >= 1 and a floor in [0, 1)", p.OveruseMultiple, p.OveruseFloor))
	}
	if p.EvidenceLimit < 1 || p.EvidenceLimit > 1000 {
		errs = append(errs, fmt.Errorf("EvidenceLimit: %d is outside 1-1000", p.EvidenceLimit))
	}
	if err := p.validateUnequal(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Rules in words, printed with the parameters.
const (
	peerRule     = "peers: every other entity of the same level (network, responder organisation, developer) in the same period, across all networks, with at least min_sample requests; peer median = median of their suspect rates (exception shares for overuse)"
	priorityRule = "priority = max(0, suspect Wilson lower bound - peer median) x requests x (1 + consecutive flagged periods); flagged = lower bound > flag_threshold with requests >= min_sample; repeat offender = flagged in flag_k of the last flag_n periods"
)

// Formula returns the printed form of the formula and its parameters.
// requiredPurposes lists the purposes of the required-response line.
func requiredPurposes() []string {
	var out []string
	for _, p := range purpose.All {
		if purpose.RequiredResponse(p) {
			out = append(out, string(p))
		}
	}
	return out
}

func (p Params) Formula() *hinscorev1.FormulaParams {
	return &hinscorev1.FormulaParams{
		Version: FormulaVersion, MinSample: MinSample, Z: z95, SuspectSlaMultiple: SuspectSLAMultiple,
		FlagThreshold: p.FlagThreshold, FlagK: uint32(p.FlagK), FlagN: uint32(p.FlagN),
		OveruseMultiple: p.OveruseMultiple, OveruseFloor: p.OveruseFloor, EvidenceLimit: uint32(p.EvidenceLimit),
		PeerRule: peerRule, PriorityRule: priorityRule, RequiredPurposes: requiredPurposes(), PurposeVersion: purpose.Version,
		UnequalMinDifference: p.unequalMinDifference(), UnequalFamilyError: p.unequalFamilyError(),
		UnequalMinGroup: MinSample, UnequalTest: unequalTest,
		ExceptionRulesVersion: exceptionrule.Version,
	}
}
