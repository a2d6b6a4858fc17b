package pack

import (
	"strings"
	"testing"
)

// validPack returns a small pack that compiles cleanly; tests mutate it.
func validPack() *Pack {
	return &Pack{
		Partnership: "test-partnership",
		Version:     "1",
		DefaultOutcome: DefaultOutcome{
			Level: "1", RAG: "green", Pathway: "nfa_advice", Agencies: []string{}, Reason: "nothing matched",
		},
		Timescales: TimescaleSpec{Red: "4 working hours", Amber: "24 working hours", Green: "72 hours", Decision: "1 working day"},
		Rules: []Rule{
			{ID: "neglect", Description: "neglect", When: "concern.NEGLECT", Level: "3a", RAG: "amber",
				Pathway: "taf", Agencies: []string{"early_help"}, Reason: "neglect needs a TAF"},
			{ID: "danger", Description: "danger", When: "risk.immediate_danger", Level: "4", RAG: "red",
				Pathway: "immediate_protection", Agencies: []string{"police", "childrens_social_care"}, Reason: "danger now"},
		},
		Tests: []TestCase{{
			Name:  "neglect",
			Facts: TestFacts{Concerns: []string{"NEGLECT"}},
			Expect: TestExpect{Level: "3a", RAG: "amber", Pathway: "taf", Agencies: []string{"early_help"},
				Fired: []string{"neglect"}},
		}},
	}
}

// mustCompile compiles p and fails the test on any problem.
func mustCompile(t testing.TB, p *Pack) *Compiled {
	t.Helper()
	c, probs := Compile(p)
	if len(probs) > 0 {
		var b strings.Builder
		for _, pr := range probs {
			b.WriteString("\n" + pr.String())
		}
		t.Fatalf("Compile: %d problems:%s", len(probs), b.String())
	}
	return c
}

func ptr[T any](v T) *T { return &v }
