package share_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	notifyv1 "github.com/mash-hub/mash/proto/mash/notify/v1"
	"github.com/mash-hub/mash/services/notify/directory"
	"github.com/mash-hub/mash/services/notify/share"
)

func researchInput(t testing.TB, roles ...string) share.Input {
	t.Helper()
	due := created.Add(30 * time.Hour)
	in := actionInput(t, "research")
	in.Kind, in.AgencyRoles, in.AckDue = notifyv1.NotificationKind_INFORMATION_REQUEST, roles, due
	in.Research = &share.Research{RequestID: "7c0d9d1e-2f4b-7a11-8c3e-5b6a7d8e9f00", Agency: in.Agency,
		Question: "Is the family known to your service? Any incidents at the address this year?", Due: due,
		AnswerPath: "/v1/information-requests/7c0d9d1e-2f4b-7a11-8c3e-5b6a7d8e9f00/answer", AnswerSubject: "mash.notify.rct-research.answer"}
	return in
}

// An information request carries the question and how to answer, the reference and the
// child's identity to find records by, and the consent position; never the decision,
// concerns, household, narrative or referrer, whatever the agency's role would get for an
// action.
func TestResearchViewIsMinimal(t *testing.T) {
	for _, roles := range [][]string{{"police"}, {"childrens_social_care"}, {"health_visitor"}, {"school_dsl"}, {"parish_council"}, nil} {
		in := researchInput(t, roles...)
		b, m := build(t, in)
		r := m.GetInformationRequest()
		if r.GetRequestId() != in.Research.RequestID || r.GetQuestion() != in.Research.Question || !r.GetDue().AsTime().Equal(in.Research.Due) ||
			r.GetAnswerPath() != in.Research.AnswerPath || r.GetAnswerSubject() != in.Research.AnswerSubject {
			t.Errorf("%v: request %+v", roles, r)
		}
		if m.GetReference() != "MASH-2026-000123" || m.GetChild().GetGivenName() != childGiven || m.GetChild().GetFamilyName() != childFamily ||
			m.GetChild().GetDateOfBirth() == "" || !m.GetAcknowledgeBy().AsTime().Equal(in.Research.Due) {
			t.Errorf("%v: lacks the reference, child's identity or deadline: %s", roles, b.Body)
		}
		if m.GetDecision() != nil || len(m.GetConcerns()) > 0 || len(m.GetHousehold()) > 0 || m.GetNarrative() != "" || m.GetReferrer() != nil {
			t.Errorf("%v: carries more than research needs: %s", roles, b.Body)
		}
		for _, secret := range []string{narrativeText, concernSummary, motherGiven, partnerFamily, referrerName, referrerPhone, "LEVEL_4", "da-high-child-present"} {
			if strings.Contains(string(b.Body), secret) {
				t.Errorf("%v: body contains %q: %s", roles, secret, b.Body)
			}
		}
		// The share record: lawful basis, consent, purpose naming the request, fields sent,
		// and the body's digest.
		if b.LawfulBasis != directory.DefaultLawfulBasis || m.GetShare().GetLawfulBasis() != b.LawfulBasis || b.ConsentStatus == "" ||
			!strings.Contains(b.Purpose, in.Research.RequestID) || !sameSet(m.GetShare().GetFields(), b.Fields) || len(b.SHA256) != 64 {
			t.Errorf("%v: share record %+v", roles, b)
		}
	}
}

// Record-matching identifiers come only where the agency's own role already sees them.
func TestResearchIdentifiersFollowTheAgencysRole(t *testing.T) {
	base := []string{share.FieldResearch, share.FieldChild, share.FieldConsent}
	for _, tc := range []struct {
		roles []string
		want  []string
	}{
		{nil, base},
		{[]string{"parish_council"}, base},
		{[]string{"school_dsl"}, append(slices.Clone(base), share.FieldSchool)},
		{[]string{"health_visitor"}, append(slices.Clone(base), share.FieldNHSNumber, share.FieldAddress)},
		{[]string{"police"}, append(slices.Clone(base), share.FieldNHSNumber, share.FieldAddress, share.FieldSchool)},
		{[]string{"housing", "school_dsl"}, append(slices.Clone(base), share.FieldAddress, share.FieldSchool)},
	} {
		if got := share.ResearchFields(tc.roles); !sameSet(got, tc.want) {
			t.Errorf("ResearchFields(%v) = %v, want %v", tc.roles, got, tc.want)
		}
		_, m := build(t, researchInput(t, tc.roles...))
		c := m.GetChild()
		if (c.GetNhsNumber() != "") != slices.Contains(tc.want, share.FieldNHSNumber) ||
			(c.GetPostcode() != "") != slices.Contains(tc.want, share.FieldAddress) ||
			(c.GetSchool() != "") != slices.Contains(tc.want, share.FieldSchool) || c.GetPreferredLanguage() != "" {
			t.Errorf("%v: child %+v", tc.roles, c)
		}
	}
	if got := share.FieldsFor("school_dsl", notifyv1.NotificationKind_INFORMATION_REQUEST); !sameSet(got, share.ResearchFields([]string{"school_dsl"})) {
		t.Errorf("FieldsFor research = %v", got)
	}
}

// Without its question an information request cannot be built.
func TestResearchNeedsTheQuestion(t *testing.T) {
	in := researchInput(t, "police")
	in.Research = nil
	if _, err := share.Build(in); err == nil {
		t.Fatal("built an information request without its question")
	}
}
