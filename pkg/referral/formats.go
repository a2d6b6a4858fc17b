package referral

import (
	"net/mail"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

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
	referrerNameText = textRule{max: maxPersonName, required: true}
	roleText         = textRule{max: maxRole}
	// Where a concern happened, as the referrer put it.
	locationText = textRule{max: maxAddressLine}
	// An anonymous member of the public gives no name.
	anonymousNameText = textRule{max: maxPersonName}
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

// checkFamilyGroup: optional; when given it groups the referrals of siblings reported
// together, so it follows the external reference's form.
func checkFamilyGroup(s string) string {
	if s == "" {
		return ""
	}
	return checkExternalReference(s)
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

// checkPhone accepts a telephone number in any form people write one: a UK number in
// national form (01443 000000, 07700 900000), or international with + or 00 and the country
// code (+44 (0)1443 000-000, 0044 1443 000000, +353 1 000 0000), with spaces, dots,
// parentheses and hyphens. NormalisePhone gives the E.164 form intake stores.
func checkPhone(s string) string {
	if s == "" {
		return ""
	}
	if tooLong(s, maxPhone) {
		return maxCharsReason(maxPhone)
	}
	_, reason := NormalisePhone(s)
	return reason
}

// NormalisePhone returns s in E.164 form (+441443000000), or why it is not a telephone
// number. A UK national number (a leading 0) is +44 with the 0 dropped; so is the "(0)"
// people write after +44. The reason never contains the number.
func NormalisePhone(s string) (e164, reason string) {
	var b strings.Builder
	plus := false
	for i, r := range strings.TrimSpace(s) {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == '+' && i == 0:
			plus = true
		case r == ' ' || r == '(' || r == ')' || r == '-' || r == '.':
		default:
			return "", "must contain only digits, spaces, dots, parentheses, hyphens and a leading +"
		}
	}
	d := b.String()
	switch {
	case plus:
	case strings.HasPrefix(d, "00"):
		d = d[2:]
	case strings.HasPrefix(d, "0"):
		// A UK national number: 0 and 9 or 10 more digits.
		if len(d) < 10 || len(d) > 11 {
			return "", "must be a UK number of 10 or 11 digits starting with 0, or + and the country code"
		}
		return "+44" + d[1:], ""
	default:
		return "", "must start with 0 (a UK number) or with + or 00 and the country code"
	}
	if strings.HasPrefix(d, "440") {
		d = "44" + d[3:] // +44 (0)1443 ...: the trunk 0 is not dialled from abroad
	}
	switch {
	case strings.HasPrefix(d, "0"):
		return "", "must have a country code after + or 00, which never starts with 0"
	case strings.HasPrefix(d, "44") && (len(d)-2 < 9 || len(d)-2 > 10):
		return "", "must have 9 or 10 digits after +44"
	case len(d) < 8 || len(d) > 15:
		return "", "must have 8 to 15 digits with the country code (E.164)"
	}
	return "+" + d, ""
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
