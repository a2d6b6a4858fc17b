package corpus

import (
	"fmt"
	"hash/fnv"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	intakev1 "github.com/mash-hub/mash/proto/mash/intake/v1"
	"github.com/mash-hub/mash/services/rules/pack"
)

// Submission writes facts as the referral a referring system would send about a
// synthetic child identified by nhs, received at: the same facts reach the rules when the
// referral goes through the service's real path (child index, history, facts). Ages
// become a date of birth (or an estimated age, or ageUnknown when the facts give none).
func Submission(t pack.TestFacts, nhs, reference string, at time.Time) *intakev1.ReferralSubmission {
	ch := &intakev1.Child{GivenName: "Vignette", FamilyName: "Child", NhsNumber: nhs, Sex: intakev1.Sex_SEX_NOT_KNOWN,
		Address:  &intakev1.Address{Line1: "1 Example Street", Town: "Pontypridd", Postcode: "CF37 1AA"},
		Disabled: t.Child.Disabled}
	months := -1
	switch {
	case t.Child.AgeMonths != nil:
		months = *t.Child.AgeMonths
	case t.Child.AgeYears != nil:
		months = *t.Child.AgeYears * 12
	}
	switch {
	case t.Child.Unborn:
		ch.Unborn, ch.GivenName, ch.DueDate = true, "", at.AddDate(0, 4, 0).Format(time.DateOnly)
	case months < 0:
		ch.AgeUnknown = true
	case t.Child.AgeEstimated:
		ch.EstimatedAgeYears = proto.Int32(int32(months / 12))
	default:
		// A few days past the month's "birthday", so the completed months are exact.
		ch.DateOfBirth = at.AddDate(0, -months, -3).Format(time.DateOnly)
	}
	r := t.Risk
	risk := &intakev1.RiskIndicators{ImmediateDanger: r.ImmediateDanger, DashScore: int32(r.DASHScore),
		PoliceIncidentsLast_12Months: int32(r.PoliceIncidents), SuspectHasAccessToChild: r.SuspectHasAccess,
		ChildNonMobile: t.Child.NonMobile, ChildPregnant: t.Child.Pregnant, MissingEpisodesLast_12Months: int32(r.MissingEpisodes),
		DangerousAdultWithAccess: r.DangerousAdult, SiblingsPreviouslyRemoved: r.SiblingsRemoved, ParentInPrison: r.ParentInPrison,
		MedicalTreatmentNotSought: r.MedicalNeglect, ChildHomeless: t.Child.Homeless, CaringAffectsChild: r.CaringAffectsChild}
	if r.DASH != "" {
		risk.DomesticAbuseRisk = intakev1.DomesticAbuseRisk(intakev1.DomesticAbuseRisk_value[r.DASH])
	}
	var household []*intakev1.HouseholdMember
	if r.ParentUnder18 {
		household = append(household, &intakev1.HouseholdMember{Relationship: intakev1.Relationship_MOTHER,
			DateOfBirth: at.AddDate(-17, 0, -10).Format(time.DateOnly), LivesWithChild: true})
	}
	if r.HouseholdMemberOnPlan {
		household = append(household, &intakev1.HouseholdMember{Relationship: intakev1.Relationship_SIBLING, SubjectToPlan: true, LivesWithChild: true})
	}
	var concerns []*intakev1.Concern
	for i, cat := range t.Concerns {
		c := &intakev1.Concern{Category: intakev1.ConcernCategory(intakev1.ConcernCategory_value[cat]),
			Summary: "Synthetic vignette concern.", ObservedAt: timestamppb.New(at.Add(-time.Hour))}
		if i == 0 {
			c.ChildPresent, c.ChildDisclosure, c.InjuryToChild = t.Child.Present, t.Child.Disclosure, t.Child.Injured
		}
		concerns = append(concerns, c)
	}
	consent := &intakev1.Consent{Status: intakev1.ConsentStatus_NOT_SOUGHT, Reason: "Synthetic vignette."}
	return &intakev1.ReferralSubmission{ExternalReference: reference, Partnership: "rhondda-cynon-taf",
		Referrer: &intakev1.Referrer{Name: "Vignette Referrer", Phone: "01443 000000"}, Child: ch, Household: household,
		Concerns: concerns, RiskIndicators: risk, Consent: consent}
}

// NHSNumber is a valid (modulus 11) synthetic NHS number derived from seed, so each
// vignette's child has its own identity in the child index.
func NHSNumber(seed string) string {
	h := fnv.New64a()
	_, _ = h.Write([]byte(seed))
	for n := h.Sum64(); ; n++ {
		base := fmt.Sprintf("%09d", n%1_000_000_000)
		sum := 0
		for i, d := range base {
			sum += int(d-'0') * (10 - i)
		}
		check := 11 - sum%11
		if check == 11 {
			check = 0
		}
		if check != 10 {
			return base + fmt.Sprint(check)
		}
	}
}
