package pack

import (
	"fmt"
	"slices"
	"strings"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/interpreter"
)

// FiredRule is a rule that matched, with the outcome it contributes.
type FiredRule struct {
	ID          string
	Description string
	Reason      string
	// DescriptionCy and ReasonCy are the Welsh texts; empty for an English-only pack.
	DescriptionCy string
	ReasonCy      string
	Level         Level
	RAG           RAG
	Pathway       string
	Agencies      []string
}

// EvalError records a rule whose condition failed to evaluate. The rule is
// treated as not fired, and the error is kept in the outcome so a person
// sees that the suggestion may be incomplete; it is never silently dropped.
type EvalError struct {
	Rule    string
	Message string
}

// Outcome is the combined result of evaluating a pack against one referral.
// See doc.go for how fired rules combine.
type Outcome struct {
	Partnership string
	PackVersion string
	Level       Level
	RAG         RAG
	// Pathway is the primary pathway: that of the fired rule with the highest
	// level, then the most urgent RAG, then the earliest in the file.
	Pathway string
	// Pathways are all distinct pathways of fired rules, primary first, then
	// in file order (e.g. assessment, marac, operation_encompass).
	Pathways []string
	// Agencies is the sorted union of the agencies of fired rules.
	Agencies []string
	// Reason is the primary rule's reason, or the default outcome's.
	Reason string
	// ReasonCy is Reason in Welsh; empty for an English-only pack.
	ReasonCy string
	// Fired lists every rule that fired, in file order.
	Fired []FiredRule
	// DefaultApplied is true when no rule fired and the pack's default
	// outcome was used (no closed doors).
	DefaultApplied bool
	// Errors lists rules that could not be evaluated; non-empty means the
	// outcome may be lower than it should be and needs a person's check.
	Errors []EvalError
}

// Evaluate applies every rule to the facts and combines the rules that
// fired. It is deterministic, never panics, and is safe to call from many
// goroutines at once.
func (c *Compiled) Evaluate(f Facts) Outcome {
	act := &activation{f: &f, guarded: !f.withinEstimate()}
	out := Outcome{Partnership: c.Partnership, PackVersion: c.Version}
	primary := -1
	for i := range c.rules {
		r := &c.rules[i]
		hit, err := r.eval(act)
		if err != nil {
			out.Errors = append(out.Errors, EvalError{Rule: r.ID, Message: err.Error()})
			continue
		}
		if !hit {
			continue
		}
		out.Fired = append(out.Fired, r.FiredRule)
		if primary < 0 || outranks(r.FiredRule, c.rules[primary].FiredRule) {
			primary = i
		}
	}
	if primary < 0 {
		d := c.deflt
		d.Partnership, d.PackVersion = c.Partnership, c.Version
		d.Pathways = slices.Clone(d.Pathways)
		d.Agencies = slices.Clone(d.Agencies)
		d.Errors = out.Errors
		return d
	}
	p := c.rules[primary]
	out.Pathway, out.Reason, out.ReasonCy = p.Pathway, p.Reason, p.ReasonCy
	out.Pathways = append(out.Pathways, p.Pathway)
	n := 0
	for _, fr := range out.Fired {
		n += len(fr.Agencies)
	}
	// Fired rules get their own copies of their agency lists (one backing
	// array for all), so a caller editing an outcome cannot edit the pack.
	own := make([]string, 0, n)
	for i := range out.Fired {
		fr := &out.Fired[i]
		start := len(own)
		own = append(own, fr.Agencies...)
		fr.Agencies = own[start:len(own):len(own)]
		out.Level = max(out.Level, fr.Level)
		out.RAG = max(out.RAG, fr.RAG)
		if !slices.Contains(out.Pathways, fr.Pathway) {
			out.Pathways = append(out.Pathways, fr.Pathway)
		}
	}
	out.Agencies = slices.Clone(own)
	slices.Sort(out.Agencies)
	out.Agencies = slices.Compact(out.Agencies)
	return out
}

// outranks reports whether a beats b for the primary pathway: higher level,
// then more urgent RAG. Ties keep b, the earlier rule in the file.
func outranks(a, b FiredRule) bool {
	if a.Level != b.Level {
		return a.Level > b.Level
	}
	return a.RAG > b.RAG
}

// eval runs one condition. A panic anywhere below (cel-go recovers its own,
// this is for ours) becomes an error like any other evaluation failure.
func (r *compiledRule) eval(act *activation) (hit bool, err error) {
	defer func() {
		if p := recover(); p != nil {
			hit, err = false, fmt.Errorf("internal error: %v", p)
		}
	}()
	prg := r.prg.fast
	if act.guarded {
		prg = r.prg.guarded
	}
	v, _, err := prg.Eval(act)
	if err != nil {
		return false, err
	}
	b, ok := v.(types.Bool)
	if !ok {
		return false, fmt.Errorf("condition gave %s, not true or false", v.Type().TypeName())
	}
	return bool(b), nil
}

// activation resolves CEL names against one Facts value. Lists and maps are
// built on first use and shared by all rules in the evaluation; scalars are
// converted on each lookup, which costs no allocation.
type activation struct {
	f *Facts
	// guarded selects the cost-limited programs, for oversized facts.
	guarded  bool
	concerns ref.Val
	byCat    ref.Val
	byLevel  ref.Val
}

var _ interpreter.Activation = (*activation)(nil)

func (a *activation) Parent() interpreter.Activation { return nil }

// ResolveName implements interpreter.Activation.
func (a *activation) ResolveName(name string) (any, bool) {
	f := a.f
	switch name {
	case "concerns":
		if a.concerns == nil {
			a.concerns = types.NewStringList(types.DefaultTypeAdapter, f.Concerns)
		}
		return a.concerns, true
	case "child.age_years":
		return types.Int(f.Child.AgeYears), true
	case "child.age_months":
		return types.Int(f.Child.AgeMonths), true
	case "child.age_known":
		return types.Bool(f.Child.AgeKnown), true
	case "child.unborn":
		return types.Bool(f.Child.Unborn), true
	case "child.school_age":
		return types.Bool(f.Child.SchoolAge), true
	case "child.non_mobile":
		return types.Bool(f.Child.NonMobile), true
	case "child.pregnant":
		return types.Bool(f.Child.Pregnant), true
	case "child.disclosure":
		return types.Bool(f.Child.Disclosure), true
	case "child.injured":
		return types.Bool(f.Child.Injured), true
	case "child.present":
		return types.Bool(f.Child.Present), true
	case "child.age_estimated":
		return types.Bool(f.Child.AgeEstimated), true
	case "child.disabled":
		return types.Bool(f.Child.Disabled), true
	case "child.homeless":
		return types.Bool(f.Child.Homeless), true
	case "risk.immediate_danger":
		return types.Bool(f.Risk.ImmediateDanger), true
	case "risk.dash":
		return types.String(f.Risk.DASH), true
	case "risk.dash_score":
		return types.Int(f.Risk.DASHScore), true
	case "risk.police_incidents_12m":
		return types.Int(f.Risk.PoliceIncidents), true
	case "risk.suspect_has_access":
		return types.Bool(f.Risk.SuspectHasAccess), true
	case "risk.dangerous_adult":
		return types.Bool(f.Risk.DangerousAdult), true
	case "risk.missing_episodes_12m":
		return types.Int(f.Risk.MissingEpisodes), true
	case "risk.siblings_removed":
		return types.Bool(f.Risk.SiblingsRemoved), true
	case "risk.parent_in_prison":
		return types.Bool(f.Risk.ParentInPrison), true
	case "risk.medical_neglect":
		return types.Bool(f.Risk.MedicalNeglect), true
	case "risk.caring_affects_child":
		return types.Bool(f.Risk.CaringAffectsChild), true
	case "risk.household_member_on_plan":
		return types.Bool(f.Risk.HouseholdMemberOnPlan), true
	case "risk.parent_under_18":
		return types.Bool(f.Risk.ParentUnder18), true
	case "consent.status":
		return types.String(f.ConsentStatus), true
	case "referrer.kind":
		return types.String(f.ReferrerKind), true
	case "history.referrals_12m":
		return types.Int(f.History.Referrals12m), true
	case "history.by_category_12m":
		if a.byCat == nil {
			a.byCat = countMap(ConcernCategories, f.History.ByCategory12m)
		}
		return a.byCat, true
	case "history.by_level_12m":
		if a.byLevel == nil {
			counts := make(map[string]int, len(f.History.ByLevel12m))
			for l, n := range f.History.ByLevel12m {
				counts[l.String()] = n
			}
			a.byLevel = countMap(levelSpellings[1:], counts)
		}
		return a.byLevel, true
	case "history.open_case":
		return types.Bool(f.History.OpenCase), true
	case "history.previous_level":
		return types.String(f.History.PreviousLevel.String()), true
	}
	if cat, ok := strings.CutPrefix(name, concernPrefix); ok {
		return types.Bool(slices.Contains(f.Concerns, cat)), true
	}
	return nil, false
}

// withinEstimate reports whether the facts are within the sizes the static
// cost estimate assumed, so the fast programs are safe to run.
func (f *Facts) withinEstimate() bool {
	if len(f.Concerns) > maxCollectionSize || len(f.History.ByCategory12m) > maxCollectionSize ||
		len(f.History.ByLevel12m) > maxCollectionSize {
		return false
	}
	for _, s := range []string{f.Risk.DASH, f.ConsentStatus, f.ReferrerKind} {
		if len(s) > maxStringSize {
			return false
		}
	}
	for _, s := range f.Concerns {
		if len(s) > maxStringSize {
			return false
		}
	}
	return true
}

// countMap returns counts as a CEL map in which every known key is present
// (0 if not counted), so history.by_category_12m["NEGLECT"] is 0 rather than
// a "no such key" error for a child with no neglect history.
func countMap(known []string, counts map[string]int) ref.Val {
	m := make(map[string]int64, len(known)+len(counts))
	for _, k := range known {
		m[k] = 0
	}
	for k, n := range counts {
		m[k] = int64(n)
	}
	return types.NewMap(types.DefaultTypeAdapter, m)
}
