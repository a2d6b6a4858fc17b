package packs_test

import (
	"testing"

	"github.com/mash-hub/mash/services/rules/pack"
	"github.com/mash-hub/mash/services/rules/packs"
)

// withoutAge is what FactsFrom gives for the same referral sent with
// ageUnknown instead of a date of birth (or an estimate): no age, not known
// to be of school age.
func withoutAge(f pack.Facts) pack.Facts {
	if f.Child.Unborn {
		return f
	}
	f.Child.AgeYears, f.Child.AgeMonths = 0, 0
	f.Child.AgeKnown, f.Child.AgeEstimated, f.Child.SchoolAge = false, false, false
	return f
}

// TestUnknownAgeNeverLowersTheLevel re-runs every worked example of the
// default pack with the child's age removed: a missing age must never give a
// lower level than the age would have, because age-based rules read an
// unknown age the most protective way.
func TestUnknownAgeNeverLowersTheLevel(t *testing.T) {
	t.Parallel()
	c := loadDefault(t)
	p, err := pack.Parse(packs.Default())
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, tc := range p.Tests {
		f := tc.Facts.Facts()
		if f.Child.Unborn || !f.Child.AgeKnown {
			continue
		}
		checked++
		with, without := c.Evaluate(f), c.Evaluate(withoutAge(f))
		if without.Level < with.Level {
			t.Errorf("%q: level %s with age %dy%dm, %s without it", tc.Name, with.Level, f.Child.AgeYears, f.Child.AgeMonths, without.Level)
		}
		if len(without.Errors) > 0 {
			t.Errorf("%q without age: errors %v", tc.Name, without.Errors)
		}
	}
	if checked < 40 {
		t.Errorf("only %d test cases have an age to remove, want at least 40", checked)
	}
	t.Logf("%d worked examples re-run without the age; none lower", checked)
}
