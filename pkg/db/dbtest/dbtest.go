// Package dbtest gives each test its own real Postgres database, cloned from a migrated
// template so a test starts in milliseconds with the schema in place.
package dbtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mash-hub/mash/pkg/db"
)

// AdminURL is the server tests use: TEST_DATABASE_URL, else DATABASE_URL, else the local
// default. scripts/test sets it to the server it made sure is running.
func AdminURL() string {
	for _, k := range []string{"TEST_DATABASE_URL", "DATABASE_URL"} {
		if v := os.Getenv(k); v != "" {
			return v
		}
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

var (
	templatesMu sync.Mutex
	templates   = map[string]bool{}
)

// Setup migrates a fresh database at the given URL.
type Setup func(ctx context.Context, url string) error

// NewURL creates a database for this test from the template named by key (built once with
// setup), drops it when the test ends, and returns its URL. key must change whenever what
// setup does changes; db.Checksum of the migrations is a good key.
func NewURL(t testing.TB, key string, setup Setup) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	admin := AdminURL()
	tpl := "mash_tpl_" + key
	if err := ensureTemplate(ctx, admin, tpl, setup); err != nil {
		t.Fatalf("dbtest: template %s: %v", tpl, err)
	}
	name := "mash_t_" + randomHex(6)
	if err := exec(ctx, admin, func(conn *pgx.Conn) error {
		return retry(ctx, func() error {
			_, err := conn.Exec(ctx, `CREATE DATABASE `+pgx.Identifier{name}.Sanitize()+` TEMPLATE `+pgx.Identifier{tpl}.Sanitize())
			return err
		})
	}); err != nil {
		t.Fatalf("dbtest: clone %s: %v", tpl, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = exec(ctx, admin, func(conn *pgx.Conn) error {
			_, err := conn.Exec(ctx, `DROP DATABASE IF EXISTS `+pgx.Identifier{name}.Sanitize()+` WITH (FORCE)`)
			return err
		})
	})
	return withDatabase(admin, name)
}

// NewPool is NewURL with a pool on the new database, closed when the test ends. The pool
// has the production settings of db.Open, so tests and benchmarks see the same limits.
func NewPool(t testing.TB, key string, setup Setup) *pgxpool.Pool {
	t.Helper()
	u := NewURL(t, key, setup)
	pool, err := db.Open(context.Background(), u)
	if err != nil {
		t.Fatalf("dbtest: connect: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func ensureTemplate(ctx context.Context, admin, tpl string, setup Setup) error {
	templatesMu.Lock()
	defer templatesMu.Unlock()
	if templates[tpl] {
		return nil
	}
	// Test binaries of several packages run at once: a server-wide advisory lock lets one
	// build the template while the others wait for it.
	err := exec(ctx, admin, func(conn *pgx.Conn) error {
		if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock(hashtext($1))`, tpl); err != nil {
			return err
		}
		defer conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(hashtext($1))`, tpl) //nolint:errcheck
		var ready bool
		err := conn.QueryRow(ctx, `SELECT datistemplate FROM pg_database WHERE datname = $1`, tpl).Scan(&ready)
		if err == nil && ready {
			return nil
		}
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		// A half-built template from a killed run is rebuilt.
		if _, err := conn.Exec(ctx, `DROP DATABASE IF EXISTS `+pgx.Identifier{tpl}.Sanitize()+` WITH (FORCE)`); err != nil {
			return err
		}
		if _, err := conn.Exec(ctx, `CREATE DATABASE `+pgx.Identifier{tpl}.Sanitize()); err != nil {
			return err
		}
		if err := setup(ctx, withDatabase(admin, tpl)); err != nil {
			return fmt.Errorf("setup: %w", err)
		}
		_, err = conn.Exec(ctx, `ALTER DATABASE `+pgx.Identifier{tpl}.Sanitize()+` WITH is_template true ALLOW_CONNECTIONS false`)
		return err
	})
	if err != nil {
		return err
	}
	templates[tpl] = true
	return nil
}

func exec(ctx context.Context, admin string, f func(*pgx.Conn) error) error {
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", redact(admin), err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	return f(conn)
}

// retry repeats CREATE DATABASE while the template is briefly in use by a concurrent clone.
func retry(ctx context.Context, f func() error) error {
	for i := 0; ; i++ {
		err := f()
		var pgErr *pgconn.PgError
		if err == nil || i >= 50 || !errors.As(err, &pgErr) || pgErr.Code != "55006" {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func withDatabase(raw, name string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" {
		// Keyword/value form.
		return raw + " dbname=" + name
	}
	u.Path = "/" + name
	return u.String()
}

func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "postgres"
	}
	return u.Redacted()
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
