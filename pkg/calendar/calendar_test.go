package calendar

import (
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

func newCal(t testing.TB, cfg Config) *Calendar {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New(%+v): %v", cfg, err)
	}
	return c
}

func london(t testing.TB) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("Europe/London")
	if err != nil {
		t.Fatalf("LoadLocation: %v", err)
	}
	return loc
}

// at builds a wall-clock instant in Europe/London.
func at(t testing.TB, y int, m time.Month, d, hh, mm int) time.Time {
	t.Helper()
	return time.Date(y, m, d, hh, mm, 0, 0, london(t))
}

func date(y int, m time.Month, d int) Date { return Date{y, m, d} }

func holidayDates(hs []Holiday) []Date {
	out := make([]Date, len(hs))
	for i, h := range hs {
		out[i] = h.Date
	}
	return out
}

func TestEasterSunday(t *testing.T) {
	t.Parallel()
	tests := []struct {
		year int
		want Date
	}{
		// Cross-checked against python-dateutil's easter(), which uses a
		// different formulation; far years exercise the century terms.
		{1600, date(1600, time.April, 2)},
		{1700, date(1700, time.April, 11)},
		{1818, date(1818, time.March, 22)}, // earliest possible
		{1943, date(1943, time.April, 25)}, // latest possible
		{2000, date(2000, time.April, 23)},
		{2008, date(2008, time.March, 23)},
		{2011, date(2011, time.April, 24)},
		{2019, date(2019, time.April, 21)},
		{2024, date(2024, time.March, 31)},
		{2025, date(2025, time.April, 20)},
		{2038, date(2038, time.April, 25)},
		{2100, date(2100, time.March, 28)},
		{2285, date(2285, time.March, 22)},
		{3000, date(3000, time.April, 13)},
		{4099, date(4099, time.April, 19)},
	}
	for _, tt := range tests {
		if got := easterSunday(tt.year); got != tt.want {
			t.Errorf("easterSunday(%d) = %s, want %s", tt.year, got, tt.want)
		}
	}
}

func TestHolidaysPublishedLists(t *testing.T) {
	t.Parallel()
	c := newCal(t, Config{})
	tests := []struct {
		year int
		want []Date
	}{
		{2024, []Date{
			date(2024, 1, 1), date(2024, 3, 29), date(2024, 4, 1), date(2024, 5, 6),
			date(2024, 5, 27), date(2024, 8, 26), date(2024, 12, 25), date(2024, 12, 26),
		}},
		{2025, []Date{
			date(2025, 1, 1), date(2025, 4, 18), date(2025, 4, 21), date(2025, 5, 5),
			date(2025, 5, 26), date(2025, 8, 25), date(2025, 12, 25), date(2025, 12, 26),
		}},
		{2026, []Date{
			date(2026, 1, 1), date(2026, 4, 3), date(2026, 4, 6), date(2026, 5, 4),
			date(2026, 5, 25), date(2026, 8, 31), date(2026, 12, 25), date(2026, 12, 28),
		}},
		{2027, []Date{
			date(2027, 1, 1), date(2027, 3, 26), date(2027, 3, 29), date(2027, 5, 3),
			date(2027, 5, 31), date(2027, 8, 30), date(2027, 12, 27), date(2027, 12, 28),
		}},
		// Christmas on Sunday: Boxing Day keeps Monday 26, Christmas is
		// substituted to Tuesday 27. New Year on Saturday -> Monday 3 Jan.
		// (The one-off 2022 Jubilee/State Funeral changes are config, not rules.)
		{2022, []Date{
			date(2022, 1, 3), date(2022, 4, 15), date(2022, 4, 18), date(2022, 5, 2),
			date(2022, 5, 30), date(2022, 8, 29), date(2022, 12, 26), date(2022, 12, 27),
		}},
		// Christmas on Saturday: substitutes Monday 27 and Tuesday 28.
		{2021, []Date{
			date(2021, 1, 1), date(2021, 4, 2), date(2021, 4, 5), date(2021, 5, 3),
			date(2021, 5, 31), date(2021, 8, 30), date(2021, 12, 27), date(2021, 12, 28),
		}},
		// New Year on Sunday -> Monday 2 Jan; Christmas on Monday.
		{2023, []Date{
			date(2023, 1, 2), date(2023, 4, 7), date(2023, 4, 10), date(2023, 5, 1),
			date(2023, 5, 29), date(2023, 8, 28), date(2023, 12, 25), date(2023, 12, 26),
		}},
		// Christmas on Friday: Boxing Day substitute Monday 28.
		{2020, []Date{
			date(2020, 1, 1), date(2020, 4, 10), date(2020, 4, 13), date(2020, 5, 4),
			date(2020, 5, 25), date(2020, 8, 31), date(2020, 12, 25), date(2020, 12, 28),
		}},
	}
	for _, tt := range tests {
		got := holidayDates(c.Holidays(tt.year))
		if !slices.Equal(got, tt.want) {
			t.Errorf("Holidays(%d) = %v, want %v", tt.year, got, tt.want)
		}
		for _, d := range tt.want {
			noon := time.Date(d.Year, d.Month, d.Day, 12, 0, 0, 0, c.Location())
			if c.IsWorkingDay(noon) {
				t.Errorf("IsWorkingDay(%s) = true, want false (bank holiday)", d)
			}
		}
	}
}

func TestHolidayNamesForSubstitutes(t *testing.T) {
	t.Parallel()
	c := newCal(t, Config{})
	tests := []struct {
		date Date
		name string
	}{
		{date(2022, 12, 26), "Boxing Day"},
		{date(2022, 12, 27), "Christmas Day (substitute day)"},
		{date(2021, 12, 27), "Christmas Day (substitute day)"},
		{date(2021, 12, 28), "Boxing Day (substitute day)"},
		{date(2026, 12, 25), "Christmas Day"},
		{date(2026, 12, 28), "Boxing Day (substitute day)"},
		{date(2022, 1, 3), "New Year's Day (substitute day)"},
		{date(2025, 4, 18), "Good Friday"},
		{date(2025, 8, 25), "Summer bank holiday"},
	}
	for _, tt := range tests {
		i := slices.IndexFunc(c.Holidays(tt.date.Year), func(h Holiday) bool { return h.Date == tt.date })
		if i < 0 {
			t.Errorf("%s: not listed as a holiday", tt.date)
			continue
		}
		if got := c.Holidays(tt.date.Year)[i].Name; got != tt.name {
			t.Errorf("%s: name = %q, want %q", tt.date, got, tt.name)
		}
	}
}

func TestRegionsShareList(t *testing.T) {
	t.Parallel()
	base := newCal(t, Config{})
	for _, region := range []string{"england-and-wales", "england", "wales", " Wales "} {
		c := newCal(t, Config{Region: region})
		for year := 2020; year <= 2030; year++ {
			if got, want := c.Holidays(year), base.Holidays(year); !slices.Equal(got, want) {
				t.Errorf("region %q year %d: %v, want %v", region, year, got, want)
			}
		}
	}
}

func TestAddWorkingHours(t *testing.T) {
	t.Parallel()
	c := newCal(t, Config{})
	tests := []struct {
		name  string
		start time.Time
		d     time.Duration
		want  time.Time
	}{
		{
			name:  "Friday night referral, 8h runs through Monday",
			start: at(t, 2025, time.June, 6, 22, 10),
			d:     8 * time.Hour,
			want:  at(t, 2025, time.June, 9, 17, 0),
		},
		{
			name:  "inside hours, same day",
			start: at(t, 2025, time.June, 10, 10, 0),
			d:     4 * time.Hour,
			want:  at(t, 2025, time.June, 10, 14, 0),
		},
		{
			name:  "early morning start counts from 09:00",
			start: at(t, 2025, time.June, 10, 7, 45),
			d:     4 * time.Hour,
			want:  at(t, 2025, time.June, 10, 13, 0),
		},
		{
			name:  "exactly 17:00 start rolls to next morning",
			start: at(t, 2025, time.June, 10, 17, 0),
			d:     30 * time.Minute,
			want:  at(t, 2025, time.June, 11, 9, 30),
		},
		{
			name:  "Thursday before Good Friday 16:00 + 4h (Red) skips Easter",
			start: at(t, 2025, time.April, 17, 16, 0),
			d:     4 * time.Hour,
			want:  at(t, 2025, time.April, 22, 12, 0),
		},
		{
			name:  "Christmas Eve evening 2025 + 4h (Red)",
			start: at(t, 2025, time.December, 24, 19, 30),
			d:     4 * time.Hour,
			want:  at(t, 2025, time.December, 29, 13, 0),
		},
		{
			name:  "Christmas Eve evening 2026 + 4h skips Boxing Day substitute",
			start: at(t, 2026, time.December, 24, 18, 30),
			d:     4 * time.Hour,
			want:  at(t, 2026, time.December, 29, 13, 0),
		},
		{
			name:  "Amber 24 working hours from Monday 11:00",
			start: at(t, 2025, time.June, 9, 11, 0),
			d:     24 * time.Hour,
			want:  at(t, 2025, time.June, 12, 11, 0),
		},
		{
			name:  "sub-minute precision survives",
			start: at(t, 2025, time.June, 10, 16, 59).Add(30 * time.Second),
			d:     time.Minute,
			want:  at(t, 2025, time.June, 11, 9, 0).Add(30 * time.Second),
		},
		{
			name:  "input in UTC is interpreted in London (Sat 00:30 BST)",
			start: time.Date(2025, time.June, 6, 23, 30, 0, 0, time.UTC),
			d:     time.Hour,
			want:  at(t, 2025, time.June, 9, 10, 0),
		},
		{
			name:  "zero duration is identity",
			start: at(t, 2025, time.June, 7, 3, 0),
			d:     0,
			want:  at(t, 2025, time.June, 7, 3, 0),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := c.AddWorkingHours(tt.start, tt.d)
			if !got.Equal(tt.want) {
				t.Errorf("AddWorkingHours(%v, %v) = %v, want %v", tt.start, tt.d, got, tt.want)
			}
			if got.Location() != c.Location() {
				t.Errorf("result location = %v, want %v", got.Location(), c.Location())
			}
		})
	}
}

func TestAddWorkingDays(t *testing.T) {
	t.Parallel()
	c := newCal(t, Config{})
	tests := []struct {
		name  string
		start time.Time
		n     int
		want  time.Time
	}{
		{"Tuesday 10:00 + 1 day", at(t, 2025, time.June, 10, 10, 0), 1, at(t, 2025, time.June, 11, 10, 0)},
		{"Tuesday 08:00 + 1 day ends same day", at(t, 2025, time.June, 10, 8, 0), 1, at(t, 2025, time.June, 10, 17, 0)},
		{"Friday 15:00 + 1 day -> Monday", at(t, 2025, time.June, 6, 15, 0), 1, at(t, 2025, time.June, 9, 15, 0)},
		{"Friday before Spring bank holiday", at(t, 2025, time.May, 23, 12, 0), 1, at(t, 2025, time.May, 27, 12, 0)},
		{"Christmas Eve 2027 evening + 1 day", at(t, 2027, time.December, 24, 20, 0), 1, at(t, 2027, time.December, 29, 17, 0)},
		{"5 days is a calendar week", at(t, 2025, time.June, 10, 10, 0), 5, at(t, 2025, time.June, 17, 10, 0)},
		{"zero days is identity", at(t, 2025, time.June, 10, 10, 0), 0, at(t, 2025, time.June, 10, 10, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := c.AddWorkingDays(tt.start, tt.n); !got.Equal(tt.want) {
				t.Errorf("AddWorkingDays(%v, %d) = %v, want %v", tt.start, tt.n, got, tt.want)
			}
		})
	}
}

// Europe/London changes clocks at 01:00 UTC on the last Sunday of March and
// October; working hours must stay 09:00-17:00 on the wall clock.
func TestDSTTransitions(t *testing.T) {
	t.Parallel()
	c := newCal(t, Config{})
	utc := func(y int, m time.Month, d, hh, mm int) time.Time {
		return time.Date(y, m, d, hh, mm, 0, 0, time.UTC)
	}
	t.Run("spring forward", func(t *testing.T) {
		t.Parallel()
		// Fri 28 Mar 2025 16:00 GMT; clocks go forward Sun 30 Mar.
		got := c.AddWorkingHours(utc(2025, time.March, 28, 16, 0), 2*time.Hour)
		if want := utc(2025, time.March, 31, 9, 0); !got.Equal(want) { // 10:00 BST
			t.Errorf("got %v (%v UTC), want %v", got, got.UTC(), want)
		}
		if got.Hour() != 10 {
			t.Errorf("wall clock hour = %d, want 10", got.Hour())
		}
		if got := c.NextWorkingDayStart(utc(2025, time.March, 29, 12, 0)); !got.Equal(utc(2025, time.March, 31, 8, 0)) {
			t.Errorf("NextWorkingDayStart = %v, want 08:00 UTC (09:00 BST)", got.UTC())
		}
		if !c.IsWorkingTime(utc(2025, time.March, 31, 8, 30)) { // 09:30 BST
			t.Error("08:30 UTC Monday after spring forward should be working time")
		}
		if c.IsWorkingTime(utc(2025, time.March, 31, 16, 30)) { // 17:30 BST
			t.Error("16:30 UTC Monday after spring forward should not be working time")
		}
		if c.IsWorkingTime(utc(2025, time.March, 28, 8, 30)) { // 08:30 GMT
			t.Error("08:30 UTC Friday before spring forward should not be working time")
		}
		// Real elapsed time is 65h, but only 2 working hours.
		if got := c.WorkingDuration(utc(2025, time.March, 28, 16, 0), utc(2025, time.March, 31, 9, 0)); got != 2*time.Hour {
			t.Errorf("WorkingDuration = %v, want 2h", got)
		}
	})
	t.Run("fall back", func(t *testing.T) {
		t.Parallel()
		// Fri 24 Oct 2025 16:00 BST = 15:00 UTC; clocks go back Sun 26 Oct.
		got := c.AddWorkingHours(utc(2025, time.October, 24, 15, 0), 2*time.Hour)
		if want := utc(2025, time.October, 27, 10, 0); !got.Equal(want) { // 10:00 GMT
			t.Errorf("got %v (%v UTC), want %v", got, got.UTC(), want)
		}
		if got := c.NextWorkingDayStart(utc(2025, time.October, 25, 12, 0)); !got.Equal(utc(2025, time.October, 27, 9, 0)) {
			t.Errorf("NextWorkingDayStart = %v, want 09:00 UTC (09:00 GMT)", got.UTC())
		}
		if c.IsWorkingTime(utc(2025, time.October, 27, 8, 30)) { // 08:30 GMT
			t.Error("08:30 UTC Monday after fall back should not be working time")
		}
	})
	t.Run("24:00 day end across fall-back weekend", func(t *testing.T) {
		t.Parallel()
		// An evening rota ending at midnight: Friday's 18:00-24:00 is BST,
		// Monday's is GMT, so the UTC offset of the result must change.
		c := newCal(t, Config{DayStart: ClockTime{18, 0}, DayEnd: ClockTime{24, 0}})
		got := c.AddWorkingHours(utc(2025, time.October, 24, 17, 0), 7*time.Hour) // Fri 18:00 BST
		if want := utc(2025, time.October, 27, 19, 0); !got.Equal(want) {         // Mon 19:00 GMT
			t.Errorf("got %v UTC, want %v", got.UTC(), want)
		}
	})
}

func TestNextWorkingDayStart(t *testing.T) {
	t.Parallel()
	c := newCal(t, Config{})
	tests := []struct {
		name    string
		in      time.Time
		want    time.Time
		working bool // IsWorkingTime(in)
	}{
		{"before opening", at(t, 2025, 6, 10, 7, 0), at(t, 2025, 6, 10, 9, 0), false},
		{"exactly opening is itself", at(t, 2025, 6, 10, 9, 0), at(t, 2025, 6, 10, 9, 0), true},
		{"mid-morning goes to next day", at(t, 2025, 6, 10, 9, 1), at(t, 2025, 6, 11, 9, 0), true},
		{"closing time is not working", at(t, 2025, 6, 10, 17, 0), at(t, 2025, 6, 11, 9, 0), false},
		{"Friday evening to Monday", at(t, 2025, 6, 6, 18, 0), at(t, 2025, 6, 9, 9, 0), false},
		{"Christmas Eve 2026 to Tuesday 29th", at(t, 2026, 12, 24, 12, 0), at(t, 2026, 12, 29, 9, 0), true},
		{"New Year substitute 2022", at(t, 2021, 12, 31, 17, 30), at(t, 2022, 1, 4, 9, 0), false},
	}
	for _, tt := range tests {
		if got := c.NextWorkingDayStart(tt.in); !got.Equal(tt.want) {
			t.Errorf("%s: NextWorkingDayStart(%v) = %v, want %v", tt.name, tt.in, got, tt.want)
		}
		if got := c.IsWorkingTime(tt.in); got != tt.working {
			t.Errorf("%s: IsWorkingTime(%v) = %v, want %v", tt.name, tt.in, got, tt.working)
		}
	}
}

func TestIsWorkingDayUsesCalendarLocation(t *testing.T) {
	t.Parallel()
	c := newCal(t, Config{})
	tests := []struct {
		in   time.Time
		want bool
	}{
		{time.Date(2025, 6, 6, 23, 30, 0, 0, time.UTC), false},                   // Sat 00:30 BST
		{time.Date(2025, 6, 8, 23, 30, 0, 0, time.UTC), true},                    // Mon 00:30 BST
		{time.Date(2025, 1, 6, 0, 30, 0, 0, time.FixedZone("X", 2*3600)), false}, // Sun 22:30 GMT
		{time.Date(2025, 12, 25, 23, 30, 0, 0, time.UTC), false},                 // Boxing Day
	}
	for _, tt := range tests {
		if got := c.IsWorkingDay(tt.in); got != tt.want {
			t.Errorf("IsWorkingDay(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestExtraAndRemovedHolidays(t *testing.T) {
	t.Parallel()
	// 2020: Early May bank holiday moved from Mon 4 May to Fri 8 May (VE Day).
	c := newCal(t, Config{
		ExtraHolidays:   []Date{date(2020, 5, 8), date(2020, 12, 24)},
		RemovedHolidays: []Date{date(2020, 5, 4)},
	})
	noon := func(d Date) time.Time { return time.Date(d.Year, d.Month, d.Day, 12, 0, 0, 0, c.Location()) }

	if !c.IsWorkingDay(noon(date(2020, 5, 4))) {
		t.Error("removed holiday 2020-05-04 should be a working day")
	}
	if c.IsWorkingDay(noon(date(2020, 5, 8))) {
		t.Error("extra holiday 2020-05-08 should not be a working day")
	}
	if c.IsWorkingDay(noon(date(2020, 12, 24))) {
		t.Error("extra closure 2020-12-24 should not be a working day")
	}
	want := []Date{
		date(2020, 1, 1), date(2020, 4, 10), date(2020, 4, 13), date(2020, 5, 8),
		date(2020, 5, 25), date(2020, 8, 31), date(2020, 12, 24), date(2020, 12, 25), date(2020, 12, 28),
	}
	if got := holidayDates(c.Holidays(2020)); !slices.Equal(got, want) {
		t.Errorf("Holidays(2020) = %v, want %v", got, want)
	}
	// Thu 7 May 16:00 + 2h: Fri 8 May closed, weekend, Mon 11 May 10:00.
	if got, want := c.AddWorkingHours(at(t, 2020, 5, 7, 16, 0), 2*time.Hour), at(t, 2020, 5, 11, 10, 0); !got.Equal(want) {
		t.Errorf("AddWorkingHours across extra holiday = %v, want %v", got, want)
	}
	// Fri 1 May 16:00 + 2h: Mon 4 May is worked.
	if got, want := c.AddWorkingHours(at(t, 2020, 5, 1, 16, 0), 2*time.Hour), at(t, 2020, 5, 4, 10, 0); !got.Equal(want) {
		t.Errorf("AddWorkingHours across removed holiday = %v, want %v", got, want)
	}
	// Other years are untouched.
	if c.IsWorkingDay(noon(date(2021, 5, 3))) {
		t.Error("2021-05-03 Early May should still be a holiday")
	}
	// The default calendar must not see another calendar's configuration.
	plain := newCal(t, Config{})
	if plain.IsWorkingDay(noon(date(2020, 5, 4))) || !plain.IsWorkingDay(noon(date(2020, 5, 8))) {
		t.Error("default calendar affected by another calendar's config")
	}
}

func TestNewValidation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		cfg       Config
		wantField string
	}{
		{"end before start", Config{DayStart: ClockTime{17, 0}, DayEnd: ClockTime{9, 0}}, "DayEnd"},
		{"end equals start", Config{DayStart: ClockTime{10, 0}, DayEnd: ClockTime{10, 0}}, "DayEnd"},
		{"default end before custom start", Config{DayStart: ClockTime{18, 0}}, "DayEnd"},
		{"start hour out of range", Config{DayStart: ClockTime{25, 0}}, "DayStart"},
		{"start 24:00 not allowed", Config{DayStart: ClockTime{24, 0}, DayEnd: ClockTime{24, 0}}, "DayStart"},
		{"start minute out of range", Config{DayStart: ClockTime{9, 60}}, "DayStart"},
		{"negative start", Config{DayStart: ClockTime{-1, 0}}, "DayStart"},
		{"end 24:30", Config{DayEnd: ClockTime{24, 30}}, "DayEnd"},
		{"unknown region", Config{Region: "scotland"}, "Region"},
		{"invalid extra date", Config{ExtraHolidays: []Date{date(2025, 2, 30)}}, "ExtraHolidays[0]"},
		{"invalid removed date", Config{RemovedHolidays: []Date{date(2025, 13, 1)}}, "RemovedHolidays[0]"},
		{"removed is not a holiday", Config{RemovedHolidays: []Date{date(2025, 12, 25), date(2025, 12, 24)}}, "RemovedHolidays[1]"},
		{"removed and extra clash", Config{
			ExtraHolidays:   []Date{date(2025, 12, 25)},
			RemovedHolidays: []Date{date(2025, 12, 25)},
		}, "RemovedHolidays[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := New(tt.cfg)
			if err == nil {
				t.Fatalf("New succeeded (%+v), want error naming %s", c, tt.wantField)
			}
			if !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("error %v does not wrap ErrInvalidConfig", err)
			}
			if !strings.Contains(err.Error(), tt.wantField) {
				t.Errorf("error %q does not name field %s", err, tt.wantField)
			}
		})
	}
}

func TestNewDefaults(t *testing.T) {
	t.Parallel()
	c := newCal(t, Config{})
	if got := c.Location().String(); got != "Europe/London" {
		t.Errorf("Location = %q, want Europe/London", got)
	}
	if got := c.Region(); got != RegionEnglandAndWales {
		t.Errorf("Region = %q, want %q", got, RegionEnglandAndWales)
	}
	if got := c.WorkingDayLength(); got != 8*time.Hour {
		t.Errorf("WorkingDayLength = %v, want 8h", got)
	}
	custom := newCal(t, Config{Location: time.UTC, DayStart: ClockTime{8, 30}, DayEnd: ClockTime{16, 45}})
	if got := custom.WorkingDayLength(); got != 8*time.Hour+15*time.Minute {
		t.Errorf("custom WorkingDayLength = %v", got)
	}
	start := time.Date(2025, 6, 10, 8, 0, 0, 0, time.UTC)
	if got, want := custom.AddWorkingDays(start, 1), time.Date(2025, 6, 10, 16, 45, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("custom AddWorkingDays = %v, want %v", got, want)
	}
}

func TestParseDates(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    []Date
		wantErr string
	}{
		{"", nil, ""},
		{"   ", nil, ""},
		{"2020-05-08", []Date{date(2020, 5, 8)}, ""},
		{" 2022-09-19 , 2023-05-08 ", []Date{date(2022, 9, 19), date(2023, 5, 8)}, ""},
		{"2022-09-19,2025-02-30", nil, `entry 2 "2025-02-30"`},
		{"2022-09-19,19/09/2022", nil, `entry 2 "19/09/2022"`},
		{"2022-9-19", nil, `entry 1 "2022-9-19"`},
		{"2022-09-19,,2023-05-08", nil, "entry 2 is empty"},
	}
	for _, tt := range tests {
		got, err := ParseDates(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseDates(%q) error = %v, want containing %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("ParseDates(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestParseClockTime(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want ClockTime
		ok   bool
	}{
		{"09:00", ClockTime{9, 0}, true},
		{"17:30", ClockTime{17, 30}, true},
		{"24:00", ClockTime{24, 0}, true},
		{"24:01", ClockTime{}, false},
		{"9:00", ClockTime{}, false},
		{"09:60", ClockTime{}, false},
		{"0900", ClockTime{}, false},
		{"aa:bb", ClockTime{}, false},
	}
	for _, tt := range tests {
		got, err := ParseClockTime(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseClockTime(%q) = %v, %v; want %v ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestWorkingDuration(t *testing.T) {
	t.Parallel()
	c := newCal(t, Config{})
	tests := []struct {
		name     string
		from, to time.Time
		want     time.Duration
	}{
		{"overdue across evening", at(t, 2025, 6, 10, 12, 0), at(t, 2025, 6, 11, 10, 0), 6 * time.Hour},
		{"not yet due is negative", at(t, 2025, 6, 11, 10, 0), at(t, 2025, 6, 10, 12, 0), -6 * time.Hour},
		{"entirely outside hours", at(t, 2025, 6, 10, 18, 0), at(t, 2025, 6, 11, 8, 0), 0},
		{"weekend only", at(t, 2025, 6, 7, 0, 0), at(t, 2025, 6, 9, 0, 0), 0},
		{"Easter long weekend", at(t, 2025, 4, 17, 9, 0), at(t, 2025, 4, 22, 17, 0), 16 * time.Hour},
		{"same instant", at(t, 2025, 6, 10, 12, 0), at(t, 2025, 6, 10, 12, 0), 0},
		{"full week", at(t, 2025, 6, 9, 0, 0), at(t, 2025, 6, 16, 0, 0), 40 * time.Hour},
	}
	for _, tt := range tests {
		if got := c.WorkingDuration(tt.from, tt.to); got != tt.want {
			t.Errorf("%s: WorkingDuration = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestAddWorkingHoursInverse checks, over a deterministic pseudo-random
// sample spanning several years of holidays and DST changes, that
// WorkingDuration undoes AddWorkingHours, that results land in working time
// (or exactly at a period end), and that adding is associative.
func TestAddWorkingHoursInverse(t *testing.T) {
	t.Parallel()
	c := newCal(t, Config{ExtraHolidays: []Date{date(2025, 5, 8)}})
	rng := rand.New(rand.NewPCG(20250410, 42))
	lo := at(t, 2019, 1, 1, 0, 0).Unix()
	hi := at(t, 2028, 12, 31, 0, 0).Unix()

	for i := range 3000 {
		start := time.Unix(lo+rng.Int64N(hi-lo), 0)
		if i%2 == 0 {
			// Force half the sample inside working time: the brief's
			// property; the other half checks the stronger "any start".
			day := c.NextWorkingDayStart(start)
			start = day.Add(time.Duration(rng.Int64N(int64(c.WorkingDayLength()))))
			if !c.IsWorkingTime(start) {
				t.Fatalf("constructed start %v is not working time", start)
			}
		}
		d := time.Duration(1 + rng.Int64N(int64(200*time.Hour)))
		end := c.AddWorkingHours(start, d)

		if got := c.WorkingDuration(start, end); got != d {
			t.Fatalf("start %v d %v: WorkingDuration(start, end=%v) = %v", start, d, end, got)
		}
		if !c.IsWorkingTime(end) && !c.IsWorkingTime(end.Add(-time.Nanosecond)) {
			t.Fatalf("start %v d %v: end %v is not in or at the end of working time", start, d, end)
		}
		d1 := time.Duration(rng.Int64N(int64(d)))
		if two := c.AddWorkingHours(c.AddWorkingHours(start, d1), d-d1); !two.Equal(end) {
			t.Fatalf("start %v: Add(Add(%v), %v) = %v, want %v", start, d1, d-d1, two, end)
		}
	}
}

func BenchmarkAddWorkingHours(b *testing.B) {
	c := newCal(b, Config{})
	starts := []time.Time{
		at(b, 2025, 6, 6, 22, 10),  // Friday night
		at(b, 2025, 4, 17, 16, 0),  // Thursday before Easter
		at(b, 2025, 12, 24, 19, 0), // Christmas Eve
		at(b, 2025, 6, 10, 11, 0),  // ordinary Tuesday
	}
	for _, d := range []time.Duration{4 * time.Hour, 24 * time.Hour, 72 * time.Hour} {
		b.Run(d.String(), func(b *testing.B) {
			i := 0
			for b.Loop() {
				_ = c.AddWorkingHours(starts[i%len(starts)], d)
				i++
			}
		})
	}
}

func TestAgeOn(t *testing.T) {
	loc := london(t)
	d := func(s string) time.Time {
		t.Helper()
		v, err := time.Parse(time.DateOnly, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		name string
		dob  string
		on   time.Time
		want int
	}{
		{"day before birthday", "2010-06-15", d("2026-06-14"), 15},
		{"on birthday", "2010-06-15", d("2026-06-15"), 16},
		{"day after birthday", "2010-06-15", d("2026-06-16"), 16},
		{"earlier month", "2010-06-15", d("2026-05-30"), 15},
		{"later month", "2010-06-15", d("2026-07-01"), 16},
		{"day of birth", "2026-03-01", d("2026-03-01"), 0},
		{"new year's eve baby on 31 Dec", "2019-12-31", d("2026-12-30"), 6},
		{"new year's eve baby on its birthday", "2019-12-31", d("2026-12-31"), 7},
		{"29 Feb birth on 28 Feb of a common year", "2012-02-29", d("2026-02-28"), 13},
		{"29 Feb birth on 1 Mar of a common year", "2012-02-29", d("2026-03-01"), 14},
		{"29 Feb birth on 28 Feb of a leap year", "2012-02-29", d("2028-02-28"), 15},
		{"29 Feb birth on 29 Feb of a leap year", "2012-02-29", d("2028-02-29"), 16},
		{"day counted in t's own zone: 00:30 BST on birthday", "2010-06-15", time.Date(2026, time.June, 15, 0, 30, 0, 0, loc), 16},
		{"day counted in t's own zone: 23:59 BST before birthday", "2010-06-15", time.Date(2026, time.June, 14, 23, 59, 0, 0, loc), 15},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := AgeOn(d(tc.dob), tc.on); got != tc.want {
				t.Errorf("AgeOn(%s, %s) = %d, want %d", tc.dob, tc.on, got, tc.want)
			}
		})
	}
}

// DayEnd is the configured end of working hours on any date, in wall-clock London time
// across the clock changes, and on days nobody works too.
func TestDayEnd(t *testing.T) {
	c := newCal(t, Config{DayEnd: ClockTime{Hour: 16, Minute: 30}})
	for _, tc := range []struct {
		d    Date
		want time.Time
	}{
		{date(2026, 11, 26), at(t, 2026, 11, 26, 16, 30)}, // a Thursday, GMT
		{date(2027, 3, 28), at(t, 2027, 3, 28, 16, 30)},   // a Sunday, the clocks went forward
		{date(2026, 12, 25), at(t, 2026, 12, 25, 16, 30)}, // a bank holiday
	} {
		if got := c.DayEnd(tc.d); !got.Equal(tc.want) || got.Location().String() != "Europe/London" {
			t.Errorf("DayEnd(%s) = %s, want %s", tc.d, got, tc.want)
		}
	}
	if got, want := newCal(t, Config{}).DayEnd(date(2026, 7, 1)).UTC(), time.Date(2026, 7, 1, 16, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("default DayEnd on a BST date = %s, want %s (17:00 London)", got, want)
	}
}
