// Package server runs the gRPC and HTTP listeners every mash process has: the services'
// APIs, gRPC health and reflection, /healthz, /readyz and /metrics, with one interceptor
// chain for rate limits, authentication, request ids, free-text checks, logging, metrics and
// error mapping, security headers on every HTTP response, capped and idle-closed
// connections, and a graceful shutdown that lets in-flight requests finish.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
	"golang.org/x/net/netutil"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"

	"github.com/mash-hub/mash/pkg/tracing"
)

// Check is a readiness probe of one dependency.
type Check struct {
	Name  string
	Check func(ctx context.Context) error
}

// Config holds the listen addresses, the limits on what clients may take and, when
// certificates are configured, their TLS.
type Config struct {
	GRPCAddr        string
	HTTPAddr        string
	ShutdownTimeout time.Duration
	// GRPCTLS, when set, serves gRPC over TLS only (it may require client certificates:
	// mutual TLS between services).
	GRPCTLS *tls.Config
	// HTTPTLS, when set, serves HTTP over TLS only (HTTP/2 offered).
	HTTPTLS *tls.Config
	Limits  Limits
	// BehindTLS says clients reach this server over HTTPS through a proxy that ends TLS, so
	// responses carry Strict-Transport-Security even though the request came in clear.
	BehindTLS bool
	// Tracing, when not nil, traces every API call (HTTP and gRPC) as the service that
	// registered it (RegisterAs). Nil: no tracing instrumentation at all.
	Tracing *tracing.Tracing
}

// Server owns the two listeners.
type Server struct {
	cfg      Config
	log      *zap.Logger
	authn    Authenticator
	limits   *limiter
	metrics  *Metrics
	gatherer prometheus.Gatherer

	grpc   *grpc.Server
	health *healthService
	mux    *http.ServeMux
	routes []Route
	// owner is the service registering routes now (RegisterAs); grpcOwners maps each gRPC
	// service (mash.intake.v1.IntakeService) to the mash service that registered it.
	owner      string
	grpcOwners map[string]string
	// setupErrs are routes that could not be registered (HandleGateway).
	setupErrs []error

	mu     sync.Mutex
	checks []Check
}

// New builds a server; services register on GRPC() and with HandleAPI before Serve.
func New(cfg Config, log *zap.Logger, authn Authenticator, reg *prometheus.Registry) *Server {
	if cfg.ShutdownTimeout == 0 {
		cfg.ShutdownTimeout = 20 * time.Second
	}
	cfg.Limits = cfg.Limits.withDefaults()
	s := &Server{cfg: cfg, log: log, authn: authn, limits: newLimiter(cfg.Limits, time.Now), metrics: NewMetrics(reg), gatherer: reg, mux: http.NewServeMux(),
		grpcOwners: map[string]string{}}
	var creds []grpc.ServerOption
	if cfg.GRPCTLS != nil {
		creds = append(creds, grpc.Creds(credentials.NewTLS(cfg.GRPCTLS)))
	}
	if cfg.Tracing.Enabled() {
		creds = append(creds, grpc.StatsHandler(tracing.GRPCServerHandler(s.grpcTracer)))
	}
	s.grpc = grpc.NewServer(append(creds,
		grpc.UnaryInterceptor(s.unaryInterceptor),
		grpc.StreamInterceptor(s.streamInterceptor),
		grpc.MaxRecvMsgSize(1<<20),
		// A fixed pool of stream workers reuses goroutines whose stacks have already grown,
		// instead of growing a fresh stack for every request (visible in CPU profiles).
		// GOMAXPROCS, not NumCPU: a container's CPU limit, not its node's CPU count.
		grpc.NumStreamWorkers(uint32(32*runtime.GOMAXPROCS(0))),
		// Fixed flow-control windows turn off the transport's bandwidth probing, whose pings
		// cost a frame and a syscall each way on a connection busy with small requests.
		grpc.InitialWindowSize(1<<20),
		grpc.InitialConnWindowSize(1<<20),
		grpc.ConnectionTimeout(10*time.Second),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
		// A connection with no call in flight for the idle timeout is sent away (GOAWAY), so
		// idle clients do not hold connections, and their slots under MaxConns, for ever.
		grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionIdle: cfg.Limits.IdleTimeout}),
	)...)
	s.health = newHealthService(s)
	healthpb.RegisterHealthServer(s.grpc, s.health)
	reflection.Register(s.grpc)
	s.handleProbe("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	s.handleProbe("GET /readyz", s.readyz)
	// A collector that cannot read its figure (a backlog count timing out on a database under
	// load) leaves that figure out of the scrape and is logged; by default the whole scrape
	// would answer 500, and the operator would lose every metric just when they matter.
	s.handleProbe("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg,
		ErrorHandling: promhttp.ContinueOnError, ErrorLog: scrapeErrorLog{log}}).ServeHTTP)
	return s
}

// RegisterAs runs register (a service's Register) so that the routes and gRPC services it
// adds are traced as service's.
func (s *Server) RegisterAs(service string, register func(*Server)) {
	s.owner = service
	register(s)
	s.owner = ""
	s.mu.Lock()
	defer s.mu.Unlock()
	for name := range s.grpc.GetServiceInfo() {
		if _, ok := s.grpcOwners[name]; !ok {
			s.grpcOwners[name] = service
		}
	}
}

// owners lists the mash services that registered gRPC services (RegisterAs).
func (s *Server) owners() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, o := range s.grpcOwners {
		if !slices.Contains(out, o) {
			out = append(out, o)
		}
	}
	return out
}

// grpcTracer is the tracer provider of the service that registered fullMethod's gRPC
// service; nil (untraced) for health and reflection.
func (s *Server) grpcTracer(fullMethod string) trace.TracerProvider {
	svc, _, _ := strings.Cut(strings.TrimPrefix(fullMethod, "/"), "/")
	s.mu.Lock()
	owner, ok := s.grpcOwners[svc]
	s.mu.Unlock()
	if !ok {
		return nil
	}
	return s.cfg.Tracing.Provider(owner)
}

// traced wraps h in a span named route when tracing is on and a service is registering.
func (s *Server) traced(route string, h http.Handler) http.Handler {
	if !s.cfg.Tracing.Enabled() || s.owner == "" {
		return h
	}
	return tracing.HTTPHandler(s.cfg.Tracing.Provider(s.owner), route, h)
}

// GRPC is the gRPC server services register on.
func (s *Server) GRPC() *grpc.Server { return s.grpc }

// AddCheck adds a readiness probe.
func (s *Server) AddCheck(c Check) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.checks = append(s.checks, c)
}

// readinessChecks returns the probes added so far.
func (s *Server) readinessChecks() []Check {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Check(nil), s.checks...)
}

// checkTimeout bounds each readiness check.
const checkTimeout = 2 * time.Second

// runChecks runs the readiness checks side by side, each within checkTimeout, and returns
// their errors in order: one that hangs must not use up the time of those after it and
// have them reported not ready too.
func (s *Server) runChecks(ctx context.Context) ([]Check, []error) {
	checks := s.readinessChecks()
	errs := make([]error, len(checks))
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for i, c := range checks {
		wg.Go(func() { errs[i] = c.Check(ctx) })
	}
	wg.Wait()
	return checks, errs
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	checks, errs := s.runChecks(r.Context())
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	failed := false
	var out []byte
	for i, c := range checks {
		if err := errs[i]; err != nil {
			failed = true
			out = fmt.Appendf(out, "%s: not ready\n", c.Name)
			s.log.Warn("readiness check failed", zap.String("check", c.Name), zap.Error(err))
			continue
		}
		out = fmt.Appendf(out, "%s: ok\n", c.Name)
	}
	if failed {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_, _ = w.Write(out)
}

// Listeners are bound before Serve so a bad address fails start-up with a clear error.
type Listeners struct {
	GRPC, HTTP net.Listener
}

// Listen binds both addresses, each capped at Limits.MaxConns open connections.
func (s *Server) Listen() (Listeners, error) {
	g, err := net.Listen("tcp", s.cfg.GRPCAddr)
	if err != nil {
		return Listeners{}, fmt.Errorf("MASH_GRPC_ADDR %s: %w", s.cfg.GRPCAddr, err)
	}
	h, err := net.Listen("tcp", s.cfg.HTTPAddr)
	if err != nil {
		g.Close()
		return Listeners{}, fmt.Errorf("MASH_HTTP_ADDR %s: %w", s.cfg.HTTPAddr, err)
	}
	if n := s.cfg.Limits.MaxConns; n > 0 {
		g, h = netutil.LimitListener(g, n), netutil.LimitListener(h, n)
	}
	return Listeners{GRPC: g, HTTP: h}, nil
}

// Serve serves until ctx is cancelled, then stops taking new requests, lets in-flight ones
// finish (up to ShutdownTimeout) and returns.
func (s *Server) Serve(ctx context.Context, ls Listeners) error {
	httpSrv := &http.Server{
		Handler:           s.mux,
		ReadHeaderTimeout: s.cfg.Limits.ReadHeaderTimeout,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       s.cfg.Limits.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		TLSConfig:         s.cfg.HTTPTLS,
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { s.health.watch(gctx); return nil })
	g.Go(func() error {
		if err := s.grpc.Serve(ls.GRPC); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			return fmt.Errorf("grpc serve: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		serve := httpSrv.Serve
		if s.cfg.HTTPTLS != nil {
			// The certificate comes from TLSConfig (GetCertificate), so no files are named.
			serve = func(l net.Listener) error { return httpSrv.ServeTLS(l, "", "") }
		}
		if err := serve(ls.HTTP); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("http serve: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		s.health.Shutdown()
		shutCtx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
		defer cancel()
		done := make(chan struct{})
		go func() { s.grpc.GracefulStop(); close(done) }()
		herr := httpSrv.Shutdown(shutCtx)
		select {
		case <-done:
		case <-shutCtx.Done():
			s.grpc.Stop()
		}
		if herr != nil {
			return fmt.Errorf("http shutdown: %w", herr)
		}
		return nil
	})
	return g.Wait()
}

// scrapeErrorLog logs what a metrics scrape could not collect.
type scrapeErrorLog struct{ log *zap.Logger }

func (l scrapeErrorLog) Println(v ...any) {
	l.log.Warn("metrics scrape incomplete", zap.String("error", fmt.Sprint(v...)))
}
