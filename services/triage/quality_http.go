package triage

import (
	"context"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"

	"github.com/mash-hub/mash/pkg/server"
	triagev1 "github.com/mash-hub/mash/proto/mash/triage/v1"
)

// registerQualityHTTP serves the routes QualityService's contract declares
// (google.api.http in proto/mash/triage/v1/quality.proto) through the generated gateway.
func registerQualityHTTP(srv *server.Server, a *qualityAPI) {
	triagev1.RegisterQualityServiceServer(srv.GRPC(), a)
	srv.HandleGateway(server.GatewayService{
		Desc: &triagev1.QualityService_ServiceDesc,
		Impl: a,
		Register: func(ctx context.Context, mux *runtime.ServeMux, conn grpc.ClientConnInterface) error {
			return triagev1.RegisterQualityServiceHandlerClient(ctx, mux, triagev1.NewQualityServiceClient(conn))
		},
		Validators: []server.Validator{server.ValidateWith(checkQualityReview)},
	})
}
