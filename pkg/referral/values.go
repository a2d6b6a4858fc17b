package referral

import (
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	intakev1 "github.com/mash-hub/mash/proto/mash/intake/v1"
)

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
func checkChildDateOfBirth(s string, unborn, ageUnknown, estimated bool, today time.Time) string {
	if unborn {
		if s != "" {
			return "must be empty for an unborn child; give dueDate instead"
		}
		return ""
	}
	if s == "" {
		if ageUnknown || estimated {
			return ""
		}
		return "is required unless unborn is true, or ageUnknown or estimatedAgeYears is given"
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

// checkAgeUnknown: ageUnknown is only for a born child whose date of birth
// is missing, and says the age cannot even be estimated.
func checkAgeUnknown(ch ageFields) string {
	switch {
	case !ch.ageUnknown:
		return ""
	case ch.unborn:
		return "must be false for an unborn child; give dueDate instead"
	case ch.dob != "":
		return "must be false when dateOfBirth is given"
	case ch.estimated:
		return "must be false when estimatedAgeYears is given: the age is then estimated, not unknown"
	}
	return ""
}

// checkEstimatedAge: an estimate in whole years, under 18, only when the
// date of birth is missing for a born child.
func checkEstimatedAge(ch ageFields, years int32) string {
	switch {
	case !ch.estimated:
		return ""
	case ch.unborn:
		return "must be absent for an unborn child; give dueDate instead"
	case ch.dob != "":
		return "must be absent when dateOfBirth is given"
	case years < 0 || years >= adultAge:
		return "must be from 0 to " + strconv.Itoa(adultAge-1) + " years: a referral about an adult belongs with adult safeguarding"
	}
	return ""
}

// ageFields are the child fields that together say how old the child is.
type ageFields struct {
	dob                           string
	unborn, ageUnknown, estimated bool
}
