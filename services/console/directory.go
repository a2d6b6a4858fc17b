package console

import (
	"context"
	"net/http"
	"net/url"
	"strings"

	"google.golang.org/grpc/codes"

	notifyv1 "github.com/mash-hub/mash/proto/mash/notify/v1"
)

type directoryData struct {
	Partnership string
	Agencies    []*notifyv1.Agency
	Pending     []*notifyv1.DirectoryChange
	Decided     []*notifyv1.DirectoryChange
	// Deadlines are the partnership's acknowledgement deadlines; nil when it has none of its
	// own in the directory.
	Deadlines *notifyv1.GetAckDeadlinesResponse
	// Me is the signed-in person as the services name them, so the page can say which
	// pending changes are their own (they cannot approve those).
	Me string
}

// recentDecided bounds the decided changes the page shows below the pending ones.
const recentDecided = 20

// directoryPage shows the partnership's agency directory and the changes to where
// notifications go: pending ones first, with approve and reject for managers, then the
// latest decided.
func (s *Service) directoryPage(w http.ResponseWriter, r *http.Request, rs *reqState) {
	s.showDirectory(w, r, rs, s.newPage(r, rs, "directory.title"), http.StatusOK)
}

func (s *Service) showDirectory(w http.ResponseWriter, r *http.Request, rs *reqState, pg *page, code int) {
	d := directoryData{Partnership: s.partnershipOf(r), Me: rs.ident.Actor()}
	ctx := rs.call(r.Context())
	as, err := s.b.Notify.ListAgencies(ctx, &notifyv1.ListAgenciesRequest{Partnership: d.Partnership})
	if err != nil {
		s.pageError(w, r, rs, err)
		return
	}
	cs, err := s.b.Notify.ListDirectoryChanges(ctx, &notifyv1.ListDirectoryChangesRequest{Partnership: d.Partnership})
	if err != nil {
		s.pageError(w, r, rs, err)
		return
	}
	d.Agencies = as.GetAgencies()
	dl, err := s.b.Notify.GetAckDeadlines(ctx, &notifyv1.GetAckDeadlinesRequest{Partnership: d.Partnership})
	switch {
	case err == nil:
		d.Deadlines = dl
	case problemOf(err).code != codes.NotFound:
		s.pageError(w, r, rs, err)
		return
	}
	for _, c := range cs.GetChanges() {
		switch {
		case c.GetState() == notifyv1.DirectoryChangeState_DIRECTORY_CHANGE_PENDING:
			d.Pending = append(d.Pending, c)
		case len(d.Decided) < recentDecided:
			d.Decided = append(d.Decided, c)
		}
	}
	pg.Data = d
	s.render(w, code, "directory", pg)
}

// decideChange approves or rejects a pending change as the signed-in manager. A refusal
// (their own change, one decided meanwhile, expired) shows the page again with the
// service's message.
func (s *Service) decideChange(approve bool) pageHandler {
	return func(w http.ResponseWriter, r *http.Request, rs *reqState) {
		id := r.PathValue("id")
		pg := s.newPage(r, rs, "directory.title")
		reason := strings.TrimSpace(r.PostFormValue("reason"))
		ctx := rs.call(context.WithoutCancel(r.Context()))
		var err error
		done := "change_approved"
		if approve {
			_, err = s.b.Notify.ApproveDirectoryChange(ctx, &notifyv1.ApproveDirectoryChangeRequest{ChangeId: id, Reason: reason})
		} else {
			if reason == "" {
				pg.Errors = []fieldErr{{Field: "reason-" + id, Text: pg.T("directory.reason_missing")}}
				s.showDirectory(w, directoryView(r), rs, pg, http.StatusBadRequest)
				return
			}
			done = "change_rejected"
			_, err = s.b.Notify.RejectDirectoryChange(ctx, &notifyv1.RejectDirectoryChangeRequest{ChangeId: id, Reason: reason})
		}
		if err == nil {
			http.Redirect(w, r, "/console/directory?"+url.Values{"partnership": {s.partnershipOf(r)}, "done": {done}}.Encode(), http.StatusSeeOther)
			return
		}
		if code, ok := refusal(err, pg, "directory.refused"); ok {
			s.showDirectory(w, directoryView(r), rs, pg, code)
			return
		}
		if p := problemOf(err); p.code == codes.PermissionDenied {
			// Above all: the proposer trying to approve their own change.
			pg.ErrorKey, pg.ErrorText = "directory.refused", p.message
			s.showDirectory(w, directoryView(r), rs, pg, http.StatusForbidden)
			return
		}
		s.pageError(w, r, rs, err)
	}
}

// directoryView is the request as the directory page reads it, for a refused form.
func directoryView(r *http.Request) *http.Request {
	r2 := r.Clone(r.Context())
	r2.URL = &url.URL{Path: "/console/directory", RawQuery: url.Values{"partnership": {r.PostFormValue("partnership")}}.Encode()}
	return r2
}
