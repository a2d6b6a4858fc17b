package triage

import (
	"net/http"

	"mash/pkg/server"
	triagev1 "mash/proto/mash/triage/v1"
)

// registerRecordsHTTP maps the search and child-record routes onto RecordsService.
func registerRecordsHTTP(srv *server.Server, a *recordsAPI) {
	server.HandleProto(srv, "GET /v1/search", func() *triagev1.SearchRequest { return &triagev1.SearchRequest{} },
		func(r *http.Request, _ []byte, req *triagev1.SearchRequest) error {
			p := query(r)
			// The query and the reason are free text: read whole, never split at commas.
			p.known["q"], p.known["reason"] = true, true
			req.Q, req.Reason = r.URL.Query().Get("q"), r.URL.Query().Get("reason")
			req.Partnership, req.PageSize = p.get("partnership"), p.int32("pageSize")
			return p.err()
		}, a.Search)
	server.HandleProto(srv, "GET /v1/children/{childId}", func() *triagev1.GetChildRequest { return &triagev1.GetChildRequest{} },
		func(r *http.Request, _ []byte, req *triagev1.GetChildRequest) error {
			req.ChildId, req.Reason = r.PathValue("childId"), r.URL.Query().Get("reason")
			return nil
		}, a.GetChild)
	server.HandleProto(srv, "POST /v1/children/{childId}/merge", func() *triagev1.MergeChildrenRequest { return &triagev1.MergeChildrenRequest{} },
		func(r *http.Request, _ []byte, req *triagev1.MergeChildrenRequest) error {
			req.ChildId = r.PathValue("childId")
			return nil
		}, a.MergeChildren)
	server.HandleProto(srv, "POST /v1/child-merges/{mergeId}/unmerge", func() *triagev1.UnmergeChildrenRequest { return &triagev1.UnmergeChildrenRequest{} },
		func(r *http.Request, _ []byte, req *triagev1.UnmergeChildrenRequest) error {
			req.MergeId = r.PathValue("mergeId")
			return nil
		}, a.UnmergeChildren)
	server.HandleProto(srv, "POST /v1/cases/{referralId}/child:link", func() *triagev1.LinkReferralRequest { return &triagev1.LinkReferralRequest{} },
		func(r *http.Request, _ []byte, req *triagev1.LinkReferralRequest) error {
			req.ReferralId = r.PathValue("referralId")
			return nil
		}, a.LinkReferral)
	server.HandleProto(srv, "POST /v1/cases/{referralId}/child:unlink", func() *triagev1.UnlinkReferralRequest { return &triagev1.UnlinkReferralRequest{} },
		func(r *http.Request, _ []byte, req *triagev1.UnlinkReferralRequest) error {
			req.ReferralId = r.PathValue("referralId")
			return nil
		}, a.UnlinkReferral)
}
