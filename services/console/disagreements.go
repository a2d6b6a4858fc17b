package console

import (
	"context"
	"net/http"
	"strings"
	"time"

	triagev1 "mash/proto/mash/triage/v1"
)

// Professional disagreements: an agency that disagrees with a threshold decision raises one
// through the API with its own credential (the service records the caller's agency), so the
// console never raises one. Managers move it through its stages (practitioner, team
// manager, senior safeguarding manager, partnership), each with a deadline and a recorded
// outcome, and resolve it; the service escalates a stage whose deadline passes by itself.

// disagreementView is a disagreement as a page shows it.
type disagreementView struct {
	*triagev1.Disagreement
	// Overdue: open, and the current stage's deadline has passed (the service's sweep will
	// escalate it, or at the last stage it waits on the partnership).
	Overdue bool
	// Next is the stage an escalation moves it to; unspecified at the last stage.
	Next triagev1.DisagreementStage
}

func viewDisagreements(ds []*triagev1.Disagreement, now time.Time) []disagreementView {
	out := make([]disagreementView, 0, len(ds))
	for _, d := range ds {
		v := disagreementView{Disagreement: d}
		if !d.GetResolved() {
			due := d.GetStageDue()
			v.Overdue = due.IsValid() && !due.AsTime().IsZero() && due.AsTime().Before(now)
			if d.GetStage() < triagev1.DisagreementStage_PARTNERSHIP {
				v.Next = d.GetStage() + 1
			}
		}
		out = append(out, v)
	}
	return out
}

func (s *Service) escalateDisagreement(w http.ResponseWriter, r *http.Request, rs *reqState) {
	pg := s.newPage(r, rs, "")
	did := r.PathValue("did")
	field := "stage_outcome-" + did
	req := &triagev1.EscalateDisagreementRequest{DisagreementId: did, ExpectedVersion: version(r),
		Outcome: strings.TrimSpace(r.PostFormValue("stage_outcome"))}
	var pre []fieldErr
	if req.Outcome == "" {
		pre = append(pre, fieldErr{field, pg.T("disagreement.outcome_missing")})
	}
	a := action{form: "escalate-" + did, done: "escalated", pre: pre, fields: map[string]string{"outcome": field},
		conflict: "disagreement.conflict"}
	s.actOn(w, r, rs, a, func(ctx context.Context) error {
		_, err := s.b.Triage.EscalateDisagreement(ctx, req)
		return err
	})
}

func (s *Service) resolveDisagreement(w http.ResponseWriter, r *http.Request, rs *reqState) {
	pg := s.newPage(r, rs, "")
	did := r.PathValue("did")
	field := "resolution-" + did
	req := &triagev1.ResolveDisagreementRequest{DisagreementId: did, ExpectedVersion: version(r),
		Resolution: strings.TrimSpace(r.PostFormValue("resolution"))}
	var pre []fieldErr
	if req.Resolution == "" {
		pre = append(pre, fieldErr{field, pg.T("disagreement.resolution_missing")})
	}
	a := action{form: "resolve-" + did, done: "resolved", pre: pre, fields: map[string]string{"resolution": field},
		conflict: "disagreement.conflict"}
	s.actOn(w, r, rs, a, func(ctx context.Context) error {
		_, err := s.b.Triage.ResolveDisagreement(ctx, req)
		return err
	})
}

// answerInformation records an answer an agency gave another way (by phone, email or in
// person) to an information request still awaiting one.
func (s *Service) answerInformation(w http.ResponseWriter, r *http.Request, rs *reqState) {
	pg := s.newPage(r, rs, "")
	rid := r.PathValue("rid")
	field := "answer-" + rid
	req := &triagev1.AnswerInformationRequestRequest{RequestId: rid, Answer: strings.TrimSpace(r.PostFormValue("answer"))}
	var pre []fieldErr
	if req.Answer == "" {
		pre = append(pre, fieldErr{field, pg.T("info.answer_missing")})
	}
	a := action{form: "answer-" + rid, done: "info_answered", pre: pre, fields: map[string]string{"answer": field},
		conflict: "info.conflict"}
	s.actOn(w, r, rs, a, func(ctx context.Context) error {
		_, err := s.b.Triage.AnswerInformationRequest(ctx, req)
		return err
	})
}

type disagreementsData struct {
	Partnership, Open, Page, Next string
	Disagreements                 []disagreementView
}

// disagreementsPage lists disagreements as the service orders them: open ones first, the
// nearest stage deadline first; optionally only open ones, or one partnership's.
func (s *Service) disagreementsPage(w http.ResponseWriter, r *http.Request, rs *reqState) {
	q := r.URL.Query()
	d := disagreementsData{Partnership: strings.TrimSpace(q.Get("partnership")), Page: q.Get("page")}
	if q.Get("open") == "on" {
		d.Open = "on"
	}
	resp, err := s.b.Triage.ListDisagreements(rs.call(r.Context()), &triagev1.ListDisagreementsRequest{
		Partnership: d.Partnership, OpenOnly: d.Open == "on", PageSize: 50, PageToken: d.Page})
	if err != nil {
		s.pageError(w, r, rs, err)
		return
	}
	d.Disagreements, d.Next = viewDisagreements(resp.GetDisagreements(), s.now()), resp.GetNextPageToken()
	pg := s.newPage(r, rs, "disagreements.title")
	pg.Data = d
	s.render(w, http.StatusOK, "disagreements", pg)
}
