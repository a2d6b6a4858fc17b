// Package peers connects one service to another's gRPC API. A service calls a peer on behalf
// of its own caller: the caller's bearer credential travels with the call, so the peer
// authorises and audits the person or system that asked, never the service in between.
package peers

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/stats"

	"github.com/mash-hub/mash/pkg/auth"
)

// DefaultCallTimeout bounds a call to a peer when the caller's context has no earlier
// deadline.
const DefaultCallTimeout = 10 * time.Second

// Book maps service names to gRPC addresses and keeps one connection per peer.
type Book struct {
	fallback string
	addrs    map[string]string
	creds    credentials.TransportCredentials
	// stats, when set, traces calls and sends their trace context (WithStatsHandler).
	stats stats.Handler

	mu    sync.Mutex
	conns map[string]*grpc.ClientConn
}

// NewBook returns a Book. addrs names the address of each peer that runs elsewhere; a peer
// not named there is reached at fallback (the process's own gRPC address, where every
// service of a single-process deployment listens).
func NewBook(fallback string, addrs map[string]string, opts ...Option) *Book {
	m := make(map[string]string, len(addrs))
	for k, v := range addrs {
		m[k] = v
	}
	b := &Book{fallback: fallback, addrs: m, conns: map[string]*grpc.ClientConn{}, creds: insecure.NewCredentials()}
	for _, o := range opts {
		o(b)
	}
	return b
}

// An Option configures a Book.
type Option func(*Book)

// WithTLS dials every peer over TLS with cfg: the peer's certificate must verify, and under
// mutual TLS this process presents its own. Bearer credentials travel with each call, so
// they must never cross a network in clear.
func WithTLS(cfg *tls.Config) Option {
	return func(b *Book) {
		if cfg != nil {
			b.creds = credentials.NewTLS(cfg)
		}
	}
}

// WithStatsHandler has every peer connection report its calls to h: the tracing plumbing's
// client handler, which starts a span per call and sends its W3C trace context.
func WithStatsHandler(h stats.Handler) Option {
	return func(b *Book) { b.stats = h }
}

// ParseAddrs reads "rules=10.0.0.5:9090,intake=intake:9090" into a map, naming the bad entry.
func ParseAddrs(s string) (map[string]string, error) {
	out := map[string]string{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, addr, ok := strings.Cut(part, "=")
		name, addr = strings.TrimSpace(name), strings.TrimSpace(addr)
		if !ok || name == "" || addr == "" || !strings.Contains(addr, ":") {
			return nil, fmt.Errorf("peer %q: want service=host:port", part)
		}
		out[name] = addr
	}
	return out, nil
}

// Addr returns where service is reached.
func (b *Book) Addr(service string) string {
	if a, ok := b.addrs[service]; ok {
		return a
	}
	return b.fallback
}

// Conn returns the shared connection to service. Connections are lazy: nothing is dialled
// until the first call, and gRPC reconnects by itself.
func (b *Book) Conn(service string) (*grpc.ClientConn, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if c, ok := b.conns[service]; ok {
		return c, nil
	}
	addr := b.Addr(service)
	if addr == "" {
		return nil, fmt.Errorf("peer %s: no address configured", service)
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(b.creds), grpc.WithChainUnaryInterceptor(timeoutInterceptor)}
	if b.stats != nil {
		opts = append(opts, grpc.WithStatsHandler(b.stats))
	}
	c, err := grpc.NewClient(addr, opts...)
	if err != nil {
		return nil, fmt.Errorf("peer %s at %s: %w", service, addr, err)
	}
	b.conns[service] = c
	return c, nil
}

// Close closes every connection.
func (b *Book) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	var errs []error
	for name, c := range b.conns {
		if err := c.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close peer %s: %w", name, err))
		}
	}
	clear(b.conns)
	return errors.Join(errs...)
}

func timeoutInterceptor(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultCallTimeout)
		defer cancel()
	}
	return invoker(ctx, method, req, reply, cc, opts...)
}

// AsCaller returns a context for an outgoing call that carries the credential of the
// incoming call in ctx (from gRPC metadata, or from WithCredential for HTTP handlers and
// workers). Without one, the peer will refuse the call as unauthenticated, which is right:
// a service has no standing of its own to act for someone.
func AsCaller(ctx context.Context) context.Context {
	// Where the caller is, so the peer's records say where an act came from, not merely
	// that this service relayed it.
	if addr := auth.OriginAddress(ctx); addr != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, auth.ForwardedForHeader, addr)
	}
	if tok, ok := ctx.Value(credKey{}).(string); ok && tok != "" {
		return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok)
	}
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if v := md.Get("authorization"); len(v) > 0 {
			return metadata.AppendToOutgoingContext(ctx, "authorization", v[0])
		}
	}
	return ctx
}

type credKey struct{}

// WithCredential returns a context whose outgoing peer calls carry the bearer token.
func WithCredential(ctx context.Context, token string) context.Context {
	return context.WithValue(ctx, credKey{}, token)
}
