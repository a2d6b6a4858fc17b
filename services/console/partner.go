package console

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"go.uber.org/zap"

	"github.com/mash-hub/mash/pkg/server"
	notifyv1 "github.com/mash-hub/mash/proto/mash/notify/v1"
	triagev1 "github.com/mash-hub/mash/proto/mash/triage/v1"
)

// The partner view: staff of a partner agency (police, health, a school, ...) sign in with
// the partner role and see only what the hub sent their own agency. Every call goes to
// notify and triage as the signed-in person, and both services scope an agency-bound
// caller to its own agency's notifications, information requests and disagreements: the
// console adds no data of its own and cannot widen what a partner sees. A partner holds
// none of the hub's capabilities, so the queue, cases, notifications list, dashboard,
// rule packs and audit answer 403.

// partnerPageSize bounds each list of the partner inbox.
const partnerPageSize = 50

type partnerInboxData struct {
	Notifications []*notifyv1.Notification
	Requests      []*triagev1.InformationRequest
	Disagreements []disagreementView
	NextPage      string
	Page          string
}

// partnerInbox lists what the hub sent the partner's agency, most urgent first; its open
// information requests; and the disagreements it raised.
func (s *Service) partnerInbox(w http.ResponseWriter, r *http.Request, rs *reqState) {
	ctx := rs.call(r.Context())
	d := partnerInboxData{Page: r.URL.Query().Get("page")}
	ns, err := s.b.Notify.ListNotifications(ctx, &notifyv1.ListNotificationsRequest{Agency: rs.ident.Agency, PageSize: partnerPageSize, PageToken: d.Page})
	if err != nil {
		s.pageError(w, r, rs, err)
		return
	}
	rq, err := s.b.Triage.ListInformationRequests(ctx, &triagev1.ListInformationRequestsRequest{Agency: rs.ident.Agency, OpenOnly: true, PageSize: partnerPageSize})
	if err != nil {
		s.pageError(w, r, rs, err)
		return
	}
	ds, err := s.b.Triage.ListDisagreements(ctx, &triagev1.ListDisagreementsRequest{PageSize: partnerPageSize})
	if err != nil {
		s.pageError(w, r, rs, err)
		return
	}
	d.Notifications, d.NextPage = ns.GetNotifications(), ns.GetNextPageToken()
	d.Requests = rq.GetRequests()
	d.Disagreements = viewDisagreements(ds.GetDisagreements(), s.now())
	pg := s.newPage(r, rs, "partner.title")
	pg.Data = d
	s.render(w, http.StatusOK, "partner", pg)
}

// sentItem is one notification to the partner's agency with the message it carried.
type sentItem struct {
	N *notifyv1.Notification
	M *notifyv1.AgencyMessage
}

type partnerReferralData struct {
	ReferralID    string
	Reference     string
	Sent          []sentItem
	Requests      []*triagev1.InformationRequest
	Disagreements []disagreementView
	// Form names the form whose submission failed, to open it and refill it.
	Form string
}

func (s *Service) partnerReferralPage(w http.ResponseWriter, r *http.Request, rs *reqState) {
	s.showPartnerReferral(w, r, rs, s.newPage(r, rs, "partner.referral_title"), http.StatusOK, "")
}

// showPartnerReferral renders one referral as the partner's agency knows it. A referral
// the agency was sent nothing about, was asked nothing about and raised nothing about is
// not found: the partner view never confirms that a referral exists.
func (s *Service) showPartnerReferral(w http.ResponseWriter, r *http.Request, rs *reqState, pg *page, code int, form string) {
	id := r.PathValue("id")
	ctx := rs.call(r.Context())
	d := partnerReferralData{ReferralID: id, Form: form}
	ns, err := s.b.Notify.ListNotifications(ctx, &notifyv1.ListNotificationsRequest{ReferralId: id, Agency: rs.ident.Agency, PageSize: partnerPageSize})
	if err != nil {
		s.pageError(w, r, rs, err)
		return
	}
	for _, n := range ns.GetNotifications() {
		if n.GetAgency() != rs.ident.Agency {
			continue // the service scopes the list; this is belt and braces
		}
		got, err := s.b.Inbox.GetNotificationMessage(ctx, &notifyv1.GetNotificationMessageRequest{NotificationId: n.GetId()})
		if err != nil {
			s.pageError(w, r, rs, err)
			return
		}
		d.Sent = append(d.Sent, sentItem{N: got.GetNotification(), M: got.GetMessage()})
		if d.Reference == "" {
			d.Reference = n.GetReference()
		}
	}
	rq, err := s.b.Triage.ListInformationRequests(ctx, &triagev1.ListInformationRequestsRequest{ReferralId: id, Agency: rs.ident.Agency, PageSize: partnerPageSize})
	if err != nil {
		s.pageError(w, r, rs, err)
		return
	}
	ds, err := s.b.Triage.ListDisagreements(ctx, &triagev1.ListDisagreementsRequest{ReferralId: id, PageSize: partnerPageSize})
	if err != nil {
		s.pageError(w, r, rs, err)
		return
	}
	d.Requests = rq.GetRequests()
	d.Disagreements = viewDisagreements(ds.GetDisagreements(), s.now())
	if len(d.Sent) == 0 && len(d.Requests) == 0 && len(d.Disagreements) == 0 {
		s.errorPage(w, r, rs, http.StatusNotFound, "error.notfound")
		return
	}
	pg.Data = d
	s.render(w, code, "partnerreferral", pg)
}

// partnerAct runs a change from the partner's referral page, as actOn does for the case
// page: success redirects back with a confirmation, a refusal shows the page again with the
// service's reasons.
func (s *Service) partnerAct(w http.ResponseWriter, r *http.Request, rs *reqState, a action, call func(ctx context.Context) error) {
	id := r.PathValue("id")
	pg := s.newPage(r, rs, "partner.referral_title")
	pg.Form = r.PostForm
	if a.conflict == "" {
		a.conflict = "partner.conflict"
	}
	for _, c := range a.pre {
		pg.Errors = append(pg.Errors, fieldErr{Field: c.field, Text: pg.T(c.key)})
	}
	if len(pg.Errors) > 0 {
		s.showPartnerReferral(w, r, rs, pg, http.StatusBadRequest, a.form)
		return
	}
	// A change must not be cut short by the browser going away once it is sent.
	err := call(rs.call(context.WithoutCancel(r.Context())))
	if err == nil {
		s.log.Info("console: partner action", zap.String("action", a.form), zap.String("referral_id", id),
			zap.String("session", rs.sessionID), zap.String("request_id", server.RequestID(r.Context())))
		http.Redirect(w, r, "/console/partner/referrals/"+url.PathEscape(id)+"?done="+a.done, http.StatusSeeOther)
		return
	}
	p := problemOf(err)
	status, refused := refusalStatus(p.code)
	switch {
	case !refused:
		s.pageError(w, r, rs, err)
		return
	case status == http.StatusBadRequest:
		for f, desc := range p.fields {
			if to, ok := a.fields[f]; ok {
				f = to
			}
			pg.Errors = append(pg.Errors, fieldErr{Field: f, Text: desc})
		}
		slices.SortFunc(pg.Errors, func(a, b fieldErr) int { return strings.Compare(a.Field, b.Field) })
		if len(pg.Errors) == 0 {
			pg.ErrorText = p.message
		}
	default:
		pg.ErrorKey, pg.ErrorText = a.conflict, p.message
	}
	s.showPartnerReferral(w, r, rs, pg, status, a.form)
}

func (s *Service) partnerAcknowledge(w http.ResponseWriter, r *http.Request, rs *reqState) {
	nid := r.PathValue("nid")
	note := strings.TrimSpace(r.PostFormValue("note"))
	a := action{form: "ack-" + nid, done: "acknowledged", fields: map[string]string{"note": "note-" + nid}}
	s.partnerAct(w, r, rs, a, func(ctx context.Context) error {
		_, err := s.b.Notify.AcknowledgeNotification(ctx, &notifyv1.AcknowledgeNotificationRequest{NotificationId: nid, Note: note})
		return err
	})
}

func (s *Service) partnerAnswer(w http.ResponseWriter, r *http.Request, rs *reqState) {
	rid := r.PathValue("rid")
	text := strings.TrimSpace(r.PostFormValue("answer"))
	a := action{form: "answer-" + rid, done: "partner_answered", fields: map[string]string{"answer": "answer-" + rid}, conflict: "info.conflict"}
	if text == "" {
		a.pre = []check{{"answer-" + rid, "partner.answer_missing"}}
	}
	s.partnerAct(w, r, rs, a, func(ctx context.Context) error {
		_, err := s.b.Triage.AnswerInformationRequest(ctx, &triagev1.AnswerInformationRequestRequest{RequestId: rid, Answer: text})
		return err
	})
}

func (s *Service) partnerRaise(w http.ResponseWriter, r *http.Request, rs *reqState) {
	reason := strings.TrimSpace(r.PostFormValue("reason"))
	a := action{form: "raise", done: "disagreement_raised"}
	if reason == "" {
		a.pre = []check{{"reason", "partner.reason_missing"}}
	}
	s.partnerAct(w, r, rs, a, func(ctx context.Context) error {
		_, err := s.b.Triage.RaiseDisagreement(ctx, &triagev1.RaiseDisagreementRequest{ReferralId: r.PathValue("id"), Reason: reason})
		return err
	})
}

func (s *Service) partnerEscalate(w http.ResponseWriter, r *http.Request, rs *reqState) {
	did := r.PathValue("did")
	text := strings.TrimSpace(r.PostFormValue("stage_outcome"))
	a := action{form: "escalate-" + did, done: "escalated", fields: map[string]string{"outcome": "stage_outcome-" + did}, conflict: "disagreement.conflict"}
	if text == "" {
		a.pre = []check{{"stage_outcome-" + did, "partner.escalate_missing"}}
	}
	s.partnerAct(w, r, rs, a, func(ctx context.Context) error {
		_, err := s.b.Triage.EscalateDisagreement(ctx, &triagev1.EscalateDisagreementRequest{DisagreementId: did, ExpectedVersion: version(r), Outcome: text})
		return err
	})
}

// openReferral is where an email's link lands (/referrals/{id}, behind sign-in): a partner
// goes to the partner view of the referral, hub staff to the case.
func (s *Service) openReferral(w http.ResponseWriter, r *http.Request, rs *reqState) {
	id := url.PathEscape(r.PathValue("id"))
	switch {
	case can(rs.ident, capPartner):
		http.Redirect(w, r, "/console/partner/referrals/"+id, http.StatusSeeOther)
	case can(rs.ident, capCaseRead):
		http.Redirect(w, r, "/console/cases/"+id, http.StatusSeeOther)
	default:
		s.errorPage(w, r, rs, http.StatusForbidden, "error.forbidden")
	}
}
