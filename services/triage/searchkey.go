package triage

import (
	"regexp"
	"strings"
	"time"
	"unicode"

	"golang.org/x/text/unicode/norm"

	intakev1 "github.com/mash-hub/mash/proto/mash/intake/v1"
	triagev1 "github.com/mash-hub/mash/proto/mash/triage/v1"
	"github.com/mash-hub/mash/services/triage/store"
)

// foldName is the search form of a name: accents dropped (Siân, Dŵr and Llŷr fold to their
// base letters), lower case, anything but letters and digits a word break (Jones-Evans is
// two words; an apostrophe joins, so O'Brien is obrien), then per word the spellings that
// differ only by ear folded: doubled letters single (Llewellyn, Dafydd, Jonnson), ph as f
// (Phillips, Ffion) and y as i (Smyth, Llywelyn, Lynda). Stored keys and queries go through the same function, so they meet.
func foldName(s string) string {
	var words []string
	var w strings.Builder
	flush := func() {
		if w.Len() > 0 {
			words = append(words, foldWord(w.String()))
			w.Reset()
		}
	}
	for _, r := range norm.NFD.String(s) {
		switch {
		case unicode.Is(unicode.Mn, r):
			// a combining accent: dropped
		case r == '\'' || r == '’':
			// O'Brien, D’Arcy: one word
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			w.WriteRune(unicode.ToLower(r))
		default:
			flush()
		}
	}
	flush()
	return strings.Join(words, " ")
}

func foldWord(w string) string {
	w = strings.ReplaceAll(strings.ReplaceAll(w, "ph", "f"), "y", "i")
	var b strings.Builder
	var last rune
	for _, r := range w {
		if r != last {
			b.WriteRune(r)
		}
		last = r
	}
	return b.String()
}

// personKey is what two records of the same child share by name: given and family names
// folded, without spaces (so "Mary Ann" and "Maryann" meet).
func personKey(given, family string) string {
	g, f := strings.ReplaceAll(foldName(given), " ", ""), strings.ReplaceAll(foldName(family), " ", "")
	if g == "" || f == "" {
		return ""
	}
	return g + "|" + f
}

// normalisePostcode is a postcode upper case without spaces ("cf37 1aa" is CF371AA).
func normalisePostcode(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r < 128 && (unicode.IsLetter(r) || unicode.IsDigit(r)) {
			b.WriteRune(unicode.ToUpper(r))
		}
	}
	return b.String()
}

// displayPostcode puts the space back before the inward code.
func displayPostcode(p string) string {
	if len(p) < 5 {
		return p
	}
	return p[:len(p)-3] + " " + p[len(p)-3:]
}

// searchKeysOf derives the keys a referral can be found by.
func searchKeysOf(ref *intakev1.Referral) store.SearchKeys {
	sub := ref.GetSubmission()
	c := sub.GetChild()
	k := store.SearchKeys{
		ReferralID: ref.GetId(), Partnership: ref.GetPartnership(),
		NameKey:           foldName(c.GetGivenName() + " " + c.GetFamilyName()),
		PersonKey:         personKey(c.GetGivenName(), c.GetFamilyName()),
		NHSNumber:         nhsDigits(c.GetNhsNumber()),
		Postcode:          normalisePostcode(c.GetAddress().GetPostcode()),
		Reference:         strings.ToUpper(strings.TrimSpace(ref.GetReference())),
		ExternalReference: strings.ToUpper(strings.TrimSpace(firstNonEmpty(ref.GetExternalReference(), sub.GetExternalReference()))),
	}
	for _, m := range sub.GetHousehold() {
		if n := foldName(m.GetGivenName() + " " + m.GetFamilyName()); n != "" {
			k.Household = append(k.Household, n)
		}
	}
	if ref.GetReceivedAt() != nil {
		at := ref.GetReceivedAt().AsTime().UTC()
		k.ReceivedAt = &at
	}
	if dob, err := time.Parse(time.DateOnly, c.GetDateOfBirth()); err == nil && !c.GetUnborn() {
		k.DateOfBirth = &dob
	}
	return k
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

// nhsDigits is an NHS number's ten digits ("943 476 5919" too), or "".
func nhsDigits(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == ' ' || r == '-':
		default:
			return ""
		}
	}
	if b.Len() != 10 {
		return ""
	}
	return b.String()
}

// The parts of a query, each recognised by its shape and taken out of the text before the
// rest is read as a name.
var (
	reMASHRef  = regexp.MustCompile(`(?i)\bMASH-[A-Z0-9][A-Z0-9-]*\b`)
	reNHS      = regexp.MustCompile(`\b\d{3}[ -]?\d{3}[ -]?\d{4}\b`)
	reISODate  = regexp.MustCompile(`\b(\d{4})-(\d{1,2})-(\d{1,2})\b`)
	reUKDate   = regexp.MustCompile(`\b(\d{1,2})[/.](\d{1,2})[/.](\d{4})\b`)
	rePostcode = regexp.MustCompile(`(?i)\b([A-Z]{1,2}\d[A-Z\d]?) ?(\d[A-Z]{2})\b`)
)

// parseQuery reads a search into its keys. Every key found must match. A left-over word
// with a digit in it is an external reference (the referrer's own, e.g. SWP-2026-11-000123);
// the other words are a name. Problems name the field.
func parseQuery(q string) (store.SearchQuery, string) {
	var sq store.SearchQuery
	rest := q
	take := func(re *regexp.Regexp, fn func(m []string) string) string {
		for _, m := range re.FindAllStringSubmatch(rest, -1) {
			if p := fn(m); p != "" {
				return p
			}
		}
		rest = re.ReplaceAllString(rest, " ")
		return ""
	}
	if p := take(reMASHRef, func(m []string) string {
		if sq.Reference != "" {
			return "names two MASH references: search for one at a time"
		}
		sq.Reference = strings.ToUpper(m[0])
		return ""
	}); p != "" {
		return sq, p
	}
	dateOf := func(y, mo, d string) string {
		t, err := time.Parse("2006-1-2", y+"-"+mo+"-"+d)
		if err != nil {
			return "has a date that is not a calendar date (write 2016-03-01 or 01/03/2016)"
		}
		if sq.DateOfBirth != nil && !sq.DateOfBirth.Equal(t) {
			return "names two dates of birth: search for one at a time"
		}
		sq.DateOfBirth = &t
		return ""
	}
	if p := take(reISODate, func(m []string) string { return dateOf(m[1], m[2], m[3]) }); p != "" {
		return sq, p
	}
	if p := take(reUKDate, func(m []string) string { return dateOf(m[3], m[2], m[1]) }); p != "" {
		return sq, p
	}
	if p := take(reNHS, func(m []string) string {
		sq.NHSNumber = nhsDigits(m[0])
		return ""
	}); p != "" {
		return sq, p
	}
	if p := take(rePostcode, func(m []string) string {
		sq.Postcode = normalisePostcode(m[0])
		return ""
	}); p != "" {
		return sq, p
	}
	var nameWords []string
	for _, w := range strings.Fields(rest) {
		if strings.ContainsAny(w, "0123456789") {
			if sq.ExternalReference != "" {
				return sq, "has two references that are not names: search for one at a time"
			}
			sq.ExternalReference = strings.ToUpper(w)
			continue
		}
		nameWords = append(nameWords, w)
	}
	if name := foldName(strings.Join(nameWords, " ")); name != "" {
		sq.Name = strings.Fields(name)
	}
	if len(sq.Name) == 0 && sq.DateOfBirth == nil && sq.NHSNumber == "" && sq.Postcode == "" && sq.Reference == "" && sq.ExternalReference == "" {
		return sq, "is required: a name, a date of birth, an NHS number, a postcode or a reference"
	}
	return sq, ""
}

// searched lists the keys a query holds, as match bases.
func searched(sq store.SearchQuery) []triagev1.MatchBasis {
	var out []triagev1.MatchBasis
	if len(sq.Name) > 0 {
		out = append(out, triagev1.MatchBasis_NAME)
	}
	if sq.DateOfBirth != nil {
		out = append(out, triagev1.MatchBasis_DATE_OF_BIRTH)
	}
	if sq.NHSNumber != "" {
		out = append(out, triagev1.MatchBasis_NHS_NUMBER)
	}
	if sq.Postcode != "" {
		out = append(out, triagev1.MatchBasis_POSTCODE)
	}
	if sq.Reference != "" {
		out = append(out, triagev1.MatchBasis_MASH_REFERENCE)
	}
	if sq.ExternalReference != "" {
		out = append(out, triagev1.MatchBasis_EXTERNAL_REFERENCE)
	}
	return out
}

// SearchKeysFor derives the search keys of a referral from its parts, as the consumer does
// from a received event: for loaders that write the read model directly (benchmarks).
func SearchKeysFor(referralID, partnership, given, family, dob, nhs, postcode, reference, externalReference string) store.SearchKeys {
	return searchKeysOf(&intakev1.Referral{Id: referralID, Partnership: partnership, Reference: reference,
		ExternalReference: externalReference, Submission: &intakev1.ReferralSubmission{Child: &intakev1.Child{
			GivenName: given, FamilyName: family, DateOfBirth: dob, NhsNumber: nhs, Address: &intakev1.Address{Postcode: postcode}}}})
}
