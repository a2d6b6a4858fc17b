// Package share decides what each agency may be told: the proportionate summary for its role,
// the referrer's identity only where the referral allows it, and the lawful basis and consent
// recorded with every share. It also holds the Operation Encompass rule. Everything here is
// pure, so the policy can be read and tested on its own.
package share

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/mash-hub/mash/pkg/calendar"
	intakev1 "github.com/mash-hub/mash/proto/mash/intake/v1"
	notifyv1 "github.com/mash-hub/mash/proto/mash/notify/v1"
)

// Field groups a summary may include. Share records list the groups sent.
const (
	FieldDecision   = "decision"
	FieldChild      = "child.identity"
	FieldNHSNumber  = "child.nhsNumber"
	FieldAddress    = "child.address"
	FieldSchool     = "child.school"
	FieldLanguage   = "child.language"
	FieldCategories = "concerns.categories"
	FieldSummaries  = "concerns.summaries"
	FieldHousehold  = "household"
	FieldNarrative  = "narrative"
	FieldReferrer   = "referrer"
	FieldConsent    = "consent"
	// FieldResearch is an information request's question, deadline and how to answer.
	FieldResearch = "research"
	// FieldCaseOutcome is how the hub closed the referral.
	FieldCaseOutcome = "case.outcome"
	// FieldDisagreement is a professional disagreement as its stage owner needs it: who
	// disagrees, why, the stage and its deadline.
	FieldDisagreement = "disagreement"
	// FieldLeadProfessional is who leads the work with a child or family group: agency, team,
	// person and scope.
	FieldLeadProfessional = "leadProfessional"
)

var (
	full       = []string{FieldDecision, FieldChild, FieldNHSNumber, FieldAddress, FieldSchool, FieldLanguage, FieldCategories, FieldSummaries, FieldHousehold, FieldNarrative, FieldReferrer, FieldConsent}
	health     = []string{FieldDecision, FieldChild, FieldNHSNumber, FieldAddress, FieldLanguage, FieldCategories, FieldSummaries, FieldHousehold, FieldConsent}
	education  = []string{FieldDecision, FieldChild, FieldSchool, FieldLanguage, FieldCategories, FieldConsent}
	family     = []string{FieldDecision, FieldChild, FieldAddress, FieldLanguage, FieldCategories, FieldHousehold, FieldConsent}
	specialist = []string{FieldDecision, FieldChild, FieldAddress, FieldCategories, FieldSummaries, FieldConsent}
	minimal    = []string{FieldDecision, FieldChild, FieldCategories, FieldConsent}
	// The referring agency already holds the referral: it is told the outcome, nothing more.
	referrerFeedback = []string{FieldDecision}
)

// researchBase is what every agency asked a MASH research question receives: the question
// (with its deadline and how to answer), the child's identity (name, date of birth, or unborn
// and due date) so it can find its own records, and the consent position so it knows on what
// basis it is asked to share back. The reference and referral id are on every message. It
// gets no decision, concerns, household, narrative or referrer: it is asked what it knows,
// not told what the hub knows. Whatever context the question needs, hub staff chose to write
// into it.
var researchBase = []string{FieldResearch, FieldChild, FieldConsent}

// researchIdentifiers are record-matching identifiers an agency also gets for research, but
// only where its own role's summary already includes them (a health agency finds records by
// NHS number, a school by the school, police and housing by address): matching on name and
// date of birth alone risks answering about the wrong child, and no agency learns an
// identifier its role would not otherwise see.
var researchIdentifiers = []string{FieldNHSNumber, FieldAddress, FieldSchool}

// ResearchFields returns the field groups of an information request to an agency filling
// roles: researchBase plus each of researchIdentifiers some role's summary includes. An agency
// outside the directory (roles unknown) gets researchBase alone.
func ResearchFields(roles []string) []string {
	out := slices.Clone(researchBase)
	for _, id := range researchIdentifiers {
		for _, r := range roles {
			f, ok := roleFields[r]
			if !ok {
				f = minimal
			}
			if slices.Contains(f, id) {
				out = append(out, id)
				break
			}
		}
	}
	return out
}

// roleFields is the proportionate summary of each role rule packs name. A role not listed
// gets the minimal summary; adding a role is a line here and a test.
var roleFields = map[string][]string{
	"childrens_social_care":            full,
	"police":                           full,
	"marac_coordinator":                full,
	"duty_manager":                     full,
	"health_visitor":                   health,
	"midwifery":                        health,
	"school_nursing":                   health,
	"gp":                               health,
	"paediatrics":                      health,
	"camhs":                            health,
	"adult_mental_health":              health,
	"adult_learning_disability":        health,
	"substance_misuse_services":        health,
	"school_dsl":                       education,
	"education_welfare":                education,
	"early_help":                       family,
	"third_sector_family_support":      family,
	"young_carers_service":             family,
	"housing":                          family,
	"domestic_abuse_services":          family,
	"exploitation_panel":               specialist,
	"national_referral_mechanism":      specialist,
	"prevent":                          specialist,
	"youth_justice":                    specialist,
	"harmful_sexual_behaviour_service": specialist,
}

// FieldsFor returns the field groups an agency in role may receive for a notification kind.
func FieldsFor(role string, kind notifyv1.NotificationKind) []string {
	switch kind {
	case notifyv1.NotificationKind_RECEIPT, notifyv1.NotificationKind_OUTCOME:
		return slices.Clone(referrerFeedback)
	case notifyv1.NotificationKind_CLOSURE:
		return []string{FieldCaseOutcome}
	case notifyv1.NotificationKind_WITHDRAWAL:
		return nil
	case notifyv1.NotificationKind_ESCALATION:
		return slices.Clone(full)
	case notifyv1.NotificationKind_ENCOMPASS:
		return slices.Clone(education)
	case notifyv1.NotificationKind_INFORMATION_REQUEST:
		return ResearchFields([]string{role})
	case notifyv1.NotificationKind_DISAGREEMENT:
		// A stage owner works the disagreement in the console, where the case is on the
		// audit trail; the notice itself carries the disagreement and the reference alone.
		return []string{FieldDisagreement}
	case notifyv1.NotificationKind_LEAD_PROFESSIONAL:
		// The lead agency was told the case on the decision, in its role's summary, or reads
		// it through the link: the notice says who leads, and nothing of the child.
		return []string{FieldLeadProfessional}
	}
	if f, ok := roleFields[role]; ok {
		return slices.Clone(f)
	}
	return slices.Clone(minimal)
}

// leadOrder is who leads a multi-agency response when several are named.
var leadOrder = []string{"childrens_social_care", "police", "early_help", "health_visitor", "school_dsl"}

// LeadAgency names the role that leads: the first of leadOrder named, else the first named.
func LeadAgency(roles []string) string {
	for _, r := range leadOrder {
		if slices.Contains(roles, r) {
			return r
		}
	}
	if len(roles) > 0 {
		return roles[0]
	}
	return ""
}

// Decision is the part of a threshold decision a message carries.
type Decision struct {
	ID, Level, RAG, Pathway, Reason, Status string
	Version                                 int64
	Roles                                   []string
	ResponseDue                             time.Time
	// Purpose names the rules that put the agency's role on the decision (for the record).
	RuleIDs []string
	// ReasonCy is the rule pack's Welsh reason; empty for an English-only pack, or when
	// Reason is a practitioner's own words (ReasonAsWritten).
	ReasonCy string
	// ReasonAsWritten says Reason is a person's own words (an override's reason), sent as
	// written in whatever language they wrote it.
	ReasonAsWritten bool
}

// Input is everything a message is built from.
type Input struct {
	NotificationID string
	Kind           notifyv1.NotificationKind
	Referral       *intakev1.Referral
	Agency, Role   string
	Partnership    PartnershipBasis
	Decision       *Decision
	CreatedAt      time.Time
	AckDue         time.Time
	Link           string
	AboutID        string
	AboutAgency    string
	Note           string
	IncidentAt     time.Time
	// AgencyRoles are the roles the agency fills in the directory (for INFORMATION_REQUEST,
	// whose fields follow the agency's roles rather than Role).
	AgencyRoles []string
	// Research is the question, for INFORMATION_REQUEST.
	Research *Research
	// CaseOutcome is how the hub closed the referral, for CLOSURE.
	CaseOutcome string
	// Basis, when set, is the consent position and lawful basis the share rests on now (a
	// consent recorded after the referral, a manager's authorisation to share without it,
	// immediate danger), instead of the referral's own consent.
	Basis *Basis
	// Disagreement is the disagreement, for DISAGREEMENT.
	Disagreement *Disagreement
	// Languages are the agency's, in the order its texts come (directory.Agency.Languages):
	// ["en"] when empty.
	Languages []string
	// Encompass says an ACTION also carries the Operation Encompass notice to the same
	// school (one message per agency per decision); IncidentAt is then the incident's time.
	Encompass bool
	// Lead is who leads, for LEAD_PROFESSIONAL.
	Lead *Lead
}

// Lead is the lead professional an agency is told it provides.
type Lead struct {
	Agency, Team, Person string
	// Scope is triage's scope name (LEAD_FOR_CHILD, LEAD_FOR_FAMILY_GROUP).
	Scope      string
	NamedAt    time.Time
	GroupCases int32
}

// Basis is what a share rests on when it is not the referral's own consent.
type Basis struct {
	ConsentStatus, ConsentReason string
	// LawfulBasis replaces the partnership's when set (a manager's authorisation names one).
	LawfulBasis string
}

// Disagreement is a professional disagreement as the owner of the stage it reached needs it.
type Disagreement struct {
	ID             string
	RaisedByAgency string
	Reason         string
	// Stage is triage's stage name (PRACTITIONER, TEAM_MANAGER, ...).
	Stage           string
	StageDue        time.Time
	PreviousOutcome string
	RaisedAt        time.Time
	// Resolution and ResolvedAt are set once it was resolved (for the raising agency).
	Resolution string
	ResolvedAt time.Time
}

// Research is an information request as the agency needs it.
type Research struct {
	RequestID string
	// Agency is the agency the hub addressed (for the record; the message names its own).
	Agency   string
	Question string
	Due      time.Time
	// AnswerPath is the API path to POST the answer to; AnswerSubject the agency's NATS
	// subject for answers, empty when the agency is not on the bus.
	AnswerPath, AnswerSubject string
}

// PartnershipBasis is the partnership's stated lawful basis.
type PartnershipBasis struct {
	LawfulBasis string
}

// Built is a message ready to send, with its share record.
type Built struct {
	Body             []byte
	SHA256           string
	Fields           []string
	Purpose          string
	LawfulBasis      string
	ConsentStatus    string
	ConsentReason    string
	ReferrerWithheld bool
}

// Build makes the agency's message: only the role's fields are filled, the referrer is
// withheld where asked, and the share record says why and on what basis.
func Build(in Input) (Built, error) {
	ref := in.Referral
	sub := ref.GetSubmission()
	fields := FieldsFor(in.Role, in.Kind)
	if in.Kind == notifyv1.NotificationKind_INFORMATION_REQUEST {
		if in.Research == nil {
			return Built{}, fmt.Errorf("notification %s: an information request needs its question", in.NotificationID)
		}
		fields = ResearchFields(in.AgencyRoles)
	}
	has := func(f string) bool { return slices.Contains(fields, f) }
	consent := sub.GetConsent()
	b := Built{
		LawfulBasis:   in.Partnership.LawfulBasis,
		ConsentStatus: consent.GetStatus().String(),
		ConsentReason: consent.GetReason(),
		Purpose:       purpose(in),
	}
	if in.Basis != nil {
		b.ConsentStatus, b.ConsentReason = in.Basis.ConsentStatus, in.Basis.ConsentReason
		if in.Basis.LawfulBasis != "" {
			b.LawfulBasis = in.Basis.LawfulBasis
		}
	}
	m := &notifyv1.AgencyMessage{
		NotificationId: in.NotificationID, Kind: in.Kind, Reference: ref.GetReference(), ReferralId: ref.GetId(),
		Partnership: ref.GetPartnership(), Agency: in.Agency, Role: in.Role, CreatedAt: timestamppb.New(in.CreatedAt),
		Link: in.Link, AboutNotificationId: in.AboutID, AboutAgency: in.AboutAgency, Note: in.Note,
		Languages: languages(in.Languages),
	}
	if !in.AckDue.IsZero() {
		m.AcknowledgeBy = timestamppb.New(in.AckDue)
	}
	if !in.IncidentAt.IsZero() {
		m.IncidentAt = timestamppb.New(in.IncidentAt)
	}
	if has(FieldCaseOutcome) {
		m.CaseOutcome = in.CaseOutcome
	}
	if has(FieldDecision) && in.Decision != nil {
		d := in.Decision
		m.Decision = &notifyv1.DecisionSummary{DecisionId: d.ID, Version: d.Version, Level: d.Level, Rag: d.RAG,
			Pathway: d.Pathway, LeadAgency: LeadAgency(d.Roles), Status: d.Status}
		localiseDecision(m.Decision, d, m.Languages)
		if !d.ResponseDue.IsZero() {
			m.Decision.ResponseDue = timestamppb.New(d.ResponseDue)
		}
	}
	child := sub.GetChild()
	if has(FieldChild) {
		m.Child = &notifyv1.ChildSummary{GivenName: child.GetGivenName(), FamilyName: child.GetFamilyName(),
			DateOfBirth: child.GetDateOfBirth(), Unborn: child.GetUnborn(), DueDate: child.GetDueDate()}
		if has(FieldNHSNumber) {
			m.Child.NhsNumber = child.GetNhsNumber()
		}
		if has(FieldSchool) {
			m.Child.School = child.GetSchool()
		}
		if has(FieldLanguage) {
			m.Child.PreferredLanguage = child.GetPreferredLanguage()
		}
		if has(FieldAddress) {
			a := child.GetAddress()
			m.Child.Address = joinNonEmpty(", ", a.GetLine1(), a.GetLine2(), a.GetTown(), a.GetCounty())
			m.Child.Postcode = a.GetPostcode()
		}
	}
	if has(FieldCategories) {
		for _, c := range sub.GetConcerns() {
			cs := &notifyv1.ConcernSummary{Category: c.GetCategory().String(), ObservedAt: c.GetObservedAt()}
			if has(FieldSummaries) {
				cs.Summary = c.GetSummary()
			}
			m.Concerns = append(m.Concerns, cs)
		}
	}
	if has(FieldHousehold) {
		for _, h := range sub.GetHousehold() {
			m.Household = append(m.Household, &notifyv1.PersonSummary{Relationship: h.GetRelationship().String(),
				GivenName: h.GetGivenName(), FamilyName: h.GetFamilyName(), LivesWithChild: h.GetLivesWithChild()})
		}
	}
	if has(FieldResearch) && in.Research != nil {
		r := in.Research
		m.InformationRequest = &notifyv1.InformationRequestSummary{RequestId: r.RequestID, Question: r.Question,
			AnswerPath: r.AnswerPath, AnswerSubject: r.AnswerSubject}
		if !r.Due.IsZero() {
			m.InformationRequest.Due = timestamppb.New(r.Due)
		}
	}
	if has(FieldDisagreement) && in.Disagreement != nil {
		d := in.Disagreement
		m.Disagreement = &notifyv1.DisagreementSummary{DisagreementId: d.ID, RaisedByAgency: d.RaisedByAgency, Reason: d.Reason,
			Stage: d.Stage, PreviousOutcome: d.PreviousOutcome}
		if !d.StageDue.IsZero() {
			m.Disagreement.StageDue = timestamppb.New(d.StageDue)
		}
		if !d.RaisedAt.IsZero() {
			m.Disagreement.RaisedAt = timestamppb.New(d.RaisedAt)
		}
		if d.Resolution != "" {
			m.Disagreement.Resolution = d.Resolution
			m.Disagreement.ResolvedAt = timestamppb.New(d.ResolvedAt)
		}
	}
	if has(FieldLeadProfessional) && in.Lead != nil {
		l := in.Lead
		m.LeadProfessional = &notifyv1.LeadProfessionalSummary{Agency: l.Agency, Team: l.Team, Person: l.Person, Scope: l.Scope,
			GroupCases: l.GroupCases}
		if !l.NamedAt.IsZero() {
			m.LeadProfessional.NamedAt = timestamppb.New(l.NamedAt)
		}
	}
	if has(FieldNarrative) {
		m.Narrative = sub.GetNarrative()
	}
	if has(FieldReferrer) {
		r := sub.GetReferrer()
		m.Referrer = &notifyv1.ReferrerSummary{Agency: ref.GetAgency()}
		if r.GetKeepIdentityFromFamily() {
			m.Referrer.IdentityWithheld = true
			b.ReferrerWithheld = true
		} else {
			m.Referrer.Name, m.Referrer.Role, m.Referrer.Phone, m.Referrer.Email = r.GetName(), r.GetRole(), r.GetPhone(), r.GetEmail()
		}
	}
	if has(FieldConsent) {
		m.Share = &notifyv1.ShareBasis{ConsentStatus: b.ConsentStatus, ConsentReason: b.ConsentReason}
	} else {
		m.Share = &notifyv1.ShareBasis{}
	}
	m.Share.LawfulBasis, m.Share.Purpose, m.Share.Fields = b.LawfulBasis, b.Purpose, fields
	body, err := protojson.MarshalOptions{}.Marshal(m)
	if err != nil {
		return Built{}, fmt.Errorf("encode notification %s: %w", in.NotificationID, err)
	}
	sum := sha256.Sum256(body)
	b.Body, b.SHA256, b.Fields = body, hex.EncodeToString(sum[:]), fields
	return b, nil
}

func purpose(in Input) string {
	d := in.Decision
	switch in.Kind {
	case notifyv1.NotificationKind_ACTION:
		if d != nil {
			s := fmt.Sprintf("decision %s v%d (%s %s) names %s", d.ID, d.Version, d.Level, d.RAG, in.Role)
			if len(d.RuleIDs) > 0 {
				s += " by rule " + strings.Join(d.RuleIDs, ", ")
			}
			if in.Encompass {
				s += "; with the Operation Encompass notice (police-attended domestic abuse incident, child of school age)"
			}
			return s
		}
	case notifyv1.NotificationKind_WITHDRAWAL:
		return fmt.Sprintf("%s withdrawn from %s: %s", in.AboutID, in.Role, in.Note)
	case notifyv1.NotificationKind_ESCALATION:
		return fmt.Sprintf("notification %s to %s was not acknowledged in time", in.AboutID, in.AboutAgency)
	case notifyv1.NotificationKind_RECEIPT:
		return "acknowledging receipt to the referring agency"
	case notifyv1.NotificationKind_OUTCOME:
		return "telling the referring agency the decision a practitioner made on its referral"
	case notifyv1.NotificationKind_CLOSURE:
		return "telling the referring agency how the hub closed its referral"
	case notifyv1.NotificationKind_ENCOMPASS:
		return "Operation Encompass: police-attended domestic abuse incident, child of school age"
	case notifyv1.NotificationKind_INFORMATION_REQUEST:
		if in.Research != nil {
			return fmt.Sprintf("MASH research: information request %s asks the agency what it knows about the child", in.Research.RequestID)
		}
	case notifyv1.NotificationKind_LEAD_PROFESSIONAL:
		if l := in.Lead; l != nil {
			if l.Scope == "LEAD_FOR_FAMILY_GROUP" {
				return fmt.Sprintf("the agency was named lead professional (%s) for a family group of %d children after the hub's decision", l.Team, l.GroupCases)
			}
			return fmt.Sprintf("the agency was named lead professional (%s) for the child after the hub's decision", l.Team)
		}
	case notifyv1.NotificationKind_DISAGREEMENT:
		switch d := in.Disagreement; {
		case d != nil && d.Resolution != "":
			return fmt.Sprintf("professional disagreement %s, raised by %s, was resolved", d.ID, d.RaisedByAgency)
		case d != nil:
			return fmt.Sprintf("professional disagreement %s by %s reached the %s stage, which %s owns", d.ID,
				d.RaisedByAgency, strings.ToLower(d.Stage), in.Role)
		}
	}
	return in.Kind.String()
}

func joinNonEmpty(sep string, parts ...string) string {
	var out []string
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, sep)
}

// Encompass school ages: from reception (4) to the end of sixth form (under 18).
const (
	encompassMinAge = 4
	encompassMaxAge = 17
)

// EncompassApplies reports whether a referral triggers Operation Encompass: a police referral
// of domestic abuse about a child of school age (or one whose school the referral names).
// It returns the time police attended (the earliest domestic-abuse concern).
func EncompassApplies(ref *intakev1.Referral) (bool, time.Time) {
	if ref.GetAgencyKind() != "police" {
		return false, time.Time{}
	}
	sub := ref.GetSubmission()
	var incident time.Time
	found := false
	for _, c := range sub.GetConcerns() {
		if c.GetCategory() == intakev1.ConcernCategory_DOMESTIC_ABUSE {
			t := c.GetObservedAt().AsTime()
			if !found || t.Before(incident) {
				incident = t
			}
			found = true
		}
	}
	if !found {
		return false, time.Time{}
	}
	child := sub.GetChild()
	if child.GetUnborn() {
		return false, time.Time{}
	}
	if strings.TrimSpace(child.GetSchool()) != "" {
		return true, incident
	}
	dob, err := time.Parse(time.DateOnly, child.GetDateOfBirth())
	if err != nil {
		return false, time.Time{}
	}
	// Ages turn over on the England and Wales date, as intake's validation counts them.
	age := calendar.AgeOn(dob, ref.GetReceivedAt().AsTime().In(london))
	return age >= encompassMinAge && age <= encompassMaxAge, incident
}

var london = mustLocation("Europe/London")

func mustLocation(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic(err) // the zone database is embedded by pkg/calendar (time/tzdata)
	}
	return loc
}

// EncompassDeadline is the start of the next school day after the hub learned of the
// incident: a lead told before the school day starts can be ready when the child arrives.
func EncompassDeadline(school *calendar.Calendar, learned time.Time) time.Time {
	return school.NextWorkingDayStart(learned)
}
