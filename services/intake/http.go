package intake

import (
	"fmt"
	"io"
	"net/http"
	"strconv"

	"google.golang.org/protobuf/proto"

	"mash/pkg/apierr"
	"mash/pkg/referral"
	"mash/pkg/server"
	"mash/pkg/text"
	intakev1 "mash/proto/mash/intake/v1"
)

// registerHTTP maps the HTTP/JSON API onto the gRPC methods, so both transports share
// validation, authorisation and errors. JSON follows the protobuf mapping (lowerCamelCase).
func registerHTTP(srv *server.Server, s *Service) {
	api := &grpcAPI{svc: s}
	srv.HandleAPI("POST /v1/referrals", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, referral.MaxBodyBytes+1))
		if err != nil {
			srv.WriteError(w, r, apierr.Invalid([]apierr.Violation{{Field: "body", Reason: fmt.Sprintf("could not be read or is larger than %d bytes", referral.MaxBodyBytes)}}))
			return
		}
		sub, vs := referral.Decode(body)
		if len(vs) > 0 {
			srv.WriteError(w, r, invalid(vs))
			return
		}
		// The body is the referral itself, so fields are named as in it (child.firstName).
		if err := text.Invalid(sub); err != nil {
			srv.WriteError(w, r, err)
			return
		}
		resp, err := api.SubmitReferral(r.Context(), &intakev1.SubmitReferralRequest{Referral: sub})
		if err != nil {
			srv.WriteError(w, r, err)
			return
		}
		code := http.StatusCreated
		if resp.GetAcknowledgement().GetReplay() {
			code = http.StatusOK
		} else {
			w.Header().Set("Location", "/v1/referrals/"+resp.GetAcknowledgement().GetReferralId())
		}
		writeJSON(w, code, resp.GetAcknowledgement())
	})
	srv.HandleAPI("GET /v1/referrals/{id}", func(w http.ResponseWriter, r *http.Request) {
		req := &intakev1.GetReferralRequest{Id: r.PathValue("id")}
		if err := text.Invalid(req); err != nil {
			srv.WriteError(w, r, err)
			return
		}
		resp, err := api.GetReferral(r.Context(), req)
		if err != nil {
			srv.WriteError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, resp.GetReferral())
	})
	srv.HandleAPI("GET /v1/referrals", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		req := &intakev1.ListReferralsRequest{PageToken: q.Get("pageToken"), Partnership: q.Get("partnership")}
		if v := q.Get("pageSize"); v != "" {
			n, err := strconv.ParseInt(v, 10, 32)
			if err != nil {
				srv.WriteError(w, r, apierr.Invalid([]apierr.Violation{{Field: "pageSize", Reason: "must be a whole number"}}))
				return
			}
			req.PageSize = int32(n)
		}
		if err := text.Invalid(req); err != nil {
			srv.WriteError(w, r, err)
			return
		}
		resp, err := api.ListReferrals(r.Context(), req)
		if err != nil {
			srv.WriteError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, resp)
	})
}

func writeJSON(w http.ResponseWriter, code int, m proto.Message) { server.WriteProtoJSON(w, code, m) }
