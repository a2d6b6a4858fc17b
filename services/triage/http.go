package triage

import (
	"bytes"
	"context"
	"fmt"
	"net/http"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/mash-hub/mash/pkg/apierr"
	"github.com/mash-hub/mash/pkg/dashcsv"
	"github.com/mash-hub/mash/pkg/server"
	triagev1 "github.com/mash-hub/mash/proto/mash/triage/v1"
)

// csvType is the media type the dashboard's CSV route answers with.
const csvType = "text/csv"

// registerHTTP serves the HTTP/JSON routes triage's contract declares (google.api.http in
// proto/mash/triage/v1/triage.proto and records.proto) through the generated gateway.
//
// The lists keep reading their query as they always have: a list of enums under a singular
// name (?state=awaiting_decision,decided&rag=red&level=3a) and a refusal of any parameter
// they do not take, so a misspelt filter is an error rather than silently ignored.
// GET /v1/dashboard.csv is the dashboard's second binding: it asks the gateway for CSV,
// which dashcsv renders.
func registerHTTP(srv *server.Server, a *grpcAPI, records *recordsAPI) {
	srv.HandleGateway(server.GatewayService{
		Desc: &triagev1.TriageService_ServiceDesc,
		Impl: a,
		Register: func(ctx context.Context, mux *runtime.ServeMux, conn grpc.ClientConnInterface) error {
			return triagev1.RegisterTriageServiceHandlerClient(ctx, mux, triagev1.NewTriageServiceClient(conn))
		},
		Query: map[string]server.QueryParam{"state": {Field: "states"}, "rag": {Field: "rags"}, "level": {Field: "levels"}},
		StrictQuery: []proto.Message{&triagev1.ListQueueRequest{}, &triagev1.ListInformationRequestsRequest{},
			&triagev1.ListDisagreementsRequest{}, &triagev1.GetDashboardRequest{}},
		Validators: []server.Validator{
			server.ValidateWith(checkDecide),
			server.ValidateWith(a.svc.checkStrategy),
			server.ValidateWith(checkClose),
			server.ValidateWith(a.svc.checkRequestInformation),
			server.ValidateWith(checkAuthoriseSharing),
			server.ValidateWith(checkConsent),
			server.ValidateWith(func(req *triagev1.PlaceLegalHoldRequest) []apierr.Violation {
				return violationsOf(checkHoldReason(req.GetReason()))
			}),
			server.ValidateWith(func(req *triagev1.LiftLegalHoldRequest) []apierr.Violation {
				return violationsOf(checkHoldReason(req.GetReason()))
			}),
			server.ValidateWith(func(req *triagev1.EraseCaseRequest) []apierr.Violation {
				return violationsOf(checkEraseReason(req.GetReason()))
			}),
			server.ValidateWith(checkReassign),
			server.ValidateWith(checkLeadProfessional),
			server.ValidateWith(checkAssign),
			server.ValidateWith(checkAnswer),
			server.ValidateWith(checkRaise),
			server.ValidateWith(checkEscalate),
			server.ValidateWith(checkResolve),
			server.ValidateWith(checkRevoke),
			server.ValidateWith(checkExport),
		},
		Before: map[string]server.BodyHook{
			"GET /v1/dashboard.csv": func(r *http.Request, body []byte) ([]byte, error) {
				r.Header.Set("Accept", csvType)
				return body, nil
			},
		},
		Marshalers: map[string]runtime.Marshaler{csvType: server.Rendering{
			MediaType: "text/csv; charset=utf-8",
			For:       &triagev1.GetDashboardResponse{},
			Render: func(m proto.Message) ([]byte, error) {
				var buf bytes.Buffer
				if err := dashcsv.Write(&buf, m.(*triagev1.GetDashboardResponse)); err != nil {
					return nil, fmt.Errorf("write dashboard CSV: %w", err)
				}
				return buf.Bytes(), nil
			},
		}},
		Respond: func(ctx context.Context, w http.ResponseWriter, _ proto.Message) error {
			if p, ok := runtime.HTTPPathPattern(ctx); ok && p == "/v1/dashboard.csv" {
				w.Header().Set("Content-Disposition", `attachment; filename="mash-dashboard.csv"`)
			}
			return nil
		},
	})
	srv.HandleGateway(server.GatewayService{
		Desc: &triagev1.RecordsService_ServiceDesc,
		Impl: records,
		Register: func(ctx context.Context, mux *runtime.ServeMux, conn grpc.ClientConnInterface) error {
			return triagev1.RegisterRecordsServiceHandlerClient(ctx, mux, triagev1.NewRecordsServiceClient(conn))
		},
		StrictQuery: []proto.Message{&triagev1.SearchRequest{}},
		Validators: []server.Validator{
			server.ValidateWith(checkMerge),
			server.ValidateWith(checkUnmerge),
			server.ValidateWith(checkLink),
			server.ValidateWith(checkUnlink),
		},
	})
}
