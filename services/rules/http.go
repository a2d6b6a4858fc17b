package rules

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"mash/pkg/apierr"
	"mash/pkg/server"
	rulesv1 "mash/proto/mash/rules/v1"
)

// registerHTTP maps the HTTP/JSON routes onto the gRPC methods. Pack routes also take the
// pack itself as the body with Content-Type application/yaml, so a lead can send the file.
func registerHTTP(srv *server.Server, a *grpcAPI) {
	server.HandleProto(srv, "POST /v1/rules:evaluate", func() *rulesv1.EvaluateReferralRequest { return &rulesv1.EvaluateReferralRequest{} },
		nil, a.EvaluateReferral)
	server.HandleProtoWithBody(srv, "POST /v1/packs:validate", yamlTypes, func() *rulesv1.ValidatePackRequest { return &rulesv1.ValidatePackRequest{} },
		func(r *http.Request, body []byte, req *rulesv1.ValidatePackRequest) error {
			if isYAML(r) {
				req.Source = string(body)
			}
			return nil
		}, a.ValidatePack)
	server.HandleProtoWithBody(srv, "POST /v1/packs", yamlTypes, func() *rulesv1.UploadPackRequest { return &rulesv1.UploadPackRequest{} },
		func(r *http.Request, body []byte, req *rulesv1.UploadPackRequest) error {
			if isYAML(r) {
				req.Source = string(body)
			}
			return nil
		}, a.UploadPack)
	server.HandleProto(srv, "POST /v1/packs/{id}/activate", func() *rulesv1.ActivatePackRequest { return &rulesv1.ActivatePackRequest{} },
		func(r *http.Request, _ []byte, req *rulesv1.ActivatePackRequest) error {
			req.PackId = r.PathValue("id")
			return nil
		}, a.ActivatePack)
	server.HandleProto(srv, "GET /v1/packs", func() *rulesv1.ListPacksRequest { return &rulesv1.ListPacksRequest{} },
		func(r *http.Request, _ []byte, req *rulesv1.ListPacksRequest) error {
			req.Partnership = r.URL.Query().Get("partnership")
			switch v := r.URL.Query().Get("includeSource"); v {
			case "", "false":
			case "true":
				req.IncludeSource = true
			default:
				return apierr.Invalid([]apierr.Violation{{Field: "includeSource", Reason: "must be true or false"}})
			}
			return nil
		}, a.ListPacks)
	server.HandleProtoWithBody(srv, "POST /v1/packs:replay", yamlTypes, func() *rulesv1.ReplayPackRequest { return &rulesv1.ReplayPackRequest{} },
		fillReplay, a.ReplayPack)
	server.HandleProto(srv, "GET /v1/decisions/{referralId}", func() *rulesv1.GetDecisionRequest { return &rulesv1.GetDecisionRequest{} },
		func(r *http.Request, _ []byte, req *rulesv1.GetDecisionRequest) error {
			req.ReferralId = r.PathValue("referralId")
			return nil
		}, a.GetDecision)
	// The old decision routes answer, whatever the body, where decisions are made now.
	for _, route := range []string{"confirm", "override"} {
		srv.HandleAPI("POST /v1/decisions/{referralId}/"+route, func(w http.ResponseWriter, r *http.Request) {
			_, err := a.ConfirmDecision(r.Context(), &rulesv1.ConfirmDecisionRequest{ReferralId: r.PathValue("referralId")})
			srv.WriteError(w, r, err)
		})
	}
}

// yamlTypes are the media types a rule pack may be sent as.
var yamlTypes = []string{"application/yaml", "text/yaml", "application/x-yaml"}

func isYAML(r *http.Request) bool {
	return slices.Contains(yamlTypes, server.MediaType(r))
}

// fillReplay takes the replay's parameters from the query when the body is the YAML pack:
// ?last=500 or ?from=2026-01-01T00:00:00Z&to=...&examples=5.
func fillReplay(r *http.Request, body []byte, req *rulesv1.ReplayPackRequest) error {
	if !isYAML(r) {
		return nil
	}
	req.Source = string(body)
	q := r.URL.Query()
	var vs []apierr.Violation
	for _, p := range []struct {
		name string
		dst  *int32
	}{{"last", &req.Last}, {"examples", &req.Examples}} {
		if v := q.Get(p.name); v != "" {
			n, err := strconv.ParseInt(v, 10, 32)
			if err != nil {
				vs = append(vs, apierr.Violation{Field: p.name, Reason: "must be a whole number"})
			}
			*p.dst = int32(n)
		}
	}
	for _, p := range []struct {
		name string
		dst  **timestamppb.Timestamp
	}{{"from", &req.From}, {"to", &req.To}} {
		if v := q.Get(p.name); v != "" {
			t, err := time.Parse(time.RFC3339, strings.TrimSpace(v))
			if err != nil {
				vs = append(vs, apierr.Violation{Field: p.name, Reason: "must be an RFC 3339 time such as 2026-11-01T00:00:00Z"})
			}
			*p.dst = timestamppb.New(t)
		}
	}
	if len(vs) > 0 {
		return apierr.Invalid(vs)
	}
	return nil
}
