package audit

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
	"google.golang.org/protobuf/types/known/timestamppb"

	"mash/pkg/apierr"
	"mash/pkg/server"
	"mash/pkg/text"
	auditv1 "mash/proto/mash/audit/v1"
)

// Register adds the audit query API: the gRPC AuditService and its HTTP/JSON routes.
func (s *Service) Register(srv *server.Server) {
	api := &grpcAPI{svc: s}
	auditv1.RegisterAuditServiceServer(srv.GRPC(), api)
	registerHTTP(srv, api)
}

// queryReader reads query parameters, collecting violations.
type queryReader struct {
	r  *http.Request
	vs []apierr.Violation
}

func (q *queryReader) str(name string) string { return q.r.URL.Query().Get(name) }

func (q *queryReader) int64(name string) int64 {
	v := q.str(name)
	if v == "" {
		return 0
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		q.vs = append(q.vs, apierr.Violation{Field: name, Reason: "must be a whole number"})
	}
	return n
}

func (q *queryReader) int32(name string) int32 {
	n := q.int64(name)
	if n != int64(int32(n)) {
		q.vs = append(q.vs, apierr.Violation{Field: name, Reason: "is out of range"})
		return 0
	}
	return int32(n)
}

func (q *queryReader) time(name string) *timestamppb.Timestamp {
	v := q.str(name)
	if v == "" {
		return nil
	}
	t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(v))
	if err != nil {
		q.vs = append(q.vs, apierr.Violation{Field: name, Reason: "must be an RFC 3339 time such as 2026-11-01T00:00:00Z"})
		return nil
	}
	return timestamppb.New(t)
}

func (q *queryReader) err() error {
	if len(q.vs) > 0 {
		return apierr.Invalid(q.vs)
	}
	return nil
}

func exportRequest(q *queryReader) *auditv1.ExportTrailRequest {
	return &auditv1.ExportTrailRequest{ReferralId: q.str("referralId"), From: q.time("from"), To: q.time("to")}
}

// registerHTTP maps the HTTP/JSON routes onto the gRPC methods; parameters come from the
// query string. The export streams JSON lines instead of one JSON message.
func registerHTTP(srv *server.Server, a *grpcAPI) {
	server.HandleProto(srv, "GET /v1/audit/trail", func() *auditv1.GetTrailRequest { return &auditv1.GetTrailRequest{} },
		func(r *http.Request, _ []byte, req *auditv1.GetTrailRequest) error {
			q := &queryReader{r: r}
			req.ReferralId, req.ChildId = q.str("referralId"), q.str("childId")
			req.PageSize, req.PageToken = q.int32("pageSize"), q.str("pageToken")
			return q.err()
		}, a.GetTrail)
	server.HandleProto(srv, "GET /v1/audit/entries", func() *auditv1.SearchEntriesRequest { return &auditv1.SearchEntriesRequest{} },
		func(r *http.Request, _ []byte, req *auditv1.SearchEntriesRequest) error {
			q := &queryReader{r: r}
			req.Actor, req.Agency, req.EventType = q.str("actor"), q.str("agency"), q.str("eventType")
			req.Partnership, req.PackVersion = q.str("partnership"), q.str("packVersion")
			req.From, req.To = q.time("from"), q.time("to")
			req.PageSize, req.PageToken = q.int32("pageSize"), q.str("pageToken")
			switch o := q.str("order"); o {
			case "", "newest":
			case "oldest":
				req.OldestFirst = true
			default:
				q.vs = append(q.vs, apierr.Violation{Field: "order", Reason: "must be newest or oldest"})
			}
			return q.err()
		}, a.SearchEntries)
	server.HandleProto(srv, "GET /v1/audit/checkpoint", func() *auditv1.GetCheckpointRequest { return &auditv1.GetCheckpointRequest{} },
		nil, a.GetCheckpoint)
	server.HandleProto(srv, "GET /v1/audit/proofs/inclusion", func() *auditv1.ProveInclusionRequest { return &auditv1.ProveInclusionRequest{} },
		func(r *http.Request, _ []byte, req *auditv1.ProveInclusionRequest) error {
			q := &queryReader{r: r}
			req.Seq, req.TreeSize = q.int64("seq"), q.int64("treeSize")
			return q.err()
		}, a.ProveInclusion)
	server.HandleProto(srv, "GET /v1/audit/proofs/consistency", func() *auditv1.ProveConsistencyRequest { return &auditv1.ProveConsistencyRequest{} },
		func(r *http.Request, _ []byte, req *auditv1.ProveConsistencyRequest) error {
			q := &queryReader{r: r}
			req.OldSize, req.NewSize = q.int64("oldSize"), q.int64("newSize")
			return q.err()
		}, a.ProveConsistency)
	server.HandleProto(srv, "GET /v1/audit/access", func() *auditv1.WhoAccessedRequest { return &auditv1.WhoAccessedRequest{} },
		func(r *http.Request, _ []byte, req *auditv1.WhoAccessedRequest) error {
			q := &queryReader{r: r}
			req.ChildId, req.ReferralId = q.str("childId"), q.str("referralId")
			req.PageSize, req.PageToken = q.int32("pageSize"), q.str("pageToken")
			return q.err()
		}, a.WhoAccessed)
	server.HandleProto(srv, "GET /v1/audit/activity", func() *auditv1.UserActivityRequest { return &auditv1.UserActivityRequest{} },
		func(r *http.Request, _ []byte, req *auditv1.UserActivityRequest) error {
			q := &queryReader{r: r}
			req.Actor, req.From, req.To = q.str("actor"), q.time("from"), q.time("to")
			req.PageSize, req.PageToken = q.int32("pageSize"), q.str("pageToken")
			return q.err()
		}, a.UserActivity)
	server.HandleProto(srv, "GET /v1/audit/unusual-access", func() *auditv1.UnusualAccessRequest { return &auditv1.UnusualAccessRequest{} },
		func(r *http.Request, _ []byte, req *auditv1.UnusualAccessRequest) error {
			q := &queryReader{r: r}
			req.From, req.To = q.time("from"), q.time("to")
			req.PageSize, req.PageToken = q.int32("pageSize"), q.str("pageToken")
			return q.err()
		}, a.UnusualAccess)
	srv.HandleAPI("GET /v1/audit/export", func(w http.ResponseWriter, r *http.Request) {
		q := &queryReader{r: r}
		req := exportRequest(q)
		if err := q.err(); err != nil {
			srv.WriteError(w, r, err)
			return
		}
		if err := text.Invalid(req); err != nil {
			srv.WriteError(w, r, err)
			return
		}
		a.svc.serveExport(srv, w, r, req)
	})
}

// serveExport streams an export as application/x-ndjson. Errors before the first line get
// a status; one after it (a lost database connection) ends the body early, which leaves an
// export that VerifyExport rejects (proofs missing) rather than one that looks complete.
func (s *Service) serveExport(srv *server.Server, w http.ResponseWriter, r *http.Request, req *auditv1.ExportTrailRequest) {
	started := false
	n := 0
	flusher, _ := w.(http.Flusher)
	err := s.export(r.Context(), req, 0, func(line []byte) error {
		if !started {
			w.Header().Set("Content-Type", "application/x-ndjson")
			w.Header().Set("Content-Disposition", `attachment; filename="audit-export.jsonl"`)
			w.WriteHeader(http.StatusOK)
			started = true
		}
		if _, err := w.Write(append(line, '\n')); err != nil {
			return err
		}
		if n++; n%1000 == 0 && flusher != nil {
			flusher.Flush()
		}
		return nil
	})
	switch {
	case err != nil && !started:
		srv.WriteError(w, r, err)
	case err != nil:
		s.log.Warn("audit export ended early", zap.Error(err))
	case !started: // cannot happen: an export always has its checkpoint line
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.WriteHeader(http.StatusOK)
	}
}
