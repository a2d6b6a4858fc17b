package corpus

import (
	"github.com/mash-hub/mash/services/rules/pack"
)

// Result is what a pack decided for one vignette.
type Result struct {
	Vignette Vignette
	Outcome  pack.Outcome
	// Facts are what the rules saw, history included.
	Facts pack.Facts
	// EarlierLevels are the levels the pack gave the earlier referrals, oldest first.
	EarlierLevels []pack.Level
}

// Level is the decided level.
func (r Result) Level() pack.Level { return r.Outcome.Level }

// Exact reports whether the pack decided the vignette's preferred level.
func (r Result) Exact() bool { return r.Outcome.Level == r.Vignette.PreferredLevel }

// Accepted reports whether the decided level is one the cited sources accept.
func (r Result) Accepted() bool {
	for _, l := range r.Vignette.Accept {
		if l == r.Outcome.Level {
			return true
		}
	}
	return false
}

// Safe reports whether the decided level is at or above the lowest accepted level.
func (r Result) Safe() bool { return r.Outcome.Level >= r.Vignette.Lowest() }

// EarlierFacts are the facts of an earlier referral: the same child (as the vignette
// describes them now) with that referral's concerns and referrer, no risk indicators.
func EarlierFacts(v Vignette, e Earlier) pack.TestFacts {
	t := pack.TestFacts{Concerns: e.Concerns, Referrer: pack.TestReferrer{Kind: e.Referrer}}
	t.Child = pack.TestChild{AgeYears: v.Facts.Child.AgeYears, AgeMonths: v.Facts.Child.AgeMonths,
		Unborn: v.Facts.Child.Unborn, AgeEstimated: v.Facts.Child.AgeEstimated, Disabled: v.Facts.Child.Disabled}
	return t
}

// Run decides a vignette with c. Earlier referrals are decided first, in order, each
// seeing the ones before it as history, counted as the rules service counts a child's
// history (every earlier referral in the 12 months, by concern category once per referral
// and by decided level, the most recent level as previous_level). A decision the hub has
// only recommended opens no case, so open_case stays false, as it does for a child whose
// earlier referrals no practitioner has yet confirmed.
func Run(c *pack.Compiled, v Vignette) Result {
	var hist pack.History
	var earlier []pack.Level
	for _, e := range v.Earlier {
		f := EarlierFacts(v, e).Facts()
		f.History = cloneHistory(hist)
		out := c.Evaluate(f)
		earlier = append(earlier, out.Level)
		hist = add(hist, e.Concerns, out.Level)
	}
	f := v.Facts.Facts()
	f.History = hist
	return Result{Vignette: v, Outcome: c.Evaluate(f), Facts: f, EarlierLevels: earlier}
}

func add(h pack.History, concerns []string, level pack.Level) pack.History {
	h = cloneHistory(h)
	if h.ByCategory12m == nil {
		h.ByCategory12m = map[string]int{}
	}
	if h.ByLevel12m == nil {
		h.ByLevel12m = map[pack.Level]int{}
	}
	h.Referrals12m++
	seen := map[string]bool{}
	for _, c := range concerns {
		if !seen[c] {
			h.ByCategory12m[c]++
			seen[c] = true
		}
	}
	h.ByLevel12m[level]++
	h.PreviousLevel = level
	return h
}

func cloneHistory(h pack.History) pack.History {
	out := h
	if h.ByCategory12m != nil {
		out.ByCategory12m = make(map[string]int, len(h.ByCategory12m))
		for k, n := range h.ByCategory12m {
			out.ByCategory12m[k] = n
		}
	}
	if h.ByLevel12m != nil {
		out.ByLevel12m = make(map[pack.Level]int, len(h.ByLevel12m))
		for k, n := range h.ByLevel12m {
			out.ByLevel12m[k] = n
		}
	}
	return out
}
