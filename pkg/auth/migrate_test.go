package auth

import (
	"context"
	"slices"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mash-hub/mash/pkg/db"
	"github.com/mash-hub/mash/pkg/db/dbtest"
)

// Upgrading gives existing hub credentials partnerships: their agency's from the agency
// directory when it lists the agency (its catch-all "default" names none), otherwise every
// partnership; referrers stay unscoped; sessions begun before end.
func TestPartnershipMigrationScopesExistingCredentials(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	migs, err := Migrations()
	if err != nil {
		t.Fatal(err)
	}
	before := migs[:2]
	pool := dbtest.NewPool(t, "auth_pre_partnerships_"+db.Checksum(before), func(ctx context.Context, url string) error {
		p, err := pgxpool.New(ctx, url)
		if err != nil {
			return err
		}
		defer p.Close()
		return db.Migrate(ctx, p, Schema, before)
	})
	if _, err := pool.Exec(ctx, `
		CREATE SCHEMA notify;
		CREATE TABLE notify.agencies (partnership text NOT NULL, id text NOT NULL, PRIMARY KEY (partnership, id));
		INSERT INTO notify.agencies VALUES ('rhondda-cynon-taf', 'rct-mash'), ('merthyr-tydfil', 'rct-mash'), ('default', 'rct-mash'),
			('default', 'valleys-mash');
		INSERT INTO auth.clients (id, agency, kind, role, secret_hash, created_by) VALUES
			('c1', 'rct-mash', 'hub', 'practitioner', '\x00', 'test'),
			('c2', 'valleys-mash', 'hub', 'manager', '\x00', 'test'),
			('c3', 'south-wales-police', 'police', 'referrer', '\x00', 'test');
		INSERT INTO auth.sessions (id, user_id, display_name, role, agency, secret_hash, expires_at)
			VALUES ('s1', 'alice', 'Alice', 'practitioner', 'rct-mash', '\x00', now() + interval '1 hour')`); err != nil {
		t.Fatal(err)
	}
	if err := Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string][]string{"c1": {"merthyr-tydfil", "rhondda-cynon-taf"}, "c2": {AllPartnerships}, "c3": {}} {
		var got []string
		if err := pool.QueryRow(ctx, `SELECT partnerships FROM auth.clients WHERE id = $1`, id).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("client %s: partnerships %q, want %q", id, got, want)
		}
	}
	var ended bool
	if err := pool.QueryRow(ctx, `SELECT ended_at IS NOT NULL FROM auth.sessions WHERE id = 's1'`).Scan(&ended); err != nil || !ended {
		t.Errorf("a session begun before the upgrade is still open (%v)", err)
	}
}
