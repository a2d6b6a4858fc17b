package packs_test

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/mash-hub/mash/services/rules/pack"
	"github.com/mash-hub/mash/services/rules/packs"
	"github.com/mash-hub/mash/services/rules/packs/corpus"
)

// TestVignetteCorpus runs every vignette of the threshold corpus through the default pack
// and prints how often it agrees with the published documents:
//
//   - exact agreement: the decided level is the vignette's preferred level (the level its
//     first-cited section describes most closely);
//   - accepted: the decided level is one of the levels the cited sections accept;
//   - safe agreement: the decided level is at or above the lowest accepted level.
//
// It fails on any under-triage (a level below every cited document's), the dangerous
// error; over-triage is reported, not failed.
func TestVignetteCorpus(t *testing.T) {
	t.Parallel()
	c := loadDefault(t)
	cor, err := corpus.Load()
	if err != nil {
		t.Fatal(err)
	}
	var exact, accepted, safe int
	var over []string
	for _, v := range cor.Vignettes {
		r := corpus.Run(c, v)
		if len(r.Outcome.Errors) > 0 {
			t.Errorf("%s: evaluation errors %v", v.ID, r.Outcome.Errors)
		}
		if r.Exact() {
			exact++
		}
		if r.Accepted() {
			accepted++
		}
		if r.Safe() {
			safe++
		} else {
			t.Errorf("UNDER-TRIAGE %s (%s): decided %s, sources accept %v (preferred %s); fired %v",
				v.ID, v.File, r.Level(), v.Accept, v.PreferredLevel, firedIDs(r.Outcome))
		}
		if r.Level() > v.Accept[len(v.Accept)-1] {
			over = append(over, fmt.Sprintf("%s %s>%v", v.ID, r.Level(), v.Accept))
		}
	}
	n := len(cor.Vignettes)
	pct := func(k int) float64 { return 100 * float64(k) / float64(n) }
	t.Logf("threshold corpus, %d vignettes from %d documents, default pack %s:", n, len(cor.Sources), c.Version)
	t.Logf("  exact agreement (preferred level):     %d/%d = %.1f%%", exact, n, pct(exact))
	t.Logf("  within the accepted levels:            %d/%d = %.1f%%", accepted, n, pct(accepted))
	t.Logf("  safe agreement (>= lowest accepted):   %d/%d = %.1f%%", safe, n, pct(safe))
	t.Logf("  over-triage (above every accepted):    %d: %s", len(over), strings.Join(over, "; "))
}

// TestVignetteCorpusCoverage: the corpus is large enough and covers what threshold
// decisions turn on.
func TestVignetteCorpusCoverage(t *testing.T) {
	t.Parallel()
	cor, err := corpus.Load()
	if err != nil {
		t.Fatal(err)
	}
	if n := len(cor.Vignettes); n < 120 {
		t.Errorf("corpus has %d vignettes, want at least 120", n)
	}
	cats := map[string]bool{}
	preferred := map[pack.Level]bool{}
	tags := map[string]int{}
	for _, v := range cor.Vignettes {
		for _, cat := range v.Facts.Concerns {
			cats[cat] = true
		}
		preferred[v.PreferredLevel] = true
		for _, tag := range v.Tags {
			tags[tag]++
		}
		if len(v.Earlier) > 0 && !v.HasTag("accumulation") {
			t.Errorf("%s has earlier referrals but no accumulation tag", v.ID)
		}
		if v.HasTag("disagreement") && len(v.Accept) < 2 {
			t.Errorf("%s is tagged disagreement but its sources accept only %v", v.ID, v.Accept)
		}
		if v.Facts.Child.Unborn != v.HasTag("pre-birth") {
			t.Errorf("%s: pre-birth tag and unborn fact disagree", v.ID)
		}
	}
	for _, cat := range pack.ConcernCategories {
		if !cats[cat] {
			t.Errorf("no vignette raises %s", cat)
		}
	}
	for _, l := range []string{"1", "2", "3a", "3b", "4"} {
		pl, _ := pack.ParseLevel(l)
		if !preferred[pl] {
			t.Errorf("no vignette prefers level %s", l)
		}
	}
	for _, tag := range []string{"pre-birth", "baby", "16-17", "accumulation", "exploitation", "disagreement", "unknown-age"} {
		if tags[tag] < 3 {
			t.Errorf("only %d vignettes tagged %s, want at least 3", tags[tag], tag)
		}
	}
}

// factWords are words an explanation uses for each fact a condition can test; a fired
// rule's description and reason must name, in one of these words, every fact that made it
// fire.
var factWords = map[string][]string{
	"child.age_years": {"age", "year", "baby", "old", "young"}, "child.age_months": {"age", "month", "baby"},
	"child.age_known": {"age"}, "child.unborn": {"unborn", "birth"}, "child.school_age": {"school"},
	"child.non_mobile": {"mobile"}, "child.pregnant": {"pregnan"}, "child.disclosure": {"disclos", "told"},
	"child.injured": {"injur", "bruis", "hurt"}, "child.present": {"present", "there when"},
	"child.disabled": {"disab"}, "child.homeless": {"homeless"}, "child.age_estimated": {"estimat"},
	"risk.immediate_danger": {"immediate danger"}, "risk.dash": {"dash", "high-risk", "high risk", "medium"},
	"risk.dash_score": {"dash", "ticks"}, "risk.police_incidents_12m": {"police", "incident", "call-out"},
	"risk.suspect_has_access": {"access", "reach"}, "risk.dangerous_adult": {"risk to children"},
	"risk.missing_episodes_12m": {"missing"}, "risk.siblings_removed": {"removed"},
	"risk.parent_in_prison": {"prison"}, "risk.medical_neglect": {"treatment"},
	"risk.caring_affects_child": {"caring"}, "risk.household_member_on_plan": {"plan"},
	"referrer.kind": {"police", "referr"}, "consent.status": {"consent"},
	"history.referrals_12m": {"referral"}, "history.by_category_12m": {"referral", "over time"},
	"history.by_level_12m": {"referral"}, "history.open_case": {"open case", "allocated", "key worker"},
	"history.previous_level": {"level", "case", "worker"},
}

// categoryWords name each concern category in words.
var categoryWords = map[string][]string{
	"PHYSICAL_ABUSE": {"physical"}, "SEXUAL_ABUSE": {"sexual"}, "EMOTIONAL_ABUSE": {"emotional"},
	"NEGLECT": {"neglect"}, "DOMESTIC_ABUSE": {"domestic abuse"}, "PARENTAL_SUBSTANCE_MISUSE": {"substance", "drugs or alcohol"},
	"PARENTAL_MENTAL_ILL_HEALTH": {"mental"}, "PARENTAL_LEARNING_DISABILITY": {"learning disability"},
	"CHILD_SEXUAL_EXPLOITATION": {"sexual exploitation", "sexually exploited"}, "CHILD_CRIMINAL_EXPLOITATION": {"criminal"},
	"TRAFFICKING_MODERN_SLAVERY": {"traffick", "slavery"}, "MISSING_EPISODE": {"missing"}, "FEMALE_GENITAL_MUTILATION": {"fgm", "genital"},
	"RADICALISATION": {"radicalis"}, "SELF_HARM_SUICIDAL_IDEATION": {"self-harm", "suicid"}, "FABRICATED_INDUCED_ILLNESS": {"fabricat"},
	"YOUNG_CARER": {"carer", "caring"}, "HOUSING_HOMELESSNESS": {"housing", "homeless"}, "SCHOOL_ATTENDANCE": {"attendance"},
	"CHILD_DEVELOPMENT_HEALTH": {"health", "development"}, "BEHAVIOUR": {"behaviour"}, "BEREAVEMENT": {"bereave"},
	"HARMFUL_SEXUAL_BEHAVIOUR": {"harmful sexual behaviour"}, "ONLINE_HARM": {"online"},
}

var factRef = regexp.MustCompile(`\b(concern\.[A-Z_]+|(?:child|risk|history|referrer|consent)\.[a-z_0-9]+)`)

// TestVignetteExplanationsNameTheirFacts: for every level the corpus checks, each rule that
// fired says in its description or reason, in words, which of the referral's facts made it
// fire, so a practitioner can see why the level was suggested.
func TestVignetteExplanationsNameTheirFacts(t *testing.T) {
	t.Parallel()
	c := loadDefault(t)
	p, err := pack.Parse(packs.Default())
	if err != nil {
		t.Fatal(err)
	}
	when := map[string]string{}
	for _, r := range p.Rules {
		when[r.ID] = r.When
	}
	cor, err := corpus.Load()
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, v := range cor.Vignettes {
		r := corpus.Run(c, v)
		if r.Outcome.DefaultApplied {
			if strings.TrimSpace(r.Outcome.Reason) == "" {
				t.Errorf("%s: default outcome without a reason", v.ID)
			}
			continue
		}
		for _, fr := range r.Outcome.Fired {
			text := strings.ToLower(fr.Description + " " + fr.Reason)
			for _, ref := range slices.Compact(slices.Sorted(slices.Values(factRef.FindAllString(when[fr.ID], -1)))) {
				if !holds(r.Facts, ref) {
					continue
				}
				words := factWords[ref]
				if cat, ok := strings.CutPrefix(ref, "concern."); ok {
					words = categoryWords[cat]
				}
				if len(words) == 0 {
					t.Errorf("no words known for fact %s", ref)
					continue
				}
				if !slices.ContainsFunc(words, func(w string) bool { return strings.Contains(text, w) }) {
					t.Errorf("%s: rule %s fired on %s but its description and reason do not say so (want one of %q)", v.ID, fr.ID, ref, words)
				}
				checked++
			}
		}
	}
	if checked < 200 {
		t.Errorf("only %d fired facts checked", checked)
	}
}

// holds reports whether a fact the condition mentions is "on" in f: a concern raised, a
// flag set, a count or score above zero, a known value. Facts that are off did not make
// the rule fire (or fired it by their absence, which the text need not name).
func holds(f pack.Facts, ref string) bool {
	if cat, ok := strings.CutPrefix(ref, "concern."); ok {
		return slices.Contains(f.Concerns, cat)
	}
	ch, rk, h := f.Child, f.Risk, f.History
	switch ref {
	case "child.age_years", "child.age_months", "child.age_known":
		return ch.AgeKnown && !ch.Unborn
	case "child.unborn":
		return ch.Unborn
	case "child.school_age":
		return ch.SchoolAge
	case "child.non_mobile":
		return ch.NonMobile
	case "child.pregnant":
		return ch.Pregnant
	case "child.disclosure":
		return ch.Disclosure
	case "child.injured":
		return ch.Injured
	case "child.present":
		return ch.Present
	case "child.disabled":
		return ch.Disabled
	case "child.homeless":
		return ch.Homeless
	case "child.age_estimated":
		return ch.AgeEstimated
	case "risk.immediate_danger":
		return rk.ImmediateDanger
	case "risk.dash":
		return rk.DASH == "HIGH" || rk.DASH == "MEDIUM"
	case "risk.dash_score":
		return rk.DASHScore >= 10
	case "risk.police_incidents_12m":
		return rk.PoliceIncidents >= 3
	case "risk.suspect_has_access":
		return rk.SuspectHasAccess
	case "risk.dangerous_adult":
		return rk.DangerousAdult
	case "risk.missing_episodes_12m":
		return rk.MissingEpisodes >= 3
	case "risk.siblings_removed":
		return rk.SiblingsRemoved
	case "risk.parent_in_prison":
		return rk.ParentInPrison
	case "risk.medical_neglect":
		return rk.MedicalNeglect
	case "risk.caring_affects_child":
		return rk.CaringAffectsChild
	case "risk.household_member_on_plan":
		return rk.HouseholdMemberOnPlan
	case "referrer.kind":
		return f.ReferrerKind == "police"
	case "consent.status":
		return f.ConsentStatus != ""
	case "history.referrals_12m", "history.by_category_12m", "history.by_level_12m":
		return h.Referrals12m > 0
	case "history.open_case":
		return h.OpenCase
	case "history.previous_level":
		return h.PreviousLevel != pack.LevelNone
	}
	return false
}

func firedIDs(o pack.Outcome) []string {
	ids := make([]string, len(o.Fired))
	for i, r := range o.Fired {
		ids[i] = r.ID
	}
	return ids
}
