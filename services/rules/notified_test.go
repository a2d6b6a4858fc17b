package rules_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mash-hub/mash/pkg/auth"
	"github.com/mash-hub/mash/pkg/events"
	"github.com/mash-hub/mash/pkg/events/eventstest"
	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
	intakev1 "github.com/mash-hub/mash/proto/mash/intake/v1"
)

// Notify's first event of a notification (sent or failed) tells rules that the decision
// reached it, so the reconciler stops counting it as never notified; one of another
// decision or of none changes nothing.
func TestNotificationMarksTheDecisionNotified(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	staff := e.token(t, auth.RolePractitioner)
	first, second := uuid.NewString(), uuid.NewString()
	e.received(t, first, e.now, lowLevel(t, intakev1.ConcernCategory_SCHOOL_ATTENDANCE))
	e.received(t, second, e.now, lowLevel(t, intakev1.ConcernCategory_BEHAVIOUR))
	a, b := e.decision(t, staff, first), e.decision(t, staff, second)

	notify := func(subject, decisionID string) {
		t.Helper()
		ev := &eventsv1.NotificationEvent{NotificationId: uuid.NewString(), Agency: "childrens_social_care", DecisionId: decisionID}
		env, raw, err := events.NewEnvelope(subject, "default", a.GetReferralId(), 3, e.now, events.System("notify"), ev)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.js.PublishMsg(context.Background(), &nats.Msg{Subject: subject, Data: raw}, jetstream.WithMsgID(env.GetEventId())); err != nil {
			t.Fatal(err)
		}
	}
	notified := func(decisionID string) bool {
		t.Helper()
		var yes bool
		if err := e.pool.QueryRow(context.Background(), `SELECT notified_at IS NOT NULL FROM rules.decisions WHERE id = $1`, decisionID).Scan(&yes); err != nil {
			t.Fatal(err)
		}
		return yes
	}

	notify(eventsv1.SubjectNotificationSent, "")
	notify(eventsv1.SubjectNotificationSent, a.GetId())
	eventstest.Drained(t, e.js, "rules-notified")
	if !notified(a.GetId()) || notified(b.GetId()) {
		t.Fatalf("after a notification of the first decision: first notified %t, second %t; want true, false", notified(a.GetId()), notified(b.GetId()))
	}
	notify(eventsv1.SubjectNotificationFailed, b.GetId())
	eventstest.Drained(t, e.js, "rules-notified")
	if !notified(b.GetId()) {
		t.Fatal("a failed notification did not mark its decision notified")
	}
}

// A backlog of notify's events names each decision several times (one per agency told); the
// batch marks every decision it names once, at the first time, and an event naming
// something that is not a decision id is passed over rather than failing the batch.
func TestNotifiedBatchMarksEachDecisionOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	staff := e.token(t, auth.RolePractitioner)
	var decisions []string
	for _, c := range []intakev1.ConcernCategory{intakev1.ConcernCategory_SCHOOL_ATTENDANCE, intakev1.ConcernCategory_BEHAVIOUR, intakev1.ConcernCategory_HOUSING_HOMELESSNESS} {
		id := uuid.NewString()
		e.received(t, id, e.now, lowLevel(t, c))
		decisions = append(decisions, e.decision(t, staff, id).GetId())
	}
	ctx := context.Background()
	publish := func(decisionID string) {
		t.Helper()
		ev := &eventsv1.NotificationEvent{NotificationId: uuid.NewString(), Agency: "childrens_social_care", DecisionId: decisionID}
		env, raw, err := events.NewEnvelope(eventsv1.SubjectNotificationSent, "default", uuid.NewString(), 3, e.now, events.System("notify"), ev)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.js.PublishMsg(ctx, &nats.Msg{Subject: eventsv1.SubjectNotificationSent, Data: raw}, jetstream.WithMsgID(env.GetEventId())); err != nil {
			t.Fatal(err)
		}
	}
	publish(decisions[0])
	eventstest.Drained(t, e.js, "rules-notified")
	var first time.Time
	if err := e.pool.QueryRow(ctx, `SELECT notified_at FROM rules.decisions WHERE id = $1`, decisions[0]).Scan(&first); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		for _, id := range decisions {
			publish(id)
		}
		publish("not-a-decision")
		publish("urn:uuid:" + decisions[1])
	}
	eventstest.Drained(t, e.js, "rules-notified")
	for i, id := range decisions {
		var at *time.Time
		if err := e.pool.QueryRow(ctx, `SELECT notified_at FROM rules.decisions WHERE id = $1`, id).Scan(&at); err != nil {
			t.Fatal(err)
		}
		switch {
		case at == nil:
			t.Errorf("decision %d was not marked notified", i)
		case i == 0 && !at.Equal(first):
			t.Errorf("the first decision's notified time moved from %v to %v; the first notification stands", first, *at)
		}
	}
	var dead int
	if err := e.pool.QueryRow(ctx, `SELECT count(*) FROM rules.dead_letter WHERE consumer = 'rules-notified'`).Scan(&dead); err != nil {
		t.Fatal(err)
	}
	if dead != 0 {
		t.Errorf("%d events dead-lettered; want none", dead)
	}
}
