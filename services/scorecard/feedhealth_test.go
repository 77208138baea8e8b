package scorecard

import (
	"math"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
)

// TestSequenceGaps: each difference between consecutive distinct numbers
// on both sides of the gap limit.
func TestSequenceGaps(t *testing.T) {
	for _, tc := range []struct {
		name           string
		jumps          []int64
		gaps, restarts uint64
	}{
		{"no gap (only the leading 0)", []int64{0}, 0, 0},
		{"one number missing", []int64{0, 2}, 1, 0},
		{"gap at the limit", []int64{0, 1000}, 999, 0},
		{"just over the limit: a restart", []int64{0, 1001}, 0, 1},
		{"two gaps (2 and 4 missing) and a restart", []int64{0, 3, 5, 250000}, 6, 1},
	} {
		gaps, restarts := sequenceGaps(tc.jumps, DefaultFeedParams().MaxGap)
		if gaps != tc.gaps || restarts != tc.restarts {
			t.Errorf("%s: gaps %d restarts %d, want %d %d", tc.name, gaps, restarts, tc.gaps, tc.restarts)
		}
	}
}

// TestPoissonCDF against values computed by hand.
func TestPoissonCDF(t *testing.T) {
	for _, tc := range []struct {
		k      uint64
		lambda float64
		want   float64
	}{
		{0, 7, math.Exp(-7)},
		{2, 3, math.Exp(-3) * (1 + 3 + 4.5)},
		{0, 0, 1},
		{10, 300, 0}, // far below: no underflow to NaN
		{10, 2000, 0},
		{2000, 2000, 0.5 + 0.5*math.Erf(0.5/math.Sqrt(2000)/math.Sqrt2)}, // normal approximation above 400
	} {
		if got := poissonCDF(tc.k, tc.lambda); math.Abs(got-tc.want) > 1e-12 || math.IsNaN(got) {
			t.Errorf("poissonCDF(%d, %g) = %g, want %g", tc.k, tc.lambda, got, tc.want)
		}
	}
}

// TestJudgeHour: the silence rule on both sides of each threshold.
func TestJudgeHour(t *testing.T) {
	p := DefaultFeedParams()
	for _, tc := range []struct {
		name      string
		observed  uint64
		history   []uint64
		compared  bool
		silent    bool
		shortfall uint64
	}{
		{"busy hour, nothing carried", 0, []uint64{40, 38, 45, 41}, true, true, 41},
		{"busy hour, its usual traffic", 39, []uint64{40, 38, 45, 41}, true, false, 0},
		{"busy hour, a quarter of it", 10, []uint64{40, 38, 45, 41}, true, true, 31},
		{"busy hour, a bit low", 30, []uint64{40, 38, 45, 41}, true, false, 0},
		// exp(-7) = 0.0009 < 0.001; exp(-6) = 0.0025 is not
		{"median 7, nothing", 0, []uint64{7, 7, 7}, true, true, 7},
		{"median 6, nothing", 0, []uint64{6, 6, 6}, true, false, 0},
		{"below the expected floor", 0, []uint64{4, 4, 4, 4}, false, false, 0},
		{"one week of history only", 0, []uint64{100}, false, false, 0},
		{"two weeks of history", 0, []uint64{100, 100}, true, true, 100},
		{"usually quiet hour (zeros count)", 0, []uint64{0, 0, 50, 0}, false, false, 0},
		// normal approximation: 5000 ± 71; 4750 is 3.5 sd under, 4850 2.1
		{"very busy hour, 5% short", 4750, []uint64{5000, 5000, 5000}, true, true, 250},
		{"very busy hour, 3% short", 4850, []uint64{5000, 5000, 5000}, true, false, 0},
	} {
		v := judgeHour(tc.observed, tc.history, p)
		if v.compared != tc.compared || v.silent != tc.silent || v.shortfall != tc.shortfall {
			t.Errorf("%s: %+v, want compared %v silent %v shortfall %d", tc.name, v, tc.compared, tc.silent, tc.shortfall)
		}
	}
}

// TestJudgeRate: orphan or unanswered counts on both sides of the margin
// and of the significance level.
func TestJudgeRate(t *testing.T) {
	p := DefaultFeedParams()
	for _, tc := range []struct {
		name         string
		count, total uint64
		expected     float64
		flagged      bool
		excess       uint64
	}{
		{"at the expected rate", 20, 1000, 0.02, false, 0},
		{"well above, many chains", 80, 1000, 0.02, true, 60},
		{"above the margin but not significant", 2, 50, 0.01, false, 0},
		{"significant but within the margin", 1250, 100000, 0.0100, false, 0},
		{"none expected, some seen", 15, 1000, 0, true, 15},
		{"none expected, under the margin", 5, 1000, 0, false, 0},
		{"nothing to judge", 0, 0, 0.5, false, 0},
	} {
		v := judgeRate(tc.count, tc.total, tc.expected, p)
		if v.flagged != tc.flagged || v.excess != tc.excess {
			t.Errorf("%s: %+v, want flagged %v excess %d", tc.name, v, tc.flagged, tc.excess)
		}
	}
}

// TestHoursOf: whole hours of the period that have ended by now.
func TestHoursOf(t *testing.T) {
	day := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	if n := len(hoursOf(day, day.Add(24*time.Hour), day.Add(48*time.Hour))); n != 24 {
		t.Errorf("a past day has %d hours, want 24", n)
	}
	if n := len(hoursOf(day, day.Add(24*time.Hour), day.Add(10*time.Hour+30*time.Minute))); n != 10 {
		t.Errorf("at 10:30 the day has %d ended hours, want 10", n)
	}
	if feedScore(0, 0) != 1 || feedScore(99, 1) != 0.99 {
		t.Errorf("feedScore: %g %g", feedScore(0, 0), feedScore(99, 1))
	}
}

// TestFeedHealthGauges: the gauges show each network's latest day card
// (not an older day, nor a week card), per feed too; a feed gone from the
// latest cards leaves them.
func TestFeedHealthGauges(t *testing.T) {
	m, err := newMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	card := func(network, granularity string, start int64, score float64, feed string, gaps uint64) *hinscorev1.Scorecard {
		return &hinscorev1.Scorecard{Network: network, Granularity: granularity, PeriodStartMs: start,
			FeedHealth: &hinscorev1.FeedHealth{Score: score, Feeds: []*hinscorev1.FeedLine{{Feed: feed, Score: score, SequenceGaps: gaps, SilentHours: 1}}}}
	}
	m.observeFeedHealth([]*hinscorev1.Scorecard{card("alpha", Day, 1, 0.5, "mllp:old", 9)})
	m.observeFeedHealth([]*hinscorev1.Scorecard{
		card("alpha", Day, 1, 0.5, "mllp:a", 9),
		card("alpha", Day, 2, 0.95, "mllp:a", 4),
		card("alpha", Week, 3, 0.7, "mllp:a", 20),
		card("beta", Week, 1, 1, "syslog:b", 0),
	})
	if got := testutil.ToFloat64(m.feedScore.WithLabelValues("alpha")); got != 0.95 {
		t.Errorf("alpha's score %g, want its latest day's 0.95", got)
	}
	if got := testutil.ToFloat64(m.feedGaps.WithLabelValues("alpha", "mllp:a")); got != 4 {
		t.Errorf("alpha's gaps %g, want 4", got)
	}
	if got := testutil.ToFloat64(m.feedScore.WithLabelValues("beta")); got != 1 {
		t.Errorf("beta's score %g, want its week's 1 (no day cards)", got)
	}
	if n := testutil.CollectAndCount(m.feedLine); n != 2 {
		t.Errorf("%d feed series, want 2 (mllp:old gone)", n)
	}
	// The cross-network completeness: on the cards that have it only.
	thin := card("alpha", Day, 2, 0.95, "mllp:a", 4)
	thin.Completeness = &hinscorev1.FeedCompleteness{Score: 0.9545, LacksOwnRefusals: true}
	m.observeFeedHealth([]*hinscorev1.Scorecard{thin, card("beta", Day, 2, 1, "syslog:b", 0)})
	if got := testutil.ToFloat64(m.exchangeScore.WithLabelValues("alpha")); got != 0.9545 {
		t.Errorf("alpha's exchange completeness %g, want 0.9545", got)
	}
	if got := testutil.ToFloat64(m.lacksRefusals.WithLabelValues("alpha")); got != 1 {
		t.Errorf("alpha lacks its own refusals: %g, want 1", got)
	}
	if n := testutil.CollectAndCount(m.exchangeScore); n != 1 {
		t.Errorf("%d exchange completeness series, want 1 (beta has no cross-network exchanges)", n)
	}
}

// TestSilenceInsideBusyStretch: a day's pattern moved an hour earlier (as
// daylight saving time moves a feed's hours in UTC) makes no silent hour
// at the edge it left; a stretch cut off in its middle does.
func TestSilenceInsideBusyStretch(t *testing.T) {
	day := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	fw := &feedWorld{hours: map[feedKey]map[int64]uint64{}, first: map[feedKey]int64{}}
	moved, cut := feedKey{"n", "moved"}, feedKey{"n", "cut"}
	for _, k := range []feedKey{moved, cut} {
		fw.hours[k] = map[int64]uint64{}
		fw.first[k] = day.AddDate(0, 0, -28).Unix()
		for w := 1; w <= 4; w++ {
			for h := 9; h < 18; h++ {
				fw.hours[k][day.AddDate(0, 0, -7*w).Add(time.Duration(h)*time.Hour).Unix()] = 30
			}
		}
	}
	for h := 8; h < 17; h++ { // an hour earlier: 08:00-16:59
		fw.hours[moved][day.Add(time.Duration(h)*time.Hour).Unix()] = 30
	}
	for h := 9; h < 18; h++ {
		if h != 13 {
			fw.hours[cut][day.Add(time.Duration(h)*time.Hour).Unix()] = 30
		}
	}
	hours := hoursOf(day, day.AddDate(0, 0, 1), day.AddDate(0, 0, 2))
	if s := fw.silence(moved, hours, DefaultFeedParams()); s.hours != 0 {
		t.Errorf("moved an hour: %d silent hours %v, want none", s.hours, s.starts)
	}
	if s := fw.silence(cut, hours, DefaultFeedParams()); s.hours != 1 || s.starts[0] != day.Add(13*time.Hour).UnixMilli() {
		t.Errorf("cut at 13:00: %d silent hours %v, want 13:00", s.hours, s.starts)
	}
}

// TestHourGrace: the hour just ended is judged only after the grace.
func TestHourGrace(t *testing.T) {
	day := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	fw := &feedWorld{hours: map[feedKey]map[int64]uint64{}, first: map[feedKey]int64{}}
	card := &hinscorev1.Scorecard{Network: "n", PeriodStartMs: day.UnixMilli(), PeriodEndMs: day.AddDate(0, 0, 1).UnixMilli()}
	k := feedKey{"n", allFeeds}
	fw.hours[k], fw.first[k] = map[int64]uint64{}, day.AddDate(0, 0, -28).Unix()
	for w := 1; w <= 4; w++ {
		for h := 8; h < 12; h++ {
			fw.hours[k][day.AddDate(0, 0, -7*w).Add(time.Duration(h)*time.Hour).Unix()] = 30
		}
	}
	fw.hours[k][day.Add(9*time.Hour).Unix()] = 30 // 10:00 carried nothing (yet)
	if got := fw.section(card, day.Add(11*time.Hour+10*time.Minute), DefaultFeedParams()).GetSilentHours(); got != 0 {
		t.Errorf("at 11:10, %d silent hours, want 10:00 not judged yet", got)
	}
	if got := fw.section(card, day.Add(11*time.Hour+20*time.Minute), DefaultFeedParams()).GetSilentHours(); got != 1 {
		t.Errorf("at 11:20, %d silent hours, want 10:00", got)
	}
}
