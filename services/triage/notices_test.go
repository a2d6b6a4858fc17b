package triage_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mash-hub/mash/pkg/events"
	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
)

// Notify's events about each notification are projected by a consumer of their own, so a new
// referral never waits behind them to reach the queue: the case consumer does not even
// subscribe to them. Piled up, they are applied in batches whose statements go in one
// round trip; each notice still ends as its last event says, whatever the order within a
// batch, with every time kept.
func TestNoticesHaveAConsumerOfTheirOwn(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	ctx := context.Background()

	var info *jetstream.ConsumerInfo
	eventually(t, "the case consumer to be created", func() bool {
		c, err := e.js.Consumer(ctx, events.StreamName, "triage")
		if err != nil {
			return false
		}
		info, err = c.Info(ctx)
		return err == nil
	})
	for _, subject := range []string{eventsv1.SubjectNotificationSent, eventsv1.SubjectNotificationDelivered, eventsv1.SubjectNotificationAcknowledged} {
		if slices.Contains(info.Config.FilterSubjects, subject) {
			t.Errorf("the case consumer subscribes to %s; notices have their own consumer", subject)
		}
	}

	referral := uuid.NewString()
	at := time.Date(2026, 8, 3, 10, 0, 0, 0, time.UTC)
	const notifications = 40
	ids := make([]string, notifications)
	for i := range ids {
		ids[i] = uuid.NewString()
	}
	// Acknowledged first, then delivered, then sent: the reverse of their times.
	for step, subject := range []string{eventsv1.SubjectNotificationAcknowledged, eventsv1.SubjectNotificationDelivered, eventsv1.SubjectNotificationSent} {
		for i, id := range ids {
			ev := &eventsv1.NotificationEvent{NotificationId: id, Agency: fmt.Sprintf("agency-%d", i), Kind: "ACTION", Role: "childrens_social_care"}
			e.event(t, subject, "rct", referral, 1, at.Add(time.Duration(2-step)*time.Minute), ev)
		}
	}
	e.drained(t)
	rows, err := e.pool.Query(ctx, `SELECT notification_id::text, state, sent_at, delivered_at, acknowledged_at FROM triage.notices WHERE referral_id = $1`, referral)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	seen := 0
	for rows.Next() {
		var id, state string
		var sent, delivered, acknowledged *time.Time
		if err := rows.Scan(&id, &state, &sent, &delivered, &acknowledged); err != nil {
			t.Fatal(err)
		}
		seen++
		switch {
		case state != "ACKNOWLEDGED":
			t.Errorf("notice %s is %s, want ACKNOWLEDGED (its latest event)", id, state)
		case sent == nil || !sent.Equal(at) || delivered == nil || !delivered.Equal(at.Add(time.Minute)) ||
			acknowledged == nil || !acknowledged.Equal(at.Add(2*time.Minute)):
			t.Errorf("notice %s times: sent %v, delivered %v, acknowledged %v", id, sent, delivered, acknowledged)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if seen != notifications {
		t.Fatalf("%d notices projected, want %d", seen, notifications)
	}
	var batched int
	if err := e.pool.QueryRow(ctx, `SELECT count(*) FROM triage.inbox WHERE consumer = 'triage-notices'`).Scan(&batched); err != nil {
		t.Fatal(err)
	}
	if batched != 3*notifications {
		t.Fatalf("the notices consumer's inbox holds %d events, want %d", batched, 3*notifications)
	}
}
