package intake

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"mash/pkg/apierr"
	"mash/pkg/referral"
	"mash/pkg/server"
	"mash/pkg/text"
	intakev1 "mash/proto/mash/intake/v1"
)

// registerHTTP serves the HTTP/JSON routes intake's contract declares (google.api.http in
// proto/mash/intake/v1/intake.proto) through the generated gateway, so both transports share
// validation, authorisation and errors. JSON follows the protobuf mapping (lowerCamelCase).
func registerHTTP(srv *server.Server, api *grpcAPI) {
	srv.HandleGateway(server.GatewayService{
		Desc: &intakev1.IntakeService_ServiceDesc,
		Impl: api,
		Register: func(ctx context.Context, mux *runtime.ServeMux, conn grpc.ClientConnInterface) error {
			return intakev1.RegisterIntakeServiceHandlerClient(ctx, mux, intakev1.NewIntakeServiceClient(conn))
		},
		Before:  map[string]server.BodyHook{"POST /v1/referrals": api.checkSubmissionBody},
		Respond: created,
	})
}

// checkSubmissionBody reads a submission's body before the gateway does, so that a body with
// values that cannot be read is answered with every one of them and every other problem
// of the fields that could be read (text, then the contract's rules) in one 400. The
// fields are named as in the body, which is the referral itself (child.givenName). A body
// that decodes goes on as it came: its rules are checked after the caller's role, as over
// gRPC.
func (a *grpcAPI) checkSubmissionBody(_ *http.Request, body []byte) ([]byte, error) {
	sub, vs := referral.DecodeLenient(body)
	if sub == nil {
		return nil, invalid(vs)
	}
	if len(vs) == 0 {
		return body, text.Invalid(sub)
	}
	named := map[string]bool{}
	out := make([]apierr.Violation, 0, len(vs))
	for _, v := range vs {
		named[v.Field] = true
		out = append(out, apierr.Violation{Field: v.Field, Reason: v.Reason})
	}
	// A field that could not be read is absent from sub: the rules' "is required" for it,
	// or for anything inside it, would only repeat the problem already named.
	covered := func(field string) bool {
		for f := range named {
			if field == f || strings.HasPrefix(field, f+".") || strings.HasPrefix(field, f+"[") {
				return true
			}
		}
		return false
	}
	var te *apierr.Error
	if err := text.Invalid(sub); errors.As(err, &te) {
		for _, v := range te.Violations {
			if !covered(v.Field) {
				out = append(out, v)
			}
		}
	}
	for _, v := range referral.Validate(sub, a.svc.now()) {
		if !covered(v.Field) {
			out = append(out, apierr.Violation{Field: v.Field, Reason: v.Reason})
		}
	}
	return nil, apierr.Invalid(out)
}

// created answers a new referral with 201 Created and its Location; a replay keeps 200.
func created(_ context.Context, w http.ResponseWriter, m proto.Message) error {
	sub, ok := m.(interface {
		GetAcknowledgement() *intakev1.Acknowledgement
	})
	if !ok || sub.GetAcknowledgement() == nil || sub.GetAcknowledgement().GetReplay() {
		return nil
	}
	w.Header().Set("Location", "/v1/referrals/"+sub.GetAcknowledgement().GetReferralId())
	w.WriteHeader(http.StatusCreated)
	return nil
}
