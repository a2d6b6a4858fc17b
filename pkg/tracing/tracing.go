// Package tracing is mash's OpenTelemetry plumbing: one tracer provider per service (its
// service.name is mash-<service>), exported over OTLP when configured, and the W3C trace
// context carried across HTTP, gRPC and NATS.
//
// Invariants:
//   - Off by default, and free when off: no exporter, no HTTP or gRPC instrumentation, and
//     Provider answers a no-op provider, so no span is ever recorded and no trace context is
//     written to an outbox row or an event header.
//   - Only the W3C traceparent (and tracestate) crosses a process: the propagator is
//     TraceContext, never baggage, so nothing but ids travels with a request or an event.
//   - Spans leave the process with only allowlisted attributes (ids, routes, methods, status
//     codes, subjects) and no status messages or events, whatever an instrumentation library
//     recorded: client addresses, user agents, paths and error texts may carry personal data.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Propagator is the one way trace context is written to and read from headers: W3C Trace
// Context only.
var Propagator propagation.TextMapPropagator = propagation.TraceContext{}

// ServiceNamePrefix prefixes a mash service's name in service.name.
const ServiceNamePrefix = "mash-"

// Config says where spans go. The zero value is tracing off.
type Config struct {
	// Endpoint is the OTLP/gRPC collector, e.g. http://otel-collector:4317 (MASH_OTLP_ENDPOINT).
	Endpoint string
	// FromEnv turns tracing on with the exporter configured by the standard
	// OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) environment, when
	// Endpoint is empty.
	FromEnv bool
	// SampleRatio is the fraction of new traces recorded (parent-based: a trace begun
	// upstream keeps its caller's decision). Zero means 1, every trace.
	SampleRatio float64
	// Exporter, when set, receives the spans synchronously instead of OTLP: tests give an
	// in-memory exporter.
	Exporter sdktrace.SpanExporter
}

// Enabled reports whether c turns tracing on.
func (c Config) Enabled() bool { return c.Endpoint != "" || c.FromEnv || c.Exporter != nil }

// Tracing holds the process's tracer providers, one per service, sharing one exporter. A
// nil *Tracing is tracing off.
type Tracing struct {
	exporter  sdktrace.SpanExporter
	sampler   sdktrace.Sampler
	syncer    bool
	mu        sync.Mutex
	providers map[string]*sdktrace.TracerProvider
}

// New builds the exporter of cfg; it returns nil (tracing off) when cfg does not enable it.
// The OTLP exporter connects lazily, so a collector that is down does not stop start-up;
// spans it cannot take are dropped.
func New(ctx context.Context, cfg Config) (*Tracing, error) {
	if !cfg.Enabled() {
		return nil, nil
	}
	ratio := cfg.SampleRatio
	if ratio == 0 {
		ratio = 1
	}
	if ratio < 0 || ratio > 1 {
		return nil, fmt.Errorf("tracing: sample ratio %v: use a number from 0 to 1", ratio)
	}
	t := &Tracing{sampler: sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio)), providers: map[string]*sdktrace.TracerProvider{}}
	if cfg.Exporter != nil {
		t.exporter, t.syncer = cfg.Exporter, true
		return t, nil
	}
	var opts []otlptracegrpc.Option
	if cfg.Endpoint != "" {
		// The URL's scheme says whether the connection uses TLS (https) or not (http).
		opts = append(opts, otlptracegrpc.WithEndpointURL(cfg.Endpoint))
	}
	exp, err := otlptracegrpc.New(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("tracing: OTLP exporter: %w", err)
	}
	t.exporter = exp
	return t, nil
}

// Enabled reports whether spans are recorded and exported.
func (t *Tracing) Enabled() bool { return t != nil }

// Provider is service's tracer provider (service.name mash-<service>); a no-op one when
// tracing is off.
func (t *Tracing) Provider(service string) trace.TracerProvider {
	if t == nil {
		return noop.NewTracerProvider()
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if tp, ok := t.providers[service]; ok {
		return tp
	}
	exp := sdktrace.SpanExporter(scrubbing{sharedExporter{t.exporter}})
	proc := sdktrace.NewBatchSpanProcessor(exp)
	if t.syncer {
		proc = sdktrace.NewSimpleSpanProcessor(exp)
	}
	res := resource.NewSchemaless(semconv.ServiceName(ServiceNamePrefix+service), semconv.ServiceNamespace("mash"))
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(proc), sdktrace.WithResource(res), sdktrace.WithSampler(t.sampler))
	t.providers[service] = tp
	return tp
}

// Shutdown flushes every provider's spans and closes the exporter.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t == nil {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	var errs []error
	for _, tp := range t.providers {
		errs = append(errs, tp.Shutdown(ctx))
	}
	errs = append(errs, t.exporter.Shutdown(ctx))
	return errors.Join(errs...)
}

// sharedExporter lets several providers use one exporter: each provider shuts its
// processor down, but only Tracing.Shutdown closes the exporter.
type sharedExporter struct{ sdktrace.SpanExporter }

func (sharedExporter) Shutdown(context.Context) error { return nil }

// providerKey carries a service's tracer provider in a context.
type providerKey struct{}

// WithProvider returns ctx carrying tp, the tracer provider of the service whose workers
// (consumers, relays) run under ctx. The provider rides in the context, as spans do, so a
// service's workers trace as that service without every constructor taking it.
func WithProvider(ctx context.Context, tp trace.TracerProvider) context.Context {
	return context.WithValue(ctx, providerKey{}, tp)
}

// ProviderFrom returns the tracer provider WithProvider put in ctx, or a no-op one.
func ProviderFrom(ctx context.Context) trace.TracerProvider {
	if tp, ok := ctx.Value(providerKey{}).(trace.TracerProvider); ok {
		return tp
	}
	return noop.NewTracerProvider()
}

// On reports whether ctx carries a recording service's tracer provider, so a caller can skip
// building a span's attributes when tracing is off.
func On(ctx context.Context) bool {
	tp, ok := ctx.Value(providerKey{}).(trace.TracerProvider)
	if !ok {
		return false
	}
	_, off := tp.(noop.TracerProvider)
	return !off
}

// Tracer is the instrumentation scope of mash's own spans (events, relays).
func Tracer(ctx context.Context) trace.Tracer { return ProviderFrom(ctx).Tracer("mash") }

// HeaderCarrier reads and writes trace context in a NATS message's headers (a
// map[string][]string whose keys are case-sensitive, unlike HTTP's).
type HeaderCarrier map[string][]string

// Get returns the first value of key.
func (h HeaderCarrier) Get(key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// Set replaces key's values with value.
func (h HeaderCarrier) Set(key, value string) { h[key] = []string{value} }

// Keys lists the header names.
func (h HeaderCarrier) Keys() []string {
	out := make([]string, 0, len(h))
	for k := range h {
		out = append(out, k)
	}
	return out
}

// Inject writes ctx's span context into h; nothing when ctx has none.
func Inject(ctx context.Context, h map[string][]string) {
	Propagator.Inject(ctx, HeaderCarrier(h))
}

// Extract returns ctx carrying the remote span context of h, if h has one.
func Extract(ctx context.Context, h map[string][]string) context.Context {
	if h == nil {
		return ctx
	}
	return Propagator.Extract(ctx, HeaderCarrier(h))
}

// Encode returns ctx's trace context as one string to keep with an outbox row
// ("traceparent" or "traceparent;tracestate"), or "" when ctx has no valid span context.
func Encode(ctx context.Context) string {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return ""
	}
	c := propagation.MapCarrier{}
	Propagator.Inject(ctx, c)
	if ts := c["tracestate"]; ts != "" {
		return c["traceparent"] + ";" + ts
	}
	return c["traceparent"]
}

// Decode returns ctx carrying the remote span context Encode wrote into s.
func Decode(ctx context.Context, s string) context.Context {
	if s == "" {
		return ctx
	}
	tp, ts, _ := strings.Cut(s, ";")
	return Propagator.Extract(ctx, propagation.MapCarrier{"traceparent": tp, "tracestate": ts})
}

// Attribute keys of mash's own spans: ids only.
const (
	AttrEventID    = attribute.Key("mash.event_id")
	AttrReferralID = attribute.Key("mash.referral_id")
	AttrConsumer   = attribute.Key("mash.consumer")
)
