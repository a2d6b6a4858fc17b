package demo

import (
	"math/rand/v2"
	"time"

	intakev1 "github.com/mash-hub/mash/proto/mash/intake/v1"
)

// Source is a referring agency: its directory id is also the agency of its credential.
type Source struct {
	Agency string
	// Kind is the credential's kind; the rules see it as referrer.kind.
	Kind string
	// Role and Title describe the person referring (e.g. "PC").
	Role, Title string
	// EmailDomain is a reserved .example domain.
	EmailDomain string
}

// sources are the referring agencies, by short key. Their ids are agencies of the demo
// directory (scripts/demo/directory.yaml), so receipts and outcomes reach them.
var sources = map[string]Source{
	"police":            {Agency: "south-wales-police", Kind: "police", Role: "Police officer, public protection unit", Title: "PC", EmailDomain: "police.example"},
	"health-visitor":    {Agency: "demo-health-visitor", Kind: "health", Role: "Health visitor", EmailDomain: "nhs.example"},
	"gp":                {Agency: "demo-gp", Kind: "health", Role: "General practitioner", Title: "Dr", EmailDomain: "nhs.example"},
	"midwifery":         {Agency: "demo-midwifery", Kind: "health", Role: "Safeguarding midwife", EmailDomain: "nhs.example"},
	"school":            {Agency: "demo-school-dsl", Kind: "education", Role: "Designated safeguarding lead", EmailDomain: "school.example"},
	"education-welfare": {Agency: "demo-education-welfare", Kind: "education", Role: "Education welfare officer", EmailDomain: "council.example"},
	"early-help":        {Agency: "demo-early-help", Kind: "local-authority", Role: "Family support worker", EmailDomain: "council.example"},
	"housing":           {Agency: "demo-housing", Kind: "local-authority", Role: "Housing options officer", EmailDomain: "council.example"},
}

// Sources returns every referring agency a plan may use, for making their credentials.
func Sources() []Source {
	out := make([]Source, 0, len(sources))
	for _, k := range sourceKeys {
		out = append(out, sources[k])
	}
	return out
}

// sourceKeys fixes an order over sources, so generation does not depend on map order.
var sourceKeys = []string{"police", "health-visitor", "gp", "midwifery", "school", "education-welfare", "early-help", "housing"}

// summaries are one synthetic sentence per concern category.
var summaries = map[intakev1.ConcernCategory]string{
	intakev1.ConcernCategory_PHYSICAL_ABUSE:              "Child seen with marks the explanation given does not account for.",
	intakev1.ConcernCategory_SEXUAL_ABUSE:                "Concern of sexual harm raised after what the child said and did.",
	intakev1.ConcernCategory_EMOTIONAL_ABUSE:             "Child is persistently belittled and frightened at home, by several accounts.",
	intakev1.ConcernCategory_NEGLECT:                     "Child often hungry, unwashed and in unsuitable clothing; home conditions poor.",
	intakev1.ConcernCategory_DOMESTIC_ABUSE:              "Police attended a domestic incident at the home; an adult was assaulted.",
	intakev1.ConcernCategory_PARENTAL_SUBSTANCE_MISUSE:   "A parent appears to be using drugs or alcohol heavily while caring for the child.",
	intakev1.ConcernCategory_PARENTAL_MENTAL_ILL_HEALTH:  "A parent's mental health has deteriorated and they are struggling to cope.",
	intakev1.ConcernCategory_CHILD_SEXUAL_EXPLOITATION:   "Young person seen with older adults, given gifts and a new phone; secretive.",
	intakev1.ConcernCategory_CHILD_CRIMINAL_EXPLOITATION: "Young person found far from home carrying cash and several phones.",
	intakev1.ConcernCategory_MISSING_EPISODE:             "Young person was reported missing overnight and returned the next day.",
	intakev1.ConcernCategory_SELF_HARM_SUICIDAL_IDEATION: "Young person spoke of wanting to die; recent cuts were seen.",
	intakev1.ConcernCategory_YOUNG_CARER:                 "Child is caring for a parent and missing school to do it.",
	intakev1.ConcernCategory_HOUSING_HOMELESSNESS:        "Family has been evicted and is staying with friends temporarily.",
	intakev1.ConcernCategory_SCHOOL_ATTENDANCE:           "Attendance has fallen below 70% this term with no explanation.",
	intakev1.ConcernCategory_CHILD_DEVELOPMENT_HEALTH:    "Missed developmental checks and health appointments; parent asks for support.",
	intakev1.ConcernCategory_BEHAVIOUR:                   "Aggressive outbursts at nursery or school; parent asks for help.",
	intakev1.ConcernCategory_BEREAVEMENT:                 "Child's grandparent, the main carer, died recently; child withdrawn.",
	intakev1.ConcernCategory_ONLINE_HARM:                 "Child is being bullied and sent threatening messages online.",
}

// builder collects what a scenario says about one referral.
type builder struct {
	r        *rand.Rand
	age      int // years at receipt; -1 for an unborn child
	concerns []*intakev1.Concern
	risk     *intakev1.RiskIndicators
	// consent is filled by the scenario when it has a reason to withhold it; otherwise the
	// generator decides.
	consent *intakev1.Consent
	// present is set on every concern: the child saw or heard it.
	present bool
}

func (b *builder) concern(c intakev1.ConcernCategory) *intakev1.Concern {
	cn := &intakev1.Concern{Category: c, Summary: summaries[c], ChildPresent: b.present}
	b.concerns = append(b.concerns, cn)
	return cn
}

func (b *builder) chance(p float64) bool { return b.r.Float64() < p }

func (b *builder) riskOf() *intakev1.RiskIndicators {
	if b.risk == nil {
		b.risk = &intakev1.RiskIndicators{}
	}
	return b.risk
}

const (
	reasonRisk      = "Seeking consent would place the child or the adult victim at increased risk."
	reasonEvidence  = "Telling the carers first could put the child at risk and compromise an investigation."
	reasonRefused   = "Parent refused consent; referring because the concern meets the threshold for sharing without it."
	consentAuthoriy = "Duty inspector (demo)"
)

// scenario is a kind of referral a MASH sees, with where it usually comes from.
type scenario struct {
	name    string
	weight  int
	sources []string // keys of sources, drawn uniformly
	// minAge and maxAge bound the child's age in years at receipt; maxAge < 0 means an
	// unborn child.
	minAge, maxAge int
	// lowLevel marks scenarios the rules usually put at level 1 or 2, whose children are
	// the "re-referred after no further action" story.
	lowLevel bool
	// neglectStory marks scenarios that build up as neglect over several referrals.
	neglectStory bool
	build        func(b *builder)
}

// scenarios are weighted to roughly the mix of a MASH front door: domestic abuse and neglect
// most often, exploitation and sexual abuse less often.
var scenarios = []scenario{
	{name: "domestic-abuse-encompass", weight: 14, sources: []string{"police"}, minAge: 5, maxAge: 15, build: func(b *builder) {
		b.present = b.chance(0.5)
		b.concern(intakev1.ConcernCategory_DOMESTIC_ABUSE)
		ri := b.riskOf()
		ri.DomesticAbuseRisk = intakev1.DomesticAbuseRisk_STANDARD
		ri.DashScore = int32(2 + b.r.IntN(8))
		if b.chance(0.3) {
			ri.DomesticAbuseRisk, ri.DashScore = intakev1.DomesticAbuseRisk_MEDIUM, int32(10+b.r.IntN(4))
		}
		ri.PoliceIncidentsLast_12Months = int32(1 + b.r.IntN(2))
		if b.chance(0.1) {
			ri.PoliceIncidentsLast_12Months = 3
		}
		if b.chance(0.6) {
			b.consent = &intakev1.Consent{Status: intakev1.ConsentStatus_NOT_SOUGHT, Reason: reasonRisk, AuthorisedBy: consentAuthoriy}
		}
	}},
	{name: "domestic-abuse-high-risk", weight: 5, sources: []string{"police"}, minAge: 0, maxAge: 16, build: func(b *builder) {
		b.present = b.chance(0.7)
		b.concern(intakev1.ConcernCategory_DOMESTIC_ABUSE)
		if b.chance(0.4) {
			b.concern(intakev1.ConcernCategory_PARENTAL_SUBSTANCE_MISUSE)
		}
		ri := b.riskOf()
		ri.DomesticAbuseRisk, ri.DashScore = intakev1.DomesticAbuseRisk_HIGH, int32(14+b.r.IntN(7))
		ri.PoliceIncidentsLast_12Months = int32(2 + b.r.IntN(3))
		ri.SuspectHasAccessToChild = b.chance(0.6)
		b.consent = &intakev1.Consent{Status: intakev1.ConsentStatus_NOT_SOUGHT, Reason: reasonRisk, AuthorisedBy: consentAuthoriy}
	}},
	{name: "neglect-young-child", weight: 8, sources: []string{"health-visitor", "health-visitor", "gp"}, minAge: 0, maxAge: 4, neglectStory: true,
		build: func(b *builder) { b.concern(intakev1.ConcernCategory_NEGLECT) }},
	{name: "neglect-school-age", weight: 8, sources: []string{"school", "school", "early-help"}, minAge: 5, maxAge: 15, neglectStory: true, build: func(b *builder) {
		b.concern(intakev1.ConcernCategory_NEGLECT)
		if b.chance(0.4) {
			b.concern(intakev1.ConcernCategory_SCHOOL_ATTENDANCE)
		}
	}},
	{name: "physical-abuse-injury", weight: 4, sources: []string{"school", "gp", "police"}, minAge: 3, maxAge: 14, build: func(b *builder) {
		c := b.concern(intakev1.ConcernCategory_PHYSICAL_ABUSE)
		c.InjuryToChild, c.ChildDisclosure = true, b.chance(0.5)
		b.riskOf().SuspectHasAccessToChild = b.chance(0.5)
		b.consent = &intakev1.Consent{Status: intakev1.ConsentStatus_NOT_SOUGHT, Reason: reasonEvidence}
	}},
	{name: "physical-abuse-no-injury", weight: 3, sources: []string{"school"}, minAge: 5, maxAge: 15,
		build: func(b *builder) { b.concern(intakev1.ConcernCategory_PHYSICAL_ABUSE) }},
	{name: "emotional-abuse", weight: 6, sources: []string{"school", "health-visitor", "early-help"}, minAge: 2, maxAge: 15,
		build: func(b *builder) { b.concern(intakev1.ConcernCategory_EMOTIONAL_ABUSE) }},
	{name: "parental-mental-health", weight: 7, sources: []string{"gp", "health-visitor"}, minAge: 0, maxAge: 12, build: func(b *builder) {
		b.concern(intakev1.ConcernCategory_PARENTAL_MENTAL_ILL_HEALTH)
		if b.chance(0.35) {
			b.concern(intakev1.ConcernCategory_PARENTAL_SUBSTANCE_MISUSE)
		}
	}},
	{name: "parental-substance-misuse", weight: 4, sources: []string{"police", "gp"}, minAge: 0, maxAge: 15,
		build: func(b *builder) { b.concern(intakev1.ConcernCategory_PARENTAL_SUBSTANCE_MISUSE) }},
	{name: "trigger-trio", weight: 2, sources: []string{"health-visitor", "police"}, minAge: 0, maxAge: 10, build: func(b *builder) {
		b.present = true
		b.concern(intakev1.ConcernCategory_DOMESTIC_ABUSE)
		b.concern(intakev1.ConcernCategory_PARENTAL_SUBSTANCE_MISUSE)
		b.concern(intakev1.ConcernCategory_PARENTAL_MENTAL_ILL_HEALTH)
		b.riskOf().DomesticAbuseRisk = intakev1.DomesticAbuseRisk_STANDARD
	}},
	{name: "child-sexual-exploitation", weight: 3, sources: []string{"police", "school"}, minAge: 12, maxAge: 16, build: func(b *builder) {
		b.concern(intakev1.ConcernCategory_CHILD_SEXUAL_EXPLOITATION)
		if b.chance(0.4) {
			b.concern(intakev1.ConcernCategory_MISSING_EPISODE)
			b.riskOf().MissingEpisodesLast_12Months = int32(1 + b.r.IntN(3))
		}
		b.consent = &intakev1.Consent{Status: intakev1.ConsentStatus_NOT_SOUGHT, Reason: reasonEvidence}
	}},
	{name: "criminal-exploitation", weight: 2, sources: []string{"police"}, minAge: 13, maxAge: 16, build: func(b *builder) {
		b.concern(intakev1.ConcernCategory_CHILD_CRIMINAL_EXPLOITATION)
		if b.chance(0.5) {
			b.concern(intakev1.ConcernCategory_MISSING_EPISODE)
			b.riskOf().MissingEpisodesLast_12Months = int32(1 + b.r.IntN(3))
		}
	}},
	{name: "missing-episode", weight: 5, sources: []string{"police"}, minAge: 11, maxAge: 16, build: func(b *builder) {
		b.concern(intakev1.ConcernCategory_MISSING_EPISODE)
		b.riskOf().MissingEpisodesLast_12Months = int32(1 + b.r.IntN(4))
	}},
	{name: "self-harm", weight: 6, sources: []string{"school", "gp"}, minAge: 11, maxAge: 17, build: func(b *builder) {
		c := b.concern(intakev1.ConcernCategory_SELF_HARM_SUICIDAL_IDEATION)
		c.InjuryToChild = b.chance(0.4)
	}},
	{name: "housing", weight: 4, sources: []string{"housing"}, minAge: 0, maxAge: 17, lowLevel: true,
		build: func(b *builder) { b.concern(intakev1.ConcernCategory_HOUSING_HOMELESSNESS) }},
	{name: "school-attendance", weight: 6, sources: []string{"education-welfare", "school"}, minAge: 5, maxAge: 15, lowLevel: true, neglectStory: true,
		build: func(b *builder) { b.concern(intakev1.ConcernCategory_SCHOOL_ATTENDANCE) }},
	{name: "young-carer", weight: 3, sources: []string{"school", "early-help"}, minAge: 8, maxAge: 16, lowLevel: true, build: func(b *builder) {
		b.concern(intakev1.ConcernCategory_YOUNG_CARER)
		if b.chance(0.4) {
			b.concern(intakev1.ConcernCategory_PARENTAL_MENTAL_ILL_HEALTH)
		}
	}},
	{name: "online-harm", weight: 3, sources: []string{"school"}, minAge: 10, maxAge: 16, lowLevel: true,
		build: func(b *builder) { b.concern(intakev1.ConcernCategory_ONLINE_HARM) }},
	{name: "behaviour", weight: 3, sources: []string{"health-visitor", "school"}, minAge: 2, maxAge: 12, lowLevel: true,
		build: func(b *builder) { b.concern(intakev1.ConcernCategory_BEHAVIOUR) }},
	{name: "bereavement", weight: 2, sources: []string{"school"}, minAge: 5, maxAge: 15, lowLevel: true,
		build: func(b *builder) { b.concern(intakev1.ConcernCategory_BEREAVEMENT) }},
	{name: "development-and-health", weight: 4, sources: []string{"health-visitor", "gp"}, minAge: 0, maxAge: 5, lowLevel: true,
		build: func(b *builder) { b.concern(intakev1.ConcernCategory_CHILD_DEVELOPMENT_HEALTH) }},
	{name: "non-mobile-baby-injury", weight: 1, sources: []string{"health-visitor", "gp"}, minAge: 0, maxAge: 0, build: func(b *builder) {
		c := b.concern(intakev1.ConcernCategory_PHYSICAL_ABUSE)
		c.InjuryToChild = true
		b.riskOf().ChildNonMobile = true
		b.consent = &intakev1.Consent{Status: intakev1.ConsentStatus_NOT_SOUGHT, Reason: reasonEvidence}
	}},
	{name: "sexual-abuse", weight: 2, sources: []string{"school", "police"}, minAge: 4, maxAge: 15, build: func(b *builder) {
		c := b.concern(intakev1.ConcernCategory_SEXUAL_ABUSE)
		c.ChildDisclosure = b.chance(0.6)
		b.consent = &intakev1.Consent{Status: intakev1.ConsentStatus_NOT_SOUGHT, Reason: reasonEvidence}
	}},
	{name: "unborn-parental-risk", weight: 3, sources: []string{"midwifery"}, minAge: -1, maxAge: -1, build: func(b *builder) {
		if b.chance(0.5) {
			b.concern(intakev1.ConcernCategory_DOMESTIC_ABUSE)
			b.riskOf().DomesticAbuseRisk = intakev1.DomesticAbuseRisk_STANDARD
		} else {
			b.concern(intakev1.ConcernCategory_PARENTAL_SUBSTANCE_MISUSE)
		}
	}},
}

// observedBefore is how long before receipt a concern of this kind was typically seen:
// police report incidents within hours, others within days.
func observedBefore(r *rand.Rand, src Source) time.Duration {
	if src.Kind == "police" {
		return time.Duration(30+r.IntN(600)) * time.Minute
	}
	return time.Duration(1+r.IntN(72)) * time.Hour
}
