// Package store holds all SQL of the console: local accounts and the sign-in throttle.
package store

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"mash/pkg/db"
)

// Schema is the console's Postgres schema.
const Schema = "console"

//go:embed migrations/*.sql
var migrationFS embed.FS

// Migrations returns the console schema's migrations.
func Migrations() ([]db.Migration, error) { return db.LoadMigrations(migrationFS, "migrations") }

// Account is a local console account.
type Account struct {
	Username     string
	DisplayName  string
	Role         string
	Agency       string
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

// ErrExists means an account with that username exists.
var ErrExists = errors.New("an account with that username already exists")

// ErrNotFound means no account has that username.
var ErrNotFound = errors.New("no such account")

// CreateAccount inserts a new account.
func (s *Store) CreateAccount(ctx context.Context, a Account) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO console.accounts (username, display_name, role, agency, password_hash)
		VALUES ($1, $2, $3, $4, $5)`, a.Username, a.DisplayName, a.Role, a.Agency, a.PasswordHash)
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
	var a Account
	err := s.pool.QueryRow(ctx, `SELECT username, display_name, role, agency, password_hash, disabled, created_at, updated_at, last_sign_in
		FROM console.accounts WHERE username = $1`, username).
		Scan(&a.Username, &a.DisplayName, &a.Role, &a.Agency, &a.PasswordHash, &a.Disabled, &a.CreatedAt, &a.UpdatedAt, &a.LastSignIn)
	if errors.Is(err, pgx.ErrNoRows) {
		return Account{}, ErrNotFound
	}
	if err != nil {
		return Account{}, fmt.Errorf("read account: %w", err)
	}
	return a, nil
}

// SetDisabled disables or enables an account.
func (s *Store) SetDisabled(ctx context.Context, username string, disabled bool) error {
	tag, err := s.pool.Exec(ctx, `UPDATE console.accounts SET disabled = $2, updated_at = now() WHERE username = $1`, username, disabled)
	if err != nil {
		return fmt.Errorf("update account: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}

// SetPasswordHash replaces an account's password hash (a reset, or a rehash with stronger
// parameters after a successful sign-in).
func (s *Store) SetPasswordHash(ctx context.Context, username, hash string) error {
	tag, err := s.pool.Exec(ctx, `UPDATE console.accounts SET password_hash = $2, updated_at = now() WHERE username = $1`, username, hash)
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

// Throttled reports whether any of keys has at least limit failures in the window ending
// at now.
func (s *Store) Throttled(ctx context.Context, keys []string, limits []int, window time.Duration, now time.Time) (bool, error) {
	rows, err := s.pool.Query(ctx, `SELECT key, failures FROM console.login_failures
		WHERE key = ANY($1) AND window_start > $2`, keys, now.Add(-window))
	if err != nil {
		return false, fmt.Errorf("read sign-in failures: %w", err)
	}
	defer rows.Close()
	got := map[string]int{}
	for rows.Next() {
		var k string
		var n int
		if err := rows.Scan(&k, &n); err != nil {
			return false, fmt.Errorf("read sign-in failures: %w", err)
		}
		got[k] = n
	}
	if err := rows.Err(); err != nil {
		return false, fmt.Errorf("read sign-in failures: %w", err)
	}
	for i, k := range keys {
		if got[k] >= limits[i] {
			return true, nil
		}
	}
	return false, nil
}

// RecordFailure counts a failed sign-in against each key, starting a new window for a key
// whose window has passed.
func (s *Store) RecordFailure(ctx context.Context, keys []string, window time.Duration, now time.Time) error {
	for _, k := range keys {
		_, err := s.pool.Exec(ctx, `INSERT INTO console.login_failures (key, failures, window_start) VALUES ($1, 1, $2)
			ON CONFLICT (key) DO UPDATE SET
				failures = CASE WHEN console.login_failures.window_start > $3 THEN console.login_failures.failures + 1 ELSE 1 END,
				window_start = CASE WHEN console.login_failures.window_start > $3 THEN console.login_failures.window_start ELSE $2 END`,
			k, now, now.Add(-window))
		if err != nil {
			return fmt.Errorf("record sign-in failure: %w", err)
		}
	}
	return nil
}

// ClearFailures forgets a key's failures after a successful sign-in.
func (s *Store) ClearFailures(ctx context.Context, key string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM console.login_failures WHERE key = $1`, key); err != nil {
		return fmt.Errorf("clear sign-in failures: %w", err)
	}
	return nil
}
