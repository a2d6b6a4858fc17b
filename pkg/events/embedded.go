package events

import (
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// EmbeddedConfig configures the in-process NATS server used on laptops and in tests.
type EmbeddedConfig struct {
	// StoreDir holds JetStream's file store. Required: a restart on the same directory keeps
	// every stream, consumer and the dedupe state.
	StoreDir string
	// Listen is host:port for a TCP listener, so the nats CLI can inspect streams. "" or
	// port -1 means no listener (in-process connections only); port 0 picks a free port.
	Listen string
	// ServerName names the server in logs and JetStream metadata. Default "mash-embedded".
	ServerName string
	// Auth, when set, decides every client's user and permissions (in process or on the
	// listener); a client it refuses, anonymous ones included, is disconnected. mash serve
	// always sets it (pkg/busauth); tests of the event plumbing alone may leave it out.
	Auth server.Authentication
	// TLS, when set, is required of every client on the listener (in-process connections
	// need none). A config that requires client certificates turns on their verification.
	TLS *tls.Config
}

// readyTimeout bounds how long StartEmbedded waits for the server to accept connections.
const readyTimeout = 10 * time.Second

// StartEmbedded starts a NATS server with JetStream in this process. Every write is fsynced
// (SyncAlways), the server installs no signal handlers, and it logs through log: warnings
// and errors always, notices and debug lines only when log has debug enabled.
// Shut it down with Shutdown and WaitForShutdown after its clients have drained.
func StartEmbedded(cfg EmbeddedConfig, log *zap.Logger) (*server.Server, error) {
	if log == nil {
		log = zap.NewNop()
	}
	if cfg.StoreDir == "" {
		return nil, errors.New("start embedded nats: StoreDir is empty: set it to a directory under the data dir")
	}
	if cfg.ServerName == "" {
		cfg.ServerName = "mash-embedded"
	}
	host, port, listen, err := parseListen(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("start embedded nats: %w", err)
	}
	if listen && port != server.RANDOM_PORT {
		// The server reports a bind failure only in its log, after a timeout; try the address
		// first so the error says at once which address is taken.
		l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err != nil {
			return nil, fmt.Errorf("start embedded nats: listen on %s: %w (set another address, or \"\" for no listener)", cfg.Listen, err)
		}
		_ = l.Close()
	}
	debug := log.Core().Enabled(zapcore.DebugLevel)
	opts := &server.Options{
		ServerName: cfg.ServerName,
		Host:       host,
		Port:       port,
		DontListen: !listen,
		JetStream:  true,
		StoreDir:   cfg.StoreDir,
		// Acknowledged means on disk: the default syncs only every two minutes.
		SyncAlways: true,
		NoSigs:     true,
		NoLog:      !debug,
		Debug:      debug,
	}
	if cfg.Auth != nil {
		opts.CustomClientAuthentication = cfg.Auth
		// A check may compare a bcrypt hash and read Postgres; on a loaded machine that can
		// outlast the default 2 s in which a client must be authenticated.
		opts.AuthTimeout = 10
	}
	if cfg.TLS != nil {
		opts.TLSConfig = cfg.TLS
		opts.TLSVerify = cfg.TLS.ClientAuth == tls.RequireAndVerifyClientCert
		opts.TLSTimeout = 5
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("start embedded nats: %w", err)
	}
	s.SetLoggerV2(natsLogger{log.WithOptions(zap.AddCallerSkip(1)), debug}, debug, false, false)
	s.Start()
	if !s.ReadyForConnections(readyTimeout) {
		s.Shutdown()
		where := "in process"
		if listen {
			where = "on " + cfg.Listen
		}
		return nil, fmt.Errorf("start embedded nats: not ready for connections %s after %s (store %s)", where, readyTimeout, cfg.StoreDir)
	}
	fields := []zap.Field{zap.String("store_dir", cfg.StoreDir)}
	if addr := s.Addr(); addr != nil {
		fields = append(fields, zap.String("listen", addr.String()))
	}
	log.Info("embedded nats started", fields...)
	return s, nil
}

// parseListen returns host, port and whether to listen at all.
func parseListen(listen string) (string, int, bool, error) {
	if listen == "" {
		return "", 0, false, nil
	}
	host, p, err := net.SplitHostPort(listen)
	if err != nil {
		return "", 0, false, fmt.Errorf("listen address %q: want host:port: %w", listen, err)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < -1 || port > 65535 {
		return "", 0, false, fmt.Errorf("listen address %q: port must be -1 to 65535", listen)
	}
	switch port {
	case -1:
		return "", 0, false, nil
	case 0:
		// The server reads port 0 as its default 4222; -1 is its "pick a free port".
		return host, server.RANDOM_PORT, true, nil
	}
	return host, port, true, nil
}

// ConnectEmbedded connects to an embedded server in process, without a socket. Extra
// options (the user's credentials and inbox prefix) are applied after the defaults.
func ConnectEmbedded(s *server.Server, name string, opts ...nats.Option) (*nats.Conn, error) {
	if s == nil {
		return nil, errors.New("connect embedded nats: no server")
	}
	nc, err := nats.Connect("", append([]nats.Option{nats.InProcessServer(s), nats.Name(name), nats.MaxReconnects(-1)}, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("connect embedded nats: %w", err)
	}
	return nc, nil
}

// Connect connects to external NATS servers (comma-separated URLs). It never gives up:
// a server that is down at start or later is retried forever with capped, jittered backoff,
// so a service keeps accepting work (the outbox holds it) while the broker is away.
// Publishes made while disconnected fail at once instead of filling a buffer: the relay
// retries from Postgres anyway. Extra options are applied after these defaults.
func Connect(url, name string, opts ...nats.Option) (*nats.Conn, error) {
	if url == "" {
		return nil, errors.New("connect nats: no URL: set NATS_URL, or leave it unset for the embedded server")
	}
	all := append([]nats.Option{
		nats.Name(name),
		nats.Timeout(5 * time.Second),
		nats.PingInterval(20 * time.Second),
		nats.MaxPingsOutstanding(3),
		nats.MaxReconnects(-1),
		nats.RetryOnFailedConnect(true),
		nats.ReconnectBufSize(-1),
		nats.CustomReconnectDelay(reconnectDelay),
	}, opts...)
	nc, err := nats.Connect(url, all...)
	if err != nil {
		// The URL may carry credentials; do not repeat it.
		return nil, fmt.Errorf("connect nats: %w", err)
	}
	return nc, nil
}

// reconnectDelay backs off from 100ms to 5s, with jitter so replicas do not reconnect in step.
func reconnectDelay(attempts int) time.Duration {
	d := 100 * time.Millisecond << min(attempts, 6)
	d = min(d, 5*time.Second)
	return d/2 + rand.N(d/2+1)
}

// natsLogger sends the server's log lines to zap.
type natsLogger struct {
	log   *zap.Logger
	debug bool
}

func (l natsLogger) Noticef(format string, v ...any) {
	if l.debug {
		l.log.Debug(fmt.Sprintf(format, v...))
	}
}
func (l natsLogger) Warnf(format string, v ...any)  { l.log.Warn(fmt.Sprintf(format, v...)) }
func (l natsLogger) Errorf(format string, v ...any) { l.log.Error(fmt.Sprintf(format, v...)) }

// Fatalf logs and returns: the server stops itself where it must, and exiting the process
// is the caller's decision.
func (l natsLogger) Fatalf(format string, v ...any) { l.log.Error(fmt.Sprintf(format, v...)) }
func (l natsLogger) Debugf(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l natsLogger) Tracef(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }
