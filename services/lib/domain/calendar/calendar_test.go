package calendar

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // America/New_York on machines without a zoneinfo database
)

func day(s string) time.Time {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		panic(err)
	}
	return t
}

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// opmObserved are the days federal offices closed for holidays in 2021–2027,
// as OPM's published holiday schedules list them
// (https://www.opm.gov/policy-data-oversight/pay-leave/federal-holidays/),
// written out by hand with the legal date where the observed day differs.
var opmObserved = map[int][]struct{ observed, date, name string }{
	2021: {
		{"2021-01-01", "2021-01-01", NewYear}, {"2021-01-18", "2021-01-18", MLK},
		{"2021-02-15", "2021-02-15", Washington}, {"2021-05-31", "2021-05-31", Memorial},
		{"2021-06-18", "2021-06-19", Juneteenth}, {"2021-07-05", "2021-07-04", Independence},
		{"2021-09-06", "2021-09-06", Labor}, {"2021-10-11", "2021-10-11", Columbus},
		{"2021-11-11", "2021-11-11", Veterans}, {"2021-11-25", "2021-11-25", Thanksgiving},
		{"2021-12-24", "2021-12-25", Christmas},
	},
	2022: {
		{"2021-12-31", "2022-01-01", NewYear}, {"2022-01-17", "2022-01-17", MLK},
		{"2022-02-21", "2022-02-21", Washington}, {"2022-05-30", "2022-05-30", Memorial},
		{"2022-06-20", "2022-06-19", Juneteenth}, {"2022-07-04", "2022-07-04", Independence},
		{"2022-09-05", "2022-09-05", Labor}, {"2022-10-10", "2022-10-10", Columbus},
		{"2022-11-11", "2022-11-11", Veterans}, {"2022-11-24", "2022-11-24", Thanksgiving},
		{"2022-12-26", "2022-12-25", Christmas},
	},
	2023: {
		{"2023-01-02", "2023-01-01", NewYear}, {"2023-01-16", "2023-01-16", MLK},
		{"2023-02-20", "2023-02-20", Washington}, {"2023-05-29", "2023-05-29", Memorial},
		{"2023-06-19", "2023-06-19", Juneteenth}, {"2023-07-04", "2023-07-04", Independence},
		{"2023-09-04", "2023-09-04", Labor}, {"2023-10-09", "2023-10-09", Columbus},
		{"2023-11-10", "2023-11-11", Veterans}, {"2023-11-23", "2023-11-23", Thanksgiving},
		{"2023-12-25", "2023-12-25", Christmas},
	},
	2024: {
		{"2024-01-01", "2024-01-01", NewYear}, {"2024-01-15", "2024-01-15", MLK},
		{"2024-02-19", "2024-02-19", Washington}, {"2024-05-27", "2024-05-27", Memorial},
		{"2024-06-19", "2024-06-19", Juneteenth}, {"2024-07-04", "2024-07-04", Independence},
		{"2024-09-02", "2024-09-02", Labor}, {"2024-10-14", "2024-10-14", Columbus},
		{"2024-11-11", "2024-11-11", Veterans}, {"2024-11-28", "2024-11-28", Thanksgiving},
		{"2024-12-25", "2024-12-25", Christmas},
	},
	2025: {
		{"2025-01-01", "2025-01-01", NewYear}, {"2025-01-20", "2025-01-20", MLK},
		{"2025-02-17", "2025-02-17", Washington}, {"2025-05-26", "2025-05-26", Memorial},
		{"2025-06-19", "2025-06-19", Juneteenth}, {"2025-07-04", "2025-07-04", Independence},
		{"2025-09-01", "2025-09-01", Labor}, {"2025-10-13", "2025-10-13", Columbus},
		{"2025-11-11", "2025-11-11", Veterans}, {"2025-11-27", "2025-11-27", Thanksgiving},
		{"2025-12-25", "2025-12-25", Christmas},
	},
	2026: {
		{"2026-01-01", "2026-01-01", NewYear}, {"2026-01-19", "2026-01-19", MLK},
		{"2026-02-16", "2026-02-16", Washington}, {"2026-05-25", "2026-05-25", Memorial},
		{"2026-06-19", "2026-06-19", Juneteenth}, {"2026-07-03", "2026-07-04", Independence},
		{"2026-09-07", "2026-09-07", Labor}, {"2026-10-12", "2026-10-12", Columbus},
		{"2026-11-11", "2026-11-11", Veterans}, {"2026-11-26", "2026-11-26", Thanksgiving},
		{"2026-12-25", "2026-12-25", Christmas},
	},
	2027: {
		{"2027-01-01", "2027-01-01", NewYear}, {"2027-01-18", "2027-01-18", MLK},
		{"2027-02-15", "2027-02-15", Washington}, {"2027-05-31", "2027-05-31", Memorial},
		{"2027-06-18", "2027-06-19", Juneteenth}, {"2027-07-05", "2027-07-04", Independence},
		{"2027-09-06", "2027-09-06", Labor}, {"2027-10-11", "2027-10-11", Columbus},
		{"2027-11-11", "2027-11-11", Veterans}, {"2027-11-25", "2027-11-25", Thanksgiving},
		{"2027-12-24", "2027-12-25", Christmas},
	},
}

func TestHolidaysMatchOPM(t *testing.T) {
	c := USFederal()
	for year, want := range opmObserved {
		got := c.Holidays(year)
		if len(got) != len(want) {
			t.Errorf("%d: %d holidays, OPM lists %d", year, len(got), len(want))
			continue
		}
		for i, w := range want {
			g := got[i]
			if g.Name != w.name || !g.Date.Equal(day(w.date)) || !g.Observed.Equal(day(w.observed)) {
				t.Errorf("%d: %s on %s observed %s, OPM: %s on %s observed %s", year,
					g.Name, g.Date.Format(time.DateOnly), g.Observed.Format(time.DateOnly), w.name, w.date, w.observed)
			}
			if c.IsBusinessDay(day(w.observed)) {
				t.Errorf("%s (%s observed) is a business day", w.observed, w.name)
			}
		}
	}
}

func TestIsBusinessDay(t *testing.T) {
	tests := []struct {
		day  string
		want bool
	}{
		{"2021-12-31", false}, // New Year's Day 2022 observed
		{"2022-01-03", true},
		{"2022-06-20", false}, // Juneteenth observed
		{"2023-01-02", false}, // New Year's Day observed
		{"2026-07-03", false}, // Independence Day observed
		{"2026-07-04", false}, // Saturday
		{"2026-11-27", true},  // the day after Thanksgiving is not a federal holiday
		{"2027-12-24", false}, // Christmas observed
		{"2027-12-31", false}, // New Year's Day 2028 observed
		{"2028-01-03", true},
		{"2020-06-19", true},  // before Juneteenth was a holiday
		{"1985-01-21", true},  // third Monday of January, before MLK Day
		{"1986-01-20", false}, // the first MLK Day
		{"1975-10-27", false}, // Veterans Day on the fourth Monday of October
		{"1975-11-11", true},
		{"1978-11-10", false}, // 11 November 1978, a Saturday, observed Friday
		{"1970-12-25", true},  // before FirstYear: weekdays only
	}
	for _, tt := range tests {
		if got := USFederal().IsBusinessDay(day(tt.day)); got != tt.want {
			t.Errorf("IsBusinessDay(%s) = %v, want %v", tt.day, got, tt.want)
		}
	}
}

func TestLocation(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	// 03:00 UTC on Friday 27 November 2026 is 22:00 on Thanksgiving in New York.
	instant := at("2026-11-27T03:00:00Z")
	if !USFederal().IsBusinessDay(instant) || USFederal().In(ny).IsBusinessDay(instant) {
		t.Error("an instant's day is its date in the calendar's location")
	}
	if USFederal().In(nil).Location() != time.UTC || (Calendar{}).Location() != time.UTC {
		t.Error("default location is UTC")
	}
	// The deadline keeps the wall-clock time across a DST change:
	// 09:30 EDT on Friday 30 October 2026 + 1 → 09:30 EST on Monday 2 November.
	start := time.Date(2026, time.October, 30, 9, 30, 0, 0, ny)
	want := time.Date(2026, time.November, 2, 9, 30, 0, 0, ny)
	if got := USFederal().In(ny).AddBusinessDays(start, 1); !got.Equal(want) {
		t.Errorf("across DST: %v, want %v", got, want)
	}
	hs := USFederal().In(ny).Holidays(2026)
	if hs[0].Date.Location() != ny || hs[0].Date.Hour() != 0 {
		t.Errorf("holidays are midnights of the location: %v", hs[0].Date)
	}
}

// TestTenBusinessDays checks 45 CFR 171.204(b)'s "within ten business days
// of receipt" over Thanksgiving and the year end, counted by hand on the
// OPM schedules above.
func TestTenBusinessDays(t *testing.T) {
	tests := []struct{ received, deadline, why string }{
		{"2026-11-23T10:00:00Z", "2026-12-08T10:00:00Z", "Thanksgiving skipped, the Friday after counts"},
		{"2026-11-21T10:00:00Z", "2026-12-07T10:00:00Z", "received on a Saturday: Monday is day 1"},
		{"2026-11-26T16:00:00Z", "2026-12-10T16:00:00Z", "received on Thanksgiving: Friday is day 1"},
		{"2026-12-16T08:15:00Z", "2026-12-31T08:15:00Z", "Christmas skipped"},
		{"2026-12-24T12:00:00Z", "2027-01-11T12:00:00Z", "Christmas and New Year's Day skipped"},
		{"2027-12-17T09:00:00Z", "2028-01-04T09:00:00Z", "24 and 31 December 2027 observed"},
		{"2021-12-20T09:00:00Z", "2022-01-05T09:00:00Z", "24 and 31 December 2021 observed"},
	}
	c := USFederal()
	for _, tt := range tests {
		got := c.AddBusinessDays(at(tt.received), 10)
		if !got.Equal(at(tt.deadline)) {
			t.Errorf("%s + 10 business days = %s, want %s (%s)", tt.received, got.Format(time.RFC3339), tt.deadline, tt.why)
		}
		if n := c.BusinessDaysBetween(at(tt.received), got); n != 10 {
			t.Errorf("BusinessDaysBetween(%s, %s) = %d", tt.received, tt.deadline, n)
		}
	}
}

func TestAddAndBetweenSmall(t *testing.T) {
	c := USFederal()
	mon := at("2026-12-07T10:00:00Z")
	tests := []struct {
		n    int
		want string
	}{
		{0, "2026-12-07T10:00:00Z"},
		{1, "2026-12-08T10:00:00Z"},
		{5, "2026-12-14T10:00:00Z"},
		{-1, "2026-12-04T10:00:00Z"},
		{-5, "2026-11-30T10:00:00Z"},
		{-6, "2026-11-27T10:00:00Z"},
		{-7, "2026-11-25T10:00:00Z"}, // Thanksgiving skipped backwards too
	}
	for _, tt := range tests {
		if got := c.AddBusinessDays(mon, tt.n); !got.Equal(at(tt.want)) {
			t.Errorf("AddBusinessDays(Mon 7 Dec, %d) = %s, want %s", tt.n, got.Format(time.RFC3339), tt.want)
		}
	}
	between := []struct {
		a, b string
		want int
	}{
		{"2026-12-07T23:00:00Z", "2026-12-07T01:00:00Z", 0},   // same date
		{"2026-12-04T10:00:00Z", "2026-12-06T10:00:00Z", 0},   // Friday to Sunday
		{"2026-12-05T10:00:00Z", "2026-12-07T00:00:00Z", 1},   // Saturday to Monday
		{"2026-12-07T10:00:00Z", "2026-12-04T10:00:00Z", -1},  // backwards
		{"2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z", 250}, // 261 weekdays, 11 observed holidays
	}
	for _, tt := range between {
		if got := c.BusinessDaysBetween(at(tt.a), at(tt.b)); got != tt.want {
			t.Errorf("BusinessDaysBetween(%s, %s) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

// naiveBetween counts day by day: the definition BusinessDaysBetween's
// arithmetic must agree with.
func naiveBetween(c Calendar, a, b time.Time) int {
	da, db := c.dayOf(a), c.dayOf(b)
	sign := 1
	if db.before(da) {
		da, db, sign = db, da, -1
	}
	n := 0
	for d := da.add(1); !db.before(d); d = d.add(1) {
		if c.IsBusinessDay(d.time(time.UTC)) {
			n++
		}
	}
	return sign * n
}

func TestProperties(t *testing.T) {
	r := rand.New(rand.NewPCG(22, 5)) // fixed: failures reproduce
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	lo, hi := at("1969-06-01T00:00:00Z").Unix(), at("2100-01-01T00:00:00Z").Unix()
	for i := 0; i < 3000; i++ {
		c := USFederal()
		if i%2 == 1 {
			c = c.In(ny)
		}
		start := time.Unix(lo+r.Int64N(hi-lo), 0)
		n := r.IntN(300)
		end := c.AddBusinessDays(start, n)
		if got := c.BusinessDaysBetween(start, end); got != n {
			t.Fatalf("%v + %d = %v, but BusinessDaysBetween = %d", start, n, end, got)
		}
		if n > 0 && (!c.IsBusinessDay(end) || !end.After(start)) {
			t.Fatalf("%v + %d = %v: not a later business day", start, n, end)
		}
		s, e := start.In(c.Location()), end.In(c.Location())
		if n > 0 && (s.Hour() != e.Hour() || s.Minute() != e.Minute()) && !dstGap(e) {
			t.Fatalf("%v + %d = %v: time of day changed", s, n, e)
		}
		back := c.AddBusinessDays(end, -n)
		if n > 0 && c.IsBusinessDay(start) && c.dayOf(back) != c.dayOf(start) {
			t.Fatalf("%v + %d - %d = %v", start, n, n, back)
		}
		if i%10 == 0 { // the day-by-day count is slow; check a tenth
			other := time.Unix(start.Unix()+r.Int64N(400*86400)-200*86400, 0)
			if got, want := c.BusinessDaysBetween(start, other), naiveBetween(c, start, other); got != want {
				t.Fatalf("BusinessDaysBetween(%v, %v) = %d, counted %d", start, other, got, want)
			}
		}
	}
}

// dstGap reports whether t's wall clock was moved by a spring-forward gap.
func dstGap(t time.Time) bool {
	_, off := t.Zone()
	_, before := t.Add(-3 * time.Hour).Zone()
	return off != before
}

func TestRulesVersion(t *testing.T) {
	// The fingerprint of the holidays this Version names, 2020–2030 and
	// the early-rule years. A change to the rules fails here: move
	// Version with it, and update the fingerprint.
	var b strings.Builder
	for _, y := range []int{1971, 1977, 1978, 1985, 1986} {
		for _, h := range USFederal().Holidays(y) {
			fmt.Fprintf(&b, "%s/%s/%s;", h.Date.Format(time.DateOnly), h.Observed.Format(time.DateOnly), h.Name)
		}
	}
	for y := 2020; y <= 2030; y++ {
		for _, h := range USFederal().Holidays(y) {
			fmt.Fprintf(&b, "%s/%s/%s;", h.Date.Format(time.DateOnly), h.Observed.Format(time.DateOnly), h.Name)
		}
	}
	sum := sha256.Sum256([]byte(Version + "\n" + b.String()))
	const want = "e3b870b648c0a293"
	if got := hex.EncodeToString(sum[:8]); got != want {
		t.Fatalf("holiday rules or Version changed (fingerprint %s, was %s): changed rules need a new Version", got, want)
	}
}

func TestHolidaysBeforeFirstYear(t *testing.T) {
	if USFederal().Holidays(FirstYear-1) != nil {
		t.Error("holidays before FirstYear")
	}
	if n := len(USFederal().Holidays(1985)); n != 9 {
		t.Errorf("1985: %d holidays, want 9 (no MLK Day, no Juneteenth)", n)
	}
	if n := len(USFederal().Holidays(2020)); n != 10 {
		t.Errorf("2020: %d holidays, want 10 (no Juneteenth)", n)
	}
}
