package notify_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/mash-hub/mash/pkg/auth"
	"github.com/mash-hub/mash/pkg/events"
	"github.com/mash-hub/mash/pkg/events/eventstest"
	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
	intakev1 "github.com/mash-hub/mash/proto/mash/intake/v1"
	notifyv1 "github.com/mash-hub/mash/proto/mash/notify/v1"
	rulesv1 "github.com/mash-hub/mash/proto/mash/rules/v1"
	"github.com/mash-hub/mash/services/notify"
	"github.com/mash-hub/mash/services/notify/directory"
	"github.com/mash-hub/mash/services/notify/store"
)

func countKind(ns []store.Notification, kind string, agency string) int {
	n := 0
	for _, x := range ns {
		if x.Kind == kind && (agency == "" || x.Agency == agency) {
			n++
		}
	}
	return n
}

// A decision reaches each named agency once, with a signed, proportionate message; the
// referrer hears of receipt and outcome; the school hears under Operation Encompass.
// Redelivered and re-emitted events send nothing more, before or after a restart.
func TestDecisionNotifiesEachAgencyExactlyOnce(t *testing.T) {
	e := newEnv(t)
	ref := e.referral(t)
	decisionID := uuid.NewString()
	env := e.decide(t, confirmed, ref, decisionID, 1, rulesv1.Level_LEVEL_4, rulesv1.Rag_RAG_AMBER, "childrens_social_care", "police")
	ns := e.settled(t, ref.GetId(), 5)

	for kind, agency := range map[string]string{"RECEIPT": "south-wales-police", "ENCOMPASS": "example-primary-dsl", "OUTCOME": "south-wales-police"} {
		if got := countKind(ns, kind, agency); got != 1 {
			t.Errorf("%s notifications to %s: %d, want 1", kind, agency, got)
		}
	}
	if countKind(ns, "ACTION", "rct-csc") != 1 || countKind(ns, "ACTION", "south-wales-police") != 1 {
		t.Errorf("action notifications: %+v", ns)
	}
	for _, n := range ns {
		if n.State != store.StateDelivered {
			t.Errorf("notification %s (%s to %s) is %s: %s", n.ID, n.Kind, n.Agency, n.State, n.LastError)
		}
		if n.LawfulBasis == "" || n.PayloadSHA256 == "" || n.ConsentStatus != "GIVEN" {
			t.Errorf("notification %s lacks its share record: %+v", n.ID, n)
		}
	}

	// Redelivery of the same event (a broker dedupe miss) and a re-emitted copy under a new
	// event id both change nothing.
	raw, _ := protoMarshal(env)
	e.publishRaw(t, "mash.decision.made", uuid.NewString(), raw)
	e.decide(t, confirmed, ref, decisionID, 1, rulesv1.Level_LEVEL_4, rulesv1.Rag_RAG_AMBER, "childrens_social_care", "police")
	e.restart()
	e.decide(t, confirmed, ref, decisionID, 1, rulesv1.Level_LEVEL_4, rulesv1.Rag_RAG_AMBER, "childrens_social_care", "police")
	e.drained(t, "notify")
	if got := e.settled(t, ref.GetId(), 5); len(got) != 5 {
		t.Fatalf("after redelivery: %d notifications, want 5", len(got))
	}
	social := e.ag.social.deliveries()
	if len(social) != 1 {
		t.Fatalf("children's social care got %d deliveries, want 1", len(social))
	}
	police := e.ag.police.deliveries()
	if len(police) != 3 {
		t.Fatalf("police got %d deliveries (receipt, action, outcome), want 3", len(police))
	}
	if len(e.ag.school.ofKind(notifyv1.NotificationKind_ENCOMPASS)) != 1 {
		t.Fatalf("school got %d Encompass notifications, want 1", len(e.ag.school.deliveries()))
	}

	// Proportionate: social care sees the narrative and the referrer; the school sees the
	// child and the categories only; the referrer's feedback carries the outcome alone.
	m := social[0].msg
	if m.GetNarrative() == "" || m.GetChild().GetNhsNumber() == "" || m.GetReferrer().GetName() == "" {
		t.Errorf("social care message lacks what its role needs: %s", social[0].body)
	}
	if m.GetDecision().GetLeadAgency() != "childrens_social_care" || m.GetShare().GetLawfulBasis() == "" {
		t.Errorf("social care message decision/share: %s", social[0].body)
	}
	school := e.ag.school.deliveries()[0]
	for _, secret := range []string{"Third call-out", "9434765919", "Example Street", "PC Rhian Evans", "Sian"} {
		if strings.Contains(school.body, secret) {
			t.Errorf("school message contains %q, which its role does not need: %s", secret, school.body)
		}
	}
	for _, d := range police {
		if d.msg.GetKind() == notifyv1.NotificationKind_OUTCOME && (d.msg.GetChild() != nil || d.msg.GetDecision().GetLevel() != "LEVEL_4") {
			t.Errorf("outcome feedback: %s", d.body)
		}
	}
	// Each delivery's idempotency key is its notification id.
	if social[0].key != social[0].msg.GetNotificationId() {
		t.Errorf("idempotency key %q, notification id %q", social[0].key, social[0].msg.GetNotificationId())
	}
	// Events: one sent and one delivered per notification.
	for _, subject := range []string{"mash.notification.sent", "mash.notification.delivered"} {
		e.waitFor(t, subject, func() bool { return len(e.streamEvents(t, subject)) >= 5 })
		if got := len(e.streamEvents(t, subject)); got != 5 {
			t.Errorf("%s events: %d, want 5", subject, got)
		}
	}
}

func protoMarshal(env *eventsv1.Envelope) ([]byte, error) { return protoMarshalOpts(env) }

// The referrer asked to stay unknown to the family: no agency learns who referred.
func TestReferrerIdentityWithheld(t *testing.T) {
	e := newEnv(t)
	ref := e.referral(t, func(r *intakev1.Referral) { r.GetSubmission().GetReferrer().KeepIdentityFromFamily = true })
	e.decide(t, confirmed, ref, uuid.NewString(), 1, rulesv1.Level_LEVEL_4, rulesv1.Rag_RAG_AMBER, "childrens_social_care")
	ns := e.settled(t, ref.GetId(), 4)
	d := e.ag.social.deliveries()
	if len(d) != 1 {
		t.Fatalf("social care deliveries: %d", len(d))
	}
	if strings.Contains(d[0].body, "Rhian") || !d[0].msg.GetReferrer().GetIdentityWithheld() {
		t.Errorf("referrer not withheld: %s", d[0].body)
	}
	for _, n := range ns {
		if n.Agency == "rct-csc" && !n.ReferrerWithheld {
			t.Errorf("share record does not say the referrer was withheld")
		}
	}
}

// An override that adds an agency notifies it; one that removes an agency withdraws.
func TestOverrideNotifiesAddedAndWithdrawsRemoved(t *testing.T) {
	e := newEnv(t)
	ref := e.referral(t, func(r *intakev1.Referral) { r.AgencyKind = "health" }) // no Encompass
	d := uuid.NewString()
	e.decide(t, confirmed, ref, d, 1, rulesv1.Level_LEVEL_3A, rulesv1.Rag_RAG_GREEN, "police")
	e.settled(t, ref.GetId(), 3)
	e.decide(t, overridden, ref, d, 3, rulesv1.Level_LEVEL_3A, rulesv1.Rag_RAG_GREEN, "childrens_social_care")
	ns := e.settled(t, ref.GetId(), 6)
	if countKind(ns, "ACTION", "rct-csc") != 1 || countKind(ns, "WITHDRAWAL", "south-wales-police") != 1 {
		t.Fatalf("after override: %+v", summarise(ns))
	}
	w := e.ag.police.ofKind(notifyv1.NotificationKind_WITHDRAWAL)
	if len(w) != 1 || w[0].msg.GetAboutNotificationId() == "" || w[0].msg.GetChild() != nil {
		t.Fatalf("withdrawal: %+v", w)
	}
	// A stale event (the original decision arriving late) undoes nothing.
	e.decide(t, confirmed, ref, d, 1, rulesv1.Level_LEVEL_3A, rulesv1.Rag_RAG_GREEN, "police")
	e.drained(t, "notify")
	if got := e.settled(t, ref.GetId(), 6); len(got) != 6 {
		t.Fatalf("stale event created notifications: %+v", summarise(got))
	}
}

func summarise(ns []store.Notification) []string {
	var out []string
	for _, n := range ns {
		out = append(out, n.Kind+"→"+n.Agency+":"+n.State)
	}
	return out
}

// A receiver that answers 500 then 200, or times out once, gets the notification on a later
// attempt; a 400 fails at once; one that always fails is dead-lettered after the limit and
// delivered when staff retry it after the fault is fixed.
func TestRetriesDeadLetterAndRetryFromDeadLetter(t *testing.T) {
	e := newEnv(t, func(c *notify.DeliveryConfig) { c.MaxAttempts = 3; c.SendTimeout = 300 * time.Millisecond })
	e.ag.police.respond = func(call int64) (int, time.Duration) {
		if call == 1 {
			return 500, 0
		}
		return 200, 0
	}
	e.ag.school.respond = func(call int64) (int, time.Duration) {
		if call == 1 {
			return 200, time.Second // longer than the send timeout
		}
		return 200, 0
	}
	failing := true
	var failingMu = make(chan struct{}, 1)
	failingMu <- struct{}{}
	e.ag.social.respond = func(int64) (int, time.Duration) {
		<-failingMu
		defer func() { failingMu <- struct{}{} }()
		if failing {
			return 503, 0
		}
		return 200, 0
	}
	ref := e.referral(t)
	e.decide(t, confirmed, ref, uuid.NewString(), 1, rulesv1.Level_LEVEL_4, rulesv1.Rag_RAG_AMBER, "childrens_social_care")
	ns := e.settled(t, ref.GetId(), 4)
	var dead store.Notification
	for _, n := range ns {
		switch n.Agency {
		case "rct-csc":
			dead = n
			if n.State != store.StateFailed || n.Attempts != 3 || !strings.Contains(n.LastError, "gave up after 3 attempts") {
				t.Errorf("social care notification: %s after %d attempts: %s", n.State, n.Attempts, n.LastError)
			}
		default:
			if n.State != store.StateDelivered {
				t.Errorf("%s to %s: %s (%s)", n.Kind, n.Agency, n.State, n.LastError)
			}
		}
	}
	if n := countKind(ns, "RECEIPT", "south-wales-police"); n != 1 {
		t.Fatalf("receipt: %d", n)
	}
	if got := len(e.ag.police.ofKind(notifyv1.NotificationKind_RECEIPT)); got != 1 {
		t.Errorf("police receipt delivered %d times after a 500, want 1", got)
	}
	// The slow receiver may have processed the timed-out attempt too; it drops the repeat by
	// its idempotency key, which is the same on both.
	keys := map[string]bool{}
	for _, d := range e.ag.school.deliveries() {
		keys[d.key] = true
	}
	if len(keys) != 1 || e.ag.school.calls.Load() != 2 {
		t.Errorf("school: %d distinct notifications in %d calls, want 1 in 2", len(keys), e.ag.school.calls.Load())
	}

	// Staff see it in the dead-letter list and retry once the receiver is fixed.
	manager := e.token(t, "rct-mash", auth.RoleManager)
	list, err := e.client.ListNotifications(bearer(manager), &notifyv1.ListNotificationsRequest{State: notifyv1.NotificationState_FAILED})
	if err != nil || len(list.GetNotifications()) != 1 || list.GetNotifications()[0].GetId() != dead.ID {
		t.Fatalf("dead-letter list: %v %v", list, err)
	}
	<-failingMu
	failing = false
	failingMu <- struct{}{}
	code, body := httpDo(t, "POST", e.httpURL+"/v1/notifications/"+dead.ID+"/retry", manager, `{"reason":"receiver fixed"}`)
	if code != 200 {
		t.Fatalf("retry: %d %s", code, body)
	}
	e.settled(t, ref.GetId(), 4)
	if got := len(e.ag.social.deliveries()); got != 1 {
		t.Fatalf("social care deliveries after retry: %d", got)
	}
	got, err := e.client.GetNotification(bearer(manager), &notifyv1.GetNotificationRequest{NotificationId: dead.ID})
	if err != nil || got.GetNotification().GetState() != notifyv1.NotificationState_DELIVERED || len(got.GetNotification().GetHistory()) != 4 {
		t.Fatalf("after retry: %v %v", got, err)
	}
	// Retrying a delivered notification is refused with a clear reason.
	code, body = httpDo(t, "POST", e.httpURL+"/v1/notifications/"+dead.ID+"/retry", manager, `{"reason":"again"}`)
	if code != http.StatusConflict || !strings.Contains(body, "only failed notifications") {
		t.Fatalf("retry of delivered: %d %s", code, body)
	}
	// A permanent refusal fails at the first attempt.
	e.ag.duty.respond = func(int64) (int, time.Duration) { return 400, 0 }
	e.clock.Advance(48 * time.Hour)
	if n, err := e.svc.EscalateDue(context.Background()); err != nil || n != 2 {
		t.Fatalf("escalated %d (social care and Encompass), want 2: %v", n, err)
	}
	// Both in the decision's one escalation.
	e.waitFor(t, "the escalation to fail", func() bool {
		failed := 0
		for _, n := range e.rows(t, ref.GetId()) {
			if n.Kind == "ESCALATION" && n.State == store.StateFailed && n.Attempts == 1 && strings.Contains(n.LastError, "400") {
				failed++
			}
		}
		return failed == 1
	})
	if got := countKind(e.rows(t, ref.GetId()), "ESCALATION", ""); got != 1 {
		t.Fatalf("%d escalations for one decision, want 1", got)
	}
}

// A delivery interrupted by a restart is sent by the next process; nothing is sent twice.
func TestRestartMidDeliveryDeliversOnce(t *testing.T) {
	e := newEnv(t, func(c *notify.DeliveryConfig) {
		c.BaseBackoff = 200 * time.Millisecond
		c.MaxBackoff = 200 * time.Millisecond
	})
	down := make(chan struct{})
	e.ag.social.respond = func(int64) (int, time.Duration) {
		select {
		case <-down:
			return 200, 0
		default:
			return 503, 0
		}
	}
	ref := e.referral(t)
	e.decide(t, confirmed, ref, uuid.NewString(), 1, rulesv1.Level_LEVEL_4, rulesv1.Rag_RAG_AMBER, "childrens_social_care")
	e.waitFor(t, "a failed attempt", func() bool { return e.ag.social.calls.Load() >= 1 })
	e.stop()
	close(down)
	e.start()
	ns := e.settled(t, ref.GetId(), 4)
	for _, n := range ns {
		if n.State != store.StateDelivered {
			t.Errorf("%s to %s: %s", n.Kind, n.Agency, n.State)
		}
	}
	if got := len(e.ag.social.deliveries()); got != 1 {
		t.Fatalf("social care got %d deliveries, want 1", got)
	}
}

// Red unacknowledged after an hour, and Amber after a working day, escalate to the duty
// manager; acknowledged ones do not. Uses the injected clock, not sleeps.
func TestEscalationWhenNotAcknowledged(t *testing.T) {
	e := newEnv(t)
	red := e.referral(t, func(r *intakev1.Referral) { r.AgencyKind = "health" })
	e.decide(t, confirmed, red, uuid.NewString(), 1, rulesv1.Level_LEVEL_4, rulesv1.Rag_RAG_RED, "childrens_social_care", "police")
	ns := e.settled(t, red.GetId(), 4)
	var toPolice, toSocial store.Notification
	for _, n := range ns {
		if n.Kind == "ACTION" && n.Agency == "south-wales-police" {
			toPolice = n
		}
		if n.Kind == "ACTION" && n.Agency == "rct-csc" {
			toSocial = n
		}
	}
	if toPolice.AckDue == nil || toPolice.AckDue.Sub(toPolice.CreatedAt) != time.Hour {
		t.Fatalf("red ack due: %v (created %v)", toPolice.AckDue, toPolice.CreatedAt)
	}
	// Police acknowledge with their own credential; social care does not.
	police := e.token(t, "south-wales-police", auth.RoleReferrer)
	code, body := httpDo(t, "POST", e.httpURL+"/v1/notifications/"+toPolice.ID+"/acknowledge", police, `{"note":"PPU duty sergeant"}`)
	if code != 200 || !strings.Contains(body, `"state":"ACKNOWLEDGED"`) {
		t.Fatalf("ack: %d %s", code, body)
	}
	// Before the hour: nothing.
	e.clock.Advance(59 * time.Minute)
	if n, err := e.svc.EscalateDue(context.Background()); err != nil || n != 0 {
		t.Fatalf("escalated %d before the deadline (%v)", n, err)
	}
	e.clock.Advance(2 * time.Minute)
	if n, err := e.svc.EscalateDue(context.Background()); err != nil || n != 1 {
		t.Fatalf("escalated %d at the deadline, want 1 (%v)", n, err)
	}
	if n, _ := e.svc.EscalateDue(context.Background()); n != 0 {
		t.Fatalf("escalated again: %d", n)
	}
	e.waitFor(t, "escalation delivered", func() bool { return len(e.ag.duty.deliveries()) == 1 })
	esc := e.ag.duty.deliveries()[0].msg
	if esc.GetKind() != notifyv1.NotificationKind_ESCALATION || esc.GetAboutNotificationId() != toSocial.ID || esc.GetAboutAgency() != "rct-csc" {
		t.Fatalf("escalation message: %+v", esc)
	}
	// The event is published by the relay after the escalation commits: wait for it.
	e.waitFor(t, "escalated event", func() bool { return len(e.streamEvents(t, "mash.notification.escalated")) > 0 })
	evs := e.streamEvents(t, "mash.notification.escalated")
	if len(evs) != 1 {
		t.Fatalf("escalated events: %d", len(evs))
	}
	var ev eventsv1.NotificationEvent
	if err := evs[0].GetPayload().UnmarshalTo(&ev); err != nil || ev.GetNotificationId() != toSocial.ID ||
		ev.GetActor() != "notify" || ev.GetActorRole() != auth.ActorRoleSystem {
		t.Fatalf("escalated event: %v %v", &ev, err)
	}

	// Amber: due one working day later (Wednesday 10:00 → Thursday 10:00), not before.
	amber := e.referral(t, func(r *intakev1.Referral) { r.AgencyKind = "health" })
	e.decide(t, confirmed, amber, uuid.NewString(), 1, rulesv1.Level_LEVEL_3B, rulesv1.Rag_RAG_AMBER, "childrens_social_care")
	for _, n := range e.settled(t, amber.GetId(), 3) {
		if n.Kind == "ACTION" {
			if n.AckDue == nil || n.AckDue.Sub(n.CreatedAt) < 23*time.Hour || n.AckDue.Sub(n.CreatedAt) > 25*time.Hour {
				t.Fatalf("amber ack due %v for created %v", n.AckDue, n.CreatedAt)
			}
		}
	}
	e.clock.Advance(23 * time.Hour)
	if n, _ := e.svc.EscalateDue(context.Background()); n != 0 {
		t.Fatalf("amber escalated early")
	}
	e.clock.Advance(2 * time.Hour)
	if n, _ := e.svc.EscalateDue(context.Background()); n != 1 {
		t.Fatalf("amber not escalated after a working day")
	}
}

// Red outside the agency's hours goes to its out-of-hours route.
func TestRedOutOfHoursGoesToOutOfHoursRoute(t *testing.T) {
	e := newEnv(t)
	e.clock.Advance(12 * time.Hour) // Wednesday 22:00
	ref := e.referral(t, func(r *intakev1.Referral) { r.AgencyKind = "health" })
	e.decide(t, confirmed, ref, uuid.NewString(), 1, rulesv1.Level_LEVEL_4, rulesv1.Rag_RAG_RED, "childrens_social_care")
	ns := e.settled(t, ref.GetId(), 3)
	if countKind(ns, "ACTION", "rct-edt") != 1 || countKind(ns, "ACTION", "rct-csc") != 0 {
		t.Fatalf("out of hours: %v", summarise(ns))
	}
	for _, n := range ns {
		if n.Agency == "rct-edt" && n.RoutedFrom != "rct-csc" {
			t.Errorf("routed from %q", n.RoutedFrom)
		}
	}
	if len(e.ag.ooh.deliveries()) != 1 || len(e.ag.social.deliveries()) != 0 {
		t.Fatalf("deliveries: edt %d, social %d", len(e.ag.ooh.deliveries()), len(e.ag.social.deliveries()))
	}
}

// Agencies acknowledge on the bus too; an acknowledgement published by another agency is
// refused.
func TestAcknowledgeOnTheBus(t *testing.T) {
	e := newEnv(t)
	ref := e.referral(t, func(r *intakev1.Referral) { r.AgencyKind = "health" })
	e.decide(t, confirmed, ref, uuid.NewString(), 1, rulesv1.Level_LEVEL_4, rulesv1.Rag_RAG_RED, "childrens_social_care", "police")
	var social, police store.Notification
	for _, n := range e.settled(t, ref.GetId(), 4) {
		if n.Kind == "ACTION" {
			if n.Agency == "rct-csc" {
				social = n
			} else {
				police = n
			}
		}
	}
	pub := func(agency, id, note string) {
		b, _ := json.Marshal(map[string]string{"notificationId": id, "note": note})
		if _, err := e.js.PublishMsg(context.Background(), &nats.Msg{Subject: "mash.notify." + agency + ".ack", Data: b}); err != nil {
			t.Fatal(err)
		}
	}
	pub("rct-csc", police.ID, "seen")       // wrong agency: refused
	pub("rct-csc", social.ID, "seen\x00ok") // not text: refused
	// A note over 500 bytes is kept cut at a character boundary: 499 letters and an "é"
	// would otherwise leave half a character, which Postgres refuses.
	pub("rct-csc", social.ID, strings.Repeat("a", 499)+"é")
	e.waitFor(t, "bus acknowledgement", func() bool {
		n, _ := store.New(e.pool).Get(context.Background(), social.ID)
		return n.AcknowledgedAt != nil
	})
	eventstest.DrainedOn(t, e.js, events.AgencyStreamName, "notify-acks")
	if n, _ := store.New(e.pool).Get(context.Background(), police.ID); n.AcknowledgedAt != nil {
		t.Fatalf("another agency acknowledged police's notification")
	}
	if n, _ := store.New(e.pool).Get(context.Background(), social.ID); n.State != store.StateAcknowledged || !strings.Contains(n.AcknowledgedBy, "rct-csc") ||
		n.AckNote != strings.Repeat("a", 499) {
		t.Fatalf("acknowledged: %+v", n)
	}
}

// Who may see and acknowledge what; bad requests name the field.
func TestAPIAccessAndValidation(t *testing.T) {
	e := newEnv(t)
	ref := e.referral(t, func(r *intakev1.Referral) { r.AgencyKind = "health" })
	e.decide(t, confirmed, ref, uuid.NewString(), 1, rulesv1.Level_LEVEL_4, rulesv1.Rag_RAG_RED, "childrens_social_care")
	var social store.Notification
	for _, n := range e.settled(t, ref.GetId(), 3) {
		if n.Agency == "rct-csc" {
			social = n
		}
	}
	police := e.token(t, "south-wales-police", auth.RoleReferrer)
	// Another agency's notification is not found, and its list shows only its own.
	if _, err := e.client.GetNotification(bearer(police), &notifyv1.GetNotificationRequest{NotificationId: social.ID}); status.Code(err) != codes.NotFound {
		t.Fatalf("police read social care's notification: %v", err)
	}
	list, err := e.client.ListNotifications(bearer(police), &notifyv1.ListNotificationsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range list.GetNotifications() {
		if n.GetAgency() != "south-wales-police" {
			t.Fatalf("police listed %s's notification", n.GetAgency())
		}
	}
	// A manager may acknowledge on the agency's behalf, saying how.
	manager := e.token(t, "rct-mash", auth.RoleManager)
	if _, err := e.client.AcknowledgeNotification(bearer(manager), &notifyv1.AcknowledgeNotificationRequest{NotificationId: social.ID}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("manager ack without note: %v", err)
	}
	practitioner := e.token(t, "rct-mash", auth.RolePractitioner)
	if _, err := e.client.AcknowledgeNotification(bearer(practitioner), &notifyv1.AcknowledgeNotificationRequest{NotificationId: social.ID, Note: "phone"}); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("practitioner ack for another agency: %v", err)
	}
	resp, err := e.client.AcknowledgeNotification(bearer(manager), &notifyv1.AcknowledgeNotificationRequest{NotificationId: social.ID, Note: "by phone to duty senior"})
	if err != nil || resp.GetNotification().GetAcknowledgedBy() == "" {
		t.Fatalf("manager ack: %v %v", resp, err)
	}
	again, err := e.client.AcknowledgeNotification(bearer(manager), &notifyv1.AcknowledgeNotificationRequest{NotificationId: social.ID, Note: "again"})
	if err != nil || !again.GetAlreadyAcknowledged() || again.GetNotification().GetAcknowledgementNote() != "by phone to duty senior" {
		t.Fatalf("second ack: %v %v", again, err)
	}
	// The audit trail learns it was a manager acting for the agency, not the agency.
	e.waitFor(t, "acknowledged event", func() bool { return len(e.streamEvents(t, "mash.notification.acknowledged")) > 0 })
	var acked eventsv1.NotificationEvent
	for _, env := range e.streamEvents(t, "mash.notification.acknowledged") {
		if err := env.GetPayload().UnmarshalTo(&acked); err == nil && acked.GetNotificationId() == social.ID {
			break
		}
	}
	if acked.GetNotificationId() != social.ID || acked.GetActorRole() != string(auth.RoleManager) || !strings.HasPrefix(acked.GetActor(), "client:") {
		t.Fatalf("acknowledged event: actor %q in role %q", acked.GetActor(), acked.GetActorRole())
	}
	// Bad ids and filters.
	code, body := httpDo(t, "GET", e.httpURL+"/v1/notifications/not-a-uuid", manager, "")
	if code != 400 || !strings.Contains(body, "notificationId") {
		t.Fatalf("bad id: %d %s", code, body)
	}
	code, body = httpDo(t, "GET", e.httpURL+"/v1/notifications?state=LOST&pageSize=x", manager, "")
	if code != 400 || !strings.Contains(body, `"state"`) || !strings.Contains(body, "pageSize") {
		t.Fatalf("bad filters: %d %s", code, body)
	}
	// Directory: referrers may not change it; bad entries name every field; a rotated secret
	// is returned once and the change is recorded.
	code, _ = httpDo(t, "PUT", e.httpURL+"/v1/agencies/new-team", police, `{"agency":{"partnership":"rhondda-cynon-taf"},"reason":"x"}`)
	if code != 403 {
		t.Fatalf("referrer changed directory: %d", code)
	}
	code, body = httpDo(t, "PUT", e.httpURL+"/v1/agencies/new-team", manager, `{"agency":{"partnership":"rhondda-cynon-taf","channel":"WEBHOOK","url":"http://example.org/hook"}}`)
	for _, f := range []string{`"reason"`, `"agency.name"`, `"agency.roles"`, `"agency.url"`, `"agency.rotateSecret"`} {
		if code != 400 || !strings.Contains(body, f) {
			t.Fatalf("bad agency: want %s in %d %s", f, code, body)
		}
	}
	code, body = httpDo(t, "PUT", e.httpURL+"/v1/agencies/rct-camhs", manager,
		`{"agency":{"partnership":"rhondda-cynon-taf","name":"CAMHS","roles":["camhs"],"channel":"WEBHOOK","url":"https://camhs.example.test/hook"},"reason":"new team","rotateSecret":true}`)
	if code != 200 || !strings.Contains(body, `"secret":"`) || !strings.Contains(body, `"pendingChange"`) || !strings.Contains(body, `"newAgency":true`) {
		t.Fatalf("put agency: %d %s", code, body)
	}
	var put notifyv1.PutAgencyResponse
	if err := protojson.Unmarshal([]byte(body), &put); err != nil {
		t.Fatal(err)
	}
	if got := e.approve(t, put.GetPendingChange().GetId()); !got.GetAgency().GetHasSecret() {
		t.Fatalf("approved agency: %v", got)
	}
	code, body = httpDo(t, "GET", e.httpURL+"/v1/agencies?partnership=rhondda-cynon-taf", manager, "")
	if code != 200 || strings.Contains(body, `"secret"`) || !strings.Contains(body, "rct-camhs") {
		t.Fatalf("list agencies: %d %s", code, body)
	}
	// An entry sent to another agency's address is refused, naming the field; the path's id
	// is the agency's when the body leaves it out.
	code, body = httpDo(t, "PUT", e.httpURL+"/v1/agencies/rct-camhs", manager, `{"agency":{"id":"rct-csc","name":"CAMHS"},"reason":"x"}`)
	if code != 400 || !strings.Contains(body, `"agency.id"`) {
		t.Fatalf("put agency under another id: %d %s", code, body)
	}
	// A removal takes its partnership and reason from the query or, as it always has, a
	// JSON body; the query wins.
	code, body = httpDo(t, "DELETE", e.httpURL+"/v1/agencies/no-such-team?reason=gone", manager, `{"partnership":"rhondda-cynon-taf","reason":"ignored"}`)
	if code != 404 {
		t.Fatalf("remove with a body: %d %s, want the agency not found", code, body)
	}
	code, body = httpDo(t, "DELETE", e.httpURL+"/v1/agencies/no-such-team", manager, `{"partnerships":"x"}`)
	if code != 400 || !strings.Contains(body, `"partnerships"`) {
		t.Fatalf("remove with a bad body: %d %s", code, body)
	}
	// A state filter may be given without its prefix, in any case.
	for _, state := range []string{"pending", "PENDING", "DIRECTORY_CHANGE_PENDING"} {
		if code, body := httpDo(t, "GET", e.httpURL+"/v1/agencies/-/changes?state="+state, manager, ""); code != 200 {
			t.Fatalf("changes ?state=%s: %d %s", state, code, body)
		}
	}
	if code, body := httpDo(t, "GET", e.httpURL+"/v1/agencies/-/changes?state=LOST", manager, ""); code != 400 || !strings.Contains(body, `"state"`) {
		t.Fatalf("changes ?state=LOST: %d %s", code, body)
	}
	changes, err := store.New(e.pool).DirectoryChanges(context.Background(), partnership)
	if err != nil {
		t.Fatal(err)
	}
	last := changes[len(changes)-1]
	if last.Agency != "rct-camhs" || !strings.HasSuffix(last.Reason, ": new team") || !strings.Contains(last.ChangedBy, "manager") || strings.Contains(string(last.After), "secret\":\"") {
		t.Fatalf("directory change: %+v", last)
	}
}

// A role no agency fills is never silently dropped: it is listed as failed and the duty
// manager is told at once; once the directory has the agency, a retry re-addresses it.
func TestUnroutableRoleEscalatesAndRetryReaddresses(t *testing.T) {
	e := newEnv(t)
	ref := e.referral(t, func(r *intakev1.Referral) { r.AgencyKind = "health" })
	e.decide(t, confirmed, ref, uuid.NewString(), 1, rulesv1.Level_LEVEL_3A, rulesv1.Rag_RAG_AMBER, "camhs")
	ns := e.settled(t, ref.GetId(), 4)
	var gap store.Notification
	for _, n := range ns {
		if n.Kind == "ACTION" {
			gap = n
		}
	}
	if gap.State != store.StateFailed || gap.Agency != "" || !strings.Contains(gap.LastError, "fills role camhs") {
		t.Fatalf("unroutable: %+v", summarise(ns))
	}
	if countKind(ns, "ESCALATION", "rct-duty-manager") != 1 {
		t.Fatalf("duty manager not told: %v", summarise(ns))
	}
	manager := e.token(t, "rct-mash", auth.RoleManager)
	if _, err := e.client.RetryNotification(bearer(manager), &notifyv1.RetryNotificationRequest{NotificationId: gap.ID, Reason: "try"}); status.Code(err) != codes.Aborted {
		t.Fatalf("retry with the gap still there: %v", err)
	}
	camhs := newReceiver(t)
	put, err := e.client.PutAgency(bearer(manager), &notifyv1.PutAgencyRequest{Reason: "CAMHS joins", RotateSecret: true, Agency: &notifyv1.Agency{
		Id: "rct-camhs", Partnership: partnership, Name: "CAMHS", Roles: []string{"camhs"}, Channel: notifyv1.ChannelKind_WEBHOOK, Url: camhs.srv.URL}})
	if err != nil {
		t.Fatal(err)
	}
	e.approve(t, put.GetPendingChange().GetId())
	camhs.secret = put.GetSecret()
	if _, err := e.client.RetryNotification(bearer(manager), &notifyv1.RetryNotificationRequest{NotificationId: gap.ID, Reason: "CAMHS added"}); err != nil {
		t.Fatal(err)
	}
	e.waitFor(t, "CAMHS delivery", func() bool { return len(camhs.deliveries()) == 1 })
	if m := camhs.deliveries()[0].msg; m.GetAgency() != "rct-camhs" || m.GetDecision().GetLevel() != "LEVEL_3A" {
		t.Fatalf("re-addressed message: %+v", m)
	}
	// The retry is on the trail as the manager's, in the manager's role.
	e.waitFor(t, "retried event", func() bool { return len(e.streamEvents(t, "mash.notification.retried")) > 0 })
	var retried eventsv1.NotificationEvent
	if err := e.streamEvents(t, "mash.notification.retried")[0].GetPayload().UnmarshalTo(&retried); err != nil ||
		retried.GetActorRole() != string(auth.RoleManager) || !strings.HasPrefix(retried.GetActor(), "client:") {
		t.Fatalf("retried event: actor %q in role %q (%v)", retried.GetActor(), retried.GetActorRole(), err)
	}
}

// The demo directory the run command loads is valid and covers every role the built-in rule
// pack names, so a demo referral never meets an unroutable role.
func TestDemoDirectoryCoversTheDefaultPack(t *testing.T) {
	src, err := os.ReadFile("../../scripts/demo/directory.yaml")
	if err != nil {
		t.Fatal(err)
	}
	f, problems := directory.Parse(src, func(string) string { return "" })
	if len(problems) > 0 {
		t.Fatalf("demo directory: %v", problems)
	}
	pack, err := os.ReadFile("../rules/packs/default.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`agencies: \[([^\]]*)\]`).FindAllStringSubmatch(string(pack), -1) {
		for _, role := range strings.Split(m[1], ",") {
			if role = strings.TrimSpace(role); role != "" && len(directory.Resolve(f.Agencies, role, "")) == 0 {
				t.Errorf("no demo agency fills role %s", role)
			}
		}
	}
}

// A police force serves several partnerships but sits in one directory: a referral it makes
// to another partnership still reaches it with its receipt, through its own channel.
func TestReferrerInAnotherPartnershipsDirectory(t *testing.T) {
	e := newEnv(t)
	mt := directory.Partnership{ID: "merthyr-tydfil", DutyManager: "mt-duty"}
	mt.Normalise()
	duty := directory.Agency{ID: "mt-duty", Partnership: "merthyr-tydfil", Name: "Duty manager", Roles: []string{"duty_manager"}, Channel: "nats"}
	duty.Normalise()
	if err := e.svc.LoadDirectory(context.Background(), directory.File{Partnerships: []directory.Partnership{mt}, Agencies: []directory.Agency{duty}}, "test"); err != nil {
		t.Fatal(err)
	}
	ref := e.referral(t, func(r *intakev1.Referral) { r.Partnership, r.AgencyKind = "merthyr-tydfil", "health" })
	for _, n := range e.settled(t, ref.GetId(), 1) {
		if n.Kind == "RECEIPT" && (n.Agency != "south-wales-police" || n.State != store.StateDelivered) {
			t.Fatalf("receipt to %q is %s: %s", n.Agency, n.State, n.LastError)
		}
	}
	if got := len(e.ag.police.ofKind(notifyv1.NotificationKind_RECEIPT)); got != 1 {
		t.Fatalf("police got %d receipts, want 1", got)
	}
}
