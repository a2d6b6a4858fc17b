package tracing

import (
	"context"
	"net/http"
	"sync"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/grpc/stats"
)

// HTTPHandler traces h as route (a mux pattern such as "POST /v1/referrals"), continuing a
// trace the caller sent in traceparent. Metrics stay with mash's own Prometheus collectors.
func HTTPHandler(tp trace.TracerProvider, route string, h http.Handler) http.Handler {
	return otelhttp.NewHandler(h, route, otelhttp.WithTracerProvider(tp), otelhttp.WithPropagators(Propagator),
		otelhttp.WithMeterProvider(metricnoop.NewMeterProvider()),
		otelhttp.WithSpanNameFormatter(func(op string, _ *http.Request) string { return op }))
}

// GRPCServerHandler traces every call as the service owner names for its full method
// ("/mash.intake.v1.IntakeService/Submit"); a method owner answers nil for (health,
// reflection) is not traced.
func GRPCServerHandler(owner func(fullMethod string) trace.TracerProvider) stats.Handler {
	return &grpcDispatch{pick: func(_ context.Context, m string) trace.TracerProvider { return owner(m) }, handlers: map[trace.TracerProvider]stats.Handler{},
		build: func(tp trace.TracerProvider) stats.Handler {
			return otelgrpc.NewServerHandler(otelgrpc.WithTracerProvider(tp), otelgrpc.WithPropagators(Propagator),
				otelgrpc.WithMeterProvider(metricnoop.NewMeterProvider()))
		}}
}

// GRPCClientHandler traces outgoing calls as the service whose span is current in the
// call's context, and sends that span's context in traceparent; a call made outside any
// span goes untraced.
func GRPCClientHandler() stats.Handler {
	return &grpcDispatch{pick: func(ctx context.Context, _ string) trace.TracerProvider {
		sp := trace.SpanFromContext(ctx)
		if !sp.SpanContext().IsValid() {
			return nil
		}
		return sp.TracerProvider()
	}, handlers: map[trace.TracerProvider]stats.Handler{},
		build: func(tp trace.TracerProvider) stats.Handler {
			return otelgrpc.NewClientHandler(otelgrpc.WithTracerProvider(tp), otelgrpc.WithPropagators(Propagator),
				otelgrpc.WithMeterProvider(metricnoop.NewMeterProvider()))
		}}
}

// grpcDispatch hands each call to the otelgrpc handler of the tracer provider pick chooses,
// so one gRPC server (or client) shared by several services traces each call as its own.
type grpcDispatch struct {
	pick  func(ctx context.Context, fullMethod string) trace.TracerProvider
	build func(trace.TracerProvider) stats.Handler

	mu       sync.Mutex
	handlers map[trace.TracerProvider]stats.Handler
}

type dispatchKey struct{}

func (d *grpcDispatch) handler(tp trace.TracerProvider) stats.Handler {
	if tp == nil {
		return nil
	}
	if _, off := tp.(noop.TracerProvider); off {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	h, ok := d.handlers[tp]
	if !ok {
		h = d.build(tp)
		d.handlers[tp] = h
	}
	return h
}

func (d *grpcDispatch) TagRPC(ctx context.Context, info *stats.RPCTagInfo) context.Context {
	h := d.handler(d.pick(ctx, info.FullMethodName))
	if h == nil {
		return ctx
	}
	return h.TagRPC(context.WithValue(ctx, dispatchKey{}, h), info)
}

func (d *grpcDispatch) HandleRPC(ctx context.Context, s stats.RPCStats) {
	if h, ok := ctx.Value(dispatchKey{}).(stats.Handler); ok {
		h.HandleRPC(ctx, s)
	}
}

func (d *grpcDispatch) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }

func (d *grpcDispatch) HandleConn(context.Context, stats.ConnStats) {}
