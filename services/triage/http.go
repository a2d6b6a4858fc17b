package triage

import (
	"bytes"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"mash/pkg/apierr"
	"mash/pkg/dashcsv"
	"mash/pkg/server"
	"mash/pkg/text"
	rulesv1 "mash/proto/mash/rules/v1"
	triagev1 "mash/proto/mash/triage/v1"
)

// registerHTTP maps the HTTP/JSON routes onto the gRPC methods.
func registerHTTP(srv *server.Server, a *grpcAPI) {
	server.HandleProto(srv, "GET /v1/queue", func() *triagev1.ListQueueRequest { return &triagev1.ListQueueRequest{} }, fillQueue, a.ListQueue)
	server.HandleProto(srv, "GET /v1/cases/{referralId}", func() *triagev1.GetCaseRequest { return &triagev1.GetCaseRequest{} },
		func(r *http.Request, _ []byte, req *triagev1.GetCaseRequest) error {
			req.ReferralId = r.PathValue("referralId")
			return nil
		}, a.GetCase)
	server.HandleProto(srv, "POST /v1/cases/{referralId}/claim", func() *triagev1.ClaimCaseRequest { return &triagev1.ClaimCaseRequest{} },
		func(r *http.Request, _ []byte, req *triagev1.ClaimCaseRequest) error {
			req.ReferralId = r.PathValue("referralId")
			return nil
		}, a.ClaimCase)
	server.HandleProto(srv, "POST /v1/cases/{referralId}/release", func() *triagev1.ReleaseCaseRequest { return &triagev1.ReleaseCaseRequest{} },
		func(r *http.Request, _ []byte, req *triagev1.ReleaseCaseRequest) error {
			req.ReferralId = r.PathValue("referralId")
			return nil
		}, a.ReleaseCase)
	server.HandleProto(srv, "POST /v1/cases/{referralId}/assign", func() *triagev1.AssignCaseRequest { return &triagev1.AssignCaseRequest{} },
		func(r *http.Request, _ []byte, req *triagev1.AssignCaseRequest) error {
			req.ReferralId = r.PathValue("referralId")
			return nil
		}, a.AssignCase)
	server.HandleProto(srv, "POST /v1/cases/{referralId}/sharing-authorisation", func() *triagev1.AuthoriseSharingRequest { return &triagev1.AuthoriseSharingRequest{} },
		func(r *http.Request, _ []byte, req *triagev1.AuthoriseSharingRequest) error {
			req.ReferralId = r.PathValue("referralId")
			return nil
		}, a.AuthoriseSharing)
	server.HandleProto(srv, "POST /v1/cases/{referralId}/sharing-authorisation:revoke", func() *triagev1.RevokeSharingRequest { return &triagev1.RevokeSharingRequest{} },
		func(r *http.Request, _ []byte, req *triagev1.RevokeSharingRequest) error {
			req.ReferralId = r.PathValue("referralId")
			return nil
		}, a.RevokeSharing)
	server.HandleProto(srv, "POST /v1/cases/{referralId}/consent", func() *triagev1.RecordConsentRequest { return &triagev1.RecordConsentRequest{} },
		func(r *http.Request, _ []byte, req *triagev1.RecordConsentRequest) error {
			req.ReferralId = r.PathValue("referralId")
			return nil
		}, a.RecordConsent)
	server.HandleProto(srv, "POST /v1/cases/{referralId}/decide", func() *triagev1.DecideCaseRequest { return &triagev1.DecideCaseRequest{} },
		func(r *http.Request, _ []byte, req *triagev1.DecideCaseRequest) error {
			req.ReferralId = r.PathValue("referralId")
			return nil
		}, a.DecideCase)
	server.HandleProto(srv, "POST /v1/cases/{referralId}/strategy", func() *triagev1.RecordStrategyDiscussionRequest {
		return &triagev1.RecordStrategyDiscussionRequest{}
	}, func(r *http.Request, _ []byte, req *triagev1.RecordStrategyDiscussionRequest) error {
		req.ReferralId = r.PathValue("referralId")
		return nil
	}, a.RecordStrategyDiscussion)
	server.HandleProto(srv, "POST /v1/cases/{referralId}/close", func() *triagev1.CloseCaseRequest { return &triagev1.CloseCaseRequest{} },
		func(r *http.Request, _ []byte, req *triagev1.CloseCaseRequest) error {
			req.ReferralId = r.PathValue("referralId")
			return nil
		}, a.CloseCase)
	server.HandleProto(srv, "POST /v1/cases/{referralId}/legal-hold", func() *triagev1.PlaceLegalHoldRequest { return &triagev1.PlaceLegalHoldRequest{} },
		func(r *http.Request, _ []byte, req *triagev1.PlaceLegalHoldRequest) error {
			req.ReferralId = r.PathValue("referralId")
			return nil
		}, a.PlaceLegalHold)
	server.HandleProto(srv, "POST /v1/cases/{referralId}/legal-hold/lift", func() *triagev1.LiftLegalHoldRequest { return &triagev1.LiftLegalHoldRequest{} },
		func(r *http.Request, _ []byte, req *triagev1.LiftLegalHoldRequest) error {
			req.ReferralId = r.PathValue("referralId")
			return nil
		}, a.LiftLegalHold)
	server.HandleProto(srv, "POST /v1/cases/{referralId}/erase", func() *triagev1.EraseCaseRequest { return &triagev1.EraseCaseRequest{} },
		func(r *http.Request, _ []byte, req *triagev1.EraseCaseRequest) error {
			req.ReferralId = r.PathValue("referralId")
			return nil
		}, a.EraseCase)
	server.HandleProto(srv, "POST /v1/cases/{referralId}/information-requests", func() *triagev1.RequestInformationRequest {
		return &triagev1.RequestInformationRequest{}
	}, func(r *http.Request, _ []byte, req *triagev1.RequestInformationRequest) error {
		req.ReferralId = r.PathValue("referralId")
		return nil
	}, a.RequestInformation)
	server.HandleProto(srv, "GET /v1/information-requests", func() *triagev1.ListInformationRequestsRequest {
		return &triagev1.ListInformationRequestsRequest{}
	}, func(r *http.Request, _ []byte, req *triagev1.ListInformationRequestsRequest) error {
		q := query(r)
		req.ReferralId, req.Agency, req.PageToken = q.get("referralId"), q.get("agency"), q.get("pageToken")
		req.OpenOnly = q.boolean("openOnly")
		req.PageSize = q.int32("pageSize")
		return q.err()
	}, a.ListInformationRequests)
	server.HandleProto(srv, "POST /v1/information-requests/{requestId}/answer", func() *triagev1.AnswerInformationRequestRequest {
		return &triagev1.AnswerInformationRequestRequest{}
	}, func(r *http.Request, _ []byte, req *triagev1.AnswerInformationRequestRequest) error {
		req.RequestId = r.PathValue("requestId")
		return nil
	}, a.AnswerInformationRequest)
	server.HandleProto(srv, "POST /v1/cases/{referralId}/disagreements", func() *triagev1.RaiseDisagreementRequest {
		return &triagev1.RaiseDisagreementRequest{}
	}, func(r *http.Request, _ []byte, req *triagev1.RaiseDisagreementRequest) error {
		req.ReferralId = r.PathValue("referralId")
		return nil
	}, a.RaiseDisagreement)
	server.HandleProto(srv, "GET /v1/disagreements", func() *triagev1.ListDisagreementsRequest { return &triagev1.ListDisagreementsRequest{} },
		func(r *http.Request, _ []byte, req *triagev1.ListDisagreementsRequest) error {
			q := query(r)
			req.Partnership, req.ReferralId, req.PageToken = q.get("partnership"), q.get("referralId"), q.get("pageToken")
			req.OpenOnly = q.boolean("openOnly")
			req.PageSize = q.int32("pageSize")
			return q.err()
		}, a.ListDisagreements)
	server.HandleProto(srv, "POST /v1/disagreements/{disagreementId}/escalate", func() *triagev1.EscalateDisagreementRequest {
		return &triagev1.EscalateDisagreementRequest{}
	}, func(r *http.Request, _ []byte, req *triagev1.EscalateDisagreementRequest) error {
		req.DisagreementId = r.PathValue("disagreementId")
		return nil
	}, a.EscalateDisagreement)
	server.HandleProto(srv, "POST /v1/disagreements/{disagreementId}/resolve", func() *triagev1.ResolveDisagreementRequest {
		return &triagev1.ResolveDisagreementRequest{}
	}, func(r *http.Request, _ []byte, req *triagev1.ResolveDisagreementRequest) error {
		req.DisagreementId = r.PathValue("disagreementId")
		return nil
	}, a.ResolveDisagreement)
	server.HandleProto(srv, "GET /v1/dashboard", func() *triagev1.GetDashboardRequest { return &triagev1.GetDashboardRequest{} }, fillDashboard, a.GetDashboard)
	srv.HandleAPI("GET /v1/dashboard.csv", func(w http.ResponseWriter, r *http.Request) {
		req := &triagev1.GetDashboardRequest{}
		if err := fillDashboard(r, nil, req); err != nil {
			srv.WriteError(w, r, err)
			return
		}
		if err := text.Invalid(req); err != nil {
			srv.WriteError(w, r, err)
			return
		}
		resp, err := a.GetDashboard(r.Context(), req)
		if err != nil {
			srv.WriteError(w, r, err)
			return
		}
		var buf bytes.Buffer
		if err := dashcsv.Write(&buf, resp); err != nil {
			srv.WriteError(w, r, fmt.Errorf("write dashboard CSV: %w", err))
			return
		}
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", `attachment; filename="mash-dashboard.csv"`)
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(buf.Bytes())
	})
}

// params reads query parameters by their JSON (camelCase) or proto (snake_case) names and
// collects what does not parse.
type params struct {
	r  *http.Request
	vs []apierr.Violation
	// known is every parameter the handler asked for: any other one is refused, so a
	// misspelt filter ("states", "overdue") is an error rather than silently ignored.
	known map[string]bool
}

func query(r *http.Request) *params { return &params{r: r, known: map[string]bool{}} }

func snake(name string) string {
	var b strings.Builder
	for _, c := range name {
		if c >= 'A' && c <= 'Z' {
			b.WriteByte('_')
			c += 'a' - 'A'
		}
		b.WriteRune(c)
	}
	return b.String()
}

func (p *params) all(name string) []string {
	p.known[name], p.known[snake(name)] = true, true
	q := p.r.URL.Query()
	var out []string
	for _, k := range []string{name, snake(name)} {
		for _, v := range q[k] {
			for _, part := range strings.Split(v, ",") {
				if part = strings.TrimSpace(part); part != "" {
					out = append(out, part)
				}
			}
		}
		if k == snake(name) {
			break
		}
	}
	return out
}

func (p *params) get(name string) string {
	if v := p.all(name); len(v) > 0 {
		return v[0]
	}
	return ""
}

func (p *params) boolean(name string) bool {
	v := p.get(name)
	if v == "" {
		return false
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		p.vs = append(p.vs, apierr.Violation{Field: name, Reason: "must be true or false"})
	}
	return b
}

func (p *params) int32(name string) int32 {
	v := p.get(name)
	if v == "" {
		return 0
	}
	n, err := strconv.ParseInt(v, 10, 32)
	if err != nil {
		p.vs = append(p.vs, apierr.Violation{Field: name, Reason: "must be a whole number"})
	}
	return int32(n)
}

func (p *params) time(name string) *timestamppb.Timestamp {
	v := p.get(name)
	if v == "" {
		return nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		if d, derr := time.Parse(time.DateOnly, v); derr == nil {
			return timestamppb.New(d)
		}
		p.vs = append(p.vs, apierr.Violation{Field: name, Reason: "must be an RFC 3339 time such as 2026-11-01T00:00:00Z, or a date"})
		return nil
	}
	return timestamppb.New(t)
}

// enum reads repeated enum values by name, with or without the enum's prefix
// (RAG_RED or RED; LEVEL_3A or 3A).
func (p *params) enum(name, prefix string, values map[string]int32) []int32 {
	var out []int32
	for _, v := range p.all(name) {
		up := strings.ToUpper(v)
		n, ok := values[up]
		if !ok {
			n, ok = values[prefix+up]
		}
		if !ok || n == 0 {
			p.vs = append(p.vs, apierr.Violation{Field: name, Reason: fmt.Sprintf("%q is not a known value", v)})
			continue
		}
		out = append(out, n)
	}
	return out
}

func (p *params) err() error {
	var unknown []string
	for k := range p.r.URL.Query() {
		if !p.known[k] {
			unknown = append(unknown, k)
		}
	}
	sort.Strings(unknown)
	for _, k := range unknown {
		p.vs = append(p.vs, apierr.Violation{Field: k, Reason: "is not a parameter of this call"})
	}
	if len(p.vs) > 0 {
		return apierr.Invalid(p.vs)
	}
	return nil
}

func fillQueue(r *http.Request, _ []byte, req *triagev1.ListQueueRequest) error {
	q := query(r)
	req.Partnership, req.Concern, req.SourceAgency = q.get("partnership"), q.get("concern"), q.get("sourceAgency")
	req.Assignee, req.PageToken = q.get("assignee"), q.get("pageToken")
	req.OverdueOnly = q.boolean("overdueOnly")
	req.PageSize = q.int32("pageSize")
	for _, n := range q.enum("state", "", triagev1.CaseState_value) {
		req.States = append(req.States, triagev1.CaseState(n))
	}
	for _, n := range q.enum("rag", "RAG_", rulesv1.Rag_value) {
		req.Rags = append(req.Rags, rulesv1.Rag(n))
	}
	for _, n := range q.enum("level", "LEVEL_", rulesv1.Level_value) {
		req.Levels = append(req.Levels, rulesv1.Level(n))
	}
	return q.err()
}

func fillDashboard(r *http.Request, _ []byte, req *triagev1.GetDashboardRequest) error {
	q := query(r)
	req.Partnership = q.get("partnership")
	req.From, req.To = q.time("from"), q.time("to")
	return q.err()
}
