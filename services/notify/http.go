package notify

import (
	"net/http"
	"strconv"

	"mash/pkg/apierr"
	"mash/pkg/server"
	notifyv1 "mash/proto/mash/notify/v1"
)

// registerHTTP maps the HTTP/JSON routes onto the gRPC methods.
func registerHTTP(srv *server.Server, a *grpcAPI) {
	server.HandleProto(srv, "GET /v1/agencies", func() *notifyv1.ListAgenciesRequest { return &notifyv1.ListAgenciesRequest{} },
		func(r *http.Request, _ []byte, req *notifyv1.ListAgenciesRequest) error {
			req.Partnership = r.URL.Query().Get("partnership")
			return nil
		}, a.ListAgencies)
	server.HandleProto(srv, "PUT /v1/agencies/{id}", func() *notifyv1.PutAgencyRequest { return &notifyv1.PutAgencyRequest{} },
		func(r *http.Request, _ []byte, req *notifyv1.PutAgencyRequest) error {
			if req.Agency == nil {
				req.Agency = &notifyv1.Agency{}
			}
			if req.Agency.Id != "" && req.Agency.Id != r.PathValue("id") {
				return apierr.Invalid([]apierr.Violation{{Field: "agency.id", Reason: "differs from the id in the path"}})
			}
			req.Agency.Id = r.PathValue("id")
			return nil
		}, a.PutAgency)
	server.HandleProto(srv, "GET /v1/agencies/{id}/changes", func() *notifyv1.ListDirectoryChangesRequest { return &notifyv1.ListDirectoryChangesRequest{} },
		func(r *http.Request, _ []byte, req *notifyv1.ListDirectoryChangesRequest) error {
			q := r.URL.Query()
			req.AgencyId, req.Partnership = r.PathValue("id"), q.Get("partnership")
			if v := q.Get("state"); v != "" {
				st, ok := notifyv1.DirectoryChangeState_value["DIRECTORY_CHANGE_"+v]
				if !ok {
					return apierr.Invalid([]apierr.Violation{{Field: "state", Reason: "use PENDING, APPROVED, REJECTED or EXPIRED"}})
				}
				req.State = notifyv1.DirectoryChangeState(st)
			}
			return nil
		}, a.ListDirectoryChanges)
	server.HandleProto(srv, "POST /v1/agencies/{id}/changes/{change}/approve", func() *notifyv1.ApproveDirectoryChangeRequest { return &notifyv1.ApproveDirectoryChangeRequest{} },
		func(r *http.Request, _ []byte, req *notifyv1.ApproveDirectoryChangeRequest) error {
			req.AgencyId, req.ChangeId = r.PathValue("id"), r.PathValue("change")
			return nil
		}, a.ApproveDirectoryChange)
	server.HandleProto(srv, "POST /v1/agencies/{id}/changes/{change}/reject", func() *notifyv1.RejectDirectoryChangeRequest { return &notifyv1.RejectDirectoryChangeRequest{} },
		func(r *http.Request, _ []byte, req *notifyv1.RejectDirectoryChangeRequest) error {
			req.AgencyId, req.ChangeId = r.PathValue("id"), r.PathValue("change")
			return nil
		}, a.RejectDirectoryChange)
	server.HandleProto(srv, "DELETE /v1/agencies/{id}", func() *notifyv1.RemoveAgencyRequest { return &notifyv1.RemoveAgencyRequest{} },
		func(r *http.Request, _ []byte, req *notifyv1.RemoveAgencyRequest) error {
			req.AgencyId = r.PathValue("id")
			q := r.URL.Query()
			if v := q.Get("partnership"); v != "" {
				req.Partnership = v
			}
			if v := q.Get("reason"); v != "" {
				req.Reason = v
			}
			return nil
		}, a.RemoveAgency)
	server.HandleProto(srv, "GET /v1/notifications", func() *notifyv1.ListNotificationsRequest { return &notifyv1.ListNotificationsRequest{} },
		fillList, a.ListNotifications)
	server.HandleProto(srv, "GET /v1/notifications/{id}", func() *notifyv1.GetNotificationRequest { return &notifyv1.GetNotificationRequest{} },
		func(r *http.Request, _ []byte, req *notifyv1.GetNotificationRequest) error {
			req.NotificationId = r.PathValue("id")
			return nil
		}, a.GetNotification)
	server.HandleProto(srv, "POST /v1/notifications/{id}/acknowledge", func() *notifyv1.AcknowledgeNotificationRequest { return &notifyv1.AcknowledgeNotificationRequest{} },
		func(r *http.Request, _ []byte, req *notifyv1.AcknowledgeNotificationRequest) error {
			req.NotificationId = r.PathValue("id")
			return nil
		}, a.AcknowledgeNotification)
	server.HandleProto(srv, "POST /v1/notifications/{id}/retry", func() *notifyv1.RetryNotificationRequest { return &notifyv1.RetryNotificationRequest{} },
		func(r *http.Request, _ []byte, req *notifyv1.RetryNotificationRequest) error {
			req.NotificationId = r.PathValue("id")
			return nil
		}, a.RetryNotification)
	server.HandleProto(srv, "GET /v1/partnerships/{partnership}/ack-deadlines", func() *notifyv1.GetAckDeadlinesRequest { return &notifyv1.GetAckDeadlinesRequest{} },
		func(r *http.Request, _ []byte, req *notifyv1.GetAckDeadlinesRequest) error {
			req.Partnership = r.PathValue("partnership")
			return nil
		}, a.GetAckDeadlines)
	server.HandleProto(srv, "PUT /v1/partnerships/{partnership}/ack-deadlines", func() *notifyv1.SetAckDeadlinesRequest { return &notifyv1.SetAckDeadlinesRequest{} },
		func(r *http.Request, _ []byte, req *notifyv1.SetAckDeadlinesRequest) error {
			if req.Partnership != "" && req.Partnership != r.PathValue("partnership") {
				return apierr.Invalid([]apierr.Violation{{Field: "partnership", Reason: "differs from the partnership in the path"}})
			}
			req.Partnership = r.PathValue("partnership")
			return nil
		}, a.SetAckDeadlines)
}

// registerInboxHTTP maps the agency inbox's HTTP/JSON route onto its gRPC method.
func registerInboxHTTP(srv *server.Server, a *inboxAPI) {
	server.HandleProto(srv, "GET /v1/notifications/{id}/message", func() *notifyv1.GetNotificationMessageRequest { return &notifyv1.GetNotificationMessageRequest{} },
		func(r *http.Request, _ []byte, req *notifyv1.GetNotificationMessageRequest) error {
			req.NotificationId = r.PathValue("id")
			return nil
		}, a.GetNotificationMessage)
}

// fillList reads the list filters from the query: ?referralId=&agency=&state=FAILED&overdue=true&pageSize=&pageToken=.
func fillList(r *http.Request, _ []byte, req *notifyv1.ListNotificationsRequest) error {
	q := r.URL.Query()
	var vs []apierr.Violation
	req.ReferralId, req.Agency, req.PageToken = q.Get("referralId"), q.Get("agency"), q.Get("pageToken")
	if v := q.Get("state"); v != "" {
		st, ok := notifyv1.NotificationState_value[v]
		if !ok || st == 0 {
			vs = append(vs, apierr.Violation{Field: "state", Reason: "use PENDING, SENDING, DELIVERED, ACKNOWLEDGED or FAILED"})
		}
		req.State = notifyv1.NotificationState(st)
	}
	if v := q.Get("overdue"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			vs = append(vs, apierr.Violation{Field: "overdue", Reason: "use true or false"})
		}
		req.Overdue = b
	}
	if v := q.Get("pageSize"); v != "" {
		n, err := strconv.ParseInt(v, 10, 32)
		if err != nil {
			vs = append(vs, apierr.Violation{Field: "pageSize", Reason: "must be a whole number"})
		}
		req.PageSize = int32(n)
	}
	if len(vs) > 0 {
		return apierr.Invalid(vs)
	}
	return nil
}
