package pack

import (
	"slices"
	"testing"
	"time"

	"github.com/mash-hub/mash/pkg/calendar"
)

func TestLevelOrder(t *testing.T) {
	t.Parallel()
	var parsed []Level
	for _, s := range []string{"1", "2", "3a", "3b", "4"} {
		l, err := ParseLevel(s)
		if err != nil {
			t.Fatalf("ParseLevel(%q): %v", s, err)
		}
		if l.String() != s || !l.Valid() {
			t.Errorf("ParseLevel(%q) = %v (valid %v)", s, l, l.Valid())
		}
		parsed = append(parsed, l)
	}
	if !slices.IsSorted(parsed) || !slices.Equal(parsed, Levels) || LevelNone >= Level1 {
		t.Errorf("levels out of order: %v", parsed)
	}
	if l, err := ParseLevel("3B"); err != nil || l != Level3b {
		t.Errorf("ParseLevel(3B) = %v, %v", l, err)
	}
	for _, bad := range []string{"", "0", "3", "3c", "5", "four", " 1"} {
		if _, err := ParseLevel(bad); err == nil {
			t.Errorf("ParseLevel(%q) succeeded", bad)
		}
	}
	if LevelNone.String() != "" || LevelNone.Valid() {
		t.Errorf("LevelNone = %q valid %v", LevelNone, LevelNone.Valid())
	}
}

func TestRAGOrder(t *testing.T) {
	t.Parallel()
	var parsed []RAG
	for _, s := range []string{"none", "green", "amber", "red"} {
		r, err := ParseRAG(s)
		if err != nil || r.String() != s {
			t.Fatalf("ParseRAG(%q) = %v, %v", s, r, err)
		}
		parsed = append(parsed, r)
	}
	if !slices.IsSorted(parsed) || max(RAGAmber, RAGRed, RAGGreen) != RAGRed {
		t.Errorf("RAG out of order: %v", parsed)
	}
	if r, err := ParseRAG("Red"); err != nil || r != RAGRed {
		t.Errorf("ParseRAG(Red) = %v, %v", r, err)
	}
	if _, err := ParseRAG("orange"); err == nil {
		t.Error("ParseRAG(orange) succeeded")
	}
}

func TestParseTimescale(t *testing.T) {
	t.Parallel()
	good := []struct {
		in    string
		kind  ClockKind
		hours time.Duration
		days  int
	}{
		{"4 working hours", Working, 4 * time.Hour, 0},
		{"1 working hour", Working, time.Hour, 0},
		{"1 working day", Working, 0, 1},
		{"72 hours", Elapsed, 72 * time.Hour, 0},
		{"3 Days", Elapsed, 0, 3},
	}
	for _, tt := range good {
		ts, err := ParseTimescale(tt.in)
		if err != nil || ts.Kind != tt.kind || ts.Hours != tt.hours || ts.Days != tt.days {
			t.Errorf("ParseTimescale(%q) = %+v, %v", tt.in, ts, err)
		}
	}
	for _, bad := range []string{"", "4h", "4", "four hours", "0 hours", "-1 days", "4 busy hours", "4 working weeks", "9000 hours", "400 days", "4 working hours please"} {
		if _, err := ParseTimescale(bad); err == nil {
			t.Errorf("ParseTimescale(%q) succeeded", bad)
		}
	}
}

func TestDeadlines(t *testing.T) {
	t.Parallel()
	cal, err := calendar.New(calendar.Config{})
	if err != nil {
		t.Fatal(err)
	}
	london := cal.Location()
	at := func(y int, m time.Month, d, h, min int) time.Time { return time.Date(y, m, d, h, min, 0, 0, london) }
	c := mustCompile(t, validPack())

	// Friday 16:00: one working hour left that day.
	fri := at(2026, time.November, 27, 16, 0)
	tests := []struct {
		name               string
		received           time.Time
		rag                RAG
		decision, response time.Time
	}{
		{"red over a weekend", fri, RAGRed, at(2026, time.November, 30, 16, 0), at(2026, time.November, 30, 12, 0)},
		{"amber is three working days", fri, RAGAmber, at(2026, time.November, 30, 16, 0), at(2026, time.December, 2, 16, 0)},
		{"green runs through the weekend", fri, RAGGreen, at(2026, time.November, 30, 16, 0), at(2026, time.November, 30, 16, 0)},
		{"none has no response clock", fri, RAGNone, at(2026, time.November, 30, 16, 0), time.Time{}},
		// Christmas Eve 15:00: Christmas Day, the Boxing Day substitute
		// (Monday 28th) and the weekend are skipped.
		{"red over Christmas", at(2026, time.December, 24, 15, 0), RAGRed, at(2026, time.December, 29, 15, 0), at(2026, time.December, 29, 11, 0)},
	}
	for _, tt := range tests {
		decision, response := c.Deadlines(tt.received, tt.rag, cal)
		if !decision.Equal(tt.decision) || !response.Equal(tt.response) {
			t.Errorf("%s: got decision %v response %v, want %v and %v", tt.name, decision, response, tt.decision, tt.response)
		}
	}

	// Elapsed days keep wall-clock time across the change to BST.
	days, _ := ParseTimescale("3 days")
	if got, want := days.From(at(2026, time.March, 27, 12, 0), cal), at(2026, time.March, 30, 12, 0); !got.Equal(want) {
		t.Errorf("3 days across BST = %v, want %v", got, want)
	}
	// Without a calendar a working clock falls back to elapsed time, which
	// is never later than the working deadline.
	red, _ := ParseTimescale("4 working hours")
	if got := red.From(fri, nil); !got.Equal(fri.Add(4 * time.Hour)) {
		t.Errorf("nil calendar = %v", got)
	}
}
