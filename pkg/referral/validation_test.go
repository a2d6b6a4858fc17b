package referral

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	intakev1 "github.com/mash-hub/mash/proto/mash/intake/v1"
)

// examplePath is the published example, relative to this package's directory
// (the test's working directory): the shared folder sits beside the repo.
var examplePath = filepath.Join("..", "..", "..", "shared", "api", "referral.example.json")

// testNow is a few days after the example's incident.
var testNow = time.Date(2026, time.November, 26, 12, 0, 0, 0, time.UTC)

func readExample(tb testing.TB) []byte {
	tb.Helper()
	body, err := os.ReadFile(examplePath)
	if err != nil {
		tb.Fatalf("reading the published example (expected at %s, i.e. shared/ beside the repo): %v", examplePath, err)
	}
	return body
}

// example returns a fresh decoded copy of the published example for a test
// case to mutate.
func example(tb testing.TB) *intakev1.ReferralSubmission {
	tb.Helper()
	sub, vs := Decode(readExample(tb))
	if len(vs) != 0 {
		tb.Fatalf("Decode(example) = %v", vs)
	}
	return sub
}

func fields(vs []Violation) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = v.Field
	}
	return out
}

func TestExampleIsValid(t *testing.T) {
	t.Parallel()
	sub, vs := Decode(readExample(t))
	if vs != nil {
		t.Fatalf("Decode(example) violations: %v", vs)
	}
	if vs := Validate(sub, testNow); vs != nil {
		t.Fatalf("Validate(example) = %v, want nil", vs)
	}
}

func ts(t time.Time) *timestamppb.Timestamp { return timestamppb.New(t) }

// TestValidateRules has at least one failing case per rule. Each case mutates
// the valid example so exactly one violation is expected.
func TestValidateRules(t *testing.T) {
	t.Parallel()
	long := func(n int) string { return strings.Repeat("a", n) }
	validMember := func() *intakev1.HouseholdMember {
		return &intakev1.HouseholdMember{Relationship: intakev1.Relationship_SIBLING}
	}
	validConcern := func() *intakev1.Concern {
		return &intakev1.Concern{Category: intakev1.ConcernCategory_NEGLECT, Summary: "s", ObservedAt: ts(testNow.Add(-time.Hour))}
	}
	unborn := func(s *intakev1.ReferralSubmission) {
		s.Child.Unborn = true
		s.Child.DateOfBirth = ""
		s.Child.GivenName = ""
		s.Child.DueDate = "2027-03-01"
	}

	tests := []struct {
		name   string
		mutate func(*intakev1.ReferralSubmission)
		field  string
	}{
		// externalReference
		{"externalReference missing", func(s *intakev1.ReferralSubmission) { s.ExternalReference = "" }, "externalReference"},
		{"externalReference too long", func(s *intakev1.ReferralSubmission) { s.ExternalReference = long(65) }, "externalReference"},
		{"externalReference space", func(s *intakev1.ReferralSubmission) { s.ExternalReference = "SWP 2026" }, "externalReference"},
		{"externalReference non-ASCII", func(s *intakev1.ReferralSubmission) { s.ExternalReference = "réf-1" }, "externalReference"},

		// partnership
		{"partnership missing", func(s *intakev1.ReferralSubmission) { s.Partnership = "" }, "partnership"},
		{"partnership upper case", func(s *intakev1.ReferralSubmission) { s.Partnership = "Rhondda-Cynon-Taf" }, "partnership"},
		{"partnership double hyphen", func(s *intakev1.ReferralSubmission) { s.Partnership = "rhondda--cynon" }, "partnership"},
		{"partnership leading hyphen", func(s *intakev1.ReferralSubmission) { s.Partnership = "-rct" }, "partnership"},
		{"partnership too long", func(s *intakev1.ReferralSubmission) { s.Partnership = long(65) }, "partnership"},

		// referrer
		{"referrer missing", func(s *intakev1.ReferralSubmission) { s.Referrer = nil }, "referrer"},
		{"referrer name missing", func(s *intakev1.ReferralSubmission) { s.Referrer.Name = "" }, "referrer.name"},
		{"referrer name blank", func(s *intakev1.ReferralSubmission) { s.Referrer.Name = "  " }, "referrer.name"},
		{"referrer name too long", func(s *intakev1.ReferralSubmission) { s.Referrer.Name = long(201) }, "referrer.name"},
		{"referrer name control", func(s *intakev1.ReferralSubmission) { s.Referrer.Name = "PC\aEvans" }, "referrer.name"},
		{"referrer role too long", func(s *intakev1.ReferralSubmission) { s.Referrer.Role = long(201) }, "referrer.role"},
		{"referrer phone letters", func(s *intakev1.ReferralSubmission) { s.Referrer.Phone = "01443 ABC000" }, "referrer.phone"},
		{"referrer phone too few digits", func(s *intakev1.ReferralSubmission) { s.Referrer.Phone = "01443 000" }, "referrer.phone"},
		{"referrer phone too many digits", func(s *intakev1.ReferralSubmission) { s.Referrer.Phone = "0144300000000000" }, "referrer.phone"},
		{"referrer phone plus inside", func(s *intakev1.ReferralSubmission) { s.Referrer.Phone = "01443+000000" }, "referrer.phone"},
		{"referrer phone without 0 or country code", func(s *intakev1.ReferralSubmission) { s.Referrer.Phone = "1443 000000" }, "referrer.phone"},
		{"anonymous referrer still gives a valid phone", func(s *intakev1.ReferralSubmission) {
			s.Referrer.Anonymous, s.Referrer.Phone = true, "12"
		}, "referrer.phone"},
		{"family group with spaces", func(s *intakev1.ReferralSubmission) { s.FamilyGroup = "a family" }, "familyGroup"},
		{"concern location too long", func(s *intakev1.ReferralSubmission) { s.Concerns[0].Location = strings.Repeat("x", 201) }, "concerns[0].location"},
		{"referrer phone too long", func(s *intakev1.ReferralSubmission) { s.Referrer.Phone = "01443" + strings.Repeat(" ", 30) + "000000" }, "referrer.phone"},
		{"referrer email invalid", func(s *intakev1.ReferralSubmission) { s.Referrer.Email = "not-an-email" }, "referrer.email"},
		{"referrer email display name", func(s *intakev1.ReferralSubmission) { s.Referrer.Email = "Rhian <rhian@police.example>" }, "referrer.email"},
		{"referrer email padded", func(s *intakev1.ReferralSubmission) { s.Referrer.Email = " rhian@police.example" }, "referrer.email"},
		{"referrer email no dot in domain", func(s *intakev1.ReferralSubmission) { s.Referrer.Email = "rhian@localhost" }, "referrer.email"},
		{"referrer email too long", func(s *intakev1.ReferralSubmission) { s.Referrer.Email = long(64) + "@" + long(190) + ".example" }, "referrer.email"},
		{"referrer no contact", func(s *intakev1.ReferralSubmission) { s.Referrer.Phone, s.Referrer.Email = "", "" }, "referrer.phone"},

		// child
		{"child missing", func(s *intakev1.ReferralSubmission) { s.Child = nil }, "child"},
		{"dateOfBirth missing without ageUnknown or estimate", func(s *intakev1.ReferralSubmission) { s.Child.DateOfBirth = "" }, "child.dateOfBirth"},
		{"ageUnknown with dateOfBirth", func(s *intakev1.ReferralSubmission) { s.Child.AgeUnknown = true }, "child.ageUnknown"},
		{"ageUnknown with estimate", func(s *intakev1.ReferralSubmission) {
			s.Child.DateOfBirth, s.Child.AgeUnknown, s.Child.EstimatedAgeYears = "", true, proto.Int32(9)
		}, "child.ageUnknown"},
		{"ageUnknown for unborn", func(s *intakev1.ReferralSubmission) { unborn(s); s.Child.AgeUnknown = true }, "child.ageUnknown"},
		{"estimatedAgeYears with dateOfBirth", func(s *intakev1.ReferralSubmission) { s.Child.EstimatedAgeYears = proto.Int32(9) }, "child.estimatedAgeYears"},
		{"estimatedAgeYears adult", func(s *intakev1.ReferralSubmission) {
			s.Child.DateOfBirth, s.Child.EstimatedAgeYears = "", proto.Int32(18)
		}, "child.estimatedAgeYears"},
		{"estimatedAgeYears negative", func(s *intakev1.ReferralSubmission) {
			s.Child.DateOfBirth, s.Child.EstimatedAgeYears = "", proto.Int32(-1)
		}, "child.estimatedAgeYears"},
		{"estimatedAgeYears for unborn", func(s *intakev1.ReferralSubmission) { unborn(s); s.Child.EstimatedAgeYears = proto.Int32(0) }, "child.estimatedAgeYears"},
		{"child givenName missing", func(s *intakev1.ReferralSubmission) { s.Child.GivenName = "" }, "child.givenName"},
		{"child givenName too long", func(s *intakev1.ReferralSubmission) { s.Child.GivenName = long(101) }, "child.givenName"},
		{"child givenName control", func(s *intakev1.ReferralSubmission) { s.Child.GivenName = "Al\nex" }, "child.givenName"},
		{"child givenName C1 control", func(s *intakev1.ReferralSubmission) { s.Child.GivenName = "Al\u0085ex" }, "child.givenName"},
		{"child familyName missing", func(s *intakev1.ReferralSubmission) { s.Child.FamilyName = "" }, "child.familyName"},
		{"child familyName invalid UTF-8", func(s *intakev1.ReferralSubmission) { s.Child.FamilyName = "Mor\xffgan" }, "child.familyName"},
		{"child familyName too long in runes", func(s *intakev1.ReferralSubmission) { s.Child.FamilyName = strings.Repeat("ŵ", 101) }, "child.familyName"},
		{"child dateOfBirth missing", func(s *intakev1.ReferralSubmission) { s.Child.DateOfBirth = "" }, "child.dateOfBirth"},
		{"child dateOfBirth impossible", func(s *intakev1.ReferralSubmission) { s.Child.DateOfBirth = "2019-02-30" }, "child.dateOfBirth"},
		{"child dateOfBirth not leap year", func(s *intakev1.ReferralSubmission) { s.Child.DateOfBirth = "2019-02-29" }, "child.dateOfBirth"},
		{"child dateOfBirth UK format", func(s *intakev1.ReferralSubmission) { s.Child.DateOfBirth = "02/04/2019" }, "child.dateOfBirth"},
		{"child dateOfBirth with time", func(s *intakev1.ReferralSubmission) { s.Child.DateOfBirth = "2019-04-02T00:00:00Z" }, "child.dateOfBirth"},
		{"child dateOfBirth short fields", func(s *intakev1.ReferralSubmission) { s.Child.DateOfBirth = "2019-4-2" }, "child.dateOfBirth"},
		{"child dateOfBirth signed", func(s *intakev1.ReferralSubmission) { s.Child.DateOfBirth = "+019-04-02" }, "child.dateOfBirth"},
		{"child dateOfBirth invalid UTF-8", func(s *intakev1.ReferralSubmission) { s.Child.DateOfBirth = "2019-04-0\xff" }, "child.dateOfBirth"},
		{"child dateOfBirth future", func(s *intakev1.ReferralSubmission) { s.Child.DateOfBirth = "2026-11-27" }, "child.dateOfBirth"},
		{"child dateOfBirth before 1900", func(s *intakev1.ReferralSubmission) { s.Child.DateOfBirth = "1899-12-31" }, "child.dateOfBirth"},
		{"child is 18 today", func(s *intakev1.ReferralSubmission) { s.Child.DateOfBirth = "2008-11-26" }, "child.dateOfBirth"},
		{"child is an adult", func(s *intakev1.ReferralSubmission) { s.Child.DateOfBirth = "1990-01-01" }, "child.dateOfBirth"},
		{"child nhsNumber bad check digit", func(s *intakev1.ReferralSubmission) { s.Child.NhsNumber = "9434765918" }, "child.nhsNumber"},
		{"child nhsNumber nine digits", func(s *intakev1.ReferralSubmission) { s.Child.NhsNumber = "943476591" }, "child.nhsNumber"},
		{"child nhsNumber hyphens", func(s *intakev1.ReferralSubmission) { s.Child.NhsNumber = "943-476-5919" }, "child.nhsNumber"},
		{"child sex unspecified", func(s *intakev1.ReferralSubmission) { s.Child.Sex = intakev1.Sex_SEX_UNSPECIFIED }, "child.sex"},
		{"child sex undefined number", func(s *intakev1.ReferralSubmission) { s.Child.Sex = 99 }, "child.sex"},
		{"child sex negative number", func(s *intakev1.ReferralSubmission) { s.Child.Sex = -1 }, "child.sex"},
		{"child address line1 missing", func(s *intakev1.ReferralSubmission) { s.Child.Address.Line1 = "" }, "child.address.line1"},
		{"child address line1 too long", func(s *intakev1.ReferralSubmission) { s.Child.Address.Line1 = long(201) }, "child.address.line1"},
		{"child address line2 too long", func(s *intakev1.ReferralSubmission) { s.Child.Address.Line2 = long(201) }, "child.address.line2"},
		{"child address town too long", func(s *intakev1.ReferralSubmission) { s.Child.Address.Town = long(101) }, "child.address.town"},
		{"child address county too long", func(s *intakev1.ReferralSubmission) { s.Child.Address.County = long(101) }, "child.address.county"},
		{"child address postcode missing", func(s *intakev1.ReferralSubmission) { s.Child.Address.Postcode = "" }, "child.address.postcode"},
		{"child address postcode invalid", func(s *intakev1.ReferralSubmission) { s.Child.Address.Postcode = "12345" }, "child.address.postcode"},
		{"child school too long", func(s *intakev1.ReferralSubmission) { s.Child.School = long(201) }, "child.school"},
		{"child preferredLanguage upper case", func(s *intakev1.ReferralSubmission) { s.Child.PreferredLanguage = "CY" }, "child.preferredLanguage"},
		{"child preferredLanguage three letters", func(s *intakev1.ReferralSubmission) { s.Child.PreferredLanguage = "cym" }, "child.preferredLanguage"},
		{"child preferredLanguage name", func(s *intakev1.ReferralSubmission) { s.Child.PreferredLanguage = "Welsh" }, "child.preferredLanguage"},
		{"child dueDate while born", func(s *intakev1.ReferralSubmission) { s.Child.DueDate = "2027-03-01" }, "child.dueDate"},
		{"child ethnicity too long", func(s *intakev1.ReferralSubmission) { s.Child.Ethnicity = long(101) }, "child.ethnicity"},

		// unborn child
		{"unborn with dateOfBirth", func(s *intakev1.ReferralSubmission) { unborn(s); s.Child.DateOfBirth = "2026-11-01" }, "child.dateOfBirth"},
		{"unborn without dueDate", func(s *intakev1.ReferralSubmission) { unborn(s); s.Child.DueDate = "" }, "child.dueDate"},
		{"unborn dueDate invalid", func(s *intakev1.ReferralSubmission) { unborn(s); s.Child.DueDate = "2027-02-30" }, "child.dueDate"},
		{"unborn dueDate too far ahead", func(s *intakev1.ReferralSubmission) { unborn(s); s.Child.DueDate = "2027-09-27" }, "child.dueDate"},
		{"unborn dueDate too long ago", func(s *intakev1.ReferralSubmission) { unborn(s); s.Child.DueDate = "2026-10-25" }, "child.dueDate"},
		{"unborn still needs familyName", func(s *intakev1.ReferralSubmission) { unborn(s); s.Child.FamilyName = "" }, "child.familyName"},

		// household
		{"household too many", func(s *intakev1.ReferralSubmission) {
			s.Household = nil
			for range 31 {
				s.Household = append(s.Household, validMember())
			}
		}, "household"},
		{"household relationship missing", func(s *intakev1.ReferralSubmission) {
			s.Household[1].Relationship = intakev1.Relationship_RELATIONSHIP_UNSPECIFIED
		}, "household[1].relationship"},
		{"household relationship undefined", func(s *intakev1.ReferralSubmission) { s.Household[0].Relationship = 999 }, "household[0].relationship"},
		{"household givenName too long", func(s *intakev1.ReferralSubmission) { s.Household[0].GivenName = long(101) }, "household[0].givenName"},
		{"household familyName control", func(s *intakev1.ReferralSubmission) { s.Household[1].FamilyName = "Pr\x00ice" }, "household[1].familyName"},
		{"household dateOfBirth invalid", func(s *intakev1.ReferralSubmission) { s.Household[0].DateOfBirth = "1994-13-01" }, "household[0].dateOfBirth"},
		{"household dateOfBirth future", func(s *intakev1.ReferralSubmission) { s.Household[0].DateOfBirth = "2027-01-01" }, "household[0].dateOfBirth"},
		{"household dateOfBirth before 1900", func(s *intakev1.ReferralSubmission) { s.Household[0].DateOfBirth = "1850-01-01" }, "household[0].dateOfBirth"},

		// concerns
		{"concerns none", func(s *intakev1.ReferralSubmission) { s.Concerns = nil }, "concerns"},
		{"concerns too many", func(s *intakev1.ReferralSubmission) {
			s.Concerns = nil
			for range 31 {
				s.Concerns = append(s.Concerns, validConcern())
			}
		}, "concerns"},
		{"concern category missing", func(s *intakev1.ReferralSubmission) {
			s.Concerns[1].Category = intakev1.ConcernCategory_CONCERN_CATEGORY_UNSPECIFIED
		}, "concerns[1].category"},
		{"concern category undefined", func(s *intakev1.ReferralSubmission) { s.Concerns[0].Category = 25 }, "concerns[0].category"},
		{"concern summary missing", func(s *intakev1.ReferralSubmission) { s.Concerns[0].Summary = "" }, "concerns[0].summary"},
		{"concern summary too long", func(s *intakev1.ReferralSubmission) { s.Concerns[0].Summary = long(4001) }, "concerns[0].summary"},
		{"concern summary NUL", func(s *intakev1.ReferralSubmission) { s.Concerns[0].Summary = "a\x00b" }, "concerns[0].summary"},
		{"concern observedAt missing", func(s *intakev1.ReferralSubmission) { s.Concerns[1].ObservedAt = nil }, "concerns[1].observedAt"},
		{"concern observedAt invalid", func(s *intakev1.ReferralSubmission) {
			s.Concerns[1].ObservedAt = &timestamppb.Timestamp{Seconds: 1, Nanos: -1}
		}, "concerns[1].observedAt"},
		{"concern observedAt out of range", func(s *intakev1.ReferralSubmission) {
			s.Concerns[0].ObservedAt = &timestamppb.Timestamp{Seconds: 1 << 62}
		}, "concerns[0].observedAt"},
		{"concern observedAt future", func(s *intakev1.ReferralSubmission) {
			s.Concerns[1].ObservedAt = ts(testNow.Add(6 * time.Minute))
		}, "concerns[1].observedAt"},
		{"concern observedAt before 1900", func(s *intakev1.ReferralSubmission) {
			s.Concerns[0].ObservedAt = ts(time.Date(1899, 12, 31, 23, 59, 59, 0, time.UTC))
		}, "concerns[0].observedAt"},

		// riskIndicators
		{"domesticAbuseRisk undefined", func(s *intakev1.ReferralSubmission) { s.RiskIndicators.DomesticAbuseRisk = 9 }, "riskIndicators.domesticAbuseRisk"},
		{"policeIncidents negative", func(s *intakev1.ReferralSubmission) { s.RiskIndicators.PoliceIncidentsLast_12Months = -1 }, "riskIndicators.policeIncidentsLast12Months"},
		{"policeIncidents too many", func(s *intakev1.ReferralSubmission) { s.RiskIndicators.PoliceIncidentsLast_12Months = 367 }, "riskIndicators.policeIncidentsLast12Months"},
		{"missingEpisodes negative", func(s *intakev1.ReferralSubmission) { s.RiskIndicators.MissingEpisodesLast_12Months = -1 }, "riskIndicators.missingEpisodesLast12Months"},
		{"missingEpisodes too many", func(s *intakev1.ReferralSubmission) { s.RiskIndicators.MissingEpisodesLast_12Months = 367 }, "riskIndicators.missingEpisodesLast12Months"},
		{"dashScore negative", func(s *intakev1.ReferralSubmission) { s.RiskIndicators.DashScore = -1 }, "riskIndicators.dashScore"},
		{"dashScore too high", func(s *intakev1.ReferralSubmission) { s.RiskIndicators.DashScore = 28 }, "riskIndicators.dashScore"},
		{"grade lower than high score", func(s *intakev1.ReferralSubmission) {
			s.RiskIndicators.DashScore = 14
			s.RiskIndicators.DomesticAbuseRisk = intakev1.DomesticAbuseRisk_MEDIUM
		}, "riskIndicators.domesticAbuseRisk"},
		{"grade lower than medium score", func(s *intakev1.ReferralSubmission) {
			s.RiskIndicators.DashScore = 10
			s.RiskIndicators.DomesticAbuseRisk = intakev1.DomesticAbuseRisk_STANDARD
		}, "riskIndicators.domesticAbuseRisk"},

		// consent
		{"consent missing", func(s *intakev1.ReferralSubmission) { s.Consent = nil }, "consent"},
		{"consent status missing", func(s *intakev1.ReferralSubmission) {
			s.Consent = &intakev1.Consent{}
		}, "consent.status"},
		{"consent status undefined", func(s *intakev1.ReferralSubmission) { s.Consent.Status = 7 }, "consent.status"},
		{"consent not sought without reason", func(s *intakev1.ReferralSubmission) { s.Consent.Reason = "" }, "consent.reason"},
		{"consent refused without reason", func(s *intakev1.ReferralSubmission) {
			s.Consent.Status = intakev1.ConsentStatus_REFUSED
			s.Consent.Reason = " \n"
		}, "consent.reason"},
		{"consent reason too long", func(s *intakev1.ReferralSubmission) { s.Consent.Reason = long(2001) }, "consent.reason"},
		{"consent authorisedBy too long", func(s *intakev1.ReferralSubmission) { s.Consent.AuthorisedBy = long(201) }, "consent.authorisedBy"},

		// narrative
		{"narrative too long in runes", func(s *intakev1.ReferralSubmission) { s.Narrative = strings.Repeat("é", 20001) }, "narrative"},
		{"narrative invalid UTF-8", func(s *intakev1.ReferralSubmission) { s.Narrative = "ok \xc3\x28" }, "narrative"},
		{"narrative escape character", func(s *intakev1.ReferralSubmission) { s.Narrative = "ok \x1b[31m" }, "narrative"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sub := example(t)
			tc.mutate(sub)
			vs := Validate(sub, testNow)
			if len(vs) != 1 || vs[0].Field != tc.field {
				t.Fatalf("Validate() = %v, want one violation on %q", vs, tc.field)
			}
			if strings.TrimSpace(vs[0].Reason) == "" {
				t.Fatalf("violation on %q has an empty reason", tc.field)
			}
		})
	}
}

// TestValidateAccepts covers values at the edges of each rule that must pass.
func TestValidateAccepts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		mutate func(*intakev1.ReferralSubmission)
		now    time.Time
	}{
		{"nhsNumber with spaces", func(s *intakev1.ReferralSubmission) { s.Child.NhsNumber = "943 476 5919" }, testNow},
		{"no nhsNumber", func(s *intakev1.ReferralSubmission) { s.Child.NhsNumber = "" }, testNow},
		{"phone only", func(s *intakev1.ReferralSubmission) { s.Referrer.Email = "" }, testNow},
		{"email only", func(s *intakev1.ReferralSubmission) { s.Referrer.Phone = "" }, testNow},
		{"international phone", func(s *intakev1.ReferralSubmission) { s.Referrer.Phone = "+44 (0)1443 000-000" }, testNow},
		{"Irish phone", func(s *intakev1.ReferralSubmission) { s.Referrer.Phone = "00353 1 000 0000" }, testNow},
		{"anonymous member of the public", func(s *intakev1.ReferralSubmission) {
			s.Referrer = &intakev1.Referrer{Anonymous: true, Role: "neighbour"}
		}, testNow},
		{"family group", func(s *intakev1.ReferralSubmission) { s.FamilyGroup = "CONTACT-20261126-0a1b2c3d4e5f" }, testNow},
		{"concern location", func(s *intakev1.ReferralSubmission) { s.Concerns[0].Location = "Outside Ysgol y Ddraig" }, testNow},
		{"seventeen years 364 days", func(s *intakev1.ReferralSubmission) { s.Child.DateOfBirth = "2008-11-27" }, testNow},
		{"born today", func(s *intakev1.ReferralSubmission) { s.Child.DateOfBirth = "2026-11-26" }, testNow},
		{"born today in London during BST", func(s *intakev1.ReferralSubmission) {
			s.Child.DateOfBirth = "2026-07-01"
			s.Concerns[0].ObservedAt = ts(time.Date(2026, 6, 30, 23, 0, 0, 0, time.UTC))
			s.Concerns[1].ObservedAt = s.Concerns[0].ObservedAt
		}, time.Date(2026, 6, 30, 23, 30, 0, 0, time.UTC)}, // 00:30 BST on 1 July
		{"leap day birthday not yet 18", func(s *intakev1.ReferralSubmission) {
			s.Child.DateOfBirth = "2008-02-29"
			s.Concerns[0].ObservedAt = ts(time.Date(2026, 2, 27, 12, 0, 0, 0, time.UTC))
			s.Concerns[1].ObservedAt = s.Concerns[0].ObservedAt
		}, time.Date(2026, 2, 28, 12, 0, 0, 0, time.UTC)},
		{"unborn", func(s *intakev1.ReferralSubmission) {
			s.Child.Unborn, s.Child.DateOfBirth, s.Child.GivenName, s.Child.DueDate = true, "", "", "2027-09-26"
		}, testNow},
		{"unborn overdue by a month", func(s *intakev1.ReferralSubmission) {
			s.Child.Unborn, s.Child.DateOfBirth, s.Child.DueDate = true, "", "2026-10-26"
		}, testNow},
		{"no address", func(s *intakev1.ReferralSubmission) { s.Child.Address = nil }, testNow},
		{"age unknown without dateOfBirth", func(s *intakev1.ReferralSubmission) { s.Child.DateOfBirth, s.Child.AgeUnknown = "", true }, testNow},
		{"estimated age without dateOfBirth", func(s *intakev1.ReferralSubmission) {
			s.Child.DateOfBirth, s.Child.EstimatedAgeYears = "", proto.Int32(15)
		}, testNow},
		{"estimated age zero", func(s *intakev1.ReferralSubmission) {
			s.Child.DateOfBirth, s.Child.EstimatedAgeYears = "", proto.Int32(0)
		}, testNow},
		{"threshold facts", func(s *intakev1.ReferralSubmission) {
			s.Child.Disabled = true
			s.Household = append(s.Household, &intakev1.HouseholdMember{Relationship: intakev1.Relationship_SIBLING, SubjectToPlan: true})
			r := s.RiskIndicators
			r.SiblingsPreviouslyRemoved, r.ParentInPrison, r.MedicalTreatmentNotSought = true, true, true
			r.ChildHomeless, r.CaringAffectsChild = true, true
		}, testNow},
		{"postcode without space in lower case", func(s *intakev1.ReferralSubmission) { s.Child.Address.Postcode = "cf371aa" }, testNow},
		{"Welsh name at the limit", func(s *intakev1.ReferralSubmission) { s.Child.FamilyName = strings.Repeat("ŵ", 100) }, testNow},
		{"narrative at the limit in runes", func(s *intakev1.ReferralSubmission) { s.Narrative = strings.Repeat("é", 20000) }, testNow},
		{"narrative with line breaks and tabs", func(s *intakev1.ReferralSubmission) { s.Narrative = "a\r\n\tb" }, testNow},
		{"observedAt within clock skew", func(s *intakev1.ReferralSubmission) { s.Concerns[0].ObservedAt = ts(testNow.Add(4 * time.Minute)) }, testNow},
		{"duplicate categories", func(s *intakev1.ReferralSubmission) { s.Concerns[1].Category = s.Concerns[0].Category }, testNow},
		{"no household", func(s *intakev1.ReferralSubmission) { s.Household = nil }, testNow},
		{"no riskIndicators", func(s *intakev1.ReferralSubmission) { s.RiskIndicators = nil }, testNow},
		{"grade raised above score", func(s *intakev1.ReferralSubmission) {
			s.RiskIndicators.DashScore = 5
			s.RiskIndicators.DomesticAbuseRisk = intakev1.DomesticAbuseRisk_HIGH
		}, testNow},
		{"grade matches score", func(s *intakev1.ReferralSubmission) {
			s.RiskIndicators.DashScore = 13
			s.RiskIndicators.DomesticAbuseRisk = intakev1.DomesticAbuseRisk_MEDIUM
		}, testNow},
		{"score without grade", func(s *intakev1.ReferralSubmission) {
			s.RiskIndicators.DashScore = 27
			s.RiskIndicators.DomesticAbuseRisk = intakev1.DomesticAbuseRisk_DOMESTIC_ABUSE_RISK_UNSPECIFIED
		}, testNow},
		{"consent given without reason", func(s *intakev1.ReferralSubmission) {
			s.Consent = &intakev1.Consent{Status: intakev1.ConsentStatus_GIVEN}
		}, testNow},
		{"counts at the limit", func(s *intakev1.ReferralSubmission) {
			s.RiskIndicators.PoliceIncidentsLast_12Months = 366
			s.RiskIndicators.MissingEpisodesLast_12Months = 366
		}, testNow},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sub := example(t)
			tc.mutate(sub)
			if vs := Validate(sub, tc.now); vs != nil {
				t.Fatalf("Validate() = %v, want nil", vs)
			}
		})
	}
}

func TestValidateEmpty(t *testing.T) {
	t.Parallel()
	want := []string{"externalReference", "partnership", "referrer", "child", "concerns", "consent"}
	for name, sub := range map[string]*intakev1.ReferralSubmission{
		"nil":   nil,
		"empty": {},
	} {
		vs := Validate(sub, testNow)
		if got := fields(vs); !slices.Equal(got, want) {
			t.Errorf("Validate(%s) fields = %q, want %q", name, got, want)
		}
		for _, v := range vs {
			if v.Reason == "" {
				t.Errorf("Validate(%s): empty reason on %q", name, v.Field)
			}
		}
	}
}

// TestValidateReturnsAllInDocumentOrder breaks many rules at once and checks
// that every violation comes back, in the order of the fields in the contract.
func TestValidateReturnsAllInDocumentOrder(t *testing.T) {
	t.Parallel()
	sub := &intakev1.ReferralSubmission{
		ExternalReference: "has spaces",
		Partnership:       "RCT",
		Referrer:          &intakev1.Referrer{Email: "x"},
		Child: &intakev1.Child{
			DateOfBirth: "2030-01-01",
			NhsNumber:   "1234567890",
			Sex:         42,
			Address:     &intakev1.Address{Postcode: "CF37"},
			DueDate:     "2027-01-01",
		},
		Household: []*intakev1.HouseholdMember{
			{Relationship: intakev1.Relationship_MOTHER},
			{DateOfBirth: "yesterday"},
		},
		Concerns: []*intakev1.Concern{
			{Category: intakev1.ConcernCategory_NEGLECT, Summary: "ok", ObservedAt: ts(testNow)},
			{},
		},
		RiskIndicators: &intakev1.RiskIndicators{
			DomesticAbuseRisk:            intakev1.DomesticAbuseRisk_STANDARD,
			DashScore:                    20,
			MissingEpisodesLast_12Months: -3,
		},
		Consent:   &intakev1.Consent{Status: intakev1.ConsentStatus_REFUSED},
		Narrative: "\x00",
	}
	want := []string{
		"externalReference",
		"partnership",
		"referrer.name",
		"referrer.email",
		"child.givenName",
		"child.familyName",
		"child.dateOfBirth",
		"child.nhsNumber",
		"child.sex",
		"child.address.line1",
		"child.address.postcode",
		"child.dueDate",
		"household[1].relationship",
		"household[1].dateOfBirth",
		"concerns[1].category",
		"concerns[1].summary",
		"concerns[1].observedAt",
		"riskIndicators.domesticAbuseRisk",
		"riskIndicators.missingEpisodesLast12Months",
		"consent.reason",
		"narrative",
	}
	vs := Validate(sub, testNow)
	if got := fields(vs); !slices.Equal(got, want) {
		t.Fatalf("fields:\n got %q\nwant %q", got, want)
	}
	// Stable: the same input gives the same output.
	if again := Validate(sub, testNow); !slices.Equal(again, vs) {
		t.Fatalf("second Validate differs: %v vs %v", again, vs)
	}
}

// TestValidateBoundsOversizedLists checks that an oversized list yields the
// count violation plus at most the first maxHousehold members' violations.
func TestValidateBoundsOversizedLists(t *testing.T) {
	t.Parallel()
	sub := example(t)
	sub.Household = make([]*intakev1.HouseholdMember, 1000)
	for i := range sub.Household {
		sub.Household[i] = &intakev1.HouseholdMember{}
	}
	vs := Validate(sub, testNow)
	if len(vs) != 1+maxHousehold {
		t.Fatalf("got %d violations, want %d", len(vs), 1+maxHousehold)
	}
	if vs[0].Field != "household" || vs[len(vs)-1].Field != "household[29].relationship" {
		t.Fatalf("unexpected fields: first %q, last %q", vs[0].Field, vs[len(vs)-1].Field)
	}
}

// TestChildAge checks the 18th-birthday boundary in Europe/London.
func TestChildAge(t *testing.T) {
	t.Parallel()
	tests := []struct {
		dob   string
		now   time.Time
		adult bool
	}{
		{"2008-11-27", testNow, false},
		{"2008-11-26", testNow, true},
		{"2008-02-29", time.Date(2026, 2, 28, 23, 59, 0, 0, time.UTC), false},
		{"2008-02-29", time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), true},
		// 23:30 UTC on 30 June is already 1 July in London (BST).
		{"2008-07-01", time.Date(2026, 6, 30, 23, 30, 0, 0, time.UTC), true},
		{"2008-07-01", time.Date(2026, 6, 30, 22, 30, 0, 0, time.UTC), false},
	}
	for _, tc := range tests {
		got := checkChildDateOfBirth(tc.dob, false, false, false, londonToday(tc.now))
		if (got != "") != tc.adult {
			t.Errorf("checkChildDateOfBirth(%s) at %s = %q, adult want %v", tc.dob, tc.now, got, tc.adult)
		}
	}
}

func TestNHSNumber(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want string // normalised; "" when invalid
	}{
		{"9434765919", "9434765919"},
		{"4010232137", "4010232137"},
		{"943 476 5919", "9434765919"},
		{" 401 023 2137 ", "4010232137"},
		{"9434765918", ""},  // wrong check digit
		{"4010232138", ""},  // wrong check digit
		{"0000000600", ""},  // check digit would be 10: never issued
		{"943476591", ""},   // nine digits
		{"94347659190", ""}, // eleven digits
		{"943-476-5919", ""},
		{"943476591O", ""}, // letter O
		{"９４３４７６５９１９", ""}, // full-width digits
		{"", ""},
	}
	for _, tc := range tests {
		got, ok := NormaliseNHSNumber(tc.in)
		if ok != (tc.want != "") || got != tc.want {
			t.Errorf("NormaliseNHSNumber(%q) = %q, %v; want %q", tc.in, got, ok, tc.want)
		}
		if tc.in != "" && (checkNHSNumber(tc.in) == "") != (tc.want != "") {
			t.Errorf("checkNHSNumber(%q) disagrees with NormaliseNHSNumber", tc.in)
		}
	}
}

func TestPostcode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want string // normalised; "" when invalid
	}{
		{"CF37 1AA", "CF37 1AA"},
		{"cf371aa", "CF37 1AA"},
		{"SW1A 1AA", "SW1A 1AA"},
		{"M1 1AE", "M1 1AE"},
		{"B33 8TH", "B33 8TH"},
		{"GIR 0AA", "GIR 0AA"},
		{"EC1A 1BB", "EC1A 1BB"},
		{"W1A 0AX", "W1A 0AX"},
		{"  cr2  6xh ", "CR2 6XH"},
		{"12345", ""},
		{"CF37", ""},
		{"ABC 123", ""},
		{"CF37 1AAA", ""},
		{"CF37-1AA", ""},
		{"CF371A", ""},
		{"ÇF37 1AA", ""},
		{"CF37\t1AA", ""},
		{strings.Repeat("A", 100), ""},
		{"", ""},
	}
	for _, tc := range tests {
		got, ok := NormalisePostcode(tc.in)
		if ok != (tc.want != "") || got != tc.want {
			t.Errorf("NormalisePostcode(%q) = %q, %v; want %q", tc.in, got, ok, tc.want)
		}
	}
}

// TestReasonsDoNotEchoPersonalData puts distinctive personal values in
// invalid fields and checks that no reason repeats them, through both
// Validate and Decode.
func TestReasonsDoNotEchoPersonalData(t *testing.T) {
	t.Parallel()
	const name = "Zephyrinaqx"
	secrets := []string{name, "9434765918", "2031-07-14", "QQ9 9QQQ", "zephyrinaqx@nowhere", "0770 ZEPHYR"}

	sub := example(t)
	sub.Referrer.Name = name + "\a"
	sub.Referrer.Phone = "0770 ZEPHYR"
	sub.Referrer.Email = "zephyrinaqx@nowhere"
	sub.Child.GivenName = strings.Repeat(name, 20)
	sub.Child.FamilyName = name + "\n"
	sub.Child.NhsNumber = "9434765918"
	sub.Child.DateOfBirth = "2031-07-14"
	sub.Child.Address.Postcode = "QQ9 9QQQ"
	sub.Child.Address.Line1 = strings.Repeat(name, 30)
	sub.Household[0].GivenName = strings.Repeat(name, 10)
	sub.Household[0].DateOfBirth = "2031-07-14"
	sub.Concerns[0].Summary = strings.Repeat(name, 400)
	sub.Narrative = strings.Repeat(name, 2000)
	vs := Validate(sub, testNow)
	if len(vs) < 10 {
		t.Fatalf("expected many violations, got %v", vs)
	}

	bodies := []string{
		`{"child":{"nhsNumber":9434765918}}`,
		`{"child":"Zephyrinaqx"}`,
		`{"child":{"givenName":Zephyrinaqx}}`,
		`{"child":{"sex":"Zephyrinaqx"}}`,
		`{"child":{"dateOfBirth":20310714}}`,
		`{"Zephyrinaqx Morgan":"x"}`,
		`{"narrative":"Zephyrinaqx` + "\x01" + `"}`,
		`{"concerns":[{"observedAt":"2031-07-14"}]}`,
		`{"household":["Zephyrinaqx"]}`,
	}
	for _, body := range bodies {
		_, dvs := Decode([]byte(body))
		if len(dvs) != 1 {
			t.Errorf("Decode(%s) = %v, want one violation", body, dvs)
		}
		vs = append(vs, dvs...)
	}

	for _, v := range vs {
		for _, s := range secrets {
			if strings.Contains(strings.ToLower(v.Reason), strings.ToLower(s)) {
				t.Errorf("reason on %q repeats personal data: %q", v.Field, v.Reason)
			}
		}
	}
}

func TestDecode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		body string
		// contains is a fragment the reason must have, to keep it specific.
		contains string
	}{
		{"empty", "", "is required"},
		{"whitespace", " \n", "is required"},
		{"null", "null", "JSON object"},
		{"array", "[]", "JSON object"},
		{"string", `"x"`, "JSON object"},
		{"truncated", `{"child":{`, "complete"},
		{"trailing garbage", `{}x`, "line 1, column 3"},
		{"unknown field", `{"childName":"x"}`, `"childName"`},
		{"snake_case unknown", `{"child":{"nhs_no":"x"}}`, `"nhs_no"`},
		{"duplicate field", `{"narrative":"a","narrative":"b"}`, `"narrative"`},
		{"wrong type string", `{"externalReference":1}`, `"externalReference"`},
		{"wrong type enum", `{"child":{"sex":"BOY"}}`, `"sex"`},
		{"wrong type int", `{"riskIndicators":{"dashScore":"many"}}`, `"dashScore"`},
		{"huge number", `{"riskIndicators":{"dashScore":1e40}}`, "whole number"},
		{"fraction", `{"riskIndicators":{"policeIncidentsLast12Months":1.5}}`, `"policeIncidentsLast12Months"`},
		{"bool as string", `{"child":{"unborn":"yes"}}`, "true or false"},
		{"object as string", `{"child":"x"}`, "line 1, column 10"},
		{"null in list", `{"household":[null]}`, "line 1, column 15"},
		{"bad timestamp", `{"concerns":[{"observedAt":"2026-11-21"}]}`, "RFC 3339"},
		{"invalid UTF-8", "{\"narrative\":\"\xff\"}", "UTF-8"},
		{"raw control", "{\"narrative\":\"a\x01\"}", "control character"},
		{"lone surrogate", `{"narrative":"\ud800"}`, "\\u escape"},
		{"bad escape", `{"narrative":"\x"}`, "escape"},
		{"missing colon", `{"narrative" "x"}`, `":"`},
		{"deep nesting", strings.Repeat(`{"child":`, 200) + "{}" + strings.Repeat("}", 200), "line 1"},
		{"too large", `{"narrative":"` + strings.Repeat("a", MaxBodyBytes) + `"}`, "262144 bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sub, vs := Decode([]byte(tc.body))
			if sub != nil {
				t.Errorf("Decode returned a submission")
			}
			if len(vs) != 1 || vs[0].Field != "body" {
				t.Fatalf("Decode() = %v, want one violation on body", vs)
			}
			r := vs[0].Reason
			if !strings.Contains(r, tc.contains) {
				t.Errorf("reason %q does not contain %q", r, tc.contains)
			}
			if strings.Contains(r, "proto:") || strings.Contains(r, "\u00a0") {
				t.Errorf("reason %q leaks protojson's prefix", r)
			}
		})
	}
}

func TestDecodeAcceptsProtoNamesAndNumbers(t *testing.T) {
	t.Parallel()
	// protojson accepts the proto field name and enum numbers; both are part
	// of the protobuf JSON mapping integrators may rely on.
	sub, vs := Decode([]byte(`{"external_reference":"r","child":{"sex":4},"riskIndicators":{"dashScore":"7"}}`))
	if vs != nil {
		t.Fatalf("Decode() = %v", vs)
	}
	if sub.GetExternalReference() != "r" || sub.GetChild().GetSex() != intakev1.Sex_SEX_NOT_KNOWN || sub.GetRiskIndicators().GetDashScore() != 7 {
		t.Fatalf("decoded %v", sub)
	}
}

func TestDescribeDecodeErrorFallbacks(t *testing.T) {
	t.Parallel()
	// Shapes protojson may produce that Decode cannot easily provoke; none
	// may pass the tail (which can hold a value) through.
	tests := map[string]string{
		"proto: exceeded max recursion depth":                                  "nested too deeply",
		"proto:\u00a0something new: Zephyrinaqx":                               "not a valid ReferralSubmission JSON object",
		"proto: (line 2:3): something new: Zephyrinaqx":                        "line 2, column 3",
		"proto: syntax error (line 1:9): something new Zephyrinaqx":            "line 1, column 9",
		"proto: (line 1:2): unknown field \"" + strings.Repeat("x", 65) + "\"": "unknown field at line 1, column 2",
	}
	for in, want := range tests {
		got := describeDecodeError(in)
		if !strings.Contains(got, want) || strings.Contains(got, "Zephyrinaqx") || strings.Contains(got, "xxxxxxxx") {
			t.Errorf("describeDecodeError(%q) = %q, want it to contain %q and no value", in, got, want)
		}
	}
}

func TestViolationString(t *testing.T) {
	t.Parallel()
	if got := (Violation{Field: "child.sex", Reason: "is required"}).String(); got != "child.sex: is required" {
		t.Errorf("String() = %q", got)
	}
	if got := (Violation{Reason: "is required"}).String(); got != "is required" {
		t.Errorf("String() = %q", got)
	}
}

func BenchmarkValidateExample(b *testing.B) {
	body := readExample(b)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		sub, vs := Decode(body)
		if vs != nil {
			b.Fatal(vs)
		}
		if vs := Validate(sub, testNow); vs != nil {
			b.Fatal(vs)
		}
	}
}

// BenchmarkValidateOnly isolates Validate from JSON decoding.
func BenchmarkValidateOnly(b *testing.B) {
	sub := example(b)
	b.ReportAllocs()
	for b.Loop() {
		if vs := Validate(sub, testNow); vs != nil {
			b.Fatal(vs)
		}
	}
}
