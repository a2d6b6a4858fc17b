package demo

import (
	"math/rand/v2"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/mash-hub/mash/pkg/calendar"
	"github.com/mash-hub/mash/pkg/referral"
)

func testParams(t *testing.T, seed uint64, n, days int) Params {
	t.Helper()
	cal, err := calendar.New(calendar.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return Params{Seed: seed, Referrals: n, Days: days, End: time.Date(2026, 11, 20, 15, 4, 5, 0, time.UTC), Calendar: cal}
}

func TestNHSNumbersAreValidAndSynthetic(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		n := NHSNumber(r)
		if len(n) != 10 || n[:3] != "999" {
			t.Fatalf("%s: want ten digits in the 999 test range", n)
		}
		if _, ok := referral.NormaliseNHSNumber(n); !ok {
			t.Fatalf("%s: check digit invalid", n)
		}
	}
}

func TestPostcodesAreWellFormed(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, ps := range places {
		for _, p := range ps {
			for _, d := range p.districts {
				for range 50 {
					pc := Postcode(r, d)
					if norm, ok := referral.NormalisePostcode(pc); !ok || norm != pc {
						t.Fatalf("%q: not a well-formed postcode in standard form (%q)", pc, norm)
					}
				}
			}
		}
	}
}

func TestEveryReferralPassesIntakeValidation(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3, 42} {
		plan, err := Generate(testParams(t, seed, 300, 120))
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range plan.Referrals {
			// Intake judges dates against the time of receipt, which is when the demo sends it.
			if vs := referral.Validate(r.Submission, r.ReceivedAt); len(vs) > 0 {
				t.Fatalf("seed %d referral %d (%s): %v", seed, r.Index, r.Scenario, vs)
			}
		}
	}
}

func TestGenerateIsDeterministic(t *testing.T) {
	a, err := Generate(testParams(t, 7, 120, 60))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Generate(testParams(t, 7, 120, 60))
	c, _ := Generate(testParams(t, 8, 120, 60))
	if len(a.Referrals) != 120 || len(b.Referrals) != 120 {
		t.Fatalf("got %d and %d referrals, want 120", len(a.Referrals), len(b.Referrals))
	}
	same := func(x, y Plan) bool {
		for i := range x.Referrals {
			rx, ry := x.Referrals[i], y.Referrals[i]
			if !rx.ReceivedAt.Equal(ry.ReceivedAt) || rx.Handling != ry.Handling || !proto.Equal(rx.Submission, ry.Submission) {
				return false
			}
		}
		return true
	}
	if !same(a, b) {
		t.Fatal("the same seed gave different plans")
	}
	if same(a, c) {
		t.Fatal("different seeds gave the same plan")
	}
}

func TestPlanShape(t *testing.T) {
	p := testParams(t, 1, 300, 120)
	plan, err := Generate(p)
	if err != nil {
		t.Fatal(err)
	}
	var undecided, open, repeats, weekday, outOfHours, overrides, disagreements int
	sourcesSeen, partnerships, refs := map[string]bool{}, map[string]bool{}, map[string]bool{}
	loc := p.Calendar.Location()
	for i, r := range plan.Referrals {
		if i > 0 && r.ReceivedAt.Before(plan.Referrals[i-1].ReceivedAt) {
			t.Fatalf("referral %d received before the one ahead of it", i)
		}
		if r.ReceivedAt.Before(plan.Start) || !r.ReceivedAt.Before(plan.End) {
			t.Fatalf("referral %d at %s outside [%s, %s)", i, r.ReceivedAt, plan.Start, plan.End)
		}
		if refs[r.Submission.ExternalReference] {
			t.Fatalf("external reference %s used twice", r.Submission.ExternalReference)
		}
		refs[r.Submission.ExternalReference] = true
		sourcesSeen[r.Source.Kind] = true
		partnerships[r.Submission.Partnership] = true
		if !r.Handling.Decide {
			undecided++
		} else if !r.Handling.Close {
			open++
		}
		if r.Repeat {
			repeats++
		}
		if p.Calendar.IsWorkingDay(r.ReceivedAt) {
			weekday++
		}
		if !p.Calendar.IsWorkingTime(r.ReceivedAt) {
			outOfHours++
		}
		if r.Handling.Override != Confirm {
			overrides++
		}
		if r.Handling.Disagreement != NoDisagreement {
			disagreements++
		}
		_ = loc
	}
	if undecided != 25 || open != 20 {
		t.Errorf("undecided %d, decided but open %d; want 25 and 20", undecided, open)
	}
	// The live queue holds only the newest referrals.
	for _, r := range plan.Referrals[:len(plan.Referrals)-25] {
		if !r.Handling.Decide {
			t.Fatalf("referral %d left undecided but older than the live queue", r.Index)
		}
	}
	for _, k := range []string{"police", "health", "education", "local-authority"} {
		if !sourcesSeen[k] {
			t.Errorf("no referral from a %s agency", k)
		}
	}
	if len(partnerships) != 2 {
		t.Errorf("partnerships %v, want both", partnerships)
	}
	if repeats < 30 || repeats > 90 {
		t.Errorf("%d re-referrals of 300, want about a fifth", repeats)
	}
	if weekday < 200 {
		t.Errorf("%d of 300 on working days, want most", weekday)
	}
	if outOfHours < 30 {
		t.Errorf("%d of 300 out of hours, want some", outOfHours)
	}
	if overrides < 20 || overrides > 70 {
		t.Errorf("%d overrides of 275 decisions, want about 15%%", overrides)
	}
	if disagreements != 5 {
		t.Errorf("%d disagreements, want 5", disagreements)
	}
}

func TestClockOnlyMovesForward(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := NewClock(t0)
	if got := c.AdvanceTo(t0.Add(time.Hour)); !got.Equal(t0.Add(time.Hour)) {
		t.Fatalf("advance: %s", got)
	}
	if got := c.AdvanceTo(t0); !got.Equal(t0.Add(time.Hour)) || !c.Now().Equal(t0.Add(time.Hour)) {
		t.Fatalf("went back to %s", got)
	}
}

// TestSomeChildrenHaveOnlyAnEstimatedAge: the demo exercises the unknown date of birth
// path; every such referral still carries an NHS number, so the child index links it.
func TestSomeChildrenHaveOnlyAnEstimatedAge(t *testing.T) {
	plan, err := Generate(testParams(t, 1, 600, 120))
	if err != nil {
		t.Fatal(err)
	}
	estimated := 0
	for _, r := range plan.Referrals {
		ch := r.Submission.GetChild()
		if ch.EstimatedAgeYears == nil {
			continue
		}
		estimated++
		if ch.GetDateOfBirth() != "" || ch.GetNhsNumber() == "" {
			t.Errorf("referral %d: estimated age with date of birth %q, NHS number %q", r.Index, ch.GetDateOfBirth(), ch.GetNhsNumber())
		}
	}
	if estimated == 0 {
		t.Error("no referral in the demo has an estimated age instead of a date of birth")
	}
}
