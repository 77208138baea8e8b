package truthref

import (
	"math"
	"testing"
)

// TestWilsonPublishedValues: the interval against values published for
// the Wilson score interval (Newcombe 1998, table I: 0/10, 1/10, 81/263,
// 15/148 at 95%), and the reference's quantile and median rules.
func TestWilsonPublishedValues(t *testing.T) {
	for _, c := range []struct {
		count, total uint64
		low, high    float64
	}{
		{0, 10, 0, 0.2775}, {1, 10, 0.0179, 0.4042}, {81, 263, 0.2553, 0.3662}, {15, 148, 0.0624, 0.1605},
	} {
		r := wilson(c.count, c.total, 30)
		if math.Abs(r.Low-c.low) > 5e-5 || math.Abs(r.High-c.high) > 5e-5 {
			t.Errorf("%d/%d: [%.4f, %.4f], published [%.4f, %.4f]", c.count, c.total, r.Low, r.High, c.low, c.high)
		}
	}
	if r := wilson(0, 0, 30); r.Low != 0 || r.High != 1 || !r.Small {
		t.Errorf("0/0: %+v, want [0, 1], small", r)
	}
	l := latency([]uint64{40, 10, 30, 20}, 3, 30)
	if l.P50 != 30 || l.P90 != 40 || l.P99 != 40 || l.Count != 4 || l.Within.Count != 3 {
		t.Errorf("latency of 10..40: %+v", l)
	}
	if m := median([]float64{0.4, 0.1, 0.3, 0.2}); math.Abs(m-0.25) > 1e-12 {
		t.Errorf("median of 0.1..0.4: %v", m)
	}
}
