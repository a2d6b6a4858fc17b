package events

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
	intakev1 "github.com/mash-hub/mash/proto/mash/intake/v1"
	"google.golang.org/protobuf/proto"
)

func TestRouterDispatchesTypedPayloads(t *testing.T) {
	r := NewRouter()
	var got []string
	On(r, func(_ context.Context, _ pgx.Tx, env *eventsv1.Envelope, ev *eventsv1.ReferralReceived) error {
		got = append(got, "received "+ev.GetReferral().GetId()+" by "+env.GetActor().GetId())
		return nil
	}, eventsv1.SubjectReferralReceived)
	OnType(r, func(_ context.Context, _ pgx.Tx, env *eventsv1.Envelope, ev *eventsv1.NotificationEvent) error {
		got = append(got, lastTok(env.GetType())+" "+ev.GetAgency())
		return nil
	})
	r.Default = func(_ context.Context, _ pgx.Tx, env *eventsv1.Envelope) error {
		got = append(got, "default "+env.GetType())
		return nil
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	envs := []*eventsv1.Envelope{
		envelope(t, eventsv1.SubjectReferralReceived, &eventsv1.ReferralReceived{Referral: &intakev1.Referral{Id: "r1"}}),
		envelope(t, eventsv1.SubjectNotificationSent, &eventsv1.NotificationEvent{Agency: "police"}),
		envelope(t, eventsv1.SubjectCaseClaimed, &eventsv1.CaseChanged{}),
	}
	for _, env := range envs {
		if err := r.Handle(context.Background(), nil, env); err != nil {
			t.Fatal(err)
		}
	}
	want := "received r1 by user:1|sent police|default mash.case.claimed"
	if g := strings.Join(got, "|"); g != want {
		t.Fatalf("handled %q, want %q", g, want)
	}
	// A payload of another type on a registered subject is an error, not a silent skip.
	bad := envelope(t, eventsv1.SubjectReferralReceived, &eventsv1.CaseChanged{})
	if err := r.Handle(context.Background(), nil, bad); err == nil {
		t.Fatal("a CaseChanged on mash.referral.received was handled as a ReferralReceived")
	}
}

func TestRouterRefusesSubjectsOutsideTheCatalogue(t *testing.T) {
	r := NewRouter()
	h := func(context.Context, pgx.Tx, *eventsv1.Envelope, *eventsv1.DecisionMade) error { return nil }
	On(r, h, eventsv1.SubjectDecisionMade)
	if err := r.Err(); err != nil {
		t.Fatalf("catalogue subject refused: %v", err)
	}
	On(r, h, "mash.decision.taken")              // not in the catalogue
	On(r, h, eventsv1.SubjectRecommendationMade) // carries RecommendationMade, not DecisionMade
	On(r, h, eventsv1.SubjectDecisionMade)       // twice
	err := r.Err()
	for _, want := range []string{"mash.decision.taken", "mash.recommendation.made", "two handlers for mash.decision.made"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Err() = %v, want it to name %s", err, want)
		}
	}
	if got := r.Subjects(); len(got) != 1 || got[0] != eventsv1.SubjectDecisionMade {
		t.Errorf("Subjects() = %v", got)
	}
}

func TestCatalogueHelpers(t *testing.T) {
	if got := Fill(eventsv1.SubjectNotifyAnyAck, "south-wales-police"); got != "mash.notify.south-wales-police.ack" {
		t.Errorf("Fill = %q", got)
	}
	if got := PatternPrefix(eventsv1.SubjectNotifyAny); got != "mash.notify." {
		t.Errorf("PatternPrefix = %q", got)
	}
	if es := Entries("mash.notify.police.answer"); len(es) != 1 || es[0].Producer != "agency" || !es[0].Channel {
		t.Errorf("Entries(mash.notify.police.answer) = %+v", es)
	}
	for _, c := range []struct {
		pattern, subject string
		want             bool
	}{
		{"mash.>", "mash.case.closed", true},
		{"mash.notification.>", "mash.notification.sent", true},
		{"mash.notification.>", "mash.notification", false},
		{"mash.notify.*", "mash.notify.police", true},
		{"mash.notify.*", "mash.notify.police.ack", false},
		{"mash.case.closed", "mash.case.closed", true},
		{"mash.case.closed", "mash.case.claimed", false},
	} {
		if got := SubjectMatches(c.pattern, c.subject); got != c.want {
			t.Errorf("SubjectMatches(%q, %q) = %t", c.pattern, c.subject, got)
		}
	}
	// What triage publishes includes its decisions and case events, and no retired subject.
	pub := strings.Join(Published("triage"), " ")
	if !strings.Contains(pub, eventsv1.SubjectDecisionMade) || !strings.Contains(pub, eventsv1.SubjectCaseClosed) {
		t.Errorf("Published(triage) = %s", pub)
	}
	if strings.Contains(strings.Join(Published("rules"), " "), "mash.triage.") {
		t.Errorf("Published(rules) lists a retired subject: %v", Published("rules"))
	}
}

func envelope(t *testing.T, subject string, payload proto.Message) *eventsv1.Envelope {
	t.Helper()
	p, err := anypb.New(payload)
	if err != nil {
		t.Fatal(err)
	}
	return &eventsv1.Envelope{EventId: "0190d6f0-0000-7000-8000-000000000001", Type: subject, OccurredAt: timestamppb.Now(),
		Actor: Actor("user:1", "practitioner", "hub"), Payload: p}
}

func lastTok(s string) string { return s[strings.LastIndexByte(s, '.')+1:] }
