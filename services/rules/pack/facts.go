package pack

import (
	"slices"
	"sync"
	"time"

	intakev1 "github.com/mash-hub/mash/proto/mash/intake/v1"
)

// Facts are what rule conditions see: a flat, readable summary of one
// referral and the child's history, not the raw protobuf. The CEL name of
// each field is given in its comment; see doc.go for the whole model.
type Facts struct {
	// Concerns are the referral's concern category names (e.g. "NEGLECT"),
	// sorted and without duplicates. CEL: concerns, and concern.<CATEGORY>.
	Concerns []string
	Child    ChildFacts
	Risk     RiskFacts
	// ConsentStatus is "GIVEN", "REFUSED", "NOT_SOUGHT" or "". CEL: consent.status.
	ConsentStatus string
	// ReferrerKind is the kind of the submitting agency (police, health,
	// education, ...). CEL: referrer.kind.
	ReferrerKind string
	History      History
}

// ChildFacts describe the child. Ages are whole years and months at the
// time of evaluation; an unborn child is age 0 with Unborn set.
type ChildFacts struct {
	AgeYears  int  // child.age_years
	AgeMonths int  // child.age_months (total months, e.g. 30 at two and a half)
	AgeKnown  bool // child.age_known: false if the date of birth was missing or unreadable
	// AgeEstimated is true when the age comes from the referrer's estimate
	// (estimated_age_years), not a date of birth. CEL: child.age_estimated.
	AgeEstimated bool
	Unborn       bool // child.unborn
	SchoolAge    bool // child.school_age: born, age known, 4 to 17 (reception to year 13)
	NonMobile    bool // child.non_mobile: the referrer says the child is not yet mobile
	Pregnant     bool // child.pregnant
	// Disclosure, Injured and Present are true if any concern says so.
	Disclosure bool // child.disclosure
	Injured    bool // child.injured
	Present    bool // child.present
	Disabled   bool // child.disabled: a disability or long-term condition
	// Homeless is a 16 or 17 year old homeless themselves, not a family
	// with housing problems. CEL: child.homeless.
	Homeless bool
}

// RiskFacts are the referral's risk indicators.
type RiskFacts struct {
	ImmediateDanger bool // risk.immediate_danger
	// DASH is the grade as reported: "STANDARD", "MEDIUM", "HIGH",
	// "NOT_ASSESSED" or "". It is not recomputed from the score, because other
	// factors may raise a grade; rules may look at both. CEL: risk.dash.
	DASH             string
	DASHScore        int  // risk.dash_score (0-27 ticks)
	PoliceIncidents  int  // risk.police_incidents_12m (this one included)
	SuspectHasAccess bool // risk.suspect_has_access
	DangerousAdult   bool // risk.dangerous_adult
	MissingEpisodes  int  // risk.missing_episodes_12m (this one included)
	// SiblingsRemoved: an older child was removed from a parent's care or
	// was subject to care proceedings. CEL: risk.siblings_removed.
	SiblingsRemoved bool
	ParentInPrison  bool // risk.parent_in_prison
	// MedicalNeglect: treatment for the child's condition is refused or
	// not sought. CEL: risk.medical_neglect.
	MedicalNeglect bool
	// CaringAffectsChild: a young carer's caring harms their education or
	// health. CEL: risk.caring_affects_child.
	CaringAffectsChild bool
	// HouseholdMemberOnPlan: someone in the household is subject to a child
	// protection plan, a care order or MAPPA. CEL: risk.household_member_on_plan.
	HouseholdMemberOnPlan bool
	// ParentUnder18: a mother or father in the household is under 18 (from
	// their date of birth). CEL: risk.parent_under_18.
	ParentUnder18 bool
}

// History is what the service knows about the child's earlier referrals and
// decisions, not counting the referral being evaluated. The service fills
// it from its store; the rules engine only reads it.
type History struct {
	// Referrals12m counts earlier referrals in the 12 months before this one.
	// CEL: history.referrals_12m.
	Referrals12m int
	// ByCategory12m counts earlier referrals in 12 months by concern category
	// name (a referral with two categories counts once for each). Missing
	// categories count 0. CEL: history.by_category_12m["NEGLECT"].
	ByCategory12m map[string]int
	// ByLevel12m counts earlier decisions in 12 months by level. CEL:
	// history.by_level_12m["3a"].
	ByLevel12m map[Level]int
	// OpenCase is true when a service (children's social care or early help)
	// is still working with the family. CEL: history.open_case.
	OpenCase bool
	// PreviousLevel is the level of the most recent decision, LevelNone if
	// none. CEL: history.previous_level ("" if none).
	PreviousLevel Level
}

// london is where ages are reckoned: a child born on 2 April is a year older
// from midnight on 2 April UK time, whatever the server's zone.
var london = sync.OnceValue(func() *time.Location {
	loc, err := time.LoadLocation("Europe/London")
	if err != nil {
		// The calendar package embeds tzdata, so this does not happen; UTC
		// is at most an hour out.
		return time.UTC
	}
	return loc
})

// FactsFrom derives the facts rules see from a referral, the kind of the
// submitting agency, the child's history and the time of evaluation. It
// never fails: a field it cannot read (an unparseable date of birth, an
// unknown enum number) is left at its zero value and, for ages, AgeKnown is
// false. The submission is expected to have passed intake validation.
func FactsFrom(sub *intakev1.ReferralSubmission, agencyKind string, h History, now time.Time) Facts {
	f := Facts{ReferrerKind: agencyKind, History: h}
	concerns := sub.GetConcerns()
	f.Concerns = make([]string, 0, len(concerns))
	for _, c := range concerns {
		if c.GetChildDisclosure() {
			f.Child.Disclosure = true
		}
		if c.GetInjuryToChild() {
			f.Child.Injured = true
		}
		if c.GetChildPresent() {
			f.Child.Present = true
		}
		if cat := c.GetCategory(); cat != intakev1.ConcernCategory_CONCERN_CATEGORY_UNSPECIFIED {
			if name, ok := intakev1.ConcernCategory_name[int32(cat)]; ok {
				f.Concerns = append(f.Concerns, name)
			}
		}
	}
	slices.Sort(f.Concerns)
	f.Concerns = slices.Compact(f.Concerns)

	child := sub.GetChild()
	if child.GetUnborn() {
		f.Child.Unborn, f.Child.AgeKnown = true, true
	} else if dob, err := time.ParseInLocation(time.DateOnly, child.GetDateOfBirth(), london()); err == nil {
		years, months, ok := age(dob, now.In(london()))
		f.Child.AgeYears, f.Child.AgeMonths, f.Child.AgeKnown = years, months, ok
	} else if child != nil && child.EstimatedAgeYears != nil && child.GetEstimatedAgeYears() >= 0 {
		years := int(child.GetEstimatedAgeYears())
		f.Child.AgeYears, f.Child.AgeMonths, f.Child.AgeKnown, f.Child.AgeEstimated = years, years*12, true, true
	}
	// An age_unknown child keeps AgeKnown false: rules read that
	// conservatively (never a lower level for it).
	f.Child.Disabled = child.GetDisabled()
	var parentUnder18 bool
	for _, m := range sub.GetHousehold() {
		if m.GetSubjectToPlan() {
			f.Risk.HouseholdMemberOnPlan = true
		}
		if r := m.GetRelationship(); r == intakev1.Relationship_MOTHER || r == intakev1.Relationship_FATHER {
			if dob, err := time.ParseInLocation(time.DateOnly, m.GetDateOfBirth(), london()); err == nil {
				if years, _, ok := age(dob, now.In(london())); ok && years < 18 {
					parentUnder18 = true
				}
			}
		}
	}
	f.Child.SchoolAge = schoolAge(f.Child)

	r := sub.GetRiskIndicators()
	f.Child.NonMobile = r.GetChildNonMobile()
	f.Child.Pregnant = r.GetChildPregnant()
	f.Child.Homeless = r.GetChildHomeless()
	f.Risk = RiskFacts{
		ImmediateDanger:       r.GetImmediateDanger(),
		DASHScore:             int(r.GetDashScore()),
		PoliceIncidents:       int(r.GetPoliceIncidentsLast_12Months()),
		SuspectHasAccess:      r.GetSuspectHasAccessToChild(),
		DangerousAdult:        r.GetDangerousAdultWithAccess(),
		MissingEpisodes:       int(r.GetMissingEpisodesLast_12Months()),
		SiblingsRemoved:       r.GetSiblingsPreviouslyRemoved(),
		ParentInPrison:        r.GetParentInPrison(),
		MedicalNeglect:        r.GetMedicalTreatmentNotSought(),
		CaringAffectsChild:    r.GetCaringAffectsChild(),
		HouseholdMemberOnPlan: f.Risk.HouseholdMemberOnPlan,
		ParentUnder18:         parentUnder18,
	}
	if g := r.GetDomesticAbuseRisk(); g != intakev1.DomesticAbuseRisk_DOMESTIC_ABUSE_RISK_UNSPECIFIED {
		f.Risk.DASH = intakev1.DomesticAbuseRisk_name[int32(g)]
	}
	if s := sub.GetConsent().GetStatus(); s != intakev1.ConsentStatus_CONSENT_STATUS_UNSPECIFIED {
		f.ConsentStatus = intakev1.ConsentStatus_name[int32(s)]
	}
	return f
}

// age returns completed years and months from dob to now (both in the same
// zone). A date of birth after now is not an age: ok is false.
func age(dob, now time.Time) (years, months int, ok bool) {
	y1, m1, d1 := dob.Date()
	y2, m2, d2 := now.Date()
	months = (y2-y1)*12 + int(m2) - int(m1)
	if d2 < d1 {
		// Not yet reached this month's "birthday". A child born on the 31st
		// completes a month on the last day of a shorter month, which this
		// approximates as the 1st of the next; a day's difference is fine
		// for threshold rules.
		months--
	}
	if months < 0 {
		return 0, 0, false
	}
	return months / 12, months, true
}

// schoolAge approximates compulsory school age plus sixth form: reception
// (the September after the 4th birthday) to 17. Using 4..17 by age alone
// over-includes some four-year-olds, which errs towards notifying a school.
func schoolAge(c ChildFacts) bool {
	return c.AgeKnown && !c.Unborn && c.AgeYears >= 4 && c.AgeYears <= 17
}
