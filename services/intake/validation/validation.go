// Package validation checks a referral submission before the hub accepts it.
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
package validation

import (
	"net/mail"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	intakev1 "mash/proto/mash/intake/v1"

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
	c.add("referrer.name", referrerNameText.check(r.GetName()))
	c.add("referrer.role", roleText.check(r.GetRole()))
	c.add("referrer.phone", checkPhone(r.GetPhone()))
	c.add("referrer.email", checkEmail(r.GetEmail()))
	if r.GetPhone() == "" && r.GetEmail() == "" {
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
	c.add("child.dateOfBirth", checkChildDateOfBirth(ch.GetDateOfBirth(), unborn, c.today))
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

// textRule describes a free-text field.
type textRule struct {
	max      int
	required bool
	// multiLine permits tab, CR and LF, which narrative text legitimately
	// contains; single-line fields (names, address lines) permit no control
	// characters at all.
	multiLine bool
	// requiredReason replaces reasonRequired when set, to say when and why.
	requiredReason string
}

var (
	referrerNameText  = textRule{max: maxPersonName, required: true}
	roleText          = textRule{max: maxRole}
	requiredNameText  = textRule{max: maxName, required: true}
	optionalNameText  = textRule{max: maxName}
	addressLine1Text  = textRule{max: maxAddressLine, required: true}
	addressLine2Text  = textRule{max: maxAddressLine}
	townText          = textRule{max: maxTown}
	countyText        = textRule{max: maxCounty}
	schoolText        = textRule{max: maxSchool}
	ethnicityText     = textRule{max: maxEthnicity}
	summaryText       = textRule{max: maxSummary, required: true, multiLine: true}
	consentReasonText = textRule{max: maxConsentReason, multiLine: true}
	authorisedByText  = textRule{max: maxAuthorisedBy}
	narrativeText     = textRule{max: maxNarrative, multiLine: true}
)

// check returns the first rule s breaks, or "".
func (r textRule) check(s string) string {
	if !utf8.ValidString(s) {
		return reasonInvalidUTF8
	}
	if strings.TrimSpace(s) == "" {
		if r.required {
			if r.requiredReason != "" {
				return r.requiredReason
			}
			return reasonRequired
		}
		if s == "" {
			return ""
		}
	}
	if tooLong(s, r.max) {
		return maxCharsReason(r.max)
	}
	for _, ch := range s {
		if !unicode.IsControl(ch) {
			continue
		}
		if r.multiLine && (ch == '\t' || ch == '\n' || ch == '\r') {
			continue
		}
		// Besides being meaningless in a name, NUL cannot be stored in a
		// Postgres text column, so letting it through would fail later.
		if r.multiLine {
			return reasonMultiCtl
		}
		return reasonControl
	}
	return ""
}

// tooLong reports whether s has more than max characters. The byte length is
// an upper bound on the rune count, so most strings need no counting.
func tooLong(s string, max int) bool {
	return len(s) > max && utf8.RuneCountInString(s) > max
}

func maxCharsReason(max int) string {
	return "must be at most " + strconv.Itoa(max) + " characters"
}

// checkExternalReference: the referring system's own reference, which the
// hub echoes back and uses for idempotency, so it must survive URLs, logs
// and spreadsheets unchanged.
func checkExternalReference(s string) string {
	switch {
	case s == "":
		return reasonRequired
	case len(s) > maxExternalReference:
		return maxCharsReason(maxExternalReference)
	case !externalReferencePattern.MatchString(s):
		return "must contain only ASCII letters, digits and the characters - _ . / :"
	}
	return ""
}

// checkPartnership: the partnership slug routes the referral to a hub, so it
// must match a configured slug exactly; case variants are rejected rather
// than guessed.
func checkPartnership(s string) string {
	switch {
	case s == "":
		return reasonRequired
	case len(s) > maxPartnership:
		return maxCharsReason(maxPartnership)
	case !partnershipPattern.MatchString(s):
		return "must be a lower-case slug of letters and digits separated by single hyphens, e.g. rhondda-cynon-taf"
	}
	return ""
}

// checkPhone accepts UK-style numbers as people write them: digits with
// spaces, parentheses, hyphens and an optional leading +, 10 to 15 digits
// (a UK national number has 10 or 11; E.164 allows 15).
func checkPhone(s string) string {
	if s == "" {
		return ""
	}
	if tooLong(s, maxPhone) {
		return maxCharsReason(maxPhone)
	}
	digits := 0
	for i, r := range s {
		switch {
		case r >= '0' && r <= '9':
			digits++
		case r == '+' && i == 0:
		case r == ' ' || r == '(' || r == ')' || r == '-':
		default:
			return "must contain only digits, spaces, parentheses, hyphens and a leading +"
		}
	}
	if digits < 10 || digits > 15 {
		return "must contain 10 to 15 digits"
	}
	return ""
}

// checkEmail accepts a bare address (no display name or comment) with a
// domain containing a dot: the hub replies to it, and an address like
// "Name <x@y>" or "x@localhost" from a referring system is a mapping bug.
func checkEmail(s string) string {
	if s == "" {
		return ""
	}
	if !utf8.ValidString(s) {
		return reasonInvalidUTF8
	}
	if tooLong(s, maxEmail) {
		return maxCharsReason(maxEmail)
	}
	addr, err := mail.ParseAddress(s)
	if err != nil || addr.Name != "" || addr.Address != s {
		return "must be a plain email address such as name@example.org, without a display name"
	}
	domain := s[strings.LastIndexByte(s, '@')+1:]
	if !strings.Contains(domain, ".") || strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") {
		return "must have a full domain name, such as name@example.org"
	}
	return ""
}

// checkNHSNumber: optional, but when given it is how the hub matches the
// child to earlier referrals, so a mistyped number must be caught here.
func checkNHSNumber(s string) string {
	if s == "" {
		return ""
	}
	if _, ok := nhsDigits(s); !ok {
		return "must be 10 digits with a valid modulus-11 check digit (spaces are allowed)"
	}
	return ""
}

// NormaliseNHSNumber returns the 10 digits of an NHS number written with or
// without spaces (e.g. "943 476 5919" → "9434765919") and whether it is a
// valid NHS number: 10 digits whose last is the modulus-11 check digit of the
// first nine (weights 10 down to 2; check = 11 - sum mod 11, where 11 means 0
// and 10 means the number can never be issued).
func NormaliseNHSNumber(s string) (string, bool) {
	d, ok := nhsDigits(s)
	if !ok {
		return "", false
	}
	return string(d[:]), true
}

// nhsDigits extracts and checks the digits without allocating.
func nhsDigits(s string) ([10]byte, bool) {
	var d [10]byte
	n := 0
	for i := 0; i < len(s); i++ {
		b := s[i]
		switch {
		case b == ' ':
			continue
		case b < '0' || b > '9' || n == len(d):
			return d, false
		}
		d[n] = b
		n++
	}
	if n != len(d) {
		return d, false
	}
	sum := 0
	for i := 0; i < 9; i++ {
		sum += int(d[i]-'0') * (10 - i)
	}
	check := 11 - sum%11
	switch check {
	case 11:
		check = 0
	case 10:
		return d, false
	}
	return d, int(d[9]-'0') == check
}

// checkPostcode: required inside an address; see postcodePattern.
func checkPostcode(s string) string {
	if strings.TrimSpace(s) == "" {
		return reasonRequired
	}
	var buf [maxPostcodeInput]byte
	if _, ok := compactPostcode(s, &buf); !ok {
		return "must be a UK postcode such as CF37 1AA"
	}
	return ""
}

// maxPostcodeInput bounds the work done on a postcode: the longest form is 7
// characters plus a space, with room for some stray spaces.
const maxPostcodeInput = 16

// NormalisePostcode returns a UK postcode in its standard form (upper case,
// one space before the inward code: "cf371aa" → "CF37 1AA") and whether s is
// a well-formed UK postcode. Spaces anywhere are ignored, because referring
// systems store postcodes with, without and with doubled spaces.
func NormalisePostcode(s string) (string, bool) {
	var buf [maxPostcodeInput]byte
	compact, ok := compactPostcode(s, &buf)
	if !ok {
		return "", false
	}
	n := len(compact)
	return string(compact[:n-3]) + " " + string(compact[n-3:]), true
}

// compactPostcode upper-cases s without spaces into buf and reports whether
// the result is a well-formed postcode, without allocating.
func compactPostcode(s string, buf *[maxPostcodeInput]byte) ([]byte, bool) {
	if len(s) > len(buf) {
		return nil, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		b := s[i]
		switch {
		case b == ' ':
			continue
		case b >= 'a' && b <= 'z':
			b -= 'a' - 'A'
		}
		buf[n] = b
		n++
	}
	compact := buf[:n]
	return compact, postcodePattern.Match(compact)
}

// checkLanguage: optional; services in Wales must be offered in Welsh or
// English, so the code must be machine-readable (ISO 639-1, lower case).
func checkLanguage(s string) string {
	if s == "" || languagePattern.MatchString(s) {
		return ""
	}
	return "must be a lower-case two-letter ISO 639-1 code, e.g. cy or en"
}

// londonToday is today's calendar date in Europe/London at now, as midnight
// UTC so it compares directly with parsed dates.
func londonToday(now time.Time) time.Time {
	y, m, d := now.In(london).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// parseDate parses a strict YYYY-MM-DD calendar date as midnight UTC. It is
// stricter than time.Parse about digits and rejects impossible dates such as
// 2023-02-29.
func parseDate(s string) (time.Time, bool) {
	if len(s) != 10 || s[4] != '-' || s[7] != '-' {
		return time.Time{}, false
	}
	num := func(part string) (int, bool) {
		v := 0
		for i := 0; i < len(part); i++ {
			if part[i] < '0' || part[i] > '9' {
				return 0, false
			}
			v = v*10 + int(part[i]-'0')
		}
		return v, true
	}
	y, ok1 := num(s[0:4])
	m, ok2 := num(s[5:7])
	d, ok3 := num(s[8:10])
	if !ok1 || !ok2 || !ok3 || m < 1 || m > 12 || d < 1 {
		return time.Time{}, false
	}
	t := time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC)
	// time.Date normalises 31 April to 1 May; a changed day means the date
	// does not exist.
	if t.Day() != d {
		return time.Time{}, false
	}
	return t, true
}

// checkPastDate checks a date that has already happened, such as a date of
// birth: valid, not after today, not before 1900.
func checkPastDate(s string, today time.Time) (time.Time, string) {
	t, ok := parseDate(s)
	switch {
	case !ok:
		return t, reasonDate
	case t.After(today):
		return t, reasonFuture
	case t.Before(earliest):
		return t, reasonBefore1900
	}
	return t, ""
}

// checkChildDateOfBirth: required for a born child, absent for an unborn
// one, and under 18 at receipt: the hub is for children, and a referral
// about an adult belongs with adult safeguarding.
func checkChildDateOfBirth(s string, unborn bool, today time.Time) string {
	if unborn {
		if s != "" {
			return "must be empty for an unborn child; give dueDate instead"
		}
		return ""
	}
	if s == "" {
		return "is required unless unborn is true"
	}
	dob, reason := checkPastDate(s, today)
	if reason != "" {
		return reason
	}
	// AddDate takes a 29 February birthday to 1 March in a non-leap year,
	// which is when English and Welsh law treat the person as having come
	// of age.
	if !today.Before(dob.AddDate(adultAge, 0, 0)) {
		return "must be a date of birth of someone under " + strconv.Itoa(adultAge) + ": a referral about an adult is misrouted and belongs with adult safeguarding"
	}
	return ""
}

// checkDueDate: required for an unborn child, within a plausible pregnancy
// window (up to 10 months ahead; up to 1 month overdue, as births are often
// late and records lag), and absent otherwise.
func checkDueDate(s string, unborn bool, today time.Time) string {
	if !unborn {
		if s != "" {
			return "must be empty unless unborn is true; give dateOfBirth for a born child"
		}
		return ""
	}
	if s == "" {
		return "is required when unborn is true"
	}
	due, ok := parseDate(s)
	switch {
	case !ok:
		return reasonDate
	case due.After(today.AddDate(0, maxDueMonthsAhead, 0)):
		return "must be no more than " + strconv.Itoa(maxDueMonthsAhead) + " months from today"
	case due.Before(today.AddDate(0, -maxDueMonthsOverdue, 0)):
		return "must be no more than " + strconv.Itoa(maxDueMonthsOverdue) + " month in the past; once the baby is born, give dateOfBirth and set unborn to false"
	}
	return ""
}

// checkObservedAt: required, and an observation cannot be in the future
// (beyond clock skew) or in the distant past.
func checkObservedAt(ts *timestamppb.Timestamp, now time.Time) string {
	if ts == nil {
		return reasonRequired
	}
	if ts.CheckValid() != nil {
		return "must be a valid timestamp between years 0001 and 9999 in RFC 3339 form"
	}
	t := ts.AsTime()
	switch {
	case t.After(now.Add(maxClockSkew)):
		return "must not be in the future (up to " + strconv.Itoa(int(maxClockSkew/time.Minute)) + " minutes of clock difference is allowed)"
	case t.Before(earliest):
		return reasonBefore1900
	}
	return ""
}

// checkRange checks an integer count or score against its inclusive range.
func checkRange(v, lo, hi int32) string {
	if v < lo || v > hi {
		return "must be between " + strconv.Itoa(int(lo)) + " and " + strconv.Itoa(int(hi))
	}
	return ""
}

// dashGrade is the grade a DASH score implies: standard 1-9 ticks, medium
// 10-13, high 14 or more; 0 means no checklist was completed.
func dashGrade(score int32) intakev1.DomesticAbuseRisk {
	switch {
	case score >= 14:
		return intakev1.DomesticAbuseRisk_HIGH
	case score >= 10:
		return intakev1.DomesticAbuseRisk_MEDIUM
	case score >= 1:
		return intakev1.DomesticAbuseRisk_STANDARD
	}
	return intakev1.DomesticAbuseRisk_DOMESTIC_ABUSE_RISK_UNSPECIFIED
}

// checkDomesticAbuseRisk checks the grade is a defined value and, when a
// DASH score is given, not lower than the score implies: DASH guidance lets
// professional judgement raise the grade but never lower it, and a lowered
// grade would keep a high-risk case away from MARAC.
func checkDomesticAbuseRisk(grade intakev1.DomesticAbuseRisk, score int32) string {
	if reason := domesticAbuseRiskEnum.check(protoreflect.EnumNumber(grade)); reason != "" {
		return reason
	}
	if score < 1 || score > maxDashScore {
		return "" // no score, or an invalid one reported on dashScore
	}
	switch grade {
	case intakev1.DomesticAbuseRisk_STANDARD, intakev1.DomesticAbuseRisk_MEDIUM, intakev1.DomesticAbuseRisk_HIGH:
		// STANDARD < MEDIUM < HIGH numerically.
		if implied := dashGrade(score); grade < implied {
			return "must be at least " + implied.String() + " for the given dashScore: other factors can raise a DASH grade but never lower it"
		}
	}
	return ""
}

// enumRule checks an enum field. Unknown numbers cannot arrive through
// protojson (it rejects unknown names) but can through gRPC binary, where an
// undefined number is preserved, so they are checked against the descriptor.
type enumRule struct {
	values         protoreflect.EnumValueDescriptors
	required       bool
	requiredReason string
	unknownReason  string
}

func newEnumRule(desc protoreflect.EnumDescriptor, required bool, requiredHint string) enumRule {
	var names []string
	values := desc.Values()
	for i := 0; i < values.Len(); i++ {
		if v := values.Get(i); v.Number() != 0 {
			names = append(names, string(v.Name()))
		}
	}
	accepted := "accepted: " + strings.Join(names, ", ")
	return enumRule{
		values:         values,
		required:       required,
		requiredReason: reasonRequired + requiredHint + "; " + accepted,
		unknownReason:  "has an unknown value; " + accepted,
	}
}

var (
	sexEnum = newEnumRule(intakev1.Sex(0).Descriptor(), true,
		" (use SEX_NOT_KNOWN when the sex is not known)")
	relationshipEnum = newEnumRule(intakev1.Relationship(0).Descriptor(), true,
		" (use OTHER_RELATIONSHIP when none fits)")
	categoryEnum          = newEnumRule(intakev1.ConcernCategory(0).Descriptor(), true, "")
	domesticAbuseRiskEnum = newEnumRule(intakev1.DomesticAbuseRisk(0).Descriptor(), false, "")
	consentStatusEnum     = newEnumRule(intakev1.ConsentStatus(0).Descriptor(), true, "")
)

func (r enumRule) check(n protoreflect.EnumNumber) string {
	if n == 0 {
		if r.required {
			return r.requiredReason
		}
		return ""
	}
	if r.values.ByNumber(n) == nil {
		return r.unknownReason
	}
	return ""
}
