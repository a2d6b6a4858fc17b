package triage_test

import (
	"context"
	"reflect"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mash-hub/mash/services/triage/store"
)

// TestDashboardOnOneConnection reads the dashboard through a pool of one connection, where
// no part can be handed to another connection, and through the service's pool, where they
// can: the figures are the same.
func TestDashboardOnOneConnection(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	dashboardFixture(t, e)
	ctx := context.Background()
	cfg := e.pool.Config().Copy()
	cfg.MaxConns = 1
	one, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(one.Close)
	q := store.DashboardQuery{Partnership: "p1", From: day(2, 0, 0), To: day(16, 0, 0), Now: start, Location: e.cal.Location()}
	alone, err := store.New(one).Dashboard(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	helped, err := store.New(e.pool).Dashboard(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(alone, helped) {
		t.Fatalf("on one connection:\n%+v\nwith helpers:\n%+v", alone, helped)
	}
	if alone.Referrals != 5 || alone.ReReferrals != 3 || alone.ReReferralsAfterNFA != 2 || len(alone.Weeks) != 2 || len(alone.Acks) != 3 {
		t.Fatalf("dashboard %+v", alone)
	}
}
