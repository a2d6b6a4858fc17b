package tracing

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

func TestOffIsNoopAndKeepsNoContext(t *testing.T) {
	tr, err := New(context.Background(), Config{})
	if err != nil || tr != nil || tr.Enabled() {
		t.Fatalf("zero config: %v %v", tr, err)
	}
	ctx, sp := tr.Provider("intake").Tracer("x").Start(context.Background(), "op")
	defer sp.End()
	if sp.IsRecording() || Encode(ctx) != "" {
		t.Fatal("a span recorded, or a trace context encoded, with tracing off")
	}
	h := map[string][]string{}
	Inject(ctx, h)
	if len(h) != 0 {
		t.Fatalf("headers written with tracing off: %v", h)
	}
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// The trace context survives an outbox row (Encode, Decode) and a NATS message's headers
// (Inject, Extract) unchanged, and the child started from it is in the same trace.
func TestContextCrossesRowAndHeaders(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tr, err := New(context.Background(), Config{Exporter: exp})
	if err != nil {
		t.Fatal(err)
	}
	ctx, parent := tr.Provider("intake").Tracer("t").Start(context.Background(), "request")
	kept := Encode(ctx)
	if kept == "" {
		t.Fatal("nothing encoded from a recording span")
	}
	h := map[string][]string{}
	Inject(Decode(context.Background(), kept), h)
	if got := HeaderCarrier(h).Get("traceparent"); got != kept {
		t.Fatalf("header traceparent %q, want %q", got, kept)
	}
	_, child := tr.Provider("rules").Tracer("t").Start(Extract(context.Background(), h), "consume")
	child.End()
	parent.End()
	spans := exp.GetSpans()
	if len(spans) != 2 {
		t.Fatalf("%d spans", len(spans))
	}
	c, p := spans[0], spans[1]
	if c.SpanContext.TraceID() != p.SpanContext.TraceID() || c.Parent.SpanID() != p.SpanContext.SpanID() || !c.Parent.IsRemote() {
		t.Fatalf("child %v is not the remote child of %v", c.Parent, p.SpanContext)
	}
	for s, want := range map[*tracetest.SpanStub]string{&c: "mash-rules", &p: "mash-intake"} {
		if v, _ := s.Resource.Set().Value("service.name"); v.AsString() != want {
			t.Errorf("span %s: service.name %q, want %q", s.Name, v.AsString(), want)
		}
	}
}

// What instrumentation records beyond ids, routes and codes never leaves the process.
func TestExportedSpansAreScrubbed(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tr, err := New(context.Background(), Config{Exporter: exp})
	if err != nil {
		t.Fatal(err)
	}
	_, sp := tr.Provider("intake").Tracer("t").Start(context.Background(), "POST /v1/referrals", trace.WithAttributes(
		attribute.String("http.route", "POST /v1/referrals"), attribute.String("client.address", "192.0.2.1"),
		attribute.String("user_agent.original", "GP system"), attribute.String("url.path", "/v1/referrals/abc"),
		AttrReferralID.String("r-1")))
	sp.RecordError(context.DeadlineExceeded)
	sp.SetStatus(codes.Error, "child's name is wrong")
	sp.End()
	s := exp.GetSpans()[0]
	got := map[attribute.Key]bool{}
	for _, kv := range s.Attributes {
		got[kv.Key] = true
	}
	if !got["http.route"] || !got[AttrReferralID] || got["client.address"] || got["user_agent.original"] || got["url.path"] {
		t.Fatalf("exported attributes %v", s.Attributes)
	}
	if len(s.Events) != 0 || s.Status.Description != "" || s.Status.Code != codes.Error {
		t.Fatalf("events %v, status %+v", s.Events, s.Status)
	}
}

func TestOnOnlyWithARecordingProvider(t *testing.T) {
	ctx := context.Background()
	var off *Tracing
	if On(ctx) || On(WithProvider(ctx, off.Provider("intake"))) {
		t.Fatal("On without a recording provider")
	}
	tr, err := New(ctx, Config{Exporter: tracetest.NewInMemoryExporter()})
	if err != nil {
		t.Fatal(err)
	}
	if !On(WithProvider(ctx, tr.Provider("intake"))) {
		t.Fatal("not On with a recording provider")
	}
}
