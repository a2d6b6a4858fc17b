package pack

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/mash-hub/mash/pkg/calendar"
)

// ClockKind says how a timescale counts time.
type ClockKind uint8

// The two kinds of clock. A working clock only runs inside the partnership's
// working hours on working days (pkg/calendar); an elapsed clock runs all the
// time, nights, weekends and bank holidays included.
const (
	Elapsed ClockKind = iota + 1
	Working
)

// String names the kind as it reads in a pack.
func (k ClockKind) String() string {
	switch k {
	case Working:
		return "working"
	case Elapsed:
		return "elapsed"
	}
	return "unknown"
}

// Timescale is a parsed response clock: an amount of time of one kind.
// Working days are kept as days (not hours) because a working day's length
// is the calendar's to say.
type Timescale struct {
	Kind ClockKind
	// Hours is set for "N hours" / "N working hours".
	Hours time.Duration
	// Days is set for "N days" / "N working days".
	Days int
	// Text is the spelling in the pack, for display.
	Text string
}

// ParseTimescale parses the plain-English forms a safeguarding lead writes:
//
//	"4 working hours", "1 working day", "72 hours", "3 days"
//
// "working" makes the clock a working one (office hours on working days,
// bank holidays excluded); without it the clock is elapsed (24/7). The amount
// is a whole number from 1 to 8760 hours or 1 to 365 days. Terse forms such
// as "4h" are refused on purpose: they do not say which clock is meant, and
// the difference is a weekend.
func ParseTimescale(s string) (Timescale, error) {
	fields := strings.Fields(strings.ToLower(s))
	if len(fields) < 2 || len(fields) > 3 {
		return Timescale{}, fmt.Errorf("timescale %q: want e.g. \"4 working hours\", \"1 working day\", \"72 hours\" or \"3 days\"", s)
	}
	n, err := strconv.Atoi(fields[0])
	if err != nil || n < 1 {
		return Timescale{}, fmt.Errorf("timescale %q: the amount must be a whole number of at least 1", s)
	}
	kind := Elapsed
	unit := fields[1]
	if len(fields) == 3 {
		if fields[1] != "working" {
			return Timescale{}, fmt.Errorf("timescale %q: the only qualifier is \"working\"", s)
		}
		kind, unit = Working, fields[2]
	}
	t := Timescale{Kind: kind, Text: s}
	switch unit {
	case "hour", "hours":
		if n > 8760 {
			return Timescale{}, fmt.Errorf("timescale %q: at most 8760 hours", s)
		}
		t.Hours = time.Duration(n) * time.Hour
	case "day", "days":
		if n > 365 {
			return Timescale{}, fmt.Errorf("timescale %q: at most 365 days", s)
		}
		t.Days = n
	default:
		return Timescale{}, fmt.Errorf("timescale %q: the unit must be hours or days", s)
	}
	return t, nil
}

// From returns when the clock runs out if it starts at t. A working clock
// needs cal; with a nil cal it falls back to elapsed time so a caller that
// forgot the calendar gets an earlier (safer) deadline, never a later one.
func (ts Timescale) From(t time.Time, cal *calendar.Calendar) time.Time {
	if ts.Kind == Working && cal != nil {
		if ts.Days > 0 {
			return cal.AddWorkingDays(t, ts.Days)
		}
		return cal.AddWorkingHours(t, ts.Hours)
	}
	if ts.Days > 0 {
		loc := time.UTC
		if cal != nil {
			loc = cal.Location()
		}
		// Calendar days, not 24-hour blocks, so "3 days" ends at the same
		// wall-clock time across a clock change.
		return t.In(loc).AddDate(0, 0, ts.Days)
	}
	return t.Add(ts.Hours)
}

// Timescales are a pack's parsed clocks.
type Timescales struct {
	Red, Amber, Green Timescale
	// Decision is the clock for recording a decision and next actions on
	// any referral (one working day in Wales and England).
	Decision Timescale
}

// ForRAG returns the response clock for a rating; ok is false for RAGNone,
// which has no response clock.
func (t Timescales) ForRAG(r RAG) (ts Timescale, ok bool) {
	switch r {
	case RAGRed:
		return t.Red, true
	case RAGAmber:
		return t.Amber, true
	case RAGGreen:
		return t.Green, true
	}
	return Timescale{}, false
}

// Deadlines returns when a decision is due and when the response for rag is
// due for a referral received at receivedAt. For RAGNone responseDue is the
// zero time: there is no response clock, only the decision clock.
func (t Timescales) Deadlines(receivedAt time.Time, rag RAG, cal *calendar.Calendar) (decisionDue, responseDue time.Time) {
	decisionDue = t.Decision.From(receivedAt, cal)
	if ts, ok := t.ForRAG(rag); ok {
		responseDue = ts.From(receivedAt, cal)
	}
	return decisionDue, responseDue
}
