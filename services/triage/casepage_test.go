package triage_test

import (
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/mash-hub/mash/pkg/auth"
	intakev1 "github.com/mash-hub/mash/proto/mash/intake/v1"
	rulesv1 "github.com/mash-hub/mash/proto/mash/rules/v1"
	triagev1 "github.com/mash-hub/mash/proto/mash/triage/v1"
	"github.com/mash-hub/mash/services/triage/store"
)

// The case carries the references people quote, its family group's other cases, and, in
// the child's history, only the referrals received before it; without intake to read the
// referral from, it says why rather than failing.
func TestCaseReferencesFamilyAndEarlierHistory(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	p := e.staff(t, auth.RolePractitioner)
	child := uuid.NewString()
	earlier, later, sibling := uuid.NewString(), uuid.NewString(), uuid.NewString()
	at := map[string]time.Time{earlier: start.Add(-48 * time.Hour), later: start, sibling: start}
	for _, id := range []string{earlier, later, sibling} {
		sub := &intakev1.ReferralSubmission{ExternalReference: "CONTACT-" + id[:8], Partnership: "rct",
			Child:    &intakev1.Child{GivenName: "Test", FamilyName: "Child", AgeUnknown: true},
			Concerns: []*intakev1.Concern{{Category: intakev1.ConcernCategory_NEGLECT, Summary: "Synthetic."}}}
		if id != earlier {
			sub.FamilyGroup = "CONTACT-family-1"
		}
		e.receivedSubmission(t, id, "rct-mash", at[id], sub)
		d := decision(id, "rct", 1, rulesv1.DecisionStatus_RECOMMENDED, rulesv1.Level_LEVEL_2, rulesv1.Rag_RAG_GREEN, at[id].Add(24*time.Hour), at[id].Add(72*time.Hour))
		if id != sibling {
			d.ChildId = child
		}
		e.decided(t, d)
		e.waitCase(t, id, func(c store.Case) bool { return c.Received && c.DecisionVersion == 1 })
	}
	got, err := e.client.GetCase(p.ctx, &triagev1.GetCaseRequest{ReferralId: later})
	if err != nil {
		t.Fatal(err)
	}
	c := got.GetCase()
	if c.GetReference() != "MASH-TEST-"+later[:8] || c.GetExternalReference() != "CONTACT-"+later[:8] || c.GetFamilyGroup() != "CONTACT-family-1" {
		t.Errorf("references %q %q, family group %q", c.GetReference(), c.GetExternalReference(), c.GetFamilyGroup())
	}
	if h := got.GetHistory(); len(h) != 1 || h[0].GetReferralId() != earlier || h[0].GetReference() != "MASH-TEST-"+earlier[:8] {
		t.Errorf("history of the later referral: %v", h)
	}
	if f := got.GetFamily(); len(f) != 1 || f[0].GetReferralId() != sibling {
		t.Errorf("family group: %v", f)
	}
	if got.GetReferral() != nil || got.GetReferralUnavailable() == "" {
		t.Errorf("without intake: referral %v, unavailable %q", got.GetReferral(), got.GetReferralUnavailable())
	}
	first, err := e.client.GetCase(p.ctx, &triagev1.GetCaseRequest{ReferralId: earlier})
	if err != nil {
		t.Fatal(err)
	}
	if len(first.GetHistory()) != 0 || len(first.GetFamily()) != 0 {
		t.Errorf("the earlier referral shows later ones: history %v, family %v", first.GetHistory(), first.GetFamily())
	}
	q, err := e.client.ListQueue(p.ctx, &triagev1.ListQueueRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, qc := range q.GetCases() {
		if qc.GetReference() == "" {
			t.Errorf("queue case %s has no reference", qc.GetReferralId())
		}
	}
}
