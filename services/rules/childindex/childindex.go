// Package childindex decides which referrals are about the same child, so the rules see a
// child's history. The policy is deliberately conservative: a wrong merge would show one
// child's history in another child's decision (and to the wrong practitioners), which is
// worse than a missed link, so referrals are linked only on strong evidence:
//
//   - the same valid NHS number (basis "nhs-number"); or
//   - with no NHS number on one side, the same normalised given name, family name, date of
//     birth and postcode, all four present (basis "name-dob-postcode"), and never when the
//     two records carry different NHS numbers.
//
// Anything weaker (a missing date of birth, an unborn child, no postcode) starts a new child
// record, with the basis saying why. The basis is stored with every link.
package childindex

import (
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"

	intakev1 "github.com/mash-hub/mash/proto/mash/intake/v1"
)

// Basis says how a referral was linked to a child record.
type Basis string

// The match bases.
const (
	// MatchNHSNumber: an existing child with the same NHS number.
	MatchNHSNumber Basis = "nhs-number"
	// MatchDemographics: an existing child with the same normalised names, date of birth and
	// postcode, and no conflicting NHS number.
	MatchDemographics Basis = "name-dob-postcode"
	// NewChild: no existing child matched on strong evidence.
	NewChild Basis = "new"
	// NewChildWeakEvidence: identifiers too weak to link (e.g. no date of birth, no postcode,
	// an unborn child), so a new record, never a guess.
	NewChildWeakEvidence Basis = "new-insufficient-identifiers"
	// NewChildAmbiguous: several existing children match the demographics; linking to any
	// one would be a guess.
	NewChildAmbiguous Basis = "new-ambiguous"
)

// Key holds the identifiers the index matches on, already normalised.
type Key struct {
	NHSNumber string // ten digits, or "" when absent
	// Demographic is "given|family|yyyy-mm-dd|POSTCODE", or "" when any part is missing.
	Demographic string
}

// KeyOf derives the matching key of a referral's child.
func KeyOf(c *intakev1.Child) Key {
	var k Key
	if c == nil {
		return k
	}
	k.NHSNumber = digits(c.GetNhsNumber())
	if len(k.NHSNumber) != 10 {
		k.NHSNumber = ""
	}
	if c.GetUnborn() {
		return k
	}
	given, family := NormaliseName(c.GetGivenName()), NormaliseName(c.GetFamilyName())
	dob := strings.TrimSpace(c.GetDateOfBirth())
	postcode := NormalisePostcode(c.GetAddress().GetPostcode())
	if given != "" && family != "" && dob != "" && postcode != "" {
		k.Demographic = given + "|" + family + "|" + dob + "|" + postcode
	}
	return k
}

// Strong reports whether the key can link to an existing child at all.
func (k Key) Strong() bool { return k.NHSNumber != "" || k.Demographic != "" }

// NormaliseName folds case, accents and punctuation, so "Siân O'Brien-Jones" and
// "sian obrien jones" compare equal. Welsh circumflexes (ŵ, ŷ) fold to their base letter.
func NormaliseName(s string) string {
	var b strings.Builder
	for _, r := range norm.NFD.String(s) {
		switch {
		case unicode.Is(unicode.Mn, r):
			// combining marks (accents) are dropped
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(unicode.ToLower(r))
		}
	}
	return b.String()
}

// NormalisePostcode upper-cases and removes spaces.
func NormalisePostcode(s string) string {
	var b strings.Builder
	for _, r := range s {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			b.WriteRune(unicode.ToUpper(r))
		}
	}
	return b.String()
}

func digits(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else if r != ' ' {
			return ""
		}
	}
	return b.String()
}

// Candidate is an existing child record found by one of the key's parts.
type Candidate struct {
	ChildID   string
	NHSNumber string // "" when the record has none
}

// Decide applies the policy: byNHS are children with the key's NHS number (at most one, as
// NHS numbers are unique in the index), byDemographic those with its demographic key. It
// returns the child to link to ("" for a new child) and the basis.
func Decide(k Key, byNHS, byDemographic []Candidate) (string, Basis) {
	if k.NHSNumber != "" && len(byNHS) > 0 {
		return byNHS[0].ChildID, MatchNHSNumber
	}
	if !k.Strong() {
		return "", NewChildWeakEvidence
	}
	if k.Demographic == "" {
		return "", NewChild
	}
	var compatible []Candidate
	for _, c := range byDemographic {
		// Same names, birthday and postcode but a different NHS number: two children.
		if c.NHSNumber != "" && k.NHSNumber != "" && c.NHSNumber != k.NHSNumber {
			continue
		}
		compatible = append(compatible, c)
	}
	switch len(compatible) {
	case 0:
		return "", NewChild
	case 1:
		return compatible[0].ChildID, MatchDemographics
	default:
		return "", NewChildAmbiguous
	}
}
