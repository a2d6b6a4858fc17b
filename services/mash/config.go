package main

import (
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"math"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mash-hub/mash/pkg/calendar"
	"github.com/mash-hub/mash/pkg/config"
	"github.com/mash-hub/mash/pkg/db"
	"github.com/mash-hub/mash/pkg/events"
	"github.com/mash-hub/mash/pkg/peers"
	apiserver "github.com/mash-hub/mash/pkg/server"
	"github.com/mash-hub/mash/pkg/tlsconf"
	"github.com/mash-hub/mash/pkg/tracing"
	"github.com/mash-hub/mash/services/audit"
	"github.com/mash-hub/mash/services/console"
	"github.com/mash-hub/mash/services/notify"
	"github.com/mash-hub/mash/services/notify/channel"
	"github.com/mash-hub/mash/services/notify/seal"
	"github.com/mash-hub/mash/services/triage"
)

// commonConfig is what every command needs.
type commonConfig struct {
	DatabaseURL string
	LogLevel    string
	LogFormat   string
}

func declareCommon(s *config.Set, c *commonConfig) func() error {
	dbURL := s.String("database-url", "DATABASE_URL", db.DefaultURL, "Postgres connection URL")
	lvl := s.String("log-level", "MASH_LOG_LEVEL", "info", "log level: debug, info, warn, error")
	format := s.String("log-format", "MASH_LOG_FORMAT", "json", "log format: json or console")
	return func() error {
		c.DatabaseURL, c.LogLevel, c.LogFormat = *dbURL, *lvl, *format
		if u, err := url.Parse(c.DatabaseURL); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			return errors.New("DATABASE_URL: must be a postgres:// URL")
		}
		return nil
	}
}

// serveConfig is the configuration of mash serve.
type serveConfig struct {
	commonConfig
	Services        []string
	NATSURL         string
	NATSListen      string
	NATSReplicas    int
	DataDir         string
	GRPCAddr        string
	HTTPAddr        string
	MigrateOnStart  bool
	ShutdownTimeout time.Duration
	PprofAddr       string
	Calendar        calendar.Config
	Audit           audit.Config
	// Console is the console's settings, read here so a bad MASH_CONSOLE_* stops mash before
	// it connects to anything.
	Console   console.Config
	Notify    notifyConfig
	Reconcile events.ReconcilerConfig
	// Peers names where services that run in other processes are reached over gRPC.
	Peers map[string]string
	// ClaimTimeout is how long a practitioner's claim (or a manager's assignment) on a case
	// holds unless renewed.
	ClaimTimeout time.Duration
	// Retention is whether triage erases the cases due under their retention schedule
	// once a day (off by default).
	Retention triage.RetentionConfig
	// QualitySamplePercent is the share of decided cases offered to managers for quality
	// assurance review.
	QualitySamplePercent int
	// TLS names the process's certificate files (all empty: no TLS).
	TLS tlsconf.Files
	// NATSPasswords are the passwords of the process's and its services' NATS users, for an
	// external server (the embedded one makes its own).
	NATSPasswords map[string]string
	// Limits are the API listeners' rate limits, connection cap and timeouts.
	Limits apiserver.Limits
	// BehindTLS marks responses for HTTPS only (HSTS) when a proxy ends TLS in front.
	BehindTLS bool
	// CaseKEK wraps every case's data key (MASH_CASE_KEK); empty only on loopback, where
	// event payloads then stay clear.
	CaseKEK []byte
	// ServiceDatabaseURLs are the services that connect with a login of their own
	// (MASH_<SERVICE>_DATABASE_URL); the others use DATABASE_URL.
	ServiceDatabaseURLs map[string]string
	// Tracing says where spans go; off unless MASH_OTLP_ENDPOINT or the standard
	// OTEL_EXPORTER_OTLP_ENDPOINT is set.
	Tracing tracing.Config
}

// serviceDatabaseEnv is the setting naming service's own database login:
// MASH_INTAKE_DATABASE_URL, MASH_TRIAGE_DATABASE_URL, ...
func serviceDatabaseEnv(service string) string {
	return "MASH_" + strings.ToUpper(service) + "_DATABASE_URL"
}

// otlpEnv are the standard OpenTelemetry settings that turn trace export on by themselves.
var otlpEnv = []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"}

// tlsSettings names each TLS file's setting, for errors.
var tlsSettings = tlsconf.Files{Cert: "MASH_TLS_CERT", Key: "MASH_TLS_KEY", CA: "MASH_TLS_CA", ClientCA: "MASH_TLS_CLIENT_CA"}

// notifyConfig is the notify service's settings.
type notifyConfig struct {
	DirectoryFile string
	SendTimeout   time.Duration
	// InFlight bounds notify's claimed, unrecorded messages (MASH_NOTIFY_IN_FLIGHT).
	InFlight int
	SMTP     channel.EmailConfig
	// SecretKey seals agencies' webhook secrets (MASH_NOTIFY_SECRET_KEY).
	SecretKey []byte
	// ChangeTTL is how long a proposed directory change waits for a second manager.
	ChangeTTL time.Duration
}

func parseServeConfig(args []string) (serveConfig, error) {
	var c serveConfig
	fs := flag.NewFlagSet("mash serve", flag.ContinueOnError)
	s := config.New(fs)
	common := declareCommon(s, &c.commonConfig)
	services := s.String("services", "MASH_SERVICES", "all", "comma-separated services to run, or all ("+strings.Join(serviceNames(), ", ")+")")
	natsURL := s.String("nats-url", "NATS_URL", "", "NATS server URLs, comma-separated; empty runs an embedded server")
	natsListen := s.String("nats-listen", "MASH_NATS_LISTEN", "127.0.0.1:4223", "loopback address of the embedded NATS server, for the nats CLI")
	replicas := s.Int("nats-replicas", "MASH_NATS_REPLICAS", 1, "JetStream stream replicas (3 on a cluster)")
	dataDir := s.String("data-dir", "MASH_DATA_DIR", "mash-data", "directory for the embedded NATS server's JetStream files")
	grpcAddr := s.String("grpc-addr", "MASH_GRPC_ADDR", "127.0.0.1:9090", "gRPC listen address")
	httpAddr := s.String("http-addr", "MASH_HTTP_ADDR", "127.0.0.1:8080", "HTTP listen address")
	migrateOnStart := s.Bool("migrate", "MASH_MIGRATE_ON_START", true, "apply migrations at start (a deployment may run mash migrate as a job instead)")
	shutdown := s.Duration("shutdown-timeout", "MASH_SHUTDOWN_TIMEOUT", 20*time.Second, "how long in-flight requests may take at shutdown")
	pprofAddr := s.String("pprof-addr", "MASH_PPROF_ADDR", "", "loopback address for Go profiling endpoints (off when empty)")
	dayStart := s.String("workday-start", "MASH_WORKDAY_START", "09:00", "start of the working day (HH:MM, Europe/London)")
	dayEnd := s.String("workday-end", "MASH_WORKDAY_END", "17:00", "end of the working day (HH:MM, Europe/London)")
	region := s.String("calendar-region", "MASH_CALENDAR_REGION", calendar.RegionEnglandAndWales, "bank-holiday region: england-and-wales, england or wales")
	extra := s.String("extra-bank-holidays", "MASH_EXTRA_BANK_HOLIDAYS", "", "one-off closure days, YYYY-MM-DD comma-separated")
	notifyDir := s.String("notify-directory", "MASH_NOTIFY_DIRECTORY", "", "agency directory file (YAML) loaded at start by the notify service")
	reconcileAge := s.Duration("reconcile-age", "MASH_RECONCILE_AGE", events.DefaultReconcileAge, "how long a downstream effect may take before its event is re-emitted")
	reconcileEvery := s.Duration("reconcile-every", "MASH_RECONCILE_EVERY", events.DefaultReconcileEvery, "how often the reconcilers look for missing effects")
	inFlight := s.Int("notify-in-flight", "MASH_NOTIFY_IN_FLIGHT", notify.DefaultInFlight, "messages notify may have claimed and not yet recorded, across all agencies (each agency is still sent at most its directory concurrency at once)")
	sendTimeout := s.Duration("notify-send-timeout", "MASH_NOTIFY_SEND_TIMEOUT", 10*time.Second, "how long one delivery attempt may take; an attempt cut off by a crash is retried after twice this plus 5 s")
	smtpAddr := s.String("smtp-addr", "MASH_SMTP_ADDR", "", "SMTP relay host:port for email notifications (email channel off when empty)")
	smtpFrom := s.String("smtp-from", "MASH_SMTP_FROM", "", "sender address of email notifications")
	smtpUser := s.String("smtp-username", "MASH_SMTP_USERNAME", "", "SMTP username (PLAIN auth, over TLS only)")
	smtpPass := s.String("smtp-password", "MASH_SMTP_PASSWORD", "", "SMTP password")
	notifyKey := s.String("notify-secret-key", "MASH_NOTIFY_SECRET_KEY", "", "base64 of 32 random bytes sealing agencies' webhook secrets at rest (openssl rand -base64 32); on loopback a local one is kept in MASH_DATA_DIR when unset")
	changeTTL := s.Duration("notify-change-ttl", "MASH_NOTIFY_CHANGE_TTL", notify.DefaultChangeTTL, "how long a proposed change to an agency's endpoint or secret waits for a second manager")
	claimTimeout := s.Duration("claim-timeout", "MASH_CLAIM_TIMEOUT", triage.DefaultClaimTimeout, "how long a practitioner's own claim on a case holds unless they claim it again (an assignment holds until changed)")
	retentionDaily := s.Bool("retention-daily", triage.EnvRetentionDaily, false, "erase, once a day, every closed case its retention schedule says is due (each on the audit trail); off by default")
	retentionFirst := s.Duration("retention-first-run", triage.EnvRetentionFirstRun, triage.DefaultRetentionFirstRun, "how long after start the first daily retention run waits")
	qaPercent := s.Int("qa-sample-percent", "MASH_QA_SAMPLE_PERCENT", triage.DefaultQualitySamplePercent, "percent of decided cases offered to managers for quality assurance review (1-100)")
	peerAddrs := s.String("peers", "MASH_PEERS", "", "gRPC addresses of services run by other processes, e.g. rules=rules:9090,triage=triage:9090 (others are reached at MASH_GRPC_ADDR)")
	tlsCert := s.String("tls-cert", "MASH_TLS_CERT", "", "PEM certificate (chain) of this process: gRPC, HTTP and the embedded NATS listener serve TLS with it, and it is the client certificate shown to peers and NATS")
	tlsKey := s.String("tls-key", "MASH_TLS_KEY", "", "PEM private key of MASH_TLS_CERT")
	tlsCA := s.String("tls-ca", "MASH_TLS_CA", "", "PEM CA bundle the certificates of peers and NATS servers must chain to (system roots when empty)")
	tlsClientCA := s.String("tls-client-ca", "MASH_TLS_CLIENT_CA", "", "PEM CA bundle for mutual TLS: gRPC and embedded NATS clients must present a certificate that chains to it")
	plaintext := s.Bool("allow-plaintext", "MASH_ALLOW_PLAINTEXT", false, "allow listening and calling off loopback without TLS (only where the network itself encrypts, e.g. a service mesh)")
	removed := s.String("removed-bank-holidays", "MASH_REMOVED_BANK_HOLIDAYS", "", "bank holidays the hub works, YYYY-MM-DD comma-separated")
	limits := declareLimits(s)
	behindTLS := s.Bool("behind-tls", "MASH_BEHIND_TLS", false, "clients reach mash over HTTPS through a proxy that ends TLS: responses carry Strict-Transport-Security")
	serviceURLs := map[string]*string{}
	for _, name := range serviceNames() {
		serviceURLs[name] = s.String(name+"-database-url", serviceDatabaseEnv(name), "",
			"Postgres URL of the "+name+" service's own login (granted by mash migrate --grant-roles); empty: DATABASE_URL")
	}
	otlpEndpoint := s.String("otlp-endpoint", "MASH_OTLP_ENDPOINT", "", "OTLP/gRPC collector spans are exported to, e.g. http://otel-collector:4317 (https:// for TLS); empty: the standard OTEL_EXPORTER_OTLP_ENDPOINT if set, else tracing off")
	sampleRatio := s.String("trace-sample-ratio", "MASH_TRACE_SAMPLE_RATIO", "1", "fraction of new traces recorded when tracing is on, above 0 and at most 1 (a trace begun by a caller keeps its caller's choice)")
	if err := s.Parse(args); err != nil {
		return c, err
	}
	c.ServiceDatabaseURLs = map[string]string{}
	for name, v := range serviceURLs {
		if *v == "" {
			continue
		}
		if u, err := url.Parse(*v); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			return c, fmt.Errorf("%s: must be a postgres:// URL", serviceDatabaseEnv(name))
		}
		c.ServiceDatabaseURLs[name] = *v
	}
	c.Tracing.Endpoint = strings.TrimSpace(*otlpEndpoint)
	if c.Tracing.Endpoint != "" {
		if u, err := url.Parse(c.Tracing.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return c, fmt.Errorf("MASH_OTLP_ENDPOINT %q: must be http://host:port or https://host:port", c.Tracing.Endpoint)
		}
	}
	for _, env := range otlpEnv {
		if v, ok := os.LookupEnv(env); ok && strings.TrimSpace(v) != "" {
			c.Tracing.FromEnv = true
		}
	}
	ratio, ratioErr := strconv.ParseFloat(strings.TrimSpace(*sampleRatio), 64)
	if ratioErr != nil || !(ratio > 0 && ratio <= 1) {
		return c, fmt.Errorf("MASH_TRACE_SAMPLE_RATIO %q: must be a number above 0, at most 1 (leave the OTLP endpoint unset to turn tracing off)", *sampleRatio)
	}
	c.Tracing.SampleRatio = ratio
	var err error
	if c.Limits, err = limits(); err != nil {
		return c, err
	}
	c.BehindTLS = *behindTLS
	if err := common(); err != nil {
		return c, err
	}
	if c.Services, err = parseServices(*services); err != nil {
		return c, err
	}
	c.NATSURL, c.NATSListen, c.NATSReplicas, c.DataDir = strings.TrimSpace(*natsURL), *natsListen, *replicas, *dataDir
	c.GRPCAddr, c.HTTPAddr, c.MigrateOnStart, c.ShutdownTimeout = *grpcAddr, *httpAddr, *migrateOnStart, *shutdown
	for env, v := range map[string]string{"MASH_GRPC_ADDR": c.GRPCAddr, "MASH_HTTP_ADDR": c.HTTPAddr} {
		if err := config.HostPort(env, v); err != nil {
			return c, err
		}
	}
	if c.PprofAddr = *pprofAddr; c.PprofAddr != "" {
		if err := config.Loopback("MASH_PPROF_ADDR", c.PprofAddr); err != nil {
			return c, err
		}
	}
	if c.NATSURL == "" {
		if err := config.Loopback("MASH_NATS_LISTEN", c.NATSListen); err != nil {
			return c, err
		}
		if c.DataDir == "" {
			return c, errors.New("MASH_DATA_DIR: required when NATS_URL is unset (the embedded server keeps JetStream files there)")
		}
	} else {
		for _, u := range strings.Split(c.NATSURL, ",") {
			p, err := url.Parse(strings.TrimSpace(u))
			if err != nil || (p.Scheme != "nats" && p.Scheme != "tls") || p.Host == "" {
				return c, fmt.Errorf("NATS_URL %q: each entry must be nats://host:port or tls://host:port", u)
			}
		}
	}
	if c.NATSReplicas != 1 && c.NATSReplicas != 3 && c.NATSReplicas != 5 {
		return c, fmt.Errorf("MASH_NATS_REPLICAS %d: must be 1, 3 or 5", c.NATSReplicas)
	}
	if c.Calendar.DayStart, err = calendar.ParseClockTime(*dayStart); err != nil {
		return c, fmt.Errorf("MASH_WORKDAY_START: %w", err)
	}
	if c.Calendar.DayEnd, err = calendar.ParseClockTime(*dayEnd); err != nil {
		return c, fmt.Errorf("MASH_WORKDAY_END: %w", err)
	}
	c.Calendar.Region = *region
	if c.Calendar.ExtraHolidays, err = calendar.ParseDates(*extra); err != nil {
		return c, fmt.Errorf("MASH_EXTRA_BANK_HOLIDAYS: %w", err)
	}
	if c.Calendar.RemovedHolidays, err = calendar.ParseDates(*removed); err != nil {
		return c, fmt.Errorf("MASH_REMOVED_BANK_HOLIDAYS: %w", err)
	}
	if slices.ContainsFunc(c.Services, func(name string) bool { return name != "console" }) {
		// Every service but the console writes or reads events.
		if c.CaseKEK, err = caseKEK(os.LookupEnv, map[string]string{"MASH_GRPC_ADDR": c.GRPCAddr, "MASH_HTTP_ADDR": c.HTTPAddr}); err != nil {
			return c, err
		}
	}
	if slices.Contains(c.Services, "audit") {
		if c.Audit, err = auditConfig(); err != nil {
			return c, err
		}
	}
	if slices.Contains(c.Services, "console") {
		if c.Console, err = console.ConfigFromEnv(os.LookupEnv); err != nil {
			return c, err
		}
		if err := c.Console.CheckServedAt(c.HTTPAddr); err != nil {
			return c, err
		}
	}
	if *reconcileAge < time.Second || *reconcileAge > events.DefaultDuplicates {
		// Older than the stream's duplicates window, a re-emission would still be absorbed,
		// but an undecided referral should not wait that long to be noticed.
		return c, fmt.Errorf("MASH_RECONCILE_AGE %s: use between 1s and %s", *reconcileAge, events.DefaultDuplicates)
	}
	if *reconcileEvery < 100*time.Millisecond || *reconcileEvery > time.Hour {
		return c, fmt.Errorf("MASH_RECONCILE_EVERY %s: use between 100ms and 1h", *reconcileEvery)
	}
	if *claimTimeout < time.Minute || *claimTimeout > 24*time.Hour {
		return c, fmt.Errorf("MASH_CLAIM_TIMEOUT %s: use between 1m and 24h", *claimTimeout)
	}
	c.ClaimTimeout = *claimTimeout
	if *retentionFirst < time.Second || *retentionFirst > 24*time.Hour {
		return c, fmt.Errorf("%s %s: use between 1s and 24h", triage.EnvRetentionFirstRun, *retentionFirst)
	}
	c.Retention = triage.RetentionConfig{Daily: *retentionDaily, FirstRunAfter: *retentionFirst}
	if *qaPercent < 1 || *qaPercent > 100 {
		return c, fmt.Errorf("MASH_QA_SAMPLE_PERCENT %d: use between 1 and 100", *qaPercent)
	}
	c.QualitySamplePercent = *qaPercent
	if c.Peers, err = peers.ParseAddrs(*peerAddrs); err != nil {
		return c, fmt.Errorf("MASH_PEERS: %w", err)
	}
	for name := range c.Peers {
		if _, ok := modules[name]; !ok {
			return c, fmt.Errorf("MASH_PEERS: unknown service %q; this build has: %s", name, strings.Join(serviceNames(), ", "))
		}
	}
	c.Reconcile = events.ReconcilerConfig{Age: *reconcileAge, Every: *reconcileEvery}
	if *sendTimeout < 100*time.Millisecond || *sendTimeout > 2*time.Minute {
		return c, fmt.Errorf("MASH_NOTIFY_SEND_TIMEOUT %s: use between 100ms and 2m", *sendTimeout)
	}
	if *inFlight < 1 || *inFlight > notify.MaxInFlight {
		return c, fmt.Errorf("MASH_NOTIFY_IN_FLIGHT %d: use between 1 and %d", *inFlight, notify.MaxInFlight)
	}
	c.Notify = notifyConfig{DirectoryFile: *notifyDir, SendTimeout: *sendTimeout, InFlight: *inFlight, SMTP: channel.EmailConfig{Addr: *smtpAddr, From: *smtpFrom,
		Username: *smtpUser, Password: *smtpPass, Timeout: 10 * time.Second}}
	if *changeTTL < time.Minute || *changeTTL > 30*24*time.Hour {
		return c, fmt.Errorf("MASH_NOTIFY_CHANGE_TTL %s: use between 1m and 720h", *changeTTL)
	}
	c.Notify.ChangeTTL = *changeTTL
	if slices.Contains(c.Services, "notify") {
		if c.Notify.DirectoryFile != "" {
			if _, err := os.Stat(c.Notify.DirectoryFile); err != nil {
				return c, fmt.Errorf("MASH_NOTIFY_DIRECTORY: %w", err)
			}
		}
		if c.Notify.SMTP.Addr != "" {
			if c.Notify.SMTP.From == "" {
				return c, errors.New("MASH_SMTP_FROM: required when MASH_SMTP_ADDR is set")
			}
			if _, err := channel.NewEmail(c.Notify.SMTP); err != nil {
				return c, fmt.Errorf("MASH_SMTP_ADDR: %w", err)
			}
		}
	}
	c.TLS = tlsconf.Files{Cert: *tlsCert, Key: *tlsKey, CA: *tlsCA, ClientCA: *tlsClientCA}
	if err := c.TLS.Validate(tlsSettings); err != nil {
		return c, err
	}
	if !c.TLS.Enabled() && !*plaintext {
		if err := plaintextOffLoopback(c); err != nil {
			return c, err
		}
	}
	if c.NATSURL != "" {
		if c.NATSPasswords, err = busUsers(c.NATSURL, c.Services, os.LookupEnv); err != nil {
			return c, err
		}
	}
	if slices.Contains(c.Services, "notify") {
		// After the listeners' own checks: a listener refused for want of TLS says so first.
		if c.Notify.SecretKey, err = notifySecretKey(*notifyKey, c); err != nil {
			return c, err
		}
	}
	if _, err := calendar.New(c.Calendar); err != nil {
		return c, fmt.Errorf("calendar settings (MASH_WORKDAY_*, MASH_CALENDAR_REGION, MASH_*_BANK_HOLIDAYS): %w", err)
	}
	return c, nil
}

// localNotifyKeyFile is where a loopback-only deployment keeps its generated key.
const localNotifyKeyFile = "notify-secret.key"

// notifySecretKey is the key sealing webhook secrets: MASH_NOTIFY_SECRET_KEY when set.
// Unset, a process whose listeners are all on loopback (a developer's machine) keeps a
// generated key in MASH_DATA_DIR, so its secrets survive restarts; anywhere else start-up
// fails, since a key made up on the spot would lock every stored secret away at the next
// restart, or differ between replicas.
func notifySecretKey(v string, c serveConfig) ([]byte, error) {
	if v != "" {
		k, err := seal.ParseKey(v)
		if err != nil {
			return nil, fmt.Errorf("MASH_NOTIFY_SECRET_KEY: %w", err)
		}
		return k, nil
	}
	for env, addr := range map[string]string{"MASH_HTTP_ADDR": c.HTTPAddr, "MASH_GRPC_ADDR": c.GRPCAddr} {
		if config.Loopback(env, addr) != nil {
			return nil, fmt.Errorf("MASH_NOTIFY_SECRET_KEY: required when %s (%s) listens beyond loopback: base64 of 32 random bytes (openssl rand -base64 32), the same in every notify replica", env, addr)
		}
	}
	if c.DataDir == "" {
		return nil, errors.New("MASH_NOTIFY_SECRET_KEY: unset, and MASH_DATA_DIR is empty, so there is nowhere to keep a local key")
	}
	path := filepath.Join(c.DataDir, localNotifyKeyFile)
	if b, err := os.ReadFile(path); err == nil {
		k, err := seal.ParseKey(string(b))
		if err != nil {
			return nil, fmt.Errorf("MASH_NOTIFY_SECRET_KEY: local key %s: %w", path, err)
		}
		return k, nil
	}
	k, err := seal.NewKey()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("MASH_NOTIFY_SECRET_KEY: local key: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		// Another process made it first: use theirs.
		return notifySecretKey("", c)
	}
	if err != nil {
		return nil, fmt.Errorf("MASH_NOTIFY_SECRET_KEY: local key: %w", err)
	}
	_, werr := f.WriteString(base64.StdEncoding.EncodeToString(k) + "\n")
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return nil, fmt.Errorf("MASH_NOTIFY_SECRET_KEY: local key %s: %w", path, werr)
	}
	return k, nil
}

// auditConfig reads the audit service's keys and settings from the environment; both keys
// are required, as an audit log without them could be neither signed nor kept private.
func auditConfig() (audit.Config, error) {
	c, err := audit.ConfigFromEnv(os.LookupEnv)
	if err != nil {
		return c, err
	}
	switch {
	case len(c.MasterKey) == 0:
		return c, fmt.Errorf("%s: required to run the audit service; mash audit keygen makes one (or leave audit out of MASH_SERVICES)", audit.EnvMasterKey)
	case c.SigningKey == "":
		return c, fmt.Errorf("%s: required to run the audit service; mash audit keygen makes one (or leave audit out of MASH_SERVICES)", audit.EnvSigningKey)
	}
	return c, nil
}

// plaintextOffLoopback refuses a configuration that would carry bearer tokens, session
// cookies and events across a network in clear: a listener, a peer or a NATS server off
// loopback with no certificate configured.
func plaintextOffLoopback(c serveConfig) error {
	const fix = "set MASH_TLS_CERT and MASH_TLS_KEY, or MASH_ALLOW_PLAINTEXT=true where the network itself encrypts"
	for env, addr := range map[string]string{"MASH_GRPC_ADDR": c.GRPCAddr, "MASH_HTTP_ADDR": c.HTTPAddr} {
		if config.Loopback(env, addr) != nil {
			return fmt.Errorf("%s %s: listens off loopback without TLS: %s", env, addr, fix)
		}
	}
	for name, addr := range c.Peers {
		if host, _, err := net.SplitHostPort(addr); err != nil || !loopbackHost(host) {
			return fmt.Errorf("MASH_PEERS: %s at %s is off loopback and would be called without TLS: %s", name, addr, fix)
		}
	}
	if c.NATSURL != "" && !natsOnLoopback(c.NATSURL) {
		for _, u := range strings.Split(c.NATSURL, ",") {
			if p, err := url.Parse(strings.TrimSpace(u)); err != nil || p.Scheme != "tls" {
				return fmt.Errorf("NATS_URL: %s is off loopback and not tls://: %s", strings.TrimSpace(u), fix)
			}
		}
	}
	return nil
}

// declareLimits declares the API listeners' limits; the returned function reads and checks
// them after parsing, naming a bad setting.
func declareLimits(s *config.Set) func() (apiserver.Limits, error) {
	credRate := s.String("rate-credential", "MASH_RATE_CREDENTIAL", "50", "requests per second per credential (0: no limit)")
	credBurst := s.Int("rate-credential-burst", "MASH_RATE_CREDENTIAL_BURST", 100, "requests a credential may make at once above its rate")
	addrRate := s.String("rate-address", "MASH_RATE_ADDRESS", "200", "requests per second per client address (0: no limit)")
	addrBurst := s.Int("rate-address-burst", "MASH_RATE_ADDRESS_BURST", 400, "requests an address may make at once above its rate")
	failRate := s.String("rate-failed-auth", "MASH_RATE_FAILED_AUTH", "1", "failed authentications per second per client address before it is refused unheard (0: no limit)")
	failBurst := s.Int("rate-failed-auth-burst", "MASH_RATE_FAILED_AUTH_BURST", 20, "failed authentications an address may make at once above its rate")
	exempt := s.String("rate-exempt", "MASH_RATE_EXEMPT", "127.0.0.0/8,::1/128", "client networks (CIDR, comma-separated) the per-address limits skip: loopback, and the network services call each other from")
	proxies := s.String("trusted-proxies", "MASH_TRUSTED_PROXIES", "", "networks (CIDR, comma-separated) of proxies whose X-Forwarded-For names the client, such as the ingress controller's")
	maxConns := s.Int("max-conns", "MASH_MAX_CONNS", 1000, "open connections per listener (gRPC, HTTP) at most (0: no cap)")
	idle := s.Duration("idle-timeout", "MASH_IDLE_TIMEOUT", apiserver.DefaultIdleTimeout, "an HTTP keep-alive connection, or a gRPC connection with no call in flight, is closed after this long idle")
	readHeader := s.Duration("read-header-timeout", "MASH_READ_HEADER_TIMEOUT", apiserver.DefaultReadHeaderTimeout, "how long an HTTP client may take to send its request headers")
	return func() (apiserver.Limits, error) {
		l := apiserver.Limits{CredentialBurst: *credBurst, AddressBurst: *addrBurst, FailedAuthBurst: *failBurst, MaxConns: *maxConns,
			IdleTimeout: *idle, ReadHeaderTimeout: *readHeader}
		for _, r := range []struct {
			env   string
			raw   string
			burst int
			into  *float64
		}{
			{"MASH_RATE_CREDENTIAL", *credRate, *credBurst, &l.CredentialRate},
			{"MASH_RATE_ADDRESS", *addrRate, *addrBurst, &l.AddressRate},
			{"MASH_RATE_FAILED_AUTH", *failRate, *failBurst, &l.FailedAuthRate},
		} {
			v, err := strconv.ParseFloat(strings.TrimSpace(r.raw), 64)
			if err != nil || v < 0 || math.IsInf(v, 0) || math.IsNaN(v) {
				return l, fmt.Errorf("%s %q: must be a number of requests per second, 0 or more (0: no limit)", r.env, r.raw)
			}
			if v > 0 && (r.burst < 1 || r.burst > 1_000_000) {
				return l, fmt.Errorf("%s_BURST %d: must be between 1 and 1000000", r.env, r.burst)
			}
			*r.into = v
		}
		var err error
		if l.Exempt, err = parseNetworks("MASH_RATE_EXEMPT", *exempt); err != nil {
			return l, err
		}
		if l.TrustedProxies, err = parseNetworks("MASH_TRUSTED_PROXIES", *proxies); err != nil {
			return l, err
		}
		switch {
		case l.MaxConns < 0 || l.MaxConns > 1_000_000:
			return l, fmt.Errorf("MASH_MAX_CONNS %d: must be between 0 (no cap) and 1000000", l.MaxConns)
		case l.IdleTimeout < time.Second || l.IdleTimeout > 24*time.Hour:
			return l, fmt.Errorf("MASH_IDLE_TIMEOUT %s: use between 1s and 24h", l.IdleTimeout)
		case l.ReadHeaderTimeout < 100*time.Millisecond || l.ReadHeaderTimeout > 30*time.Second:
			return l, fmt.Errorf("MASH_READ_HEADER_TIMEOUT %s: use between 100ms and 30s", l.ReadHeaderTimeout)
		}
		return l, l.Validate()
	}
}

// parseNetworks reads comma-separated CIDR networks, naming env and the bad entry.
func parseNetworks(env, v string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, part := range strings.Split(v, ",") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		p, err := netip.ParsePrefix(part)
		if err != nil {
			return nil, fmt.Errorf("%s %q: each entry must be a network such as 10.0.0.0/8", env, part)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}
