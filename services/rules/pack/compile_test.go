package pack

import (
	"strings"
	"testing"
)

func TestCompileValidPack(t *testing.T) {
	t.Parallel()
	c := mustCompile(t, validPack())
	if got := c.RuleIDs(); strings.Join(got, ",") != "neglect,danger" {
		t.Errorf("RuleIDs = %v", got)
	}
	if f := c.RunTests(); len(f) > 0 {
		t.Errorf("RunTests: %v", f)
	}
	if c.Timescales.Red.Kind != Working || c.Timescales.Green.Kind != Elapsed {
		t.Errorf("timescale kinds: red %v green %v", c.Timescales.Red.Kind, c.Timescales.Green.Kind)
	}
}

// TestCompileProblems has one case per kind of problem. Each asserts that a
// problem names the rule (or test, or field) and says what is wrong.
func TestCompileProblems(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		mutate func(p *Pack)
		want   Problem // Rule, Test and Field must match exactly
		msg    string  // substring of the message
	}{
		{"duplicate id", func(p *Pack) { p.Rules[1].ID = "neglect" },
			Problem{Rule: "neglect", Field: "id"}, "duplicate"},
		{"bad id", func(p *Pack) { p.Rules[0].ID = "Neglect Rule" },
			Problem{Rule: "Neglect Rule", Field: "id"}, "lower-case"},
		{"missing id", func(p *Pack) { p.Rules[1].ID = "" },
			Problem{Rule: "#2", Field: "id"}, "required"},
		{"bad CEL syntax", func(p *Pack) { p.Rules[0].When = "concern.NEGLECT &&" },
			Problem{Rule: "neglect", Field: "when"}, "Syntax error"},
		{"non-bool expression", func(p *Pack) { p.Rules[0].When = "child.age_years + 1" },
			Problem{Rule: "neglect", Field: "when"}, "must be true or false"},
		{"unknown variable", func(p *Pack) { p.Rules[0].When = "child.age < 5" },
			Problem{Rule: "neglect", Field: "when"}, "undeclared reference to 'child.age'"},
		{"misspelt category", func(p *Pack) { p.Rules[0].When = "concern.NEGLCT" },
			Problem{Rule: "neglect", Field: "when"}, "did you mean 'concern.NEGLECT'"},
		{"empty condition", func(p *Pack) { p.Rules[0].When = " " },
			Problem{Rule: "neglect", Field: "when"}, "required"},
		{"impossible literal", func(p *Pack) { p.Rules[0].When = `risk.dash == "HIGHH"` },
			Problem{Rule: "neglect", Field: "when"}, `risk.dash can never be "HIGHH"`},
		{"impossible literal in list", func(p *Pack) { p.Rules[0].When = `referrer.kind in ["police", "NHS"]` },
			Problem{Rule: "neglect", Field: "when"}, `referrer.kind can never be "NHS"`},
		{"unknown category literal", func(p *Pack) { p.Rules[0].When = `"NEGLCT" in concerns` },
			Problem{Rule: "neglect", Field: "when"}, `"NEGLCT" is not a concern category`},
		{"unknown map key", func(p *Pack) { p.Rules[0].When = `history.by_level_12m["3c"] > 0` },
			Problem{Rule: "neglect", Field: "when"}, `has no key "3c"`},
		{"bad level in helper", func(p *Pack) { p.Rules[0].When = `level_at_least(history.previous_level, "5")` },
			Problem{Rule: "neglect", Field: "when"}, `unknown level "5"`},
		{"too costly", func(p *Pack) {
			p.Rules[0].When = `concerns.all(a, concerns.all(b, concerns.all(c, a + b + c != "")))`
		}, Problem{Rule: "neglect", Field: "when"}, "more than the limit"},
		{"too long", func(p *Pack) { p.Rules[0].When = "true" + strings.Repeat(" && true", 600) },
			Problem{Rule: "neglect", Field: "when"}, "size"},
		{"unknown level", func(p *Pack) { p.Rules[0].Level = "3c" },
			Problem{Rule: "neglect", Field: "level"}, `unknown level "3c"`},
		{"missing level", func(p *Pack) { p.Rules[0].Level = "" },
			Problem{Rule: "neglect", Field: "level"}, "required"},
		{"bad RAG", func(p *Pack) { p.Rules[1].RAG = "purple" },
			Problem{Rule: "danger", Field: "rag"}, `unknown RAG "purple"`},
		{"unknown agency", func(p *Pack) { p.Rules[1].Agencies = []string{"polic"} },
			Problem{Rule: "danger", Field: "agencies"}, `unknown agency "polic"`},
		{"agency twice", func(p *Pack) { p.Rules[1].Agencies = []string{"police", "police"} },
			Problem{Rule: "danger", Field: "agencies"}, "twice"},
		{"unknown pathway", func(p *Pack) { p.Rules[0].Pathway = "team-around" },
			Problem{Rule: "neglect", Field: "pathway"}, `unknown pathway "team-around"`},
		{"agency not in declared vocabulary", func(p *Pack) {
			p.Agencies = map[string]string{"early_help": "Early help"}
		}, Problem{Rule: "danger", Field: "agencies"}, `unknown agency "childrens_social_care"`},
		{"missing reason", func(p *Pack) { p.Rules[1].Reason = "" },
			Problem{Rule: "danger", Field: "reason"}, "required"},
		{"missing description", func(p *Pack) { p.Rules[1].Description = "" },
			Problem{Rule: "danger", Field: "description"}, "required"},
		{"test names unknown rule", func(p *Pack) { p.Tests[0].Expect.Fired = []string{"neglectt"} },
			Problem{Test: "neglect", Field: "expect.fired"}, `no rule has id "neglectt"`},
		{"test not_fired names unknown rule", func(p *Pack) { p.Tests[0].Expect.NotFired = []string{"x"} },
			Problem{Test: "neglect", Field: "expect.not_fired"}, `no rule has id "x"`},
		{"test with unknown concern", func(p *Pack) { p.Tests[0].Facts.Concerns = []string{"NEGLET"} },
			Problem{Test: "neglect", Field: "facts.concerns"}, "not a concern category"},
		{"test with unknown DASH", func(p *Pack) { p.Tests[0].Facts.Risk.DASH = "high" },
			Problem{Test: "neglect", Field: "facts.risk.dash"}, `unknown value "high"`},
		{"test with bad expected level", func(p *Pack) { p.Tests[0].Expect.Level = "five" },
			Problem{Test: "neglect", Field: "expect.level"}, "unknown level"},
		{"test without agencies", func(p *Pack) { p.Tests[0].Expect.Agencies = nil },
			Problem{Test: "neglect", Field: "expect.agencies"}, "required"},
		{"duplicate test name", func(p *Pack) { p.Tests = append(p.Tests, p.Tests[0]) },
			Problem{Test: "neglect", Field: "name"}, "duplicate"},
		{"bad timescale", func(p *Pack) { p.Timescales.Red = "4h" },
			Problem{Field: "timescales.red"}, `"4h"`},
		{"missing timescale", func(p *Pack) { p.Timescales.Decision = "" },
			Problem{Field: "timescales.decision"}, "required"},
		{"bad default outcome", func(p *Pack) { p.DefaultOutcome.Pathway = "nothing" },
			Problem{Field: "default_outcome.pathway"}, "unknown pathway"},
		{"default without reason", func(p *Pack) { p.DefaultOutcome.Reason = "" },
			Problem{Field: "default_outcome.reason"}, "required"},
		{"missing version", func(p *Pack) { p.Version = "" },
			Problem{Field: "version"}, "required"},
		{"bad partnership", func(p *Pack) { p.Partnership = "Rhondda Cynon Taf" },
			Problem{Field: "partnership"}, "slug"},
		{"renamed unknown level", func(p *Pack) { p.Levels = map[string]string{"5": "Extra"} },
			Problem{Field: "levels"}, "levels are fixed"},
		{"no rules", func(p *Pack) { p.Rules = nil; p.Tests = nil },
			Problem{Field: "rules"}, "at least one rule"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := validPack()
			tt.mutate(p)
			c, probs := Compile(p)
			if c != nil {
				t.Errorf("Compile returned a pack despite problems")
			}
			for _, pr := range probs {
				if pr.Rule == tt.want.Rule && pr.Test == tt.want.Test && pr.Field == tt.want.Field &&
					strings.Contains(pr.Message, tt.msg) {
					return
				}
			}
			t.Errorf("no problem %+v containing %q; got:", tt.want, tt.msg)
			for _, pr := range probs {
				t.Errorf("  %s", pr)
			}
		})
	}
}

func TestCompileReportsAllProblemsAtOnce(t *testing.T) {
	t.Parallel()
	p := validPack()
	p.Rules[0].Level = "9"
	p.Rules[0].When = "child.agee > 1"
	p.Rules[1].RAG = "pink"
	p.Rules[1].Agencies = []string{"nobody"}
	p.Timescales.Green = "soon"
	_, probs := Compile(p)
	if len(probs) != 5 {
		t.Errorf("got %d problems, want 5:", len(probs))
		for _, pr := range probs {
			t.Errorf("  %s", pr)
		}
	}
}

func TestProblemString(t *testing.T) {
	t.Parallel()
	got := Problem{Rule: "r1", Field: "level", Line: 12, Message: "bad"}.String()
	if want := `line 12: rule "r1": level: bad`; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func TestParseStrict(t *testing.T) {
	t.Parallel()
	const good = `partnership: default
version: "1"
default_outcome: {level: "1", rag: green, pathway: nfa_advice, agencies: [], reason: none matched}
timescales: {red: 4 working hours, amber: 24 working hours, green: 72 hours, decision: 1 working day}
rules:
  - id: a
    description: d
    when: concern.NEGLECT
    level: 3a
    rag: amber
    pathway: taf
    agencies: [early_help]
    reason: r
tests:
  - name: t
    facts: {concerns: [NEGLECT], child: {age_years: 3}}
    expect: {level: 3a, rag: amber, pathway: taf, agencies: [early_help]}
`
	p, err := Parse([]byte(good))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if p.Rules[0].Line != 6 || p.Tests[0].Line != 15 {
		t.Errorf("lines: rule %d test %d, want 6 and 15", p.Rules[0].Line, p.Tests[0].Line)
	}
	if _, probs := Load([]byte(good)); len(probs) > 0 {
		t.Errorf("Load: %v", probs)
	}

	bad := []struct {
		name, src, want string
	}{
		{"misspelt rule key", strings.Replace(good, "    reason: r", "    reasn: r", 1), "line 13: key reasn is not a rule key"},
		{"misspelt top key", strings.Replace(good, "version:", "versoin:", 1), "line 2: key versoin is not a pack key"},
		{"misspelt facts key", strings.Replace(good, "age_years", "age", 1), "key age is not a facts.child key"},
		{"duplicate key", strings.Replace(good, "    level: 3a", "    level: 3a\n    level: 4", 1), `mapping key "level" already defined`},
		{"two documents", good + "---\nversion: 2\n", "more than one YAML document"},
		{"empty", "  \n", "empty"},
		{"not a mapping", "- a\n- b\n", "cannot unmarshal"},
	}
	for _, tt := range bad {
		if _, err := Parse([]byte(tt.src)); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Parse error = %v, want it to contain %q", tt.name, err, tt.want)
		}
	}
}

func TestLoadRequiresPassingTests(t *testing.T) {
	t.Parallel()
	p := validPack()
	p.Tests[0].Expect.Level = "4"
	p.Tests[0].Expect.Default = ptr(true)
	c := mustCompile(t, p)
	failures := c.RunTests()
	if len(failures) != 1 || failures[0].Test != "neglect" ||
		!strings.Contains(failures[0].String(), "level: want 4, got 3a") ||
		!strings.Contains(failures[0].String(), "default: want true, got false") ||
		!strings.Contains(failures[0].String(), "fired: [neglect]") {
		t.Errorf("RunTests = %v", failures)
	}
}

func TestLoad(t *testing.T) {
	t.Parallel()
	const src = `partnership: default
version: "1"
default_outcome: {level: "1", rag: green, pathway: nfa_advice, agencies: [], reason: none matched}
timescales: {red: 4 working hours, amber: 24 working hours, green: 72 hours, decision: 1 working day}
rules:
  - {id: a, description: d, when: concern.NEGLECT, level: 3a, rag: amber, pathway: taf, agencies: [early_help], reason: r}
`
	if _, probs := Load([]byte(src)); len(probs) != 1 || probs[0].Field != "tests" {
		t.Errorf("pack without tests: %v", probs)
	}
	failing := src + `tests:
  - {name: t, facts: {concerns: [NEGLECT]}, expect: {level: "4", rag: amber, pathway: taf, agencies: [early_help]}}
`
	if _, probs := Load([]byte(failing)); len(probs) != 1 || probs[0].Test != "t" || probs[0].Line != 8 ||
		!strings.Contains(probs[0].Message, "level: want 4, got 3a") {
		t.Errorf("failing test: %v", probs)
	}
	if _, probs := Load([]byte("rules: [")); len(probs) != 1 {
		t.Errorf("syntax error: %v", probs)
	}
}
