// Package directory is a partnership's agency directory: which teams fill which roles, how
// each is reached and when it answers, where Red goes out of hours and escalations go when no
// one acknowledges. It parses and checks the directory file and resolves a rule pack's agency
// roles to teams; storing it is the notify store's job.
package directory

import (
	"errors"
	"fmt"
	"net/mail"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/mash-hub/mash/pkg/calendar"
	"github.com/mash-hub/mash/pkg/events"
	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
	"github.com/mash-hub/mash/services/notify/channel"
)

// DefaultLawfulBasis is stated on every share unless the partnership configures another.
const DefaultLawfulBasis = "UK GDPR Art 6(1)(e) (public task); special category data: DPA 2018 Sch 1 para 18 (safeguarding of children and individuals at risk)"

// RoleDutyManager is the role that receives escalations.
const RoleDutyManager = "duty_manager"

// RoleSchoolDSL is the role Operation Encompass notifies.
const RoleSchoolDSL = "school_dsl"

// Channel kinds.
const (
	ChannelWebhook = channel.KindWebhook
	ChannelNATS    = channel.KindNATS
	ChannelEmail   = channel.KindEmail
)

// Partnership holds a partnership's notification settings.
type Partnership struct {
	ID          string `yaml:"id"`
	LawfulBasis string `yaml:"lawfulBasis"`
	// DutyManager is the agency id escalations go to.
	DutyManager string `yaml:"dutyManager"`
	// ConsoleURL is the base of the secure links in emails: ConsoleURL + "/referrals/" + id.
	ConsoleURL string    `yaml:"consoleUrl"`
	SchoolDay  SchoolDay `yaml:"schoolDay"`
	// RedAckMinutes is how long a Red notification may go unacknowledged. Default 60.
	RedAckMinutes int `yaml:"redAckMinutes"`
	// AckDeadlines set acknowledgement deadlines per agency role and RAG, before
	// DefaultAckDeadlines (first match wins).
	AckDeadlines []AckDeadline `yaml:"ackDeadlines"`
}

// SchoolDay is the partnership's school calendar: the day's hours and the closure days
// (holidays, training days) on top of bank holidays and weekends.
type SchoolDay struct {
	Start string `yaml:"start"`
	End   string `yaml:"end"`
	// Closures are dates ("2026-12-21") or inclusive ranges ("2026-12-21..2027-01-01").
	Closures []string `yaml:"closures"`
}

// MaxConcurrency is the most attempts in flight to one agency that the directory allows.
const MaxConcurrency = channel.MaxConcurrency

// DefaultConcurrency is the attempts in flight to an agency whose entry sets none.
const DefaultConcurrency = 4

// Agency is one team in the directory.
type Agency struct {
	ID          string `yaml:"id"`
	Partnership string `yaml:"partnership"`
	Name        string `yaml:"name"`
	// NameCy is the team's name in Welsh; empty when it has none.
	NameCy string `yaml:"nameCy"`
	// Language is what the team works in: "en", "cy" or "both" (bilingual, Welsh first).
	// Empty means English. Every message to the team carries its reasons and names in it.
	Language string   `yaml:"language"`
	Roles    []string `yaml:"roles"`
	Channel  string   `yaml:"channel"`
	URL      string   `yaml:"url"`
	Email    string   `yaml:"email"`
	// SecretEnv names the environment variable holding the webhook secret (hex), so the
	// file never holds it.
	SecretEnv   string   `yaml:"secretEnv"`
	HoursStart  string   `yaml:"hoursStart"`
	HoursEnd    string   `yaml:"hoursEnd"`
	OutOfHours  string   `yaml:"outOfHours"`
	Concurrency int      `yaml:"concurrency"`
	Schools     []string `yaml:"schools"`

	// Secret is the webhook key, from SecretEnv or the API; never read from the file itself.
	Secret []byte `yaml:"-"`
}

// File is the directory file: partnerships and their agencies.
type File struct {
	Partnerships []Partnership `yaml:"partnerships"`
	Agencies     []Agency      `yaml:"agencies"`
}

// Agency languages, as the directory spells them.
const (
	LanguageEnglish   = "en"
	LanguageWelsh     = "cy"
	LanguageBilingual = "both"
)

// Languages are the languages of a's messages in the order their texts come: Welsh first
// for a bilingual team, as hubs in Wales write.
func (a Agency) Languages() []string {
	switch a.Language {
	case LanguageWelsh:
		return []string{LanguageWelsh}
	case LanguageBilingual:
		return []string{LanguageWelsh, LanguageEnglish}
	}
	return []string{LanguageEnglish}
}

// Subject is the NATS subject an agency on the bus receives on.
func Subject(agencyID string) string { return events.Fill(eventsv1.SubjectNotifyAny, agencyID) }

// MinSecretBytes is the shortest webhook secret accepted: the channel's minimum.
const MinSecretBytes = channel.MinSecretLen

var idPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)
var rolePattern = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)

// Problem is one thing wrong with a directory entry, naming the field.
type Problem struct {
	Field  string
	Reason string
}

func (p Problem) Error() string { return p.Field + ": " + p.Reason }

// Parse reads a directory file and checks every entry; secrets named by SecretEnv are read
// through getenv. All problems are returned at once.
func Parse(src []byte, getenv func(string) string) (File, []Problem) {
	var f File
	dec := yaml.NewDecoder(strings.NewReader(string(src)))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return File{}, []Problem{{Field: "file", Reason: err.Error()}}
	}
	var ps []Problem
	seenP := map[string]bool{}
	for i := range f.Partnerships {
		p := &f.Partnerships[i]
		p.Normalise()
		for _, pr := range p.Check() {
			ps = append(ps, Problem{Field: fmt.Sprintf("partnerships[%d].%s", i, pr.Field), Reason: pr.Reason})
		}
		if seenP[p.ID] {
			ps = append(ps, Problem{Field: fmt.Sprintf("partnerships[%d].id", i), Reason: fmt.Sprintf("%q appears twice", p.ID)})
		}
		seenP[p.ID] = true
	}
	seenA := map[string]bool{}
	for i := range f.Agencies {
		a := &f.Agencies[i]
		a.Normalise()
		if a.SecretEnv != "" {
			if v := getenv(a.SecretEnv); v != "" {
				a.Secret = []byte(v)
			} else {
				ps = append(ps, Problem{Field: fmt.Sprintf("agencies[%d].secretEnv", i), Reason: fmt.Sprintf("environment variable %s is not set", a.SecretEnv)})
			}
		}
		for _, pr := range a.Check() {
			ps = append(ps, Problem{Field: fmt.Sprintf("agencies[%d].%s", i, pr.Field), Reason: pr.Reason})
		}
		key := a.Partnership + "/" + a.ID
		if seenA[key] {
			ps = append(ps, Problem{Field: fmt.Sprintf("agencies[%d].id", i), Reason: fmt.Sprintf("%q appears twice in partnership %q", a.ID, a.Partnership)})
		}
		seenA[key] = true
		if !seenP[a.Partnership] {
			ps = append(ps, Problem{Field: fmt.Sprintf("agencies[%d].partnership", i), Reason: fmt.Sprintf("%q is not among the file's partnerships", a.Partnership)})
		}
	}
	for i, p := range f.Partnerships {
		if p.DutyManager != "" && !seenA[p.ID+"/"+p.DutyManager] {
			ps = append(ps, Problem{Field: fmt.Sprintf("partnerships[%d].dutyManager", i), Reason: fmt.Sprintf("agency %q is not in partnership %q", p.DutyManager, p.ID)})
		}
	}
	for i, a := range f.Agencies {
		if a.OutOfHours != "" && !seenA[a.Partnership+"/"+a.OutOfHours] {
			ps = append(ps, Problem{Field: fmt.Sprintf("agencies[%d].outOfHours", i), Reason: fmt.Sprintf("agency %q is not in partnership %q", a.OutOfHours, a.Partnership)})
		}
	}
	return f, ps
}

// Normalise fills defaults.
func (p *Partnership) Normalise() {
	p.ID = strings.TrimSpace(p.ID)
	if strings.TrimSpace(p.LawfulBasis) == "" {
		p.LawfulBasis = DefaultLawfulBasis
	}
	if p.SchoolDay.Start == "" {
		p.SchoolDay.Start = "08:45"
	}
	if p.SchoolDay.End == "" {
		p.SchoolDay.End = "15:15"
	}
	if p.RedAckMinutes == 0 {
		p.RedAckMinutes = 60
	}
	p.ConsoleURL = strings.TrimRight(p.ConsoleURL, "/")
}

// Check returns what is wrong with p, fields relative to p.
func (p Partnership) Check() []Problem {
	var ps []Problem
	if !idPattern.MatchString(p.ID) {
		ps = append(ps, Problem{"id", "use 1-63 lower-case letters, digits and hyphens"})
	}
	if p.DutyManager == "" {
		ps = append(ps, Problem{"dutyManager", "is required: escalations need somewhere to go"})
	}
	if p.ConsoleURL != "" {
		if u, err := url.Parse(p.ConsoleURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			ps = append(ps, Problem{"consoleUrl", "must be an absolute http(s) URL"})
		}
	}
	if p.RedAckMinutes < 1 || p.RedAckMinutes > 24*60 {
		ps = append(ps, Problem{"redAckMinutes", "must be between 1 and 1440"})
	}
	for i, d := range p.AckDeadlines {
		if err := d.Check(); err != nil {
			ps = append(ps, Problem{fmt.Sprintf("ackDeadlines[%d]", i), err.Error()})
		}
	}
	if strings.TrimSpace(p.SchoolDay.Start) == "00:00" {
		ps = append(ps, Problem{"schoolDay", "start 00:00 is not a school day's start"})
	} else if _, err := p.SchoolCalendar(); err != nil {
		ps = append(ps, Problem{"schoolDay", err.Error()})
	}
	return ps
}

// SchoolCalendar is the partnership's school-day calendar: weekdays that are neither bank
// holidays nor closures, from the school day's start to its end, Europe/London.
func (p Partnership) SchoolCalendar() (*calendar.Calendar, error) {
	start, err := calendar.ParseClockTime(p.SchoolDay.Start)
	if err != nil {
		return nil, fmt.Errorf("start: %w", err)
	}
	end, err := calendar.ParseClockTime(p.SchoolDay.End)
	if err != nil {
		return nil, fmt.Errorf("end: %w", err)
	}
	closures, err := ParseClosures(p.SchoolDay.Closures)
	if err != nil {
		return nil, fmt.Errorf("closures: %w", err)
	}
	return calendar.New(calendar.Config{DayStart: start, DayEnd: end, ExtraHolidays: closures})
}

// maxClosureDays bounds one closure range, so a typo in a year cannot make a decade of days.
const maxClosureDays = 120

// ParseClosures expands dates and inclusive date ranges ("2026-12-21..2027-01-01").
func ParseClosures(items []string) ([]calendar.Date, error) {
	var out []calendar.Date
	for _, it := range items {
		from, to, isRange := strings.Cut(strings.TrimSpace(it), "..")
		a, err := parseDate(from)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", it, err)
		}
		b := a
		if isRange {
			if b, err = parseDate(to); err != nil {
				return nil, fmt.Errorf("%q: %w", it, err)
			}
		}
		if b.Before(a) {
			return nil, fmt.Errorf("%q: the range ends before it starts", it)
		}
		n := 0
		for d := a; !d.After(b); d = d.AddDays(1) {
			if n++; n > maxClosureDays {
				return nil, fmt.Errorf("%q: a closure may span at most %d days", it, maxClosureDays)
			}
			out = append(out, d)
		}
	}
	return out, nil
}

func parseDate(s string) (calendar.Date, error) {
	t, err := time.Parse(time.DateOnly, strings.TrimSpace(s))
	if err != nil {
		return calendar.Date{}, errors.New("want a date such as 2026-12-21")
	}
	return calendar.Date{Year: t.Year(), Month: t.Month(), Day: t.Day()}, nil
}

// Normalise trims and fills defaults.
func (a *Agency) Normalise() {
	a.ID = strings.TrimSpace(a.ID)
	a.Partnership = strings.TrimSpace(a.Partnership)
	a.Channel = strings.ToLower(strings.TrimSpace(a.Channel))
	a.NameCy = strings.TrimSpace(a.NameCy)
	a.Language = strings.ToLower(strings.TrimSpace(a.Language))
	if a.Language == "" {
		a.Language = LanguageEnglish
	}
	if a.Concurrency == 0 {
		a.Concurrency = DefaultConcurrency
	}
	for i, r := range a.Roles {
		a.Roles[i] = strings.TrimSpace(r)
	}
	slices.Sort(a.Roles)
	a.Roles = slices.Compact(a.Roles)
}

// Check returns what is wrong with a, fields relative to a. Secrets are checked only for
// length; webhook agencies without one are refused.
func (a Agency) Check() []Problem {
	var ps []Problem
	if !idPattern.MatchString(a.ID) {
		ps = append(ps, Problem{"id", "use 1-63 lower-case letters, digits and hyphens (it is also a NATS subject token)"})
	}
	if !idPattern.MatchString(a.Partnership) {
		ps = append(ps, Problem{"partnership", "use 1-63 lower-case letters, digits and hyphens"})
	}
	if strings.TrimSpace(a.Name) == "" || len(a.Name) > 200 {
		ps = append(ps, Problem{"name", "is required, at most 200 characters"})
	}
	if len(a.NameCy) > 200 {
		ps = append(ps, Problem{"nameCy", "at most 200 characters"})
	}
	switch a.Language {
	case LanguageEnglish, LanguageWelsh, LanguageBilingual:
		if a.Language != LanguageEnglish && a.NameCy == "" {
			ps = append(ps, Problem{"nameCy", "is required for a team that works in Welsh: its messages name it in Welsh"})
		}
	default:
		ps = append(ps, Problem{"language", fmt.Sprintf("%q: use en, cy or both (bilingual, Welsh first)", a.Language)})
	}
	if len(a.Roles) == 0 {
		ps = append(ps, Problem{"roles", "name at least one role, e.g. police or childrens_social_care"})
	}
	for _, r := range a.Roles {
		if !rolePattern.MatchString(r) {
			ps = append(ps, Problem{"roles", fmt.Sprintf("%q: use lower-case letters, digits and underscores, as rule packs do", r)})
		}
	}
	switch a.Channel {
	case ChannelWebhook:
		// The channel's own rule, so an entry accepted here is one it will send to.
		if _, err := channel.CheckURL("webhook URL", a.URL); err != nil {
			ps = append(ps, Problem{"url", err.Error()})
		}
		if len(a.Secret) < MinSecretBytes {
			ps = append(ps, Problem{"secret", fmt.Sprintf("a webhook needs a secret of at least %d bytes (secretEnv in the file, or rotateSecret through the API)", MinSecretBytes)})
		}
	case ChannelEmail:
		if _, err := mail.ParseAddress(a.Email); err != nil || strings.ContainsAny(a.Email, "<> ") {
			ps = append(ps, Problem{"email", "must be a plain address such as duty@team.example"})
		}
	case ChannelNATS:
	default:
		ps = append(ps, Problem{"channel", fmt.Sprintf("%q: use webhook, nats or email", a.Channel)})
	}
	if (a.HoursStart == "") != (a.HoursEnd == "") {
		ps = append(ps, Problem{"hoursStart", "give both hoursStart and hoursEnd, or neither for around the clock"})
	} else if a.HoursStart != "" {
		if a.HoursStart == "00:00" {
			// The working-time calendar reads a 00:00 start as "not set"; a team answering
			// from midnight answers around the clock here, so say that instead.
			ps = append(ps, Problem{"hoursStart", "00:00 is not supported: leave hoursStart and hoursEnd empty for a team that answers around the clock"})
		} else if _, err := a.Hours(); err != nil {
			ps = append(ps, Problem{"hoursStart", err.Error()})
		}
	}
	if a.OutOfHours == a.ID && a.ID != "" {
		ps = append(ps, Problem{"outOfHours", "cannot be the agency itself"})
	}
	if a.Concurrency < 1 || a.Concurrency > MaxConcurrency {
		ps = append(ps, Problem{"concurrency", fmt.Sprintf("must be between 1 and %d", MaxConcurrency)})
	}
	if len(ps) == 0 {
		// The channel checks again on every send. An entry this file accepts must pass that
		// too, or its notifications would fail at delivery instead of being refused here.
		if err := channel.ValidateEndpoint(a.Endpoint()); err != nil {
			field := map[string]string{ChannelWebhook: "url", ChannelEmail: "email", ChannelNATS: "id"}[a.Channel]
			ps = append(ps, Problem{field, err.Error()})
		}
	}
	return ps
}

// Endpoint is where notifications to a are sent.
func (a Agency) Endpoint() channel.Endpoint {
	return channel.Endpoint{Kind: a.Channel, URL: a.URL, Subject: Subject(a.ID), Address: a.Email, Secret: a.Secret}
}

// Hours is the agency's working-hours calendar, or nil when it answers around the clock.
func (a Agency) Hours() (*calendar.Calendar, error) {
	if a.HoursStart == "" {
		return nil, nil
	}
	start, err := calendar.ParseClockTime(a.HoursStart)
	if err != nil {
		return nil, err
	}
	end, err := calendar.ParseClockTime(a.HoursEnd)
	if err != nil {
		return nil, err
	}
	return calendar.New(calendar.Config{DayStart: start, DayEnd: end})
}

// InHours reports whether the agency answers at t.
func (a Agency) InHours(t time.Time) bool {
	cal, err := a.Hours()
	if err != nil || cal == nil {
		return true
	}
	return cal.IsWorkingTime(t)
}

// Covers reports whether a school lead covers the named school (case and spacing ignored).
func (a Agency) Covers(school string) bool {
	want := foldSchool(school)
	for _, s := range a.Schools {
		if foldSchool(s) == want {
			return true
		}
	}
	return false
}

func foldSchool(s string) string { return strings.Join(strings.Fields(strings.ToLower(s)), " ") }

// Resolve picks the agencies of a partnership that fill role. For school_dsl with a school
// named, the lead covering that school wins; otherwise leads without a school list (a local
// authority's education safeguarding team) stand in. Agencies keep the order given (the
// store lists them by id).
func Resolve(agencies []Agency, role, school string) []Agency {
	var all []Agency
	for _, a := range agencies {
		if slices.Contains(a.Roles, role) {
			all = append(all, a)
		}
	}
	if role != RoleSchoolDSL {
		return all
	}
	var covering, general []Agency
	for _, a := range all {
		switch {
		case len(a.Schools) == 0:
			general = append(general, a)
		case school != "" && a.Covers(school):
			covering = append(covering, a)
		}
	}
	if len(covering) > 0 {
		return covering
	}
	return general
}
