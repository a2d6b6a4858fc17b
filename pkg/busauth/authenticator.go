package busauth

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
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
	return &Authenticator{static: m, store: store, log: log}
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
	if bcrypt.CompareHashAndPassword([]byte(u.Password), []byte(password)) != nil {
		a.refuse(c, name, "wrong password")
		return false
	}
	c.RegisterUser(u.Server())
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
