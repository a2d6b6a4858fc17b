package packs_test

import (
	"bytes"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/mash-hub/mash/pkg/calendar"
	intakev1 "github.com/mash-hub/mash/proto/mash/intake/v1"
	"github.com/mash-hub/mash/services/rules/pack"
	"github.com/mash-hub/mash/services/rules/packs"
)

// loadDefault compiles and tests the default pack, failing on any problem.
func loadDefault(t testing.TB) *pack.Compiled {
	t.Helper()
	c, probs := pack.Load(packs.Default())
	for _, p := range probs {
		t.Errorf("%s", p)
	}
	if c == nil {
		t.FailNow()
	}
	return c
}

func TestDefaultPackLoads(t *testing.T) {
	t.Parallel()
	c := loadDefault(t)
	p, err := pack.Parse(packs.Default())
	if err != nil {
		t.Fatal(err)
	}
	if n := len(p.Tests); n < 40 {
		t.Errorf("default pack has %d test cases, want at least 40", n)
	}
	if c.Partnership != "default" || c.Version == "" {
		t.Errorf("identity = %q %q", c.Partnership, c.Version)
	}
	if f := c.RunTests(); len(f) > 0 {
		t.Errorf("RunTests: %v", f)
	}
	if !bytes.Equal(packs.Default(), packs.Default()) {
		t.Error("Default() is not stable")
	}
}

// TestDefaultPackCoversEveryConcernCategory: every intake category must be
// looked at by at least one rule, so no category silently falls through to
// the default outcome.
func TestDefaultPackCoversEveryConcernCategory(t *testing.T) {
	t.Parallel()
	covered := loadDefault(t).ReferencedConcerns()
	for n, name := range intakev1.ConcernCategory_name {
		if n == int32(intakev1.ConcernCategory_CONCERN_CATEGORY_UNSPECIFIED) {
			continue
		}
		if !slices.Contains(covered, name) {
			t.Errorf("no rule in the default pack refers to concern category %s", name)
		}
	}
}

// TestDefaultPackEveryCategoryAloneGetsARule: a referral with any single
// category gets a rule-based outcome (not the default) at any age.
func TestDefaultPackEveryCategoryAloneGetsARule(t *testing.T) {
	t.Parallel()
	c := loadDefault(t)
	for _, cat := range pack.ConcernCategories {
		for _, age := range []int{0, 3, 9, 16} {
			f := pack.Facts{Concerns: []string{cat}, Child: pack.ChildFacts{AgeYears: age, AgeMonths: age * 12, AgeKnown: true, SchoolAge: age >= 4}}
			if out := c.Evaluate(f); out.DefaultApplied || len(out.Errors) > 0 {
				t.Errorf("%s at %d: default %v errors %v", cat, age, out.DefaultApplied, out.Errors)
			}
		}
	}
}

// exampleReferral is the API's example referral, kept by intake beside its own tests (and
// checked there against ../shared/api): one copy, so the rules are tried on what intake accepts.
const exampleReferral = "../../intake/testdata/referral.example.json"

// TestSharedExampleOutcome runs the published example referral through
// FactsFrom and the default pack. A police report of high-risk domestic
// abuse, the third call-out in 12 months, with a school-age child present
// and the perpetrator still having access: significant harm is suspected,
// so level 4, red, strategy discussion; MARAC (high risk and repeat) and
// Operation Encompass are also pathways.
func TestSharedExampleOutcome(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(exampleReferral)
	if err != nil {
		t.Fatal(err)
	}
	sub := &intakev1.ReferralSubmission{}
	if err := protojson.Unmarshal(b, sub); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, time.November, 26, 10, 0, 0, 0, time.UTC)
	f := pack.FactsFrom(sub, "police", pack.History{}, now)
	if f.Child.AgeYears != 7 || !f.Child.SchoolAge || !f.Child.Present || f.Risk.DASH != "HIGH" ||
		f.Risk.PoliceIncidents != 3 || !f.Risk.SuspectHasAccess {
		t.Fatalf("facts = %+v", f)
	}
	out := loadDefault(t).Evaluate(f)

	if out.Level != pack.Level4 || out.RAG != pack.RAGRed || out.Pathway != "strategy_discussion" || out.DefaultApplied || len(out.Errors) > 0 {
		t.Errorf("outcome = %s/%s/%s default %v errors %v", out.Level, out.RAG, out.Pathway, out.DefaultApplied, out.Errors)
	}
	wantPathways := []string{"strategy_discussion", "assessment", "marac", "intensive_family_support", "taf", "operation_encompass"}
	if !slices.Equal(out.Pathways, wantPathways) {
		t.Errorf("Pathways = %v, want %v", out.Pathways, wantPathways)
	}
	wantAgencies := []string{"childrens_social_care", "domestic_abuse_services", "early_help", "marac_coordinator",
		"police", "school_dsl", "substance_misuse_services"}
	if !slices.Equal(out.Agencies, wantAgencies) {
		t.Errorf("Agencies = %v, want %v", out.Agencies, wantAgencies)
	}
	var fired []string
	for _, r := range out.Fired {
		fired = append(fired, r.ID)
	}
	wantFired := []string{"high-risk-perpetrator-has-access", "domestic-abuse-high-risk", "marac-high-risk",
		"domestic-abuse-repeat", "marac-repeat-incidents", "trigger-two", "domestic-abuse",
		"domestic-abuse-child-present", "parental-substance-misuse", "multiple-needs", "operation-encompass"}
	if !slices.Equal(fired, wantFired) {
		t.Errorf("Fired = %v, want %v", fired, wantFired)
	}
	if out.PackVersion != "2026.12.2" || !strings.Contains(out.Reason, "perpetrator") {
		t.Errorf("version %q reason %q", out.PackVersion, out.Reason)
	}

	// Received Thursday 26 November 2026 at 10:00: red is due at 14:00 the
	// same day, the decision at 10:00 on Friday.
	cal, err := calendar.New(calendar.Config{})
	if err != nil {
		t.Fatal(err)
	}
	decision, response := loadDefault(t).Deadlines(now, out.RAG, cal)
	if want := time.Date(2026, 11, 26, 14, 0, 0, 0, time.UTC); !response.Equal(want) {
		t.Errorf("response due %v, want %v", response, want)
	}
	if want := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC); !decision.Equal(want) {
		t.Errorf("decision due %v, want %v", decision, want)
	}
}

// TestDefaultPackRuleTable prints the rule table (go test -v) for review by
// a safeguarding lead and checks every rule has a reason.
func TestDefaultPackRuleTable(t *testing.T) {
	t.Parallel()
	for _, r := range loadDefault(t).Rules() {
		if r.Reason == "" || r.Description == "" {
			t.Errorf("rule %s lacks a reason or description", r.ID)
		}
		t.Logf("%-34s %-3s %-6s %-25s %s", r.ID, r.Level, r.RAG, r.Pathway, strings.Join(r.Agencies, ", "))
	}
}

func BenchmarkCompileDefaultPack(b *testing.B) {
	src := packs.Default()
	b.ReportAllocs()
	for b.Loop() {
		p, err := pack.Parse(src)
		if err != nil {
			b.Fatal(err)
		}
		if _, probs := pack.Compile(p); len(probs) > 0 {
			b.Fatal(probs)
		}
	}
}

// BenchmarkEvaluateDefaultPack measures one evaluation of the default pack
// for the shared example with history already loaded (target < 50 µs).
func BenchmarkEvaluateDefaultPack(b *testing.B) {
	c := loadDefault(b)
	body, err := os.ReadFile(exampleReferral)
	if err != nil {
		b.Fatal(err)
	}
	sub := &intakev1.ReferralSubmission{}
	if err := protojson.Unmarshal(body, sub); err != nil {
		b.Fatal(err)
	}
	h := pack.History{
		Referrals12m:  2,
		ByCategory12m: map[string]int{"DOMESTIC_ABUSE": 2, "NEGLECT": 1},
		ByLevel12m:    map[pack.Level]int{pack.Level2: 1, pack.Level3a: 1},
		PreviousLevel: pack.Level3a,
	}
	f := pack.FactsFrom(sub, "police", h, time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC))
	b.ReportAllocs()
	for b.Loop() {
		out := c.Evaluate(f)
		if out.Level != pack.Level4 {
			b.Fatal(out.Level)
		}
	}
}

// BenchmarkFactsFromAndEvaluate includes deriving the facts from the
// referral, as the service will do per request.
func BenchmarkFactsFromAndEvaluate(b *testing.B) {
	c := loadDefault(b)
	body, err := os.ReadFile(exampleReferral)
	if err != nil {
		b.Fatal(err)
	}
	sub := &intakev1.ReferralSubmission{}
	if err := protojson.Unmarshal(body, sub); err != nil {
		b.Fatal(err)
	}
	now := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	b.ReportAllocs()
	for b.Loop() {
		c.Evaluate(pack.FactsFrom(sub, "police", pack.History{}, now))
	}
}

// TestDefaultPackIsBilingual: the shipped pack is in English and Welsh, so a hub in Wales
// never shows a practitioner or an agency an English-only reason. Compile already refuses a
// missing Welsh text; this also catches English pasted in as the Welsh.
func TestDefaultPackIsBilingual(t *testing.T) {
	t.Parallel()
	c := loadDefault(t)
	if !c.Bilingual() {
		t.Fatalf("the default pack's languages are %v, want en and cy", c.Languages)
	}
	for _, r := range c.Rules() {
		if r.ReasonCy == r.Reason || r.DescriptionCy == r.Description {
			t.Errorf("rule %s: the Welsh is the English", r.ID)
		}
	}
	out := c.Evaluate(pack.Facts{Risk: pack.RiskFacts{ImmediateDanger: true}})
	if !strings.Contains(out.ReasonCy, "perygl uniongyrchol") {
		t.Errorf("immediate danger's Welsh reason = %q", out.ReasonCy)
	}
	for id := range c.Pathways {
		if c.PathwaysCy[id] == "" || c.PathwaysCy[id] == c.Pathways[id] {
			t.Errorf("pathway %s has no Welsh of its own: %q", id, c.PathwaysCy[id])
		}
	}
}
