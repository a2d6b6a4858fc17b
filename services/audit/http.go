package audit

import (
	"context"
	"net/http"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"go.uber.org/zap"
	"google.golang.org/grpc"

	"github.com/mash-hub/mash/pkg/server"
	"github.com/mash-hub/mash/pkg/text"
	auditv1 "github.com/mash-hub/mash/proto/mash/audit/v1"
)

// Register adds the audit query API: the gRPC AuditService and its HTTP/JSON routes.
func (s *Service) Register(srv *server.Server) {
	api := &grpcAPI{svc: s}
	auditv1.RegisterAuditServiceServer(srv.GRPC(), api)
	registerHTTP(srv, api)
}

// registerHTTP serves the HTTP/JSON routes audit's contract declares (google.api.http in
// proto/mash/audit/v1/audit.proto) through the generated gateway, their fields in the query.
// The export stays a route of its own: it streams JSON lines (application/x-ndjson) with no
// cap on the entries, which the gateway's one JSON message per call (ExportTrail, capped at
// MaxGRPCExport) cannot carry.
func registerHTTP(srv *server.Server, a *grpcAPI) {
	srv.HandleGateway(server.GatewayService{
		Desc: &auditv1.AuditService_ServiceDesc,
		Impl: a,
		Register: func(ctx context.Context, mux *runtime.ServeMux, conn grpc.ClientConnInterface) error {
			return auditv1.RegisterAuditServiceHandlerClient(ctx, mux, auditv1.NewAuditServiceClient(conn))
		},
		Query: map[string]server.QueryParam{
			"order": {Field: "oldest_first", Values: map[string]string{"newest": "false", "oldest": "true"}, Reason: "must be newest or oldest"},
		},
	})
	srv.HandleAPI("GET /v1/audit/export", func(w http.ResponseWriter, r *http.Request) {
		req := &auditv1.ExportTrailRequest{}
		if err := server.ReadQuery(r, req); err != nil {
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
