// Package pack is the threshold rules engine of the MASH: it parses a rule
// pack (a YAML file a safeguarding lead can read), validates it as a whole,
// compiles its conditions once, evaluates referrals against it and runs the
// pack's own test cases. It does no I/O besides parsing the bytes it is
// given; the rules service stores packs, loads history and records outcomes.
//
// # Pack file format
//
// A pack is one YAML document, decoded strictly: an unknown or misspelt key,
// a duplicate key or a second document is an error naming the line.
//
//	partnership: default            # partnership slug, or "default"
//	version: "2026.11.1"            # recorded on every outcome
//	description: ...
//	default_outcome:                # no closed doors: used when no rule fires
//	  {level: "1", rag: green, pathway: nfa_advice, agencies: [], reason: ...}
//	timescales:                     # "N working hours|days" or "N hours|days"
//	  {red: 4 working hours, amber: 24 working hours, green: 72 hours, decision: 1 working day}
//	levels: {"1": Universal, ...}   # optional display names; levels are fixed
//	agencies: {police: ..., ...}    # optional: the agency roles rules may use
//	pathways: {taf: ..., ...}       # optional: the pathways rules may use
//	rules:
//	  - id: neglect-school-age      # lower-case, unique
//	    description: Neglect of a school-age child.
//	    when: concern.NEGLECT && child.school_age      # CEL, must be bool
//	    level: 3a                   # 1, 2, 3a, 3b, 4
//	    rag: amber                  # red, amber, green, none
//	    pathway: taf
//	    agencies: [early_help, school_dsl]
//	    reason: Shown to people when the rule fires.
//	tests:
//	  - name: neglect of a school-age child
//	    facts: {concerns: [NEGLECT], child: {age_years: 9}}
//	    expect: {level: 3a, rag: amber, pathway: taf, agencies: [early_help, school_dsl],
//	             fired: [neglect-school-age], not_fired: [], default: false}
//
// Timescales: "working" clocks count only the partnership's working hours on
// working days (pkg/calendar, bank holidays excluded); the others run
// continuously. Terse forms like "4h" are refused because they do not say
// which. Agencies and pathways default to BuiltinAgencies and
// BuiltinPathways; a pack that declares them uses exactly its own lists.
//
// Compile reports every problem at once, each naming the rule or test and
// the key: missing or duplicate ids, CEL syntax and type errors, conditions
// that are not true/false, unknown variables, levels, RAG ratings, agencies
// and pathways, missing descriptions and reasons, bad timescales, literals no
// fact can equal (risk.dash == "HIGHH", history.by_level_12m["3c"]), test
// facts outside the vocabularies and test expectations naming unknown rules.
// Load adds the pack's own tests: a pack with no tests, or a failing one,
// cannot be activated.
//
// # Facts model
//
// Conditions see flat, readable facts (type Facts), not protobuf:
//
//	concerns                      list of category names, sorted, e.g. ["NEGLECT"]
//	concern.<CATEGORY>            bool per intake category, e.g. concern.NEGLECT
//	child.age_years, child.age_months                 int (0 for unborn)
//	child.age_known, child.unborn, child.school_age   bool (school age: 4..17)
//	child.non_mobile, child.pregnant                  bool, as referred
//	child.disclosure, child.injured, child.present    bool, true if any concern says so
//	child.age_estimated           bool, the age is the referrer's estimate (no date of birth)
//	child.disabled, child.homeless                    bool (homeless: a 16-17 year old themselves)
//	risk.immediate_danger, risk.suspect_has_access, risk.dangerous_adult   bool
//	risk.dash                     "STANDARD", "MEDIUM", "HIGH", "NOT_ASSESSED" or ""
//	risk.dash_score, risk.police_incidents_12m, risk.missing_episodes_12m  int
//	risk.siblings_removed, risk.parent_in_prison, risk.medical_neglect,
//	risk.caring_affects_child, risk.household_member_on_plan,
//	risk.parent_under_18 (a mother or father in the household under 18)    bool
//	consent.status                "GIVEN", "REFUSED", "NOT_SOUGHT" or ""
//	referrer.kind                 agency kind: police, health, education, ...
//	history.referrals_12m         int, earlier referrals (this one not counted)
//	history.by_category_12m       map category -> count (every category present)
//	history.by_level_12m          map "1".."4" -> count (every level present)
//	history.open_case             bool
//	history.previous_level        "1", "2", "3a", "3b", "4" or "" for none
//
// concern.NEGLECT is preferred to "NEGLECT" in concerns because a misspelt
// category is then a compile error. One helper function is provided:
// level_at_least(a, b) is true when level a is at or above level b ("" is
// below every level); levels are strings for readability and must not be
// compared with < on strings. The standard CEL macros (exists, all, map,
// filter, has) are available; conditions are bounded by MaxConditionChars and
// a static cost estimate (MaxRuleCost), so no pack can make evaluation slow.
//
// # Combining fired rules
//
// Every rule is evaluated; those whose condition is true fire. The outcome
// level is the highest level of any fired rule and the RAG the most urgent
// RAG of any fired rule (they may come from different rules). The primary
// pathway (and reason) is that of the fired rule with the highest level,
// then the most urgent RAG, then the earliest in the file; Pathways lists
// every fired rule's pathway, primary first. Agencies are the sorted union.
// Every fired rule is kept, in file order, with its reason. When no rule
// fires, the pack's default outcome applies (no closed doors).
//
// A rule whose condition fails at run time (for example a division by zero,
// or a map key that is not there) is treated as not fired and the failure is
// recorded in Outcome.Errors. Not fired, because a rule that cannot be
// evaluated gives no evidence; recorded, because the outcome may then be
// lower than it should be and a person must see that. Evaluate never panics.
package pack
