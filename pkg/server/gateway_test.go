package server

import (
	"errors"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/grpc-ecosystem/grpc-gateway/v2/utilities"
	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"mash/pkg/apierr"
	rulesv1 "mash/proto/mash/rules/v1"
)

func TestMuxPatternFromHTTPRule(t *testing.T) {
	in := (&rulesv1.ActivatePackRequest{}).ProtoReflect().Descriptor()
	for _, tc := range []struct {
		rule *annotations.HttpRule
		want string
	}{
		{&annotations.HttpRule{Pattern: &annotations.HttpRule_Post{Post: "/v1/packs/{pack_id}/activate"}}, "POST /v1/packs/{packId}/activate"},
		{&annotations.HttpRule{Pattern: &annotations.HttpRule_Post{Post: "/v1/packs:validate"}}, "POST /v1/packs:validate"},
		{&annotations.HttpRule{Pattern: &annotations.HttpRule_Get{Get: "/v1/packs"}}, "GET /v1/packs"},
	} {
		got, err := muxPattern(tc.rule, in)
		if err != nil || got != tc.want {
			t.Errorf("muxPattern(%v) = %q, %v; want %q", tc.rule, got, err, tc.want)
		}
	}
	for _, bad := range []string{"/v1/packs/{pack_id=packs/*}", "/v1/packs/{nope}", "/v1/packs/{pack_id"} {
		if _, err := muxPattern(&annotations.HttpRule{Pattern: &annotations.HttpRule_Get{Get: bad}}, in); err == nil {
			t.Errorf("muxPattern(%q) accepted a path the mux cannot serve", bad)
		}
	}
}

// A request the gateway cannot read gets apierr's 400 naming every field, though the
// generated handlers pass on only an error's text.
func TestGatewayDecodingErrorsNameEveryField(t *testing.T) {
	var m jsonMarshaler
	req := &rulesv1.ReplayPackRequest{}
	err := m.Unmarshal([]byte(`{"source":"x","last":"five","from":"yesterday","lsat":1}`), req)
	if err == nil {
		t.Fatal("a bad body was accepted")
	}
	// What the generated handler does with it.
	restored := gatewayError(status.Errorf(codes.InvalidArgument, "%v", err))
	var e *apierr.Error
	if !errors.As(restored, &e) {
		t.Fatalf("restored %v, want an apierr.Error", restored)
	}
	var fields []string
	for _, v := range e.Violations {
		fields = append(fields, v.Field)
	}
	if got := strings.Join(fields, ","); got != "last,from,lsat" {
		t.Errorf("fields %s, want last,from,lsat", got)
	}
	if req.GetSource() != "x" {
		t.Errorf("the readable field was not kept: %v", req)
	}

	q := &rulesv1.ListPacksRequest{}
	err = queryParser{}.Parse(q, url.Values{"includeSource": {"maybe"}, "partnership": {"p"}}, utilities.NewDoubleArray(nil))
	restored = gatewayError(status.Errorf(codes.InvalidArgument, "%v", err))
	if !errors.As(restored, &e) || len(e.Violations) != 1 || e.Violations[0].Field != "includeSource" ||
		e.Violations[0].Reason != "must be true or false" {
		t.Errorf("query: %v", restored)
	}
	// Other errors pass unchanged.
	if other := status.Error(codes.InvalidArgument, "x"); gatewayError(other) != other {
		t.Error("an error without violations was changed")
	}
}

func TestSourceBodyTurnsAPackIntoARequest(t *testing.T) {
	hook := SourceBody("source", "application/yaml")
	r := httptest.NewRequest("POST", "/v1/packs:replay?last=5", nil)
	r.Header.Set("Content-Type", "application/yaml")
	body, err := hook(r, []byte("rules: []\n"))
	if err != nil {
		t.Fatal(err)
	}
	req := &rulesv1.ReplayPackRequest{}
	if err := (jsonMarshaler{}).Unmarshal(body, req); err != nil || req.GetSource() != "rules: []\n" || req.GetLast() != 5 {
		t.Fatalf("request %v, %v", req, err)
	}
	if r.URL.RawQuery != "" || MediaType(r) != "application/json" {
		t.Errorf("the request still carries the query %q or type %q", r.URL.RawQuery, MediaType(r))
	}
	r = httptest.NewRequest("POST", "/v1/packs", nil)
	r.Header.Set("Content-Type", "text/plain")
	if _, err := hook(r, []byte("x")); apierr.Status(err).Code() != codes.InvalidArgument || !strings.Contains(apierr.Status(err).Message(), "application/yaml") {
		t.Errorf("text/plain: %v, want the body refused naming the types taken", err)
	}
}
