package triage_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/mash-hub/mash/pkg/events"
	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
	intakev1 "github.com/mash-hub/mash/proto/mash/intake/v1"
	rulesv1 "github.com/mash-hub/mash/proto/mash/rules/v1"
	"github.com/mash-hub/mash/services/triage"
)

// BenchmarkProjectReferralStories measures the triage consumer's projection rate on what
// the pipeline gives it per referral: received, recommended, decided, then twelve agencies
// each sent and delivered (27 events). b.N referrals' events are published as fast as the
// broker takes them while the consumer runs; the clock stops when it has drained. The
// embedded broker syncs each message to disk, so on a slow disk publishing bounds the
// rate: read pg_stat_statements alongside for the projection's own database time.
// Run: go test -run '^$' -bench ProjectReferralStories -benchtime 400x ./services/triage/
func BenchmarkProjectReferralStories(b *testing.B) {
	e := newEnv(b, envOptions{})
	ctx := context.Background()
	const agencies = 12
	b.ResetTimer()
	start := time.Now()
	var acks []jetstream.PubAckFuture
	publish := func(subject, partnership, referralID string, version int64, payload proto.Message) {
		ev, raw, err := events.NewEnvelope(subject, partnership, referralID, version, start, events.System("bench"), payload)
		if err != nil {
			b.Fatal(err)
		}
		f, err := e.js.PublishAsync(subject, raw, jetstream.WithMsgID(ev.GetEventId()))
		if err != nil {
			b.Fatal(err)
		}
		acks = append(acks, f)
	}
	for i := range b.N {
		id := uuid.NewString()
		r := referral{id: id, partnership: "rct", agency: "south-wales-police", concerns: []intakev1.ConcernCategory{intakev1.ConcernCategory_NEGLECT}, receivedAt: start}
		publish("mash.referral.received", r.partnership, id, 1, &eventsv1.ReferralReceived{Referral: r.proto()})
		d := decision(id, "rct", 1, rulesv1.DecisionStatus_RECOMMENDED, rulesv1.Level_LEVEL_3B, rulesv1.Rag_RAG_AMBER, start.Add(24*time.Hour), start.Add(4*time.Hour))
		publish(eventsv1.SubjectRecommendationMade, "rct", id, 2, &eventsv1.RecommendationMade{Decision: d})
		confirmed := decision(id, "rct", 2, rulesv1.DecisionStatus_CONFIRMED, rulesv1.Level_LEVEL_3B, rulesv1.Rag_RAG_AMBER, start.Add(24*time.Hour), start.Add(4*time.Hour))
		publish(triage.EventDecisionMade, "rct", id, 3, &eventsv1.DecisionMade{Decision: confirmed})
		for a := range agencies {
			n := &eventsv1.NotificationEvent{NotificationId: uuid.NewString(), Agency: fmt.Sprintf("agency-%d", a), Kind: "decision", DecisionId: d.GetId()}
			publish(eventsv1.SubjectNotificationSent, "rct", id, 4, n)
			publish(eventsv1.SubjectNotificationDelivered, "rct", id, 5, n)
		}
		if len(acks) >= 1000 || i == b.N-1 {
			for _, f := range acks {
				select {
				case <-f.Ok():
				case err := <-f.Err():
					b.Fatal(err)
				case <-ctx.Done():
				}
			}
			acks = acks[:0]
		}
	}
	e.drained(b)
	b.StopTimer()
	elapsed := time.Since(start).Seconds()
	b.ReportMetric(float64(b.N)/elapsed, "referrals/s")
	b.ReportMetric(float64(b.N*(3+2*agencies))/elapsed, "events/s")
}
