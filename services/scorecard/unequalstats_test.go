package scorecard

import (
	"math"
	"math/big"
	"testing"
)

// TestFisherExactReferenceValues checks the test against published values:
// Fisher's lady tasting tea (3 of 4 cups right: two-sided p = 34/70, R's
// fisher.test gives 0.4857) and Wikipedia's "Fisher's exact test" example
// (1 of 12 men against 9 of 12 women studying: two-sided p = 0.002759).
func TestFisherExactReferenceValues(t *testing.T) {
	for _, c := range []struct {
		k1, n1, k2, n2 uint64
		want, tol      float64
	}{
		{3, 4, 1, 4, 34.0 / 70, 1e-12},
		{1, 4, 3, 4, 34.0 / 70, 1e-12},
		{4, 4, 0, 4, 2.0 / 70, 1e-12},
		{1, 12, 9, 12, 0.002759, 5e-7},
		{9, 12, 1, 12, 0.002759, 5e-7},
		{0, 10, 0, 20, 1, 0},
		{5, 5, 7, 7, 1, 0},
		{0, 0, 3, 9, 1, 0},
	} {
		if got := fisherExact(c.k1, c.n1, c.k2, c.n2); math.Abs(got-c.want) > c.tol {
			t.Errorf("fisherExact(%d/%d, %d/%d) = %.8g, want %.8g", c.k1, c.n1, c.k2, c.n2, got, c.want)
		}
	}
	if p := fisherExact(5, 4, 0, 4); !math.IsNaN(p) {
		t.Errorf("fisherExact(5 of 4) = %g, want NaN", p)
	}
}

// TestFisherExactAgainstExactArithmetic compares the floating-point test
// with the same sum in exact rational arithmetic (binomials as big
// integers) on tables of a scorecard's size, where the p values the Holm
// correction works with (1e-5 and below) live.
func TestFisherExactAgainstExactArithmetic(t *testing.T) {
	for _, c := range []struct{ k1, n1, k2, n2 uint64 }{
		{12, 400, 9, 1600}, {30, 400, 20, 1600}, {80, 500, 25, 2500}, {3, 40, 30, 3000}, {200, 1000, 20, 2000}, {0, 300, 14, 700},
	} {
		want := exactFisher(c.k1, c.n1, c.k2, c.n2)
		got := fisherExact(c.k1, c.n1, c.k2, c.n2)
		if math.Abs(got-want) > 1e-9*want && math.Abs(got-want) > 1e-300 {
			t.Errorf("fisherExact(%d/%d, %d/%d) = %.12g, exact %.12g", c.k1, c.n1, c.k2, c.n2, got, want)
		}
	}
}

// exactFisher is the two-sided Fisher p in rational arithmetic.
func exactFisher(k1, n1, k2, n2 uint64) float64 {
	n, k := n1+n2, k1+k2
	prob := func(x uint64) *big.Rat {
		num := new(big.Int).Mul(new(big.Int).Binomial(int64(k), int64(x)), new(big.Int).Binomial(int64(n-k), int64(n1-x)))
		return new(big.Rat).SetFrac(num, new(big.Int).Binomial(int64(n), int64(n1)))
	}
	obs := prob(k1)
	limit := new(big.Rat).Mul(obs, new(big.Rat).SetFloat64(1+1e-7))
	sum := new(big.Rat)
	for x := uint64(0); x <= min(n1, k); x++ {
		if n1-x > n-k {
			continue
		}
		if p := prob(x); p.Cmp(limit) <= 0 {
			sum.Add(sum, p)
		}
	}
	f, _ := sum.Float64()
	return f
}

// TestHolm checks the adjustment on a worked example (R's
// p.adjust(c(0.01, 0.04, 0.03, 0.005), "holm") = 0.03 0.06 0.06 0.02).
func TestHolm(t *testing.T) {
	got := holm([]float64{0.01, 0.04, 0.03, 0.005})
	want := []float64{0.03, 0.06, 0.06, 0.02}
	for i := range want {
		if math.Abs(got[i]-want[i]) > 1e-12 {
			t.Fatalf("holm = %v, want %v", got, want)
		}
	}
	if got := holm([]float64{0.5, 0.9}); got[0] != 1 || got[1] != 1 {
		t.Errorf("holm caps at 1: %v", got)
	}
	if got := holm(nil); len(got) != 0 {
		t.Errorf("holm(nil) = %v", got)
	}
}
