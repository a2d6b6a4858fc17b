package share_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	intakev1 "github.com/mash-hub/mash/proto/mash/intake/v1"
	notifyv1 "github.com/mash-hub/mash/proto/mash/notify/v1"
	"github.com/mash-hub/mash/services/notify/directory"
	"github.com/mash-hub/mash/services/notify/share"
)

// Values from services/intake/testdata/referral.example.json that the tests look for in
// (or require to be absent from) message bodies.
const (
	childGiven     = "Alex"
	childFamily    = "Morgan"
	childSchool    = "Example Primary School"
	nhsNumber      = "9434765919"
	street         = "12 Example Street"
	postcode       = "CF37 1AA"
	motherGiven    = "Sian"
	partnerGiven   = "Lee"
	partnerFamily  = "Price"
	referrerName   = "PC Rhian Evans"
	referrerPhone  = "01443 000000"
	referrerEmail  = "rhian.evans@police.example"
	narrativeText  = "Third call-out to this address in 12 months"
	concernSummary = "mother assaulted by partner"
	consentReason  = "Seeking consent would place the mother and child at increased risk."
)

var receivedAt = time.Date(2026, time.November, 22, 10, 0, 0, 0, time.UTC)

func london(t testing.TB) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("Europe/London")
	if err != nil {
		t.Fatalf("LoadLocation: %v", err)
	}
	return loc
}

// exampleReferral loads the synthetic referral and wraps it as the intake service would.
func exampleReferral(t testing.TB) *intakev1.Referral {
	t.Helper()
	b, err := os.ReadFile("../../intake/testdata/referral.example.json")
	if err != nil {
		t.Fatalf("read example referral: %v", err)
	}
	sub := &intakev1.ReferralSubmission{}
	if err := protojson.Unmarshal(b, sub); err != nil {
		t.Fatalf("decode example referral: %v", err)
	}
	return &intakev1.Referral{
		Id:          "0f8e4c1a-5b7d-4c3e-9a21-6d2f0b9e7c11",
		Reference:   "MASH-2026-000123",
		Agency:      "south-wales-police",
		AgencyKind:  "police",
		Partnership: "rhondda-cynon-taf",
		ReceivedAt:  timestamppb.New(receivedAt),
		Submission:  sub,
	}
}

// ---------------------------------------------------------------------------
// Operation Encompass deadline

func TestEncompassDeadline(t *testing.T) {
	loc := london(t)
	at := func(y int, m time.Month, d, hh, mm int) time.Time { return time.Date(y, m, d, hh, mm, 0, 0, loc) }
	tests := []struct {
		name     string
		closures []string
		learned  time.Time
		want     time.Time
	}{
		{"friday night before the summer bank holiday skips the weekend and monday",
			nil, at(2026, time.August, 28, 22, 10), at(2026, time.September, 1, 8, 45)},
		{"same instant given in UTC", nil, time.Date(2026, time.August, 28, 21, 10, 0, 0, time.UTC), at(2026, time.September, 1, 8, 45)},
		{"tuesday before school starts is the same morning", nil, at(2026, time.September, 8, 7, 0), at(2026, time.September, 8, 8, 45)},
		{"exactly at the start of the school day is that start", nil, at(2026, time.September, 8, 8, 45), at(2026, time.September, 8, 8, 45)},
		{"tuesday during the school day is wednesday morning", nil, at(2026, time.September, 8, 10, 0), at(2026, time.September, 9, 8, 45)},
		{"tuesday after school is wednesday morning", nil, at(2026, time.September, 8, 18, 30), at(2026, time.September, 9, 8, 45)},
		{"friday before half term skips the closure, across the clock change",
			[]string{"2026-10-26..2026-10-30"}, at(2026, time.October, 23, 16, 0), at(2026, time.November, 2, 8, 45)},
		{"learned inside the closure", []string{"2026-10-26..2026-10-30"}, at(2026, time.October, 28, 9, 30), at(2026, time.November, 2, 8, 45)},
		{"single closure day", []string{"2026-09-09"}, at(2026, time.September, 8, 10, 0), at(2026, time.September, 10, 8, 45)},
		{"christmas: closure then bank holidays", []string{"2026-12-21..2027-01-01"}, at(2026, time.December, 18, 12, 0), at(2027, time.January, 4, 8, 45)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := directory.Partnership{SchoolDay: directory.SchoolDay{Start: "08:45", End: "15:15", Closures: tc.closures}}
			cal, err := p.SchoolCalendar()
			if err != nil {
				t.Fatalf("SchoolCalendar: %v", err)
			}
			got := share.EncompassDeadline(cal, tc.learned)
			if !got.Equal(tc.want) {
				t.Errorf("EncompassDeadline(%s) = %s, want %s", tc.learned, got, tc.want)
			}
			const layout = "Mon 2006-01-02 15:04"
			if g, w := got.In(loc).Format(layout), tc.want.Format(layout); g != w {
				t.Errorf("wall clock in Europe/London = %s, want %s", g, w)
			}
		})
	}
}

// The deadline after the October clock change is 08:45 GMT, i.e. 08:45 UTC, not 07:45 UTC.
func TestEncompassDeadlineAfterClockChangeIsGMT(t *testing.T) {
	p := directory.Partnership{SchoolDay: directory.SchoolDay{Start: "08:45", End: "15:15", Closures: []string{"2026-10-26..2026-10-30"}}}
	cal, err := p.SchoolCalendar()
	if err != nil {
		t.Fatalf("SchoolCalendar: %v", err)
	}
	learned := time.Date(2026, time.October, 23, 15, 0, 0, 0, time.UTC) // 16:00 BST
	got := share.EncompassDeadline(cal, learned)
	if want := time.Date(2026, time.November, 2, 8, 45, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("deadline = %s (UTC %s), want %s", got, got.UTC(), want)
	}
}

// ---------------------------------------------------------------------------
// Operation Encompass trigger

func TestEncompassApplies(t *testing.T) {
	earliestDA := time.Date(2026, time.November, 21, 19, 0, 0, 0, time.UTC)
	exampleDA := time.Date(2026, time.November, 21, 22, 10, 0, 0, time.UTC)
	tests := []struct {
		name     string
		edit     func(r *intakev1.Referral)
		want     bool
		incident time.Time // checked only when want is true; callers ignore it otherwise
	}{
		{"police, domestic abuse, child aged 7", func(r *intakev1.Referral) {}, true, exampleDA},
		{"police, domestic abuse, aged 7 without a school", func(r *intakev1.Referral) { child(r).School = "" }, true, exampleDA},
		{"incident is the earliest domestic abuse concern", func(r *intakev1.Referral) {
			s := r.Submission
			s.Concerns = append(s.Concerns,
				&intakev1.Concern{Category: intakev1.ConcernCategory_NEGLECT, Summary: "earlier, not domestic abuse",
					ObservedAt: timestamppb.New(earliestDA.Add(-48 * time.Hour))},
				&intakev1.Concern{Category: intakev1.ConcernCategory_DOMESTIC_ABUSE, Summary: "earlier call-out",
					ObservedAt: timestamppb.New(earliestDA)},
				&intakev1.Concern{Category: intakev1.ConcernCategory_DOMESTIC_ABUSE, Summary: "later call-out",
					ObservedAt: timestamppb.New(exampleDA.Add(time.Hour))})
		}, true, earliestDA},
		{"health referral", func(r *intakev1.Referral) { r.AgencyKind = "health" }, false, time.Time{}},
		{"no agency kind", func(r *intakev1.Referral) { r.AgencyKind = "" }, false, time.Time{}},
		{"no domestic abuse concern", func(r *intakev1.Referral) {
			r.Submission.Concerns[0].Category = intakev1.ConcernCategory_NEGLECT
		}, false, time.Time{}},
		{"no concerns at all", func(r *intakev1.Referral) { r.Submission.Concerns = nil }, false, time.Time{}},
		{"unborn child, even with a school named", func(r *intakev1.Referral) {
			c := child(r)
			c.Unborn, c.DateOfBirth, c.DueDate = true, "", "2027-02-01"
		}, false, time.Time{}},
		{"unborn child, no school", func(r *intakev1.Referral) {
			c := child(r)
			c.Unborn, c.DateOfBirth, c.DueDate, c.School = true, "", "2027-02-01", ""
		}, false, time.Time{}},
		{"aged 2, no school", func(r *intakev1.Referral) { setChild(r, "2024-01-10", "") }, false, time.Time{}},
		{"aged 2, school named", func(r *intakev1.Referral) { setChild(r, "2024-01-10", "Little Acorns Nursery School") }, true, exampleDA},
		{"aged 2, school only spaces", func(r *intakev1.Referral) { setChild(r, "2024-01-10", "   ") }, false, time.Time{}},
		{"aged 3, day before 4th birthday", func(r *intakev1.Referral) { setChild(r, "2022-11-23", "") }, false, time.Time{}},
		{"4th birthday", func(r *intakev1.Referral) { setChild(r, "2022-11-22", "") }, true, exampleDA},
		{"aged 17", func(r *intakev1.Referral) { setChild(r, "2009-01-01", "") }, true, exampleDA},
		{"aged 17, day before 18th birthday", func(r *intakev1.Referral) { setChild(r, "2008-11-23", "") }, true, exampleDA},
		{"18th birthday", func(r *intakev1.Referral) { setChild(r, "2008-11-22", "") }, false, time.Time{}},
		{"aged 18", func(r *intakev1.Referral) { setChild(r, "2008-01-01", "") }, false, time.Time{}},
		{"date of birth missing, no school", func(r *intakev1.Referral) { setChild(r, "", "") }, false, time.Time{}},
		{"date of birth malformed, no school", func(r *intakev1.Referral) { setChild(r, "02/04/2019", "") }, false, time.Time{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := exampleReferral(t)
			tc.edit(r)
			got, incident := share.EncompassApplies(r)
			if got != tc.want {
				t.Fatalf("EncompassApplies = %v, want %v", got, tc.want)
			}
			if tc.want && !incident.Equal(tc.incident) {
				t.Errorf("incident = %s, want %s", incident, tc.incident)
			}
		})
	}
}

// A child's age is a matter of the date in England and Wales, as intake's own date-of-birth
// checks use (pkg/referral: "today" is the Europe/London date). A referral
// received at 23:30 UTC on 14 June 2026 arrived at 00:30 BST on 15 June: a child born on
// 15 June 2022 was 4 that day and in scope for Operation Encompass.
func TestEncompassAppliesAgeOnLondonDate(t *testing.T) {
	r := exampleReferral(t)
	setChild(r, "2022-06-15", "")
	r.ReceivedAt = timestamppb.New(time.Date(2026, time.June, 14, 23, 30, 0, 0, time.UTC))
	if got, _ := share.EncompassApplies(r); !got {
		t.Errorf("EncompassApplies = false for a child whose 4th birthday it is in Europe/London (received %s = %s London); want true",
			r.ReceivedAt.AsTime(), r.ReceivedAt.AsTime().In(london(t)))
	}
}

func child(r *intakev1.Referral) *intakev1.Child { return r.Submission.Child }

func setChild(r *intakev1.Referral, dob, school string) {
	c := child(r)
	c.DateOfBirth, c.School = dob, school
}

// ---------------------------------------------------------------------------
// Proportionate fields

var allFields = []string{
	share.FieldDecision, share.FieldChild, share.FieldNHSNumber, share.FieldAddress, share.FieldSchool,
	share.FieldLanguage, share.FieldCategories, share.FieldSummaries, share.FieldHousehold, share.FieldNarrative,
	share.FieldReferrer, share.FieldConsent,
}

func TestFieldsFor(t *testing.T) {
	minimal := []string{share.FieldDecision, share.FieldChild, share.FieldCategories, share.FieldConsent}
	tests := []struct {
		name    string
		role    string
		kind    notifyv1.NotificationKind
		want    []string // exact set, when not nil
		has     []string
		hasNot  []string
		wantNil bool
	}{
		{name: "school DSL action is education only", role: "school_dsl", kind: notifyv1.NotificationKind_ACTION,
			has:    []string{share.FieldDecision, share.FieldChild, share.FieldSchool, share.FieldCategories, share.FieldConsent},
			hasNot: []string{share.FieldNarrative, share.FieldNHSNumber, share.FieldAddress, share.FieldHousehold, share.FieldReferrer, share.FieldSummaries}},
		{name: "childrens social care gets everything", role: "childrens_social_care", kind: notifyv1.NotificationKind_ACTION, want: allFields},
		{name: "police gets everything", role: "police", kind: notifyv1.NotificationKind_ACTION, want: allFields},
		{name: "health visitor gets no school, narrative or referrer", role: "health_visitor", kind: notifyv1.NotificationKind_ACTION,
			has:    []string{share.FieldNHSNumber, share.FieldAddress, share.FieldHousehold, share.FieldSummaries},
			hasNot: []string{share.FieldNarrative, share.FieldReferrer, share.FieldSchool}},
		{name: "unknown role gets the minimal set", role: "parish_council", kind: notifyv1.NotificationKind_ACTION, want: minimal},
		{name: "empty role gets the minimal set", role: "", kind: notifyv1.NotificationKind_ACTION, want: minimal},
		{name: "receipt gives only the decision", role: "police", kind: notifyv1.NotificationKind_RECEIPT, want: []string{share.FieldDecision}},
		{name: "outcome gives only the decision", role: "childrens_social_care", kind: notifyv1.NotificationKind_OUTCOME, want: []string{share.FieldDecision}},
		{name: "withdrawal gives nothing", role: "childrens_social_care", kind: notifyv1.NotificationKind_WITHDRAWAL, wantNil: true},
		{name: "escalation gives everything", role: "duty_manager", kind: notifyv1.NotificationKind_ESCALATION, want: allFields},
		{name: "encompass is the education set", role: "school_dsl", kind: notifyv1.NotificationKind_ENCOMPASS,
			want: []string{share.FieldDecision, share.FieldChild, share.FieldSchool, share.FieldLanguage, share.FieldCategories, share.FieldConsent}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := share.FieldsFor(tc.role, tc.kind)
			if tc.wantNil && len(got) != 0 {
				t.Errorf("FieldsFor(%q, %s) = %v, want none", tc.role, tc.kind, got)
			}
			if tc.want != nil && !sameSet(got, tc.want) {
				t.Errorf("FieldsFor(%q, %s) = %v, want %v", tc.role, tc.kind, got, tc.want)
			}
			for _, f := range tc.has {
				if !slices.Contains(got, f) {
					t.Errorf("FieldsFor(%q, %s) = %v, missing %s", tc.role, tc.kind, got, f)
				}
			}
			for _, f := range tc.hasNot {
				if slices.Contains(got, f) {
					t.Errorf("FieldsFor(%q, %s) = %v, must not include %s", tc.role, tc.kind, got, f)
				}
			}
		})
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// ---------------------------------------------------------------------------
// Building messages

var created = time.Date(2026, time.November, 22, 10, 5, 0, 0, time.UTC)

func actionInput(t testing.TB, role string) share.Input {
	t.Helper()
	return share.Input{
		NotificationID: "n-0001",
		Kind:           notifyv1.NotificationKind_ACTION,
		Referral:       exampleReferral(t),
		Agency:         "rct-" + strings.ReplaceAll(role, "_", "-"),
		Role:           role,
		Partnership:    share.PartnershipBasis{LawfulBasis: directory.DefaultLawfulBasis},
		Decision: &share.Decision{ID: "dec-42", Version: 3, Level: "LEVEL_4", RAG: "RED", Pathway: "STRATEGY_DISCUSSION",
			Reason: "High-risk domestic abuse with the child present", Status: "CONFIRMED",
			Roles: []string{"police", "school_dsl", "childrens_social_care"}, ResponseDue: created.Add(4 * time.Hour),
			RuleIDs: []string{"da-high-child-present", "repeat-incidents"}},
		CreatedAt: created,
		AckDue:    created.Add(time.Hour),
		Link:      "https://mash.example/referrals/0f8e4c1a",
	}
}

func build(t testing.TB, in share.Input) (share.Built, *notifyv1.AgencyMessage) {
	t.Helper()
	b, err := share.Build(in)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	m := &notifyv1.AgencyMessage{}
	if err := protojson.Unmarshal(b.Body, m); err != nil {
		t.Fatalf("body is not an AgencyMessage: %v\n%s", err, b.Body)
	}
	return b, m
}

func TestBuildSchoolDSLIsProportionate(t *testing.T) {
	b, m := build(t, actionInput(t, "school_dsl"))
	body := string(b.Body)
	for _, s := range []string{childGiven, childFamily, childSchool, "DOMESTIC_ABUSE", "PARENTAL_SUBSTANCE_MISUSE"} {
		if !strings.Contains(body, s) {
			t.Errorf("school DSL body lacks %q:\n%s", s, body)
		}
	}
	for _, s := range []string{narrativeText, nhsNumber, street, postcode, motherGiven, partnerGiven, partnerFamily,
		referrerName, referrerPhone, referrerEmail, concernSummary} {
		if strings.Contains(body, s) {
			t.Errorf("school DSL body must not contain %q:\n%s", s, body)
		}
	}
	if m.GetNarrative() != "" || m.GetChild().GetNhsNumber() != "" || m.GetChild().GetAddress() != "" ||
		len(m.GetHousehold()) != 0 || m.GetReferrer() != nil {
		t.Errorf("school DSL message carries withheld groups: %v", m)
	}
	if m.GetChild().GetSchool() != childSchool {
		t.Errorf("child.school = %q, want %q", m.GetChild().GetSchool(), childSchool)
	}
	if b.ReferrerWithheld {
		t.Error("ReferrerWithheld = true, but the referrer group was not shared at all and the referral does not ask")
	}
}

func TestBuildChildrensSocialCareGetsEverything(t *testing.T) {
	b, m := build(t, actionInput(t, "childrens_social_care"))
	body := string(b.Body)
	for _, s := range []string{childGiven, childFamily, childSchool, "DOMESTIC_ABUSE", narrativeText, nhsNumber, street, postcode,
		motherGiven, partnerGiven, partnerFamily, referrerName, referrerPhone, referrerEmail, concernSummary} {
		if !strings.Contains(body, s) {
			t.Errorf("children's social care body lacks %q:\n%s", s, body)
		}
	}
	if got, want := m.GetChild().GetAddress(), "12 Example Street, Pontypridd"; got != want {
		t.Errorf("child.address = %q, want %q", got, want)
	}
	if got := m.GetReferrer(); got.GetAgency() != "south-wales-police" || got.GetName() != referrerName || got.GetIdentityWithheld() {
		t.Errorf("referrer = %v", got)
	}
	if len(m.GetHousehold()) != 2 || m.GetHousehold()[0].GetRelationship() != "MOTHER" {
		t.Errorf("household = %v", m.GetHousehold())
	}
	if b.ReferrerWithheld {
		t.Error("ReferrerWithheld = true for a referral that does not ask")
	}
}

func TestBuildWithholdsReferrerIdentity(t *testing.T) {
	for _, role := range []string{"childrens_social_care", "police"} {
		t.Run(role, func(t *testing.T) {
			in := actionInput(t, role)
			in.Referral.Submission.Referrer.KeepIdentityFromFamily = true
			b, m := build(t, in)
			if !b.ReferrerWithheld {
				t.Error("Built.ReferrerWithheld = false, want true")
			}
			var raw struct {
				Referrer map[string]any `json:"referrer"`
			}
			if err := json.Unmarshal(b.Body, &raw); err != nil {
				t.Fatalf("body: %v", err)
			}
			if raw.Referrer["identityWithheld"] != true {
				t.Errorf("referrer.identityWithheld = %v, want true; referrer = %v", raw.Referrer["identityWithheld"], raw.Referrer)
			}
			if raw.Referrer["agency"] != "south-wales-police" {
				t.Errorf("referrer.agency = %v, want the referring agency", raw.Referrer["agency"])
			}
			body := string(b.Body)
			for _, s := range []string{referrerName, referrerPhone, referrerEmail, "public protection unit"} {
				if strings.Contains(body, s) {
					t.Errorf("body contains withheld referrer detail %q:\n%s", s, body)
				}
			}
			if r := m.GetReferrer(); r.GetName() != "" || r.GetPhone() != "" || r.GetEmail() != "" || r.GetRole() != "" {
				t.Errorf("referrer = %v, want identity withheld", r)
			}
			// The rest of the full summary is still there.
			if !strings.Contains(body, narrativeText) || !strings.Contains(body, nhsNumber) {
				t.Errorf("withholding the referrer dropped other fields:\n%s", body)
			}
		})
	}
}

func TestBuildShareRecord(t *testing.T) {
	tests := []struct {
		name string
		in   func(t testing.TB) share.Input
	}{
		{"school DSL action", func(t testing.TB) share.Input { return actionInput(t, "school_dsl") }},
		{"childrens social care action", func(t testing.TB) share.Input { return actionInput(t, "childrens_social_care") }},
		{"unknown role action", func(t testing.TB) share.Input { return actionInput(t, "parish_council") }},
		{"receipt", func(t testing.TB) share.Input {
			in := actionInput(t, "police")
			in.Kind, in.Decision = notifyv1.NotificationKind_RECEIPT, nil
			return in
		}},
		{"withdrawal", func(t testing.TB) share.Input {
			in := actionInput(t, "police")
			in.Kind, in.AboutID = notifyv1.NotificationKind_WITHDRAWAL, "n-0000"
			return in
		}},
		{"escalation", func(t testing.TB) share.Input {
			in := actionInput(t, "duty_manager")
			in.Kind, in.AboutID, in.AboutAgency = notifyv1.NotificationKind_ESCALATION, "n-0000", "rct-police"
			return in
		}},
		{"encompass", func(t testing.TB) share.Input {
			in := actionInput(t, "school_dsl")
			in.Kind, in.Decision, in.IncidentAt = notifyv1.NotificationKind_ENCOMPASS, nil, created.Add(-12*time.Hour)
			return in
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in(t)
			b, m := build(t, in)
			sum := sha256.Sum256(b.Body)
			if want := hex.EncodeToString(sum[:]); b.SHA256 != want {
				t.Errorf("SHA256 = %s, want %s", b.SHA256, want)
			}
			if want := share.FieldsFor(in.Role, in.Kind); !slices.Equal(b.Fields, want) {
				t.Errorf("Built.Fields = %v, want FieldsFor = %v", b.Fields, want)
			}
			if !slices.Equal(m.GetShare().GetFields(), b.Fields) {
				t.Errorf("body share.fields = %v, Built.Fields = %v", m.GetShare().GetFields(), b.Fields)
			}
			if b.LawfulBasis != directory.DefaultLawfulBasis || m.GetShare().GetLawfulBasis() != directory.DefaultLawfulBasis {
				t.Errorf("lawful basis: built %q, body %q", b.LawfulBasis, m.GetShare().GetLawfulBasis())
			}
			if b.ConsentStatus != "NOT_SOUGHT" || b.ConsentReason != consentReason {
				t.Errorf("consent: built %q / %q", b.ConsentStatus, b.ConsentReason)
			}
			if slices.Contains(b.Fields, share.FieldConsent) {
				if m.GetShare().GetConsentStatus() != "NOT_SOUGHT" || m.GetShare().GetConsentReason() != consentReason {
					t.Errorf("body consent: %q / %q", m.GetShare().GetConsentStatus(), m.GetShare().GetConsentReason())
				}
			}
			if b.Purpose == "" || m.GetShare().GetPurpose() != b.Purpose {
				t.Errorf("purpose: built %q, body %q", b.Purpose, m.GetShare().GetPurpose())
			}
			if m.GetNotificationId() != in.NotificationID || m.GetKind() != in.Kind || m.GetReferralId() != in.Referral.GetId() ||
				m.GetReference() != in.Referral.GetReference() || m.GetPartnership() != "rhondda-cynon-taf" ||
				m.GetAgency() != in.Agency || m.GetRole() != in.Role || !m.GetCreatedAt().AsTime().Equal(in.CreatedAt) {
				t.Errorf("envelope = %v", m)
			}
			if !m.GetAcknowledgeBy().AsTime().Equal(in.AckDue) {
				t.Errorf("acknowledgeBy = %v, want %s", m.GetAcknowledgeBy(), in.AckDue)
			}
			if in.IncidentAt.IsZero() != (m.GetIncidentAt() == nil) ||
				(!in.IncidentAt.IsZero() && !m.GetIncidentAt().AsTime().Equal(in.IncidentAt)) {
				t.Errorf("incidentAt = %v, want %s", m.GetIncidentAt(), in.IncidentAt)
			}
			// Each group not in the field list is absent from the body.
			if !slices.Contains(b.Fields, share.FieldChild) && m.GetChild() != nil {
				t.Errorf("child sent without %s: %v", share.FieldChild, m.GetChild())
			}
			if !slices.Contains(b.Fields, share.FieldCategories) && len(m.GetConcerns()) != 0 {
				t.Errorf("concerns sent without %s", share.FieldCategories)
			}
			if !slices.Contains(b.Fields, share.FieldNarrative) && m.GetNarrative() != "" {
				t.Errorf("narrative sent without %s", share.FieldNarrative)
			}
			if !slices.Contains(b.Fields, share.FieldReferrer) && m.GetReferrer() != nil {
				t.Errorf("referrer sent without %s", share.FieldReferrer)
			}
			if !slices.Contains(b.Fields, share.FieldDecision) && m.GetDecision() != nil {
				t.Errorf("decision sent without %s", share.FieldDecision)
			}
		})
	}
}

func TestBuildOtherLawfulBasis(t *testing.T) {
	in := actionInput(t, "police")
	in.Partnership.LawfulBasis = "UK GDPR Art 6(1)(c) (legal obligation): Children Act 2004 s11"
	b, m := build(t, in)
	if b.LawfulBasis != in.Partnership.LawfulBasis || m.GetShare().GetLawfulBasis() != in.Partnership.LawfulBasis {
		t.Errorf("lawful basis: built %q, body %q", b.LawfulBasis, m.GetShare().GetLawfulBasis())
	}
}

func TestBuildConsentGiven(t *testing.T) {
	in := actionInput(t, "health_visitor")
	in.Referral.Submission.Consent = &intakev1.Consent{Status: intakev1.ConsentStatus_GIVEN, Reason: "Mother agreed on 21 Nov"}
	b, m := build(t, in)
	if b.ConsentStatus != "GIVEN" || b.ConsentReason != "Mother agreed on 21 Nov" {
		t.Errorf("built consent = %q / %q", b.ConsentStatus, b.ConsentReason)
	}
	if m.GetShare().GetConsentStatus() != "GIVEN" || m.GetShare().GetConsentReason() != "Mother agreed on 21 Nov" {
		t.Errorf("body consent = %q / %q", m.GetShare().GetConsentStatus(), m.GetShare().GetConsentReason())
	}
}

func TestBuildPurpose(t *testing.T) {
	t.Run("action names decision, version, role and rules", func(t *testing.T) {
		b, _ := build(t, actionInput(t, "school_dsl"))
		for _, s := range []string{"dec-42", "v3", "school_dsl", "da-high-child-present", "repeat-incidents"} {
			if !strings.Contains(b.Purpose, s) {
				t.Errorf("purpose %q lacks %q", b.Purpose, s)
			}
		}
		if want := "decision dec-42 v3 (LEVEL_4 RED) names school_dsl by rule da-high-child-present, repeat-incidents"; b.Purpose != want {
			t.Errorf("purpose = %q, want %q", b.Purpose, want)
		}
	})
	t.Run("action without rule ids", func(t *testing.T) {
		in := actionInput(t, "police")
		in.Decision.RuleIDs = nil
		b, _ := build(t, in)
		if want := "decision dec-42 v3 (LEVEL_4 RED) names police"; b.Purpose != want {
			t.Errorf("purpose = %q, want %q", b.Purpose, want)
		}
	})
	t.Run("withdrawal names the withdrawn notification", func(t *testing.T) {
		in := actionInput(t, "police")
		in.Kind, in.AboutID = notifyv1.NotificationKind_WITHDRAWAL, "n-0000"
		b, _ := build(t, in)
		if !strings.Contains(b.Purpose, "n-0000") || !strings.Contains(b.Purpose, "police") {
			t.Errorf("purpose = %q", b.Purpose)
		}
	})
	t.Run("escalation names the unacknowledged notification and agency", func(t *testing.T) {
		in := actionInput(t, "duty_manager")
		in.Kind, in.AboutID, in.AboutAgency = notifyv1.NotificationKind_ESCALATION, "n-0000", "rct-police"
		b, _ := build(t, in)
		if !strings.Contains(b.Purpose, "n-0000") || !strings.Contains(b.Purpose, "rct-police") {
			t.Errorf("purpose = %q", b.Purpose)
		}
	})
	t.Run("encompass", func(t *testing.T) {
		in := actionInput(t, "school_dsl")
		in.Kind = notifyv1.NotificationKind_ENCOMPASS
		b, _ := build(t, in)
		if !strings.Contains(b.Purpose, "Operation Encompass") {
			t.Errorf("purpose = %q", b.Purpose)
		}
	})
}

func TestBuildDecisionSummary(t *testing.T) {
	in := actionInput(t, "school_dsl")
	_, m := build(t, in)
	d := m.GetDecision()
	if d.GetDecisionId() != "dec-42" || d.GetVersion() != 3 || d.GetLevel() != "LEVEL_4" || d.GetRag() != "RED" ||
		d.GetStatus() != "CONFIRMED" || d.GetPathway() != "STRATEGY_DISCUSSION" {
		t.Errorf("decision = %v", d)
	}
	if d.GetLeadAgency() != "childrens_social_care" {
		t.Errorf("leadAgency = %q, want childrens_social_care", d.GetLeadAgency())
	}
	if !d.GetResponseDue().AsTime().Equal(in.Decision.ResponseDue) {
		t.Errorf("responseDue = %v", d.GetResponseDue())
	}
}

func TestBuildDoesNotModifyReferral(t *testing.T) {
	in := actionInput(t, "school_dsl")
	before := proto.Clone(in.Referral)
	build(t, in)
	if !proto.Equal(before, in.Referral) {
		t.Error("Build changed the referral")
	}
}

func TestLeadAgency(t *testing.T) {
	tests := []struct {
		name  string
		roles []string
		want  string
	}{
		{"childrens social care over police", []string{"police", "childrens_social_care"}, "childrens_social_care"},
		{"police over school", []string{"school_dsl", "police"}, "police"},
		{"early help over health visitor", []string{"health_visitor", "early_help"}, "early_help"},
		{"falls back to the first role", []string{"housing", "camhs"}, "housing"},
		{"single role", []string{"prevent"}, "prevent"},
		{"none", nil, ""},
		{"empty", []string{}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := share.LeadAgency(tc.roles); got != tc.want {
				t.Errorf("LeadAgency(%v) = %q, want %q", tc.roles, got, tc.want)
			}
		})
	}
}
