package notify_test

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/mash-hub/mash/pkg/auth"
	notifyv1 "github.com/mash-hub/mash/proto/mash/notify/v1"
	rulesv1 "github.com/mash-hub/mash/proto/mash/rules/v1"
)

// Hub staff see the notifications of the partnerships they serve only; another
// partnership's are left out of lists and are not found.
func TestStaffSeeOnlyTheirPartnershipsNotifications(t *testing.T) {
	e := newEnv(t)
	ref := e.referral(t)
	e.decide(t, confirmed, ref, uuid.NewString(), 1, rulesv1.Level_LEVEL_4, rulesv1.Rag_RAG_RED, "childrens_social_care")
	// Every event of the referral taken first, so no notification arrives after the count.
	e.drained(t, "notify")
	ns := e.settled(t, ref.GetId(), 2)
	scoped := func(role auth.Role, p string) string {
		_, tok, err := e.auth.Create(context.Background(), "rct-mash", "hub", role, "test", p)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	other := scoped(auth.RoleManager, "merthyr-tydfil")
	own := scoped(auth.RoleManager, partnership)
	list, err := e.client.ListNotifications(bearer(other), &notifyv1.ListNotificationsRequest{ReferralId: ref.GetId()})
	if err != nil || len(list.GetNotifications()) != 0 {
		t.Fatalf("a manager of another partnership listed %d notifications (%v)", len(list.GetNotifications()), err)
	}
	list, err = e.client.ListNotifications(bearer(own), &notifyv1.ListNotificationsRequest{ReferralId: ref.GetId()})
	if err != nil || len(list.GetNotifications()) != len(ns) {
		t.Fatalf("the partnership's own manager listed %d of %d notifications (%v)", len(list.GetNotifications()), len(ns), err)
	}
	for _, n := range ns {
		if _, err := e.client.GetNotification(bearer(other), &notifyv1.GetNotificationRequest{NotificationId: n.ID}); status.Code(err) != codes.NotFound {
			t.Errorf("a manager of another partnership read notification %s: %v", n.ID, err)
		}
		if _, err := e.client.AcknowledgeNotification(bearer(other), &notifyv1.AcknowledgeNotificationRequest{NotificationId: n.ID, Note: "phone"}); status.Code(err) != codes.NotFound {
			t.Errorf("a manager of another partnership acknowledged notification %s: %v", n.ID, err)
		}
		if _, err := e.client.RetryNotification(bearer(other), &notifyv1.RetryNotificationRequest{NotificationId: n.ID, Reason: "fixed"}); status.Code(err) != codes.NotFound {
			t.Errorf("a manager of another partnership retried notification %s: %v", n.ID, err)
		}
		if _, err := e.client.GetNotification(bearer(own), &notifyv1.GetNotificationRequest{NotificationId: n.ID}); err != nil {
			t.Errorf("the partnership's own manager: %v", err)
		}
	}
}

// A manager changes the directory of the partnerships they serve only; the "default"
// directory, which serves every partnership without its own, needs one serving all.
func TestDirectoryChangesKeepToThePartnershipsServed(t *testing.T) {
	e := newEnv(t)
	scoped := func(p string) string {
		_, tok, err := e.auth.Create(context.Background(), "rct-mash", "hub", auth.RoleManager, "test", p)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	put := func(tok, p string) error {
		_, err := e.client.PutAgency(bearer(tok), &notifyv1.PutAgencyRequest{Reason: "new team", Agency: &notifyv1.Agency{
			Id: "new-camhs", Partnership: p, Name: "CAMHS", Roles: []string{"camhs"}, Channel: notifyv1.ChannelKind_NATS}})
		return err
	}
	other := scoped("merthyr-tydfil")
	if err := put(other, partnership); status.Code(err) != codes.PermissionDenied {
		t.Errorf("a manager of another partnership adding to %s's directory: %v", partnership, err)
	}
	if err := put(other, "default"); status.Code(err) != codes.PermissionDenied {
		t.Errorf("a manager of one partnership changing the default directory: %v", err)
	}
	if _, err := e.client.RemoveAgency(bearer(other), &notifyv1.RemoveAgencyRequest{Partnership: partnership, AgencyId: "rct-csc", Reason: "x"}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("a manager of another partnership removing from %s's directory: %v", partnership, err)
	}
	own := scoped(partnership)
	if err := put(own, partnership); err != nil {
		t.Errorf("a manager of the partnership adding to its directory: %v", err)
	}
	// A new agency waits for a second manager before it is in the directory.
	e.approvePending(t)
	if _, err := e.client.RemoveAgency(bearer(own), &notifyv1.RemoveAgencyRequest{Partnership: partnership, AgencyId: "new-camhs", Reason: "merged"}); err != nil {
		t.Errorf("a manager of the partnership removing from its directory: %v", err)
	}
}
