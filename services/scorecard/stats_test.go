package scorecard

import (
	"math"
	"testing"
	"time"
)

func TestWilson(t *testing.T) {
	// Reference values: Wilson (1927) score interval, z = 1.96, as tabulated
	// by Newcombe (1998) "Two-sided confidence intervals for the single
	// proportion", Table I, and R's prop.test(correct = FALSE).
	tests := []struct {
		count, total uint64
		low, high    float64
	}{
		{81, 263, 0.2553, 0.3662},
		{15, 148, 0.0624, 0.1605},
		{0, 20, 0, 0.1611},
		{1, 29, 0.0061, 0.1718},
		{29, 29, 0.8830, 1},
		{0, 10, 0, 0.2775},
		{5, 10, 0.2366, 0.7634},
	}
	for _, tt := range tests {
		low, high := Wilson(tt.count, tt.total)
		if math.Abs(low-tt.low) > 5e-5 || math.Abs(high-tt.high) > 5e-5 {
			t.Errorf("Wilson(%d, %d) = [%.4f, %.4f], want [%.4f, %.4f]", tt.count, tt.total, low, high, tt.low, tt.high)
		}
	}
	if low, high := Wilson(0, 0); low != 0 || high != 1 {
		t.Errorf("Wilson(0, 0) = [%g, %g], want [0, 1]", low, high)
	}
	// The ends are exact: a responder without one suspect request has a
	// lower bound of 0, not a rounding error above it that gives it excess
	// events, a priority and a rank above responders with real ones.
	for n := uint64(1); n <= 500; n++ {
		if low, _ := Wilson(0, n); low != 0 {
			t.Fatalf("Wilson(0, %d) lower bound %g, want exactly 0", n, low)
		}
		if _, high := Wilson(n, n); high != 1 {
			t.Fatalf("Wilson(%d, %d) upper bound %.17g, want exactly 1", n, n, high)
		}
	}
}

func TestNewRate(t *testing.T) {
	r := NewRate(3, 12)
	if r.Rate != 0.25 || !r.SmallSample || r.CiLow >= 0.25 || r.CiHigh <= 0.25 {
		t.Errorf("NewRate(3, 12) = %v", r)
	}
	if r := NewRate(3, 30); r.SmallSample {
		t.Errorf("30 requests marked small sample")
	}
	if r := NewRate(0, 0); r.Rate != 0 || r.Total != 0 {
		t.Errorf("NewRate(0, 0) = %v", r)
	}
}

func TestPeriod(t *testing.T) {
	day := func(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }
	tests := []struct {
		granularity string
		start       time.Time
		label       string
		end         time.Time
	}{
		{Day, day(2026, 11, 22), "2026-11-22", day(2026, 11, 23)},
		{Day, day(2026, 12, 31), "2026-12-31", day(2027, 1, 1)},
		{Week, day(2026, 11, 16), "2026-W47", day(2026, 11, 23)},
		// 2026 starts on a Thursday, so it has 53 ISO weeks; its last week
		// runs into 2027.
		{Week, day(2026, 12, 28), "2026-W53", day(2027, 1, 4)},
		{Week, day(2027, 1, 4), "2027-W01", day(2027, 1, 11)},
		// 2024-12-30 is a Monday in the first week of 2025.
		{Week, day(2024, 12, 30), "2025-W01", day(2025, 1, 6)},
		{Month, day(2026, 11, 1), "2026-11", day(2026, 12, 1)},
		{Month, day(2026, 12, 1), "2026-12", day(2027, 1, 1)},
	}
	for _, tt := range tests {
		label, end, err := Period(tt.granularity, tt.start)
		if err != nil || label != tt.label || !end.Equal(tt.end) {
			t.Errorf("Period(%s, %s) = %q, %s, %v; want %q, %s", tt.granularity, tt.start.Format("2006-01-02"), label, end, err, tt.label, tt.end)
		}
	}
	if _, _, err := Period("year", day(2026, 1, 1)); err == nil {
		t.Error("Period(year) succeeded")
	}
}
