package console

import (
	"context"
	"net/http"
	"strings"
	"time"

	triagev1 "github.com/mash-hub/mash/proto/mash/triage/v1"
)

// Professional disagreements: an agency that disagrees with a threshold decision raises one
// through the API with its own credential or in the partner view (the service records the
// caller's agency), and hub staff who work cases may raise one on the case. Managers move it
// through its stages (practitioner, team manager, senior safeguarding manager,
// partnership), each with a deadline and a recorded outcome, and resolve it; the raising
// agency may take it to the next stage from the partner view; the service escalates a
// stage whose deadline passes by itself, and notify tells each stage's owner.

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
	did := r.PathValue("did")
	s.noteAction(w, r, rs, note{id: did, form: "escalate", input: "stage_outcome", field: "outcome", done: "escalated",
		missing: "disagreement.outcome_missing", conflict: "disagreement.conflict"}, func(ctx context.Context, text string) error {
		_, err := s.b.Triage.EscalateDisagreement(ctx, &triagev1.EscalateDisagreementRequest{DisagreementId: did,
			ExpectedVersion: version(r), Outcome: text})
		return err
	})
}

func (s *Service) resolveDisagreement(w http.ResponseWriter, r *http.Request, rs *reqState) {
	did := r.PathValue("did")
	s.noteAction(w, r, rs, note{id: did, form: "resolve", input: "resolution", field: "resolution", done: "resolved",
		missing: "disagreement.resolution_missing", conflict: "disagreement.conflict"}, func(ctx context.Context, text string) error {
		_, err := s.b.Triage.ResolveDisagreement(ctx, &triagev1.ResolveDisagreementRequest{DisagreementId: did,
			ExpectedVersion: version(r), Resolution: text})
		return err
	})
}

// raiseDisagreement lets hub staff record a professional disagreement with a case's
// decision (say, one a colleague of another agency voiced in a meeting); the stages then
// run as for an agency's.
func (s *Service) raiseDisagreement(w http.ResponseWriter, r *http.Request, rs *reqState) {
	reason := strings.TrimSpace(r.PostFormValue("disagree_reason"))
	a := action{form: "raise", done: "disagreement_raised", fields: map[string]string{"reason": "disagree_reason"}, conflict: "disagreement.conflict"}
	if reason == "" {
		a.pre = []check{{"disagree_reason", "disagreement.reason_missing"}}
	}
	s.actOn(w, r, rs, a, func(ctx context.Context) error {
		_, err := s.b.Triage.RaiseDisagreement(ctx, &triagev1.RaiseDisagreementRequest{ReferralId: r.PathValue("id"), Reason: reason})
		return err
	})
}

// answerInformation records an answer an agency gave another way (by phone, email or in
// person) to an information request still awaiting one.
func (s *Service) answerInformation(w http.ResponseWriter, r *http.Request, rs *reqState) {
	rid := r.PathValue("rid")
	s.noteAction(w, r, rs, note{id: rid, form: "answer", input: "answer", field: "answer", done: "info_answered",
		missing: "info.answer_missing", conflict: "info.conflict"}, func(ctx context.Context, text string) error {
		_, err := s.b.Triage.AnswerInformationRequest(ctx, &triagev1.AnswerInformationRequestRequest{RequestId: rid, Answer: text})
		return err
	})
}

// note is a change made with one required text, on one of several items of a case page
// (each disagreement, each information request), so its form and field carry the item's id.
type note struct {
	// id is the item's; form, the form's name; input, the text's form field; field, the
	// service's name for it; done, missing and conflict, message keys.
	id, form, input, field, done, missing, conflict string
}

func (s *Service) noteAction(w http.ResponseWriter, r *http.Request, rs *reqState, n note, call func(ctx context.Context, text string) error) {
	input := n.input + "-" + n.id
	text := strings.TrimSpace(r.PostFormValue(n.input))
	var pre []check
	if text == "" {
		pre = append(pre, check{input, n.missing})
	}
	a := action{form: n.form + "-" + n.id, done: n.done, pre: pre, fields: map[string]string{n.field: input}, conflict: n.conflict}
	s.actOn(w, r, rs, a, func(ctx context.Context) error { return call(ctx, text) })
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
