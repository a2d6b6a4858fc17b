package triage

import (
	"testing"
	"time"

	"github.com/mash-hub/mash/pkg/calendar"
	intakev1 "github.com/mash-hub/mash/proto/mash/intake/v1"
)

// A child's age turns over on the England and Wales date, as intake and notify count it:
// 00:30 BST on the birthday is still the day before in UTC.
func TestAgeYearsOnTheLondonDate(t *testing.T) {
	cal, err := calendar.New(calendar.Config{})
	if err != nil {
		t.Fatal(err)
	}
	child := &intakev1.Child{DateOfBirth: "2010-06-15"}
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v // UTC: ageYears must move it to London itself
	}
	for _, tc := range []struct {
		child *intakev1.Child
		at    string
		want  int32
	}{
		{child, "2026-06-14T23:30:00Z", 16}, // 00:30 BST on 15 June
		{child, "2026-06-14T22:59:00Z", 15}, // 23:59 BST on 14 June
		{&intakev1.Child{Unborn: true, DueDate: "2027-01-10"}, "2026-06-14T23:30:00Z", 0},
		{&intakev1.Child{DateOfBirth: "not a date"}, "2026-06-14T23:30:00Z", 0},
		{&intakev1.Child{DateOfBirth: "2027-01-01"}, "2026-06-14T23:30:00Z", 0},
	} {
		if got := ageYears(tc.child, at(tc.at), cal.Location()); got != tc.want {
			t.Errorf("ageYears(%v, %s) = %d, want %d", tc.child, tc.at, got, tc.want)
		}
	}
}
