package packs_test

import (
	"encoding/binary"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/mash-hub/mash/services/rules/pack"
)

// randomFacts builds facts from a random source, mixing valid values with
// junk: unknown categories, negative and huge numbers, odd strings, and
// history maps with unknown keys.
func randomFacts(r *rand.Rand) pack.Facts {
	pick := func(values []string) string {
		if r.IntN(10) == 0 {
			return string(rune(r.IntN(0x10ffff))) + "junk"
		}
		return values[r.IntN(len(values))]
	}
	num := func() int {
		switch r.IntN(6) {
		case 0:
			return -r.IntN(1 << 30)
		case 1:
			return r.Int()
		default:
			return r.IntN(30)
		}
	}
	var f pack.Facts
	for range r.IntN(8) {
		f.Concerns = append(f.Concerns, pick(pack.ConcernCategories))
	}
	slices.Sort(f.Concerns)
	f.Concerns = slices.Compact(f.Concerns)
	f.Child = pack.ChildFacts{
		AgeYears: num(), AgeMonths: num(), AgeKnown: r.IntN(2) == 0, Unborn: r.IntN(5) == 0,
		SchoolAge: r.IntN(2) == 0, NonMobile: r.IntN(5) == 0, Pregnant: r.IntN(8) == 0,
		Disclosure: r.IntN(4) == 0, Injured: r.IntN(4) == 0, Present: r.IntN(2) == 0,
	}
	f.Risk = pack.RiskFacts{
		ImmediateDanger: r.IntN(8) == 0, DASH: pick(pack.DASHGrades), DASHScore: num(),
		PoliceIncidents: num(), SuspectHasAccess: r.IntN(3) == 0, DangerousAdult: r.IntN(8) == 0,
		MissingEpisodes: num(),
	}
	f.ConsentStatus = pick(pack.ConsentStatuses)
	f.ReferrerKind = pick(pack.AgencyKinds)
	f.History = pack.History{Referrals12m: num(), OpenCase: r.IntN(3) == 0, PreviousLevel: pack.Level(r.IntN(8))}
	if r.IntN(2) == 0 {
		f.History.ByCategory12m = map[string]int{pick(pack.ConcernCategories): num(), pick(pack.ConcernCategories): num()}
		f.History.ByLevel12m = map[pack.Level]int{pack.Level(r.IntN(8)): num()}
	}
	return f
}

// checkInvariants asserts what must hold for any outcome.
func checkInvariants(t *testing.T, c *pack.Compiled, f pack.Facts, out pack.Outcome) {
	t.Helper()
	if !out.Level.Valid() || !out.RAG.Valid() {
		t.Fatalf("invalid level or RAG %v/%v for %+v", out.Level, out.RAG, f)
	}
	if out.DefaultApplied != (len(out.Fired) == 0) {
		t.Fatalf("DefaultApplied %v with %d fired", out.DefaultApplied, len(out.Fired))
	}
	if len(out.Pathways) == 0 || out.Pathways[0] != out.Pathway || out.Reason == "" {
		t.Fatalf("pathway %q, pathways %v, reason %q", out.Pathway, out.Pathways, out.Reason)
	}
	if !slices.IsSorted(out.Agencies) || len(slices.Compact(slices.Clone(out.Agencies))) != len(out.Agencies) {
		t.Fatalf("agencies not a sorted set: %v", out.Agencies)
	}
	for _, r := range out.Fired {
		if r.Level > out.Level || r.RAG > out.RAG {
			t.Fatalf("fired rule %s exceeds the outcome", r.ID)
		}
	}
	if again := c.Evaluate(f); again.Level != out.Level || again.Pathway != out.Pathway || len(again.Fired) != len(out.Fired) {
		t.Fatalf("evaluation is not deterministic")
	}
}

func TestEvaluateRandomFactsNeverPanics(t *testing.T) {
	t.Parallel()
	c := loadDefault(t)
	r := rand.New(rand.NewPCG(2026, 11))
	for range 5000 {
		f := randomFacts(r)
		checkInvariants(t, c, f, c.Evaluate(f))
	}
	// The zero Facts is a valid input too.
	checkInvariants(t, c, pack.Facts{}, c.Evaluate(pack.Facts{}))
}

func FuzzEvaluateDefaultPack(f *testing.F) {
	c := loadDefault(f)
	f.Add(uint64(0), uint64(0))
	f.Add(uint64(2026), uint64(11))
	f.Add(uint64(1<<63), binary.BigEndian.Uint64([]byte("safeguar")))
	f.Fuzz(func(t *testing.T, a, b uint64) {
		facts := randomFacts(rand.New(rand.NewPCG(a, b)))
		checkInvariants(t, c, facts, c.Evaluate(facts))
	})
}
