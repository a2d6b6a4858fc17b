package intake

import (
	"context"
	"net/http"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/mash-hub/mash/pkg/apierr"
	"github.com/mash-hub/mash/pkg/referral"
	"github.com/mash-hub/mash/pkg/server"
	"github.com/mash-hub/mash/pkg/text"
	intakev1 "github.com/mash-hub/mash/proto/mash/intake/v1"
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
		Before:     map[string]server.BodyHook{"POST /v1/referrals": api.checkSubmissionBody},
		Validators: []server.Validator{server.ValidateWith(api.checkSubmission)},
		Respond:    created,
	})
}

// checkSubmissionBody reads a submission's body before the gateway does, so that a body that
// is not a referral at all is answered as Decode words it, and a body that decodes but holds
// text no store can keep is refused before anything else. A body with values that cannot be
// read goes on to the gateway's check (checkSubmission), which names them and every other
// problem of the fields that could be read in one 400. A body that decodes goes on as it
// came: its rules are checked after the caller's role, as over gRPC.
func (a *grpcAPI) checkSubmissionBody(_ *http.Request, body []byte) ([]byte, error) {
	sub, vs := referral.DecodeLenient(body)
	if sub == nil {
		return nil, invalid(vs)
	}
	if len(vs) == 0 {
		return body, text.Invalid(sub)
	}
	return body, nil
}

// checkSubmission is the contract's rules for a submission the gateway could not fully
// decode. The fields are named as in the body, which is the referral itself
// (child.givenName).
func (a *grpcAPI) checkSubmission(req *intakev1.SubmitReferralRequest) []apierr.Violation {
	return apiViolations(referral.Validate(req.GetReferral(), a.svc.now()))
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
