package console

import (
	"context"
	"net/http"
	"net/url"
	"strings"

	notifyv1 "github.com/mash-hub/mash/proto/mash/notify/v1"
)

type notificationsData struct {
	View, Referral, Next, Page string
	Notifications              []*notifyv1.Notification
}

// notificationsPage lists notifications: the dead letters (failed), those whose
// acknowledgement is overdue, or all, optionally of one referral.
func (s *Service) notificationsPage(w http.ResponseWriter, r *http.Request, rs *reqState) {
	s.showNotifications(w, r, rs, s.newPage(r, rs, "notifications.title"), http.StatusOK)
}

func (s *Service) showNotifications(w http.ResponseWriter, r *http.Request, rs *reqState, pg *page, code int) {
	q := r.URL.Query()
	d := notificationsData{View: q.Get("view"), Referral: strings.TrimSpace(q.Get("referral")), Page: q.Get("page")}
	req := &notifyv1.ListNotificationsRequest{ReferralId: d.Referral, PageSize: 50, PageToken: d.Page}
	switch d.View {
	case "failed":
		req.State = notifyv1.NotificationState_FAILED
	case "overdue":
		req.Overdue = true
	case "acknowledged":
		req.State = notifyv1.NotificationState_ACKNOWLEDGED
	default:
		d.View = "all"
	}
	resp, err := s.b.Notify.ListNotifications(rs.call(r.Context()), req)
	if err != nil {
		s.pageError(w, r, rs, err)
		return
	}
	d.Notifications, d.Next = resp.GetNotifications(), resp.GetNextPageToken()
	pg.Data = d
	s.render(w, code, "notifications", pg)
}

func (s *Service) retryNotification(w http.ResponseWriter, r *http.Request, rs *reqState) {
	id := r.PathValue("id")
	pg := s.newPage(r, rs, "notifications.title")
	back := "/console/notifications?view=failed"
	reason := strings.TrimSpace(r.PostFormValue("reason"))
	if reason == "" {
		pg.Errors = []fieldErr{{Field: "reason-" + id, Text: pg.T("retry.reason_missing")}}
		s.showNotifications(w, failedView(r), rs, pg, http.StatusBadRequest)
		return
	}
	_, err := s.b.Notify.RetryNotification(rs.call(context.WithoutCancel(r.Context())), &notifyv1.RetryNotificationRequest{NotificationId: id, Reason: reason})
	if err == nil {
		http.Redirect(w, r, back+"&done=retried", http.StatusSeeOther)
		return
	}
	if code, ok := refusal(err, pg, "retry.refused"); ok {
		s.showNotifications(w, failedView(r), rs, pg, code)
		return
	}
	s.pageError(w, r, rs, err)
}

// failedView is the request as the failed-notifications list reads it: a refused retry
// shows that list again, not the POST's own URL.
func failedView(r *http.Request) *http.Request {
	r2 := r.Clone(r.Context())
	r2.URL = &url.URL{Path: "/console/notifications", RawQuery: "view=failed"}
	return r2
}
