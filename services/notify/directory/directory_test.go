package directory_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mash-hub/mash/services/notify/directory"
)

const (
	hookSecret  = "3f9c2a7be41d08c5a6f1e2d3c4b5a69788796a5b4c3d2e1f0a1b2c3d4e5f6071" // 64 bytes of hex text
	hookSecret2 = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90"
)

// env is a getenv that records what was asked for.
type env struct {
	vars  map[string]string
	asked []string
}

func (e *env) get(k string) string {
	e.asked = append(e.asked, k)
	return e.vars[k]
}

func newEnv() *env {
	return &env{vars: map[string]string{"RCT_CSC_SECRET": hookSecret, "RCT_EDT_SECRET": hookSecret2, "SHORT_SECRET": "too-short"}}
}

const validFile = `
partnerships:
  - id: rhondda-cynon-taf
    dutyManager: rct-mash-duty
    consoleUrl: https://mash.rct.example/
    schoolDay:
      closures: ["2026-10-26..2026-10-30", "2026-12-21..2027-01-01", "2027-02-15"]
  - id: cardiff
    lawfulBasis: "UK GDPR Art 6(1)(c) (legal obligation)"
    dutyManager: cardiff-duty
    schoolDay: {start: "08:30", end: "15:00"}
    redAckMinutes: 30
agencies:
  - id: rct-mash-duty
    partnership: rhondda-cynon-taf
    name: RCT MASH duty manager
    roles: [duty_manager]
    channel: nats
  - id: rct-csc
    partnership: rhondda-cynon-taf
    name: RCT Children's Services front door
    roles: [" childrens_social_care ", duty_manager, childrens_social_care]
    channel: Webhook
    url: https://csc.rct.example/mash/notify
    secretEnv: RCT_CSC_SECRET
    hoursStart: "09:00"
    hoursEnd: "17:00"
    outOfHours: rct-edt
  - id: rct-edt
    partnership: rhondda-cynon-taf
    name: Emergency Duty Team
    roles: [childrens_social_care]
    channel: webhook
    url: http://127.0.0.1:8088/hook
    secretEnv: RCT_EDT_SECRET
    concurrency: 16
  - id: rct-education-safeguarding
    partnership: rhondda-cynon-taf
    name: RCT education safeguarding
    roles: [school_dsl]
    channel: email
    email: safeguarding@education.rct.example
  - id: example-primary
    partnership: rhondda-cynon-taf
    name: Example Primary School DSL
    roles: [school_dsl]
    channel: email
    email: dsl@exampleprimary.example
    schools: ["Example Primary School"]
  - id: cardiff-duty
    partnership: cardiff
    name: Cardiff MASH duty manager
    roles: [duty_manager]
    channel: email
    email: duty@cardiff.example
  - id: rct-mash-duty
    partnership: cardiff
    name: Same id, other partnership
    roles: [police]
    channel: nats
`

func TestParseValid(t *testing.T) {
	e := newEnv()
	f, ps := directory.Parse([]byte(validFile), e.get)
	if len(ps) != 0 {
		t.Fatalf("Parse: problems %v", ps)
	}
	if len(f.Partnerships) != 2 || len(f.Agencies) != 7 {
		t.Fatalf("Parse: %d partnerships, %d agencies; want 2 and 7", len(f.Partnerships), len(f.Agencies))
	}
	if !sameSet(e.asked, []string{"RCT_CSC_SECRET", "RCT_EDT_SECRET"}) {
		t.Errorf("getenv asked for %v, want the two secretEnv names", e.asked)
	}

	t.Run("partnership defaults", func(t *testing.T) {
		p := f.Partnerships[0]
		if p.ID != "rhondda-cynon-taf" || p.DutyManager != "rct-mash-duty" {
			t.Errorf("partnership = %+v", p)
		}
		if p.LawfulBasis != directory.DefaultLawfulBasis {
			t.Errorf("lawfulBasis = %q, want the default", p.LawfulBasis)
		}
		if p.SchoolDay.Start != "08:45" || p.SchoolDay.End != "15:15" {
			t.Errorf("schoolDay = %s-%s, want 08:45-15:15", p.SchoolDay.Start, p.SchoolDay.End)
		}
		if p.RedAckMinutes != 60 {
			t.Errorf("redAckMinutes = %d, want 60", p.RedAckMinutes)
		}
		if p.ConsoleURL != "https://mash.rct.example" {
			t.Errorf("consoleUrl = %q, want the trailing slash trimmed", p.ConsoleURL)
		}
		if len(p.SchoolDay.Closures) != 3 {
			t.Errorf("closures = %v", p.SchoolDay.Closures)
		}
	})
	t.Run("partnership explicit values kept", func(t *testing.T) {
		p := f.Partnerships[1]
		if p.LawfulBasis != "UK GDPR Art 6(1)(c) (legal obligation)" || p.SchoolDay.Start != "08:30" ||
			p.SchoolDay.End != "15:00" || p.RedAckMinutes != 30 {
			t.Errorf("partnership = %+v", p)
		}
	})
	t.Run("school calendar from the file", func(t *testing.T) {
		cal, err := f.Partnerships[0].SchoolCalendar()
		if err != nil {
			t.Fatalf("SchoolCalendar: %v", err)
		}
		loc := london(t)
		got := cal.NextWorkingDayStart(time.Date(2026, time.December, 18, 16, 0, 0, 0, loc))
		if want := time.Date(2027, time.January, 4, 8, 45, 0, 0, loc); !got.Equal(want) {
			t.Errorf("next school day after the Christmas closure = %s, want %s", got, want)
		}
	})
	t.Run("agency defaults and normalising", func(t *testing.T) {
		byKey := map[string]directory.Agency{}
		for _, a := range f.Agencies {
			byKey[a.Partnership+"/"+a.ID] = a
		}
		csc := byKey["rhondda-cynon-taf/rct-csc"]
		if csc.Channel != directory.ChannelWebhook {
			t.Errorf("channel = %q, want lower-cased %q", csc.Channel, directory.ChannelWebhook)
		}
		if !slices.Equal(csc.Roles, []string{"childrens_social_care", "duty_manager"}) {
			t.Errorf("roles = %q, want trimmed, sorted, de-duplicated", csc.Roles)
		}
		if string(csc.Secret) != hookSecret {
			t.Errorf("secret = %q, want the value of RCT_CSC_SECRET", csc.Secret)
		}
		if csc.Concurrency != 4 {
			t.Errorf("concurrency = %d, want default 4", csc.Concurrency)
		}
		edt := byKey["rhondda-cynon-taf/rct-edt"]
		if string(edt.Secret) != hookSecret2 || edt.Concurrency != 16 {
			t.Errorf("rct-edt secret %q, concurrency %d", edt.Secret, edt.Concurrency)
		}
		if a := byKey["rhondda-cynon-taf/rct-mash-duty"]; a.Channel != directory.ChannelNATS || len(a.Secret) != 0 {
			t.Errorf("nats agency = %+v", a)
		}
		if a := byKey["cardiff/cardiff-duty"]; a.Channel != directory.ChannelEmail || a.Email != "duty@cardiff.example" {
			t.Errorf("email agency = %+v", a)
		}
		if _, ok := byKey["cardiff/rct-mash-duty"]; !ok {
			t.Error("the same agency id in another partnership is allowed")
		}
	})
}

func TestParseEmptyDirectoryIsValid(t *testing.T) {
	f, ps := directory.Parse([]byte("partnerships: []\nagencies: []\n"), newEnv().get)
	if len(ps) != 0 || len(f.Partnerships) != 0 || len(f.Agencies) != 0 {
		t.Errorf("Parse = %+v, %v", f, ps)
	}
}

// base is a valid file: one partnership and its duty manager (agencies[0]). Cases add to it.
const basePartnerships = `partnerships:
  - id: rct
    dutyManager: duty
`
const baseAgencies = `agencies:
  - {id: duty, partnership: rct, name: Duty manager, roles: [duty_manager], channel: nats}
`

func withAgency(a string) string { return basePartnerships + baseAgencies + "  - " + a + "\n" }

func withPartnership(p string) string { return "partnerships:\n  - " + p + "\n" + baseAgencies }

func TestParseProblems(t *testing.T) {
	// Make sure the base really is valid, so each case's problems are its own.
	if _, ps := directory.Parse([]byte(basePartnerships+baseAgencies), newEnv().get); len(ps) != 0 {
		t.Fatalf("base file: %v", ps)
	}
	tests := []struct {
		name   string
		src    string
		fields []string // exactly the problem fields expected
		reason string   // a substring of the first expected field's reason
	}{
		{"unknown key", withAgency(`{id: police, partnership: rct, name: Police, roles: [police], channel: nats, colour: blue}`),
			[]string{"file"}, "colour"},
		{"secret in the file is not read", withAgency(`{id: police, partnership: rct, name: Police, roles: [police], channel: nats, secret: abc}`),
			[]string{"file"}, "secret"},
		{"unknown partnership key", "partnerships:\n  - {id: rct, dutyManager: duty, redAck: 5}\n" + baseAgencies,
			[]string{"file"}, "redAck"},
		{"not yaml", "partnerships: [", []string{"file"}, ""},
		{"bad agency id", withAgency(`{id: Police_Team, partnership: rct, name: Police, roles: [police], channel: nats}`),
			[]string{"agencies[1].id"}, "lower-case"},
		{"agency id too long", withAgency(`{id: ` + strings.Repeat("a", 64) + `, partnership: rct, name: Police, roles: [police], channel: nats}`),
			[]string{"agencies[1].id"}, ""},
		{"missing name", withAgency(`{id: police, partnership: rct, roles: [police], channel: nats}`),
			[]string{"agencies[1].name"}, "required"},
		{"missing roles", withAgency(`{id: police, partnership: rct, name: Police, channel: nats}`),
			[]string{"agencies[1].roles"}, "at least one role"},
		{"bad role", withAgency(`{id: police, partnership: rct, name: Police, roles: [Police-Team], channel: nats}`),
			[]string{"agencies[1].roles"}, "Police-Team"},
		{"webhook http to a non-loopback host", withAgency(`{id: police, partnership: rct, name: Police, roles: [police], channel: webhook, url: "http://hooks.police.example/mash", secretEnv: RCT_CSC_SECRET}`),
			[]string{"agencies[1].url"}, "https"},
		{"webhook http to a host named like localhost", withAgency(`{id: police, partnership: rct, name: Police, roles: [police], channel: webhook, url: "http://localhost.evil.example/", secretEnv: RCT_CSC_SECRET}`),
			[]string{"agencies[1].url"}, "https"},
		{"webhook url with a password", withAgency(`{id: police, partnership: rct, name: Police, roles: [police], channel: webhook, url: "https://ppu:hunter2@hooks.police.example/mash", secretEnv: RCT_CSC_SECRET}`),
			[]string{"agencies[1].url"}, "password"},
		{"webhook url without a host name", withAgency(`{id: police, partnership: rct, name: Police, roles: [police], channel: webhook, url: "https://:8443/mash", secretEnv: RCT_CSC_SECRET}`),
			[]string{"agencies[1].url"}, "host"},
		{"webhook without a url", withAgency(`{id: police, partnership: rct, name: Police, roles: [police], channel: webhook, secretEnv: RCT_CSC_SECRET}`),
			[]string{"agencies[1].url"}, "absolute"},
		{"webhook relative url", withAgency(`{id: police, partnership: rct, name: Police, roles: [police], channel: webhook, url: /hook, secretEnv: RCT_CSC_SECRET}`),
			[]string{"agencies[1].url"}, "absolute"},
		{"webhook without a secret", withAgency(`{id: police, partnership: rct, name: Police, roles: [police], channel: webhook, url: "https://hooks.police.example/mash"}`),
			[]string{"agencies[1].secret"}, "at least 32 bytes"},
		{"webhook secretEnv unset", withAgency(`{id: police, partnership: rct, name: Police, roles: [police], channel: webhook, url: "https://hooks.police.example/mash", secretEnv: NOT_SET}`),
			[]string{"agencies[1].secretEnv", "agencies[1].secret"}, "NOT_SET"},
		{"webhook secret too short", withAgency(`{id: police, partnership: rct, name: Police, roles: [police], channel: webhook, url: "https://hooks.police.example/mash", secretEnv: SHORT_SECRET}`),
			[]string{"agencies[1].secret"}, "at least 32 bytes"},
		{"bad email", withAgency(`{id: police, partnership: rct, name: Police, roles: [police], channel: email, email: not-an-address}`),
			[]string{"agencies[1].email"}, "plain address"},
		{"email with a display name", withAgency(`{id: police, partnership: rct, name: Police, roles: [police], channel: email, email: "PPU <ppu@police.example>"}`),
			[]string{"agencies[1].email"}, "plain address"},
		{"email missing", withAgency(`{id: police, partnership: rct, name: Police, roles: [police], channel: email}`),
			[]string{"agencies[1].email"}, ""},
		{"unknown channel", withAgency(`{id: police, partnership: rct, name: Police, roles: [police], channel: sms}`),
			[]string{"agencies[1].channel"}, "sms"},
		{"no channel", withAgency(`{id: police, partnership: rct, name: Police, roles: [police]}`),
			[]string{"agencies[1].channel"}, "webhook, nats or email"},
		{"hoursStart without hoursEnd", withAgency(`{id: police, partnership: rct, name: Police, roles: [police], channel: nats, hoursStart: "09:00"}`),
			[]string{"agencies[1].hoursStart"}, "both"},
		{"hoursEnd without hoursStart", withAgency(`{id: police, partnership: rct, name: Police, roles: [police], channel: nats, hoursEnd: "17:00"}`),
			[]string{"agencies[1].hoursStart"}, "both"},
		{"hours malformed", withAgency(`{id: police, partnership: rct, name: Police, roles: [police], channel: nats, hoursStart: 9am, hoursEnd: 5pm}`),
			[]string{"agencies[1].hoursStart"}, "9am"},
		{"hours end before start", withAgency(`{id: police, partnership: rct, name: Police, roles: [police], channel: nats, hoursStart: "17:00", hoursEnd: "09:00"}`),
			[]string{"agencies[1].hoursStart"}, "after"},
		{"outOfHours names a missing agency", withAgency(`{id: police, partnership: rct, name: Police, roles: [police], channel: nats, outOfHours: edt}`),
			[]string{"agencies[1].outOfHours"}, `"edt"`},
		{"outOfHours names an agency of another partnership", basePartnerships + "  - {id: cardiff, dutyManager: cdf-duty}\n" + baseAgencies +
			"  - {id: cdf-duty, partnership: cardiff, name: Duty, roles: [duty_manager], channel: nats, outOfHours: duty}\n",
			[]string{"agencies[1].outOfHours"}, `"cardiff"`},
		{"outOfHours names itself", withAgency(`{id: police, partnership: rct, name: Police, roles: [police], channel: nats, outOfHours: police}`),
			[]string{"agencies[1].outOfHours"}, "itself"},
		{"concurrency too high", withAgency(`{id: police, partnership: rct, name: Police, roles: [police], channel: nats, concurrency: 65}`),
			[]string{"agencies[1].concurrency"}, "between 1 and 64"},
		{"concurrency negative", withAgency(`{id: police, partnership: rct, name: Police, roles: [police], channel: nats, concurrency: -1}`),
			[]string{"agencies[1].concurrency"}, ""},
		{"duplicate agency id in a partnership", withAgency(`{id: duty, partnership: rct, name: Another duty, roles: [police], channel: nats}`),
			[]string{"agencies[1].id"}, "twice"},
		{"agency in an undeclared partnership", withAgency(`{id: police, partnership: cardiff, name: Police, roles: [police], channel: nats}`),
			[]string{"agencies[1].partnership"}, `"cardiff"`},
		{"agency with a malformed partnership", withAgency(`{id: police, partnership: "Cardiff Vale", name: Police, roles: [police], channel: nats}`),
			[]string{"agencies[1].partnership", "agencies[1].partnership"}, ""},
		{"dutyManager missing", withPartnership(`{id: rct}`),
			[]string{"partnerships[0].dutyManager"}, "required"},
		{"dutyManager names a missing agency", withPartnership(`{id: rct, dutyManager: nobody}`),
			[]string{"partnerships[0].dutyManager"}, `"nobody"`},
		{"bad partnership id", "partnerships:\n  - {id: rct, dutyManager: duty}\n  - {id: Cardiff_Vale, dutyManager: duty}\n" + baseAgencies,
			[]string{"partnerships[1].id", "partnerships[1].dutyManager"}, "lower-case"},
		{"duplicate partnership", "partnerships:\n  - {id: rct, dutyManager: duty}\n  - {id: rct, dutyManager: duty}\n" + baseAgencies,
			[]string{"partnerships[1].id"}, "twice"},
		{"consoleUrl not http(s)", withPartnership(`{id: rct, dutyManager: duty, consoleUrl: "ftp://mash.example"}`),
			[]string{"partnerships[0].consoleUrl"}, "http"},
		{"closure range reversed", withPartnership(`{id: rct, dutyManager: duty, schoolDay: {closures: ["2026-12-31..2026-12-21"]}}`),
			[]string{"partnerships[0].schoolDay"}, "ends before it starts"},
		{"closure range too long", withPartnership(`{id: rct, dutyManager: duty, schoolDay: {closures: ["2026-01-01..2026-12-31"]}}`),
			[]string{"partnerships[0].schoolDay"}, "at most 120 days"},
		{"closure date malformed", withPartnership(`{id: rct, dutyManager: duty, schoolDay: {closures: ["21/12/2026"]}}`),
			[]string{"partnerships[0].schoolDay"}, "21/12/2026"},
		{"closure range end malformed", withPartnership(`{id: rct, dutyManager: duty, schoolDay: {closures: ["2026-12-21..2027-13-01"]}}`),
			[]string{"partnerships[0].schoolDay"}, "want a date"},
		{"closure impossible date", withPartnership(`{id: rct, dutyManager: duty, schoolDay: {closures: ["2026-02-30"]}}`),
			[]string{"partnerships[0].schoolDay"}, ""},
		{"school day ends before it starts", withPartnership(`{id: rct, dutyManager: duty, schoolDay: {start: "15:15", end: "08:45"}}`),
			[]string{"partnerships[0].schoolDay"}, ""},
		{"school day start malformed", withPartnership(`{id: rct, dutyManager: duty, schoolDay: {start: "8.45"}}`),
			[]string{"partnerships[0].schoolDay"}, "start"},
		{"redAckMinutes negative", withPartnership(`{id: rct, dutyManager: duty, redAckMinutes: -5}`),
			[]string{"partnerships[0].redAckMinutes"}, "between 1 and 1440"},
		{"redAckMinutes over a day", withPartnership(`{id: rct, dutyManager: duty, redAckMinutes: 1441}`),
			[]string{"partnerships[0].redAckMinutes"}, "between 1 and 1440"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, ps := directory.Parse([]byte(tc.src), newEnv().get)
			if got := fieldsOf(ps); !sameSet(got, tc.fields) {
				t.Fatalf("problem fields = %q, want %q\nproblems: %v", got, tc.fields, ps)
			}
			if tc.reason != "" && !strings.Contains(ps[0].Reason, tc.reason) {
				t.Errorf("reason %q does not mention %q", ps[0].Reason, tc.reason)
			}
			for _, p := range ps {
				if p.Reason == "" || p.Error() != p.Field+": "+p.Reason {
					t.Errorf("problem %#v: Error() = %q", p, p.Error())
				}
			}
		})
	}
}

func TestParseLimitsAccepted(t *testing.T) {
	tests := []struct{ name, src string }{
		{"redAckMinutes 1", withPartnership(`{id: rct, dutyManager: duty, redAckMinutes: 1}`)},
		{"redAckMinutes 1440", withPartnership(`{id: rct, dutyManager: duty, redAckMinutes: 1440}`)},
		{"closure of exactly 120 days", withPartnership(`{id: rct, dutyManager: duty, schoolDay: {closures: ["2026-01-01..2026-04-30"]}}`)},
		{"closure range with spaces", withPartnership(`{id: rct, dutyManager: duty, schoolDay: {closures: [" 2026-12-21 .. 2027-01-01 "]}}`)},
		{"concurrency 64", withAgency(`{id: police, partnership: rct, name: Police, roles: [police], channel: nats, concurrency: 64}`)},
		{"webhook http to localhost", withAgency(`{id: police, partnership: rct, name: Police, roles: [police], channel: webhook, url: "http://localhost:9000/hook", secretEnv: RCT_CSC_SECRET}`)},
		{"webhook http to ::1", withAgency(`{id: police, partnership: rct, name: Police, roles: [police], channel: webhook, url: "http://[::1]:9000/hook", secretEnv: RCT_CSC_SECRET}`)},
		{"outOfHours naming an agency listed later", basePartnerships + baseAgencies +
			"  - {id: police, partnership: rct, name: Police, roles: [police], channel: nats, hoursStart: \"09:00\", hoursEnd: \"17:00\", outOfHours: police-control}\n" +
			"  - {id: police-control, partnership: rct, name: Control room, roles: [police], channel: nats}\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, ps := directory.Parse([]byte(tc.src), newEnv().get); len(ps) != 0 {
				t.Errorf("problems %v, want none", ps)
			}
		})
	}
}

func TestParseReportsAllProblemsAtOnce(t *testing.T) {
	src := `
partnerships:
  - id: rct
    redAckMinutes: 5000
    schoolDay:
      closures: ["2026-12-31..2026-12-21"]
  - id: rct
    dutyManager: nobody
agencies:
  - id: Bad_Id
    partnership: rct
    name: Bad
    roles: [police]
    channel: nats
  - id: hook
    partnership: rct
    name: Hook
    roles: [childrens_social_care]
    channel: webhook
    url: http://hooks.example.org/
    secretEnv: MISSING_SECRET
    hoursStart: "09:00"
    outOfHours: nowhere
  - id: mail
    partnership: elsewhere
    name: Mail
    channel: email
    email: nope
  - id: hook
    partnership: rct
    name: Hook again
    roles: [police]
    channel: pigeon
`
	e := newEnv()
	_, ps := directory.Parse([]byte(src), e.get)
	want := []string{
		"partnerships[0].dutyManager",
		"partnerships[0].redAckMinutes",
		"partnerships[0].schoolDay",
		"partnerships[1].id",
		"partnerships[1].dutyManager",
		"agencies[0].id",
		"agencies[1].secretEnv",
		"agencies[1].url",
		"agencies[1].secret",
		"agencies[1].hoursStart",
		"agencies[1].outOfHours",
		"agencies[2].roles",
		"agencies[2].email",
		"agencies[2].partnership",
		"agencies[3].channel",
		"agencies[3].id",
	}
	if got := fieldsOf(ps); !sameSet(got, want) {
		t.Errorf("problem fields:\n got  %q\n want %q\nproblems: %v", got, want, ps)
	}
	if !slices.Contains(e.asked, "MISSING_SECRET") {
		t.Errorf("getenv was not asked for MISSING_SECRET: %v", e.asked)
	}
}

func fieldsOf(ps []directory.Problem) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Field)
	}
	return out
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func TestParseClosures(t *testing.T) {
	got, err := directory.ParseClosures([]string{"2026-12-30..2027-01-02", "2027-02-15", "2027-02-15..2027-02-15"})
	if err != nil {
		t.Fatalf("ParseClosures: %v", err)
	}
	var s []string
	for _, d := range got {
		s = append(s, d.String())
	}
	want := []string{"2026-12-30", "2026-12-31", "2027-01-01", "2027-01-02", "2027-02-15", "2027-02-15"}
	if !slices.Equal(s, want) {
		t.Errorf("ParseClosures = %v, want %v", s, want)
	}
	if got, err := directory.ParseClosures(nil); err != nil || len(got) != 0 {
		t.Errorf("ParseClosures(nil) = %v, %v", got, err)
	}
}

// ---------------------------------------------------------------------------
// Resolving roles to agencies

func TestResolve(t *testing.T) {
	agencies := []directory.Agency{
		{ID: "example-primary", Roles: []string{"school_dsl"}, Schools: []string{"Example Primary School", "Example Infants"}},
		{ID: "other-high", Roles: []string{"school_dsl"}, Schools: []string{"Other High School"}},
		{ID: "rct-csc", Roles: []string{"childrens_social_care", "duty_manager"}},
		{ID: "rct-education-safeguarding", Roles: []string{"school_dsl"}},
		{ID: "rct-edt", Roles: []string{"childrens_social_care"}},
		{ID: "south-wales-police", Roles: []string{"police"}},
	}
	tests := []struct {
		name   string
		role   string
		school string
		want   []string
	}{
		{"police", "police", "", []string{"south-wales-police"}},
		{"role held by two agencies", "childrens_social_care", "", []string{"rct-csc", "rct-edt"}},
		{"second role of an agency", "duty_manager", "", []string{"rct-csc"}},
		{"school named is ignored for other roles", "police", "Example Primary School", []string{"south-wales-police"}},
		{"school lead covering the school wins", "school_dsl", "Example Primary School", []string{"example-primary"}},
		{"school match ignores case and spacing", "school_dsl", "  example   PRIMARY\tschool ", []string{"example-primary"}},
		{"second school on a lead's list", "school_dsl", "Example Infants", []string{"example-primary"}},
		{"no lead covers the school: general lead", "school_dsl", "Unknown Comprehensive", []string{"rct-education-safeguarding"}},
		{"no school named: general lead", "school_dsl", "", []string{"rct-education-safeguarding"}},
		{"no role match", "prevent", "", nil},
		{"no role match with school", "youth_justice", "Example Primary School", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := ids(directory.Resolve(agencies, tc.role, tc.school)); !slices.Equal(got, tc.want) {
				t.Errorf("Resolve(%q, %q) = %q, want %q", tc.role, tc.school, got, tc.want)
			}
		})
	}
	t.Run("no general lead and none covering: empty", func(t *testing.T) {
		only := []directory.Agency{{ID: "other-high", Roles: []string{"school_dsl"}, Schools: []string{"Other High School"}}}
		if got := directory.Resolve(only, directory.RoleSchoolDSL, "Example Primary School"); len(got) != 0 {
			t.Errorf("Resolve = %q, want none", ids(got))
		}
	})
	t.Run("empty directory", func(t *testing.T) {
		if got := directory.Resolve(nil, "police", ""); len(got) != 0 {
			t.Errorf("Resolve = %q, want none", ids(got))
		}
	})
}

func ids(as []directory.Agency) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.ID)
	}
	return out
}

func TestCovers(t *testing.T) {
	a := directory.Agency{Schools: []string{"Ysgol Gymraeg  Pont Sion Norton"}}
	for school, want := range map[string]bool{
		"Ysgol Gymraeg Pont Sion Norton":     true,
		"YSGOL GYMRAEG PONT SION NORTON":     true,
		" ysgol gymraeg\npont  sion norton ": true,
		"Ysgol Gymraeg Pont Sion":            false,
		"":                                   false,
	} {
		if got := a.Covers(school); got != want {
			t.Errorf("Covers(%q) = %v, want %v", school, got, want)
		}
	}
}

// ---------------------------------------------------------------------------
// Working hours

func london(t testing.TB) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("Europe/London")
	if err != nil {
		t.Fatalf("LoadLocation: %v", err)
	}
	return loc
}

func TestInHours(t *testing.T) {
	loc := london(t)
	at := func(y int, m time.Month, d, hh, mm int) time.Time { return time.Date(y, m, d, hh, mm, 0, 0, loc) }
	office := directory.Agency{ID: "rct-csc", HoursStart: "09:00", HoursEnd: "17:00"}
	always := directory.Agency{ID: "rct-edt"}
	tests := []struct {
		name string
		t    time.Time
		want bool
	}{
		{"weekday 10:00", at(2026, time.November, 10, 10, 0), true},
		{"weekday 20:00", at(2026, time.November, 10, 20, 0), false},
		{"weekday 08:59", at(2026, time.November, 10, 8, 59), false},
		{"weekday 09:00 opens", at(2026, time.November, 10, 9, 0), true},
		{"weekday 17:00 closed", at(2026, time.November, 10, 17, 0), false},
		{"saturday 10:00", at(2026, time.November, 14, 10, 0), false},
		{"sunday 10:00", at(2026, time.November, 15, 10, 0), false},
		{"christmas day 10:00", at(2026, time.December, 25, 10, 0), false},
		{"boxing day substitute 10:00", at(2026, time.December, 28, 10, 0), false},
		{"summer bank holiday 10:00", at(2026, time.August, 31, 10, 0), false},
		{"BST: 09:30 London is 08:30 UTC", time.Date(2026, time.July, 7, 8, 30, 0, 0, time.UTC), true},
		{"BST: 08:30 London is 07:30 UTC", time.Date(2026, time.July, 7, 7, 30, 0, 0, time.UTC), false},
		{"BST: 16:30 London is 15:30 UTC", time.Date(2026, time.July, 7, 15, 30, 0, 0, time.UTC), true},
		{"BST: 17:30 London is 16:30 UTC", time.Date(2026, time.July, 7, 16, 30, 0, 0, time.UTC), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := office.InHours(tc.t); got != tc.want {
				t.Errorf("InHours(%s) = %v, want %v", tc.t.In(loc), got, tc.want)
			}
			if !always.InHours(tc.t) {
				t.Errorf("agency without hours: InHours(%s) = false, want true", tc.t.In(loc))
			}
		})
	}
}

func TestHours(t *testing.T) {
	if cal, err := (directory.Agency{}).Hours(); cal != nil || err != nil {
		t.Errorf("Hours() with no hours = %v, %v; want nil, nil", cal, err)
	}
	cal, err := (directory.Agency{HoursStart: "08:00", HoursEnd: "18:30"}).Hours()
	if err != nil || cal == nil {
		t.Fatalf("Hours() = %v, %v", cal, err)
	}
	if got := cal.WorkingDayLength(); got != 10*time.Hour+30*time.Minute {
		t.Errorf("working day = %s, want 10h30m", got)
	}
}

// An agency whose hours the directory accepts must be treated as working those hours.
// hoursStart "00:00" passes Check, but calendar.Config treats a zero DayStart as "use the
// default 09:00", so InHours says a team working from midnight is closed at 08:00.
func TestInHoursFromMidnight(t *testing.T) {
	a := directory.Agency{ID: "night-team", Partnership: "rct", Name: "Night team", Roles: []string{"police"},
		Channel: directory.ChannelNATS, Concurrency: 4, HoursStart: "00:00", HoursEnd: "12:00"}
	if ps := a.Check(); len(ps) != 0 {
		return // rejecting the hours outright would also be correct
	}
	tue0800 := time.Date(2026, time.November, 10, 8, 0, 0, 0, london(t))
	if !a.InHours(tue0800) {
		t.Errorf("agency with hours 00:00-12:00 passes Check but InHours(%s) = false, want true", tue0800)
	}
}
