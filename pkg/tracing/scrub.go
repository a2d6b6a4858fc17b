package tracing

import (
	"context"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// allowedPrefixes are the attribute keys a span may leave the process with: what says which
// operation it was and how it ended, and mash's own ids. Everything else an instrumentation
// library records (client.address, user_agent.original, url.path, network.peer.address, ...)
// is dropped, since a path may hold a link's token and an address names a person's device.
var allowedPrefixes = []string{
	"mash.",
	"http.request.method", "http.response.status_code", "http.route",
	"rpc.system", "rpc.service", "rpc.method", "rpc.grpc.status_code", "rpc.response.status_code",
	"messaging.system", "messaging.operation", "messaging.destination.name", "messaging.message.id", "messaging.consumer.group.name",
	"error.type", "server.port", "url.scheme", "network.protocol.",
}

// Allowed reports whether attribute key may be exported.
func Allowed(key attribute.Key) bool {
	for _, p := range allowedPrefixes {
		if string(key) == p || (strings.HasSuffix(p, ".") && strings.HasPrefix(string(key), p)) {
			return true
		}
	}
	return false
}

// scrubbing exports spans with only allowed attributes, no events (an exception event holds
// an error's text) and no status description (also an error's text, which may quote input).
type scrubbing struct{ next sdktrace.SpanExporter }

func (s scrubbing) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	out := make([]sdktrace.ReadOnlySpan, len(spans))
	for i, sp := range spans {
		out[i] = scrubbed{sp}
	}
	return s.next.ExportSpans(ctx, out)
}

func (s scrubbing) Shutdown(ctx context.Context) error { return s.next.Shutdown(ctx) }

// scrubbed is a span as exported: the embedded span answers everything else.
type scrubbed struct{ sdktrace.ReadOnlySpan }

func (s scrubbed) Attributes() []attribute.KeyValue {
	in := s.ReadOnlySpan.Attributes()
	out := make([]attribute.KeyValue, 0, len(in))
	for _, kv := range in {
		if Allowed(kv.Key) {
			out = append(out, kv)
		}
	}
	return out
}

func (s scrubbed) Events() []sdktrace.Event { return nil }

func (s scrubbed) Status() sdktrace.Status {
	st := s.ReadOnlySpan.Status()
	st.Description = ""
	return st
}
