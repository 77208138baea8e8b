package scorecard

import (
	"math"
	"slices"
)

// fisherExact returns the two-sided p of Fisher's exact test of the 2x2
// table (k1 of n1 against k2 of n2): given the margins, the number of
// successes in the first row is hypergeometric, and p is the probability of
// every table no more likely than the one observed (the rule of R's
// fisher.test, with its relative tolerance of 1e-7 for ties). Exact at any
// sample size, so a small group is never flagged by an approximation.
func fisherExact(k1, n1, k2, n2 uint64) float64 {
	if k1 > n1 || k2 > n2 {
		return math.NaN()
	}
	n, k := n1+n2, k1+k2
	if n1 == 0 || n2 == 0 || k == 0 || k == n {
		return 1
	}
	lo := uint64(0)
	if n1+k > n {
		lo = n1 + k - n
	}
	hi := min(n1, k)
	// Log probabilities from the first table by the ratio of neighbours,
	// P(x+1)/P(x) = (k-x)(n1-x) / ((x+1)(n-k-n1+x+1)).
	logs := make([]float64, 0, hi-lo+1)
	l := logChoose(k, lo) + logChoose(n-k, n1-lo) - logChoose(n, n1)
	for x := lo; ; x++ {
		logs = append(logs, l)
		if x == hi {
			break
		}
		l += math.Log(float64(k-x)) + math.Log(float64(n1-x)) - math.Log(float64(x+1)) - math.Log(float64(n-k-n1+x+1))
	}
	obs := logs[k1-lo]
	limit := obs + math.Log1p(1e-7)
	var p float64
	for _, v := range logs {
		if v <= limit {
			p += math.Exp(v)
		}
	}
	return min(p, 1)
}

// logChoose is log(n choose k).
func logChoose(n, k uint64) float64 {
	a, _ := math.Lgamma(float64(n) + 1)
	b, _ := math.Lgamma(float64(k) + 1)
	c, _ := math.Lgamma(float64(n-k) + 1)
	return a - b - c
}

// holm returns the p values adjusted by Holm's step-down procedure: the
// i-th smallest of m is multiplied by m-i+1 (i from 1), capped at 1, and
// made non-decreasing in that order. Rejecting where the adjusted p is at
// most alpha keeps the family-wise error at alpha whatever the dependence
// between the tests, and rejects everything Bonferroni rejects and more.
func holm(ps []float64) []float64 {
	order := make([]int, len(ps))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		switch {
		case ps[a] < ps[b]:
			return -1
		case ps[a] > ps[b]:
			return 1
		}
		return 0
	})
	out := make([]float64, len(ps))
	running := 0.0
	for i, idx := range order {
		running = max(running, min(1, float64(len(ps)-i)*ps[idx]))
		out[idx] = running
	}
	return out
}
