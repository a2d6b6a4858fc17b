package demo

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/mash-hub/mash/pkg/calendar"
	intakev1 "github.com/mash-hub/mash/proto/mash/intake/v1"
)

// Params say what history to generate. The same Params always give the same Plan.
type Params struct {
	Seed      uint64
	Referrals int
	Days      int
	// End is the simulated "now" the history leads up to; nothing happens after it.
	End time.Time
	// Calendar gives working hours and bank holidays, so referrals come mostly on weekdays
	// and staff decide in working time.
	Calendar *calendar.Calendar
}

// Limits on Params, so a typo cannot ask for a week-long run.
const (
	MaxReferrals = 5000
	MaxDays      = 365
)

// ValidateSize checks how many referrals over how many days, naming the bad one.
func ValidateSize(referrals, days int) error {
	switch {
	case referrals < 1 || referrals > MaxReferrals:
		return fmt.Errorf("referrals %d: use 1 to %d", referrals, MaxReferrals)
	case days < 7 || days > MaxDays:
		// Fewer than 7 days leaves no room for a history before the live queue; more than a
		// year would put re-referrals outside the rules' 12-month window.
		return fmt.Errorf("days %d: use 7 to %d", days, MaxDays)
	}
	return nil
}

// Validate names the first bad parameter.
func (p Params) Validate() error {
	if err := ValidateSize(p.Referrals, p.Days); err != nil {
		return err
	}
	switch {
	case p.End.IsZero():
		return errors.New("end time is required")
	case p.Calendar == nil:
		return errors.New("calendar is required")
	}
	return nil
}

// Partnerships are the demo's two partnerships; both use the default rule pack and the
// demo directory's "default" partnership.
var Partnerships = []string{"rhondda-cynon-taf", "merthyr-tydfil"}

// Plan is the history to play: referrals in order of receipt, each with how the hub will
// work it.
type Plan struct {
	Start, End time.Time
	Referrals  []Referral
}

// Referral is one referral of a Plan.
type Referral struct {
	// Index is the position in the plan; with the seed it makes the external reference.
	Index      int
	Scenario   string
	Source     Source
	ReceivedAt time.Time
	Submission *intakev1.ReferralSubmission
	// Child numbers the synthetic child: referrals with the same Child are about one child.
	Child int
	// Repeat says the child was referred before, earlier in the plan.
	Repeat   bool
	Handling Handling
}

// Override is how a practitioner departs from the rules' recommendation, if at all.
type Override int

// The overrides a plan uses.
const (
	Confirm Override = iota
	StepUp
	StepDown
	RaiseRAG
	LowerRAG
)

func (o Override) String() string {
	return [...]string{"confirm", "step-up", "step-down", "raise-rag", "lower-rag"}[o]
}

// Disagreement is what becomes of a professional disagreement about the decision.
type Disagreement int

// The disagreement stories a plan uses.
const (
	NoDisagreement Disagreement = iota
	// ResolvedByPractitioner: the practitioner explains the decision and the agency accepts.
	ResolvedByPractitioner
	// ResolvedAfterEscalation: escalated to the team manager, who resolves it.
	ResolvedAfterEscalation
	// LeftOpen: raised recently and still being considered.
	LeftOpen
)

// Handling is how the hub will work a referral.
type Handling struct {
	// Decide is false for the live queue: referrals nobody has decided yet.
	Decide bool
	// Close is false for decided cases still being worked.
	Close bool
	// Late decisions come after the decision due time.
	Late     bool
	Override Override
	// PreferNFA closes a low-level case with no further action (the child is referred again
	// later, the re-referral-after-NFA measure).
	PreferNFA bool
	// InformationRequest asks a notified agency what it knows; InformationAnswered says
	// whether it answers.
	InformationRequest, InformationAnswered bool
	Disagreement                            Disagreement
	// MergeDuplicate: the referral came without the child's NHS number from a new address,
	// so the child index made a second record; after the decision the practitioner merges
	// it into the child's earlier record, which the index offered as a possible match.
	MergeDuplicate bool
	// Seed drives the choices made while playing (delays, outcomes), so they repeat too.
	Seed uint64
}

// ExternalReference is the referring system's reference of the referral: fixed by the
// seed and position, so a rerun replays the same submissions instead of adding new ones.
func (r Referral) ExternalReference(seed uint64) string {
	return fmt.Sprintf("DEMO-S%d-%04d", seed, r.Index+1)
}

// child is a synthetic child, kept so a re-referral is about the same child.
type child struct {
	id        int
	given     string
	family    string
	sex       intakev1.Sex
	dob       time.Time // zero for an unborn child
	due       time.Time
	nhs       string
	partner   string
	address   *intakev1.Address
	language  string
	mother    string
	motherDOB time.Time
	// partnerName and relationship describe the other adult at home, if any.
	partnerFamily string
	relationship  intakev1.Relationship
	partnership   string
	referrals     int
	neglect       bool
	// first is the index (before sorting by time) of the child's first referral, and
	// firstLowLevel whether its scenario is usually level 1 or 2.
	first         int
	firstLowLevel bool
	lastAt        time.Time
}

// Generate makes the plan for p.
func Generate(p Params) (Plan, error) {
	if err := p.Validate(); err != nil {
		return Plan{}, fmt.Errorf("demo plan: %w", err)
	}
	loc := p.Calendar.Location()
	end := p.End.UTC().Truncate(time.Second)
	plan := Plan{Start: end.Add(-time.Duration(p.Days) * 24 * time.Hour), End: end}
	r := rand.New(rand.NewPCG(p.Seed, 0x6d617368)) // "mash"

	n := p.Referrals
	live := liveQueueSize(n)
	open := openCaseCount(n)
	// The live queue is the last few days: a queue of referrals spread over four months
	// would be four months overdue.
	liveDays := 4
	bodyDays := p.Days - liveDays
	days := make([]int, 0, n)
	for len(days) < n-live {
		days = append(days, weightedDay(r, p.Calendar, plan.Start, bodyDays, loc))
	}
	slices.Sort(days)
	for len(days) < n {
		days = append(days, bodyDays+r.IntN(liveDays))
	}

	var children []*child
	out := make([]Referral, 0, n)
	for i, day := range days {
		date := plan.Start.In(loc).AddDate(0, 0, day)
		var ch *child
		var sc scenario
		if i < n-live && r.Float64() < 0.22 {
			ch, sc = pickRepeat(r, children, date)
		}
		repeat := ch != nil
		if !repeat {
			sc = pickScenario(r, -2)
		}
		src := sources[pick(r, sc.sources)]
		at := timeOfDay(r, p.Calendar, date, src, loc)
		if latest := end.Add(-30 * time.Minute); at.After(latest) {
			at = latest.Add(-time.Duration(r.IntN(90)) * time.Minute)
		}
		if !repeat {
			ch = newChild(r, len(children), sc, at, loc)
			ch.first, ch.firstLowLevel = len(out), sc.lowLevel
			children = append(children, ch)
		}
		ch.referrals++
		ch.neglect = ch.neglect || sc.neglectStory
		sub := submission(r, ch, sc, src, at)
		out = append(out, Referral{Scenario: sc.name, Source: src, ReceivedAt: at, Submission: sub, Child: ch.id, Repeat: repeat})
		if repeat && ch.firstLowLevel {
			// The earlier referral of a child referred again closes with no further action
			// where its level allows: the story the re-referral-after-NFA measure tells.
			out[ch.first].Handling.PreferNFA = true
		}
		ch.lastAt = at
	}
	// Times of day can reorder referrals within a day; the plan is in order of receipt.
	slices.SortStableFunc(out, func(a, b Referral) int { return a.ReceivedAt.Compare(b.ReceivedAt) })

	disagreements := disagreementCount(n)
	for i := range out {
		ref := &out[i]
		ref.Index = i
		h := &ref.Handling
		h.Seed = p.Seed*1_000_003 + uint64(i)
		fromEnd := n - 1 - i
		h.Decide = fromEnd >= live
		h.Close = fromEnd >= live+open
		if !h.Decide {
			continue
		}
		h.Late = r.Float64() < 0.10
		if r.Float64() < 0.15 {
			h.Override = pickOverride(r)
		}
		h.InformationRequest = r.Float64() < 0.30
		h.InformationAnswered = h.InformationRequest && r.Float64() < 0.85
	}
	// A few disagreements, about decided cases spread over the period; the most recent one
	// is still open.
	for k := 0; k < disagreements; k++ {
		decided := n - live
		if decided <= 0 {
			break
		}
		i := (decided - 1) * (k + 1) / (disagreements + 1)
		d := ResolvedByPractitioner
		switch {
		case k == disagreements-1 && disagreements > 2:
			d = LeftOpen
		case k%2 == 1:
			d = ResolvedAfterEscalation
		}
		out[i].Handling.Disagreement = d
	}
	markDuplicate(out)
	markSiblings(out)
	for i := range out {
		out[i].Submission.ExternalReference = out[i].ExternalReference(p.Seed)
	}
	plan.Referrals = out
	return plan, nil
}

// movedPostcodes are where a child referred again has moved to (the first that differs from
// where they lived): fixed, so marking a duplicate draws nothing from the plan's stream.
var movedPostcodes = []string{"CF37 9ZZ", "CF48 9ZZ"}

// markDuplicate makes the first decided re-referral of a child whose earlier referrals all
// gave a date of birth arrive as a referring system that does not know the child would send
// it: no NHS number, and the address the family has moved to. The child index then offers
// the earlier record as a possible match rather than linking it, and the demo's practitioner
// merges the two records (Handling.MergeDuplicate) as a real one would.
func markDuplicate(out []Referral) {
	dated := map[int]bool{} // child -> every referral so far gave a date of birth
	for i := range out {
		ref := &out[i]
		ch := ref.Submission.GetChild()
		prior, seen := dated[ref.Child]
		if ref.Repeat && seen && prior && ref.Handling.Decide && ch.GetDateOfBirth() != "" && ch.GetAddress() != nil {
			moved := movedPostcodes[0]
			if ch.GetAddress().GetPostcode() == moved {
				moved = movedPostcodes[1]
			}
			ch.NhsNumber = ""
			ch.Address = &intakev1.Address{Line1: "Flat 2, 9 Heol Newydd", Town: ch.GetAddress().GetTown(), Postcode: moved}
			ref.Handling.MergeDuplicate = true
			return
		}
		dated[ref.Child] = (!seen || prior) && ch.GetDateOfBirth() != ""
	}
}

// markSiblings makes the first two decided referrals in a row about children referred once,
// both with a date of birth, one contact about two siblings: the first is sent with the
// second (at the second's time, by the first's referrer), with the same family name,
// address and household, and both carry one family group, so triage shows them together.
// Nothing is drawn from the plan's stream.
func markSiblings(out []Referral) {
	referred := map[int]int{}
	for _, ref := range out {
		referred[ref.Child]++
	}
	for i := 0; i+1 < len(out); i++ {
		a, b := &out[i], &out[i+1]
		ca, cb := a.Submission.GetChild(), b.Submission.GetChild()
		if referred[a.Child] != 1 || referred[b.Child] != 1 || !a.Handling.Decide || !b.Handling.Decide || a.Handling.MergeDuplicate ||
			b.Handling.MergeDuplicate || ca.GetDateOfBirth() == "" || cb.GetDateOfBirth() == "" || a.Submission.GetPartnership() != b.Submission.GetPartnership() {
			continue
		}
		group := fmt.Sprintf("DEMO-FAMILY-%04d", i+1)
		a.Submission.FamilyGroup, b.Submission.FamilyGroup = group, group
		// Both when the later arrived: a concern is never observed after its referral.
		a.ReceivedAt, b.Source = b.ReceivedAt, a.Source
		b.Submission.Referrer = proto.Clone(a.Submission.GetReferrer()).(*intakev1.Referrer)
		cb.FamilyName, cb.Address = ca.GetFamilyName(), proto.Clone(ca.GetAddress()).(*intakev1.Address)
		b.Submission.Household = nil
		for _, m := range a.Submission.GetHousehold() {
			b.Submission.Household = append(b.Submission.Household, proto.Clone(m).(*intakev1.HouseholdMember))
		}
		return
	}
}

// liveQueueSize is how many of the newest referrals nobody has decided yet (25 of 300).
func liveQueueSize(n int) int {
	if n < 4 {
		return min(1, n)
	}
	return max(2, int(math.Round(float64(n)*25/300)))
}

// openCaseCount is how many decided cases are still being worked (20 of 300).
func openCaseCount(n int) int {
	if n < 6 {
		return 0
	}
	return max(2, int(math.Round(float64(n)*20/300)))
}

func disagreementCount(n int) int {
	if n < 20 {
		return 0
	}
	return max(1, n/60)
}

func pickOverride(r *rand.Rand) Override {
	switch x := r.Float64(); {
	case x < 0.45:
		return StepUp
	case x < 0.80:
		return StepDown
	case x < 0.90:
		return RaiseRAG
	default:
		return LowerRAG
	}
}

// weightedDay draws a day of the period, weekdays about three times as likely as weekends
// and bank holidays, as referrals follow the working week.
func weightedDay(r *rand.Rand, cal *calendar.Calendar, start time.Time, days int, loc *time.Location) int {
	for {
		d := 1 + r.IntN(days-1) // day 0 is cut short by the start time
		noon := time.Date(start.In(loc).Year(), start.In(loc).Month(), start.In(loc).Day()+d, 12, 0, 0, 0, loc)
		w := 0.33
		if cal.IsWorkingDay(noon) {
			w = 1
		}
		if r.Float64() < w {
			return d
		}
	}
}

// timeOfDay picks when on date a referral from src arrives: mostly office hours, police
// more often in the evening and night.
func timeOfDay(r *rand.Rand, cal *calendar.Calendar, date time.Time, src Source, loc *time.Location) time.Time {
	y, m, d := date.Date()
	outOfHours := 0.12
	if src.Kind == "police" {
		outOfHours = 0.45
	}
	var minute int
	switch {
	case r.Float64() >= outOfHours:
		minute = 8*60 + 30 + r.IntN(9*60) // 08:30 to 17:30
	case r.Float64() < 0.7:
		minute = 17*60 + 30 + r.IntN(6*60) // evening
	default:
		minute = (23*60 + 30 + r.IntN(9*60)) % (24 * 60) // night
	}
	if !cal.IsWorkingDay(time.Date(y, m, d, 12, 0, 0, 0, loc)) && minute >= 8*60+30 && minute < 17*60+30 {
		minute = 10*60 + r.IntN(10*60) // weekends start later and run later
	}
	return time.Date(y, m, d, minute/60, minute%60, r.IntN(60), 0, loc).UTC()
}

// pickScenario draws a scenario by weight; age >= -1 keeps to scenarios for a child of that
// age (-1: unborn), -2 takes any.
func pickScenario(r *rand.Rand, age int) scenario {
	total := 0
	for _, s := range scenarios {
		if fits(s, age) {
			total += s.weight
		}
	}
	x := r.IntN(total)
	for _, s := range scenarios {
		if !fits(s, age) {
			continue
		}
		if x -= s.weight; x < 0 {
			return s
		}
	}
	panic("unreachable: weights are positive")
}

func fits(s scenario, age int) bool {
	switch {
	case age == -2:
		return true
	case age == -1 || s.maxAge < 0:
		return age == -1 && s.maxAge < 0
	}
	return age >= s.minAge && age <= s.maxAge
}

// pickRepeat chooses an earlier child to refer again on date, and a scenario fitting the
// child's age now; neglect stories continue as neglect, so history accumulates. It returns
// nil when no child qualifies.
func pickRepeat(r *rand.Rand, children []*child, date time.Time) (*child, scenario) {
	var cands []*child
	for _, c := range children {
		gap := date.Sub(c.lastAt)
		if c.dob.IsZero() || c.referrals >= 3 || gap < 10*24*time.Hour || gap > 330*24*time.Hour {
			continue
		}
		if calendar.AgeOn(c.dob, date) > 16 {
			continue
		}
		cands = append(cands, c)
	}
	if len(cands) == 0 {
		return nil, scenario{}
	}
	c := pick(r, cands)
	age := calendar.AgeOn(c.dob, date)
	if c.neglect && r.Float64() < 0.7 {
		for _, name := range []string{"neglect-young-child", "neglect-school-age", "school-attendance"} {
			for _, s := range scenarios {
				if s.name == name && fits(s, age) {
					return c, s
				}
			}
		}
	}
	return c, pickScenario(r, age)
}

func newChild(r *rand.Rand, id int, sc scenario, at time.Time, loc *time.Location) *child {
	c := &child{id: id, family: pick(r, familyNames), nhs: NHSNumber(r), language: "en", partnership: Partnerships[0]}
	if r.Float64() < 0.25 {
		c.partnership = Partnerships[1]
	}
	if r.Float64() < 0.25 {
		c.language = "cy"
	}
	if sc.maxAge < 0 {
		c.sex = intakev1.Sex_SEX_NOT_KNOWN
		c.due = at.In(loc).AddDate(0, 2+r.IntN(5), r.IntN(28))
	} else {
		c.sex, c.given = intakev1.Sex_MALE, pick(r, boysNames)
		if r.IntN(2) == 0 {
			c.sex, c.given = intakev1.Sex_FEMALE, pick(r, girlsNames)
		}
		age := sc.minAge + r.IntN(sc.maxAge-sc.minAge+1)
		y, m, d := at.In(loc).Date()
		// A day-of-year offset keeps every child strictly younger than age+1 at receipt.
		c.dob = time.Date(y-age, m, d, 0, 0, 0, 0, time.UTC).AddDate(0, 0, -r.IntN(360)-1)
		if sc.name == "non-mobile-baby-injury" {
			c.dob = time.Date(y, m, d, 0, 0, 0, 0, time.UTC).AddDate(0, 0, -60-r.IntN(100))
		}
	}
	pl := pick(r, places[c.partnership])
	c.address = &intakev1.Address{Line1: fmt.Sprintf("%d %s", 1+r.IntN(120), pick(r, streets)), Town: pl.town, Postcode: Postcode(r, pick(r, pl.districts))}
	if r.Float64() < 0.08 {
		c.nhs = "" // not every referrer knows it; the child index then matches on demographics
	}
	c.mother = pick(r, motherNames)
	c.motherDOB = at.AddDate(-(20 + r.IntN(22)), -r.IntN(12), -r.IntN(28)).UTC().Truncate(24 * time.Hour)
	switch r.IntN(3) {
	case 0:
		c.partner, c.partnerFamily, c.relationship = pick(r, partnerNames), pick(r, familyNames), intakev1.Relationship_MOTHERS_PARTNER
	case 1:
		c.partner, c.partnerFamily, c.relationship = pick(r, partnerNames), c.family, intakev1.Relationship_FATHER
	}
	return c
}

// unknownDOBEvery: one child in this many (with an NHS number) is referred with an
// estimated age instead of a date of birth.
const unknownDOBEvery = 12

// submission writes the referral as the referring system would send it.
func submission(r *rand.Rand, c *child, sc scenario, src Source, at time.Time) *intakev1.ReferralSubmission {
	age := -1
	if !c.dob.IsZero() {
		age = calendar.AgeOn(c.dob, at)
	}
	b := &builder{r: r, age: age}
	sc.build(b)
	for _, cn := range b.concerns {
		cn.ObservedAt = timestamppb.New(at.Add(-observedBefore(r, src)))
	}
	given, family := pick(r, motherNames), pick(r, familyNames)
	if r.IntN(2) == 0 {
		given = pick(r, partnerNames)
	}
	name := strings.TrimSpace(src.Title + " " + given + " " + family)
	ch := &intakev1.Child{GivenName: c.given, FamilyName: c.family, NhsNumber: c.nhs, Sex: c.sex, Address: c.address,
		PreferredLanguage: c.language}
	if c.dob.IsZero() {
		ch.Unborn, ch.DueDate = true, c.due.Format(time.DateOnly)
	} else {
		ch.DateOfBirth = c.dob.Format(time.DateOnly)
		if age >= 4 {
			ch.School = schools[c.id%len(schools)]
		}
		if c.nhs != "" && c.id%unknownDOBEvery == unknownDOBEvery-1 {
			// Some referrers know the child's NHS number and roughly how old they are, but
			// not the date of birth; the child index still links them by NHS number. No
			// extra random draw, so the rest of the plan is unchanged.
			ch.DateOfBirth, ch.EstimatedAgeYears = "", proto.Int32(int32(age))
		}
	}
	household := []*intakev1.HouseholdMember{{Relationship: intakev1.Relationship_MOTHER, GivenName: c.mother, FamilyName: c.family,
		DateOfBirth: c.motherDOB.Format(time.DateOnly), LivesWithChild: true}}
	if c.partner != "" {
		household = append(household, &intakev1.HouseholdMember{Relationship: c.relationship, GivenName: c.partner, FamilyName: c.partnerFamily, LivesWithChild: r.IntN(3) > 0})
	}
	consent := b.consent
	if consent == nil {
		switch x := r.Float64(); {
		case x < 0.70:
			consent = &intakev1.Consent{Status: intakev1.ConsentStatus_GIVEN}
		case x < 0.85:
			consent = &intakev1.Consent{Status: intakev1.ConsentStatus_REFUSED, Reason: reasonRefused}
		default:
			consent = &intakev1.Consent{Status: intakev1.ConsentStatus_NOT_SOUGHT, Reason: "Parent could not be reached before the referral was made; they will be told by the hub."}
		}
	}
	return &intakev1.ReferralSubmission{
		Partnership: c.partnership,
		Referrer: &intakev1.Referrer{Name: name, Role: src.Role, Phone: phone(r),
			Email:                  strings.ToLower(given + "." + family + "@" + src.EmailDomain),
			KeepIdentityFromFamily: r.Float64() < 0.1},
		Child:          ch,
		Household:      household,
		Concerns:       b.concerns,
		RiskIndicators: b.risk,
		Consent:        consent,
		Narrative:      "Synthetic demo referral (" + sc.name + "): generated by mash demo, not about a real child.",
	}
}
