package busauth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"go.uber.org/zap"
	"golang.org/x/crypto/bcrypt"
)

// Authenticator decides who connects to the embedded server: the process's own users (made
// at start, in memory) and the agencies and operators in the store, looked up at each
// connection so a user created or revoked with mash bus users takes effect without a
// restart. A client with no user, an unknown user or a wrong password is refused.
type Authenticator struct {
	static map[string]User
	store  *Store
	log    *zap.Logger

	// verified remembers, per stored bcrypt hash, the SHA-256 of the password that last
	// matched it, so a client reconnecting (every client does after a restart or a network
	// blip) costs a look-up and not a bcrypt comparison each time. The look-up still runs,
	// so a revoked user is refused all the same.
	mu       sync.Mutex
	verified map[string][32]byte
}

// NewAuthenticator returns an Authenticator over the in-memory users and, when store is not
// nil, the stored agency and operator users.
func NewAuthenticator(users []User, store *Store, log *zap.Logger) *Authenticator {
	if log == nil {
		log = zap.NewNop()
	}
	m := make(map[string]User, len(users))
	for _, u := range users {
		m[u.Name] = u
	}
	return &Authenticator{static: m, store: store, log: log, verified: map[string][32]byte{}}
}

// lookupTimeout bounds the store look-up of one connection.
const lookupTimeout = 5 * time.Second

// Check implements server.Authentication.
func (a *Authenticator) Check(c server.ClientAuthentication) bool {
	opts := c.GetOpts()
	name, password := opts.Username, opts.Password
	if name == "" || password == "" {
		a.refuse(c, name, "no user or password")
		return false
	}
	if u, ok := a.static[name]; ok {
		if subtle.ConstantTimeCompare([]byte(u.Password), []byte(password)) != 1 {
			a.refuse(c, name, "wrong password")
			return false
		}
		c.RegisterUser(u.Server())
		return true
	}
	if a.store == nil {
		a.refuse(c, name, "no such user")
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), lookupTimeout)
	defer cancel()
	u, err := a.store.user(ctx, name)
	switch {
	case errors.Is(err, ErrNoSuchUser):
		a.refuse(c, name, "no such user")
		return false
	case err != nil:
		a.log.Error("look up bus user", zap.String("user", name), zap.Error(err))
		return false
	}
	if !a.matches(u.Password, password) {
		a.refuse(c, name, "wrong password")
		return false
	}
	c.RegisterUser(u.Server())
	return true
}

// matches compares password with a stored bcrypt hash, remembering a match.
func (a *Authenticator) matches(hash, password string) bool {
	sum := sha256.Sum256([]byte(password))
	a.mu.Lock()
	known, ok := a.verified[hash]
	a.mu.Unlock()
	if ok && subtle.ConstantTimeCompare(known[:], sum[:]) == 1 {
		return true
	}
	if bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) != nil {
		return false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.verified) > 10000 {
		clear(a.verified) // bounded: stored users number in the hundreds
	}
	a.verified[hash] = sum
	return true
}

func (a *Authenticator) refuse(c server.ClientAuthentication, user, why string) {
	remote := ""
	if addr := c.RemoteAddress(); addr != nil {
		remote = addr.String()
	}
	a.log.Warn("bus connection refused", zap.String("user", user), zap.String("reason", why), zap.String("remote", remote))
}

// user returns the active agency or operator user called name, with its hash. Service users
// in the store are for an external server; the embedded one makes its own.
func (s *Store) user(ctx context.Context, name string) (User, error) {
	var kind, id, hash string
	err := s.pool.QueryRow(ctx, `SELECT kind, id, password_hash FROM bus.users
		WHERE name = $1 AND revoked_at IS NULL AND kind IN ('agency', 'operator')`, name).Scan(&kind, &id, &hash)
	if errors.Is(err, pgx.ErrNoRows) {
		return User{}, ErrNoSuchUser
	}
	if err != nil {
		return User{}, fmt.Errorf("look up bus user %s: %w", name, err)
	}
	u := User{Name: name, Password: hash, Permissions: AgencyPermissions(id)}
	if kind == KindOperator {
		u.Permissions = OperatorPermissions(id)
	}
	return u, nil
}

// Options are the connection options of user u: its credentials and its own inbox prefix.
func (u User) Options() []nats.Option {
	return []nats.Option{nats.UserInfo(u.Name, u.Password), nats.CustomInboxPrefix(InboxPrefix(u.Name))}
}

// SweepEvery is how often a running embedded server drops the connections of users revoked
// since they connected (a revoked user's next connection is refused at once).
const SweepEvery = 30 * time.Second

// Sweep disconnects every client of a stored user that is no longer active, and returns how
// many it disconnected. The process's own users are never swept.
func (a *Authenticator) Sweep(ctx context.Context, s *server.Server) (int, error) {
	if a.store == nil || s == nil {
		return 0, nil
	}
	cz, err := s.Connz(&server.ConnzOptions{Username: true, Limit: 1 << 20})
	if err != nil {
		return 0, fmt.Errorf("sweep bus users: list connections: %w", err)
	}
	var names []string
	for _, c := range cz.Conns {
		if _, own := a.static[c.AuthorizedUser]; !own && c.AuthorizedUser != "" {
			names = append(names, c.AuthorizedUser)
		}
	}
	if len(names) == 0 {
		return 0, nil
	}
	active, err := a.store.activeNames(ctx, names)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, c := range cz.Conns {
		if _, own := a.static[c.AuthorizedUser]; own || c.AuthorizedUser == "" || active[c.AuthorizedUser] {
			continue
		}
		if err := s.DisconnectClientByID(c.Cid); err == nil {
			n++
			a.log.Warn("bus connection of a revoked user closed", zap.String("user", c.AuthorizedUser), zap.Uint64("cid", c.Cid))
		}
	}
	return n, nil
}

// RunSweeper sweeps every interval until ctx ends.
func (a *Authenticator) RunSweeper(ctx context.Context, s *server.Server, every time.Duration) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if _, err := a.Sweep(ctx, s); err != nil && ctx.Err() == nil {
				a.log.Error("sweep revoked bus users", zap.Error(err))
			}
		}
	}
}

// activeNames reports which of names are active stored users.
func (s *Store) activeNames(ctx context.Context, names []string) (map[string]bool, error) {
	rows, err := s.pool.Query(ctx, `SELECT name FROM bus.users WHERE name = ANY($1) AND revoked_at IS NULL`, names)
	if err != nil {
		return nil, fmt.Errorf("sweep bus users: %w", err)
	}
	active, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("sweep bus users: %w", err)
	}
	out := make(map[string]bool, len(active))
	for _, n := range active {
		out[n] = true
	}
	return out, nil
}
