package pack

import (
	"strings"
	"testing"
)

// welshPack is validPack made bilingual: every text has its Welsh.
func welshPack() *Pack {
	p := validPack()
	p.Languages = []string{"en", "cy"}
	p.DefaultOutcome.ReasonCy = "dim wedi cyfateb"
	p.Rules[0].DescriptionCy, p.Rules[0].ReasonCy = "esgeulustod", "mae angen TAF ar gyfer esgeulustod"
	p.Rules[1].DescriptionCy, p.Rules[1].ReasonCy = "perygl", "perygl nawr"
	return p
}

func TestBilingualPackCarriesWelshIntoOutcomes(t *testing.T) {
	t.Parallel()
	c := mustCompile(t, welshPack())
	if !c.Bilingual() || strings.Join(c.Languages, ",") != "en,cy" {
		t.Fatalf("languages = %v, bilingual %v", c.Languages, c.Bilingual())
	}
	out := c.Evaluate(Facts{Concerns: []string{"NEGLECT"}, Risk: RiskFacts{ImmediateDanger: true}})
	if out.Reason != "danger now" || out.ReasonCy != "perygl nawr" {
		t.Errorf("primary reason = %q / %q, want the danger rule's in both languages", out.Reason, out.ReasonCy)
	}
	if len(out.Fired) != 2 || out.Fired[0].DescriptionCy != "esgeulustod" || out.Fired[0].ReasonCy != "mae angen TAF ar gyfer esgeulustod" {
		t.Errorf("fired = %+v, want each rule's Welsh", out.Fired)
	}
	if d := c.Evaluate(Facts{Concerns: []string{"BEREAVEMENT"}}); !d.DefaultApplied || d.ReasonCy != "dim wedi cyfateb" {
		t.Errorf("default outcome = %+v, want its Welsh reason", d)
	}
	// The built-in vocabularies come with their Welsh.
	if c.PathwaysCy["taf"] == "" || c.AgenciesCy["police"] == "" || c.LevelNamesCy[Level3a] != "Ymyrraeth Gynnar" {
		t.Errorf("Welsh vocabularies: pathways %v agencies %v levels %v", c.PathwaysCy["taf"], c.AgenciesCy["police"], c.LevelNamesCy)
	}
	// An English-only pack has no Welsh to give.
	en := mustCompile(t, validPack()).Evaluate(Facts{Risk: RiskFacts{ImmediateDanger: true}})
	if en.ReasonCy != "" || en.Fired[0].ReasonCy != "" {
		t.Errorf("an English-only pack's outcome carries Welsh: %+v", en)
	}
}

// TestWelshProblems: a pack that says it is in Welsh must be wholly in Welsh, and a pack
// that does not must give no Welsh; each problem names the rule (or key) and the field.
func TestWelshProblems(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		mutate func(p *Pack)
		want   Problem
		msg    string
	}{
		{"missing reason_cy", func(p *Pack) { p.Rules[1].ReasonCy = " " },
			Problem{Rule: "danger", Field: "reason_cy"}, "every text needs its Welsh"},
		{"missing description_cy", func(p *Pack) { p.Rules[0].DescriptionCy = "" },
			Problem{Rule: "neglect", Field: "description_cy"}, "is required"},
		{"missing default reason_cy", func(p *Pack) { p.DefaultOutcome.ReasonCy = "" },
			Problem{Field: "default_outcome.reason_cy"}, "is required"},
		{"Welsh in an English-only pack", func(p *Pack) { p.Languages = nil },
			Problem{Rule: "danger", Field: "reason_cy"}, `add "languages: [en, cy]"`},
		{"unknown language", func(p *Pack) { p.Languages = []string{"en", "fr"} },
			Problem{Field: "languages"}, `unknown language "fr"`},
		{"no English", func(p *Pack) { p.Languages = []string{"cy"} },
			Problem{Field: "languages"}, "must include en"},
		{"declared pathway without Welsh", func(p *Pack) {
			p.Pathways = map[string]string{"taf": "Team Around the Family", "immediate_protection": "Now", "nfa_advice": "Advice"}
			p.PathwaysCy = map[string]string{"taf": "Tîm o Amgylch y Teulu", "nfa_advice": "Cyngor"}
		}, Problem{Field: "pathways_cy"}, `"immediate_protection" needs its Welsh`},
		{"Welsh for an undeclared agency", func(p *Pack) { p.AgenciesCy = map[string]string{"polis": "Heddlu"} },
			Problem{Field: "agencies_cy"}, `"polis" is not among the pack's agencies`},
		{"Welsh level names in an English-only pack", func(p *Pack) {
			*p = *validPack()
			p.LevelsCy = map[string]string{"1": "Cyffredinol"}
		}, Problem{Field: "levels_cy"}, "languages do not include cy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := welshPack()
			tt.mutate(p)
			c, probs := Compile(p)
			if c != nil {
				t.Fatal("Compile accepted the pack")
			}
			for _, pr := range probs {
				if pr.Rule == tt.want.Rule && pr.Test == tt.want.Test && pr.Field == tt.want.Field && strings.Contains(pr.Message, tt.msg) {
					return
				}
			}
			t.Errorf("no problem %+v containing %q in %v", tt.want, tt.msg, probs)
		})
	}
}

// TestParseWelshKeys: the Welsh keys are part of the file format, parsed strictly.
func TestParseWelshKeys(t *testing.T) {
	t.Parallel()
	src := `
partnership: test-partnership
version: "1"
languages: [en, cy]
default_outcome: {level: "1", rag: green, pathway: nfa_advice, agencies: [], reason: none matched, reason_cy: dim wedi cyfateb}
timescales: {red: 4 working hours, amber: 24 working hours, green: 72 hours, decision: 1 working day}
rules:
  - id: danger
    description: Danger now.
    description_cy: Perygl nawr.
    when: risk.immediate_danger
    level: "4"
    rag: red
    pathway: immediate_protection
    agencies: [police]
    reason: The child is in danger.
    reason_cy: Mae'r plentyn mewn perygl.
tests:
  - name: danger
    facts: {risk: {immediate_danger: true}}
    expect: {level: "4", rag: red, pathway: immediate_protection, agencies: [police], fired: [danger]}
`
	c, probs := Load([]byte(src))
	if len(probs) > 0 {
		t.Fatalf("Load: %v", probs)
	}
	if r := c.Rules()[0]; r.ReasonCy != "Mae'r plentyn mewn perygl." || r.DescriptionCy != "Perygl nawr." {
		t.Errorf("rule = %+v, want its Welsh", r)
	}
	if _, err := Parse([]byte(strings.Replace(src, "reason_cy: Mae'r", "reason_cymraeg: Mae'r", 1))); err == nil || !strings.Contains(err.Error(), "reason_cymraeg") {
		t.Errorf("a misspelt Welsh key parsed: %v", err)
	}
}
