// Package store holds all SQL of the console: local accounts and the sign-in throttle.
package store

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mash-hub/mash/pkg/adminact"
	"github.com/mash-hub/mash/pkg/auth"
	"github.com/mash-hub/mash/pkg/db"
)

// Schema is the console's Postgres schema.
const Schema = "console"

//go:embed migrations/*.sql
var migrationFS embed.FS

// Migrations returns the console schema's migrations.
func Migrations() ([]db.Migration, error) { return db.LoadMigrations(migrationFS, "migrations") }

// Account is a local console account.
type Account struct {
	Username    string
	DisplayName string
	Role        string
	Agency      string
	// Partnerships are those the person serves (auth.Identity.Partnerships).
	Partnerships []string
	// Kind is the agency's kind: "hub", or a partner agency's (police, health, ...).
	Kind         string
	PasswordHash string
	Disabled     bool
	CreatedAt    time.Time
	UpdatedAt    time.Time
	LastSignIn   *time.Time
}

// Store runs the console's queries.
type Store struct{ pool *pgxpool.Pool }

// New returns a Store over pool.
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// Pool is the pool the store uses; the auth schema's staff directory shares it.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// ErrExists means an account with that username exists.
var ErrExists = errors.New("an account with that username already exists")

// ErrNotFound means no account has that username.
var ErrNotFound = errors.New("no such account")

// Querier is the pool or a transaction.
type Querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// CreateAccountIn inserts a new account through q (a transaction that also records the
// person in the staff directory, and writes the act).
func CreateAccountIn(ctx context.Context, q Querier, a Account) error {
	partnerships := a.Partnerships
	if partnerships == nil {
		partnerships = []string{}
	}
	kind := a.Kind
	if kind == "" {
		kind = "hub"
	}
	_, err := q.Exec(ctx, `INSERT INTO console.accounts (username, display_name, role, agency, kind, password_hash, partnerships)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, a.Username, a.DisplayName, a.Role, a.Agency, kind, a.PasswordHash, partnerships)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		return ErrExists
	}
	if err != nil {
		return fmt.Errorf("create account: %w", err)
	}
	return nil
}

// Account returns one account.
func (s *Store) Account(ctx context.Context, username string) (Account, error) {
	return account(ctx, s.pool, username, "")
}

// AccountForUpdate is Account within tx, locking the account's row until tx ends, so the
// change tx makes starts from what it read.
func AccountForUpdate(ctx context.Context, tx pgx.Tx, username string) (Account, error) {
	return account(ctx, tx, username, " FOR UPDATE")
}

func account(ctx context.Context, q Querier, username, lock string) (Account, error) {
	var a Account
	err := q.QueryRow(ctx, `SELECT username, display_name, role, agency, kind, partnerships, password_hash, disabled, created_at, updated_at, last_sign_in
		FROM console.accounts WHERE username = $1`+lock, username).
		Scan(&a.Username, &a.DisplayName, &a.Role, &a.Agency, &a.Kind, &a.Partnerships, &a.PasswordHash, &a.Disabled, &a.CreatedAt, &a.UpdatedAt, &a.LastSignIn)
	if errors.Is(err, pgx.ErrNoRows) {
		return Account{}, ErrNotFound
	}
	if err != nil {
		return Account{}, fmt.Errorf("read account: %w", err)
	}
	return a, nil
}

// SetDisabledIn disables or enables an account through q (a transaction that also ends its
// sessions, and writes the act).
func SetDisabledIn(ctx context.Context, q Querier, username string, disabled bool) error {
	tag, err := q.Exec(ctx, `UPDATE console.accounts SET disabled = $2, updated_at = now() WHERE username = $1`, username, disabled)
	if err != nil {
		return fmt.Errorf("update account: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}

// SetRoleIn changes an account's role and partnerships through q (a transaction that also
// writes the act; AccountForUpdate reads what they were).
func SetRoleIn(ctx context.Context, q Querier, username, role string, partnerships []string) error {
	if partnerships == nil {
		partnerships = []string{}
	}
	tag, err := q.Exec(ctx, `UPDATE console.accounts SET role = $2, partnerships = $3, updated_at = now() WHERE username = $1`,
		username, role, partnerships)
	if err != nil {
		return fmt.Errorf("change role: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}

// SetPasswordHash replaces an account's password hash (a reset, or a rehash with stronger
// parameters after a successful sign-in).
func (s *Store) SetPasswordHash(ctx context.Context, username, hash string) error {
	return SetPasswordHashIn(ctx, s.pool, username, hash)
}

// SetPasswordHashIn is SetPasswordHash through q (a transaction that also writes the act).
func SetPasswordHashIn(ctx context.Context, q Querier, username, hash string) error {
	tag, err := q.Exec(ctx, `UPDATE console.accounts SET password_hash = $2, updated_at = now() WHERE username = $1`, username, hash)
	if err != nil {
		return fmt.Errorf("update account: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}

// SignedIn records a successful sign-in.
func (s *Store) SignedIn(ctx context.Context, username string, at time.Time) error {
	if _, err := s.pool.Exec(ctx, `UPDATE console.accounts SET last_sign_in = $2 WHERE username = $1`, username, at); err != nil {
		return fmt.Errorf("record sign-in: %w", err)
	}
	return nil
}

// ReserveAttempt counts one sign-in attempt against every key, before its password is
// checked, unless a key already has its limit (limits[i] for keys[i]) in the window ending
// at now: then it counts nothing and returns false and when that key's window ends. One
// transaction takes the keys' rows in a fixed order, so concurrent attempts on one key are
// counted one after another (forty at once against a limit of five: five go on), and two
// attempts sharing keys cannot deadlock.
func (s *Store) ReserveAttempt(ctx context.Context, keys []string, limits []int, window time.Duration, now time.Time) (ok bool, retryAt time.Time, err error) {
	order := make([]int, len(keys))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return strings.Compare(keys[a], keys[b]) })
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return false, time.Time{}, fmt.Errorf("reserve sign-in attempt: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	since := now.Add(-window)
	for _, i := range order {
		var n int
		err := tx.QueryRow(ctx, `INSERT INTO console.login_failures AS f (key, failures, window_start) VALUES ($1, 1, $2)
			ON CONFLICT (key) DO UPDATE SET
				failures = CASE WHEN f.window_start > $3 THEN f.failures + 1 ELSE 1 END,
				window_start = CASE WHEN f.window_start > $3 THEN f.window_start ELSE $2 END
			WHERE f.window_start <= $3 OR f.failures < $4
			RETURNING failures`, keys[i], now, since, limits[i]).Scan(&n)
		if errors.Is(err, pgx.ErrNoRows) {
			// At the limit: the row is locked by this transaction, so its window is current.
			var start time.Time
			if err := tx.QueryRow(ctx, `SELECT window_start FROM console.login_failures WHERE key = $1`, keys[i]).Scan(&start); err != nil {
				return false, time.Time{}, fmt.Errorf("read sign-in window: %w", err)
			}
			return false, start.Add(window), nil
		}
		if err != nil {
			return false, time.Time{}, fmt.Errorf("reserve sign-in attempt: %w", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return false, time.Time{}, fmt.Errorf("reserve sign-in attempt: %w", err)
	}
	return true, time.Time{}, nil
}

// ReleaseAttempt gives back an attempt reserved on each key in the window ending at now:
// one whose password was never checked, or a success on a key that counts failures only.
func (s *Store) ReleaseAttempt(ctx context.Context, keys []string, window time.Duration, now time.Time) error {
	_, err := s.pool.Exec(ctx, `UPDATE console.login_failures SET failures = failures - 1
		WHERE key = ANY($1) AND failures > 0 AND window_start > $2`, keys, now.Add(-window))
	if err != nil {
		return fmt.Errorf("release sign-in attempt: %w", err)
	}
	return nil
}

// PruneAttempts deletes the counts whose window ending at now has passed: the next
// attempt on such a key starts a new window anyway.
func (s *Store) PruneAttempts(ctx context.Context, window time.Duration, now time.Time) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM console.login_failures WHERE window_start <= $1`, now.Add(-window))
	if err != nil {
		return 0, fmt.Errorf("prune sign-in counts: %w", err)
	}
	return tag.RowsAffected(), nil
}

// Attempts returns the attempts counted against key in the window ending at now.
func (s *Store) Attempts(ctx context.Context, key string, window time.Duration, now time.Time) (int, error) {
	var n int
	err := s.pool.QueryRow(ctx, `SELECT failures FROM console.login_failures WHERE key = $1 AND window_start > $2`,
		key, now.Add(-window)).Scan(&n)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read sign-in attempts: %w", err)
	}
	return n, nil
}

// ClearFailures forgets a key's attempts after a successful sign-in.
func (s *Store) ClearFailures(ctx context.Context, key string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM console.login_failures WHERE key = $1`, key); err != nil {
		return fmt.Errorf("clear sign-in failures: %w", err)
	}
	return nil
}

// RecordAdminAct writes an administrative act's event (sign-ins) into the auth schema's
// outbox, which mash serve relays to the audit trail.
func (s *Store) RecordAdminAct(ctx context.Context, a adminact.Act, now time.Time) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error { return adminact.Insert(ctx, tx, auth.Schema, a, now) })
}
