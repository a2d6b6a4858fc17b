// Package console is the hub staff's web console: server-rendered pages (English and
// Welsh) for the triage queue, casework, notifications, rule packs, management information
// and audit. It holds no casework data of its own. A person signs in (local account with an
// argon2id password, or OpenID Connect), gets a pkg/auth session, and every page calls the
// services over gRPC with that session's token, so each service authorises and audits the
// person, never the console. Its own schema holds only local accounts and the sign-in
// throttle.
//
// Invariants: every POST carries a CSRF token bound to the session; every page sends a
// strict CSP and no-store; logs name session and referral ids, never personal data.
package console

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/mash-hub/mash/pkg/auth"
	"github.com/mash-hub/mash/pkg/calendar"
	"github.com/mash-hub/mash/pkg/db"
	"github.com/mash-hub/mash/pkg/peers"
	"github.com/mash-hub/mash/pkg/server"
	auditv1 "github.com/mash-hub/mash/proto/mash/audit/v1"
	intakev1 "github.com/mash-hub/mash/proto/mash/intake/v1"
	notifyv1 "github.com/mash-hub/mash/proto/mash/notify/v1"
	rulesv1 "github.com/mash-hub/mash/proto/mash/rules/v1"
	triagev1 "github.com/mash-hub/mash/proto/mash/triage/v1"
	"github.com/mash-hub/mash/services/console/store"
)

// Deps are what the console needs from the process that runs it.
type Deps struct {
	Pool  *pgxpool.Pool
	Log   *zap.Logger
	Peers *peers.Book
	Auth  *auth.Store
	Now   func() time.Time
	// Calendar gives the end of the working day a due date typed as a date stands for.
	// Default: the England and Wales calendar with its default hours.
	Calendar *calendar.Calendar
	Config   Config
	// Backends replaces the gRPC clients made from Peers, field by field (tests use
	// in-memory implementations of the service interfaces).
	Backends Backends
	// SignIns, when set, is told of every sign-in attempt and its outcome; nil: attempts
	// are only logged.
	SignIns SignInRecorder
}

// Backends are the services the console calls.
type Backends struct {
	Triage triagev1.TriageServiceClient
	// Records searches and corrects child records (triage serves it); nil without peers
	// shows its pages as unavailable.
	Records triagev1.RecordsServiceClient
	// Quality samples decided cases and records managers' reviews of them (triage serves
	// it); nil without peers shows its pages as unavailable.
	Quality triagev1.QualityServiceClient
	Rules   rulesv1.RulesServiceClient
	Notify  notifyv1.NotifyServiceClient
	Audit   auditv1.AuditServiceClient
	// Inbox reads the messages an agency was sent, for the partner view (notify serves it).
	Inbox notifyv1.AgencyInboxServiceClient
	// Intake takes the contacts practitioners record from a telephone call or an email.
	Intake intakev1.IntakeServiceClient
}

// sessionStore is what the console needs of pkg/auth.
type sessionStore interface {
	CreateSession(ctx context.Context, userID, displayName string, role auth.Role, agency string, ttl time.Duration, partnerships ...string) (auth.Session, string, error)
	CreateSessionOfKind(ctx context.Context, userID, displayName string, role auth.Role, agency, kind string, ttl time.Duration, partnerships ...string) (auth.Session, string, error)
	EndSession(ctx context.Context, token string) error
	Authenticate(ctx context.Context, token string) (auth.Identity, error)
	PruneSessions(ctx context.Context) (int64, error)
}

// Service is the console.
type Service struct {
	cfg Config
	// routes are the patterns Handler registered, for Routes.
	routes   []string
	log      *zap.Logger
	now      func() time.Time
	cal      *calendar.Calendar
	store    *store.Store
	sessions sessionStore
	b        Backends
	pages    *renderer
	oidc     *oidcProvider
	// dummyHash is verified against when a username is unknown, so a sign-in takes as
	// long whether or not the account exists.
	dummyHash string
	// hashes bounds the argon2id work (and so the memory) of sign-ins in this process.
	hashes  *hashPool
	signIns SignInRecorder
}

// New validates deps and builds the console.
func New(d Deps) (*Service, error) {
	switch {
	case d.Pool == nil, d.Log == nil, d.Auth == nil:
		return nil, errors.New("console.New: pool, logger and auth store are required")
	case d.Peers == nil && (d.Backends.Triage == nil || d.Backends.Rules == nil || d.Backends.Notify == nil || d.Backends.Audit == nil ||
		d.Backends.Inbox == nil || d.Backends.Intake == nil):
		return nil, errors.New("console.New: a peer book is required to reach the services")
	}
	s, err := newService(d, d.Auth)
	if err != nil {
		return nil, fmt.Errorf("console.New: %w", err)
	}
	if d.Config.OIDC.Enabled() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if s.oidc, err = newOIDCProvider(ctx, s.cfg.OIDC); err != nil {
			return nil, fmt.Errorf("console.New: %w", err)
		}
	}
	return s, nil
}

// newService builds the console without checking deps, for tests.
func newService(d Deps, sessions sessionStore) (*Service, error) {
	cfg := d.Config
	cfg.defaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if len(cfg.Key) == 0 {
		cfg.Key = make([]byte, 32)
		if _, err := rand.Read(cfg.Key); err != nil {
			return nil, fmt.Errorf("generate key: %w", err)
		}
		if d.Log != nil {
			d.Log.Warn("no " + EnvKey + " set: forms and single sign-on work only within this process until it restarts")
		}
	}
	s := &Service{cfg: cfg, log: d.Log, now: d.Now, cal: d.Calendar, sessions: sessions, b: d.Backends, signIns: d.SignIns,
		hashes: newHashPool(cfg.Hashing.Concurrency, cfg.Hashing.Queue, cfg.Hashing.MaxWait)}
	if s.cal == nil {
		var err error
		if s.cal, err = calendar.New(calendar.Config{}); err != nil {
			return nil, fmt.Errorf("default calendar: %w", err)
		}
	}
	if s.log == nil {
		s.log = zap.NewNop()
	}
	if s.now == nil {
		s.now = time.Now
	}
	if d.Pool != nil {
		s.store = store.New(d.Pool)
	}
	if d.Peers != nil {
		if err := s.dial(d.Peers); err != nil {
			return nil, err
		}
	}
	var err error
	if s.pages, err = newRenderer(); err != nil {
		return nil, err
	}
	if s.dummyHash, err = HashPassword("not a real password", cfg.Argon2); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Service) dial(book *peers.Book) error {
	conn := book.Conn
	if s.b.Triage == nil {
		c, err := conn("triage")
		if err != nil {
			return err
		}
		s.b.Triage = triagev1.NewTriageServiceClient(c)
	}
	if s.b.Records == nil {
		c, err := conn("triage")
		if err != nil {
			return err
		}
		s.b.Records = triagev1.NewRecordsServiceClient(c)
	}
	if s.b.Quality == nil {
		c, err := conn("triage")
		if err != nil {
			return err
		}
		s.b.Quality = triagev1.NewQualityServiceClient(c)
	}
	if s.b.Rules == nil {
		c, err := conn("rules")
		if err != nil {
			return err
		}
		s.b.Rules = rulesv1.NewRulesServiceClient(c)
	}
	if s.b.Notify == nil {
		c, err := conn("notify")
		if err != nil {
			return err
		}
		s.b.Notify = notifyv1.NewNotifyServiceClient(c)
	}
	if s.b.Inbox == nil {
		c, err := conn("notify")
		if err != nil {
			return err
		}
		s.b.Inbox = notifyv1.NewAgencyInboxServiceClient(c)
	}
	if s.b.Intake == nil {
		c, err := conn("intake")
		if err != nil {
			return err
		}
		s.b.Intake = intakev1.NewIntakeServiceClient(c)
	}
	if s.b.Audit == nil {
		c, err := conn("audit")
		if err != nil {
			return err
		}
		s.b.Audit = auditv1.NewAuditServiceClient(c)
	}
	return nil
}

// Migrate brings the console schema up to date.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	migs, err := store.Migrations()
	if err != nil {
		return err
	}
	return db.Migrate(ctx, pool, store.Schema, migs)
}

// sessionPruneEvery is how often the console deletes sessions past their retention.
const sessionPruneEvery = time.Hour

// Run prunes sessions past auth.SessionRetention hourly, until ctx ends: they are refused
// from their expiry on, and their rows would otherwise be kept for ever. It prunes sign-in
// counts whose window has passed too: one is kept per username tried, so spraying made-up
// names would otherwise grow the table without end. Replicas pruning at once delete
// disjoint or already-deleted rows.
func (s *Service) Run(ctx context.Context) error {
	t := time.NewTicker(sessionPruneEvery)
	defer t.Stop()
	for {
		if n, err := s.sessions.PruneSessions(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("console: prune sessions", zap.Error(err))
		} else if n > 0 {
			s.log.Info("console: pruned sessions past retention", zap.Int64("sessions", n))
		}
		if s.store != nil {
			if n, err := s.store.PruneAttempts(ctx, s.cfg.Throttle.Window, s.now()); err != nil && ctx.Err() == nil {
				s.log.Warn("console: prune sign-in counts", zap.Error(err))
			} else if n > 0 {
				s.log.Info("console: pruned sign-in counts past their window", zap.Int64("keys", n))
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Register mounts the console's pages. They are public routes as far as the API server is
// concerned: the console authenticates its own session cookie.
func (s *Service) Register(srv *server.Server) {
	h := s.Handler()
	srv.HandlePublic("/console/", h)
	srv.HandlePublic("GET /{$}", http.RedirectHandler("/console/", http.StatusSeeOther))
	// The secure link in notify's emails: <consoleUrl>/referrals/<id>.
	srv.HandlePublic("GET /referrals/{id}", h)
}

var usernamePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{1,63}$`)

// maxUsernameLen is the longest username usernamePattern allows.
const maxUsernameLen = 64

// ErrAccountExists means the username is taken.
var ErrAccountExists = store.ErrExists

// CreateAccount creates a local account (for "mash users create") serving partnerships (at
// least one, or auth.AllPartnerships). The password is hashed with argon2id; it must pass
// CheckNewPassword.
func (s *Service) CreateAccount(ctx context.Context, username, displayName string, role auth.Role, password string, partnerships ...string) error {
	return s.CreateAccountIn(ctx, username, displayName, role, s.cfg.Agency, password, partnerships...)
}

// CreateAccountIn is CreateAccount for a named agency.
func (s *Service) CreateAccountIn(ctx context.Context, username, displayName string, role auth.Role, agency, password string, partnerships ...string) error {
	return s.CreateAccountOfKind(ctx, username, displayName, role, agency, auth.StaffKind, password, partnerships...)
}

// CreateAccountOfKind creates a local account of an agency of kind: a hub account (kind
// "hub", a staff role, the partnerships it serves), or a partner agency's (its kind, such as
// police or health, and the partner role, with no partnerships: it is limited by its
// agency), whose person signs in to the partner view of that agency alone.
func (s *Service) CreateAccountOfKind(ctx context.Context, username, displayName string, role auth.Role, agency, kind, password string, partnerships ...string) error {
	return s.createAccount(ctx, username, displayName, role, agency, kind, password, partnerships, nil)
}

// Then is run, when given, in the transaction that changes a local account, after the
// change: a command writes its act to the auth outbox there, so the change and its audit
// entry commit together or not at all.
type Then func(tx pgx.Tx) error

func (then Then) run(tx pgx.Tx) error {
	if then == nil {
		return nil
	}
	return then(tx)
}

// createAccount is CreateAccountOfKind running then in the transaction that creates the
// account.
func (s *Service) createAccount(ctx context.Context, username, displayName string, role auth.Role, agency, kind, password string, partnerships []string, then Then) error {
	switch {
	case !usernamePattern.MatchString(username):
		return fmt.Errorf("username %q: 2 to 64 lower-case letters, digits, dots, hyphens or underscores", username)
	case displayName == "" || len(displayName) > 200:
		return errors.New("display name: required, at most 200 characters")
	case role == auth.RolePartner && kind == auth.StaffKind:
		return fmt.Errorf("kind %q: a partner account belongs to a partner agency: give its kind (police, health, education, ...)", kind)
	case role != auth.RolePartner && kind != auth.StaffKind:
		return fmt.Errorf("role %q: an account of a %s agency has the partner role", role, kind)
	case role != auth.RolePartner && !slices.Contains(staffRoles, role):
		return fmt.Errorf("role %q: must be one of practitioner, manager, auditor, admin, partner", role)
	}
	if err := CheckNewPassword(username, password); err != nil {
		return err
	}
	// A partner's role is a person's only, so the client check runs with the role its
	// agency's own systems hold.
	checkRole := role
	if role == auth.RolePartner {
		checkRole = auth.RoleReferrer
	}
	if err := auth.ValidateClient(agency, kind, checkRole); err != nil {
		return err
	}
	partnerships, err := auth.ValidatePartnerships(role, partnerships)
	if err != nil {
		return err
	}
	// Hashed before the transaction opens: it takes a deliberate while.
	hash, err := HashPassword(password, s.cfg.Argon2)
	if err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, s.store.Pool(), func(tx pgx.Tx) error {
		if err := store.CreateAccountIn(ctx, tx, store.Account{Username: username, DisplayName: displayName, Role: string(role), Agency: agency,
			Kind: kind, Partnerships: partnerships, PasswordHash: hash}); err != nil {
			return err
		}
		// Known to the staff directory at once, so a manager can give the person work before
		// their first sign-in.
		if err := auth.NewStore(s.store.Pool()).PutStaffIn(ctx, tx, localUserID(username), role, agency, kind, partnerships, true); err != nil {
			return err
		}
		return then.run(tx)
	})
}

// DisableAccount stops an account signing in and ends its sessions.
func (s *Service) DisableAccount(ctx context.Context, username string, a *auth.Store) error {
	return s.disableAccount(ctx, username, a, nil)
}

// disableAccount is DisableAccount running then in the transaction that disables the
// account.
func (s *Service) disableAccount(ctx context.Context, username string, a *auth.Store, then Then) error {
	return pgx.BeginFunc(ctx, s.store.Pool(), func(tx pgx.Tx) error {
		if err := store.SetDisabledIn(ctx, tx, username, true); err != nil {
			return err
		}
		if a != nil {
			if _, err := a.EndUserSessionsIn(ctx, tx, localUserID(username)); err != nil {
				return err
			}
			// No more work is given to a disabled account's person.
			if err := a.SetStaffActiveIn(ctx, tx, localUserID(username), false); err != nil {
				return err
			}
		}
		return then.run(tx)
	})
}

// localUserID is the user id of a local account's sessions.
func localUserID(username string) string { return username }

// CreateLocalAccount creates a local account without a running console, for the
// "mash users create" command: it needs only the database and the console settings
// (MASH_CONSOLE_AGENCY names the agency; Argon2 the hash cost).
func CreateLocalAccount(ctx context.Context, pool *pgxpool.Pool, cfg Config, username, displayName string, role auth.Role, password string, partnerships ...string) error {
	cfg.defaults()
	s := &Service{cfg: cfg, store: store.New(pool)}
	return s.CreateAccountIn(ctx, username, displayName, role, cfg.Agency, password, partnerships...)
}

// CreateLocalAccountOfKind is CreateLocalAccount for a named agency of a kind: with the
// partner role, a partner agency's person (for "mash users create --agency A --kind K
// --role partner"). then, when given, runs in the transaction that creates the account.
func CreateLocalAccountOfKind(ctx context.Context, pool *pgxpool.Pool, cfg Config, username, displayName string, role auth.Role, agency, kind, password string, partnerships []string, then Then) error {
	cfg.defaults()
	s := &Service{cfg: cfg, store: store.New(pool)}
	return s.createAccount(ctx, username, displayName, role, agency, kind, password, partnerships, then)
}

// DisableLocalAccount stops a local account signing in and ends its sessions, for the
// "mash users disable" command; running processes stop accepting its sessions within the
// session cache's lifetime. then, when given, runs in the transaction that disables it.
func DisableLocalAccount(ctx context.Context, pool *pgxpool.Pool, username string, then Then) error {
	s := &Service{store: store.New(pool)}
	return s.disableAccount(ctx, username, auth.NewStore(pool), then)
}

// ChangeLocalRole gives a local hub account another staff role and the partnerships it
// serves, for the "mash users role" command, and ends its sessions so the old role's rights
// stop with them. It returns the role the account had. A partner account stays a partner:
// its rights come from its agency, not from a hub role. then, when given, runs in the
// transaction that changes the role, with the role the account had.
func ChangeLocalRole(ctx context.Context, pool *pgxpool.Pool, username string, role auth.Role, partnerships []string, then func(tx pgx.Tx, was string) error) (was string, err error) {
	if role == auth.RolePartner {
		return "", fmt.Errorf("role %q: only hub staff change roles; a partner's account belongs to its agency (disable it and create another)", role)
	}
	if !slices.Contains(staffRoles, role) {
		return "", fmt.Errorf("role %q: must be one of practitioner, manager, auditor, admin", role)
	}
	served, err := auth.ValidatePartnerships(role, partnerships)
	if err != nil {
		return "", err
	}
	as := auth.NewStore(pool)
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		old, err := store.AccountForUpdate(ctx, tx, username)
		if err != nil {
			return fmt.Errorf("change role of %s: %w", username, err)
		}
		if old.Kind != auth.StaffKind {
			return fmt.Errorf("role %q: only hub staff change roles; a partner's account belongs to its agency (disable it and create another)", role)
		}
		if err := store.SetRoleIn(ctx, tx, username, string(role), served); err != nil {
			return fmt.Errorf("change role of %s: %w", username, err)
		}
		if _, err := as.EndUserSessionsIn(ctx, tx, localUserID(username)); err != nil {
			return err
		}
		// Work is given by the role and partnerships the person holds now.
		if err := as.PutStaffIn(ctx, tx, localUserID(username), role, old.Agency, old.Kind, served, !old.Disabled); err != nil {
			return err
		}
		was = old.Role
		if then != nil {
			return then(tx, was)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	return was, nil
}

// ResetLocalPassword sets a local account's password and ends its sessions, for the
// "mash users password" command. The password must pass CheckNewPassword. then, when
// given, runs in the transaction that sets it.
func ResetLocalPassword(ctx context.Context, pool *pgxpool.Pool, cfg Config, username, password string, then Then) error {
	cfg.defaults()
	if err := CheckNewPassword(username, password); err != nil {
		return err
	}
	// Hashed before the transaction opens: it takes a deliberate while.
	hash, err := HashPassword(password, cfg.Argon2)
	if err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if err := store.SetPasswordHashIn(ctx, tx, username, hash); err != nil {
			return fmt.Errorf("reset password of %s: %w", username, err)
		}
		if _, err := auth.NewStore(pool).EndUserSessionsIn(ctx, tx, localUserID(username)); err != nil {
			return err
		}
		return then.run(tx)
	})
}
