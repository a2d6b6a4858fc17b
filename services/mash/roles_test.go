package main

import (
	"context"
	"errors"
	"net/url"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"mash/pkg/db"
	"mash/pkg/db/dbtest"
)

// createLogins makes every service's login role as CloudNativePG's managed roles would.
// Roles are cluster-wide and other tests' databases share them, so an existing one is fine.
func createLogins(t *testing.T, ctx context.Context, pool *pgxpool.Pool) {
	t.Helper()
	for _, name := range serviceNames() {
		role := pgx.Identifier{serviceRole(name)}.Sanitize()
		if _, err := pool.Exec(ctx, `DO $$ BEGIN CREATE ROLE `+role+` LOGIN; EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$`); err != nil {
			t.Fatal(err)
		}
	}
}

// connectAs opens a connection to the database at raw as role (the local server trusts it).
func connectAs(t *testing.T, ctx context.Context, raw, role string) *pgx.Conn {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.User(role)
	conn, err := pgx.Connect(ctx, u.String())
	if err != nil {
		t.Fatalf("connect as %s: %v", role, err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

func wantDenied(t *testing.T, err error, what string) {
	t.Helper()
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "42501" {
		t.Errorf("%s: want permission denied (42501), got %v", what, err)
	}
}

// mash migrate --grant-roles gives each service's login its own schema and auth only: the
// intake login reads and writes intake and auth, and is refused triage's and audit's
// tables; the audit login cannot change the append-only log directly.
func TestMigrateGrantsEachServiceOnlyItsSchema(t *testing.T) {
	ctx := context.Background()
	dbURL := dbtest.NewURL(t, migrationKey(t), func(ctx context.Context, url string) error {
		pool, err := pgxpool.New(ctx, url)
		if err != nil {
			return err
		}
		defer pool.Close()
		return migrateAll(ctx, pool, serviceNames())
	})
	admin, err := db.Open(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	createLogins(t, ctx, admin)

	intake := connectAs(t, ctx, dbURL, "mash_intake")
	// Before the grants the login reaches nothing, not even its own schema.
	_, err = intake.Exec(ctx, `SELECT count(*) FROM intake.referrals`)
	wantDenied(t, err, "intake before --grant-roles")

	if err := migrate(ctx, []string{"--database-url", dbURL, "--grant-roles"}); err != nil {
		t.Fatalf("mash migrate --grant-roles: %v", err)
	}

	for _, q := range []string{
		`SELECT count(*) FROM intake.referrals`,
		`SELECT count(*) FROM auth.clients`,
		`UPDATE auth.clients SET kind = kind WHERE false`,
		`DELETE FROM intake.referrals WHERE false`,
	} {
		if _, err := intake.Exec(ctx, q); err != nil {
			t.Errorf("intake login: %s: %v", q, err)
		}
	}
	_, err = intake.Exec(ctx, `SELECT count(*) FROM triage.schema_migrations`)
	wantDenied(t, err, "intake reading triage")
	_, err = intake.Exec(ctx, `SELECT count(*) FROM audit.entries`)
	wantDenied(t, err, "intake reading audit")

	triage := connectAs(t, ctx, dbURL, "mash_triage")
	if _, err := triage.Exec(ctx, `SELECT count(*) FROM triage.schema_migrations`); err != nil {
		t.Errorf("triage login reading its own schema: %v", err)
	}
	_, err = triage.Exec(ctx, `SELECT count(*) FROM intake.referrals`)
	wantDenied(t, err, "triage reading intake")

	audit := connectAs(t, ctx, dbURL, "mash_audit")
	if _, err := audit.Exec(ctx, `SELECT count(*) FROM audit.entries`); err != nil {
		t.Errorf("audit login reading its log: %v", err)
	}
	_, err = audit.Exec(ctx, `DELETE FROM audit.entries WHERE false`)
	wantDenied(t, err, "audit deleting from its append-only log")
	tx, err := audit.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `SET LOCAL ROLE mash_audit_writer`); err != nil {
		t.Errorf("audit login taking the writer role: %v", err)
	}
	_ = tx.Rollback(ctx)
}

// A login that was never created is named, not silently skipped.
func TestGrantRolesNamesAMissingLogin(t *testing.T) {
	ctx := context.Background()
	dbURL := dbtest.NewURL(t, migrationKey(t), func(ctx context.Context, url string) error {
		pool, err := pgxpool.New(ctx, url)
		if err != nil {
			return err
		}
		defer pool.Close()
		return migrateAll(ctx, pool, serviceNames())
	})
	pool, err := db.Open(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	err = db.GrantRole(ctx, pool, db.RoleGrant{Role: "mash_no_such_service", Schema: "intake"})
	if !errors.Is(err, db.ErrRoleMissing) {
		t.Fatalf("want ErrRoleMissing, got %v", err)
	}
}
