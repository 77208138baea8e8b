package scorecard

import (
	"math"
	"slices"
	"time"
)

// FeedHealthVersion names the feed-health rules below; it is printed on
// every card's feed-health section and changes whenever a figure would be
// computed differently.
const FeedHealthVersion = "feedhealth/1"

// FeedParams are the thresholds of the feed-health rules.
type FeedParams struct {
	// MaxGap: consecutive sequence numbers (sorted) further apart than
	// this are a restart of the numbering (a sender restarted, a counter
	// wrapped, a new interface), not that many lost messages.
	MaxGap int64
	// HistoryWeeks: an hour is compared with the same hour of the week in
	// this many weeks before it (the feed's own pattern).
	HistoryWeeks int
	// MinHistoryWeeks: an hour with fewer weeks of history (a new feed) is
	// not compared.
	MinHistoryWeeks int
	// MinExpected: an hour is compared only when its expected count (the
	// median of its history) is at least this: a quiet hour is no pattern.
	MinExpected float64
	// SilenceP: an hour is silent when, with a Poisson count of the
	// expected mean, carrying as little as it did has a probability below
	// this.
	SilenceP float64
	// RateP and RateMargin: an orphan or unanswered rate is flagged above
	// its expected rate when a one-sided binomial test puts it there with
	// probability below RateP and it exceeds it by RateMargin at least.
	RateP      float64
	RateMargin float64
}

// DefaultFeedParams are the thresholds the scorecards print.
func DefaultFeedParams() FeedParams {
	return FeedParams{MaxGap: 1000, HistoryWeeks: 4, MinHistoryWeeks: 2, MinExpected: 5,
		SilenceP: 0.001, RateP: 0.001, RateMargin: 0.01}
}

// sequenceGaps counts what a sender's numbers say is missing, from the
// differences between its consecutive distinct numbers (sorted) that are
// not 1: a difference d of 2 to MaxGap is d-1 numbers never seen; a larger
// one is a restart. Differences of 0 or less (the first element of
// ClickHouse's arrayDifference) say nothing.
func sequenceGaps(jumps []int64, maxGap int64) (gaps, restarts uint64) {
	for _, d := range jumps {
		switch {
		case d > maxGap:
			restarts++
		case d > 1:
			gaps += uint64(d - 1)
		}
	}
	return gaps, restarts
}

// normalFrom is the mean above which poissonCDF uses the normal
// approximation: the exact sum would take k terms, tens of thousands for
// a busy feed's hour, for every hour of every card.
const normalFrom = 400

// poissonCDF is P(X <= k) for X Poisson with mean lambda: summed in log
// space (large means do not underflow) up to normalFrom, the normal
// approximation with continuity correction above.
func poissonCDF(k uint64, lambda float64) float64 {
	if lambda <= 0 {
		return 1
	}
	if lambda > normalFrom {
		return 0.5 * math.Erfc(-(float64(k)+0.5-lambda)/math.Sqrt(lambda)/math.Sqrt2)
	}
	sum := 0.0
	logL := math.Log(lambda)
	for i := uint64(0); i <= k; i++ {
		lg, _ := math.Lgamma(float64(i) + 1)
		sum += math.Exp(-lambda + float64(i)*logL - lg)
	}
	return math.Min(1, sum)
}

// hourVerdict is one hour of a feed against its own pattern.
type hourVerdict struct {
	compared bool    // the hour had enough history, busy enough, to compare
	expected float64 // the median of the same hour in the weeks before
	silent   bool
	// shortfall is the expected count less what the hour carried, rounded,
	// when it is silent; 0 otherwise.
	shortfall uint64
}

// judgeHour applies the silence rule: an hour is silent when the median of
// the same hour of the week in the MinHistoryWeeks..HistoryWeeks weeks
// before (history, one count a week, zeros included) is at least
// MinExpected and a Poisson count of that mean falls to observed or below
// with probability under SilenceP. With the defaults a busy hour (median
// 7 or more) that carried nothing is silent; a median of 20 that carried 5
// is silent too; 5 of a median of 9 is not.
func judgeHour(observed uint64, history []uint64, p FeedParams) hourVerdict {
	if len(history) < p.MinHistoryWeeks {
		return hourVerdict{}
	}
	expected := medianCount(history)
	if expected < p.MinExpected {
		return hourVerdict{expected: expected}
	}
	v := hourVerdict{compared: true, expected: expected}
	if float64(observed) < expected && poissonCDF(observed, expected) < p.SilenceP {
		v.silent = true
		v.shortfall = uint64(math.Round(expected - float64(observed)))
	}
	return v
}

// medianCount is the median of counts (the mean of the middle two when
// their number is even).
func medianCount(counts []uint64) float64 {
	s := slices.Clone(counts)
	slices.Sort(s)
	n := len(s)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return float64(s[n/2])
	}
	return (float64(s[n/2-1]) + float64(s[n/2])) / 2
}

// rateVerdict is a count of chains (orphans, unanswered) against the rate
// expected of it.
type rateVerdict struct {
	flagged bool
	// excess is the count beyond the expected rate, when flagged: that
	// many answers or requests the feed most likely left out.
	excess uint64
}

// judgeRate applies the rate rule: count of total is flagged when it is
// above the expected rate by RateMargin at least and a one-sided binomial
// test (the normal approximation with continuity correction; exact zero
// when the expected rate is zero) puts it above with probability below
// RateP.
func judgeRate(count, total uint64, expected float64, p FeedParams) rateVerdict {
	if total == 0 {
		return rateVerdict{}
	}
	n, x := float64(total), float64(count)
	if x/n < expected+p.RateMargin {
		return rateVerdict{}
	}
	var pValue float64
	if expected <= 0 {
		pValue = 0 // any count is impossible at a zero rate
	} else {
		sd := math.Sqrt(n * expected * (1 - expected))
		z := (x - 0.5 - n*expected) / sd
		pValue = 0.5 * math.Erfc(z/math.Sqrt2)
	}
	if pValue >= p.RateP {
		return rateVerdict{}
	}
	return rateVerdict{flagged: true, excess: uint64(math.Round(x - n*expected))}
}

// hoursOf lists the starts of the whole hours of [from, to) that have
// ended by now.
func hoursOf(from, to, now time.Time) []time.Time {
	var out []time.Time
	for h := from.Truncate(time.Hour); h.Before(to) && !h.Add(time.Hour).After(now); h = h.Add(time.Hour) {
		if !h.Before(from) {
			out = append(out, h)
		}
	}
	return out
}

// feedScore is received over received plus missing; 1 when nothing was
// received nor is known missing.
func feedScore(received, missing uint64) float64 {
	if received+missing == 0 {
		return 1
	}
	return float64(received) / float64(received+missing)
}
