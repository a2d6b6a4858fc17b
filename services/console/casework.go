package console

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/mash-hub/mash/pkg/auth"
	"github.com/mash-hub/mash/pkg/calendar"
	"github.com/mash-hub/mash/pkg/server"
	auditv1 "github.com/mash-hub/mash/proto/mash/audit/v1"
	intakev1 "github.com/mash-hub/mash/proto/mash/intake/v1"
	rulesv1 "github.com/mash-hub/mash/proto/mash/rules/v1"
	triagev1 "github.com/mash-hub/mash/proto/mash/triage/v1"
)

type caseData struct {
	*triagev1.GetCaseResponse
	// Sub is the referral as sent (child, concerns, household, consent, referrer,
	// narrative); nil when intake did not answer, with ReferralUnavailable saying why.
	Sub *intakev1.ReferralSubmission
	// ChildAge says how old the child is, or that the age is estimated or unknown.
	ChildAge ageView
	// RiskFacts are the risk indicators the referrer reported, as message keys.
	RiskFacts []riskFact
	// Access is who read the referral (the audit log's access entries, newest first);
	// AccessShown is false when the person may not read them or audit did not answer.
	Access      []*auditv1.AccessRecord
	AccessShown bool
	Mine        bool
	Claimed     bool
	Levels      []rulesv1.Level
	Rags        []rulesv1.Rag
	Outcomes    []triagev1.CaseOutcome
	// Form names the form whose submission failed, to open it and refill it.
	Form string
	// Now is the server's time in the hub's zone, to prefill the strategy discussion.
	Now string
	// DisagreementViews are the case's disagreements with their deadlines checked.
	DisagreementViews []disagreementView
}

func (s *Service) casePage(w http.ResponseWriter, r *http.Request, rs *reqState) {
	s.showCase(w, r, rs, s.newPage(r, rs, "case.title"), http.StatusOK, "")
}

// showCase reads the case and renders it with pg's errors, if any.
func (s *Service) showCase(w http.ResponseWriter, r *http.Request, rs *reqState, pg *page, code int, form string) {
	id := r.PathValue("id")
	resp, err := s.b.Triage.GetCase(rs.call(r.Context()), &triagev1.GetCaseRequest{ReferralId: id})
	if err != nil {
		s.pageError(w, r, rs, err)
		return
	}
	// Triage shows a lapsed claim as no claim, so an assignee is a live claim.
	assignee := resp.GetCase().GetAssignee()
	d := caseData{GetCaseResponse: resp, Mine: assignee != "" && assignee == rs.ident.ClientID, Claimed: assignee != "",
		Levels: levels, Rags: rags, Outcomes: outcomes, Form: form, Now: s.now().In(london).Format("2006-01-02T15:04"),
		DisagreementViews: viewDisagreements(resp.GetDisagreements(), s.now())}
	if ref := resp.GetReferral(); ref != nil {
		d.Sub = ref.GetSubmission()
		d.ChildAge = childAge(d.Sub.GetChild(), ref.GetReceivedAt().AsTime())
		d.RiskFacts = riskFacts(d.Sub.GetRiskIndicators())
	}
	d.Access, d.AccessShown = s.accessTrail(r.Context(), rs, id)
	pg.Data = d
	s.render(w, code, "case", pg)
}

// caseAccessShown is how many of the newest access entries the case page lists.
const caseAccessShown = 50

// accessTrail reads who accessed the referral from audit, as the person (audit records
// that query too). A person who may not read it, or an audit service that does not
// answer, leaves the section saying so rather than failing the page.
func (s *Service) accessTrail(ctx context.Context, rs *reqState, referralID string) ([]*auditv1.AccessRecord, bool) {
	if !rs.ident.Can(auth.ReadCaseAccess) {
		return nil, false
	}
	resp, err := s.b.Audit.WhoAccessed(rs.call(ctx), &auditv1.WhoAccessedRequest{ReferralId: referralID, PageSize: caseAccessShown})
	if err != nil {
		s.log.Warn("console: access trail unavailable", zap.String("referral_id", referralID), zap.String("code", status.Code(err).String()))
		return nil, false
	}
	return resp.GetAccesses(), true
}

// riskFact is one reported risk indicator: its message key, and what the message names:
// a grade's message key (Enum) or a count (N).
type riskFact struct {
	Key, Enum string
	N         int32
}

// riskFacts lists the risk indicators that were reported (a flag set, a count above
// zero, a grade given), in the contract's order.
func riskFacts(ri *intakev1.RiskIndicators) []riskFact {
	var out []riskFact
	flag := func(on bool, key string) {
		if on {
			out = append(out, riskFact{Key: "risk." + key})
		}
	}
	flag(ri.GetImmediateDanger(), "immediate_danger")
	if g := ri.GetDomesticAbuseRisk(); g != intakev1.DomesticAbuseRisk_DOMESTIC_ABUSE_RISK_UNSPECIFIED {
		out = append(out, riskFact{Key: "risk.dash", Enum: "dash." + g.String()})
	}
	if n := ri.GetPoliceIncidentsLast_12Months(); n > 0 {
		out = append(out, riskFact{Key: "risk.police_incidents", N: n})
	}
	flag(ri.GetSuspectHasAccessToChild(), "suspect_has_access")
	if n := ri.GetDashScore(); n > 0 {
		out = append(out, riskFact{Key: "risk.dash_score", N: n})
	}
	flag(ri.GetChildNonMobile(), "non_mobile")
	flag(ri.GetChildPregnant(), "pregnant")
	if n := ri.GetMissingEpisodesLast_12Months(); n > 0 {
		out = append(out, riskFact{Key: "risk.missing_episodes", N: n})
	}
	flag(ri.GetDangerousAdultWithAccess(), "dangerous_adult")
	flag(ri.GetSiblingsPreviouslyRemoved(), "siblings_removed")
	flag(ri.GetParentInPrison(), "parent_in_prison")
	flag(ri.GetMedicalTreatmentNotSought(), "medical_neglect")
	flag(ri.GetChildHomeless(), "child_homeless")
	flag(ri.GetCaringAffectsChild(), "caring_affects_child")
	return out
}

// ageView is what the case page says of a child's age.
type ageView struct {
	// Years is the age on the day the referral arrived, from the date of birth.
	Years int
	// Known: from a date of birth; Estimated: the referrer's estimate (Years holds it);
	// Unknown: neither; Unborn: not yet born.
	Known, Estimated, Unknown, Unborn bool
}

func childAge(c *intakev1.Child, on time.Time) ageView {
	switch {
	case c.GetUnborn():
		return ageView{Unborn: true}
	case c.EstimatedAgeYears != nil:
		return ageView{Estimated: true, Years: int(c.GetEstimatedAgeYears())}
	}
	dob, err := time.Parse(time.DateOnly, c.GetDateOfBirth())
	if err != nil {
		return ageView{Unknown: true}
	}
	return ageView{Known: true, Years: max(calendar.AgeOn(dob, on.In(london)), 0)}
}

// action describes one change made from the case page.
type action struct {
	// form names the form, to reopen it when the change is refused; done is the
	// confirmation's key (done.<done>).
	form, done string
	// pre are the console's own checks that failed, as message keys by field: the call is
	// not made.
	pre []check
	// fields renames the service's field names to the form's, where the case page has
	// more than one field of a name (every stage outcome, every answer).
	fields map[string]string
	// conflict is the message key shown when the service refuses because of state or
	// version; default "case.conflict".
	conflict string
}

// check is a console-side check that failed: the field, and the message key saying why.
type check struct{ field, key string }

// actOn runs a change to a case. Success redirects back to the case with a confirmation
// (post/redirect/get); a refusal shows the case again with the reasons next to the fields,
// or as a message for conflicts.
func (s *Service) actOn(w http.ResponseWriter, r *http.Request, rs *reqState, a action, call func(ctx context.Context) error) {
	id := r.PathValue("id")
	pg := s.newPage(r, rs, "case.title")
	pg.Form = r.PostForm
	if a.conflict == "" {
		a.conflict = "case.conflict"
	}
	if len(a.pre) > 0 {
		for _, c := range a.pre {
			pg.Errors = append(pg.Errors, fieldErr{Field: c.field, Text: pg.T(c.key)})
		}
		s.showCase(w, r, rs, pg, http.StatusBadRequest, a.form)
		return
	}
	err := call(rs.call(r.Context()))
	if err == nil {
		s.log.Info("console: case action", zap.String("action", a.form), zap.String("referral_id", id),
			zap.String("session", rs.sessionID), zap.String("request_id", server.RequestID(r.Context())))
		http.Redirect(w, r, "/console/cases/"+url.PathEscape(id)+"?done="+a.done, http.StatusSeeOther)
		return
	}
	p := problemOf(err)
	status, refused := refusalStatus(p.code)
	switch {
	case !refused:
		s.pageError(w, r, rs, err)
		return
	case status == http.StatusBadRequest:
		// An invalid request shows each fault beside its field, in the form's names.
		for f, d := range p.fields {
			if to, ok := a.fields[f]; ok {
				f = to
			}
			pg.Errors = append(pg.Errors, fieldErr{Field: f, Text: d})
		}
		slices.SortFunc(pg.Errors, func(a, b fieldErr) int { return strings.Compare(a.Field, b.Field) })
		if len(pg.Errors) == 0 {
			pg.ErrorText = p.message
		}
	default:
		pg.ErrorKey, pg.ErrorText = a.conflict, p.message
	}
	s.showCase(w, r, rs, pg, status, a.form)
}

func version(r *http.Request) int64 {
	v, _ := strconv.ParseInt(r.PostFormValue("version"), 10, 64)
	return v
}

func (s *Service) claim(w http.ResponseWriter, r *http.Request, rs *reqState) {
	s.actOn(w, r, rs, action{form: "claim", done: "claimed"}, func(ctx context.Context) error {
		_, err := s.b.Triage.ClaimCase(ctx, &triagev1.ClaimCaseRequest{ReferralId: r.PathValue("id"), ExpectedVersion: version(r)})
		return err
	})
}

func (s *Service) release(w http.ResponseWriter, r *http.Request, rs *reqState) {
	s.actOn(w, r, rs, action{form: "release", done: "released"}, func(ctx context.Context) error {
		_, err := s.b.Triage.ReleaseCase(ctx, &triagev1.ReleaseCaseRequest{ReferralId: r.PathValue("id"), ExpectedVersion: version(r)})
		return err
	})
}

func (s *Service) assign(w http.ResponseWriter, r *http.Request, rs *reqState) {
	assignee := strings.TrimSpace(r.PostFormValue("assignee"))
	var pre []check
	if assignee == "" {
		pre = append(pre, check{"assignee", "case.assignee_missing"})
	}
	assignee = assigneeID(assignee)
	s.actOn(w, r, rs, action{form: "assign", done: "assigned", pre: pre}, func(ctx context.Context) error {
		_, err := s.b.Triage.AssignCase(ctx, &triagev1.AssignCaseRequest{ReferralId: r.PathValue("id"), Assignee: assignee, ExpectedVersion: version(r)})
		return err
	})
}

// nameLead names the case's lead professional, for the child or its family group.
func (s *Service) nameLead(w http.ResponseWriter, r *http.Request, rs *reqState) {
	req := &triagev1.NameLeadProfessionalRequest{ReferralId: r.PathValue("id"), ExpectedVersion: version(r),
		Agency: strings.TrimSpace(r.PostFormValue("lead_agency")), Team: strings.TrimSpace(r.PostFormValue("lead_team")),
		Person: strings.TrimSpace(r.PostFormValue("lead_person")), Scope: triagev1.LeadProfessionalScope_LEAD_FOR_CHILD}
	if r.PostFormValue("lead_scope") == triagev1.LeadProfessionalScope_LEAD_FOR_FAMILY_GROUP.String() {
		req.Scope = triagev1.LeadProfessionalScope_LEAD_FOR_FAMILY_GROUP
	}
	var pre []check
	if req.Agency == "" {
		pre = append(pre, check{"lead_agency", "case.lead_agency_missing"})
	}
	if req.Team == "" {
		pre = append(pre, check{"lead_team", "case.lead_team_missing"})
	}
	if req.Person == "" {
		pre = append(pre, check{"lead_person", "case.lead_person_missing"})
	}
	s.actOn(w, r, rs, action{form: "lead", done: "lead_named", pre: pre,
		fields: map[string]string{"agency": "lead_agency", "team": "lead_team", "person": "lead_person", "scope": "lead_scope"}},
		func(ctx context.Context) error {
			_, err := s.b.Triage.NameLeadProfessional(ctx, req)
			return err
		})
}

func (s *Service) decide(w http.ResponseWriter, r *http.Request, rs *reqState) {
	req := &triagev1.DecideCaseRequest{ReferralId: r.PathValue("id"), ExpectedVersion: version(r),
		Reason: strings.TrimSpace(r.PostFormValue("reason"))}
	var pre []check
	switch r.PostFormValue("action") {
	case "confirm":
		req.Confirm = true
	case "override":
		if v, ok := rulesv1.Level_value[r.PostFormValue("level")]; ok {
			req.Level = rulesv1.Level(v)
		}
		if v, ok := rulesv1.Rag_value[r.PostFormValue("rag")]; ok {
			req.Rag = rulesv1.Rag(v)
		}
		req.Pathway = strings.TrimSpace(r.PostFormValue("pathway"))
		req.Agencies = splitList(r.PostFormValue("agencies"))
		if req.Level == 0 && req.Rag == 0 && req.Pathway == "" && len(req.Agencies) == 0 {
			pre = append(pre, check{"level", "decide.nothing_changed"})
		}
		if req.Reason == "" {
			pre = append(pre, check{"reason", "decide.reason_missing"})
		}
	default:
		pre = append(pre, check{"action", "decide.action_missing"})
	}
	done := "overridden"
	if req.Confirm {
		done = "confirmed"
	}
	s.actOn(w, r, rs, action{form: "decide", done: done, pre: pre}, func(ctx context.Context) error {
		_, err := s.b.Triage.DecideCase(ctx, req)
		return err
	})
}

func (s *Service) strategy(w http.ResponseWriter, r *http.Request, rs *reqState) {
	req := &triagev1.RecordStrategyDiscussionRequest{ReferralId: r.PathValue("id"),
		Participants: splitLines(r.PostFormValue("participants")), Outcome: strings.TrimSpace(r.PostFormValue("outcome")),
		Section_47: r.PostFormValue("section_47") == "on"}
	var pre []check
	if t, err := time.ParseInLocation("2006-01-02T15:04", r.PostFormValue("held_at"), london); err != nil {
		pre = append(pre, check{"held_at", "strategy.held_at_invalid"})
	} else {
		req.HeldAt = timestamppb.New(t)
	}
	if len(req.Participants) == 0 {
		pre = append(pre, check{"participants", "strategy.participants_missing"})
	}
	if req.Outcome == "" {
		pre = append(pre, check{"outcome", "strategy.outcome_missing"})
	}
	s.actOn(w, r, rs, action{form: "strategy", done: "strategy", pre: pre}, func(ctx context.Context) error {
		_, err := s.b.Triage.RecordStrategyDiscussion(ctx, req)
		return err
	})
}

func (s *Service) closeCase(w http.ResponseWriter, r *http.Request, rs *reqState) {
	req := &triagev1.CloseCaseRequest{ReferralId: r.PathValue("id"), ExpectedVersion: version(r), Note: strings.TrimSpace(r.PostFormValue("note"))}
	var pre []check
	if v, ok := triagev1.CaseOutcome_value[r.PostFormValue("outcome")]; ok && v != 0 {
		req.Outcome = triagev1.CaseOutcome(v)
	} else {
		pre = append(pre, check{"close-outcome", "close.outcome_missing"})
	}
	// The strategy form has an outcome field too.
	a := action{form: "close", done: "closed", pre: pre, fields: map[string]string{"outcome": "close-outcome"}}
	s.actOn(w, r, rs, a, func(ctx context.Context) error {
		_, err := s.b.Triage.CloseCase(ctx, req)
		return err
	})
}

func (s *Service) requestInformation(w http.ResponseWriter, r *http.Request, rs *reqState) {
	req := &triagev1.RequestInformationRequest{ReferralId: r.PathValue("id"), Agency: strings.TrimSpace(r.PostFormValue("agency")),
		Question: strings.TrimSpace(r.PostFormValue("question"))}
	var pre []check
	if req.Agency == "" {
		pre = append(pre, check{"agency", "info.agency_missing"})
	}
	if req.Question == "" {
		pre = append(pre, check{"question", "info.question_missing"})
	}
	if d := r.PostFormValue("due"); d != "" {
		if t, err := endOfDay(s.cal, d); err != nil {
			pre = append(pre, check{"due", "info.due_invalid"})
		} else {
			req.Due = timestamppb.New(t)
		}
	}
	s.actOn(w, r, rs, action{form: "info", done: "info_requested", pre: pre}, func(ctx context.Context) error {
		_, err := s.b.Triage.RequestInformation(ctx, req)
		return err
	})
}

// assigneeID is the client id triage keeps a claim by, for what a manager typed: the form
// asks for a person's id, and a person claims and decides as "user:<id>". A client id typed
// in full is kept.
func assigneeID(typed string) string {
	if typed == "" || strings.Contains(typed, ":") {
		return typed
	}
	return auth.UserPrefix + typed
}

// endOfDay is when working hours end (MASH_WORKDAY_END) on the date d (YYYY-MM-DD), in
// London. Built from the date, not as an offset from midnight, so it holds on the days the
// clocks change.
func endOfDay(cal *calendar.Calendar, d string) (time.Time, error) {
	date, err := calendar.ParseDate(d)
	if err != nil {
		return time.Time{}, err
	}
	return cal.DayEnd(date), nil
}

// splitList reads "a, b c" as [a b c].
func splitList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\r' || r == '\t' })
}

// splitLines reads one entry per line, skipping blank lines.
func splitLines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}
