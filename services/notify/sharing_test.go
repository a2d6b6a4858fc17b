package notify_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/mash-hub/mash/pkg/events/eventstest"
	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
	intakev1 "github.com/mash-hub/mash/proto/mash/intake/v1"
	notifyv1 "github.com/mash-hub/mash/proto/mash/notify/v1"
	rulesv1 "github.com/mash-hub/mash/proto/mash/rules/v1"
	triagev1 "github.com/mash-hub/mash/proto/mash/triage/v1"
	"github.com/mash-hub/mash/services/notify"
	"github.com/mash-hub/mash/services/notify/store"
)

// byRole counts a referral's notifications of kind for role, and those of them still active
// (not withdrawn or superseded).
func byRole(ns []store.Notification, kind, role string) (all, active int) {
	for _, n := range ns {
		if n.Kind == kind && n.Role == role {
			all++
			if n.WithdrawnAt == nil {
				active++
			}
		}
	}
	return all, active
}

// Immediate danger (level 4, Red) reaches police and children's social care on the rules'
// recommendation alone, marked as awaiting the hub's decision; nobody else, not even the
// referrer, hears of a recommendation. When a person decides, those told hear the decision
// and the rest of the agencies it names are told.
func TestImmediateDangerIsSharedOnTheRecommendationAlone(t *testing.T) {
	e := newEnv(t)
	ref := e.referral(t, noEncompass)
	d := uuid.NewString()
	e.decide(t, recommended, ref, d, 1, rulesv1.Level_LEVEL_4, rulesv1.Rag_RAG_RED, "childrens_social_care", "police", "school_dsl")
	e.settled(t, ref.GetId(), 3)
	eventstest.Drained(t, e.js, "notify")
	ns := e.settled(t, ref.GetId(), 3)
	if len(ns) != 3 {
		t.Fatalf("on the recommendation: %v, want the receipt and police and social care told", summarise(ns))
	}
	for _, role := range []string{"police", "childrens_social_care"} {
		if all, _ := byRole(ns, "ACTION", role); all != 1 {
			t.Errorf("%s told %d times on the recommendation, want 1: %v", role, all, summarise(ns))
		}
	}
	police := e.ag.police.ofKind(notifyv1.NotificationKind_ACTION)
	if len(police) != 1 || police[0].msg.GetNote() != "recommendation: awaiting the hub's decision" ||
		police[0].msg.GetDecision().GetStatus() != rulesv1.DecisionStatus_RECOMMENDED.String() {
		t.Fatalf("police were not told it awaits the hub's decision: %+v", police)
	}

	e.decide(t, confirmed, ref, d, 2, rulesv1.Level_LEVEL_4, rulesv1.Rag_RAG_RED, "childrens_social_care", "police", "school_dsl")
	ns = e.settled(t, ref.GetId(), 7)
	for role, want := range map[string][2]int{"police": {2, 1}, "childrens_social_care": {2, 1}, "school_dsl": {1, 1}} {
		if all, active := byRole(ns, "ACTION", role); all != want[0] || active != want[1] {
			t.Errorf("%s: %d notifications (%d active), want %d (%d)", role, all, active, want[0], want[1])
		}
	}
	if countKind(ns, "OUTCOME", "south-wales-police") != 1 {
		t.Errorf("referrer not told the decision once: %v", summarise(ns))
	}
	police = e.ag.police.ofKind(notifyv1.NotificationKind_ACTION)
	if len(police) != 2 || police[1].msg.GetDecision().GetStatus() != rulesv1.DecisionStatus_CONFIRMED.String() ||
		!strings.Contains(police[1].msg.GetNote(), "replaces") {
		t.Fatalf("police not told the hub's decision: %+v", police)
	}
}

// Anything short of immediate danger waits for a person: the consumer has seen the
// recommendation and sent nothing but the referrer's receipt.
func TestNothingIsSharedBeforeTheDecision(t *testing.T) {
	e := newEnv(t)
	for _, rec := range []struct {
		level rulesv1.Level
		rag   rulesv1.Rag
	}{{rulesv1.Level_LEVEL_3A, rulesv1.Rag_RAG_AMBER}, {rulesv1.Level_LEVEL_4, rulesv1.Rag_RAG_AMBER}, {rulesv1.Level_LEVEL_3B, rulesv1.Rag_RAG_RED}} {
		ref := e.referral(t, noEncompass)
		d := uuid.NewString()
		e.decide(t, recommended, ref, d, 1, rec.level, rec.rag, "childrens_social_care", "police")
		e.settled(t, ref.GetId(), 1)
		eventstest.Drained(t, e.js, "notify")
		if ns := e.settled(t, ref.GetId(), 1); len(ns) != 1 || ns[0].Kind != "RECEIPT" {
			t.Fatalf("%s %s recommendation shared: %v", rec.level, rec.rag, summarise(ns))
		}
		e.decide(t, confirmed, ref, d, 2, rec.level, rec.rag, "childrens_social_care", "police")
		ns := e.settled(t, ref.GetId(), 4)
		if countKind(ns, "ACTION", "") != 2 || countKind(ns, "OUTCOME", "") != 1 {
			t.Fatalf("%s %s decision: %v", rec.level, rec.rag, summarise(ns))
		}
	}
}

// A downgrade from level 4 to 2: the agency dropped gets a withdrawal, those still named the
// update, the referrer the new decision.
func TestDowngradeWithdrawsDroppedAndUpdatesTheRest(t *testing.T) {
	e := newEnv(t)
	ref := e.referral(t, noEncompass)
	d := uuid.NewString()
	e.decide(t, confirmed, ref, d, 2, rulesv1.Level_LEVEL_4, rulesv1.Rag_RAG_AMBER, "childrens_social_care", "police", "school_dsl")
	e.settled(t, ref.GetId(), 5)
	e.decide(t, overridden, ref, d, 3, rulesv1.Level_LEVEL_2, rulesv1.Rag_RAG_GREEN, "police", "school_dsl")
	ns := e.settled(t, ref.GetId(), 9)
	if all, _ := byRole(ns, "WITHDRAWAL", "childrens_social_care"); all != 1 {
		t.Errorf("social care withdrawals: %d, want 1: %v", all, summarise(ns))
	}
	for _, role := range []string{"police", "school_dsl"} {
		if all, active := byRole(ns, "ACTION", role); all != 2 || active != 1 {
			t.Errorf("%s: %d notifications (%d active), want the update to replace the first", role, all, active)
		}
	}
	if _, active := byRole(ns, "ACTION", "childrens_social_care"); active != 0 {
		t.Errorf("social care still has an active action")
	}
	school := e.ag.school.ofKind(notifyv1.NotificationKind_ACTION)
	if len(school) != 2 || school[1].msg.GetDecision().GetLevel() != rulesv1.Level_LEVEL_2.String() {
		t.Fatalf("school not updated to level 2: %+v", school)
	}
	if countKind(ns, "OUTCOME", "") != 2 {
		t.Errorf("referrer told %d outcomes, want 2", countKind(ns, "OUTCOME", ""))
	}
}

func consent(status intakev1.ConsentStatus) func(*intakev1.Referral) {
	return func(r *intakev1.Referral) {
		r.AgencyKind = "health" // no Encompass
		r.Submission.Consent = &intakev1.Consent{Status: status, Reason: "Mother declined when asked on 20 Nov."}
	}
}

// sharing publishes what triage says a case may now share.
func (e *env) sharing(t testing.TB, subject string, ref *intakev1.Referral, ev *eventsv1.SharingChanged) {
	t.Helper()
	ev.ReferralId = ref.GetId()
	e.publish(t, subject, ref.GetId(), 9, ev)
}

// A level 3a decision with consent refused: nothing goes to the agencies it names (the
// referrer hears the decision) until a manager authorises sharing without consent; then
// each share records the basis, the consent position and who authorised it. Revoking the
// authorisation withdraws them.
func TestConsentRefusedHoldsSharingUntilAManagerAuthorises(t *testing.T) {
	e := newEnv(t)
	ref := e.referral(t, consent(intakev1.ConsentStatus_REFUSED))
	d := uuid.NewString()
	e.decide(t, confirmed, ref, d, 2, rulesv1.Level_LEVEL_3A, rulesv1.Rag_RAG_AMBER, "childrens_social_care", "police")
	e.settled(t, ref.GetId(), 2)
	eventstest.Drained(t, e.js, "notify")
	if ns := e.settled(t, ref.GetId(), 2); len(ns) != 2 || countKind(ns, "ACTION", "") != 0 || countKind(ns, "OUTCOME", "") != 1 {
		t.Fatalf("with consent refused and no authorisation: %v", summarise(ns))
	}

	const basis = "UK GDPR Art 6(1)(e); DPA 2018 Sch 1 para 18 (safeguarding)"
	e.sharing(t, "mash.sharing.authorised", ref, &eventsv1.SharingChanged{ConsentStatus: "REFUSED", Actor: "user:mgr",
		Authorisation: &triagev1.SharingAuthorisation{LawfulBasis: basis, Reason: "Risk of significant harm outweighs the refusal.", AuthorisedBy: "user:mgr"}})
	ns := e.settled(t, ref.GetId(), 4)
	if countKind(ns, "ACTION", "") != 2 {
		t.Fatalf("after authorisation: %v", summarise(ns))
	}
	for _, n := range ns {
		if n.Kind != "ACTION" {
			continue
		}
		if n.LawfulBasis != basis || n.ConsentStatus != "REFUSED" || n.AuthorisedBy != "user:mgr" || !strings.Contains(n.ConsentReason, "manager") {
			t.Errorf("share %s to %s records basis %q, consent %q (%q), authorised by %q", n.ID, n.Agency, n.LawfulBasis, n.ConsentStatus, n.ConsentReason, n.AuthorisedBy)
		}
	}
	police := e.ag.police.ofKind(notifyv1.NotificationKind_ACTION)
	if len(police) != 1 || police[0].msg.GetShare().GetLawfulBasis() != basis {
		t.Fatalf("police message's basis: %+v", police)
	}

	e.sharing(t, "mash.sharing.revoked", ref, &eventsv1.SharingChanged{ConsentStatus: "REFUSED", Actor: "user:mgr", Reason: "Family now engaging."})
	ns = e.settled(t, ref.GetId(), 6)
	for _, role := range []string{"police", "childrens_social_care"} {
		if all, _ := byRole(ns, "WITHDRAWAL", role); all != 1 {
			t.Errorf("%s withdrawals after revocation: %d, want 1", role, all)
		}
		if _, active := byRole(ns, "ACTION", role); active != 0 {
			t.Errorf("%s still has an active share after revocation", role)
		}
	}
}

// Consent withdrawn after a share: every agency told on consent gets a withdrawal, and a
// share not yet delivered is never sent. What immediate danger shared stands.
func TestConsentWithdrawnWithdrawsWhatWasSharedOnConsent(t *testing.T) {
	e := newEnv(t, func(c *notify.DeliveryConfig) { c.MaxAttempts = 2 })
	e.ag.social.respond = func(int64) (int, time.Duration) { return 503, 0 } // social care's share is still undelivered
	ref := e.referral(t, consent(intakev1.ConsentStatus_GIVEN))
	d := uuid.NewString()
	e.decide(t, confirmed, ref, d, 2, rulesv1.Level_LEVEL_3A, rulesv1.Rag_RAG_AMBER, "childrens_social_care", "police", "school_dsl")
	e.waitFor(t, "police and the school to have their shares", func() bool {
		return len(e.ag.police.ofKind(notifyv1.NotificationKind_ACTION)) == 1 && len(e.ag.school.ofKind(notifyv1.NotificationKind_ACTION)) == 1
	})
	e.sharing(t, "mash.consent.changed", ref, &eventsv1.SharingChanged{ConsentStatus: "WITHDRAWN", Actor: "user:p1", Reason: "Mother withdrew consent by phone."})
	ns := e.settled(t, ref.GetId(), 8)
	for _, role := range []string{"police", "childrens_social_care", "school_dsl"} {
		if all, _ := byRole(ns, "WITHDRAWAL", role); all != 1 {
			t.Errorf("%s withdrawals: %d, want 1: %v", role, all, summarise(ns))
		}
	}
	for _, n := range ns {
		if n.Kind == "ACTION" && n.Role == "childrens_social_care" && (n.DeliveredAt != nil || n.WithdrawnAt == nil) {
			t.Errorf("social care's undelivered share was not stopped: %+v", n)
		}
	}
	w := e.ag.police.ofKind(notifyv1.NotificationKind_WITHDRAWAL)
	if len(w) != 1 || !strings.Contains(w[0].msg.GetNote(), "consent") {
		t.Fatalf("police withdrawal: %+v", w)
	}
	// A later decision is held back: consent is withdrawn and nobody has authorised.
	e.decide(t, overridden, ref, d, 3, rulesv1.Level_LEVEL_3B, rulesv1.Rag_RAG_AMBER, "childrens_social_care", "police", "school_dsl")
	e.settled(t, ref.GetId(), 9)
	eventstest.Drained(t, e.js, "notify")
	if ns := e.settled(t, ref.GetId(), 9); countKind(ns, "ACTION", "") != 3 {
		t.Fatalf("a decision after consent was withdrawn was shared: %v", summarise(ns))
	}
}

// The referrer hears of receipt, of the decision a person made (never the recommendation),
// and of how the hub closed the case: the outcome alone, not the closing note.
func TestReferrerHearsReceiptDecisionAndClosure(t *testing.T) {
	e := newEnv(t)
	ref := e.referral(t, noEncompass)
	d := uuid.NewString()
	e.decide(t, recommended, ref, d, 1, rulesv1.Level_LEVEL_4, rulesv1.Rag_RAG_RED, "childrens_social_care", "police")
	e.settled(t, ref.GetId(), 3)
	eventstest.Drained(t, e.js, "notify")
	if ns := e.settled(t, ref.GetId(), 3); countKind(ns, "OUTCOME", "") != 0 {
		t.Fatalf("referrer told the recommendation: %v", summarise(ns))
	}
	e.decide(t, overridden, ref, d, 2, rulesv1.Level_LEVEL_3B, rulesv1.Rag_RAG_AMBER, "childrens_social_care", "police")
	e.settled(t, ref.GetId(), 6)
	e.publish(t, "mash.case.closed", ref.GetId(), 9, &eventsv1.CaseChanged{Case: &triagev1.Case{ReferralId: ref.GetId(),
		State: triagev1.CaseState_CLOSED, Outcome: triagev1.CaseOutcome_INTENSIVE_SUPPORT, OutcomeNote: "Mother disclosed ..."}, Actor: "user:p1"})
	ns := e.settled(t, ref.GetId(), 7)
	if countKind(ns, "RECEIPT", "south-wales-police") != 1 || countKind(ns, "OUTCOME", "south-wales-police") != 1 || countKind(ns, "CLOSURE", "south-wales-police") != 1 {
		t.Fatalf("referrer's feedback: %v", summarise(ns))
	}
	var outcome, closure *notifyv1.AgencyMessage
	for _, m := range e.ag.police.deliveries() {
		switch m.msg.GetKind() {
		case notifyv1.NotificationKind_OUTCOME:
			outcome = m.msg
		case notifyv1.NotificationKind_CLOSURE:
			closure = m.msg
		}
	}
	if outcome == nil || outcome.GetDecision().GetStatus() != rulesv1.DecisionStatus_OVERRIDDEN.String() || outcome.GetChild() != nil {
		t.Fatalf("outcome message: %v", outcome)
	}
	if closure == nil || closure.GetCaseOutcome() != "INTENSIVE_SUPPORT" || closure.GetDecision() != nil || closure.GetChild() != nil ||
		strings.Contains(closure.String(), "Mother disclosed") {
		t.Fatalf("closure message: %v", closure)
	}
}
