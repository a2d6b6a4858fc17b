package pack

import (
	"encoding/json"
	"os"
	"reflect"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/mash-hub/mash/pkg/auth"
	intakev1 "github.com/mash-hub/mash/proto/mash/intake/v1"
)

func loadExample(t *testing.T) *intakev1.ReferralSubmission {
	t.Helper()
	b, err := os.ReadFile("../../intake/testdata/referral.example.json")
	if err != nil {
		t.Fatal(err)
	}
	sub := &intakev1.ReferralSubmission{}
	if err := protojson.Unmarshal(b, sub); err != nil {
		t.Fatal(err)
	}
	return sub
}

func TestFactsFromSharedExample(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, time.November, 26, 12, 0, 0, 0, time.UTC)
	h := History{Referrals12m: 1, ByCategory12m: map[string]int{"DOMESTIC_ABUSE": 1}}
	got := FactsFrom(loadExample(t), "police", h, now)
	want := Facts{
		Concerns: []string{"DOMESTIC_ABUSE", "PARENTAL_SUBSTANCE_MISUSE"},
		Child: ChildFacts{
			AgeYears: 7, AgeMonths: 7*12 + 7, AgeKnown: true, SchoolAge: true, Present: true,
		},
		Risk: RiskFacts{
			DASH: "HIGH", PoliceIncidents: 3, SuspectHasAccess: true,
		},
		ConsentStatus: "NOT_SOUGHT",
		ReferrerKind:  "police",
		History:       h,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("FactsFrom =\n%+v\nwant\n%+v", got, want)
	}
}

func TestFactsFromAge(t *testing.T) {
	t.Parallel()
	sub := func(dob string) *intakev1.ReferralSubmission {
		return &intakev1.ReferralSubmission{Child: &intakev1.Child{DateOfBirth: dob}}
	}
	tests := []struct {
		name          string
		dob           string
		now           time.Time
		years, months int
		known, school bool
	}{
		// 23:30 UTC on 1 April 2026 is 00:30 BST on 2 April: the birthday.
		{"birthday in London time", "2019-04-02", time.Date(2026, 4, 1, 23, 30, 0, 0, time.UTC), 7, 84, true, true},
		{"day before birthday", "2019-04-02", time.Date(2026, 4, 1, 22, 30, 0, 0, time.UTC), 6, 83, true, true},
		{"newborn", "2026-11-20", time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC), 0, 0, true, false},
		{"five months", "2026-06-10", time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC), 0, 5, true, false},
		{"turned four", "2022-11-26", time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC), 4, 48, true, true},
		{"seventeen", "2009-01-01", time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC), 17, 214, true, true},
		{"eighteen", "2008-01-01", time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC), 18, 226, true, false},
		{"unreadable", "02/04/2019", time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC), 0, 0, false, false},
		{"future", "2027-01-01", time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC), 0, 0, false, false},
	}
	for _, tt := range tests {
		c := FactsFrom(sub(tt.dob), "", History{}, tt.now).Child
		if c.AgeYears != tt.years || c.AgeMonths != tt.months || c.AgeKnown != tt.known || c.SchoolAge != tt.school {
			t.Errorf("%s: got %d years %d months known %v school %v", tt.name, c.AgeYears, c.AgeMonths, c.AgeKnown, c.SchoolAge)
		}
	}
}

func TestFactsFromUnbornAndFlags(t *testing.T) {
	t.Parallel()
	sub := &intakev1.ReferralSubmission{
		Child: &intakev1.Child{Unborn: true, DueDate: "2027-02-01"},
		Concerns: []*intakev1.Concern{
			{Category: intakev1.ConcernCategory_NEGLECT, ChildDisclosure: true},
			{Category: intakev1.ConcernCategory_NEGLECT, InjuryToChild: true},
			{Category: intakev1.ConcernCategory_CONCERN_CATEGORY_UNSPECIFIED},
			{Category: intakev1.ConcernCategory(999)},
			{Category: intakev1.ConcernCategory_DOMESTIC_ABUSE},
		},
		RiskIndicators: &intakev1.RiskIndicators{
			ImmediateDanger: true, ChildNonMobile: true, ChildPregnant: true, DashScore: 16,
			MissingEpisodesLast_12Months: 2, DangerousAdultWithAccess: true,
			DomesticAbuseRisk: intakev1.DomesticAbuseRisk_NOT_ASSESSED,
		},
	}
	f := FactsFrom(sub, "health", History{}, time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC))
	if !slices.Equal(f.Concerns, []string{"DOMESTIC_ABUSE", "NEGLECT"}) {
		t.Errorf("Concerns = %v, want sorted, deduplicated, known categories only", f.Concerns)
	}
	want := ChildFacts{AgeKnown: true, Unborn: true, NonMobile: true, Pregnant: true, Disclosure: true, Injured: true}
	if f.Child != want {
		t.Errorf("Child = %+v, want %+v", f.Child, want)
	}
	if !f.Risk.ImmediateDanger || f.Risk.DASH != "NOT_ASSESSED" || f.Risk.DASHScore != 16 ||
		f.Risk.MissingEpisodes != 2 || !f.Risk.DangerousAdult || f.ConsentStatus != "" || f.ReferrerKind != "health" {
		t.Errorf("Risk = %+v consent %q kind %q", f.Risk, f.ConsentStatus, f.ReferrerKind)
	}
	// A nil submission must not panic.
	_ = FactsFrom(nil, "", History{}, time.Now())
}

// TestVocabulariesMatchContracts keeps the fact vocabularies in step with
// the intake contract and the credential kinds.
func TestVocabulariesMatchContracts(t *testing.T) {
	t.Parallel()
	if !slices.Equal(AgencyKinds, auth.Kinds) {
		t.Errorf("AgencyKinds = %v, pkg/auth.Kinds = %v", AgencyKinds, auth.Kinds)
	}
	if len(ConcernCategories) != len(intakev1.ConcernCategory_name)-1 {
		t.Errorf("ConcernCategories has %d, enum has %d values besides UNSPECIFIED", len(ConcernCategories), len(intakev1.ConcernCategory_name)-1)
	}
	for n, name := range intakev1.DomesticAbuseRisk_name {
		if n != 0 && !slices.Contains(DASHGrades, name) {
			t.Errorf("DASHGrades lacks %s", name)
		}
	}
	for n, name := range intakev1.ConsentStatus_name {
		if n != 0 && !slices.Contains(ConsentStatuses, name) {
			t.Errorf("ConsentStatuses lacks %s", name)
		}
	}
}

// The stored form of the facts must give back exactly the facts the rules saw, or a replay
// would judge different facts from the original decision.
func TestRecordRoundTripsThroughJSON(t *testing.T) {
	t.Parallel()
	for _, f := range []Facts{
		{Concerns: []string{"DOMESTIC_ABUSE", "NEGLECT"}, ConsentStatus: "NOT_SOUGHT", ReferrerKind: "police",
			Child: ChildFacts{AgeYears: 7, AgeMonths: 91, AgeKnown: true, SchoolAge: true, Present: true, Injured: true},
			Risk:  RiskFacts{DASH: "HIGH", DASHScore: 15, PoliceIncidents: 3, SuspectHasAccess: true, MissingEpisodes: 1},
			History: History{Referrals12m: 2, ByCategory12m: map[string]int{"NEGLECT": 2}, ByLevel12m: map[Level]int{Level3a: 1, Level2: 1},
				OpenCase: true, PreviousLevel: Level3a}},
		{Concerns: []string{"PHYSICAL_ABUSE"}, Child: ChildFacts{Unborn: true, AgeKnown: true}},
		{Concerns: []string{"BEHAVIOUR"}, Child: ChildFacts{AgeKnown: false}},
	} {
		b, err := json.Marshal(f.Record())
		if err != nil {
			t.Fatal(err)
		}
		var back TestFacts
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		got := back.Facts()
		if !reflect.DeepEqual(got, f) {
			t.Errorf("round trip through %s:\n got %+v\nwant %+v", b, got, f)
		}
	}
}

// TestFactsFromThresholdFacts: the facts threshold documents lean on reach
// the rules, an estimated age counts as a (marked) age, and an age that is
// unknown stays unknown.
func TestFactsFromThresholdFacts(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, time.November, 26, 12, 0, 0, 0, time.UTC)
	sub := loadExample(t)
	sub.Child.DateOfBirth = ""
	sub.Child.EstimatedAgeYears = new(int32(16))
	sub.Child.Disabled = true
	sub.Household = []*intakev1.HouseholdMember{
		{Relationship: intakev1.Relationship_SIBLING, SubjectToPlan: true},
		{Relationship: intakev1.Relationship_MOTHER, DateOfBirth: "2009-01-10"}, // 17 on the day
	}
	r := sub.RiskIndicators
	r.SiblingsPreviouslyRemoved, r.ParentInPrison, r.MedicalTreatmentNotSought = true, true, true
	r.ChildHomeless, r.CaringAffectsChild = true, true
	f := FactsFrom(sub, "police", History{}, now)
	if !f.Child.AgeKnown || !f.Child.AgeEstimated || f.Child.AgeYears != 16 || f.Child.AgeMonths != 192 || !f.Child.SchoolAge {
		t.Errorf("estimated age: %+v", f.Child)
	}
	if !f.Child.Disabled || !f.Child.Homeless {
		t.Errorf("child flags: %+v", f.Child)
	}
	want := RiskFacts{SiblingsRemoved: true, ParentInPrison: true, MedicalNeglect: true, CaringAffectsChild: true, HouseholdMemberOnPlan: true, ParentUnder18: true}
	got := f.Risk
	got.DASH, got.DASHScore, got.PoliceIncidents, got.SuspectHasAccess, got.DangerousAdult, got.MissingEpisodes, got.ImmediateDanger = "", 0, 0, false, false, 0, false
	if got != want {
		t.Errorf("risk = %+v, want %+v", got, want)
	}
	if rec := f.Record().Facts(); !reflect.DeepEqual(rec.Risk, f.Risk) || rec.Child != f.Child {
		t.Errorf("Record round trip: %+v / %+v, want %+v / %+v", rec.Child, rec.Risk, f.Child, f.Risk)
	}

	sub.Household[1].DateOfBirth = "2008-11-26" // 18 today: an adult parent
	if f := FactsFrom(sub, "police", History{}, now); f.Risk.ParentUnder18 {
		t.Error("a parent who is 18 today counted as under 18")
	}
	sub.Child.EstimatedAgeYears, sub.Child.AgeUnknown = nil, true
	f = FactsFrom(sub, "police", History{}, now)
	if f.Child.AgeKnown || f.Child.AgeEstimated || f.Child.SchoolAge {
		t.Errorf("unknown age: %+v", f.Child)
	}
}
