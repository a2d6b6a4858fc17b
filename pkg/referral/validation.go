// Package referral checks a referral submission before the hub accepts it.
//
// Referring systems (police, health, schools) submit a ReferralSubmission as
// protobuf JSON. Validate returns every problem at once, each as a Violation
// naming the JSON path an integrator knows (child.nhsNumber,
// concerns[1].observedAt) and a short reason saying what is wrong and what is
// accepted, so a referring system can fix everything in one round trip
// instead of discovering problems one by one while a child waits.
//
// Invariants:
//   - Reasons never contain the submitted value. Referral data is special
//     category personal data about children, and violations end up in HTTP
//     responses, logs and metrics; a reason says only what is wrong.
//   - Violations come in document order (the order of fields in
//     referral.proto, which is also the order of the published example), and
//     a field gets at most one violation: the first rule it fails.
//   - Validate and Decode never panic, whatever they are given.
//   - Lengths are counted in characters (runes), not bytes, because limits are
//     stated to integrators in characters and Welsh names use non-ASCII
//     letters.
package referral

import (
	"regexp"
	"strconv"
	"time"

	"google.golang.org/protobuf/reflect/protoreflect"

	intakev1 "github.com/mash-hub/mash/proto/mash/intake/v1"

	// Embedded so that Europe/London resolves inside minimal containers that
	// ship without /usr/share/zoneinfo; without it "today" would silently be
	// UTC and a child born just after midnight BST would be "in the future".
	_ "time/tzdata"
)

// Violation is one problem with a submission.
type Violation struct {
	// Field is the JSON path of the offending field in lowerCamelCase with
	// list indexes, e.g. "child.nhsNumber" or "concerns[1].observedAt"; an
	// object path such as "referrer" when the whole object is missing; "body"
	// when the request body itself could not be decoded.
	Field string
	// Reason says what is wrong and what is accepted, e.g. "must not be in
	// the future". It never contains the submitted value.
	Reason string
}

// String renders the violation as "field: reason", the form used in logs and
// plain-text error messages.
func (v Violation) String() string {
	if v.Field == "" {
		return v.Reason
	}
	return v.Field + ": " + v.Reason
}

// Limits that integrators are told about; named so tests and documentation
// cannot drift from the code.
const (
	maxExternalReference = 64
	maxPartnership       = 64
	maxPersonName        = 200 // referrer name: may include a rank or title
	maxRole              = 200
	maxPhone             = 32 // 15 digits plus generous spacing and punctuation
	maxEmail             = 254
	maxName              = 100 // given and family names
	maxAddressLine       = 200
	maxTown              = 100
	maxCounty            = 100
	maxSchool            = 200
	maxEthnicity         = 100
	maxHousehold         = 30
	maxConcerns          = 30
	maxSummary           = 4000
	maxConsentReason     = 2000
	maxAuthorisedBy      = 200
	maxNarrative         = 20000
	maxIncidents         = 366 // at most one a day over 12 months (leap year)
	maxDashScore         = 27  // the DASH checklist has 27 questions
	adultAge             = 18
	maxDueMonthsAhead    = 10
	maxDueMonthsOverdue  = 1
	// maxClockSkew tolerates referring systems whose clocks run a little fast,
	// so a concern observed "just now" is not rejected as future.
	maxClockSkew = 5 * time.Minute
)

// Common reasons. Each is a sentence fragment that reads after the field name.
const (
	reasonRequired    = "is required"
	reasonInvalidUTF8 = "must be valid UTF-8 text"
	reasonControl     = "must not contain control characters such as tabs or line breaks"
	reasonMultiCtl    = "must not contain control characters other than tabs and line breaks"
	reasonDate        = "must be a valid calendar date in the form YYYY-MM-DD"
	reasonFuture      = "must not be in the future"
	reasonBefore1900  = "must not be before 1900-01-01"
)

var (
	externalReferencePattern = regexp.MustCompile(`^[A-Za-z0-9._:/-]+$`)
	partnershipPattern       = regexp.MustCompile(`^[a-z0-9]+(?:-[a-z0-9]+)*$`)
	languagePattern          = regexp.MustCompile(`^[a-z]{2}$`)
	// postcodePattern is applied to an upper-cased postcode without spaces.
	// It checks the structure (outward A9, A99, AA9, AA99, A9A, AA9A; inward
	// 9AA) rather than Royal Mail's per-position letter exclusions: rejecting
	// a real but unusual postcode would block a child's referral, while a
	// well-formed but non-existent one costs no more than any other wrong
	// address the hub has to follow up.
	postcodePattern = regexp.MustCompile(`^(?:GIR0AA|[A-Z]{1,2}[0-9][A-Z0-9]?[0-9][A-Z]{2})$`)
)

// london is where the hub works, so "today" for dates of birth and due dates
// is the calendar date in Europe/London, not in UTC.
var london = loadLondon()

func loadLondon() *time.Location {
	loc, err := time.LoadLocation("Europe/London")
	if err != nil {
		// Unreachable while time/tzdata is embedded; UTC is at most an hour
		// out around midnight, which is better than refusing to start.
		return time.UTC
	}
	return loc
}

// earliest is the earliest date or instant the hub accepts: anything before
// is a data-entry error (e.g. a year typed as 0019).
var earliest = time.Date(1900, time.January, 1, 0, 0, 0, 0, time.UTC)

// Validate checks sub against the intake contract and returns every
// violation in document order, or nil when the submission is acceptable.
// now is the time of receipt: dates are judged against the calendar date in
// Europe/London at now, instants against now itself. A nil submission gets
// one violation per required field.
func Validate(sub *intakev1.ReferralSubmission, now time.Time) []Violation {
	c := checker{now: now, today: londonToday(now)}
	c.add("externalReference", checkExternalReference(sub.GetExternalReference()))
	c.add("partnership", checkPartnership(sub.GetPartnership()))
	c.referrer(sub.GetReferrer())
	c.child(sub.GetChild())
	c.household(sub.GetHousehold())
	c.concerns(sub.GetConcerns())
	c.riskIndicators(sub.GetRiskIndicators())
	c.consent(sub.GetConsent())
	c.add("narrative", narrativeText.check(sub.GetNarrative()))
	c.add("familyGroup", checkFamilyGroup(sub.GetFamilyGroup()))
	return c.violations
}

// checker accumulates violations. Rule helpers are pure functions returning a
// reason ("" when the value passes); the checker attaches the field path, so
// indexed paths are only formatted when something is wrong.
type checker struct {
	now        time.Time
	today      time.Time // midnight UTC of today's date in Europe/London
	violations []Violation
}

func (c *checker) add(field, reason string) {
	if reason != "" {
		c.violations = append(c.violations, Violation{Field: field, Reason: reason})
	}
}

// addAt records a violation on list[index].leaf, e.g. household[0].relationship.
func (c *checker) addAt(list string, index int, leaf, reason string) {
	if reason != "" {
		c.add(list+"["+strconv.Itoa(index)+"]."+leaf, reason)
	}
}

func (c *checker) referrer(r *intakev1.Referrer) {
	if r == nil {
		c.add("referrer", reasonRequired)
		return
	}
	name := referrerNameText
	if r.GetAnonymous() {
		name = anonymousNameText
	}
	c.add("referrer.name", name.check(r.GetName()))
	c.add("referrer.role", roleText.check(r.GetRole()))
	c.add("referrer.phone", checkPhone(r.GetPhone()))
	c.add("referrer.email", checkEmail(r.GetEmail()))
	if r.GetPhone() == "" && r.GetEmail() == "" && !r.GetAnonymous() {
		// Reported on phone, the usual way the hub calls back, so a form can
		// highlight a concrete input.
		c.add("referrer.phone", "is required when email is not given: the hub must be able to contact the referrer")
	}
}

func (c *checker) child(ch *intakev1.Child) {
	if ch == nil {
		c.add("child", reasonRequired)
		return
	}
	unborn := ch.GetUnborn()
	givenName := requiredNameText
	if unborn {
		// An unborn child usually has no name yet.
		givenName = optionalNameText
	}
	c.add("child.givenName", givenName.check(ch.GetGivenName()))
	c.add("child.familyName", requiredNameText.check(ch.GetFamilyName()))
	age := ageFields{dob: ch.GetDateOfBirth(), unborn: unborn, ageUnknown: ch.GetAgeUnknown(), estimated: ch.EstimatedAgeYears != nil}
	c.add("child.dateOfBirth", checkChildDateOfBirth(age.dob, unborn, age.ageUnknown, age.estimated, c.today))
	c.add("child.ageUnknown", checkAgeUnknown(age))
	c.add("child.estimatedAgeYears", checkEstimatedAge(age, ch.GetEstimatedAgeYears()))
	c.add("child.nhsNumber", checkNHSNumber(ch.GetNhsNumber()))
	c.add("child.sex", sexEnum.check(protoreflect.EnumNumber(ch.GetSex())))
	c.address(ch.GetAddress())
	c.add("child.school", schoolText.check(ch.GetSchool()))
	c.add("child.preferredLanguage", checkLanguage(ch.GetPreferredLanguage()))
	c.add("child.dueDate", checkDueDate(ch.GetDueDate(), unborn, c.today))
	c.add("child.ethnicity", ethnicityText.check(ch.GetEthnicity()))
}

func (c *checker) address(a *intakev1.Address) {
	if a == nil {
		return // optional: a child may be of no fixed abode
	}
	// Paths are literals, not built from a prefix, so a valid address costs
	// no allocations.
	c.add("child.address.line1", addressLine1Text.check(a.GetLine1()))
	c.add("child.address.line2", addressLine2Text.check(a.GetLine2()))
	c.add("child.address.town", townText.check(a.GetTown()))
	c.add("child.address.county", countyText.check(a.GetCounty()))
	c.add("child.address.postcode", checkPostcode(a.GetPostcode()))
}

func (c *checker) household(members []*intakev1.HouseholdMember) {
	if len(members) > maxHousehold {
		c.add("household", "must have at most "+strconv.Itoa(maxHousehold)+" members")
		// Members beyond the limit are not checked, so an oversized list
		// cannot amplify into thousands of violations.
		members = members[:maxHousehold]
	}
	for i, m := range members {
		c.addAt("household", i, "relationship", relationshipEnum.check(protoreflect.EnumNumber(m.GetRelationship())))
		c.addAt("household", i, "givenName", optionalNameText.check(m.GetGivenName()))
		c.addAt("household", i, "familyName", optionalNameText.check(m.GetFamilyName()))
		if dob := m.GetDateOfBirth(); dob != "" {
			_, reason := checkPastDate(dob, c.today)
			c.addAt("household", i, "dateOfBirth", reason)
		}
	}
}

func (c *checker) concerns(concerns []*intakev1.Concern) {
	switch {
	case len(concerns) == 0:
		c.add("concerns", "must contain at least one concern")
	case len(concerns) > maxConcerns:
		c.add("concerns", "must contain at most "+strconv.Itoa(maxConcerns)+" concerns")
		concerns = concerns[:maxConcerns] // as for household: bounded output
	}
	for i, cn := range concerns {
		c.addAt("concerns", i, "category", categoryEnum.check(protoreflect.EnumNumber(cn.GetCategory())))
		c.addAt("concerns", i, "summary", summaryText.check(cn.GetSummary()))
		c.addAt("concerns", i, "observedAt", checkObservedAt(cn.GetObservedAt(), c.now))
		c.addAt("concerns", i, "location", locationText.check(cn.GetLocation()))
	}
}

func (c *checker) riskIndicators(ri *intakev1.RiskIndicators) {
	if ri == nil {
		return // optional: not every referrer has assessed risk
	}
	c.add("riskIndicators.domesticAbuseRisk", checkDomesticAbuseRisk(ri.GetDomesticAbuseRisk(), ri.GetDashScore()))
	c.add("riskIndicators.policeIncidentsLast12Months", checkRange(ri.GetPoliceIncidentsLast_12Months(), 0, maxIncidents))
	c.add("riskIndicators.dashScore", checkRange(ri.GetDashScore(), 0, maxDashScore))
	c.add("riskIndicators.missingEpisodesLast12Months", checkRange(ri.GetMissingEpisodesLast_12Months(), 0, maxIncidents))
}

func (c *checker) consent(cs *intakev1.Consent) {
	if cs == nil {
		c.add("consent", reasonRequired)
		return
	}
	status := cs.GetStatus()
	c.add("consent.status", consentStatusEnum.check(protoreflect.EnumNumber(status)))
	reasonRule := consentReasonText
	if status == intakev1.ConsentStatus_REFUSED || status == intakev1.ConsentStatus_NOT_SOUGHT {
		// Sharing without consent must be justified (UK GDPR, DPA 2018
		// Schedule 1 paragraph 18), so the why is part of the record.
		reasonRule.required = true
		reasonRule.requiredReason = "is required when consent was refused or not sought: say why the referral is made without consent"
	}
	c.add("consent.reason", reasonRule.check(cs.GetReason()))
	c.add("consent.authorisedBy", authorisedByText.check(cs.GetAuthorisedBy()))
}
