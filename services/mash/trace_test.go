package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/mash-hub/mash/pkg/auth"
	"github.com/mash-hub/mash/pkg/tracing"
	intakev1 "github.com/mash-hub/mash/proto/mash/intake/v1"
)

// eventually polls cond until it holds or 30 seconds pass, failing the test naming what
// never happened.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// spanIndex finds exported spans by service and name.
type spanIndex []tracetest.SpanStub

func serviceOf(s tracetest.SpanStub) string {
	v, _ := s.Resource.Set().Value(semconv.ServiceNameKey)
	return v.AsString()
}

func attr(s tracetest.SpanStub, key attribute.Key) string {
	for _, kv := range s.Attributes {
		if kv.Key == key {
			return kv.Value.Emit()
		}
	}
	return ""
}

// find returns the span of service named name in trace tid whose attribute key (if given)
// is value.
func (ix spanIndex) find(tid trace.TraceID, service, name string, key attribute.Key, value string) (tracetest.SpanStub, bool) {
	for _, s := range ix {
		if s.SpanContext.TraceID() == tid && serviceOf(s) == service && s.Name == name && (key == "" || attr(s, key) == value) {
			return s, true
		}
	}
	return tracetest.SpanStub{}, false
}

// One referral is followed from the HTTP intake through NATS to the audit log in one trace:
// intake's HTTP span parents the publish of mash.referral.received (its trace context kept
// with the outbox row until the relay sent it), the rules consumer's span is that publish's
// child across the bus, the recommendation rules publish from inside it is consumed by the
// audit consumer as its child, and each span carries its own service's name and ids only.
// A gRPC call with a traceparent joins the caller's trace.
func TestTraceFollowsAReferralFromHTTPThroughNATSToAudit(t *testing.T) {
	ctx := context.Background()
	exp := tracetest.NewInMemoryExporter()
	ip := startInProcessWith(t, newMigratedURL(t), func(c *serveConfig) { c.Tracing = tracing.Config{Exporter: exp} })
	sys := ip.sys
	_, token, err := sys.p.auth.Create(ctx, "south-wales-police", "police", auth.RoleReferrer, "test")
	if err != nil {
		t.Fatal(err)
	}
	referralID := ip.submitExample(t, token)

	var httpSpan tracetest.SpanStub
	eventually(t, "intake's HTTP span", func() bool {
		for _, s := range exp.GetSpans() {
			if serviceOf(s) == "mash-intake" && s.Name == "POST /v1/referrals" && s.SpanKind == trace.SpanKindServer {
				httpSpan = s
				return true
			}
		}
		return false
	})
	tid := httpSpan.SpanContext.TraceID()
	type hop struct {
		service, name string
		key           attribute.Key
		value         string
	}
	chain := []hop{
		{"mash-intake", "publish mash.referral.received", "", ""},
		{"mash-rules", "consume mash.referral.received", tracing.AttrConsumer, "rules"},
		{"mash-rules", "publish mash.recommendation.made", "", ""},
		{"mash-audit", "consume mash.recommendation.made", tracing.AttrConsumer, "audit"},
	}
	var found []tracetest.SpanStub
	eventually(t, "every hop of the referral's trace", func() bool {
		ix := spanIndex(exp.GetSpans())
		found = found[:0]
		for _, h := range chain {
			s, ok := ix.find(tid, h.service, h.name, h.key, h.value)
			if !ok {
				return false
			}
			found = append(found, s)
		}
		return true
	})
	parent := httpSpan
	for i, s := range found {
		if s.Parent.SpanID() != parent.SpanContext.SpanID() {
			t.Errorf("%s %q: parent span %s, want %s (%s %q)", chain[i].service, chain[i].name, s.Parent.SpanID(), parent.SpanContext.SpanID(), serviceOf(parent), parent.Name)
		}
		if strings.HasPrefix(s.Name, "consume ") {
			if !s.Parent.IsRemote() {
				t.Errorf("%s %q: parent is not remote: the link did not cross the bus", chain[i].service, s.Name)
			}
			if got := attr(s, tracing.AttrReferralID); got != referralID {
				t.Errorf("%s %q: mash.referral_id %q, want %q", chain[i].service, s.Name, got, referralID)
			}
		}
		parent = s
	}
	// The audit log received intake's event in the same trace too.
	if _, ok := spanIndex(exp.GetSpans()).find(tid, "mash-audit", "consume mash.referral.received", "", ""); !ok {
		t.Error("the audit consumer's span of mash.referral.received is not in the referral's trace")
	}
	// Spans carry ids, routes and subjects, never what a request or an address says.
	for _, s := range exp.GetSpans() {
		for _, kv := range s.Attributes {
			if !tracing.Allowed(kv.Key) {
				t.Errorf("span %s %q exported attribute %s", serviceOf(s), s.Name, kv.Key)
			}
		}
	}

	pool, err := pgxpool.New(ctx, sys.cfg.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var kept string
	if err := pool.QueryRow(ctx, `SELECT trace_context FROM intake.outbox WHERE referral_id = $1`, referralID).Scan(&kept); err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("00-%s-%s-01", tid, httpSpan.SpanContext.SpanID()); kept != want {
		t.Errorf("intake's outbox row keeps trace context %q, want %q", kept, want)
	}

	// gRPC: a caller's traceparent makes intake's server span a child of the caller's span.
	conn, err := grpc.NewClient(ip.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	callerTrace, callerSpan := "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	cctx := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token, "traceparent", "00-"+callerTrace+"-"+callerSpan+"-01")
	if _, err := intakev1.NewIntakeServiceClient(conn).GetReferral(cctx, &intakev1.GetReferralRequest{Id: referralID}); err != nil {
		t.Fatalf("GetReferral: %v", err)
	}
	eventually(t, "intake's gRPC span in the caller's trace", func() bool {
		for _, s := range exp.GetSpans() {
			if s.SpanKind == trace.SpanKindServer && serviceOf(s) == "mash-intake" && s.SpanContext.TraceID().String() == callerTrace &&
				s.Parent.SpanID().String() == callerSpan && strings.HasSuffix(s.Name, "/GetReferral") {
				return true
			}
		}
		return false
	})
}

// A process with tracing off writes no trace context to an outbox row.
func TestTracingOffKeepsNoTraceContext(t *testing.T) {
	ctx := context.Background()
	ip := startInProcess(t)
	sys := ip.sys
	if sys.p.tracing.Enabled() {
		t.Fatal("tracing is on without an OTLP endpoint or exporter")
	}
	_, token, err := sys.p.auth.Create(ctx, "south-wales-police", "police", auth.RoleReferrer, "test")
	if err != nil {
		t.Fatal(err)
	}
	body, err := os.ReadFile("../intake/testdata/referral.example.json")
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, "http://"+ip.httpAddr+"/v1/referrals", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	// Even a caller's traceparent is not picked up when tracing is off.
	req.Header.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("submit: %d", resp.StatusCode)
	}
	var withTrace int
	if err := sys.p.pool.QueryRow(ctx, `SELECT count(*) FROM intake.outbox WHERE trace_context IS NOT NULL`).Scan(&withTrace); err != nil {
		t.Fatal(err)
	}
	if withTrace != 0 {
		t.Fatalf("%d outbox rows keep a trace context with tracing off", withTrace)
	}
}
