package notify_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/mash-hub/mash/pkg/auth"
	"github.com/mash-hub/mash/pkg/events"
	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
	intakev1 "github.com/mash-hub/mash/proto/mash/intake/v1"
	notifyv1 "github.com/mash-hub/mash/proto/mash/notify/v1"
	triagev1 "github.com/mash-hub/mash/proto/mash/triage/v1"
	"github.com/mash-hub/mash/services/notify"
	"github.com/mash-hub/mash/services/notify/directory"
	"github.com/mash-hub/mash/services/notify/store"
)

// research publishes mash.research.requested: hub staff ask agency a question about ref.
func (e *env) research(t testing.TB, referralID, agency, question string, due time.Time) (*triagev1.InformationRequest, *eventsv1.Envelope) {
	t.Helper()
	r := &triagev1.InformationRequest{Id: uuid.Must(uuid.NewV7()).String(), ReferralId: referralID, Partnership: partnership, Agency: agency,
		Question: question, Due: timestamppb.New(due), State: triagev1.InformationRequestState_REQUESTED, RequestedBy: "practitioner:rct-mash/jo",
		RequestedAt: timestamppb.New(e.clock.Now())}
	env := e.publish(t, "mash.research.requested", referralID, 2, &eventsv1.InformationRequestChanged{Request: r, Actor: "jo"})
	return r, env
}

func noEncompass(r *intakev1.Referral) { r.AgencyKind = "health" }

func ofKindTo(ns []store.Notification, kind, agency string) []store.Notification {
	var out []store.Notification
	for _, n := range ns {
		if n.Kind == kind && n.Agency == agency {
			out = append(out, n)
		}
	}
	return out
}

// A research request reaches the addressed agency once, through its own channel, signed,
// with the question, the request id, the deadline and how to answer; redelivered and
// re-emitted events (before and after a restart) send nothing more. Unanswered by its
// deadline it escalates to the duty manager; answered (by any route) it does not.
func TestResearchRequestNotifiesTheAgencyExactlyOnce(t *testing.T) {
	e := newEnv(t)
	ref := e.referral(t, noEncompass)
	e.settled(t, ref.GetId(), 1) // the receipt
	due := e.clock.Now().Add(30 * time.Hour).UTC().Truncate(time.Second)
	req, env := e.research(t, ref.GetId(), "rct-csc", "Is the family known to children's services? Any open plan?", due)
	var n store.Notification
	e.waitFor(t, "the information request", func() bool {
		got := ofKindTo(e.settled(t, ref.GetId(), 2), "INFORMATION_REQUEST", "rct-csc")
		if len(got) == 1 {
			n = got[0]
		}
		return len(got) == 1
	})
	if n.State != store.StateDelivered || n.Role != notify.RoleResearch || n.AckDue == nil || !n.AckDue.Equal(due) || n.DedupeKey != "research:"+req.GetId() {
		t.Fatalf("notification: %+v", n)
	}
	if n.LawfulBasis == "" || n.PayloadSHA256 == "" || n.ConsentStatus == "" || !strings.Contains(n.Purpose, req.GetId()) {
		t.Fatalf("share record: %+v", n)
	}

	// Redelivery under a new message id, a re-emitted copy, and the same after a restart.
	raw, _ := protoMarshal(env)
	e.publishRaw(t, "mash.research.requested", uuid.NewString(), raw)
	e.restart()
	e.publishRaw(t, "mash.research.requested", uuid.NewString(), raw)
	e.drained(t, "notify")
	if got := ofKindTo(e.settled(t, ref.GetId(), 2), "INFORMATION_REQUEST", "rct-csc"); len(got) != 1 {
		t.Fatalf("after redelivery: %d information requests", len(got))
	}
	ds := e.ag.social.ofKind(notifyv1.NotificationKind_INFORMATION_REQUEST)
	if len(ds) != 1 || len(e.ag.social.deliveries()) != 1 {
		t.Fatalf("social care got %d deliveries (%d information requests), want 1", len(e.ag.social.deliveries()), len(ds))
	}
	d := ds[0]
	m := d.msg
	r := m.GetInformationRequest()
	if d.key != n.ID || d.kind != "information-request" || r.GetRequestId() != req.GetId() || r.GetQuestion() != req.GetQuestion() ||
		!r.GetDue().AsTime().Equal(due) || r.GetAnswerPath() != "/v1/information-requests/"+req.GetId()+"/answer" || r.GetAnswerSubject() != "" {
		t.Fatalf("delivered request: key %q kind %q %s", d.key, d.kind, d.body)
	}
	if !strings.Contains(d.body, req.GetQuestion()) || !strings.Contains(d.body, req.GetId()) || m.GetReference() != ref.GetReference() {
		t.Fatalf("signed body lacks the question or request id: %s", d.body)
	}
	if m.GetChild().GetGivenName() == "" || m.GetDecision() != nil || len(m.GetConcerns()) > 0 || m.GetNarrative() != "" || m.GetReferrer() != nil {
		t.Fatalf("research view is not minimal: %s", d.body)
	}
	if m.GetShare().GetLawfulBasis() == "" || !strings.Contains(strings.Join(m.GetShare().GetFields(), ","), "research") {
		t.Fatalf("share basis: %s", d.body)
	}

	// A second request, answered by API in triage, closes its notification; the first,
	// unanswered, escalates at its deadline, once.
	answered, _ := e.research(t, ref.GetId(), "south-wales-police", "Any incidents at the address this year?", due)
	e.waitFor(t, "the second request delivered", func() bool { return len(e.ag.police.ofKind(notifyv1.NotificationKind_INFORMATION_REQUEST)) == 1 })
	answered.State, answered.Answer, answered.AnsweredBy = triagev1.InformationRequestState_ANSWERED, "two call-outs", "agency:south-wales-police"
	e.publish(t, "mash.research.answered", ref.GetId(), 0, &eventsv1.InformationRequestChanged{Request: answered})
	e.waitFor(t, "the answered request acknowledged", func() bool {
		for _, x := range ofKindTo(e.rows(t, ref.GetId()), "INFORMATION_REQUEST", "south-wales-police") {
			return x.AcknowledgedAt != nil && strings.Contains(x.AcknowledgedBy, "answered")
		}
		return false
	})
	// The first is acknowledged on receipt by the agency's system, but never answered: a
	// receipt is not an answer, so it still escalates.
	if _, _, err := e.svc.Acknowledge(context.Background(), n.ID, auth.Actor{ID: "agency:rct-csc", Role: auth.ActorRoleAgency}, "received"); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(29 * time.Hour)
	if k, err := e.svc.EscalateDue(context.Background()); err != nil || k != 0 {
		t.Fatalf("escalated %d before the deadline: %v", k, err)
	}
	e.clock.Advance(2 * time.Hour)
	if k, err := e.svc.EscalateDue(context.Background()); err != nil || k != 1 {
		t.Fatalf("escalated %d at the deadline, want 1 (the unanswered request): %v", k, err)
	}
	e.waitFor(t, "the escalation delivered", func() bool { return len(e.ag.duty.deliveries()) == 1 })
	esc := e.ag.duty.deliveries()[0].msg
	if esc.GetAboutNotificationId() != n.ID || esc.GetAboutAgency() != "rct-csc" || !strings.Contains(esc.GetNote(), "not answered") {
		t.Fatalf("escalation: %+v", esc)
	}
}

// A request about a referral notify has not received yet waits for it, as a decision does.
func TestResearchRequestBeforeItsReferral(t *testing.T) {
	e := newEnv(t)
	id := uuid.NewString()
	req, _ := e.research(t, id, "rct-csc", "Known to you?", e.clock.Now().Add(24*time.Hour))
	// The request is taken (and held back: it cannot be acknowledged yet) before its referral exists.
	e.waitFor(t, "notify to take the request", func() bool {
		c, err := e.js.Consumer(context.Background(), events.StreamName, "notify")
		if err != nil {
			return false
		}
		ci, err := c.Info(context.Background())
		return err == nil && ci.NumPending == 0 && ci.Delivered.Stream > 0
	})
	e.referral(t, noEncompass, func(r *intakev1.Referral) { r.Id = id })
	e.waitFor(t, "the request after its referral", func() bool {
		return len(e.ag.social.ofKind(notifyv1.NotificationKind_INFORMATION_REQUEST)) == 1
	})
	if got := e.ag.social.ofKind(notifyv1.NotificationKind_INFORMATION_REQUEST)[0].msg.GetInformationRequest().GetRequestId(); got != req.GetId() {
		t.Fatalf("request id %q", got)
	}
}

// An agency in no directory: the request is recorded as unroutable and the duty manager told
// at once; once the agency joins, a retry re-addresses it, still due by the deadline.
func TestResearchRequestToUnknownAgencyIsUnroutable(t *testing.T) {
	e := newEnv(t)
	ref := e.referral(t, noEncompass)
	due := e.clock.Now().Add(30 * time.Hour).UTC().Truncate(time.Second)
	req, _ := e.research(t, ref.GetId(), "cwm-taf-housing", "Any tenancy concerns?", due)
	var gap store.Notification
	e.waitFor(t, "unroutable request and escalation", func() bool {
		ns := e.settled(t, ref.GetId(), 3)
		for _, x := range ns {
			if x.Kind == "INFORMATION_REQUEST" {
				gap = x
			}
		}
		return gap.ID != "" && countKind(ns, "ESCALATION", "rct-duty-manager") == 1
	})
	if gap.State != store.StateFailed || gap.Agency != "" || gap.Role != "research:cwm-taf-housing" || !strings.Contains(gap.LastError, "cwm-taf-housing") ||
		!strings.Contains(gap.LastError, req.GetId()) {
		t.Fatalf("unroutable: %+v", gap)
	}
	e.waitFor(t, "the duty manager told", func() bool { return len(e.ag.duty.deliveries()) == 1 })

	housing := newReceiver(t)
	manager := e.token(t, "rct-mash", auth.RoleManager)
	put, err := e.client.PutAgency(bearer(manager), &notifyv1.PutAgencyRequest{Reason: "housing joins", RotateSecret: true, Agency: &notifyv1.Agency{
		Id: "cwm-taf-housing", Partnership: partnership, Name: "Housing", Roles: []string{"housing"}, Channel: notifyv1.ChannelKind_WEBHOOK, Url: housing.srv.URL}})
	if err != nil {
		t.Fatal(err)
	}
	e.approve(t, put.GetPendingChange().GetId())
	housing.secret = put.GetSecret()
	if _, err := e.client.RetryNotification(bearer(manager), &notifyv1.RetryNotificationRequest{NotificationId: gap.ID, Reason: "housing added"}); err != nil {
		t.Fatal(err)
	}
	e.waitFor(t, "housing delivery", func() bool { return len(housing.deliveries()) == 1 })
	m := housing.deliveries()[0].msg
	if m.GetAgency() != "cwm-taf-housing" || m.GetInformationRequest().GetRequestId() != req.GetId() || !m.GetAcknowledgeBy().AsTime().Equal(due) {
		t.Fatalf("re-addressed: %s", housing.deliveries()[0].body)
	}
	copies := ofKindTo(e.rows(t, ref.GetId()), "INFORMATION_REQUEST", "cwm-taf-housing")
	if len(copies) != 1 || copies[0].AckDue == nil || !copies[0].AckDue.Equal(due) {
		t.Fatalf("re-addressed notification: %+v", copies)
	}
}

// addBusAgencies adds agencies that receive on the bus.
func (e *env) addBusAgencies(t testing.TB, ids ...string) {
	t.Helper()
	var f directory.File
	for _, id := range ids {
		a := directory.Agency{ID: id, Partnership: partnership, Name: id, Roles: []string{"youth_justice"}, Channel: "nats"}
		a.Normalise()
		f.Agencies = append(f.Agencies, a)
	}
	if err := e.svc.LoadDirectory(context.Background(), f, "test"); err != nil {
		t.Fatal(err)
	}
	// The directory has agencies already, so the file's new ones wait for a manager.
	e.approvePending(t)
}

func (e *env) answerOnBus(t testing.TB, agency string, body []byte, msgID string) {
	t.Helper()
	var opts []jetstream.PublishOpt
	if msgID != "" {
		opts = append(opts, jetstream.WithMsgID(msgID))
	}
	if _, err := e.js.PublishMsg(context.Background(), &nats.Msg{Subject: "mash.notify." + agency + ".answer", Data: body}, opts...); err != nil {
		t.Fatal(err)
	}
}

func answerBody(requestID, answer string) []byte {
	b, _ := json.Marshal(map[string]string{"requestId": requestID, "answer": answer})
	return b
}

// An agency on the bus answers on mash.notify.<agency>.answer: exactly one
// mash.research.answer_received event, naming the agency of the subject, also when the
// reply comes twice; malformed replies, replies too long, and replies from an agency the
// request was not sent to produce none and do not stop the listener.
func TestAnswerOnTheBus(t *testing.T) {
	e := newEnv(t)
	e.addBusAgencies(t, "rct-yjs", "rct-other")
	ref := e.referral(t, noEncompass)
	req, _ := e.research(t, ref.GetId(), "rct-yjs", "Is the child known to youth justice?", e.clock.Now().Add(30*time.Hour))
	var n store.Notification
	e.waitFor(t, "the request published on the bus", func() bool {
		got := ofKindTo(e.rows(t, ref.GetId()), "INFORMATION_REQUEST", "rct-yjs")
		if len(got) == 1 && got[0].State == store.StateDelivered {
			n = got[0]
			return true
		}
		return false
	})
	// The agency's copy on its subject says where to answer.
	stream, err := e.js.Stream(context.Background(), events.AgencyStreamName)
	if err != nil {
		t.Fatal(err)
	}
	last, err := stream.GetLastMsgForSubject(context.Background(), "mash.notify.rct-yjs")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(last.Data), `"answerSubject":"mash.notify.rct-yjs.answer"`) || !strings.Contains(string(last.Data), req.GetId()) {
		t.Fatalf("bus copy: %s", last.Data)
	}

	// Malformed first: none may produce an event or stop the listener.
	for _, bad := range [][]byte{
		[]byte(`{not json`),
		[]byte(`"just a string"`),
		[]byte(`{"answer": "no request id"}`),
		[]byte(`{"requestId": 42, "answer": "wrong type"}`),
		answerBody("not-a-uuid", "x"),
		answerBody(req.GetId(), ""),
		answerBody(req.GetId(), "   "),
		answerBody(req.GetId(), strings.Repeat("a", notify.MaxAnswerChars+1)),
	} {
		e.answerOnBus(t, "rct-yjs", bad, "")
	}
	// Another agency answering a request not sent to it is refused, whatever the body says.
	b, _ := json.Marshal(map[string]string{"requestId": req.GetId(), "answer": "we know them", "agency": "rct-yjs"})
	e.answerOnBus(t, "rct-other", b, "")

	// The real answer, twice without a message id (two stream messages), and once more with
	// a message id published twice (the stream keeps one).
	answer := strings.Repeat("Known: ", 10) + "— cautioned in 2025; YOS worker assigned."
	e.answerOnBus(t, "rct-yjs", answerBody(req.GetId(), answer), "")
	e.answerOnBus(t, "rct-yjs", answerBody(req.GetId(), answer), "")
	e.answerOnBus(t, "rct-yjs", answerBody(req.GetId(), answer), "reply-1")
	e.answerOnBus(t, "rct-yjs", answerBody(req.GetId(), answer), "reply-1")
	e.waitFor(t, "answer_received", func() bool { return len(e.streamEvents(t, "mash.research.answer_received")) >= 1 })
	e.answersDrained(t)
	// The same stream messages delivered again (the durable lost, as after a broker
	// failure: every reply is redelivered to a fresh process), and the reply once more.
	e.stop()
	if err := e.js.DeleteConsumer(context.Background(), events.AgencyStreamName, "notify-answers"); err != nil {
		t.Fatal(err)
	}
	e.start()
	e.answerOnBus(t, "rct-yjs", answerBody(req.GetId(), answer), "")
	e.answersDrained(t)
	e.outboxRelayed(t)
	evs := e.streamEvents(t, "mash.research.answer_received")
	if len(evs) != 1 {
		t.Fatalf("answer_received events: %d, want 1", len(evs))
	}
	var ev eventsv1.InformationAnswerReceived
	if err := evs[0].GetPayload().UnmarshalTo(&ev); err != nil {
		t.Fatal(err)
	}
	if ev.GetRequestId() != req.GetId() || ev.GetAgency() != "rct-yjs" || ev.GetAnswer() != answer || ev.GetChannel() != "nats" ||
		evs[0].GetReferralId() != ref.GetId() || evs[0].GetPartnership() != partnership {
		t.Fatalf("event: %v on %v", &ev, evs[0])
	}
	// The answer acknowledged the request, so it will not escalate.
	got, err := store.New(e.pool).Get(context.Background(), n.ID)
	if err != nil || got.AcknowledgedAt == nil || !strings.Contains(got.AcknowledgedBy, "rct-yjs") {
		t.Fatalf("request not acknowledged by the answer: %+v %v", got, err)
	}
	if len(e.streamEvents(t, "mash.notification.acknowledged")) != 1 {
		t.Fatalf("acknowledged events: %d", len(e.streamEvents(t, "mash.notification.acknowledged")))
	}

	// The listener is still alive after all that: a second request's answer goes through.
	req2, _ := e.research(t, ref.GetId(), "rct-other", "Anything else?", e.clock.Now().Add(30*time.Hour))
	e.waitFor(t, "the second request", func() bool { return len(ofKindTo(e.rows(t, ref.GetId()), "INFORMATION_REQUEST", "rct-other")) == 1 })
	e.answerOnBus(t, "rct-other", answerBody(req2.GetId(), "Nothing known."), "")
	e.waitFor(t, "the second answer", func() bool { return len(e.streamEvents(t, "mash.research.answer_received")) == 2 })
}

// answersDrained waits until the answer listener has settled every reply on the stream.
func (e *env) answersDrained(t testing.TB) {
	t.Helper()
	e.waitFor(t, "the answer listener to drain", func() bool {
		c, err := e.js.Consumer(context.Background(), events.AgencyStreamName, "notify-answers")
		if err != nil {
			return false
		}
		ci, err := c.Info(context.Background())
		return err == nil && ci.NumPending == 0 && ci.NumAckPending == 0 && ci.Delivered.Stream > 0
	})
}

// A deployment whose notify consumer was created before research existed has its filter
// widened at start, and takes research requests from then on.
func TestExistingConsumerTakesResearchAfterUpgrade(t *testing.T) {
	e := newEnv(t)
	e.stop()
	ctx := context.Background()
	// Created or updated: the service may have stopped before its consumer was first made.
	if _, err := e.js.CreateOrUpdateConsumer(ctx, events.StreamName, jetstream.ConsumerConfig{Durable: "notify", DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy: jetstream.AckExplicitPolicy, AckWait: 10 * time.Second, MaxDeliver: 8, MaxAckPending: 256,
		FilterSubjects: []string{"mash.referral.received", "mash.recommendation.made", "mash.decision.made"}}); err != nil {
		t.Fatal(err)
	}
	e.start()
	ref := e.referral(t, noEncompass)
	e.research(t, ref.GetId(), "rct-csc", "Known?", e.clock.Now().Add(24*time.Hour))
	e.waitFor(t, "the request", func() bool { return len(e.ag.social.ofKind(notifyv1.NotificationKind_INFORMATION_REQUEST)) == 1 })
	info, err := e.js.Consumer(ctx, events.StreamName, "notify")
	if err != nil {
		t.Fatal(err)
	}
	ci, err := info.Info(ctx)
	if err != nil || !strings.Contains(strings.Join(ci.Config.FilterSubjects, ","), "mash.research.requested") {
		t.Fatalf("consumer filter: %v %v", ci.Config.FilterSubjects, err)
	}
}

// An agency that joins another partnership's directory (a regional service serves several)
// is found by a retry too, as the first attempt would now find it.
func TestRetryFindsAnAgencyInAnotherPartnershipsDirectory(t *testing.T) {
	e := newEnv(t)
	ref := e.referral(t, noEncompass)
	due := e.clock.Now().Add(30 * time.Hour).UTC().Truncate(time.Second)
	req, _ := e.research(t, ref.GetId(), "regional-housing", "Any tenancy concerns?", due)
	var gap store.Notification
	e.waitFor(t, "unroutable request", func() bool {
		for _, x := range e.settled(t, ref.GetId(), 3) {
			if x.Kind == "INFORMATION_REQUEST" {
				gap = x
			}
		}
		return gap.ID != ""
	})
	if gap.State != store.StateFailed || gap.Role != "research:regional-housing" {
		t.Fatalf("unroutable: %+v", gap)
	}

	housing := newReceiver(t)
	manager := e.token(t, "rct-mash", auth.RoleManager)
	put, err := e.client.PutAgency(bearer(manager), &notifyv1.PutAgencyRequest{Reason: "regional housing joins", RotateSecret: true, Agency: &notifyv1.Agency{
		Id: "regional-housing", Partnership: "cwm-taf-morgannwg", Name: "Regional housing", Roles: []string{"housing"},
		Channel: notifyv1.ChannelKind_WEBHOOK, Url: housing.srv.URL}})
	if err != nil {
		t.Fatal(err)
	}
	e.approve(t, put.GetPendingChange().GetId())
	housing.secret = put.GetSecret()
	if _, err := e.client.RetryNotification(bearer(manager), &notifyv1.RetryNotificationRequest{NotificationId: gap.ID, Reason: "housing added"}); err != nil {
		t.Fatalf("retry: %v", err)
	}
	e.waitFor(t, "housing delivery", func() bool { return len(housing.deliveries()) == 1 })
	if m := housing.deliveries()[0].msg; m.GetAgency() != "regional-housing" || m.GetInformationRequest().GetRequestId() != req.GetId() {
		t.Fatalf("re-addressed: %s", housing.deliveries()[0].body)
	}
}
