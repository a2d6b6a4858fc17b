package intake_test

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/mash-hub/mash/pkg/auth"
	"github.com/mash-hub/mash/pkg/events"
	"github.com/mash-hub/mash/pkg/events/eventstest"
	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
	intakev1 "github.com/mash-hub/mash/proto/mash/intake/v1"
	rulesv1 "github.com/mash-hub/mash/proto/mash/rules/v1"
	"github.com/mash-hub/mash/services/intake"
)

// TestRecommendationMarksTheReferralDecided: the rules service's recommendation, taken by
// the decided consumer's typed handler, shows the referrer that its referral was decided,
// once; a redelivered older event changes nothing.
func TestRecommendationMarksTheReferralDecided(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	token := e.credential(t, "south-wales-police", "police", auth.RoleReferrer)
	code, body := e.post(t, token, string(exampleJSON(t)))
	if code != 201 {
		t.Fatalf("POST example: %d %s", code, body)
	}
	ack := decode[ackJSON](t, body)

	publish := func(version int64) {
		t.Helper()
		rec := &eventsv1.RecommendationMade{Decision: &rulesv1.Decision{Id: "d-1", ReferralId: ack.ReferralID, Partnership: "default"}}
		env, raw, err := events.NewEnvelope(intake.EventRecommended, "default", ack.ReferralID, version, e.now, events.System("rules"), rec)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.js.PublishMsg(context.Background(), &nats.Msg{Subject: intake.EventRecommended, Data: raw},
			jetstream.WithMsgID(env.GetEventId())); err != nil {
			t.Fatal(err)
		}
		eventstest.Drained(t, e.js, intakeDecidedDurable)
	}
	read := func() *intakev1.Referral {
		t.Helper()
		code, body := e.get(t, token, "/v1/referrals/"+ack.ReferralID)
		if code != 200 {
			t.Fatalf("GET: %d %s", code, body)
		}
		var got intakev1.Referral
		if err := protojson.Unmarshal([]byte(body), &got); err != nil {
			t.Fatal(err)
		}
		return &got
	}

	publish(3)
	if got := read(); got.GetStatus() != intakev1.ReferralStatus_DECIDED || got.GetVersion() != 3 {
		t.Fatalf("after the recommendation: status %s version %d, want decided at version 3", got.GetStatus(), got.GetVersion())
	}
	publish(2)
	if got := read(); got.GetVersion() != 3 {
		t.Fatalf("an older recommendation moved the version to %d", got.GetVersion())
	}
}

// intakeDecidedDurable is the decided consumer's durable name (bus.go).
const intakeDecidedDurable = "intake-status"
