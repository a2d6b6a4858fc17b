package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"

	"github.com/mash-hub/mash/pkg/apierr"
	"github.com/mash-hub/mash/pkg/jsonfields"
	"github.com/mash-hub/mash/pkg/server"
	notifyv1 "github.com/mash-hub/mash/proto/mash/notify/v1"
)

// registerHTTP serves the HTTP/JSON routes notify's contract declares (google.api.http in
// proto/mash/notify/v1/notify.proto) through the generated gateway.
func registerHTTP(srv *server.Server, a *grpcAPI) {
	srv.HandleGateway(server.GatewayService{
		Desc: &notifyv1.NotifyService_ServiceDesc,
		Impl: a,
		Register: func(ctx context.Context, mux *runtime.ServeMux, conn grpc.ClientConnInterface) error {
			return notifyv1.RegisterNotifyServiceHandlerClient(ctx, mux, notifyv1.NewNotifyServiceClient(conn))
		},
		Before: map[string]server.BodyHook{
			"PUT /v1/agencies/{agencyId}": samePathValue("agency.id", "agencyId", "differs from the id in the path"),
			"PUT /v1/partnerships/{partnership}/ack-deadlines": samePathValue("partnership", "partnership",
				"differs from the partnership in the path"),
			"DELETE /v1/agencies/{agencyId}": removalBody,
		},
		Validators: []server.Validator{
			server.ValidateWith(checkPutAgency),
			server.ValidateWith(checkAckDeadlines),
			server.ValidateWith(checkRetry),
			server.ValidateWith(checkApprove),
			server.ValidateWith(checkReject),
			server.ValidateWith(checkAcknowledge),
		},
	})
}

// registerInboxHTTP serves the agency inbox's HTTP/JSON route (google.api.http in
// proto/mash/notify/v1/inbox.proto) through the generated gateway.
func registerInboxHTTP(srv *server.Server, a *inboxAPI) {
	srv.HandleGateway(server.GatewayService{
		Desc: &notifyv1.AgencyInboxService_ServiceDesc,
		Impl: a,
		Register: func(ctx context.Context, mux *runtime.ServeMux, conn grpc.ClientConnInterface) error {
			return notifyv1.RegisterAgencyInboxServiceHandlerClient(ctx, mux, notifyv1.NewAgencyInboxServiceClient(conn))
		},
	})
}

// samePathValue refuses a body whose field (a JSON path, "agency.id") is set and differs
// from the path's wildcard: the gateway would silently let the path win, and a client that
// sent one agency's entry to another's address has made a mistake worth naming.
func samePathValue(field, wildcard, reason string) server.BodyHook {
	return func(r *http.Request, body []byte) ([]byte, error) {
		var v any
		if json.Unmarshal(body, &v) != nil {
			return body, nil // the gateway names what cannot be read
		}
		for _, part := range strings.Split(field, ".") {
			m, _ := v.(map[string]any)
			v = m[part]
		}
		if s, ok := v.(string); ok && s != "" && s != r.PathValue(wildcard) {
			return nil, apierr.Invalid([]apierr.Violation{{Field: field, Reason: reason}})
		}
		return body, nil
	}
}

// removalBody keeps DELETE /v1/agencies/{agencyId} taking its partnership and reason from a
// JSON body as well as from the query (the contract puts them in the query), as the route
// always has: a body's fields become query parameters, where the query does not give them.
func removalBody(r *http.Request, body []byte) ([]byte, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return body, nil
	}
	req := &notifyv1.RemoveAgencyRequest{}
	vs, err := jsonfields.Decode(body, req)
	switch {
	case len(vs) > 0:
		out := make([]apierr.Violation, len(vs))
		for i, v := range vs {
			out[i] = apierr.Violation{Field: v.Field, Reason: v.Reason}
		}
		return nil, apierr.Invalid(out)
	case err != nil:
		return nil, apierr.Invalid([]apierr.Violation{{Field: "body", Reason: "is not a valid JSON request: " + strings.TrimPrefix(err.Error(), "proto: ")}})
	}
	q := r.URL.Query()
	for k, v := range map[string]string{"partnership": req.GetPartnership(), "reason": req.GetReason()} {
		if v != "" && q.Get(k) == "" {
			q.Set(k, v)
		}
	}
	r.URL.RawQuery = q.Encode()
	return nil, nil
}
