package audit_test

import (
	"context"
	"testing"

	"github.com/google/uuid"

	"github.com/mash-hub/mash/pkg/events"
	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
	triagev1 "github.com/mash-hub/mash/proto/mash/triage/v1"
)

// The entry's actor comes from the envelope, whatever the payload says; an envelope recorded
// before envelopes carried the actor still gets its actor from the payload.
func TestEntryActorFromEnvelope(t *testing.T) {
	e := newEnv(t)
	referral := uuid.NewString()
	// The payload names someone else on purpose: the envelope is what counts.
	payload := &eventsv1.CaseChanged{Case: &triagev1.Case{ReferralId: referral, ChildId: "c-9"}, Actor: "user:payload", ActorRole: "practitioner"}
	current, _, err := events.NewEnvelope(eventsv1.SubjectCaseClosed, "rct", referral, 2, e.now, events.Actor("user:alice", "manager", "rct-mash"), payload)
	if err != nil {
		t.Fatal(err)
	}
	system, _, err := events.NewEnvelope(eventsv1.SubjectCaseReleased, "rct", referral, 3, e.now, events.System("triage"), payload)
	if err != nil {
		t.Fatal(err)
	}
	old, _, err := legacyEnvelope(t, eventsv1.SubjectCaseClaimed, "rct", referral, 1, e.now, payload)
	if err != nil {
		t.Fatal(err)
	}
	e.record(t, current, system, old)
	e.sequenceAll(t)

	want := map[string][3]string{
		current.GetEventId(): {"user:alice", "manager", "rct-mash"},
		system.GetEventId():  {"triage", "system", ""},
		old.GetEventId():     {"user:payload", "practitioner", ""},
	}
	rows, err := e.pool.Query(context.Background(), `SELECT event_id::text, actor, actor_role, agency, child_id FROM audit.entries WHERE referral_id = $1`, referral)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var id, actor, role, agency, child string
		if err := rows.Scan(&id, &actor, &role, &agency, &child); err != nil {
			t.Fatal(err)
		}
		n++
		if got := [3]string{actor, role, agency}; got != want[id] {
			t.Errorf("entry %s: actor %v, want %v", id, got, want[id])
		}
		if child != "c-9" {
			t.Errorf("entry %s: child %q: the payload's summary is still recorded", id, child)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if n != len(want) {
		t.Fatalf("%d entries, want %d", n, len(want))
	}
}
