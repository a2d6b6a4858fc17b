package console

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/mash-hub/mash/pkg/auth"
	"github.com/mash-hub/mash/pkg/server"
	triagev1 "github.com/mash-hub/mash/proto/mash/triage/v1"
)

// The search page and the child record page: finding a child or a referral, and fixing which
// referrals are about the same child (merge, unmerge, link, unlink), each with a reason.
const (
	capSearch  = auth.SearchRecords
	capCorrect = auth.CorrectChildRecords
)

// registerRecords adds the search and child record routes.
func (s *Service) registerRecords(handle func(string, http.Handler)) {
	handle("GET /console/search", s.need(capSearch, s.searchPage))
	handle("GET /console/children/{id}", s.need(capCaseRead, s.childPage))
	handle("POST /console/children/{id}/merge", s.need(capCorrect, s.mergeChild))
	handle("POST /console/child-merges/{id}/unmerge", s.need(capCorrect, s.unmergeChild))
	handle("POST /console/children/{id}/link", s.need(capCorrect, s.linkReferral))
	handle("POST /console/cases/{id}/child/unlink", s.need(capCorrect, s.unlinkReferral))
}

type searchData struct {
	Q, Reason string
	Searched  bool
	Resp      *triagev1.SearchResponse
}

// errRecordsUnavailable is what a console built without the records service answers.
var errRecordsUnavailable = status.Error(codes.Unavailable, "the records service is not reachable")

func (s *Service) searchPage(w http.ResponseWriter, r *http.Request, rs *reqState) {
	q := r.URL.Query()
	d := searchData{Q: strings.TrimSpace(q.Get("q")), Reason: strings.TrimSpace(q.Get("reason"))}
	pg := s.newPage(r, rs, "search.title")
	pg.Form = url.Values{"q": {d.Q}, "reason": {d.Reason}}
	pg.Data = &d
	if d.Q == "" && d.Reason == "" {
		s.render(w, http.StatusOK, "search", pg)
		return
	}
	if s.b.Records == nil {
		s.pageError(w, r, rs, errRecordsUnavailable)
		return
	}
	resp, err := s.b.Records.Search(rs.call(r.Context()), &triagev1.SearchRequest{Q: d.Q, Reason: d.Reason})
	if err != nil {
		p := problemOf(err)
		if p.code != codes.InvalidArgument {
			s.pageError(w, r, rs, err)
			return
		}
		for f, text := range p.fields {
			pg.Errors = append(pg.Errors, fieldErr{Field: f, Text: text})
		}
		slices.SortFunc(pg.Errors, func(a, b fieldErr) int { return strings.Compare(a.Field, b.Field) })
		s.render(w, http.StatusBadRequest, "search", pg)
		return
	}
	d.Searched, d.Resp = true, resp
	s.render(w, http.StatusOK, "search", pg)
}

type childData struct {
	*triagev1.GetChildResponse
	// Form names the form a refused change came from, to show it open.
	Form string
}

func (s *Service) childPage(w http.ResponseWriter, r *http.Request, rs *reqState) {
	pg := s.newPage(r, rs, "child.title")
	s.showChild(w, r, rs, pg, r.PathValue("id"), http.StatusOK, "")
}

func (s *Service) showChild(w http.ResponseWriter, r *http.Request, rs *reqState, pg *page, childID string, code int, form string) {
	if s.b.Records == nil {
		s.pageError(w, r, rs, errRecordsUnavailable)
		return
	}
	resp, err := s.b.Records.GetChild(rs.call(r.Context()), &triagev1.GetChildRequest{ChildId: childID})
	if status.Code(err) == codes.InvalidArgument {
		// Not a child record's id (a form without its record, a mistyped address).
		s.errorPage(w, r, rs, http.StatusNotFound, "error.notfound")
		return
	}
	if err != nil {
		s.pageError(w, r, rs, err)
		return
	}
	pg.Data = childData{GetChildResponse: resp, Form: form}
	s.render(w, code, "child", pg)
}

// correct runs a correction of child records. Success goes to back with a confirmation; a
// refusal shows the child record again with the reasons beside the fields.
func (s *Service) correct(w http.ResponseWriter, r *http.Request, rs *reqState, back, form, done string, call func(context.Context) error) {
	pg := s.newPage(r, rs, "child.title")
	pg.Form = r.PostForm
	if s.b.Records == nil {
		s.pageError(w, r, rs, errRecordsUnavailable)
		return
	}
	err := call(rs.call(r.Context()))
	if err == nil {
		s.log.Info("console: child record corrected", zap.String("action", form), zap.String("child_id", back),
			zap.String("session", rs.sessionID), zap.String("request_id", server.RequestID(r.Context())))
		http.Redirect(w, r, "/console/children/"+url.PathEscape(back)+"?done="+done, http.StatusSeeOther)
		return
	}
	p := problemOf(err)
	code, refused := refusalStatus(p.code)
	if !refused {
		s.pageError(w, r, rs, err)
		return
	}
	for f, text := range p.fields {
		pg.Errors = append(pg.Errors, fieldErr{Field: f, Text: text})
	}
	slices.SortFunc(pg.Errors, func(a, b fieldErr) int { return strings.Compare(a.Field, b.Field) })
	if len(pg.Errors) == 0 {
		pg.ErrorKey, pg.ErrorText = "child.refused", p.message
	}
	s.showChild(w, r, rs, pg, back, code, form)
}

// mergeChild merges the record in the path into the record named by the form's "into"
// (the record whose page the form is on, which remains).
func (s *Service) mergeChild(w http.ResponseWriter, r *http.Request, rs *reqState) {
	from, into := r.PathValue("id"), strings.TrimSpace(r.PostFormValue("into"))
	s.correct(w, r, rs, into, "merge-"+from, "merged", func(ctx context.Context) error {
		_, err := s.b.Records.MergeChildren(ctx, &triagev1.MergeChildrenRequest{ChildId: from, IntoChildId: into,
			Reason: strings.TrimSpace(r.PostFormValue("reason"))})
		return err
	})
}

func (s *Service) unmergeChild(w http.ResponseWriter, r *http.Request, rs *reqState) {
	back := strings.TrimSpace(r.PostFormValue("child"))
	s.correct(w, r, rs, back, "unmerge-"+r.PathValue("id"), "unmerged", func(ctx context.Context) error {
		_, err := s.b.Records.UnmergeChildren(ctx, &triagev1.UnmergeChildrenRequest{MergeId: r.PathValue("id"),
			Reason: strings.TrimSpace(r.PostFormValue("reason"))})
		return err
	})
}

// linkReferral moves the referral named by the form's "referral" (one of the record whose
// page the form is on, its "child") onto the record in the path, a possible match of it.
func (s *Service) linkReferral(w http.ResponseWriter, r *http.Request, rs *reqState) {
	to, back := r.PathValue("id"), strings.TrimSpace(r.PostFormValue("child"))
	s.correct(w, r, rs, back, "link-"+to, "linked", func(ctx context.Context) error {
		_, err := s.b.Records.LinkReferral(ctx, &triagev1.LinkReferralRequest{ReferralId: strings.TrimSpace(r.PostFormValue("referral")),
			ChildId: to, Reason: strings.TrimSpace(r.PostFormValue("reason"))})
		return err
	})
}

func (s *Service) unlinkReferral(w http.ResponseWriter, r *http.Request, rs *reqState) {
	back := strings.TrimSpace(r.PostFormValue("child"))
	s.correct(w, r, rs, back, "unlink-"+r.PathValue("id"), "unlinked", func(ctx context.Context) error {
		_, err := s.b.Records.UnlinkReferral(ctx, &triagev1.UnlinkReferralRequest{ReferralId: r.PathValue("id"),
			Reason: strings.TrimSpace(r.PostFormValue("reason"))})
		return err
	})
}
