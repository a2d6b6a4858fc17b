package calendar

import (
	"fmt"
	"strings"
	"time"
)

// dateLayout is the only accepted textual form: ISO 8601 calendar dates are
// unambiguous across UK (DD/MM) and US (MM/DD) habits, which matters when
// closure days are typed into deployment config by hand.
const dateLayout = "2006-01-02"

// Date is a civil (calendar) date with no time of day and no time zone. Bank
// holidays are properties of a date in England and Wales, not of an instant,
// so they are modelled separately from time.Time.
//
// Date is comparable and may be used as a map key.
type Date struct {
	Year  int
	Month time.Month
	Day   int
}

// DateOf returns the date of t in t's own location. Convert t with
// time.Time.In first if a different location's date is wanted.
func DateOf(t time.Time) Date {
	y, m, d := t.Date()
	return Date{Year: y, Month: m, Day: d}
}

// ParseDate parses a single YYYY-MM-DD date, rejecting impossible dates
// such as 2025-02-30.
func ParseDate(s string) (Date, error) {
	t, err := time.Parse(dateLayout, strings.TrimSpace(s))
	if err != nil {
		return Date{}, fmt.Errorf("calendar: invalid date %q (want YYYY-MM-DD): %w", s, err)
	}
	return DateOf(t), nil
}

// ParseDates parses a comma-separated list of YYYY-MM-DD dates, as used for
// environment configuration such as MASH_EXTRA_BANK_HOLIDAYS. Whitespace
// around entries is ignored. An empty or all-blank string yields no dates
// and no error, so an unset variable means "no changes". An empty entry
// inside a non-empty list (for example "2025-05-08,,2025-05-09") is an
// error: in safeguarding configuration a silently dropped entry is worse
// than a refusal to start.
func ParseDates(s string) ([]Date, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	parts := strings.Split(s, ",")
	dates := make([]Date, 0, len(parts))
	for i, p := range parts {
		p = strings.TrimSpace(p)
		if p == "" {
			return nil, fmt.Errorf("calendar: date list entry %d is empty", i+1)
		}
		d, err := ParseDate(p)
		if err != nil {
			return nil, fmt.Errorf("calendar: date list entry %d %q: %w", i+1, p, err)
		}
		dates = append(dates, d)
	}
	return dates, nil
}

// String formats d as YYYY-MM-DD.
func (d Date) String() string {
	return fmt.Sprintf("%04d-%02d-%02d", d.Year, int(d.Month), d.Day)
}

// IsValid reports whether d names a real day (for example, not 30 February).
func (d Date) IsValid() bool {
	if d.Month < time.January || d.Month > time.December || d.Day < 1 {
		return false
	}
	return DateOf(d.utcNoon()) == d
}

// Weekday returns the day of the week of d.
func (d Date) Weekday() time.Weekday {
	return d.utcNoon().Weekday()
}

// AddDays returns the date n days after d (before d if n is negative).
func (d Date) AddDays(n int) Date {
	return DateOf(time.Date(d.Year, d.Month, d.Day+n, 12, 0, 0, 0, time.UTC))
}

// Compare returns -1, 0 or +1 as d is before, equal to or after o.
func (d Date) Compare(o Date) int {
	switch {
	case d.Year != o.Year:
		return cmpInt(d.Year, o.Year)
	case d.Month != o.Month:
		return cmpInt(int(d.Month), int(o.Month))
	default:
		return cmpInt(d.Day, o.Day)
	}
}

// Before reports whether d is strictly before o.
func (d Date) Before(o Date) bool { return d.Compare(o) < 0 }

// After reports whether d is strictly after o.
func (d Date) After(o Date) bool { return d.Compare(o) > 0 }

// utcNoon anchors date arithmetic at noon UTC so that no zone transition can
// move the result onto a neighbouring day.
func (d Date) utcNoon() time.Time {
	return time.Date(d.Year, d.Month, d.Day, 12, 0, 0, 0, time.UTC)
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	default:
		return 0
	}
}

// Holiday is a non-working day with a human-readable name, as listed by
// Calendar.Holidays.
type Holiday struct {
	Date Date
	Name string
}

// Names follow the GOV.UK bank holiday list so that listings can be checked
// against it by eye.
const (
	nameNewYear      = "New Year's Day"
	nameGoodFriday   = "Good Friday"
	nameEasterMonday = "Easter Monday"
	nameEarlyMay     = "Early May bank holiday"
	nameSpring       = "Spring bank holiday"
	nameSummer       = "Summer bank holiday"
	nameChristmas    = "Christmas Day"
	nameBoxing       = "Boxing Day"
	substituteSuffix = " (substitute day)"
	nameExtraHoliday = "Additional closure day (configured)"
)

// rulesPerYear is the number of holidays the standing rules yield every year;
// substitutes replace rather than add days, so the count never varies.
const rulesPerYear = 8

// ruleHolidays returns the England and Wales bank holidays for year derived
// from the standing rules (Banking and Financial Dealings Act 1971 plus the
// annual royal proclamations that have followed the same pattern since 1978).
// It returns a fixed-size array rather than a slice so that the hot path in
// working-time arithmetic does not allocate.
//
// One-off changes (for example the 2020 VE Day move, the 2022 Platinum
// Jubilee and State Funeral, the 2023 Coronation) are deliberately not
// encoded: they are announced case by case and belong in configuration
// (Config.ExtraHolidays / Config.RemovedHolidays). Years before 1978 are
// computed with today's rules and do not reflect the historical calendar.
func ruleHolidays(year int) [rulesPerYear]Holiday {
	var h [rulesPerYear]Holiday
	i := 0
	add := func(d Date, name string) {
		h[i] = Holiday{Date: d, Name: name}
		i++
	}

	// New Year's Day falling at a weekend moves to the following Monday.
	ny := Date{year, time.January, 1}
	switch ny.Weekday() {
	case time.Saturday:
		add(Date{year, time.January, 3}, nameNewYear+substituteSuffix)
	case time.Sunday:
		add(Date{year, time.January, 2}, nameNewYear+substituteSuffix)
	default:
		add(ny, nameNewYear)
	}

	easter := easterSunday(year)
	add(easter.AddDays(-2), nameGoodFriday)
	add(easter.AddDays(1), nameEasterMonday)

	add(firstMonday(year, time.May), nameEarlyMay)
	add(lastMonday(year, time.May), nameSpring)
	add(lastMonday(year, time.August), nameSummer)

	// Christmas and Boxing Day each need their own weekday, so a weekend
	// Christmas pushes substitutes onto both the 27th and the 28th. When
	// Christmas is a Sunday, Boxing Day keeps its real Monday and Christmas
	// takes the Tuesday, matching GOV.UK practice (e.g. 2016, 2022).
	xmas := Date{year, time.December, 25}
	switch xmas.Weekday() {
	case time.Friday:
		add(xmas, nameChristmas)
		add(Date{year, time.December, 28}, nameBoxing+substituteSuffix)
	case time.Saturday:
		add(Date{year, time.December, 27}, nameChristmas+substituteSuffix)
		add(Date{year, time.December, 28}, nameBoxing+substituteSuffix)
	case time.Sunday:
		add(Date{year, time.December, 26}, nameBoxing)
		add(Date{year, time.December, 27}, nameChristmas+substituteSuffix)
	default:
		add(xmas, nameChristmas)
		add(Date{year, time.December, 26}, nameBoxing)
	}
	return h
}

// isRuleHoliday reports whether d is a bank holiday under the standing
// rules. Months that can never hold one are rejected without computing
// Easter, which keeps day-by-day scans cheap.
func isRuleHoliday(d Date) bool {
	switch d.Month {
	case time.January, time.March, time.April, time.May, time.August, time.December:
	default:
		return false
	}
	for _, h := range ruleHolidays(d.Year) {
		if h.Date == d {
			return true
		}
	}
	return false
}

// easterSunday returns Western (Gregorian) Easter Sunday using the anonymous
// Gregorian algorithm (Meeus/Jones/Butcher), which is exact for every
// Gregorian year and needs no lookup table that could expire.
func easterSunday(year int) Date {
	a := year % 19
	b := year / 100
	c := year % 100
	d := b / 4
	e := b % 4
	f := (b + 8) / 25
	g := (b - f + 1) / 3
	h := (19*a + b - d - g + 15) % 30
	i := c / 4
	k := c % 4
	l := (32 + 2*e + 2*i - h - k) % 7
	m := (a + 11*h + 22*l) / 451
	month := (h + l - 7*m + 114) / 31
	day := (h+l-7*m+114)%31 + 1
	return Date{year, time.Month(month), day}
}

func firstMonday(year int, month time.Month) Date {
	d := Date{year, month, 1}
	offset := (int(time.Monday) - int(d.Weekday()) + 7) % 7
	return d.AddDays(offset)
}

func lastMonday(year int, month time.Month) Date {
	// Day 0 of the next month normalises to the last day of this one, which
	// also handles December (month 13 becomes January of the next year).
	last := Date{year, month + 1, 0}.AddDays(0)
	offset := (int(last.Weekday()) - int(time.Monday) + 7) % 7
	return last.AddDays(-offset)
}
