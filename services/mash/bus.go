package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/mash-hub/mash/pkg/busauth"
	"github.com/mash-hub/mash/pkg/config"
	"github.com/mash-hub/mash/pkg/events"
	apiserver "github.com/mash-hub/mash/pkg/server"
)

// busRoles are the bus roles of the named services (a service without one never connects
// to NATS).
func busRoles(services []string) []busauth.Role {
	var roles []busauth.Role
	for _, name := range services {
		if r := modules[name].bus; r != nil {
			roles = append(roles, *r)
		}
	}
	return roles
}

// allBusRoles are the bus roles of every service this build has.
func allBusRoles() []busauth.Role { return busRoles(serviceNames()) }

// passwordEnv is where mash serve finds user's password for an external NATS server.
func passwordEnv(user string) string {
	return "MASH_NATS_PASSWORD_" + strings.ToUpper(strings.ReplaceAll(user, "-", "_"))
}

// busUsers reads, for an external server, the password of the process's own user and of
// each service's from the environment. Off loopback every one is required; on loopback a
// server without authorization (a developer's) may be used with none.
func busUsers(natsURL string, services []string, lookup func(string) (string, bool)) (map[string]string, error) {
	names := []string{busauth.PlumbingUser}
	for _, r := range busRoles(services) {
		names = append(names, r.Service)
	}
	out := map[string]string{}
	var missing []string
	for _, n := range names {
		if v, ok := lookup(passwordEnv(n)); ok && v != "" {
			out[n] = v
		} else {
			missing = append(missing, passwordEnv(n))
		}
	}
	if len(missing) == 0 || (len(out) == 0 && natsOnLoopback(natsURL)) {
		return out, nil
	}
	return nil, fmt.Errorf("%s: required with NATS_URL (mash bus users create --service makes each; %s is the process's own)",
		strings.Join(missing, ", "), busauth.PlumbingUser)
}

// natsOnLoopback reports whether every NATS URL names a loopback host.
func natsOnLoopback(natsURL string) bool {
	for _, u := range strings.Split(natsURL, ",") {
		p, err := url.Parse(strings.TrimSpace(u))
		if err != nil || !loopbackHost(p.Hostname()) {
			return false
		}
	}
	return true
}

func loopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// busConn is one NATS user's connection.
type busConn struct {
	nc *nats.Conn
	js jetstream.JetStream
}

// connectNATS starts the embedded server (refusing anonymous clients; the process's users
// get fresh passwords, agencies and operators are checked against the bus users table) or
// reaches the external one, then connects the process and each of its services as their
// own users and declares the stream.
func (p *plumbing) connectNATS(ctx context.Context, cfg serveConfig) error {
	roles := busRoles(cfg.Services)
	var users []busauth.User
	var connect func(u busauth.User) (*nats.Conn, error)
	natsLog := p.log.Named("nats")
	base := []nats.Option{nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
		// A permissions violation means a subject is missing from a service's Role.
		fields := []zap.Field{zap.Error(err)}
		if sub != nil {
			fields = append(fields, zap.String("subject", sub.Subject))
		}
		natsLog.Error("nats error", fields...)
	})}
	if cfg.NATSURL == "" {
		storeDir := filepath.Join(cfg.DataDir, "jetstream")
		if err := os.MkdirAll(storeDir, 0o700); err != nil {
			return fmt.Errorf("MASH_DATA_DIR %s: %w", cfg.DataDir, err)
		}
		var err error
		if users, err = busauth.ServiceUsers(roles); err != nil {
			return err
		}
		p.busAuth = busauth.NewAuthenticator(users, busauth.NewStore(p.pool, allBusRoles()), natsLog.Named("auth"))
		ec := events.EmbeddedConfig{StoreDir: storeDir, Listen: cfg.NATSListen, ServerName: "mash-embedded", Auth: p.busAuth}
		if p.tls != nil {
			ec.TLS = p.tls.Server()
		}
		if p.embedded, err = events.StartEmbedded(ec, natsLog); err != nil {
			return err
		}
		connect = func(u busauth.User) (*nats.Conn, error) {
			return events.ConnectEmbedded(p.embedded, "mash-"+u.Name, append(slices.Clone(base), u.Options()...)...)
		}
	} else {
		for _, name := range append([]string{busauth.PlumbingUser}, roleNames(roles)...) {
			users = append(users, busauth.User{Name: name, Password: cfg.NATSPasswords[name]})
		}
		if p.tls != nil {
			base = append(base, nats.Secure(p.tls.Client()))
		}
		connect = func(u busauth.User) (*nats.Conn, error) {
			opts := slices.Clone(base)
			if u.Password != "" {
				opts = append(opts, u.Options()...)
			}
			return events.Connect(cfg.NATSURL, "mash-"+u.Name, opts...)
		}
	}
	p.bus = map[string]busConn{}
	for _, u := range users {
		nc, err := connect(u)
		if err != nil {
			return fmt.Errorf("nats user %s: %w", u.Name, err)
		}
		js, err := jetstream.New(nc)
		if err != nil {
			nc.Close()
			return fmt.Errorf("jetstream for %s: %w", u.Name, err)
		}
		p.bus[u.Name] = busConn{nc: nc, js: js}
	}
	own := p.bus[busauth.PlumbingUser]
	p.nc, p.js = own.nc, own.js
	ensureCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return events.EnsureStreams(ensureCtx, p.js, events.StreamOptions{Replicas: cfg.NATSReplicas})
}

func roleNames(roles []busauth.Role) []string {
	out := make([]string, len(roles))
	for i, r := range roles {
		out[i] = r.Service
	}
	return out
}

// busSweeper closes the embedded server's connections of agencies and operators revoked
// since they connected; it runs beside the services.
type busSweeper struct {
	auth *busauth.Authenticator
	srv  *natsserver.Server
}

func (busSweeper) Register(*apiserver.Server) {}

func (b busSweeper) Run(ctx context.Context) error {
	return b.auth.RunSweeper(ctx, b.srv, busauth.SweepEvery)
}

// jsOf is service's JetStream, connected as its own user.
func (p *plumbing) jsOf(service string) jetstream.JetStream { return p.bus[service].js }

// busCommand manages the users of the NATS bus.
func busCommand(ctx context.Context, args []string) error {
	usage := errors.New("usage: mash bus users create (--agency ID | --service NAME | --operator NAME) | users list | users revoke USER | config")
	if len(args) == 0 {
		return usage
	}
	if args[0] == "config" {
		return busConfig(ctx, args[1:])
	}
	if args[0] != "users" || len(args) < 2 {
		return usage
	}
	sub := args[1]
	var agency, service, operatorID *string
	declare := func(s *config.Set) {
		if sub == "create" {
			agency = s.String("agency", "MASH_BUS_AGENCY", "", "agency id (as in the directory): may read mash.notify.<agency> and publish its acks and answers")
			service = s.String("service", "MASH_BUS_SERVICE", "", "service name (or "+busauth.PlumbingUser+", the process's own), for an external NATS server")
			operatorID = s.String("operator", "MASH_BUS_OPERATOR", "", "operator name: may inspect the stream and replay dead letters")
		}
	}
	var kind, id string
	check := func() error {
		switch sub {
		case "create":
			set := 0
			for k, v := range map[string]string{busauth.KindAgency: *agency, busauth.KindService: *service, busauth.KindOperator: *operatorID} {
				if v != "" {
					kind, id = k, v
					set++
				}
			}
			if set != 1 {
				return errors.New("mash bus users create: give exactly one of --agency, --service or --operator")
			}
		case "list", "revoke":
		default:
			return usage
		}
		return nil
	}
	pool, rest, err := openDB(ctx, "bus users "+sub, args[2:], declare, check)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := busauth.Migrate(ctx, pool); err != nil {
		return err
	}
	store := busauth.NewStore(pool, allBusRoles())
	switch sub {
	case "create":
		a, password, err := store.Create(ctx, kind, id, operator())
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "created bus user %s (%s %s); its inbox prefix is %s; the password is shown once:\n", a.Name, a.Kind, a.ID, busauth.InboxPrefix(a.Name))
		fmt.Println(password)
		return nil
	case "list":
		as, err := store.List(ctx)
		if err != nil {
			return err
		}
		w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "USER\tKIND\tID\tCREATED\tBY\tREVOKED")
		for _, a := range as {
			revoked := "-"
			if a.RevokedAt != nil {
				revoked = a.RevokedAt.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", a.Name, a.Kind, a.ID, a.CreatedAt.UTC().Format(time.RFC3339), a.CreatedBy, revoked)
		}
		return w.Flush()
	default: // revoke
		if len(rest) != 1 {
			return errors.New("usage: mash bus users revoke USER (as mash bus users list shows it)")
		}
		if err := store.Revoke(ctx, rest[0], operator()); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "revoked bus user %s: the embedded server refuses it now and closes its connections within %s; for an external server, render mash bus config again and reload it\n", rest[0], busauth.SweepEvery)
		return nil
	}
}

// busConfig prints the nats-server authorization block of every active stored user.
func busConfig(ctx context.Context, args []string) error {
	pool, _, err := openDB(ctx, "bus config", args, nil, nil)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := busauth.Migrate(ctx, pool); err != nil {
		return err
	}
	users, err := busauth.NewStore(pool, allBusRoles()).Active(ctx)
	if err != nil {
		return err
	}
	fmt.Print(busauth.Config(users))
	return nil
}
