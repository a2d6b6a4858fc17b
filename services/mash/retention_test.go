package main_test

import (
	"context"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
)

// mash retention run --dry-run prints the cases due with their rule and changes nothing;
// without --dry-run it refuses, as this build cannot erase.
func TestRetentionDryRunListsTheCasesDue(t *testing.T) {
	t.Parallel()
	s := newSystem(t)
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, s.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	due, kept := uuid.NewString(), uuid.NewString()
	if _, err := pool.Exec(ctx, `INSERT INTO triage.cases (referral_id, partnership, state, outcome, received, received_at, closed_at) VALUES
		($1, 'rct', 4, 1, true, '2027-05-01', '2027-06-01'), ($2, 'rct', 4, 4, true, '2027-05-01', '2027-06-01')`, due, kept); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := s.run(t, "retention", "run", "--dry-run", "--at", "2030-01-01")
	if code != 0 {
		t.Fatalf("retention run --dry-run: exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, due) || !strings.Contains(out, "default schedule: no_further_action, kept 2 years after closure") ||
		strings.Contains(out, kept) || !strings.Contains(errOut, "1 cases due for erasure at 2030-01-01") {
		t.Fatalf("dry run printed:\n%s\n%s\nwant %s due (no further action) and %s kept (early help)", out, errOut, due, kept)
	}
	if _, errOut, code := s.run(t, "retention", "run", "--at", "2030-01-01"); code == 0 || !strings.Contains(errOut, "--dry-run is required") {
		t.Fatalf("retention run without --dry-run: exit %d, %q; want a refusal", code, errOut)
	}
	if _, errOut, code := s.run(t, "retention", "run", "--dry-run", "--at", "soon"); code == 0 || !strings.Contains(errOut, "--at") {
		t.Fatalf("retention run --at soon: exit %d, %q; want a failure naming --at", code, errOut)
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM triage.cases WHERE referral_id IN ($1, $2) AND state = 4`, due, kept).Scan(&n); err != nil || n != 2 {
		t.Fatalf("the dry run changed the cases: %d left, %v", n, err)
	}
}
