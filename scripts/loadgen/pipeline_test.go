package main

import (
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/mash-hub/mash/pkg/referral"
	intakev1 "github.com/mash-hub/mash/proto/mash/intake/v1"
)

// Every synthetic NHS number is new and passes intake's own check, so no referral of the bench is
// refused for its child's identifier, and none is a number issued to a person.
func TestSyntheticNHSNumbersAreValidAndUnissued(t *testing.T) {
	seen := map[string]bool{}
	next := 0
	for range 5000 {
		var n string
		n, next = syntheticNHSNumber(next)
		if seen[n] {
			t.Fatalf("%s handed out twice", n)
		}
		seen[n] = true
		if _, ok := referral.NormaliseNHSNumber(n); !ok {
			t.Fatalf("%s fails intake's NHS number check", n)
		}
		if n[:3] != "999" {
			t.Fatalf("%s is outside the 999 range", n)
		}
	}
}

// The repeat share is honoured, and a repeat is an earlier child exactly.
func TestChildrenRepeatShare(t *testing.T) {
	c := newChildren(0.25, 0)
	seen := map[string]string{}
	for range 4000 {
		ch := &intakev1.Child{}
		c.fill(ch)
		key := ch.GetGivenName() + "|" + ch.GetFamilyName() + "|" + ch.GetDateOfBirth()
		if prev, ok := seen[ch.GetNhsNumber()]; ok && prev != key {
			t.Fatalf("NHS number %s reused for a different child", ch.GetNhsNumber())
		}
		seen[ch.GetNhsNumber()] = key
	}
	if got := float64(c.repeats()) / 4000; got < 0.2 || got > 0.3 {
		t.Fatalf("repeat share %.3f, want about 0.25", got)
	}
	if len(seen)+c.repeats() != 4000 {
		t.Fatalf("%d distinct children and %d repeats from 4000 referrals", len(seen), c.repeats())
	}
}

// A backlog worked off in batches, sawing between 200 and 400, is not growing even when the
// last sample catches a batch of 600 waiting; one that gains 10 a second under the same saw
// grows by 10 a second. The first and last samples alone read the first as growing by 20.
func TestBacklogGrowthIsTheTrendNotTheLastSample(t *testing.T) {
	start := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	var steady, growing []backlogSample
	for i := range 21 {
		v := int64(200)
		if i%2 == 1 {
			v = 400
		}
		if i == 20 {
			v = 600
		}
		at := start.Add(time.Duration(i) * time.Second)
		steady = append(steady, backlogSample{at: at, counts: map[string]int64{"relays": v}})
		growing = append(growing, backlogSample{at: at, counts: map[string]int64{"relays": v + 10*int64(i)}})
	}
	if g := growthPerSecond(steady, "relays"); g != 0 {
		t.Errorf("steady saw: %.1f a second, want 0", g)
	}
	if g := growthPerSecond(growing, "relays"); g < 9 || g > 11 {
		t.Errorf("growing saw: %.1f a second, want 10", g)
	}
	if g := growthPerSecond(steady[:1], "relays"); g != 0 {
		t.Errorf("one sample: %.1f, want 0", g)
	}
}

// The demo mix is the demo's scenarios, most of them below immediate danger, from several
// agencies; each new child keeps the age its scenario chose (an unborn child stays unborn,
// without an NHS number) and a repeat is an earlier child exactly.
func TestDemoMixKeepsEachScenarioAndItsChildsAge(t *testing.T) {
	mix, err := demoMix(2000)
	if err != nil {
		t.Fatal(err)
	}
	agencies := map[string]bool{}
	var unborn int
	c := newChildren(0.1, 0)
	byNHS := map[string]*intakev1.Child{}
	for _, m := range mix {
		agencies[m.agency] = true
		ch := proto.Clone(m.sub.GetChild()).(*intakev1.Child)
		before := ch.GetDateOfBirth()
		repeats := c.repeats()
		c.fillKeepingAge(ch)
		switch {
		case c.repeats() > repeats:
			if prev, ok := byNHS[ch.GetNhsNumber()]; ch.GetNhsNumber() != "" && (!ok || prev.GetDateOfBirth() != ch.GetDateOfBirth()) {
				t.Fatalf("a repeat child %s is not the earlier child", ch.GetNhsNumber())
			}
		case ch.GetUnborn():
			unborn++
			if ch.GetNhsNumber() != "" || ch.GetDateOfBirth() != "" {
				t.Fatalf("an unborn child was given an NHS number %q or a birth date %q", ch.GetNhsNumber(), ch.GetDateOfBirth())
			}
		default:
			if ch.GetDateOfBirth() != before || ch.GetNhsNumber() == "" {
				t.Fatalf("new child born %q (scenario said %q), NHS number %q", ch.GetDateOfBirth(), before, ch.GetNhsNumber())
			}
			byNHS[ch.GetNhsNumber()] = ch
		}
	}
	if len(agencies) < 5 || unborn == 0 {
		t.Errorf("%d referring agencies and %d unborn children in 2,000 demo referrals, want several of each", len(agencies), unborn)
	}
}
