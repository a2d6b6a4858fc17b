package server

import (
	"errors"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/utilities"
	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/mash-hub/mash/pkg/apierr"
	auditv1 "github.com/mash-hub/mash/proto/mash/audit/v1"
	notifyv1 "github.com/mash-hub/mash/proto/mash/notify/v1"
	rulesv1 "github.com/mash-hub/mash/proto/mash/rules/v1"
	triagev1 "github.com/mash-hub/mash/proto/mash/triage/v1"
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
		got, _, err := muxPattern(tc.rule, in)
		if err != nil || got != tc.want {
			t.Errorf("muxPattern(%v) = %q, %v; want %q", tc.rule, got, err, tc.want)
		}
	}
	// A field of a field names its wildcard by both JSON names; a message is not a value.
	put := (&notifyv1.PutAgencyRequest{}).ProtoReflect().Descriptor()
	if got, _, err := muxPattern(&annotations.HttpRule{Pattern: &annotations.HttpRule_Put{Put: "/v1/agencies/{agency.id}"}}, put); err != nil || got != "PUT /v1/agencies/{agencyId}" {
		t.Errorf("nested variable: %q, %v", got, err)
	}
	for _, bad := range []string{"/v1/agencies/{agency}", "/v1/agencies/{agency.nope}", "/v1/agencies/{agency.roles}"} {
		if _, _, err := muxPattern(&annotations.HttpRule{Pattern: &annotations.HttpRule_Put{Put: bad}}, put); err == nil {
			t.Errorf("muxPattern(%q) accepted a variable that names no singular value", bad)
		}
	}
	for _, bad := range []string{"/v1/packs/{pack_id=packs/*}", "/v1/packs/{nope}", "/v1/packs/{pack_id"} {
		if _, _, err := muxPattern(&annotations.HttpRule{Pattern: &annotations.HttpRule_Get{Get: bad}}, in); err == nil {
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

// The gateway reads a query as the hand-written routes did: enums without their prefix and
// in any case, lists of enums comma-separated and under a singular name, dates for times,
// named values (order=oldest), and for strict requests a refusal of names it does not know,
// every problem named at once by the name the caller used.
func TestGatewayQueryReadsAsTheRoutesDid(t *testing.T) {
	parse := func(m proto.Message, q string) error {
		t.Helper()
		values, err := url.ParseQuery(q)
		if err != nil {
			t.Fatal(err)
		}
		err = queryParser{}.Parse(m, values, utilities.NewDoubleArray(nil))
		if err != nil {
			err = gatewayError(status.Error(codes.InvalidArgument, err.Error()))
		}
		return err
	}
	queue := (&triagev1.ListQueueRequest{}).ProtoReflect().Descriptor()
	setQueryRules(queue, map[string]QueryParam{"state": {Field: "states"}, "rag": {Field: "rags"}, "order": {Field: "nope"}}, true)
	req := &triagev1.ListQueueRequest{}
	if err := parse(req, "state=awaiting_decision,DECIDED&states=CLOSED&rag=red&rags=RAG_AMBER&levels=3a&overdue_only=true&pageSize=5&partnership="); err != nil {
		t.Fatal(err)
	}
	want := &triagev1.ListQueueRequest{
		States: []triagev1.CaseState{triagev1.CaseState_AWAITING_DECISION, triagev1.CaseState_DECIDED, triagev1.CaseState_CLOSED},
		Rags:   []rulesv1.Rag{rulesv1.Rag_RAG_RED, rulesv1.Rag_RAG_AMBER}, Levels: []rulesv1.Level{rulesv1.Level_LEVEL_3A},
		OverdueOnly: true, PageSize: 5,
	}
	if !proto.Equal(req, want) {
		t.Errorf("parsed %v, want %v", req, want)
	}
	err := parse(&triagev1.ListQueueRequest{}, "state=lost&rag=CASE_STATE_UNSPECIFIED&pageSize=x&overdue=true")
	var e *apierr.Error
	if !errors.As(err, &e) {
		t.Fatalf("bad query: %v", err)
	}
	var got []string
	for _, v := range e.Violations {
		got = append(got, v.Field)
	}
	if strings.Join(got, ",") != "pageSize,rag,state,overdue" || e.Violations[3].Reason != "is not a parameter of this call" {
		t.Errorf("violations %v", e.Violations)
	}

	dash := &triagev1.GetDashboardRequest{}
	if err := parse(dash, "from=2026-01-01&to=2026-02-01T00:00:00Z"); err != nil || dash.GetFrom().AsTime().Format(time.RFC3339) != "2026-01-01T00:00:00Z" {
		t.Errorf("dates: %v, %v", dash, err)
	}

	search := (&auditv1.SearchEntriesRequest{}).ProtoReflect().Descriptor()
	setQueryRules(search, map[string]QueryParam{"order": {Field: "oldest_first", Values: map[string]string{"newest": "false", "oldest": "true"}, Reason: "must be newest or oldest"}}, false)
	entries := &auditv1.SearchEntriesRequest{}
	if err := parse(entries, "order=oldest&unknown=1"); err != nil || !entries.GetOldestFirst() {
		t.Errorf("order=oldest: %v, %v", entries, err)
	}
	if err := parse(&auditv1.SearchEntriesRequest{}, "order=sideways"); !errors.As(err, &e) || e.Violations[0].Field != "order" ||
		e.Violations[0].Reason != "must be newest or oldest" {
		t.Errorf("order=sideways: %v", err)
	}
}
