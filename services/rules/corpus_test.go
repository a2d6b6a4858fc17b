package rules_test

import (
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/mash-hub/mash/pkg/auth"
	"github.com/mash-hub/mash/pkg/events"
	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
	intakev1 "github.com/mash-hub/mash/proto/mash/intake/v1"
	rulesv1 "github.com/mash-hub/mash/proto/mash/rules/v1"
	"github.com/mash-hub/mash/services/rules/pack"
	"github.com/mash-hub/mash/services/rules/packs"
	"github.com/mash-hub/mash/services/rules/packs/corpus"
)

// protoLevel spells a pack level as the API does.
var protoLevel = map[string]rulesv1.Level{"1": rulesv1.Level_LEVEL_1, "2": rulesv1.Level_LEVEL_2,
	"3a": rulesv1.Level_LEVEL_3A, "3b": rulesv1.Level_LEVEL_3B, "4": rulesv1.Level_LEVEL_4}

// TestCorpusRepeatReferralsThroughTheChildIndex sends every vignette with earlier referrals
// through the service's real path, as intake would publish them: the child index links the
// referrals by NHS number, the history comes from the decisions store, and the rules see it
// as history facts. The final level must match what the corpus runner computes in memory
// and never fall below the lowest level the vignette's sources accept.
func TestCorpusRepeatReferralsThroughTheChildIndex(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	staff := e.token(t, auth.RolePractitioner)
	c, probs := pack.Load(packs.Default())
	if c == nil {
		t.Fatal(probs)
	}
	cor, err := corpus.Load()
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, v := range cor.Vignettes {
		if len(v.Earlier) == 0 {
			continue
		}
		checked++
		nhs := corpus.NHSNumber(v.ID)
		send := func(facts pack.TestFacts, kind string, ref string, at time.Time) string {
			sub := corpus.Submission(facts, nhs, ref, e.now)
			for _, cn := range sub.Concerns {
				cn.ObservedAt = timestamppb.New(at.Add(-time.Hour))
			}
			id := uuid.NewString()
			r := &intakev1.Referral{Id: id, Reference: "MASH-TEST-" + id[:8], Agency: "vignette-" + kind, AgencyKind: kind,
				ExternalReference: ref, Partnership: sub.GetPartnership(), ReceivedAt: timestamppb.New(at),
				Status: intakev1.ReferralStatus_RECEIVED, DecisionDue: timestamppb.New(at.Add(24 * time.Hour)), Version: 1, Submission: sub}
			env, raw, err := events.NewEnvelope("mash.referral.received", r.GetPartnership(), id, 1, at, events.System("test"), &eventsv1.ReferralReceived{Referral: r})
			if err != nil {
				t.Fatal(err)
			}
			e.publish(t, env.GetEventId(), raw)
			// Each earlier referral must be decided before the next is received, as in life.
			e.decision(t, staff, id)
			return id
		}
		for i, er := range v.Earlier {
			send(corpus.EarlierFacts(v, er), er.Referrer, v.ID+"-"+string(rune('a'+i)), e.now.Add(-time.Duration(er.DaysAgo)*24*time.Hour))
		}
		kind := v.Facts.Referrer.Kind
		if kind == "" {
			kind = "health"
		}
		id := send(v.Facts, kind, v.ID, e.now)
		d := e.decision(t, staff, id)
		got := d.GetRecommended().GetLevel()
		want := corpus.Run(c, v)
		if got != protoLevel[want.Level().String()] {
			t.Errorf("%s: the service decided %s through the child index, the corpus runner %s (history %+v)", v.ID, got, want.Level(), want.Facts.History)
		}
		if got < protoLevel[v.Lowest().String()] {
			t.Errorf("UNDER-TRIAGE %s through the child index: %s, sources accept %v", v.ID, got, v.Accept)
		}
		if d.GetMatchBasis() != "nhs-number" {
			t.Errorf("%s: match basis %q, want the earlier referrals linked by NHS number", v.ID, d.GetMatchBasis())
		}
	}
	if checked < 8 {
		t.Errorf("only %d vignettes with earlier referrals, want at least 8", checked)
	}
}
