package main

import (
	"context"
	"errors"
	"net/url"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mash-hub/mash/pkg/auth"
	"github.com/mash-hub/mash/pkg/db"
	"github.com/mash-hub/mash/pkg/db/dbtest"
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

// loginURL is the database at raw reached as role, in a small pool.
func loginURL(t *testing.T, raw, role string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.User(role)
	q := u.Query()
	q.Set("pool_max_conns", "4")
	u.RawQuery = q.Encode()
	return u.String()
}

// Every service runs as its own restricted login (MASH_<SERVICE>_DATABASE_URL, granted by
// mash migrate --grant-roles), a referral still goes end to end (accepted, decided by the
// rules, opened as a case by triage, notified, on the audit log, with no dead letter
// anywhere), and each service's pool is its login, refused another service's schema.
func TestServicesRunAsTheirOwnLogins(t *testing.T) {
	ctx := context.Background()
	dbURL := newMigratedURL(t)
	admin, err := db.Open(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	createLogins(t, ctx, admin)
	if err := migrate(ctx, []string{"--database-url", dbURL, "--grant-roles"}); err != nil {
		t.Fatalf("mash migrate --grant-roles: %v", err)
	}
	for _, name := range serviceNames() {
		t.Setenv(serviceDatabaseEnv(name), loginURL(t, dbURL, serviceRole(name)))
	}
	ip := startInProcessWith(t, dbURL, nil)
	sys := ip.sys

	for _, name := range serviceNames() {
		var who string
		if err := sys.p.poolOf(name).QueryRow(ctx, `SELECT current_user`).Scan(&who); err != nil || who != serviceRole(name) {
			t.Fatalf("%s's pool connects as %q (%v), want %s", name, who, err, serviceRole(name))
		}
	}

	_, token, err := sys.p.auth.Create(ctx, "south-wales-police", "police", auth.RoleReferrer, "test")
	if err != nil {
		t.Fatal(err)
	}
	referralID := ip.submitExample(t, token)
	var status string
	var decisions, cases, notices, entries int
	eventually(t, "the referral decided, opened as a case, notified and audited", func() bool {
		err := admin.QueryRow(ctx, `SELECT
			(SELECT status FROM intake.referrals WHERE id = $1),
			(SELECT count(*) FROM rules.decisions WHERE referral_id = $1),
			(SELECT count(*) FROM triage.cases WHERE referral_id = $1),
			(SELECT count(*) FROM notify.notifications WHERE referral_id = $1),
			(SELECT count(*) FROM audit.entries WHERE referral_id = $1::text AND event_type IN ('mash.referral.received', 'mash.recommendation.made'))`,
			referralID).Scan(&status, &decisions, &cases, &notices, &entries)
		if err != nil {
			t.Fatal(err)
		}
		return status == "DECIDED" && decisions == 1 && cases == 1 && notices > 0 && entries == 2
	})
	for _, schema := range []string{"intake", "rules", "triage", "notify", "audit", "console", "auth"} {
		var dead int
		if err := admin.QueryRow(ctx, `SELECT count(*) FROM `+pgx.Identifier{schema}.Sanitize()+`.dead_letter`).Scan(&dead); err != nil {
			var pgErr *pgconn.PgError
			if errors.As(err, &pgErr) && pgErr.Code == "42P01" {
				continue // a schema that consumes nothing has no dead_letter table
			}
			t.Fatal(err)
		}
		if dead != 0 {
			t.Errorf("%s has %d dead letters running as its own login", schema, dead)
		}
	}

	// The running services' logins read only their own schema.
	for _, c := range []struct{ service, query string }{
		{"intake", `SELECT count(*) FROM triage.cases`},
		{"intake", `SELECT count(*) FROM rules.decisions`},
		{"triage", `SELECT count(*) FROM intake.referrals`},
		{"rules", `SELECT count(*) FROM audit.entries`},
		{"notify", `SELECT count(*) FROM intake.referrals`},
		{"console", `SELECT count(*) FROM triage.cases`},
		{"audit", `SELECT count(*) FROM intake.referrals`},
	} {
		_, err := sys.p.poolOf(c.service).Exec(ctx, c.query)
		wantDenied(t, err, c.service+"'s login: "+c.query)
	}
	if _, err := sys.p.poolOf("intake").Exec(ctx, `SELECT count(*) FROM intake.referrals`); err != nil {
		t.Errorf("intake's login reading its own schema: %v", err)
	}
}
