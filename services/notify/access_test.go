package notify_test

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/mash-hub/mash/pkg/auth"
	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
	notifyv1 "github.com/mash-hub/mash/proto/mash/notify/v1"
	rulesv1 "github.com/mash-hub/mash/proto/mash/rules/v1"
)

// accessesBy returns the notification access entries that action left in notify's outbox,
// oldest first (the outbox keeps published rows, so nothing waits on the relay).
func accessesBy(t *testing.T, e *env, action string) []*eventsv1.RecordAccessed {
	t.Helper()
	rows, err := e.pool.Query(context.Background(), `SELECT payload FROM notify.outbox WHERE subject = $1 ORDER BY id`, eventsv1.SubjectAccessNotification)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []*eventsv1.RecordAccessed
	for rows.Next() {
		var raw []byte
		if err := rows.Scan(&raw); err != nil {
			t.Fatal(err)
		}
		var env eventsv1.Envelope
		a := &eventsv1.RecordAccessed{}
		if err := proto.Unmarshal(raw, &env); err != nil || env.GetPayload().UnmarshalTo(a) != nil {
			t.Fatalf("outbox row is not a readable access event: %v", err)
		}
		if a.GetAction() == action {
			out = append(out, a)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// A page of notifications and a notification's share record tell what was shared about a
// case: each page leaves one access entry naming every referral it shows (once), each
// notification read one naming its referral; a page that shows nothing and a read refused
// leave none.
func TestNotificationReadsLeaveAccessEntries(t *testing.T) {
	e := newEnv(t)
	ref := e.referral(t)
	e.decide(t, confirmed, ref, uuid.NewString(), 1, rulesv1.Level_LEVEL_4, rulesv1.Rag_RAG_RED, "childrens_social_care")
	ns := e.settled(t, ref.GetId(), 2)
	scoped := func(p string) (string, string) {
		c, tok, err := e.auth.Create(context.Background(), "rct-mash", "hub", auth.RoleManager, "test", p)
		if err != nil {
			t.Fatal(err)
		}
		return c.ClientID, tok
	}
	_, other := scoped("merthyr-tydfil")
	ownID, own := scoped(partnership)

	if list, err := e.client.ListNotifications(bearer(other), &notifyv1.ListNotificationsRequest{ReferralId: ref.GetId()}); err != nil || len(list.GetNotifications()) != 0 {
		t.Fatalf("another partnership's list: %v %v", list, err)
	}
	list, err := e.client.ListNotifications(bearer(own), &notifyv1.ListNotificationsRequest{ReferralId: ref.GetId()})
	// Every notification of the referral, at least two: still one referral listed.
	if err != nil || len(list.GetNotifications()) < 2 {
		t.Fatalf("own list: %v %v, want the referral's notifications", list, err)
	}
	acc := accessesBy(t, e, "ListNotifications")
	if len(acc) != 1 || acc[0].GetClientId() != ownID || len(acc[0].GetListed()) != 1 || acc[0].GetListed()[0].GetReferralId() != ref.GetId() {
		t.Fatalf("list access entries %v, want one by %s naming referral %s once", acc, ownID, ref.GetId())
	}

	if _, err := e.client.GetNotification(bearer(other), &notifyv1.GetNotificationRequest{NotificationId: ns[0].ID}); status.Code(err) != codes.NotFound {
		t.Fatalf("another partnership's read: %v, want NotFound", err)
	}
	if _, err := e.client.GetNotification(bearer(own), &notifyv1.GetNotificationRequest{NotificationId: ns[0].ID}); err != nil {
		t.Fatal(err)
	}
	acc = accessesBy(t, e, "GetNotification")
	if len(acc) != 1 || acc[0].GetClientId() != ownID || acc[0].GetReferralId() != ref.GetId() {
		t.Fatalf("read access entries %v, want one by %s of referral %s", acc, ownID, ref.GetId())
	}
}
