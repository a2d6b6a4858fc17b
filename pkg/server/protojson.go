package server

import (
	"context"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"mash/pkg/apierr"
	"mash/pkg/text"
)

// MaxJSONBody bounds HTTP/JSON request bodies of HandleProto routes.
const MaxJSONBody = 1 << 20

var jsonOut = protojson.MarshalOptions{}

// HandleProto registers an authenticated HTTP/JSON route for a gRPC method: a JSON body is
// decoded into a new request with the protobuf JSON mapping, fill adds what the path or
// query carries, call runs the method, and the response is written with the same mapping.
// A body of another media type is refused, so a field sent as text/plain is never dropped
// without a word (an expected version, say). Errors go through apierr, so both transports
// answer alike.
func HandleProto[Req, Resp proto.Message](s *Server, pattern string, newReq func() Req,
	fill func(r *http.Request, body []byte, req Req) error, call func(context.Context, Req) (Resp, error)) {
	handleProto(s, pattern, nil, newReq, fill, call)
}

// HandleProtoWithBody is HandleProto for a route that also takes a body of one of
// mediaTypes, such as a YAML rule pack: such a body reaches fill as it came, undecoded.
// Other media types are refused, naming the ones the route takes.
func HandleProtoWithBody[Req, Resp proto.Message](s *Server, pattern string, mediaTypes []string, newReq func() Req,
	fill func(r *http.Request, body []byte, req Req) error, call func(context.Context, Req) (Resp, error)) {
	handleProto(s, pattern, mediaTypes, newReq, fill, call)
}

func handleProto[Req, Resp proto.Message](s *Server, pattern string, mediaTypes []string, newReq func() Req,
	fill func(r *http.Request, body []byte, req Req) error, call func(context.Context, Req) (Resp, error)) {
	s.HandleAPI(pattern, func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxJSONBody))
		if err != nil {
			s.WriteError(w, r, apierr.Invalid([]apierr.Violation{{Field: "body", Reason: fmt.Sprintf("could not be read or is larger than %d bytes", MaxJSONBody)}}))
			return
		}
		req := newReq()
		ct, mt := r.Header.Get("Content-Type"), MediaType(r)
		switch {
		case len(body) == 0:
		case ct == "" || mt == "application/json" || strings.HasSuffix(mt, "+json"):
			if err := protojson.Unmarshal(body, req); err != nil {
				s.WriteError(w, r, apierr.Invalid([]apierr.Violation{{Field: "body", Reason: "is not a valid JSON request: " + strings.TrimPrefix(err.Error(), "proto: ")}}))
				return
			}
		case !slices.Contains(mediaTypes, mt):
			s.WriteError(w, r, apierr.Invalid([]apierr.Violation{{Field: "body", Reason: fmt.Sprintf("has Content-Type %q; this route takes %s",
				ct, strings.Join(append([]string{"application/json"}, mediaTypes...), " or "))}}))
			return
		}
		if fill != nil {
			if err := fill(r, body, req); err != nil {
				s.WriteError(w, r, err)
				return
			}
		}
		if err := text.Invalid(req); err != nil {
			s.WriteError(w, r, err)
			return
		}
		resp, err := call(r.Context(), req)
		if err != nil {
			s.WriteError(w, r, err)
			return
		}
		WriteProtoJSON(w, http.StatusOK, resp)
	})
}

// MediaType is r's Content-Type without its parameters ("application/yaml" for
// "application/yaml; charset=utf-8"), or "" when there is none or it cannot be read.
func MediaType(r *http.Request) string {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		return ""
	}
	return mt
}

// WriteProtoJSON writes m with the protobuf JSON mapping.
func WriteProtoJSON(w http.ResponseWriter, code int, m proto.Message) {
	b, err := jsonOut.Marshal(m)
	if err != nil {
		apierr.WriteHTTP(w, fmt.Errorf("encode response: %w", err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}
