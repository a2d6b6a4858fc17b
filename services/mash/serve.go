package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/mash-hub/mash/pkg/auth"
	"github.com/mash-hub/mash/pkg/busauth"
	"github.com/mash-hub/mash/pkg/calendar"
	"github.com/mash-hub/mash/pkg/casekeys"
	"github.com/mash-hub/mash/pkg/db"
	"github.com/mash-hub/mash/pkg/events"
	mashlog "github.com/mash-hub/mash/pkg/log"
	"github.com/mash-hub/mash/pkg/peers"
	apiserver "github.com/mash-hub/mash/pkg/server"
	"github.com/mash-hub/mash/pkg/tlsconf"
	"github.com/mash-hub/mash/pkg/tracing"
	"github.com/mash-hub/mash/proto/openapi"
	"github.com/mash-hub/mash/services/audit"
	"github.com/mash-hub/mash/services/console"
	"github.com/mash-hub/mash/services/triage"
)

// plumbing is what services share in one process.
type plumbing struct {
	log *zap.Logger
	// pool is the process's shared login (DATABASE_URL): migrations, credentials, bus users
	// and readiness (the case keys use the login too, over keyPool). pools holds the
	// services that connect with logins of their own (MASH_<SERVICE>_DATABASE_URL); poolOf
	// picks.
	pool  *pgxpool.Pool
	pools map[string]*pgxpool.Pool
	// probes check each login for readiness, one connection each, apart from the work's.
	probes []probe
	// keyPool is the case-key store's, apart from the work's (db.OpenKeys says why).
	keyPool *pgxpool.Pool
	// tracing exports each service's spans; nil when off.
	tracing *tracing.Tracing
	// nc and js are the process's own connection (user mash): the stream and readiness.
	nc  *nats.Conn
	js  jetstream.JetStream
	bus map[string]busConn
	// busAuth decides who connects to the embedded server (nil with an external one).
	busAuth *busauth.Authenticator
	// tls is the process's certificate, when configured.
	tls          *tlsconf.Set
	embedded     *server.Server
	calendar     *calendar.Calendar
	registry     *prometheus.Registry
	eventMetrics *events.Metrics
	audit        audit.Config
	console      console.Config
	notify       notifyConfig
	claimTimeout time.Duration
	retention    triage.RetentionConfig
	qaPercent    int
	reconcile    events.ReconcilerConfig
	// now is every service's clock: nil for the wall clock; mash demo runs the services on
	// a simulated one to write a believable past.
	now   func() time.Time
	peers *peers.Book
	// auth is the one credential store of the process: the console ends a session in the
	// same cache the API server checks.
	auth *auth.Store
	// cipher seals and opens event payloads with the case keys; nil without MASH_CASE_KEK.
	cipher events.PayloadCipher
}

func (p *plumbing) close() {
	for _, c := range p.bus {
		_ = c.nc.Drain()
	}
	// Drain is asynchronous; wait for it so the embedded server stops after its clients.
	deadline := time.Now().Add(5 * time.Second)
	for _, c := range p.bus {
		for !c.nc.IsClosed() && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
	}
	if p.embedded != nil {
		p.embedded.Shutdown()
		p.embedded.WaitForShutdown()
	}
	if p.peers != nil {
		_ = p.peers.Close()
	}
	for _, pool := range p.pools {
		pool.Close()
	}
	for _, pr := range p.probes {
		pr.pool.Close()
	}
	if p.keyPool != nil {
		p.keyPool.Close()
	}
	if p.pool != nil {
		p.pool.Close()
	}
	if p.tracing != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := p.tracing.Shutdown(ctx); err != nil {
			p.log.Warn("tracing: spans not flushed at shutdown", zap.Error(err))
		}
	}
}

// probe is one login's readiness connection; service is "" for the shared login.
type probe struct {
	service string
	pool    *pgxpool.Pool
}

func (p *plumbing) openProbe(ctx context.Context, service, url string) error {
	pool, err := db.OpenProbe(ctx, url)
	if err != nil {
		return err
	}
	p.probes = append(p.probes, probe{service: service, pool: pool})
	return nil
}

// probeOf is the readiness pool of service's login: its own login's when it has one.
func (p *plumbing) probeOf(service string) *pgxpool.Pool {
	var shared *pgxpool.Pool
	for _, pr := range p.probes {
		switch pr.service {
		case service:
			return pr.pool
		case "":
			shared = pr.pool
		}
	}
	return shared
}

// pingPostgres checks that every login of the process reaches Postgres, over the probes'
// own connections: a saturated work pool is load, not a fault.
func (p *plumbing) pingPostgres(ctx context.Context) error {
	for _, pr := range p.probes {
		if err := pr.pool.Ping(ctx); err != nil {
			if pr.service != "" {
				return fmt.Errorf("%s's login: %w", pr.service, err)
			}
			return err
		}
	}
	return nil
}

// poolOf is the database pool service works through: its own login's when it has one.
func (p *plumbing) poolOf(service string) *pgxpool.Pool {
	if pool, ok := p.pools[service]; ok {
		return pool
	}
	return p.pool
}

func serve(ctx context.Context, args []string) error {
	cfg, err := parseServeConfig(args)
	if err != nil {
		return err
	}
	log, err := mashlog.New(cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		return err
	}
	defer log.Sync() //nolint:errcheck

	sys, err := startSystem(ctx, cfg, log, nil)
	if err != nil {
		return err
	}
	defer sys.close()
	if cfg.PprofAddr != "" {
		stopPprof, err := servePprof(cfg.PprofAddr, log)
		if err != nil {
			return err
		}
		defer stopPprof()
	}
	return sys.serve(ctx, nil)
}

// system is the services of cfg built on their shared plumbing, not yet serving. mash serve
// and mash demo both run one.
type system struct {
	p       *plumbing
	cfg     serveConfig
	srv     *apiserver.Server
	running []service
	// names[i] is the service running[i] belongs to ("" for the process's own workers): its
	// workers trace as that service.
	names []string
}

// startSystem connects to Postgres (migrating when configured) and NATS, and builds every
// service of cfg on a clock: now, or the wall clock when nil. The caller closes it.
func startSystem(ctx context.Context, cfg serveConfig, log *zap.Logger, now func() time.Time) (sys *system, err error) {
	p := &plumbing{log: log, registry: prometheus.NewRegistry(), audit: cfg.Audit, console: cfg.Console, notify: cfg.Notify, reconcile: cfg.Reconcile, claimTimeout: cfg.ClaimTimeout, retention: cfg.Retention, qaPercent: cfg.QualitySamplePercent,
		now: now, pools: map[string]*pgxpool.Pool{}}
	defer func() {
		if err != nil {
			p.close()
		}
	}()
	if p.tls, err = tlsconf.Load(cfg.TLS); err != nil {
		return nil, fmt.Errorf("MASH_TLS_CERT: %w", err)
	}
	var peerOpts []peers.Option
	srvCfg := apiserver.Config{GRPCAddr: cfg.GRPCAddr, HTTPAddr: cfg.HTTPAddr, ShutdownTimeout: cfg.ShutdownTimeout,
		Limits: cfg.Limits, BehindTLS: cfg.BehindTLS}
	if p.tls != nil {
		peerOpts = append(peerOpts, peers.WithTLS(p.tls.Client()))
		srvCfg.GRPCTLS, srvCfg.HTTPTLS = p.tls.Server(), p.tls.Public()
	}
	if p.tracing, err = tracing.New(ctx, cfg.Tracing); err != nil {
		return nil, err
	}
	if p.tracing.Enabled() {
		srvCfg.Tracing = p.tracing
		peerOpts = append(peerOpts, peers.WithStatsHandler(tracing.GRPCClientHandler()))
		log.Info("tracing on: spans exported over OTLP", zap.String("endpoint", cfg.Tracing.Endpoint))
	}
	p.peers = peers.NewBook(selfAddr(cfg.GRPCAddr), cfg.Peers, peerOpts...)
	p.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	p.eventMetrics = events.NewMetrics(p.registry)
	if p.calendar, err = calendar.New(cfg.Calendar); err != nil {
		return nil, fmt.Errorf("calendar: %w", err)
	}
	if p.pool, err = db.Open(ctx, cfg.DatabaseURL); err != nil {
		return nil, err
	}
	if cfg.MigrateOnStart {
		if err := migrateAll(ctx, p.pool, cfg.Services); err != nil {
			return nil, err
		}
	}
	if err := p.openProbe(ctx, "", cfg.DatabaseURL); err != nil {
		return nil, fmt.Errorf("DATABASE_URL: %w", err)
	}
	for _, name := range cfg.Services {
		if u := cfg.ServiceDatabaseURLs[name]; u != "" {
			if p.pools[name], err = db.Open(ctx, u); err != nil {
				return nil, fmt.Errorf("%s: %w", serviceDatabaseEnv(name), err)
			}
			if err := p.openProbe(ctx, name, u); err != nil {
				return nil, fmt.Errorf("%s: %w", serviceDatabaseEnv(name), err)
			}
		}
	}
	// Scrape-time counts go over each login's readiness connection, not its work pool.
	p.eventMetrics.ScrapeOver(p.pool, p.probeOf(""))
	for name, pool := range p.pools {
		p.eventMetrics.ScrapeOver(pool, p.probeOf(name))
	}
	if err := p.connectNATS(ctx, cfg); err != nil {
		return nil, err
	}
	if len(cfg.CaseKEK) > 0 {
		w, err := casekeys.NewLocalWrapper(cfg.CaseKEK)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", EnvCaseKEK, err)
		}
		if p.keyPool, err = db.OpenKeys(ctx, cfg.DatabaseURL); err != nil {
			return nil, fmt.Errorf("DATABASE_URL: %w", err)
		}
		keys, err := casekeys.New(p.keyPool, w, casekeys.Options{})
		if err != nil {
			return nil, err
		}
		p.cipher = keys
	} else {
		log.Warn("MASH_CASE_KEK is not set: event payloads, outbox rows and dead letters hold personal data in clear (allowed on loopback only)")
	}

	p.auth = auth.NewStore(p.pool)
	srv := apiserver.New(srvCfg, log, p.auth, p.registry)
	srv.AddCheck(apiserver.Check{Name: "postgres", Check: p.pingPostgres})
	srv.AddCheck(apiserver.Check{Name: "nats", Check: func(ctx context.Context) error {
		if !p.nc.IsConnected() {
			return errors.New("not connected")
		}
		_, err := p.js.AccountInfo(ctx)
		return err
	}})
	sys = &system{p: p, cfg: cfg, srv: srv}
	for _, name := range cfg.Services {
		svc, err := modules[name].build(p)
		if err != nil {
			return nil, fmt.Errorf("start %s: %w", name, err)
		}
		srv.RegisterAs(name, svc.Register)
		sys.running, sys.names = append(sys.running, svc), append(sys.names, name)
		if m := modules[name]; m.relays != "" {
			relay, err := events.NewRelay(p.poolOf(name), p.jsOf(m.bus.Service), events.RelayConfig{Schema: m.relays}, log.Named(m.relays+"-relay"), p.eventMetrics)
			if err != nil {
				return nil, fmt.Errorf("start %s: relay of %s: %w", name, m.relays, err)
			}
			sys.running, sys.names = append(sys.running, relayService{relay}), append(sys.names, name)
		}
	}
	if err := srv.Err(); err != nil {
		return nil, fmt.Errorf("register routes: %w", err)
	}
	// The API's contract, for integrators before they hold a credential: it says nothing
	// the routes themselves do not.
	srv.HandlePublic("GET /openapi.json", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(openapi.Document)
	}))
	if p.busAuth != nil {
		sys.running, sys.names = append(sys.running, busSweeper{auth: p.busAuth, srv: p.embedded}), append(sys.names, "")
	}
	return sys, nil
}

// close releases the plumbing: NATS (and the embedded server), peers, Postgres.
func (s *system) close() { s.p.close() }

// serve listens and runs every service's workers until ctx ends or a worker fails, then
// shuts down in order. ready, when not nil, is closed once the listeners are open and the
// workers started.
func (s *system) serve(ctx context.Context, ready chan<- struct{}) error {
	log, cfg := s.p.log, s.cfg
	listeners, err := s.srv.Listen()
	if err != nil {
		return err
	}
	log.Info("mash serving", zap.Strings("services", cfg.Services), zap.String("grpc", cfg.GRPCAddr),
		zap.String("http", cfg.HTTPAddr), zap.Bool("embedded_nats", s.p.embedded != nil), zap.Bool("tls", s.p.tls != nil),
		zap.Bool("mutual_tls", s.p.tls.Mutual()))

	// Workers outlive the listeners: at shutdown the APIs stop first, then the relays drain
	// what the last requests wrote, then NATS and Postgres close.
	workCtx, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWork()
	var workers errgroup.Group
	workerErr := make(chan error, len(s.running))
	// A credential revoked or a session ended in any process (or by mash clients revoke)
	// is dropped from this process's cache as soon as Postgres announces it.
	workers.Go(func() error {
		return s.p.auth.FollowRevocations(workCtx, log.Named("auth"), auth.RevocationHooks{})
	})
	for i, svc := range s.running {
		runCtx := workCtx
		if s.names[i] != "" {
			runCtx = tracing.WithProvider(workCtx, s.p.tracing.Provider(s.names[i]))
		}
		workers.Go(func() error {
			err := svc.Run(runCtx)
			if err != nil {
				workerErr <- err
			}
			return err
		})
	}
	serveCtx, stopServe := context.WithCancel(ctx)
	defer stopServe()
	go func() {
		select {
		case err := <-workerErr:
			log.Error("service worker failed; shutting down", zap.Error(err))
			stopServe()
		case <-serveCtx.Done():
		}
	}()
	if ready != nil {
		close(ready)
	}
	serveErr := s.srv.Serve(serveCtx, listeners)
	log.Info("listeners closed; draining workers")
	stopWork()
	werr := workers.Wait()
	log.Info("mash stopped")
	return errors.Join(serveErr, werr)
}

// migrateAll applies the plumbing's and the named services' migrations.
func migrateAll(ctx context.Context, pool *pgxpool.Pool, services []string) error {
	if err := auth.Migrate(ctx, pool); err != nil {
		return fmt.Errorf("migrate auth: %w", err)
	}
	if err := busauth.Migrate(ctx, pool); err != nil {
		return fmt.Errorf("migrate bus: %w", err)
	}
	if err := casekeys.Migrate(ctx, pool); err != nil {
		return fmt.Errorf("migrate case keys: %w", err)
	}
	for _, name := range services {
		if err := modules[name].migrate(ctx, pool); err != nil {
			return fmt.Errorf("migrate %s: %w", name, err)
		}
	}
	return nil
}

// servePprof serves the Go profiler on a loopback address of its own, so profiles can be
// taken under load without exposing them on the API listener.
func servePprof(addr string, log *zap.Logger) (func(), error) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("MASH_PPROF_ADDR %s: %w", addr, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	log.Info("profiling endpoints", zap.String("addr", addr))
	return func() { _ = srv.Close() }, nil
}

// selfAddr is where this process's own gRPC server is dialled: a wildcard listen address is
// reached on loopback.
func selfAddr(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}
