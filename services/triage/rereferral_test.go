package triage_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	intakev1 "github.com/mash-hub/mash/proto/mash/intake/v1"
	rulesv1 "github.com/mash-hub/mash/proto/mash/rules/v1"
	"github.com/mash-hub/mash/services/triage"
	"github.com/mash-hub/mash/services/triage/store"
)

// facts reads a case's re-referral facts: the referral it re-refers ("" for none) and
// whether that one closed NFA or advice.
func facts(t testing.TB, e *env, referralID string) (string, *bool) {
	t.Helper()
	var of *string
	var nfa *bool
	if err := e.pool.QueryRow(context.Background(), `SELECT rereferral_of::text, rereferral_after_nfa FROM triage.cases WHERE referral_id = $1`,
		referralID).Scan(&of, &nfa); err != nil {
		t.Fatal(err)
	}
	if of == nil {
		return "", nfa
	}
	return *of, nfa
}

// checkFactsAgainstDefinition recomputes every case's re-referral facts from the definition
// (a probe of the child's history, as the dashboard once did per referral) and fails on any
// case whose kept facts differ.
func checkFactsAgainstDefinition(t testing.TB, e *env) {
	t.Helper()
	var wrong int
	if err := e.pool.QueryRow(context.Background(), `SELECT count(*) FROM triage.cases c LEFT JOIN LATERAL (
			SELECT p.referral_id, p.state = 4 AND p.outcome IN (1, 2) AS nfa FROM triage.cases p
			WHERE p.child_id = c.child_id AND p.referral_id <> c.referral_id
				AND p.received_at >= c.received_at - interval '12 months' AND p.received_at < c.received_at
			ORDER BY p.received_at DESC, p.referral_id DESC LIMIT 1) prev ON true
		WHERE (c.rereferral_of, c.rereferral_after_nfa) IS DISTINCT FROM (prev.referral_id, prev.nfa)`).Scan(&wrong); err != nil {
		t.Fatal(err)
	}
	if wrong != 0 {
		t.Fatalf("%d cases' re-referral facts differ from the definition", wrong)
	}
}

// TestReReferralFactsFollowEvents projects one child's referrals with their events in a bad
// order (decisions, which bring the child, before and after receipts; later referrals
// before earlier ones; redeliveries), then closes and moves cases, checking the kept facts
// after each step.
func TestReReferralFactsFollowEvents(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	child, other := uuid.NewString(), uuid.NewString()
	r0, r1, r2, r3 := uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString()
	at := map[string]time.Time{
		r0: time.Date(2025, 6, 1, 9, 0, 0, 0, time.UTC),   // more than 12 months before r2
		r1: time.Date(2026, 1, 10, 9, 0, 0, 0, time.UTC),  // within 12 months of r0 and r2
		r2: time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC), //
		r3: time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC), //
	}
	receive := func(id string) {
		e.received(t, referral{id: id, partnership: "rct", agency: "south-wales-police",
			concerns: []intakev1.ConcernCategory{intakev1.ConcernCategory_NEGLECT}, receivedAt: at[id]})
		e.waitCase(t, id, func(c store.Case) bool { return c.Received })
	}
	decide := func(id, childID string, version int64) []byte {
		d := decision(id, "rct", version, rulesv1.DecisionStatus_CONFIRMED, rulesv1.Level_LEVEL_2, rulesv1.Rag_RAG_GREEN,
			at[id].Add(24*time.Hour), at[id].Add(72*time.Hour))
		d.ChildId = childID
		_, raw := e.decided(t, d)
		e.waitCase(t, id, func(c store.Case) bool { return c.DecisionVersion == version })
		return raw
	}
	want := func(step, id, of string, nfa bool) {
		t.Helper()
		got, gotNFA := facts(t, e, id)
		switch {
		case of == "" && (got != "" || gotNFA != nil):
			t.Fatalf("%s: case received %s re-refers %q (after NFA %v), want none", step, at[id].Format(time.DateOnly), got, gotNFA)
		case of != "" && (got != of || gotNFA == nil || *gotNFA != nfa):
			t.Fatalf("%s: case received %s re-refers %q (after NFA %v), want %q (%v)", step, at[id].Format(time.DateOnly), got, gotNFA, of, nfa)
		}
	}

	// r3 decided before received; then r2 received before its decision: r3 links to r2
	// only once r2's child is known.
	decide(r3, child, 1)
	want("r3 decided only", r3, "", false)
	receive(r3)
	want("r3 alone", r3, "", false)
	receive(r2)
	want("r2 without child", r3, "", false)
	raw := decide(r2, child, 1)
	want("r2 decided", r3, r2, false)
	want("r2 decided", r2, "", false)
	// The earliest ones arrive last: r1 re-links r2; r0 is too old for r2 but not for r1.
	receive(r1)
	decide(r1, child, 1)
	decide(r0, child, 1)
	receive(r0)
	want("all", r3, r2, false)
	want("all", r2, r1, false)
	want("all", r1, r0, false)
	want("all", r0, "", false)
	// A redelivered decision changes nothing.
	e.publish(t, uuid.NewString(), triage.EventDecisionMade, raw)
	e.drained(t)
	checkFactsAgainstDefinition(t, e)

	// Closing r2 with no further action marks r3 as a re-referral after NFA; the facts
	// follow the earlier case's outcome, whenever it is recorded.
	closeAs := func(id string, outcome int16) {
		t.Helper()
		if err := pgx.BeginFunc(ctx, e.pool, func(tx pgx.Tx) error {
			if _, err := store.LockCase(ctx, tx, id); err != nil {
				return err
			}
			_, err := store.CloseCase(ctx, tx, id, outcome, "", "client:test", at[id].Add(48*time.Hour))
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	closeAs(r2, store.OutcomeNoFurtherAction)
	want("r2 closed NFA", r3, r2, true)
	closeAs(r1, 7)
	want("r1 closed s47", r2, r1, false)
	checkFactsAgainstDefinition(t, e)

	// A newer decision moves r1 to another child: r2 no longer re-refers anyone (r0 is more
	// than 12 months before it), and neither does r1.
	decide(r1, other, 2)
	want("r1 moved", r2, "", false)
	want("r1 moved", r1, "", false)
	want("r1 moved", r3, r2, true)
	checkFactsAgainstDefinition(t, e)
	e.checkCounters(t)
}
