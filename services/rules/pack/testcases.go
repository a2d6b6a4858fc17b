package pack

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/mash-hub/mash/pkg/calendar"
)

// TestFacts are a test case's facts as written in YAML. They mirror the
// CEL names (child.age_years is child: {age_years: ...}). A few facts are
// derived so tests stay short: the age is known when age_years or
// age_months is given (or the child is unborn); age_months defaults to
// age_years × 12; school_age defaults to the same 4-17 rule FactsFrom uses.
type TestFacts struct {
	Concerns []string     `yaml:"concerns" json:"concerns,omitempty"`
	Child    TestChild    `yaml:"child" json:"child,omitempty"`
	Risk     TestRisk     `yaml:"risk" json:"risk,omitempty"`
	Consent  TestConsent  `yaml:"consent" json:"consent,omitempty"`
	Referrer TestReferrer `yaml:"referrer" json:"referrer,omitempty"`
	History  TestHistory  `yaml:"history" json:"history,omitempty"`
}

// TestChild mirrors child.* in TestFacts.
type TestChild struct {
	AgeYears   *int  `yaml:"age_years" json:"age_years,omitempty"`
	AgeMonths  *int  `yaml:"age_months" json:"age_months,omitempty"`
	Unborn     bool  `yaml:"unborn" json:"unborn,omitempty"`
	SchoolAge  *bool `yaml:"school_age" json:"school_age,omitempty"`
	NonMobile  bool  `yaml:"non_mobile" json:"non_mobile,omitempty"`
	Pregnant   bool  `yaml:"pregnant" json:"pregnant,omitempty"`
	Disclosure bool  `yaml:"disclosure" json:"disclosure,omitempty"`
	Injured    bool  `yaml:"injured" json:"injured,omitempty"`
	Present    bool  `yaml:"present" json:"present,omitempty"`
	// AgeEstimated marks age_years as the referrer's estimate.
	AgeEstimated bool `yaml:"age_estimated" json:"age_estimated,omitempty"`
	Disabled     bool `yaml:"disabled" json:"disabled,omitempty"`
	Homeless     bool `yaml:"homeless" json:"homeless,omitempty"`
}

// TestRisk mirrors risk.* in TestFacts.
type TestRisk struct {
	ImmediateDanger  bool   `yaml:"immediate_danger" json:"immediate_danger,omitempty"`
	DASH             string `yaml:"dash" json:"dash,omitempty"`
	DASHScore        int    `yaml:"dash_score" json:"dash_score,omitempty"`
	PoliceIncidents  int    `yaml:"police_incidents_12m" json:"police_incidents_12m,omitempty"`
	SuspectHasAccess bool   `yaml:"suspect_has_access" json:"suspect_has_access,omitempty"`
	DangerousAdult   bool   `yaml:"dangerous_adult" json:"dangerous_adult,omitempty"`
	MissingEpisodes  int    `yaml:"missing_episodes_12m" json:"missing_episodes_12m,omitempty"`

	SiblingsRemoved       bool `yaml:"siblings_removed" json:"siblings_removed,omitempty"`
	ParentInPrison        bool `yaml:"parent_in_prison" json:"parent_in_prison,omitempty"`
	MedicalNeglect        bool `yaml:"medical_neglect" json:"medical_neglect,omitempty"`
	CaringAffectsChild    bool `yaml:"caring_affects_child" json:"caring_affects_child,omitempty"`
	HouseholdMemberOnPlan bool `yaml:"household_member_on_plan" json:"household_member_on_plan,omitempty"`
	ParentUnder18         bool `yaml:"parent_under_18" json:"parent_under_18,omitempty"`
}

// TestConsent mirrors consent.* in TestFacts.
type TestConsent struct {
	Status string `yaml:"status" json:"status,omitempty"`
}

// TestReferrer mirrors referrer.* in TestFacts.
type TestReferrer struct {
	Kind string `yaml:"kind" json:"kind,omitempty"`
}

// TestHistory mirrors history.* in TestFacts.
type TestHistory struct {
	Referrals12m  int            `yaml:"referrals_12m" json:"referrals_12m,omitempty"`
	ByCategory12m map[string]int `yaml:"by_category_12m" json:"by_category_12m,omitempty"`
	ByLevel12m    map[string]int `yaml:"by_level_12m" json:"by_level_12m,omitempty"`
	OpenCase      bool           `yaml:"open_case" json:"open_case,omitempty"`
	PreviousLevel string         `yaml:"previous_level" json:"previous_level,omitempty"`
}

// Record is the inverse of TestFacts.Facts: the facts in the form a pack test writes them,
// which is also the JSON stored with every decision, so a decision can be explained and
// re-run (replay) from exactly what the rules saw.
func (f Facts) Record() TestFacts {
	t := TestFacts{
		Concerns: slices.Clone(f.Concerns),
		Consent:  TestConsent{Status: f.ConsentStatus},
		Referrer: TestReferrer{Kind: f.ReferrerKind},
		Risk: TestRisk{
			ImmediateDanger:  f.Risk.ImmediateDanger,
			DASH:             f.Risk.DASH,
			DASHScore:        f.Risk.DASHScore,
			PoliceIncidents:  f.Risk.PoliceIncidents,
			SuspectHasAccess: f.Risk.SuspectHasAccess,
			DangerousAdult:   f.Risk.DangerousAdult,
			MissingEpisodes:  f.Risk.MissingEpisodes,

			SiblingsRemoved:       f.Risk.SiblingsRemoved,
			ParentInPrison:        f.Risk.ParentInPrison,
			MedicalNeglect:        f.Risk.MedicalNeglect,
			CaringAffectsChild:    f.Risk.CaringAffectsChild,
			HouseholdMemberOnPlan: f.Risk.HouseholdMemberOnPlan,
			ParentUnder18:         f.Risk.ParentUnder18,
		},
	}
	ch := f.Child
	schoolAge := ch.SchoolAge
	t.Child = TestChild{Unborn: ch.Unborn, SchoolAge: &schoolAge, NonMobile: ch.NonMobile, Pregnant: ch.Pregnant,
		Disclosure: ch.Disclosure, Injured: ch.Injured, Present: ch.Present,
		AgeEstimated: ch.AgeEstimated, Disabled: ch.Disabled, Homeless: ch.Homeless}
	if ch.AgeKnown && !ch.Unborn {
		years, months := ch.AgeYears, ch.AgeMonths
		t.Child.AgeYears, t.Child.AgeMonths = &years, &months
	}
	h := f.History
	t.History = TestHistory{Referrals12m: h.Referrals12m, OpenCase: h.OpenCase, PreviousLevel: h.PreviousLevel.String()}
	if h.PreviousLevel == LevelNone {
		t.History.PreviousLevel = ""
	}
	if len(h.ByCategory12m) > 0 {
		t.History.ByCategory12m = maps.Clone(h.ByCategory12m)
	}
	if len(h.ByLevel12m) > 0 {
		t.History.ByLevel12m = make(map[string]int, len(h.ByLevel12m))
		for l, n := range h.ByLevel12m {
			t.History.ByLevel12m[l.String()] = n
		}
	}
	return t
}

// Facts converts test facts into the Facts rules see. Values are assumed
// valid (Compile checks them); anything unparseable is left at zero.
func (t TestFacts) Facts() Facts {
	f := Facts{
		Concerns:      slices.Compact(slices.Sorted(slices.Values(t.Concerns))),
		ConsentStatus: t.Consent.Status,
		ReferrerKind:  t.Referrer.Kind,
		Risk: RiskFacts{
			ImmediateDanger:  t.Risk.ImmediateDanger,
			DASH:             t.Risk.DASH,
			DASHScore:        t.Risk.DASHScore,
			PoliceIncidents:  t.Risk.PoliceIncidents,
			SuspectHasAccess: t.Risk.SuspectHasAccess,
			DangerousAdult:   t.Risk.DangerousAdult,
			MissingEpisodes:  t.Risk.MissingEpisodes,

			SiblingsRemoved:       t.Risk.SiblingsRemoved,
			ParentInPrison:        t.Risk.ParentInPrison,
			MedicalNeglect:        t.Risk.MedicalNeglect,
			CaringAffectsChild:    t.Risk.CaringAffectsChild,
			HouseholdMemberOnPlan: t.Risk.HouseholdMemberOnPlan,
			ParentUnder18:         t.Risk.ParentUnder18,
		},
	}
	ch := &f.Child
	ch.Unborn = t.Child.Unborn
	switch {
	case t.Child.Unborn:
		ch.AgeKnown = true
	case t.Child.AgeYears != nil:
		ch.AgeKnown, ch.AgeYears, ch.AgeMonths = true, *t.Child.AgeYears, *t.Child.AgeYears*12
		if t.Child.AgeMonths != nil {
			ch.AgeMonths = *t.Child.AgeMonths
		}
	case t.Child.AgeMonths != nil:
		ch.AgeKnown, ch.AgeMonths, ch.AgeYears = true, *t.Child.AgeMonths, *t.Child.AgeMonths/12
	}
	ch.SchoolAge = schoolAge(*ch)
	if t.Child.SchoolAge != nil {
		ch.SchoolAge = *t.Child.SchoolAge
	}
	ch.NonMobile, ch.Pregnant = t.Child.NonMobile, t.Child.Pregnant
	ch.Disclosure, ch.Injured, ch.Present = t.Child.Disclosure, t.Child.Injured, t.Child.Present
	ch.AgeEstimated = ch.AgeKnown && !ch.Unborn && t.Child.AgeEstimated
	ch.Disabled, ch.Homeless = t.Child.Disabled, t.Child.Homeless

	h := t.History
	f.History = History{Referrals12m: h.Referrals12m, OpenCase: h.OpenCase, ByCategory12m: h.ByCategory12m}
	f.History.PreviousLevel, _ = ParseLevel(h.PreviousLevel)
	if len(h.ByLevel12m) > 0 {
		f.History.ByLevel12m = make(map[Level]int, len(h.ByLevel12m))
		for k, n := range h.ByLevel12m {
			if l, err := ParseLevel(k); err == nil {
				f.History.ByLevel12m[l] = n
			}
		}
	}
	return f
}

// checkTests validates test cases against the vocabularies and the rule
// ids, and keeps them for RunTests.
func (c *Compiled) checkTests(tests []TestCase, add func(Problem)) {
	ruleIDs := make(map[string]bool, len(c.rules))
	for _, r := range c.rules {
		ruleIDs[r.ID] = true
	}
	check := outcomeChecker{c: c, add: add}
	seen := make(map[string]bool, len(tests))
	for i, tc := range tests {
		name := tc.Name
		if name == "" {
			name = fmt.Sprintf("#%d", i+1)
		}
		at := Problem{Test: name, Line: tc.Line}
		prob := func(field, format string, args ...any) {
			pr := at
			pr.Field, pr.Message = field, fmt.Sprintf(format, args...)
			add(pr)
		}
		if tc.Name == "" {
			prob("name", "is required")
		} else if seen[tc.Name] {
			prob("name", "duplicate test name")
		}
		seen[tc.Name] = true

		f := tc.Facts
		for _, cat := range f.Concerns {
			if !isCategory(cat) {
				prob("facts.concerns", "%q is not a concern category", cat)
			}
		}
		for field, v := range map[string]*int{"facts.child.age_years": f.Child.AgeYears, "facts.child.age_months": f.Child.AgeMonths} {
			if v != nil && (*v < 0 || *v > 25*12) {
				prob(field, "must be from 0 to 300, got %d", *v)
			}
		}
		enum := func(field, v string, values []string) {
			if !slices.Contains(values, v) {
				prob(field, "unknown value %q (want one of %s)", v, oneOf(values))
			}
		}
		enum("facts.risk.dash", f.Risk.DASH, DASHGrades)
		enum("facts.consent.status", f.Consent.Status, ConsentStatuses)
		if f.Referrer.Kind != "" {
			enum("facts.referrer.kind", f.Referrer.Kind, AgencyKinds)
		}
		enum("facts.history.previous_level", f.History.PreviousLevel, levelSpellings)
		for _, k := range sortedKeys(f.History.ByCategory12m) {
			if !isCategory(k) {
				prob("facts.history.by_category_12m", "%q is not a concern category", k)
			}
		}
		for _, k := range sortedKeys(f.History.ByLevel12m) {
			enum("facts.history.by_level_12m", k, levelSpellings[1:])
		}

		e := tc.Expect
		check.level(at.with("expect.level"), e.Level)
		check.rag(at.with("expect.rag"), e.RAG)
		check.pathway(at.with("expect.pathway"), e.Pathway)
		check.agencies(at.with("expect.agencies"), e.Agencies)
		if e.Agencies == nil {
			prob("expect.agencies", "is required (write [] for none): agencies are compared as an exact set")
		}
		for field, ids := range map[string][]string{"expect.fired": e.Fired, "expect.not_fired": e.NotFired} {
			for _, id := range ids {
				if !ruleIDs[id] {
					prob(field, "no rule has id %q", id)
				}
			}
		}
	}
	c.tests = tests
}

// TestFailure is a pack test whose outcome differed from its expectation.
type TestFailure struct {
	Test string
	Line int
	// Mismatches say what differed, each "field: want X, got Y".
	Mismatches []string
	// Got is the full outcome, for showing which rules fired.
	Got Outcome
}

// String renders the failure with the rules that fired, which is usually
// what the author needs to see to fix a rule or an expectation.
func (f TestFailure) String() string {
	loc := ""
	if f.Line > 0 {
		loc = fmt.Sprintf("line %d: ", f.Line)
	}
	return fmt.Sprintf("%stest %q: %s", loc, f.Test, f.summary())
}

func (f TestFailure) summary() string {
	fired := make([]string, len(f.Got.Fired))
	for i, r := range f.Got.Fired {
		fired[i] = r.ID
	}
	return fmt.Sprintf("%s (fired: [%s])", strings.Join(f.Mismatches, "; "), strings.Join(fired, ", "))
}

// RunTests evaluates every test case of the pack and returns the failures
// (none means the pack may be activated, as far as its own tests go).
func (c *Compiled) RunTests() []TestFailure {
	var failures []TestFailure
	for _, tc := range c.tests {
		got := c.Evaluate(tc.Facts.Facts())
		if m := compare(tc.Expect, got); len(m) > 0 {
			failures = append(failures, TestFailure{Test: tc.Name, Line: tc.Line, Mismatches: m, Got: got})
		}
	}
	return failures
}

func compare(e TestExpect, got Outcome) []string {
	var m []string
	if want, _ := ParseLevel(e.Level); want != got.Level {
		m = append(m, fmt.Sprintf("level: want %s, got %s", want, got.Level))
	}
	if want, _ := ParseRAG(e.RAG); want != got.RAG {
		m = append(m, fmt.Sprintf("rag: want %s, got %s", want, got.RAG))
	}
	if e.Pathway != got.Pathway {
		m = append(m, fmt.Sprintf("pathway: want %s, got %s", e.Pathway, got.Pathway))
	}
	want := slices.Compact(slices.Sorted(slices.Values(e.Agencies)))
	if !slices.Equal(want, got.Agencies) {
		m = append(m, fmt.Sprintf("agencies: want [%s], got [%s]", strings.Join(want, ", "), strings.Join(got.Agencies, ", ")))
	}
	fired := make(map[string]bool, len(got.Fired))
	for _, r := range got.Fired {
		fired[r.ID] = true
	}
	for _, id := range e.Fired {
		if !fired[id] {
			m = append(m, fmt.Sprintf("fired: want %s to fire, it did not", id))
		}
	}
	for _, id := range e.NotFired {
		if fired[id] {
			m = append(m, fmt.Sprintf("not_fired: want %s not to fire, it did", id))
		}
	}
	if e.Default != nil && *e.Default != got.DefaultApplied {
		m = append(m, fmt.Sprintf("default: want %t, got %t", *e.Default, got.DefaultApplied))
	}
	for _, ee := range got.Errors {
		m = append(m, fmt.Sprintf("rule %s failed to evaluate: %s", ee.Rule, ee.Message))
	}
	return m
}

// Load parses, compiles and tests a pack file: the check a pack must pass
// before it can be activated. Problems include every validation problem,
// a pack with no test cases, and every failing test (Field "expect"). The
// Compiled pack is returned only when there are no problems.
func Load(b []byte) (*Compiled, []Problem) {
	p, err := Parse(b)
	if err != nil {
		return nil, []Problem{{Message: err.Error()}}
	}
	c, probs := Compile(p)
	if len(probs) > 0 {
		return nil, probs
	}
	if len(c.tests) == 0 {
		return nil, []Problem{{Field: "tests", Message: "a pack needs test cases before it can be activated"}}
	}
	for _, f := range c.RunTests() {
		probs = append(probs, Problem{Test: f.Test, Line: f.Line, Field: "expect", Message: f.summary()})
	}
	if len(probs) > 0 {
		return nil, probs
	}
	return c, nil
}

// Deadlines returns the decision and response deadlines for a referral
// received at receivedAt with rating rag, using this pack's timescales.
func (c *Compiled) Deadlines(receivedAt time.Time, rag RAG, cal *calendar.Calendar) (decisionDue, responseDue time.Time) {
	return c.Timescales.Deadlines(receivedAt, rag, cal)
}
