package pack

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
)

// combinationPack has rules chosen so that level, RAG and pathway can each
// come from a different rule.
func combinationPack() *Pack {
	p := validPack()
	p.Tests = nil
	p.Rules = []Rule{
		// a: low level, most urgent RAG.
		{ID: "a", When: "concern.YOUNG_CARER", Level: "2", RAG: "red", Pathway: "single_agency", Agencies: []string{"young_carers_service", "school_dsl"}},
		// b and c: same level; c more urgent, b earlier.
		{ID: "b", When: "concern.NEGLECT", Level: "3b", RAG: "green", Pathway: "intensive_family_support", Agencies: []string{"early_help"}},
		{ID: "c", When: "concern.EMOTIONAL_ABUSE", Level: "3b", RAG: "amber", Pathway: "taf", Agencies: []string{"early_help", "camhs"}},
		// d and e: identical level and RAG; d is earlier in the file.
		{ID: "d", When: "concern.HOUSING_HOMELESSNESS", Level: "3a", RAG: "amber", Pathway: "taf", Agencies: []string{"housing"}},
		{ID: "e", When: "concern.BEREAVEMENT", Level: "3a", RAG: "amber", Pathway: "single_agency", Agencies: []string{"third_sector_family_support"}},
		// f: the highest level, with the lowest RAG.
		{ID: "f", When: "concern.SEXUAL_ABUSE", Level: "4", RAG: "none", Pathway: "strategy_discussion", Agencies: []string{"police"}},
	}
	for i := range p.Rules {
		p.Rules[i].Description = "rule " + p.Rules[i].ID
		p.Rules[i].Reason = "reason " + p.Rules[i].ID
	}
	return p
}

func TestEvaluateCombination(t *testing.T) {
	t.Parallel()
	c := mustCompile(t, combinationPack())
	tests := []struct {
		concerns []string
		level    Level
		rag      RAG
		pathway  string
		pathways []string
		agencies []string
		fired    []string
	}{
		{[]string{"YOUNG_CARER"}, Level2, RAGRed, "single_agency", []string{"single_agency"},
			[]string{"school_dsl", "young_carers_service"}, []string{"a"}},
		// Highest level (b, 3b) and most urgent RAG (a, red) from different rules.
		{[]string{"YOUNG_CARER", "NEGLECT"}, Level3b, RAGRed, "intensive_family_support",
			[]string{"intensive_family_support", "single_agency"},
			[]string{"early_help", "school_dsl", "young_carers_service"}, []string{"a", "b"}},
		// Same level: the more urgent RAG (c) gives the pathway although b is earlier.
		{[]string{"NEGLECT", "EMOTIONAL_ABUSE"}, Level3b, RAGAmber, "taf", []string{"taf", "intensive_family_support"},
			[]string{"camhs", "early_help"}, []string{"b", "c"}},
		// Same level and RAG: the earlier rule (d) gives the pathway.
		{[]string{"BEREAVEMENT", "HOUSING_HOMELESSNESS"}, Level3a, RAGAmber, "taf", []string{"taf", "single_agency"},
			[]string{"housing", "third_sector_family_support"}, []string{"d", "e"}},
		// Level beats RAG for the pathway: f (4, none) over c (3b, amber) and a (2, red).
		{[]string{"SEXUAL_ABUSE", "EMOTIONAL_ABUSE", "YOUNG_CARER"}, Level4, RAGRed, "strategy_discussion",
			[]string{"strategy_discussion", "single_agency", "taf"},
			[]string{"camhs", "early_help", "police", "school_dsl", "young_carers_service"}, []string{"a", "c", "f"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.concerns, "+"), func(t *testing.T) {
			got := c.Evaluate(Facts{Concerns: slices.Sorted(slices.Values(tt.concerns))})
			if got.Level != tt.level || got.RAG != tt.rag || got.Pathway != tt.pathway {
				t.Errorf("got %s/%s/%s, want %s/%s/%s", got.Level, got.RAG, got.Pathway, tt.level, tt.rag, tt.pathway)
			}
			if !slices.Equal(got.Pathways, tt.pathways) {
				t.Errorf("Pathways = %v, want %v", got.Pathways, tt.pathways)
			}
			if !slices.Equal(got.Agencies, tt.agencies) {
				t.Errorf("Agencies = %v, want %v", got.Agencies, tt.agencies)
			}
			var ids []string
			for _, f := range got.Fired {
				ids = append(ids, f.ID)
				if f.Reason != "reason "+f.ID || f.Description != "rule "+f.ID {
					t.Errorf("fired rule %s lost its reason or description: %+v", f.ID, f)
				}
			}
			if !slices.Equal(ids, tt.fired) {
				t.Errorf("Fired = %v, want %v (file order)", ids, tt.fired)
			}
			if got.DefaultApplied || len(got.Errors) > 0 {
				t.Errorf("DefaultApplied %v, Errors %v", got.DefaultApplied, got.Errors)
			}
			if got.PackVersion != "1" || got.Partnership != "test-partnership" {
				t.Errorf("pack identity = %q %q", got.Partnership, got.PackVersion)
			}
		})
	}
}

func TestEvaluateDefaultOutcome(t *testing.T) {
	t.Parallel()
	c := mustCompile(t, combinationPack())
	got := c.Evaluate(Facts{Concerns: []string{"ONLINE_HARM"}})
	if !got.DefaultApplied || got.Level != Level1 || got.RAG != RAGGreen || got.Pathway != "nfa_advice" ||
		got.Reason != "nothing matched" || len(got.Fired) != 0 || len(got.Agencies) != 0 || got.PackVersion != "1" {
		t.Errorf("default outcome = %+v", got)
	}
	// The outcome must not share slices with the pack's default.
	got.Pathways[0] = "changed"
	if again := c.Evaluate(Facts{}); again.Pathways[0] != "nfa_advice" {
		t.Errorf("default outcome was modified through a returned slice")
	}
}

// TestEvaluateRuntimeError: a rule that fails to evaluate does not fire and
// is reported; other rules are unaffected.
func TestEvaluateRuntimeError(t *testing.T) {
	t.Parallel()
	p := validPack()
	p.Rules = append(p.Rules, Rule{ID: "divide", Description: "d", Reason: "r", Level: "4", RAG: "red",
		Pathway: "assessment", Agencies: []string{}, When: "100 / history.referrals_12m > 10"})
	c := mustCompile(t, p)

	got := c.Evaluate(Facts{Concerns: []string{"NEGLECT"}})
	if got.Level != Level3a || len(got.Fired) != 1 || got.Fired[0].ID != "neglect" {
		t.Errorf("outcome = %+v, want only neglect fired", got)
	}
	if len(got.Errors) != 1 || got.Errors[0].Rule != "divide" || !strings.Contains(got.Errors[0].Message, "division by zero") {
		t.Errorf("Errors = %+v, want one for rule divide", got.Errors)
	}

	// No rule fires: the default applies and still carries the error.
	got = c.Evaluate(Facts{})
	if !got.DefaultApplied || len(got.Errors) != 1 {
		t.Errorf("outcome = %+v, want default with one error", got)
	}

	// With facts that make it evaluable, it fires.
	got = c.Evaluate(Facts{History: History{Referrals12m: 5}})
	if got.Level != Level4 || len(got.Errors) != 0 {
		t.Errorf("outcome = %+v, want level 4 and no errors", got)
	}

	// A failing pack test reports the evaluation error too.
	p.Tests[0].Expect.Fired = nil
	c = mustCompile(t, p)
	if f := c.RunTests(); len(f) != 1 || !strings.Contains(f[0].String(), "rule divide failed to evaluate") {
		t.Errorf("RunTests = %v", f)
	}
}

// TestEvaluateOversizedFacts: facts beyond the sizes the cost estimate
// assumed run on the cost-limited programs, which stop runaway work with an
// error instead of hanging the hub.
func TestEvaluateOversizedFacts(t *testing.T) {
	t.Parallel()
	p := validPack()
	p.Rules = append(p.Rules, Rule{ID: "scan", Description: "d", Reason: "r", Level: "2", RAG: "green",
		Pathway: "single_agency", Agencies: []string{}, When: `concerns.exists(c, c + c == "NEGLECTNEGLECT")`})
	c := mustCompile(t, p)

	many := make([]string, 20000)
	for i := range many {
		many[i] = fmt.Sprintf("X%05d", i)
	}
	got := c.Evaluate(Facts{Concerns: many})
	if len(got.Errors) != 1 || got.Errors[0].Rule != "scan" || !strings.Contains(got.Errors[0].Message, "cost limit") {
		t.Errorf("Errors = %+v, want a cost limit error on rule scan", got.Errors)
	}
	// Just over the fast-path limit but cheap: evaluates normally.
	some := append(many[:maxCollectionSize+1:maxCollectionSize+1], "NEGLECT")
	got = c.Evaluate(Facts{Concerns: some})
	var ids []string
	for _, f := range got.Fired {
		ids = append(ids, f.ID)
	}
	if len(got.Errors) != 0 || !slices.Equal(ids, []string{"neglect", "scan"}) {
		t.Errorf("fired %v, errors %v; want neglect and scan, no errors", ids, got.Errors)
	}
}

func TestEvaluateHistoryMaps(t *testing.T) {
	t.Parallel()
	p := validPack()
	p.Rules = []Rule{
		{ID: "prior-neglect", When: `history.by_category_12m["NEGLECT"] >= 2`},
		{ID: "prior-3b", When: `history.by_level_12m["3b"] > 0`},
		{ID: "was-early-help", When: `level_at_least(history.previous_level, "3a") && !level_at_least(history.previous_level, "4")`},
		{ID: "no-history", When: `history.previous_level == "" && history.by_level_12m["1"] == 0`},
	}
	for i := range p.Rules {
		r := &p.Rules[i]
		r.Description, r.Reason, r.Level, r.RAG, r.Pathway, r.Agencies = "d", "r", "2", "green", "single_agency", []string{}
	}
	p.Tests = nil
	c := mustCompile(t, p)
	fired := func(h History) []string {
		out := c.Evaluate(Facts{History: h})
		if len(out.Errors) > 0 {
			t.Errorf("history %+v: errors %v", h, out.Errors)
		}
		var ids []string
		for _, f := range out.Fired {
			ids = append(ids, f.ID)
		}
		return ids
	}
	if got := fired(History{}); !slices.Equal(got, []string{"no-history"}) {
		t.Errorf("empty history fired %v", got)
	}
	h := History{ByCategory12m: map[string]int{"NEGLECT": 2}, ByLevel12m: map[Level]int{Level3b: 1}, PreviousLevel: Level3b}
	if got := fired(h); !slices.Equal(got, []string{"prior-neglect", "prior-3b", "was-early-help"}) {
		t.Errorf("history fired %v", got)
	}
	if got := fired(History{PreviousLevel: Level4}); len(got) != 0 {
		t.Errorf("previous level 4 fired %v", got)
	}
}

// TestEvaluateConcurrent is meaningful under -race: a Compiled pack is
// shared by every request.
func TestEvaluateConcurrent(t *testing.T) {
	t.Parallel()
	c := mustCompile(t, combinationPack())
	want := c.Evaluate(Facts{Concerns: []string{"EMOTIONAL_ABUSE", "NEGLECT", "YOUNG_CARER"}})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 200 {
				got := c.Evaluate(Facts{Concerns: []string{"EMOTIONAL_ABUSE", "NEGLECT", "YOUNG_CARER"}})
				if got.Level != want.Level || !slices.Equal(got.Agencies, want.Agencies) || got.Pathway != want.Pathway {
					t.Errorf("concurrent evaluation differed: %+v", got)
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestOutcomeDoesNotAliasPack: editing an outcome must not edit the pack.
func TestOutcomeDoesNotAliasPack(t *testing.T) {
	t.Parallel()
	c := mustCompile(t, validPack())
	out := c.Evaluate(Facts{Risk: RiskFacts{ImmediateDanger: true}})
	out.Fired[0].Agencies[0] = "changed"
	out.Agencies[0] = "changed"
	again := c.Evaluate(Facts{Risk: RiskFacts{ImmediateDanger: true}})
	if !slices.Equal(again.Fired[0].Agencies, []string{"childrens_social_care", "police"}) ||
		!slices.Equal(again.Agencies, []string{"childrens_social_care", "police"}) {
		t.Errorf("pack changed through an outcome: %+v", again)
	}
	c.Agencies["police"] = ""
	if BuiltinAgencies["police"] == "" {
		t.Error("built-in vocabulary changed through a compiled pack")
	}
}
