package notify_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/mash-hub/mash/pkg/auth"
	"github.com/mash-hub/mash/pkg/events"
	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
	intakev1 "github.com/mash-hub/mash/proto/mash/intake/v1"
	notifyv1 "github.com/mash-hub/mash/proto/mash/notify/v1"
	rulesv1 "github.com/mash-hub/mash/proto/mash/rules/v1"
	triagev1 "github.com/mash-hub/mash/proto/mash/triage/v1"
	"github.com/mash-hub/mash/services/notify"
	"github.com/mash-hub/mash/services/notify/directory"
	"github.com/mash-hub/mash/services/notify/store"
)

// partnerToken signs in a person of a partner agency, as the console's partner view does.
func (e *env) partnerToken(t testing.TB, agency, kind string) string {
	t.Helper()
	_, token, err := e.auth.CreateSessionOfKind(context.Background(), "p-"+uuid.NewString()[:8], "Partner person", auth.RolePartner, agency, kind, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return token
}

func (e *env) inbox(t testing.TB) notifyv1.AgencyInboxServiceClient {
	t.Helper()
	conn, err := grpc.NewClient(e.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return notifyv1.NewAgencyInboxServiceClient(conn)
}

// A partner agency's person reads exactly what its role was sent, and nothing of any other
// agency's: another agency's notification, its message, its acknowledgement and its list
// are all not found or empty, whatever the filter asks. Hub staff see the share record but
// not the message. Each read of a message leaves an access entry.
func TestPartnerSeesOnlyItsOwnAgencysNotifications(t *testing.T) {
	e := newEnv(t)
	ref := e.referral(t, noEncompass)
	e.decide(t, confirmed, ref, uuid.NewString(), 1, rulesv1.Level_LEVEL_4, rulesv1.Rag_RAG_AMBER, "police", "childrens_social_care")
	ns := e.settled(t, ref.GetId(), 3)
	police, social := ofKindTo(ns, "ACTION", "south-wales-police"), ofKindTo(ns, "ACTION", "rct-csc")
	if len(police) != 1 || len(social) != 1 {
		t.Fatalf("notifications: %+v", ns)
	}
	swp := e.partnerToken(t, "south-wales-police", "police")
	inbox := e.inbox(t)

	got, err := inbox.GetNotificationMessage(bearer(swp), &notifyv1.GetNotificationMessageRequest{NotificationId: police[0].ID})
	if err != nil {
		t.Fatalf("own message: %v", err)
	}
	m := got.GetMessage()
	if m.GetNotificationId() != police[0].ID || m.GetAgency() != "south-wales-police" || m.GetRole() != "police" || m.GetChild().GetGivenName() == "" ||
		m.GetNarrative() == "" || m.GetDecision().GetLevel() != "LEVEL_4" || got.GetNotification().GetId() != police[0].ID {
		t.Fatalf("police's message is not the full police view: %v", got)
	}
	// The exact bytes the channel carried, field for field: the share's digest matches.
	if got.GetNotification().GetShare().GetPayloadSha256() != police[0].PayloadSHA256 {
		t.Fatalf("share digest %s, stored %s", got.GetNotification().GetShare().GetPayloadSha256(), police[0].PayloadSHA256)
	}

	notFound := func(what string, err error) {
		t.Helper()
		if status.Code(err) != codes.NotFound {
			t.Fatalf("%s: got %v, want NotFound", what, err)
		}
	}
	_, err = inbox.GetNotificationMessage(bearer(swp), &notifyv1.GetNotificationMessageRequest{NotificationId: social[0].ID})
	notFound("another agency's message", err)
	_, err = e.client.GetNotification(bearer(swp), &notifyv1.GetNotificationRequest{NotificationId: social[0].ID})
	notFound("another agency's notification", err)
	_, err = e.client.AcknowledgeNotification(bearer(swp), &notifyv1.AcknowledgeNotificationRequest{NotificationId: social[0].ID})
	notFound("acknowledging another agency's notification", err)
	list, err := e.client.ListNotifications(bearer(swp), &notifyv1.ListNotificationsRequest{Agency: "rct-csc", ReferralId: ref.GetId()})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range list.GetNotifications() {
		if n.GetAgency() != "south-wales-police" {
			t.Fatalf("a partner of south-wales-police listed %s's notification %s", n.GetAgency(), n.GetId())
		}
	}
	if len(list.GetNotifications()) == 0 {
		t.Fatal("the partner's own notifications are missing from its list")
	}
	// Another police force's person sees nothing of this one's.
	other := e.partnerToken(t, "gwent-police", "police")
	_, err = inbox.GetNotificationMessage(bearer(other), &notifyv1.GetNotificationMessageRequest{NotificationId: police[0].ID})
	notFound("another force's message", err)
	// Hub staff read the share record, not the message.
	_, err = inbox.GetNotificationMessage(bearer(e.token(t, "rct-mash", auth.RoleManager)), &notifyv1.GetNotificationMessageRequest{NotificationId: police[0].ID})
	notFound("a hub manager reading the message", err)
	// The same over HTTP/JSON.
	if code, body := httpDo(t, http.MethodGet, e.httpURL+"/v1/notifications/"+social[0].ID+"/message", swp, ""); code != http.StatusNotFound {
		t.Fatalf("HTTP read of another agency's message: %d %s", code, body)
	}
	if code, body := httpDo(t, http.MethodGet, e.httpURL+"/v1/notifications/"+police[0].ID+"/message", swp, ""); code != http.StatusOK ||
		!strings.Contains(body, police[0].ID) {
		t.Fatalf("HTTP read of its own message: %d %s", code, body)
	}
	// A partner has no hub role: the directory and retries are refused.
	if _, err := e.client.ListAgencies(bearer(swp), &notifyv1.ListAgenciesRequest{}); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("a partner listing the directory: %v", err)
	}

	// It acknowledges its own, in its own name.
	ack, err := e.client.AcknowledgeNotification(bearer(swp), &notifyv1.AcknowledgeNotificationRequest{NotificationId: police[0].ID, Note: "DS on duty"})
	if err != nil || ack.GetNotification().GetAcknowledgedAt() == nil || !strings.HasPrefix(ack.GetNotification().GetAcknowledgedBy(), auth.UserPrefix) {
		t.Fatalf("acknowledge own: %v %v", ack, err)
	}
	// Each read of a message is on the trail, with the reader's agency.
	e.waitFor(t, "access entries for the message reads", func() bool {
		n := 0
		for _, env := range e.streamEvents(t, "mash.access.notification") {
			var a eventsv1.RecordAccessed
			if err := env.GetPayload().UnmarshalTo(&a); err == nil && a.GetReferralId() == ref.GetId() && a.GetAgency() == "south-wales-police" {
				n++
			}
		}
		return n >= 2
	})
}

// consumerDrained waits until notify's event consumer has applied everything published.
func (e *env) consumerDrained(t testing.TB) {
	t.Helper()
	e.waitFor(t, "the notify consumer to drain", func() bool {
		c, err := e.js.Consumer(context.Background(), events.StreamName, "notify")
		if err != nil {
			return false
		}
		ci, err := c.Info(context.Background())
		return err == nil && ci.NumPending == 0 && ci.NumAckPending == 0
	})
}

// stagePartnership is a partnership whose directory is loaded whole by addStageOwners (a
// directory file bootstraps a partnership that has none; changes to one that has agencies
// wait for a second manager's approval).
const stagePartnership = "merthyr-tydfil"

// addStageOwners loads stagePartnership's directory: the owners of a disagreement's first
// three stages, each with its own receiver (no one owns the partnership's stage), its duty
// manager and the police, at the test's duty manager's and police's receivers.
func (e *env) addStageOwners(t testing.TB) map[string]*receiver {
	t.Helper()
	owners := map[string]*receiver{
		notify.RoleDisagreementPractitioner: newReceiver(t),
		notify.RoleDisagreementTeamManager:  newReceiver(t),
		notify.RoleDisagreementSenior:       newReceiver(t),
	}
	f := directory.File{Partnerships: []directory.Partnership{{ID: stagePartnership, DutyManager: "mt-duty-manager", ConsoleURL: "https://mash.example.test"}},
		Agencies: []directory.Agency{
			{ID: "mt-duty-manager", Partnership: stagePartnership, Name: "Duty manager", Roles: []string{"duty_manager"}, Channel: "webhook",
				URL: e.ag.duty.srv.URL, Secret: []byte(e.ag.duty.secret)},
			{ID: "south-wales-police", Partnership: stagePartnership, Name: "SWP PPU", Roles: []string{"police"}, Channel: "webhook",
				URL: e.ag.police.srv.URL, Secret: []byte(e.ag.police.secret)},
		}}
	for role, r := range owners {
		f.Agencies = append(f.Agencies, directory.Agency{ID: "rct-" + strings.ReplaceAll(role, "_", "-"), Partnership: stagePartnership, Name: role,
			Roles: []string{role}, Channel: "webhook", URL: r.srv.URL, Secret: []byte(r.secret)})
	}
	for i := range f.Partnerships {
		f.Partnerships[i].Normalise()
	}
	for i := range f.Agencies {
		f.Agencies[i].Normalise()
	}
	if err := e.svc.LoadDirectory(context.Background(), f, "test"); err != nil {
		t.Fatal(err)
	}
	return owners
}

// disagreement publishes a disagreement event as triage would, at stage.
func (e *env) disagreement(t testing.TB, subject string, d *triagev1.Disagreement, stage triagev1.DisagreementStage, outcome string) *eventsv1.Envelope {
	t.Helper()
	now := e.clock.Now()
	if len(d.Steps) > 0 {
		last := d.Steps[len(d.Steps)-1]
		last.EndedAt, last.Outcome = timestamppb.New(now), outcome
	}
	d.Stage, d.StageDue, d.Version = stage, timestamppb.New(now.Add(48*time.Hour)), d.Version+1
	d.Steps = append(d.Steps, &triagev1.DisagreementStep{Stage: stage, StartedAt: timestamppb.New(now), Due: d.StageDue})
	return e.publish(t, subject, d.GetReferralId(), d.GetVersion(), &eventsv1.DisagreementChanged{Disagreement: d, Actor: "user:pc.jones", ActorRole: "partner"})
}

// Each stage's owner is told when a disagreement reaches it, once, by its own channel, with
// the disagreement and none of the child's record; a stage no one in the directory owns is
// listed as failed and the duty manager told. At its resolution the agency that raised it is
// told what was agreed.
func TestDisagreementStageOwnerIsTold(t *testing.T) {
	e := newEnv(t)
	owners := e.addStageOwners(t)
	ref := e.referral(t, noEncompass, func(r *intakev1.Referral) { r.Partnership = stagePartnership })
	e.settled(t, ref.GetId(), 1)
	d := &triagev1.Disagreement{Id: uuid.Must(uuid.NewV7()).String(), ReferralId: ref.GetId(), Partnership: stagePartnership,
		RaisedByAgency: "south-wales-police", RaisedBy: "user:pc.jones", Reason: "We consider the threshold met for level 4.",
		RaisedAt: timestamppb.New(e.clock.Now())}
	raised := e.disagreement(t, "mash.disagreement.raised", d, triagev1.DisagreementStage_PRACTITIONER, "")

	team := owners[notify.RoleDisagreementPractitioner]
	e.waitFor(t, "the hub's team told", func() bool { return len(team.ofKind(notifyv1.NotificationKind_DISAGREEMENT)) == 1 })
	m := team.ofKind(notifyv1.NotificationKind_DISAGREEMENT)[0].msg
	if g := m.GetDisagreement(); g.GetDisagreementId() != d.GetId() || g.GetRaisedByAgency() != "south-wales-police" || g.GetReason() != d.GetReason() ||
		g.GetStage() != "PRACTITIONER" || g.GetStageDue() == nil || m.GetReference() != ref.GetReference() {
		t.Fatalf("the team's notice: %v", m)
	}
	if m.GetChild() != nil || m.GetDecision() != nil || len(m.GetConcerns()) > 0 || m.GetNarrative() != "" || m.GetReferrer() != nil {
		t.Fatalf("a disagreement notice carries the child's record: %v", m)
	}
	if !strings.HasSuffix(m.GetLink(), "/referrals/"+ref.GetId()) {
		t.Fatalf("link %q", m.GetLink())
	}
	if n := len(owners[notify.RoleDisagreementTeamManager].deliveries()); n != 0 {
		t.Fatalf("the team manager was told %d times before the disagreement reached them", n)
	}

	// Escalated: the team manager hears, with the stage before's outcome; a redelivery of
	// either event tells no one twice.
	esc := e.disagreement(t, "mash.disagreement.escalated", d, triagev1.DisagreementStage_TEAM_MANAGER, "The practitioner stands by level 3a.")
	manager := owners[notify.RoleDisagreementTeamManager]
	e.waitFor(t, "the team manager told", func() bool { return len(manager.ofKind(notifyv1.NotificationKind_DISAGREEMENT)) == 1 })
	if g := manager.ofKind(notifyv1.NotificationKind_DISAGREEMENT)[0].msg.GetDisagreement(); g.GetStage() != "TEAM_MANAGER" ||
		g.GetPreviousOutcome() != "The practitioner stands by level 3a." {
		t.Fatalf("the team manager's notice: %v", g)
	}
	for _, env := range []*eventsv1.Envelope{raised, esc} {
		raw, _ := protoMarshal(env)
		e.publishRaw(t, env.GetType(), uuid.NewString(), raw)
	}
	e.consumerDrained(t)
	if n := len(ofKindTo(e.rows(t, ref.GetId()), "DISAGREEMENT", "rct-hub-team")); n != 1 {
		t.Fatalf("after redelivery the hub's team has %d notices, want 1", n)
	}

	// The partnership stage has no owner in this directory: failed, and the duty manager told.
	e.disagreement(t, "mash.disagreement.escalated", d, triagev1.DisagreementStage_SENIOR_SAFEGUARDING_MANAGER, "deadline passed")
	e.disagreement(t, "mash.disagreement.escalated", d, triagev1.DisagreementStage_PARTNERSHIP, "The senior manager upheld the decision.")
	e.waitFor(t, "the duty manager told of the unowned stage", func() bool { return len(e.ag.duty.ofKind(notifyv1.NotificationKind_ESCALATION)) == 1 })
	var failed []store.Notification
	for _, n := range e.rows(t, ref.GetId()) {
		if n.Kind == "DISAGREEMENT" && n.State == store.StateFailed {
			failed = append(failed, n)
		}
	}
	if len(failed) != 1 || failed[0].Role != notify.RoleDisagreementPartnership {
		t.Fatalf("failed disagreement notices: %+v", failed)
	}
	if !strings.Contains(e.ag.duty.ofKind(notifyv1.NotificationKind_ESCALATION)[0].msg.GetNote(), notify.RoleDisagreementPartnership) {
		t.Fatalf("the duty manager's escalation does not say which stage has no owner: %v", e.ag.duty.ofKind(notifyv1.NotificationKind_ESCALATION)[0].msg)
	}
	e.waitFor(t, "the senior manager told", func() bool {
		return len(owners[notify.RoleDisagreementSenior].ofKind(notifyv1.NotificationKind_DISAGREEMENT)) == 1
	})
	// Resolved: the agency that raised it hears what was agreed, once; no owner is told again.
	d.Resolved, d.Resolution, d.ResolvedAt = true, "A strategy discussion is held today.", timestamppb.New(e.clock.Now())
	resolved := e.publish(t, "mash.disagreement.resolved", d.GetReferralId(), d.GetVersion()+1,
		&eventsv1.DisagreementChanged{Disagreement: d, Actor: "user:mgr.jones", ActorRole: "manager"})
	e.waitFor(t, "the raising agency told of the resolution", func() bool {
		return len(e.ag.police.ofKind(notifyv1.NotificationKind_DISAGREEMENT)) == 1
	})
	if g := e.ag.police.ofKind(notifyv1.NotificationKind_DISAGREEMENT)[0].msg.GetDisagreement(); g.GetResolution() != d.GetResolution() ||
		g.GetResolvedAt() == nil || g.GetDisagreementId() != d.GetId() {
		t.Fatalf("the raising agency's notice: %v", g)
	}
	raw, _ := protoMarshal(resolved)
	e.publishRaw(t, resolved.GetType(), uuid.NewString(), raw)
	// A disagreement raised by an agency outside the directory (through the API) is followed
	// there: its resolution tells no one.
	other := &triagev1.Disagreement{Id: uuid.Must(uuid.NewV7()).String(), ReferralId: ref.GetId(), Partnership: stagePartnership,
		RaisedByAgency: "dyfed-powys-police", Reason: "x", Stage: triagev1.DisagreementStage_PRACTITIONER, Resolved: true, Resolution: "agreed"}
	e.publish(t, "mash.disagreement.resolved", ref.GetId(), 1, &eventsv1.DisagreementChanged{Disagreement: other})
	e.consumerDrained(t)
	if n := len(ofKindTo(e.rows(t, ref.GetId()), "DISAGREEMENT", "south-wales-police")); n != 1 {
		t.Fatalf("the raising agency has %d resolution notices, want 1", n)
	}

	// Everything drained: each owner was told exactly once per stage.
	e.settled(t, ref.GetId(), 7)
	for role, r := range owners {
		if n := len(r.deliveries()); n != 1 {
			t.Errorf("%s was told %d times, want once", role, n)
		}
	}
	var disagreementNotices int
	for _, n := range e.rows(t, ref.GetId()) {
		if n.Kind == "DISAGREEMENT" {
			disagreementNotices++
		}
	}
	// Three owners, the unowned partnership stage, and the raising agency.
	if disagreementNotices != 5 {
		t.Fatalf("%d disagreement notices, want 5", disagreementNotices)
	}
}
