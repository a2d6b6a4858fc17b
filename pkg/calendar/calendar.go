// Package calendar provides working-time arithmetic for the Multi-Agency
// Safeguarding Hub: which days are working days, and when a deadline that
// is expressed in working hours or working days falls due.
//
// MASH decisions are due within one working day of receipt, and urgency
// ratings carry working-hour deadlines (for example Red about 4 working
// hours, Amber about 24). "Working" means inside the configured daily hours
// (09:00-17:00 by default, wall-clock time) on a weekday that is not a bank
// holiday, evaluated in Europe/London unless configured otherwise.
//
// # Bank holidays
//
// England and Wales share one bank holiday list. It is computed from the
// standing rules for any year (New Year's Day, Good Friday, Easter Monday,
// the Early May, Spring and Summer bank holidays, Christmas Day and Boxing
// Day, with weekend substitutes), so there is no table that expires.
//
// One-off changes are not computed, because they are announced by royal
// proclamation case by case. Each partnership configures them through
// Config.ExtraHolidays and Config.RemovedHolidays (typically from
// environment variables parsed with ParseDates). For example, in 2020 the
// Early May bank holiday moved from Monday 4 May to Friday 8 May for VE Day:
//
//	ExtraHolidays:   []calendar.Date{{2020, time.May, 8}},
//	RemovedHolidays: []calendar.Date{{2020, time.May, 4}},
//
// Other historical one-offs that would need the same treatment include
// 2022-06-02 and 2022-06-03 (Platinum Jubilee, with the Spring bank holiday
// 2022-05-30 removed), 2022-09-19 (State Funeral) and 2023-05-08
// (Coronation).
//
// # Time zones
//
// Working hours are wall-clock times, so on the days Europe/London changes
// between GMT and BST the instants of 09:00 and 17:00 shift by an hour in
// UTC. All period boundaries are therefore built with time.Date in the
// calendar's location rather than by adding fixed durations to midnight.
// The package embeds the time zone database (time/tzdata) so it behaves the
// same on hosts without system zoneinfo.
package calendar

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	// Embedded so that Europe/London resolves inside minimal containers
	// that ship without /usr/share/zoneinfo.
	_ "time/tzdata"
)

// DefaultLocationName is the IANA zone used when Config.Location is nil.
const DefaultLocationName = "Europe/London"

// Supported values of Config.Region. England and Wales currently share one
// bank holiday list; the separate names exist so that configuration can
// state intent and a future divergence needs no config change.
const (
	RegionEnglandAndWales = "england-and-wales"
	RegionEngland         = "england"
	RegionWales           = "wales"
)

// Default working hours, used when the corresponding Config field is zero.
var (
	DefaultDayStart = ClockTime{Hour: 9}
	DefaultDayEnd   = ClockTime{Hour: 17}
)

// ErrInvalidConfig is wrapped by every configuration error returned from New,
// so callers can distinguish bad configuration from other start-up failures
// with errors.Is.
var ErrInvalidConfig = errors.New("calendar: invalid config")

// ClockTime is a wall-clock time of day with minute resolution. 24:00 is
// accepted as a day end meaning midnight at the end of the day.
type ClockTime struct {
	Hour   int
	Minute int
}

// ParseClockTime parses "HH:MM" (24-hour clock), for configuration such as
// environment variables. "24:00" is accepted; New permits it only as DayEnd.
func ParseClockTime(s string) (ClockTime, error) {
	hh, mm, ok := strings.Cut(strings.TrimSpace(s), ":")
	if !ok || len(hh) != 2 || len(mm) != 2 {
		return ClockTime{}, fmt.Errorf("calendar: invalid clock time %q (want HH:MM)", s)
	}
	h, errH := strconv.Atoi(hh)
	m, errM := strconv.Atoi(mm)
	if errH != nil || errM != nil {
		return ClockTime{}, fmt.Errorf("calendar: invalid clock time %q (want HH:MM)", s)
	}
	c := ClockTime{Hour: h, Minute: m}
	if !c.valid(true) {
		return ClockTime{}, fmt.Errorf("calendar: clock time %q out of range 00:00-24:00", s)
	}
	return c, nil
}

// String formats c as HH:MM.
func (c ClockTime) String() string {
	return fmt.Sprintf("%02d:%02d", c.Hour, c.Minute)
}

// IsZero reports whether c is 00:00, which Config treats as "use default".
func (c ClockTime) IsZero() bool { return c == ClockTime{} }

func (c ClockTime) minutes() int { return c.Hour*60 + c.Minute }

func (c ClockTime) valid(allow24 bool) bool {
	if allow24 && c.Hour == 24 && c.Minute == 0 {
		return true
	}
	return c.Hour >= 0 && c.Hour <= 23 && c.Minute >= 0 && c.Minute <= 59
}

// Config describes a partnership's working calendar. The zero value is
// valid and means Europe/London, 09:00-17:00, England and Wales bank
// holidays, with no local changes.
type Config struct {
	// Location is the zone in which working hours and dates are evaluated.
	// Nil means Europe/London.
	Location *time.Location

	// DayStart and DayEnd bound the working period on each working day, as
	// wall-clock times. A zero value selects the default (09:00 and 17:00
	// respectively), so a working day starting at midnight cannot be
	// expressed; no MASH front door operates that way. DayEnd must be after
	// DayStart; it may be 24:00.
	DayStart ClockTime
	DayEnd   ClockTime

	// Region selects the bank holiday rules: "england-and-wales" (default),
	// "england" or "wales". Scotland and Northern Ireland have different
	// lists and are rejected rather than silently given the wrong one.
	Region string

	// ExtraHolidays are additional closure days, such as a one-off royal
	// bank holiday or a partnership-wide closure. Weekend dates are
	// accepted and have no effect on working time.
	ExtraHolidays []Date

	// RemovedHolidays are dates that the standing rules make bank holidays
	// but on which the partnership works (for example the original date of
	// a moved holiday). Each must be a rule holiday; anything else is
	// rejected as a probable typo. Removing a holiday never makes a
	// weekend a working day.
	RemovedHolidays []Date
}

// Calendar answers working-time questions for one configuration. It is
// immutable after New returns and safe for concurrent use.
type Calendar struct {
	loc      *time.Location
	dayStart ClockTime
	dayEnd   ClockTime
	region   string
	extra    map[Date]struct{}
	removed  map[Date]struct{}
}

// New validates cfg and returns a Calendar. Configuration errors wrap
// ErrInvalidConfig and name the offending field.
func New(cfg Config) (*Calendar, error) {
	c := &Calendar{
		loc:      cfg.Location,
		dayStart: cfg.DayStart,
		dayEnd:   cfg.DayEnd,
		extra:    make(map[Date]struct{}, len(cfg.ExtraHolidays)),
		removed:  make(map[Date]struct{}, len(cfg.RemovedHolidays)),
	}
	if c.loc == nil {
		loc, err := time.LoadLocation(DefaultLocationName)
		if err != nil {
			return nil, fmt.Errorf("calendar: loading default location %q: %w", DefaultLocationName, err)
		}
		c.loc = loc
	}
	if c.dayStart.IsZero() {
		c.dayStart = DefaultDayStart
	}
	if c.dayEnd.IsZero() {
		c.dayEnd = DefaultDayEnd
	}
	if !c.dayStart.valid(false) {
		return nil, fmt.Errorf("%w: DayStart %s is not a valid time of day (00:00-23:59)", ErrInvalidConfig, c.dayStart)
	}
	if !c.dayEnd.valid(true) {
		return nil, fmt.Errorf("%w: DayEnd %s is not a valid time of day (00:00-24:00)", ErrInvalidConfig, c.dayEnd)
	}
	if c.dayEnd.minutes() <= c.dayStart.minutes() {
		return nil, fmt.Errorf("%w: DayEnd %s must be after DayStart %s", ErrInvalidConfig, c.dayEnd, c.dayStart)
	}

	switch r := strings.ToLower(strings.TrimSpace(cfg.Region)); r {
	case "":
		c.region = RegionEnglandAndWales
	case RegionEnglandAndWales, RegionEngland, RegionWales:
		c.region = r
	default:
		return nil, fmt.Errorf("%w: Region %q is not supported (want %q, %q or %q)",
			ErrInvalidConfig, cfg.Region, RegionEnglandAndWales, RegionEngland, RegionWales)
	}

	for i, d := range cfg.ExtraHolidays {
		if !d.IsValid() {
			return nil, fmt.Errorf("%w: ExtraHolidays[%d] %s is not a valid date", ErrInvalidConfig, i, d)
		}
		c.extra[d] = struct{}{}
	}
	for i, d := range cfg.RemovedHolidays {
		if !d.IsValid() {
			return nil, fmt.Errorf("%w: RemovedHolidays[%d] %s is not a valid date", ErrInvalidConfig, i, d)
		}
		if !isRuleHoliday(d) {
			return nil, fmt.Errorf("%w: RemovedHolidays[%d] %s is not a bank holiday under the standing rules",
				ErrInvalidConfig, i, d)
		}
		if _, clash := c.extra[d]; clash {
			return nil, fmt.Errorf("%w: RemovedHolidays[%d] %s is also listed in ExtraHolidays",
				ErrInvalidConfig, i, d)
		}
		c.removed[d] = struct{}{}
	}
	return c, nil
}

// Location returns the zone in which the calendar evaluates working time.
func (c *Calendar) Location() *time.Location { return c.loc }

// Region returns the canonical region name the calendar was built for.
func (c *Calendar) Region() string { return c.region }

// WorkingDayLength returns the nominal length of one working day
// (DayEnd - DayStart), the unit AddWorkingDays counts in.
func (c *Calendar) WorkingDayLength() time.Duration {
	return time.Duration(c.dayEnd.minutes()-c.dayStart.minutes()) * time.Minute
}

// Holidays lists the non-working weekdays and configured closures for year
// in date order: the rule-based bank holidays minus RemovedHolidays, plus
// ExtraHolidays falling in that year. It is intended for display and
// documentation; use IsWorkingDay for decisions.
func (c *Calendar) Holidays(year int) []Holiday {
	rules := ruleHolidays(year)
	out := make([]Holiday, 0, len(rules)+len(c.extra))
	for _, h := range rules {
		if _, gone := c.removed[h.Date]; !gone {
			out = append(out, h)
		}
	}
	for d := range c.extra {
		if d.Year != year || slices.ContainsFunc(out, func(h Holiday) bool { return h.Date == d }) {
			continue
		}
		out = append(out, Holiday{Date: d, Name: nameExtraHoliday})
	}
	slices.SortFunc(out, func(a, b Holiday) int { return a.Date.Compare(b.Date) })
	return out
}

// IsHoliday reports whether d is a bank holiday or configured closure day
// (after applying ExtraHolidays and RemovedHolidays), regardless of weekday.
func (c *Calendar) IsHoliday(d Date) bool {
	if _, ok := c.extra[d]; ok {
		return true
	}
	if _, ok := c.removed[d]; ok {
		return false
	}
	return isRuleHoliday(d)
}

// IsWorkingDay reports whether the date of t, in the calendar's location,
// is a weekday that is not a holiday.
func (c *Calendar) IsWorkingDay(t time.Time) bool {
	return c.isWorkingDate(DateOf(t.In(c.loc)))
}

// IsWorkingTime reports whether t falls inside a working period. Periods
// are half-open: DayStart is working time, DayEnd is not.
func (c *Calendar) IsWorkingTime(t time.Time) bool {
	t = t.In(c.loc)
	start, end, ok := c.period(DateOf(t))
	return ok && !t.Before(start) && t.Before(end)
}

// NextWorkingDayStart returns the start of the first working day whose
// start is at or after t: the same day's DayStart if t is before it on a
// working day, otherwise DayStart of the next working day. The result is in
// the calendar's location.
func (c *Calendar) NextWorkingDayStart(t time.Time) time.Time {
	t = t.In(c.loc)
	for d := DateOf(t); ; d = d.AddDays(1) {
		if start, _, ok := c.period(d); ok && !start.Before(t) {
			return start
		}
	}
}

// AddWorkingHours returns the instant at which d of working time has
// elapsed after t. Only time inside working periods counts; if t is outside
// one, counting begins at the next period's start. A deadline that exactly
// exhausts a period ends at that period's DayEnd rather than rolling over
// to the next morning. Non-positive d returns t unchanged. The result is in
// the calendar's location.
//
// The cost is one step per calendar day spanned, not per minute.
func (c *Calendar) AddWorkingHours(t time.Time, d time.Duration) time.Time {
	t = t.In(c.loc)
	if d <= 0 {
		return t
	}
	for day := DateOf(t); ; day = day.AddDays(1) {
		start, end, ok := c.period(day)
		if !ok {
			continue
		}
		if start.Before(t) {
			start = t
		}
		if !end.After(start) {
			continue
		}
		if avail := end.Sub(start); d > avail {
			d -= avail
			continue
		}
		return start.Add(d)
	}
}

// AddWorkingDays returns AddWorkingHours(t, n × WorkingDayLength()), so one
// working day from Tuesday 10:00 is Wednesday 10:00, and from Tuesday 08:00
// (before opening) is Tuesday 17:00. Non-positive n returns t unchanged.
func (c *Calendar) AddWorkingDays(t time.Time, n int) time.Time {
	day := c.WorkingDayLength()
	// Saturate rather than overflow: about 1,000 years of working days.
	if maxDays := int(math.MaxInt64 / int64(day)); n > maxDays {
		n = maxDays
	}
	return c.AddWorkingHours(t, time.Duration(n)*day)
}

// WorkingDuration returns the working time between from and to, which is
// what "how overdue" and "how long has this been waiting" figures need.
// It is antisymmetric: if to is before from the result is negative, so
// WorkingDuration(deadline, now) is positive when overdue and negative
// (the working time remaining) when not. For any t and d > 0,
// WorkingDuration(t, AddWorkingHours(t, d)) == d.
func (c *Calendar) WorkingDuration(from, to time.Time) time.Duration {
	if to.Before(from) {
		return -c.WorkingDuration(to, from)
	}
	from, to = from.In(c.loc), to.In(c.loc)
	var total time.Duration
	last := DateOf(to)
	for day := DateOf(from); !day.After(last); day = day.AddDays(1) {
		start, end, ok := c.period(day)
		if !ok {
			continue
		}
		if start.Before(from) {
			start = from
		}
		if end.After(to) {
			end = to
		}
		if end.After(start) {
			total += end.Sub(start)
		}
	}
	return total
}

func (c *Calendar) isWorkingDate(d Date) bool {
	switch d.Weekday() {
	case time.Saturday, time.Sunday:
		return false
	}
	return !c.IsHoliday(d)
}

// DayEnd is when working hours end on date d, in the calendar's location, whether or not d
// is a working day: a deadline a person gives as a date means the end of that day's work.
func (c *Calendar) DayEnd(d Date) time.Time {
	return time.Date(d.Year, d.Month, d.Day, c.dayEnd.Hour, c.dayEnd.Minute, 0, 0, c.loc)
}

// period returns the working period of day d. Boundaries come from
// time.Date in the calendar's location so that wall-clock hours hold on
// 23- and 25-hour DST days; the real length is end.Sub(start).
func (c *Calendar) period(d Date) (start, end time.Time, ok bool) {
	if !c.isWorkingDate(d) {
		return time.Time{}, time.Time{}, false
	}
	start = time.Date(d.Year, d.Month, d.Day, c.dayStart.Hour, c.dayStart.Minute, 0, 0, c.loc)
	return start, c.DayEnd(d), true
}

// AgeOn is the age in whole years, on the date t falls on in its own location, of someone
// born on dob: pass t in the hub's location (Location), as ages turn over on the England and
// Wales date. Someone born on 29 February turns a year older on 1 March in common years.
func AgeOn(dob, t time.Time) int {
	age := t.Year() - dob.Year()
	if t.Month() < dob.Month() || (t.Month() == dob.Month() && t.Day() < dob.Day()) {
		age--
	}
	return age
}
