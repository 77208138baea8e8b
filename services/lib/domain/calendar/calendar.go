// Package calendar counts business days for SLAs: Monday to Friday except
// the US federal holidays of 5 U.S.C. 6103(a), observed as 5 U.S.C.
// 6103(b) and OPM say. The holidays are computed from their rules, never
// typed in, so every year from FirstYear on is known without a table to
// extend. 45 CFR 171.204(b)'s "within ten business days" is counted here.
//
// A day is a civil date in the calendar's location (UTC unless In says
// otherwise): an instant belongs to the date its clock reads there, so
// 2026-11-27T03:00Z is Friday 27 November in UTC but Thanksgiving evening
// in New York.
package calendar

import "time"

// Version names the holiday rules below. Change it with the rules: an SLA
// deadline is computed against a version, and changed rules under an
// unchanged version would make two runs disagree without saying why
// (TestRulesVersion fails until it moves).
const Version = "5usc6103-2021.1"

// FirstYear is the first year whose holidays the calendar knows: the
// Uniform Monday Holiday Act took effect in 1971. Earlier days are
// business days whenever they are weekdays.
const FirstYear = 1971

// Holiday is one federal holiday of a year.
type Holiday struct {
	// Date is the legal public holiday (midnight in the calendar's
	// location); Observed is the day offices close for it, which differs
	// when Date falls on a weekend and may be in the previous year (New
	// Year's Day 2022, a Saturday, was observed Friday 31 December 2021).
	Date, Observed time.Time
	Name           string
}

// Calendar is a business-day calendar. The zero value is not usable; start
// from USFederal.
type Calendar struct {
	loc *time.Location
}

// USFederal is the US federal calendar in UTC.
func USFederal() Calendar { return Calendar{loc: time.UTC} }

// In returns the calendar whose days are the civil dates of loc.
func (c Calendar) In(loc *time.Location) Calendar {
	if loc == nil {
		loc = time.UTC
	}
	return Calendar{loc: loc}
}

// Location returns where the calendar's days are counted.
func (c Calendar) Location() *time.Location {
	if c.loc == nil {
		return time.UTC
	}
	return c.loc
}

// The holidays of 5 U.S.C. 6103(a) by name.
const (
	NewYear      = "New Year's Day"
	MLK          = "Birthday of Martin Luther King, Jr."
	Washington   = "Washington's Birthday"
	Memorial     = "Memorial Day"
	Juneteenth   = "Juneteenth National Independence Day"
	Independence = "Independence Day"
	Labor        = "Labor Day"
	Columbus     = "Columbus Day"
	Veterans     = "Veterans Day"
	Thanksgiving = "Thanksgiving Day"
	Christmas    = "Christmas Day"
)

// date is a civil date; its zero time is midnight UTC of that date.
type date struct {
	y int
	m time.Month
	d int
}

func (d date) time(loc *time.Location) time.Time { return time.Date(d.y, d.m, d.d, 0, 0, 0, 0, loc) }

func (d date) weekday() time.Weekday { return d.time(time.UTC).Weekday() }

// add returns the date n days later (earlier for negative n).
func (d date) add(n int) date { return dateOf(time.Date(d.y, d.m, d.d+n, 0, 0, 0, 0, time.UTC)) }

func (d date) before(e date) bool {
	if d.y != e.y {
		return d.y < e.y
	}
	if d.m != e.m {
		return d.m < e.m
	}
	return d.d < e.d
}

// days is the number of days from 1970-01-01 to d.
func (d date) days() int { return int(d.time(time.UTC).Unix() / 86400) }

func dateOf(t time.Time) date {
	y, m, d := t.Date()
	return date{y, m, d}
}

// nthWeekday is the n-th wd of month m (n ≥ 1), or the last one for n = -1.
func nthWeekday(y int, m time.Month, wd time.Weekday, n int) date {
	if n < 0 {
		last := date{y, m + 1, 0}.add(0) // day 0 of the next month: the last of m
		return last.add(-((int(last.weekday()) - int(wd) + 7) % 7))
	}
	first := date{y, m, 1}
	return first.add((int(wd)-int(first.weekday())+7)%7 + 7*(n-1))
}

// observed moves a weekend holiday to the Friday before or the Monday
// after (5 U.S.C. 6103(b); Executive Order 11582 for Saturdays).
func observed(d date) date {
	switch d.weekday() {
	case time.Saturday:
		return d.add(-1)
	case time.Sunday:
		return d.add(1)
	}
	return d
}

type rule struct {
	name string
	date func(y int) (date, bool)
}

func fixed(m time.Month, day int) func(int) (date, bool) {
	return func(y int) (date, bool) { return date{y, m, day}, true }
}

func nth(m time.Month, wd time.Weekday, n int) func(int) (date, bool) {
	return func(y int) (date, bool) { return nthWeekday(y, m, wd, n), true }
}

// rules are the holidays of 5 U.S.C. 6103(a) in calendar order, each with
// the years it applies to.
var rules = [...]rule{
	{NewYear, fixed(time.January, 1)},
	{MLK, func(y int) (date, bool) { return nthWeekday(y, time.January, time.Monday, 3), y >= 1986 }},
	{Washington, nth(time.February, time.Monday, 3)},
	{Memorial, nth(time.May, time.Monday, -1)},
	{Juneteenth, func(y int) (date, bool) { return date{y, time.June, 19}, y >= 2021 }},
	{Independence, fixed(time.July, 4)},
	{Labor, nth(time.September, time.Monday, 1)},
	{Columbus, nth(time.October, time.Monday, 2)},
	// Veterans Day was the fourth Monday of October from 1971 through
	// 1977 (the Uniform Monday Holiday Act) and 11 November again from
	// 1978 (Pub. L. 94-97).
	{Veterans, func(y int) (date, bool) {
		if y < 1978 {
			return nthWeekday(y, time.October, time.Monday, 4), true
		}
		return date{y, time.November, 11}, true
	}},
	{Thanksgiving, nth(time.November, time.Thursday, 4)},
	{Christmas, fixed(time.December, 25)},
}

type holiday struct {
	date, observed date
	name           string
}

// holidays returns the holidays whose legal date is in year y.
func holidays(y int) []holiday {
	if y < FirstYear {
		return nil
	}
	out := make([]holiday, 0, len(rules))
	for _, r := range rules {
		if d, ok := r.date(y); ok {
			out = append(out, holiday{d, observed(d), r.name})
		}
	}
	return out
}

// Holidays returns the holidays whose legal date is in year, in calendar
// order, as midnights of the calendar's location; nil before FirstYear. An
// observed day may fall in the year before (New Year's Day on a Saturday).
func (c Calendar) Holidays(year int) []Holiday {
	hs := holidays(year)
	if hs == nil {
		return nil
	}
	out := make([]Holiday, len(hs))
	for i, h := range hs {
		out[i] = Holiday{Date: h.date.time(c.Location()), Observed: h.observed.time(c.Location()), Name: h.name}
	}
	return out
}

// closed is the set of observed holidays, by date, of the years asked so
// far; one is built per call, so a Calendar holds no mutable state.
type closed map[date]bool

func (s closed) has(d date) bool {
	for _, y := range [...]int{d.y, d.y + 1} { // a January holiday observed in December
		if _, seen := s[date{y: y}]; !seen {
			s[date{y: y}] = true // the year marker: its holidays are in
			for _, h := range holidays(y) {
				s[h.observed] = true
			}
		}
	}
	return s[d]
}

func business(d date, s closed) bool {
	wd := d.weekday()
	return wd != time.Saturday && wd != time.Sunday && !s.has(d)
}

// dayOf is the date t's clock reads in the calendar's location.
func (c Calendar) dayOf(t time.Time) date { return dateOf(t.In(c.Location())) }

// IsBusinessDay reports whether the date of day, in the calendar's
// location, is a weekday that is not an observed federal holiday.
func (c Calendar) IsBusinessDay(day time.Time) bool {
	return business(c.dayOf(day), closed{})
}

// AddBusinessDays returns the deadline n business days after t: the n-th
// business day after the date of t, at t's time of day on the calendar's
// clock. The date of t never counts, whether or not it is a business day,
// so a request on a Saturday has Monday as its first business day and a
// request on a Monday has Tuesday. For n = 0 it returns t; a negative n
// counts back, to the |n|-th business day before the date of t.
//
// This is the plain reading of "within ten business days of receipt"
// (45 CFR 171.204(b)): the day of receipt is not one of the ten.
func (c Calendar) AddBusinessDays(t time.Time, n int) time.Time {
	if n == 0 {
		return t
	}
	step := 1
	if n < 0 {
		step, n = -1, -n
	}
	s := closed{}
	d := c.dayOf(t)
	for n > 0 {
		d = d.add(step)
		if business(d, s) {
			n--
		}
	}
	lt := t.In(c.Location())
	return time.Date(d.y, d.m, d.d, lt.Hour(), lt.Minute(), lt.Second(), lt.Nanosecond(), c.Location())
}

// BusinessDaysBetween returns how many business days after a the date of b
// is: the business days d with date(a) < d ≤ date(b), or minus the count
// with date(b) < d ≤ date(a) when b's date is earlier. Times of day do not
// count. It inverts AddBusinessDays: BusinessDaysBetween(t,
// AddBusinessDays(t, n)) = n for every n ≥ 0.
func (c Calendar) BusinessDaysBetween(a, b time.Time) int {
	da, db := c.dayOf(a), c.dayOf(b)
	if db.before(da) {
		return -c.between(db, da)
	}
	return c.between(da, db)
}

// between counts the business days in (a, b], a ≤ b: the weekdays by
// arithmetic, less the observed holidays in the range (always weekdays).
func (c Calendar) between(a, b date) int {
	n := weekdaysThrough(b) - weekdaysThrough(a)
	for y := a.y; y <= b.y+1; y++ {
		for _, h := range holidays(y) {
			if a.before(h.observed) && !b.before(h.observed) {
				n--
			}
		}
	}
	return n
}

// weekdaysThrough counts the weekdays from an epoch Monday through d, so
// that differences of it count the weekdays in a half-open range.
func weekdaysThrough(d date) int {
	// 1970-01-05 was a Monday; shift so that day 0 is that Monday and
	// floor-divide, which stays right for dates before it.
	k := d.days() - 4
	weeks, rest := k/7, k%7
	if rest < 0 {
		weeks, rest = weeks-1, rest+7
	}
	return weeks*5 + min(rest+1, 5)
}
