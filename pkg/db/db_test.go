package db_test

import (
	"context"
	"runtime"
	"strings"
	"testing"

	"github.com/mash-hub/mash/pkg/db"
	"github.com/mash-hub/mash/pkg/db/dbtest"
)

// The work pool is sized by the cores the process may use (GOMAXPROCS, which Go takes from a
// container's CPU limit), not by the node's CPU count; a URL's pool_max_conns still wins.
func TestOpenSizesThePoolByTheCoresTheProcessMayUse(t *testing.T) {
	url := dbtest.NewURL(t, "empty", func(context.Context, string) error { return nil })
	ctx := context.Background()
	for _, c := range []struct {
		procs int
		want  int32
	}{{1, 16}, {runtime.NumCPU() + 7, int32(max(16, 4*(runtime.NumCPU()+7)))}} {
		prev := runtime.GOMAXPROCS(c.procs)
		pool, err := db.Open(ctx, url)
		runtime.GOMAXPROCS(prev)
		if err != nil {
			t.Fatal(err)
		}
		if got := pool.Config().MaxConns; got != c.want {
			t.Errorf("GOMAXPROCS %d: pool of %d connections, want %d", c.procs, got, c.want)
		}
		pool.Close()
	}
	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	pool, err := db.Open(ctx, url+sep+"pool_max_conns=3")
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if got := pool.Config().MaxConns; got != 3 {
		t.Errorf("pool_max_conns=3 in the URL: pool of %d connections", got)
	}
}

// A service's migrations come from files and from Go; whatever their source, they apply in
// version order, and a version used twice is refused before anything applies.
func TestMigrateAppliesInVersionOrderAndRefusesAVersionUsedTwice(t *testing.T) {
	pool := dbtest.NewPool(t, "empty", func(context.Context, string) error { return nil })
	ctx := context.Background()
	err := db.Migrate(ctx, pool, "ordered", []db.Migration{
		{Version: 2, Name: "0002_second.sql", SQL: `INSERT INTO ordered.steps VALUES (2)`},
		{Version: 1, Name: "0001_first.sql", SQL: `CREATE TABLE ordered.steps (n int)`},
	})
	if err != nil {
		t.Fatalf("migrations given out of order: %v", err)
	}
	err = db.Migrate(ctx, pool, "twice", []db.Migration{
		{Version: 1, Name: "0001_a.sql", SQL: `CREATE TABLE twice.a (n int)`},
		{Version: 1, Name: "0001_b.sql", SQL: `CREATE TABLE twice.b (n int)`},
	})
	if err == nil || !strings.Contains(err.Error(), "version 1 already used") {
		t.Fatalf("a version used twice: %v, want it refused naming the version", err)
	}
	var applied int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE schemaname = 'twice'`).Scan(&applied); err != nil || applied != 0 {
		t.Errorf("%d tables made by the refused migrations (%v), want none", applied, err)
	}
}
