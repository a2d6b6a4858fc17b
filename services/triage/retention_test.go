package triage_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/mash-hub/mash/pkg/db/dbtest"
	"github.com/mash-hub/mash/services/triage/store"
)

// A retention dry run lists exactly the closed cases whose schedule, a partnership's own row
// before the default, says they are due: each with the rule that makes it due.
func TestRetentionListsExactlyTheCasesDue(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.NewPool(t, migrationsKey(t), migrateAll)
	day := func(s string) time.Time {
		d, err := time.Parse(time.DateOnly, s)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	// Cardiff keeps no-further-action referrals 5 years and early help 3.
	if _, err := pool.Exec(ctx, `INSERT INTO triage.retention_schedules (partnership, record_type, keep_years) VALUES
		('cardiff', 'no_further_action', 5), ('cardiff', 'early_help', 3)`); err != nil {
		t.Fatal(err)
	}
	type kase struct {
		name, partnership string
		state, outcome    int
		received, closed  string
		age               int
		due               bool
	}
	cases := []kase{
		{"nfa closed 2½ years ago", "rct", 4, 1, "2027-05-01", "2027-06-01", 9, true},
		{"advice closed 1½ years ago", "rct", 4, 2, "2028-05-01", "2028-06-01", 9, false},
		{"early help closed 6 years ago", "rct", 4, 4, "2023-11-01", "2023-12-01", 9, true},
		{"intensive support closed 5½ years ago", "rct", 4, 5, "2024-05-01", "2024-06-01", 9, false},
		{"statutory, child turned 25", "rct", 4, 6, "2019-12-01", "2020-01-01", 17, true},
		{"statutory, 8 years on, child still young", "rct", 4, 7, "2021-12-01", "2022-01-01", 3, false},
		{"open since 2010", "rct", 3, 0, "2010-01-01", "", 9, false},
		{"cardiff nfa, its 5 years not up", "cardiff", 4, 1, "2027-05-01", "2027-06-01", 9, false},
		{"cardiff early help, its 3 years up", "cardiff", 4, 3, "2026-05-01", "2026-06-01", 9, true},
	}
	ids := map[string]string{}
	var want []string
	for _, c := range cases {
		id := uuid.NewString()
		ids[id] = c.name
		var closed *time.Time
		if c.closed != "" {
			d := day(c.closed)
			closed = &d
		}
		if _, err := pool.Exec(ctx, `INSERT INTO triage.cases (referral_id, partnership, state, outcome, received, received_at, closed_at, child_age_years)
			VALUES ($1, $2, $3, $4, true, $5, $6, $7)`, id, c.partnership, c.state, c.outcome, day(c.received), closed, c.age); err != nil {
			t.Fatal(err)
		}
		if c.due {
			want = append(want, c.name)
		}
	}

	due, err := store.RetentionDue(ctx, pool, day("2030-01-01"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	rules := map[string]string{}
	for _, d := range due {
		got = append(got, ids[d.ReferralID])
		rules[ids[d.ReferralID]] = d.Rule()
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("due %q, want %q", got, want)
	}
	for name, rule := range map[string]string{
		"nfa closed 2½ years ago":            "default schedule: no_further_action, kept 2 years after closure",
		"statutory, child turned 25":         "default schedule: statutory, kept 6 years after closure or until the child is 25, whichever is later",
		"cardiff early help, its 3 years up": "schedule of cardiff: early_help, kept 3 years after closure",
	} {
		if rules[name] != rule {
			t.Errorf("%s: rule %q, want %q", name, rules[name], rule)
		}
	}
	// The statutory case fell due at the child's 25th birthday at the latest (17 at receipt
	// on 1 December 2019), not 6 years after closure.
	for _, d := range due {
		if ids[d.ReferralID] == "statutory, child turned 25" && !d.DueAt.Equal(day("2027-12-01")) {
			t.Errorf("statutory case due %s, want 2027-12-01", d.DueAt)
		}
	}
}
