package truthref

import (
	"math"
	"slices"
)

// Rate is a count over a total with its 95% Wilson score interval.
type Rate struct {
	Count, Total    uint64
	Rate, Low, High float64
	Small           bool
}

// wilson computes a rate and its Wilson score interval: the two roots p
// of (p̂ − p)² = z² p (1 − p) / n. A total of 0 gives [0, 1].
func wilson(count, total uint64, minSample int) Rate {
	r := Rate{Count: count, Total: total, Small: total < uint64(minSample)}
	if total == 0 {
		r.High = 1
		return r
	}
	// z is the standard normal quantile of a two-sided 95% interval,
	// Φ⁻¹(0.975) = √2 erf⁻¹(0.95) ≈ 1.959964.
	z := math.Sqrt2 * math.Erfinv(0.95)
	n, p := float64(total), float64(count)/float64(total)
	// (1 + z²/n) p² − (2p̂ + z²/n) p + p̂² = 0
	a, b, c := 1+z*z/n, -(2*p + z*z/n), p*p
	root := math.Sqrt(math.Max(0, b*b-4*a*c))
	r.Rate, r.Low, r.High = p, math.Max(0, (-b-root)/(2*a)), math.Min(1, (-b+root)/(2*a))
	return r
}

// Latency is a set of durations: how many, the element ⌊level·n⌋ of the
// sorted values for 0.5, 0.9 and 0.99, and the share within the SLA.
type Latency struct {
	Count         int
	P50, P90, P99 uint64
	Within        Rate
}

func latency(values []uint64, within int, minSample int) Latency {
	v := slices.Clone(values)
	slices.Sort(v)
	l := Latency{Count: len(v), Within: wilson(uint64(within), uint64(len(v)), minSample)}
	at := func(level float64) uint64 {
		if len(v) == 0 {
			return 0
		}
		return v[min(int(math.Floor(level*float64(len(v)))), len(v)-1)]
	}
	l.P50, l.P90, l.P99 = at(0.5), at(0.9), at(0.99)
	return l
}

// median is the middle of the values (the mean of the two middle ones for
// an even count), 0 for none.
func median(values []float64) float64 {
	v := slices.Clone(values)
	slices.Sort(v)
	switch n := len(v); {
	case n == 0:
		return 0
	case n%2 == 1:
		return v[n/2]
	default:
		return (v[n/2-1] + v[n/2]) / 2
	}
}
