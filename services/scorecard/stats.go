// Package scorecard turns the deduplicated outcomes in ClickHouse into
// per-network, per-period scorecards: volumes, the rate of every outcome
// class with its 95% Wilson interval, time to fulfil and the suspect rate.
package scorecard

import (
	"fmt"
	"math"
	"time"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
)

// FormulaVersion names the formulas below; it is printed on every scorecard
// and changes whenever a figure would be computed differently.
const FormulaVersion = "scorecard/1"

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
	return math.Max(0, center-half), math.Min(1, center+half)
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
