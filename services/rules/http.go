package rules

import (
	"context"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"

	"github.com/mash-hub/mash/pkg/server"
	rulesv1 "github.com/mash-hub/mash/proto/mash/rules/v1"
)

// registerHTTP serves the HTTP/JSON routes rules' contract declares (google.api.http in
// proto/mash/rules/v1/rules.proto) through the generated gateway. Pack routes also take the
// pack itself as the body with Content-Type application/yaml, so a lead can send the file;
// a replay's other fields then come from the query (?last=500, or ?from=...&to=...).
func registerHTTP(srv *server.Server, a *grpcAPI) {
	yaml := server.SourceBody("source", yamlTypes...)
	srv.HandleGateway(server.GatewayService{
		Desc: &rulesv1.RulesService_ServiceDesc,
		Impl: a,
		Register: func(ctx context.Context, mux *runtime.ServeMux, conn grpc.ClientConnInterface) error {
			return rulesv1.RegisterRulesServiceHandlerClient(ctx, mux, rulesv1.NewRulesServiceClient(conn))
		},
		Before: map[string]server.BodyHook{
			"POST /v1/packs:validate": yaml,
			"POST /v1/packs":          yaml,
			"POST /v1/packs:replay":   yaml,
		},
		Validators: []server.Validator{
			server.ValidateWith(a.checkEvaluate),
			server.ValidateWith(checkUpload),
			server.ValidateWith(checkActivate),
			server.ValidateWith(checkReplay),
		},
	})
}

// yamlTypes are the media types a rule pack may be sent as.
var yamlTypes = []string{"application/yaml", "text/yaml", "application/x-yaml"}
