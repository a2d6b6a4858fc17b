package directory_test

import (
	"strings"
	"testing"
	"time"

	"github.com/mash-hub/mash/pkg/calendar"
	"github.com/mash-hub/mash/services/notify/directory"
)

// Deadlines come from the partnership's own list first, then the defaults: Red within the
// Red minutes, schools before the next school day, early help and Amber within a working
// day, Green never. A bad entry is named.
func TestAckDeadlinesPerRoleAndRAG(t *testing.T) {
	hub, err := calendar.New(calendar.Config{})
	if err != nil {
		t.Fatal(err)
	}
	p := directory.Partnership{ID: "rct", DutyManager: "dm", AckDeadlines: []directory.AckDeadline{{Role: "police", RAG: "RED", Within: "30m"}}}
	p.Normalise()
	friday := time.Date(2026, 11, 27, 16, 0, 0, 0, time.UTC) // Friday 16:00 in London
	for _, c := range []struct {
		role, rag string
		want      time.Time
	}{
		{"police", "RED", friday.Add(30 * time.Minute)},
		{"childrens_social_care", "RED", friday.Add(time.Hour)},
		{"school_dsl", "RED", time.Date(2026, 11, 30, 8, 45, 0, 0, time.UTC)},
		{"early_help", "AMBER", time.Date(2026, 11, 30, 16, 0, 0, 0, time.UTC)},
		{"early_help", "RED", time.Date(2026, 11, 30, 16, 0, 0, 0, time.UTC)},
		{"police", "GREEN", time.Time{}},
	} {
		got, err := p.AckDue(c.role, c.rag, friday, hub)
		if err != nil || !got.Equal(c.want) {
			t.Errorf("%s %s: due %s (%v), want %s", c.role, c.rag, got, err, c.want)
		}
	}
	p.AckDeadlines = []directory.AckDeadline{{Role: "police", RAG: "PURPLE", Within: "1h"}, {Role: "*", RAG: "RED", Within: "soon"}}
	ps := p.Check()
	var named []string
	for _, pr := range ps {
		named = append(named, pr.Field+": "+pr.Reason)
	}
	got := strings.Join(named, "\n")
	if !strings.Contains(got, "ackDeadlines[0]: rag \"PURPLE\"") || !strings.Contains(got, "ackDeadlines[1]: within \"soon\"") {
		t.Fatalf("problems: %s", got)
	}
}
