package pack

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"cel.dev/cel-go/cel"
)

// Problem is one thing wrong with a pack. Exactly one of Rule and Test is
// set when the problem belongs to a rule or a test case; Field names the key
// (e.g. "when", "level", "timescales.red", "expect.fired").
type Problem struct {
	Rule    string
	Test    string
	Field   string
	Line    int
	Message string
}

// String renders the problem for a person: where, then what.
func (p Problem) String() string {
	var b strings.Builder
	if p.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", p.Line)
	}
	switch {
	case p.Rule != "":
		fmt.Fprintf(&b, "rule %q: ", p.Rule)
	case p.Test != "":
		fmt.Fprintf(&b, "test %q: ", p.Test)
	}
	if p.Field != "" {
		b.WriteString(p.Field + ": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// Compiled is a validated pack, ready to evaluate. It is immutable and safe
// for concurrent use.
type Compiled struct {
	Partnership string
	Version     string
	Description string
	Timescales  Timescales
	// LevelNames are display names for each level.
	LevelNames map[Level]string
	// Agencies and Pathways are the vocabularies in force (id -> description).
	Agencies map[string]string
	Pathways map[string]string
	// Languages are the pack's languages: ["en"], or ["en", "cy"] for a
	// bilingual pack, whose every text has its Welsh.
	Languages []string
	// LevelNamesCy, AgenciesCy and PathwaysCy are the Welsh of LevelNames,
	// Agencies and Pathways; nil for an English-only pack.
	LevelNamesCy map[Level]string
	AgenciesCy   map[string]string
	PathwaysCy   map[string]string

	deflt Outcome
	rules []compiledRule
	tests []TestCase
	// concerns are the concern categories any rule mentions.
	concerns []string
}

type compiledRule struct {
	FiredRule
	prg programs
}

var (
	idPattern          = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,79}$`)
	partnershipPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)
)

// Compile validates a parsed pack as a whole and compiles every condition
// once. It returns every problem it finds, not just the first; the Compiled
// pack is nil unless there are none. Test cases are validated (their facts,
// expectations and rule ids) but not run: see RunTests and Load.
func Compile(p *Pack) (*Compiled, []Problem) {
	var probs []Problem
	add := func(pr Problem) { probs = append(probs, pr) }
	top := func(field, format string, args ...any) {
		add(Problem{Field: field, Message: fmt.Sprintf(format, args...)})
	}
	if p == nil {
		return nil, []Problem{{Message: "no pack"}}
	}
	c := &Compiled{
		Partnership: p.Partnership,
		Version:     p.Version,
		Description: p.Description,
		Agencies:    maps.Clone(p.Agencies),
		Pathways:    maps.Clone(p.Pathways),
		LevelNames:  make(map[Level]string, len(Levels)),
	}
	if p.Partnership != "default" && !partnershipPattern.MatchString(p.Partnership) {
		top("partnership", "must be a partnership slug (lower-case letters, digits, hyphens) or \"default\", got %q", p.Partnership)
	}
	if strings.TrimSpace(p.Version) == "" {
		top("version", "is required (e.g. \"2026.11.1\"), so every decision records which rules made it")
	}

	welsh := c.checkLanguages(p, top)

	// Vocabularies first: rules are checked against them.
	// Copies, so that nothing a caller does to a Compiled pack's maps can
	// reach the built-in vocabulary or another pack.
	if c.Agencies == nil {
		c.Agencies = maps.Clone(BuiltinAgencies)
	}
	if c.Pathways == nil {
		c.Pathways = maps.Clone(BuiltinPathways)
	}
	for _, v := range []struct {
		field string
		m     map[string]string
	}{{"agencies", c.Agencies}, {"pathways", c.Pathways}} {
		if len(v.m) == 0 {
			top(v.field, "is declared but empty; omit it to use the built-in vocabulary")
		}
		for _, id := range sortedKeys(v.m) {
			if !idPattern.MatchString(id) {
				top(v.field, "id %q must be lower-case letters, digits, '_', '-' or '.'", id)
			}
			if strings.TrimSpace(v.m[id]) == "" {
				top(v.field, "%q needs a description", id)
			}
		}
	}
	for _, l := range Levels {
		c.LevelNames[l] = DefaultLevelNames[l]
	}
	c.checkWelshVocabularies(p, welsh, top)
	for _, k := range sortedKeys(p.Levels) {
		l, err := ParseLevel(k)
		if err != nil {
			top("levels", "%v; levels are fixed, a pack can only rename them", err)
			continue
		}
		if strings.TrimSpace(p.Levels[k]) == "" {
			top("levels", "level %s needs a name", k)
			continue
		}
		c.LevelNames[l] = p.Levels[k]
	}

	// Timescales.
	for _, ts := range []struct {
		field string
		text  string
		dst   *Timescale
	}{
		{"timescales.red", p.Timescales.Red, &c.Timescales.Red},
		{"timescales.amber", p.Timescales.Amber, &c.Timescales.Amber},
		{"timescales.green", p.Timescales.Green, &c.Timescales.Green},
		{"timescales.decision", p.Timescales.Decision, &c.Timescales.Decision},
	} {
		if ts.text == "" {
			top(ts.field, "is required (e.g. \"4 working hours\" or \"72 hours\")")
			continue
		}
		parsed, err := ParseTimescale(ts.text)
		if err != nil {
			top(ts.field, "%v", err)
			continue
		}
		*ts.dst = parsed
	}

	// The default outcome: it must be as valid as a rule's, because it is
	// what every unmatched referral gets.
	d := p.DefaultOutcome
	c.deflt = Outcome{Pathway: d.Pathway, Reason: d.Reason, ReasonCy: d.ReasonCy, DefaultApplied: true}
	check := outcomeChecker{c: c, add: add}
	c.deflt.Level = check.level(Problem{Field: "default_outcome.level"}, d.Level)
	c.deflt.RAG = check.rag(Problem{Field: "default_outcome.rag"}, d.RAG)
	check.pathway(Problem{Field: "default_outcome.pathway"}, d.Pathway)
	c.deflt.Agencies = check.agencies(Problem{Field: "default_outcome.agencies"}, d.Agencies)
	if strings.TrimSpace(d.Reason) == "" {
		top("default_outcome.reason", "is required: it is what people are told when no rule matched")
	}
	checkWelsh(welsh, Problem{Field: "default_outcome.reason_cy"}, d.ReasonCy, add)
	if d.Pathway != "" {
		c.deflt.Pathways = []string{d.Pathway}
	}

	c.compileRules(p.Rules, welsh, add)
	c.checkTests(p.Tests, add)
	if len(probs) > 0 {
		return nil, probs
	}
	return c, nil
}

func (c *Compiled) compileRules(rules []Rule, welsh bool, add func(Problem)) {
	if len(rules) == 0 {
		add(Problem{Field: "rules", Message: "a pack needs at least one rule"})
		return
	}
	env, err := sharedEnv()
	if err != nil {
		// Only a bug in newEnv gets here; say so rather than panic.
		add(Problem{Field: "rules", Message: "internal error building the expression environment: " + err.Error()})
		return
	}
	check := outcomeChecker{c: c, add: add}
	seen := make(map[string]int, len(rules))
	var mentioned []string
	for i, r := range rules {
		name := r.ID
		if name == "" {
			name = fmt.Sprintf("#%d", i+1)
		}
		at := Problem{Rule: name, Line: r.Line}
		prob := func(field, format string, args ...any) {
			pr := at
			pr.Field, pr.Message = field, fmt.Sprintf(format, args...)
			add(pr)
		}
		switch {
		case r.ID == "":
			prob("id", "is required")
		case !idPattern.MatchString(r.ID):
			prob("id", "must be lower-case letters, digits, '_', '-' or '.' (at most 80), got %q", r.ID)
		}
		if first, dup := seen[r.ID]; dup && r.ID != "" {
			prob("id", "duplicate: rule %d has the same id; ids must be unique so fired rules can be traced", first+1)
		} else {
			seen[r.ID] = i
		}
		if strings.TrimSpace(r.Description) == "" {
			prob("description", "is required: say in plain English what the rule looks for")
		}
		if strings.TrimSpace(r.Reason) == "" {
			prob("reason", "is required: it is the reason shown to people when the rule fires")
		}
		checkWelsh(welsh, at.with("description_cy"), r.DescriptionCy, add)
		checkWelsh(welsh, at.with("reason_cy"), r.ReasonCy, add)
		cr := compiledRule{FiredRule: FiredRule{ID: r.ID, Description: r.Description, Reason: r.Reason, Pathway: r.Pathway,
			DescriptionCy: r.DescriptionCy, ReasonCy: r.ReasonCy}}
		cr.Level = check.level(at.with("level"), r.Level)
		cr.RAG = check.rag(at.with("rag"), r.RAG)
		check.pathway(at.with("pathway"), r.Pathway)
		cr.Agencies = check.agencies(at.with("agencies"), r.Agencies)

		prg, cats, msgs := compileCondition(env, r.When)
		for _, m := range msgs {
			prob("when", "%s", m)
		}
		mentioned = append(mentioned, cats...)
		cr.prg = prg
		c.rules = append(c.rules, cr)
	}
	slices.Sort(mentioned)
	c.concerns = slices.Compact(mentioned)
}

// compileCondition parses, type-checks, lints and plans one condition.
func compileCondition(env *cel.Env, src string) (programs, []string, []string) {
	if strings.TrimSpace(src) == "" {
		return programs{}, nil, []string{"is required: a CEL expression that is true when the rule applies"}
	}
	a, iss := env.Compile(src)
	if iss != nil && iss.Err() != nil {
		var msgs []string
		for _, e := range iss.Errors() {
			msgs = append(msgs, fmt.Sprintf("%d:%d: %s", e.Location.Line(), e.Location.Column()+1, e.Message))
		}
		return programs{}, nil, msgs
	}
	if !a.OutputType().IsExactType(cel.BoolType) {
		return programs{}, nil, []string{fmt.Sprintf("must be true or false, but this expression gives %s", a.OutputType())}
	}
	msgs, cats := lint(a)
	est, err := env.EstimateCost(a, sizeEstimator{})
	switch {
	case err != nil:
		msgs = append(msgs, "cannot estimate cost: "+err.Error())
	case est.Max > MaxRuleCost:
		msgs = append(msgs, fmt.Sprintf("may cost up to %d units to evaluate, more than the limit of %d; simplify it", est.Max, MaxRuleCost))
	}
	if len(msgs) > 0 {
		return programs{}, cats, msgs
	}
	prg, err := env.Program(a, cel.EvalOptions(cel.OptOptimize))
	if err != nil {
		return programs{}, cats, []string{"cannot plan evaluation: " + err.Error()}
	}
	// The static estimate holds only for facts within the sizes it assumed.
	// Runtime cost tracking would enforce the limit for any facts but doubles
	// the cost of every evaluation, so it is planned separately and used only
	// for oversized facts (see Facts.withinEstimate).
	guarded, err := env.Program(a, cel.EvalOptions(cel.OptOptimize), cel.CostLimit(MaxRuleCost))
	if err != nil {
		return programs{}, cats, []string{"cannot plan evaluation: " + err.Error()}
	}
	return programs{fast: prg, guarded: guarded}, cats, nil
}

// programs are the two plans of one condition: fast for facts within the
// cost estimate's assumptions, guarded (runtime cost limit) for any others.
type programs struct {
	fast, guarded cel.Program
}

func (p Problem) with(field string) Problem { p.Field = field; return p }

// outcomeChecker validates the outcome fields shared by rules and the
// default outcome, reporting through add with the caller's location.
type outcomeChecker struct {
	c   *Compiled
	add func(Problem)
}

func (k outcomeChecker) report(at Problem, format string, args ...any) {
	at.Message = fmt.Sprintf(format, args...)
	k.add(at)
}

func (k outcomeChecker) level(at Problem, s string) Level {
	if s == "" {
		k.report(at, "is required (one of 1, 2, 3a, 3b, 4)")
		return LevelNone
	}
	l, err := ParseLevel(s)
	if err != nil {
		k.report(at, "%v", err)
	}
	return l
}

func (k outcomeChecker) rag(at Problem, s string) RAG {
	if s == "" {
		k.report(at, "is required (red, amber, green or none)")
		return RAGNone
	}
	r, err := ParseRAG(s)
	if err != nil {
		k.report(at, "%v", err)
	}
	return r
}

func (k outcomeChecker) pathway(at Problem, s string) {
	switch {
	case s == "":
		k.report(at, "is required")
	case k.c.Pathways[s] == "":
		k.report(at, "unknown pathway %q (declared: %s)", s, strings.Join(sortedKeys(k.c.Pathways), ", "))
	}
}

func (k outcomeChecker) agencies(at Problem, ids []string) []string {
	out := make([]string, 0, len(ids))
	for _, a := range ids {
		if k.c.Agencies[a] == "" {
			k.report(at, "unknown agency %q (declared: %s)", a, strings.Join(sortedKeys(k.c.Agencies), ", "))
			continue
		}
		if slices.Contains(out, a) {
			k.report(at, "agency %q is listed twice", a)
			continue
		}
		out = append(out, a)
	}
	slices.Sort(out)
	return out
}

// ReferencedConcerns returns the concern categories that at least one rule
// condition mentions (as concern.X or as a string literal), sorted.
func (c *Compiled) ReferencedConcerns() []string { return slices.Clone(c.concerns) }

// RuleIDs returns the rule ids in file order.
func (c *Compiled) RuleIDs() []string {
	ids := make([]string, len(c.rules))
	for i, r := range c.rules {
		ids[i] = r.ID
	}
	return ids
}

// Rules returns each rule's outcome fields (id, description, reason, level,
// RAG, pathway, agencies) in file order, for display and review.
func (c *Compiled) Rules() []FiredRule {
	out := make([]FiredRule, len(c.rules))
	for i, r := range c.rules {
		out[i] = r.FiredRule
		out[i].Agencies = slices.Clone(r.Agencies)
	}
	return out
}
