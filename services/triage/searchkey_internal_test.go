package triage

import (
	"slices"
	"testing"
	"time"
)

// Names fold so that spellings that differ by accent, case, punctuation, doubled letters, ph
// or y meet; different names stay different.
func TestFoldName(t *testing.T) {
	for _, c := range []struct{ a, b string }{
		{"Siân", "sian"},
		{"LLŶR", "llyr"},
		{"Dŵr", "dwr"},
		{"O'Brien-Jones", "obrien jones"},
		{"Llewellyn", "Lewelyn"},
		{"Phillips", "Filips"},
		{"Smyth", "Smith"},
		{"  Mari   Ann ", "mari ann"},
	} {
		if fa, fb := foldName(c.a), foldName(c.b); fa != fb {
			t.Errorf("foldName(%q) = %q, foldName(%q) = %q: want equal", c.a, fa, c.b, fb)
		}
	}
	if foldName("Sian") == foldName("Sion") {
		t.Error("Sian and Sion fold together")
	}
	if personKey("Mary Ann", "Jones") != personKey("Maryann", "JONES") || personKey("", "Jones") != "" {
		t.Error("person keys")
	}
}

// A query is read by the shape of its parts; problems name what is wrong.
func TestParseQuery(t *testing.T) {
	dob := time.Date(2015, 4, 2, 0, 0, 0, 0, time.UTC)
	sq, p := parseQuery("Siân Jones 02/04/2015 cf37 1aa")
	if p != "" || !slices.Equal(sq.Name, []string{"sian", "jones"}) || sq.DateOfBirth == nil || !sq.DateOfBirth.Equal(dob) || sq.Postcode != "CF371AA" {
		t.Fatalf("parsed %+v %q", sq, p)
	}
	if sq, p := parseQuery("943 476 5919"); p != "" || sq.NHSNumber != "9434765919" || len(sq.Name) != 0 {
		t.Fatalf("NHS number: %+v %q", sq, p)
	}
	if sq, p := parseQuery("mash-2026-0000123"); p != "" || sq.Reference != "MASH-2026-0000123" {
		t.Fatalf("MASH reference: %+v %q", sq, p)
	}
	if sq, p := parseQuery("swp-2026-11-000123"); p != "" || sq.ExternalReference != "SWP-2026-11-000123" || sq.DateOfBirth != nil {
		t.Fatalf("external reference: %+v %q", sq, p)
	}
	if sq, p := parseQuery("2015-04-02"); p != "" || sq.DateOfBirth == nil || !sq.DateOfBirth.Equal(dob) {
		t.Fatalf("ISO date: %+v %q", sq, p)
	}
	for _, bad := range []string{"", "  ,.  ", "31/02/2015", "2015-04-02 2016-01-01"} {
		if _, p := parseQuery(bad); p == "" {
			t.Errorf("parseQuery(%q) found no problem", bad)
		}
	}
}
