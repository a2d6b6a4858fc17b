package childindex

import (
	"testing"

	intakev1 "github.com/mash-hub/mash/proto/mash/intake/v1"
)

func child(given, family, dob, nhs, postcode string) *intakev1.Child {
	return &intakev1.Child{GivenName: given, FamilyName: family, DateOfBirth: dob, NhsNumber: nhs,
		Address: &intakev1.Address{Line1: "1 Example Street", Postcode: postcode}}
}

func TestNormalisation(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"Siân O'Brien-Jones": "sianobrienjones",
		"  GWENLLÏAN ":       "gwenllian",
		"Dŵr":                "dwr",
		"Zoë":                "zoe",
	} {
		if got := NormaliseName(in); got != want {
			t.Errorf("NormaliseName(%q) = %q, want %q", in, got, want)
		}
	}
	if got := NormalisePostcode(" cf37 1aa"); got != "CF371AA" {
		t.Errorf("postcode: %q", got)
	}
}

func TestKeyOf(t *testing.T) {
	t.Parallel()
	k := KeyOf(child("Alex", "Morgan", "2019-04-02", "943 476 5919", "CF37 1AA"))
	if k.NHSNumber != "9434765919" || k.Demographic != "alex|morgan|2019-04-02|CF371AA" {
		t.Fatalf("key: %+v", k)
	}
	if k := KeyOf(child("Alex", "Morgan", "", "", "CF37 1AA")); k.Strong() {
		t.Fatalf("no date of birth and no NHS number must be weak: %+v", k)
	}
	if k := KeyOf(&intakev1.Child{Unborn: true, FamilyName: "Morgan", DueDate: "2027-01-01"}); k.Strong() {
		t.Fatalf("an unborn child without an NHS number must be weak: %+v", k)
	}
	if k := KeyOf(child("A", "B", "2019-04-02", "12345", "CF37 1AA")); k.NHSNumber != "" {
		t.Fatalf("a malformed NHS number must not be a key: %+v", k)
	}
}

func TestDecide(t *testing.T) {
	t.Parallel()
	full := Key{NHSNumber: "9434765919", Demographic: "alex|morgan|2019-04-02|CF371AA"}
	demoOnly := Key{Demographic: full.Demographic}
	for _, tc := range []struct {
		name      string
		key       Key
		nhs, demo []Candidate
		wantChild string
		wantBasis Basis
	}{
		{"same NHS number, names spelt differently", full, []Candidate{{"c1", "9434765919"}}, nil, "c1", MatchNHSNumber},
		{"NHS number wins over demographics", full, []Candidate{{"c1", "9434765919"}}, []Candidate{{"c2", ""}}, "c1", MatchNHSNumber},
		{"demographics, earlier record had no NHS number", full, nil, []Candidate{{"c2", ""}}, "c2", MatchDemographics},
		{"demographics, neither has an NHS number", demoOnly, nil, []Candidate{{"c2", ""}}, "c2", MatchDemographics},
		{"demographics, this one has none, earlier had one", demoOnly, nil, []Candidate{{"c2", "4010232137"}}, "c2", MatchDemographics},
		{"same demographics, different NHS numbers: two children", full, nil, []Candidate{{"c3", "4010232137"}}, "", NewChild},
		{"two earlier children match: never guess", demoOnly, nil, []Candidate{{"c4", ""}, {"c5", ""}}, "", NewChildAmbiguous},
		{"nothing known", demoOnly, nil, nil, "", NewChild},
		{"weak identifiers", Key{}, nil, []Candidate{{"c6", ""}}, "", NewChildWeakEvidence},
		{"NHS number only, no match", Key{NHSNumber: "9434765919"}, nil, nil, "", NewChild},
	} {
		child, basis := Decide(tc.key, tc.nhs, tc.demo)
		if child != tc.wantChild || basis != tc.wantBasis {
			t.Errorf("%s: got (%q, %s), want (%q, %s)", tc.name, child, basis, tc.wantChild, tc.wantBasis)
		}
	}
}

// TestKeyOfUnknownDateOfBirth: a child referred with an estimated or unknown age has no
// date of birth, so never a name+DOB+postcode key (an estimate must not stand in for a
// date): only the NHS number can link them, and without it the evidence is too weak.
func TestKeyOfUnknownDateOfBirth(t *testing.T) {
	t.Parallel()
	est := int32(9)
	withNHS := child("Cerys", "Evans", "", "943 476 5919", "CF37 1AA")
	withNHS.EstimatedAgeYears = &est
	k := KeyOf(withNHS)
	if k.NHSNumber != "9434765919" || k.Demographic != "" {
		t.Fatalf("KeyOf(estimated age, NHS) = %+v, want NHS number only", k)
	}
	if id, basis := Decide(k, []Candidate{{ChildID: "c1", NHSNumber: "9434765919"}}, nil); id != "c1" || basis != MatchNHSNumber {
		t.Errorf("Decide = %q %s, want c1 by NHS number", id, basis)
	}

	unknown := child("Cerys", "Evans", "", "", "CF37 1AA")
	unknown.AgeUnknown = true
	k = KeyOf(unknown)
	if k.Strong() {
		t.Fatalf("KeyOf(age unknown, no NHS) = %+v, want no key", k)
	}
	// Even a record with the same name and postcode is not linked.
	if id, basis := Decide(k, nil, []Candidate{{ChildID: "c2"}}); id != "" || basis != NewChildWeakEvidence {
		t.Errorf("Decide = %q %s, want a new child on weak evidence", id, basis)
	}
}
