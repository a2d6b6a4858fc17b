package pack

import (
	"fmt"
	"slices"
	"strings"
	"sync"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/cost"
	"cel.dev/cel-go/common/operators"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
)

// Limits on a rule condition. They bound the work one evaluation can do, so
// a pack cannot make the hub slow however it is written.
const (
	// MaxConditionChars caps the length of a `when` expression; a condition
	// a safeguarding lead can read is far shorter.
	MaxConditionChars = 4000
	// MaxRuleCost caps the statically estimated cost of one condition (CEL
	// cost units, roughly one per operation), assuming at most
	// estimatedCollectionSize concerns or map entries. Typical rules cost
	// under 50.
	MaxRuleCost = 10000
	// maxCollectionSize is the most concerns or history map entries the fast
	// evaluation path accepts (there are 24 categories); larger facts are
	// evaluated with a runtime cost limit instead.
	maxCollectionSize = 64
	// estimatedCollectionSize is the size the cost estimate assumes for
	// lists and maps: maxCollectionSize plus the keys the engine itself adds
	// to history maps (every category and level, at 0).
	estimatedCollectionSize = 128
	// maxStringSize is the length assumed for string facts when estimating.
	maxStringSize = 64
)

// variable is one name rules can use, with its CEL type.
type variable struct {
	name string
	typ  *cel.Type
	// values, if set, are the only strings the variable can hold; a
	// condition comparing it with any other literal is a problem, because it
	// can never be true (a typo such as risk.dash == "HIGHH").
	values []string
}

// variables declares the facts model. concern.<CATEGORY> variables are
// added per category by newEnv.
var variables = []variable{
	{name: "concerns", typ: cel.ListType(cel.StringType)},
	{name: "child.age_years", typ: cel.IntType},
	{name: "child.age_months", typ: cel.IntType},
	{name: "child.age_known", typ: cel.BoolType},
	{name: "child.unborn", typ: cel.BoolType},
	{name: "child.school_age", typ: cel.BoolType},
	{name: "child.non_mobile", typ: cel.BoolType},
	{name: "child.pregnant", typ: cel.BoolType},
	{name: "child.disclosure", typ: cel.BoolType},
	{name: "child.injured", typ: cel.BoolType},
	{name: "child.present", typ: cel.BoolType},
	{name: "child.age_estimated", typ: cel.BoolType},
	{name: "child.disabled", typ: cel.BoolType},
	{name: "child.homeless", typ: cel.BoolType},
	{name: "risk.immediate_danger", typ: cel.BoolType},
	{name: "risk.dash", typ: cel.StringType, values: DASHGrades},
	{name: "risk.dash_score", typ: cel.IntType},
	{name: "risk.police_incidents_12m", typ: cel.IntType},
	{name: "risk.suspect_has_access", typ: cel.BoolType},
	{name: "risk.dangerous_adult", typ: cel.BoolType},
	{name: "risk.missing_episodes_12m", typ: cel.IntType},
	{name: "risk.siblings_removed", typ: cel.BoolType},
	{name: "risk.parent_in_prison", typ: cel.BoolType},
	{name: "risk.medical_neglect", typ: cel.BoolType},
	{name: "risk.caring_affects_child", typ: cel.BoolType},
	{name: "risk.household_member_on_plan", typ: cel.BoolType},
	{name: "risk.parent_under_18", typ: cel.BoolType},
	{name: "consent.status", typ: cel.StringType, values: ConsentStatuses},
	{name: "referrer.kind", typ: cel.StringType, values: AgencyKinds},
	{name: "history.referrals_12m", typ: cel.IntType},
	{name: "history.by_category_12m", typ: cel.MapType(cel.StringType, cel.IntType), values: ConcernCategories},
	{name: "history.by_level_12m", typ: cel.MapType(cel.StringType, cel.IntType), values: levelSpellings[1:]},
	{name: "history.open_case", typ: cel.BoolType},
	{name: "history.previous_level", typ: cel.StringType, values: levelSpellings},
}

// concernPrefix starts the per-category boolean variables.
const concernPrefix = "concern."

// sharedEnv is the CEL environment every pack compiles in. It is the same
// for every pack (only the conditions differ) and a cel.Env is immutable and
// safe for concurrent use, so it is built once.
var sharedEnv = sync.OnceValues(newEnv)

func newEnv() (*cel.Env, error) {
	opts := []cel.EnvOption{
		cel.ParserExpressionSizeLimit(MaxConditionChars),
		// level_at_least(history.previous_level, "3a"): true when the first
		// level is at or above the second; false for "" (no level). Levels
		// are strings in the facts so leads can read them, and comparing the
		// strings directly would be fragile, hence a function.
		cel.Function("level_at_least",
			cel.Overload("level_at_least_string_string",
				[]*cel.Type{cel.StringType, cel.StringType}, cel.BoolType,
				cel.BinaryBinding(levelAtLeast))),
	}
	for _, v := range variables {
		opts = append(opts, cel.Variable(v.name, v.typ))
	}
	for _, c := range ConcernCategories {
		opts = append(opts, cel.Variable(concernPrefix+c, cel.BoolType))
	}
	return cel.NewEnv(opts...)
}

func levelAtLeast(a, b ref.Val) ref.Val {
	as, ok1 := a.(types.String)
	bs, ok2 := b.(types.String)
	if !ok1 || !ok2 {
		return types.NewErr("level_at_least: want two strings")
	}
	want, err := ParseLevel(string(bs))
	if err != nil {
		return types.NewErr("level_at_least: %v", err)
	}
	if as == "" {
		return types.False
	}
	have, err := ParseLevel(string(as))
	if err != nil {
		return types.NewErr("level_at_least: %v", err)
	}
	return types.Bool(have >= want)
}

// sizeEstimator tells the cost estimator how big facts can be.
type sizeEstimator struct{}

func (sizeEstimator) EstimateSize(n cost.AstNode) *cost.SizeEstimate {
	if len(n.Path()) == 0 {
		return nil
	}
	switch n.Type().Kind() {
	case types.ListKind, types.MapKind:
		return &cost.SizeEstimate{Min: 0, Max: estimatedCollectionSize}
	case types.StringKind:
		return &cost.SizeEstimate{Min: 0, Max: maxStringSize}
	}
	return nil
}

func (sizeEstimator) EstimateCallCost(string, string, *cost.AstNode, []cost.AstNode) *cost.CallEstimate {
	return nil
}

// lint inspects a checked condition for mistakes CEL's type checker cannot
// see, because the values are strings: a literal that no fact can equal
// (risk.dash == "HIGHH", "NEGLCT" in concerns, history.by_level_12m["3c"],
// level_at_least(x, "5")). It also returns the concern categories the
// condition mentions, for coverage reports.
func lint(a *cel.Ast) (problems []string, categories []string) {
	native := a.NativeRep()
	refs := native.ReferenceMap()
	nameOf := func(e ast.Expr) string {
		if r, ok := refs[e.ID()]; ok && r.Name != "" {
			return r.Name
		}
		if e.Kind() == ast.IdentKind {
			return e.AsIdent()
		}
		return ""
	}
	check := func(varName string, lit ast.Expr, isKey bool) {
		s, ok := stringLiteral(lit)
		if !ok {
			return
		}
		values := allowedValues(varName)
		switch {
		case values == nil || slices.Contains(values, s):
		case isKey:
			problems = append(problems, fmt.Sprintf("%s has no key %q (keys are %s)", varName, s, oneOf(values)))
		default:
			problems = append(problems, fmt.Sprintf("%s can never be %q (want one of %s)", varName, s, oneOf(values)))
		}
	}
	ast.PreOrderVisit(native.Expr(), ast.NewExprVisitor(func(e ast.Expr) {
		switch e.Kind() {
		case ast.IdentKind:
			if c, ok := strings.CutPrefix(nameOf(e), concernPrefix); ok {
				categories = append(categories, c)
			}
		case ast.LiteralKind:
			if s, ok := stringLiteral(e); ok && isCategory(s) {
				categories = append(categories, s)
			}
		case ast.CallKind:
			call := e.AsCall()
			args := call.Args()
			switch call.FunctionName() {
			case operators.Equals, operators.NotEquals:
				if len(args) == 2 {
					check(nameOf(args[0]), args[1], false)
					check(nameOf(args[1]), args[0], false)
				}
			case operators.In:
				if len(args) != 2 {
					return
				}
				if nameOf(args[1]) == "concerns" {
					if s, ok := stringLiteral(args[0]); ok && !isCategory(s) {
						problems = append(problems, fmt.Sprintf("%q is not a concern category", s))
					}
				}
				if args[1].Kind() == ast.ListKind {
					for _, el := range args[1].AsList().Elements() {
						check(nameOf(args[0]), el, false)
					}
				}
			case operators.Index:
				if len(args) == 2 {
					check(nameOf(args[0]), args[1], true)
				}
			case "level_at_least":
				for _, arg := range args {
					if s, ok := stringLiteral(arg); ok {
						if _, err := ParseLevel(s); err != nil {
							problems = append(problems, "level_at_least: "+err.Error())
						}
					}
				}
			}
		}
	}))
	slices.Sort(categories)
	return problems, slices.Compact(categories)
}

func allowedValues(varName string) []string {
	for _, v := range variables {
		if v.name == varName {
			return v.values
		}
	}
	return nil
}

func stringLiteral(e ast.Expr) (string, bool) {
	if e.Kind() != ast.LiteralKind {
		return "", false
	}
	s, ok := e.AsLiteral().(types.String)
	return string(s), ok
}
