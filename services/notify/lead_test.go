package notify_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
	notifyv1 "github.com/mash-hub/mash/proto/mash/notify/v1"
	rulesv1 "github.com/mash-hub/mash/proto/mash/rules/v1"
	triagev1 "github.com/mash-hub/mash/proto/mash/triage/v1"
	"github.com/mash-hub/mash/services/notify"
	"github.com/mash-hub/mash/services/notify/share"
	"github.com/mash-hub/mash/services/notify/store"
)

// A lead professional named after the decision: the named agency is told who leads, in
// which team and for whom, with nothing of the child (it reads the case through the
// link); an agency no directory lists is recorded as unroutable and the duty manager told.
func TestLeadAgencyIsTold(t *testing.T) {
	e := newEnv(t)
	ref := e.referral(t, noEncompass)
	e.decide(t, confirmed, ref, uuid.NewString(), 1, rulesv1.Level_LEVEL_4, rulesv1.Rag_RAG_AMBER, "police", "childrens_social_care")
	e.settled(t, ref.GetId(), 3)
	before := len(e.ag.social.deliveries())

	lead := &triagev1.LeadProfessional{Agency: "rct-csc", Team: "Assessment team north", Person: "Rhys Demoford (social worker)",
		Scope: triagev1.LeadProfessionalScope_LEAD_FOR_CHILD, NamedBy: "user:sam", NamedByRole: "practitioner", NamedAt: timestamppb.New(e.clock.Now())}
	e.publish(t, "mash.case.lead_professional_named", ref.GetId(), 5, &eventsv1.LeadProfessionalNamed{ReferralId: ref.GetId(), LeadProfessional: lead, GroupCases: 1})
	e.waitFor(t, "the lead agency told", func() bool { return len(e.ag.social.ofKind(notifyv1.NotificationKind_LEAD_PROFESSIONAL)) == 1 })
	m := e.ag.social.ofKind(notifyv1.NotificationKind_LEAD_PROFESSIONAL)[0].msg
	if l := m.GetLeadProfessional(); l.GetTeam() != lead.GetTeam() || l.GetPerson() != lead.GetPerson() || l.GetScope() != "LEAD_FOR_CHILD" ||
		l.GetNamedAt() == nil || m.GetReference() != ref.GetReference() || m.GetRole() != notify.RoleLeadProfessional {
		t.Fatalf("the lead agency's message: %v", m)
	}
	if m.GetChild() != nil || m.GetNarrative() != "" || len(m.GetHousehold()) > 0 || m.GetReferrer() != nil ||
		!slices.Equal(m.GetShare().GetFields(), []string{share.FieldLeadProfessional}) {
		t.Fatalf("the lead notice carries more than who leads: %v", m)
	}
	if got := len(e.ag.social.deliveries()); got != before+1 {
		t.Fatalf("the lead agency got %d messages, want %d", got, before+1)
	}

	// An agency outside every directory: a failed notice, and the duty manager told.
	stranger := &triagev1.LeadProfessional{Agency: "nowhere-council", Team: "Team", Person: "Person", Scope: triagev1.LeadProfessionalScope_LEAD_FOR_CHILD}
	e.publish(t, "mash.case.lead_professional_named", ref.GetId(), 6, &eventsv1.LeadProfessionalNamed{ReferralId: ref.GetId(), LeadProfessional: stranger})
	e.waitFor(t, "the duty manager told of the unroutable lead notice", func() bool {
		for _, d := range e.ag.duty.ofKind(notifyv1.NotificationKind_ESCALATION) {
			if strings.Contains(d.msg.GetNote(), "nowhere-council") {
				return true
			}
		}
		return false
	})
	failed := ofKindTo(e.rows(t, ref.GetId()), "LEAD_PROFESSIONAL", "nowhere-council")
	if len(failed) != 1 || failed[0].State != store.StateFailed {
		t.Fatalf("unroutable lead notice: %+v", failed)
	}
}
