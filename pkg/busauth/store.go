package busauth

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mash-hub/mash/pkg/db"
)

// Schema is the Postgres schema that holds bus users.
const Schema = "bus"

//go:embed migrations/*.sql
var migrationFS embed.FS

// Migrations returns the bus schema's migrations.
func Migrations() ([]db.Migration, error) { return db.LoadMigrations(migrationFS, "migrations") }

// Migrate brings the bus schema up to date.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	migs, err := Migrations()
	if err != nil {
		return err
	}
	return db.Migrate(ctx, pool, Schema, migs)
}

// Account is a stored bus user, without its password.
type Account struct {
	Name      string
	Kind      string
	ID        string
	CreatedAt time.Time
	CreatedBy string
	RevokedAt *time.Time
}

// Store keeps bus users in Postgres.
type Store struct {
	pool *pgxpool.Pool
	// services are the roles a service user may be made for.
	services map[string]Role
}

// NewStore returns a Store over pool; roles are the services a service user may be made for.
func NewStore(pool *pgxpool.Pool, roles []Role) *Store {
	m := make(map[string]Role, len(roles))
	for _, r := range roles {
		m[r.Service] = r
	}
	return &Store{pool: pool, services: m}
}

// ErrExists means an active user has that name already.
var ErrExists = errors.New("an active bus user has that name: revoke it first")

// ErrNoSuchUser means no active bus user has that name.
var ErrNoSuchUser = errors.New("no active bus user with that name")

// Create stores a new user of kind for id (a service name, an agency id or an operator's
// name) and returns it with its password, which is shown once: only a bcrypt hash is kept.
func (s *Store) Create(ctx context.Context, kind, id, createdBy string) (Account, string, error) {
	switch kind {
	case KindAgency, KindOperator:
		if !ValidName(id) {
			return Account{}, "", fmt.Errorf("bus user %s %q: use lower-case letters, digits and dashes (at most 63)", kind, id)
		}
	case KindService:
		if _, ok := s.servicePermissions(id); !ok {
			return Account{}, "", fmt.Errorf("bus user service %q: not a service that uses the bus (%s is the process's own)", id, PlumbingUser)
		}
	default:
		return Account{}, "", fmt.Errorf("bus user kind %q: want service, agency or operator", kind)
	}
	if createdBy == "" {
		return Account{}, "", errors.New("bus user: created by whom is required")
	}
	pw, err := NewPassword()
	if err != nil {
		return Account{}, "", err
	}
	hash, err := HashPassword(pw)
	if err != nil {
		return Account{}, "", err
	}
	a := Account{Name: UserName(kind, id), Kind: kind, ID: id, CreatedBy: createdBy}
	err = s.pool.QueryRow(ctx, `INSERT INTO bus.users (name, kind, id, password_hash, created_by)
		VALUES ($1, $2, $3, $4, $5) RETURNING created_at`, a.Name, kind, id, hash, createdBy).Scan(&a.CreatedAt)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		return Account{}, "", fmt.Errorf("bus user %s: %w", a.Name, ErrExists)
	}
	if err != nil {
		return Account{}, "", fmt.Errorf("store bus user %s: %w", a.Name, err)
	}
	return a, pw, nil
}

// List returns every bus user, active and revoked, by name.
func (s *Store) List(ctx context.Context) ([]Account, error) {
	rows, err := s.pool.Query(ctx, `SELECT name, kind, id, created_at, created_by, revoked_at
		FROM bus.users ORDER BY name, created_at`)
	if err != nil {
		return nil, fmt.Errorf("list bus users: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Account, error) {
		var a Account
		err := r.Scan(&a.Name, &a.Kind, &a.ID, &a.CreatedAt, &a.CreatedBy, &a.RevokedAt)
		return a, err
	})
}

// Revoke disables the active user called name. A running embedded server refuses its next
// connection and closes the open ones within SweepEvery; an external server keeps it until
// its users are rendered again (mash bus config) and reloaded.
func (s *Store) Revoke(ctx context.Context, name, revokedBy string) error {
	tag, err := s.pool.Exec(ctx, `UPDATE bus.users SET revoked_at = now(), revoked_by = $2
		WHERE name = $1 AND revoked_at IS NULL`, name, revokedBy)
	if err != nil {
		return fmt.Errorf("revoke bus user %s: %w", name, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("revoke bus user %s: %w", name, ErrNoSuchUser)
	}
	return nil
}

// Active returns every active user with its password hash and permissions. kinds, when
// given, limits the kinds returned.
func (s *Store) Active(ctx context.Context, kinds ...string) ([]User, error) {
	rows, err := s.pool.Query(ctx, `SELECT name, kind, id, password_hash FROM bus.users
		WHERE revoked_at IS NULL AND (coalesce(cardinality($1::text[]), 0) = 0 OR kind = ANY($1)) ORDER BY name`, kinds)
	if err != nil {
		return nil, fmt.Errorf("read bus users: %w", err)
	}
	type row struct{ name, kind, id, hash string }
	rs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
		var x row
		err := r.Scan(&x.name, &x.kind, &x.id, &x.hash)
		return x, err
	})
	if err != nil {
		return nil, fmt.Errorf("read bus users: %w", err)
	}
	users := make([]User, 0, len(rs))
	for _, x := range rs {
		u := User{Name: x.name, Password: x.hash}
		switch x.kind {
		case KindAgency:
			u.Permissions = AgencyPermissions(x.id)
		case KindOperator:
			u.Permissions = OperatorPermissions(x.id)
		case KindService:
			p, ok := s.servicePermissions(x.id)
			if !ok {
				continue // a service this build no longer has: it gets no permissions at all
			}
			u.Permissions = p
		}
		users = append(users, u)
	}
	return users, nil
}

// servicePermissions returns the permissions of service user id: a service's, or the
// process's own (PlumbingUser).
func (s *Store) servicePermissions(id string) (Permissions, bool) {
	if id == PlumbingUser {
		return PlumbingPermissions(), true
	}
	r, ok := s.services[id]
	if !ok {
		return Permissions{}, false
	}
	return r.Permissions(), true
}
