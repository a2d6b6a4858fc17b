package db_test

import (
	"context"
	"strings"
	"testing"

	"github.com/mash-hub/mash/pkg/db"
	"github.com/mash-hub/mash/pkg/db/dbtest"
)

// A large value stored after PreferLZ4 is compressed with LZ4 on a server built with it,
// and with pglz, as before, on one without; running it twice changes nothing.
func TestPreferLZ4CompressesNewLargeValuesWithLZ4WhereTheServerHasIt(t *testing.T) {
	pool := dbtest.NewPool(t, "empty", func(context.Context, string) error { return nil })
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `CREATE TABLE "odd ""name""" (id int, "the payload" bytea, note text)`); err != nil {
		t.Fatal(err)
	}
	table := `"odd ""name"""`
	for range 2 {
		if _, err := pool.Exec(ctx, db.PreferLZ4(table, "the payload", "note")); err != nil {
			t.Fatal(err)
		}
	}
	var hasLZ4 bool
	if err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_settings
		WHERE name = 'default_toast_compression' AND 'lz4' = ANY (enumvals))`).Scan(&hasLZ4); err != nil {
		t.Fatal(err)
	}
	want := "pglz"
	if hasLZ4 {
		want = "lz4"
	}
	large := strings.Repeat("a compressible line of a referral's message\n", 200)
	if _, err := pool.Exec(ctx, `INSERT INTO `+table+` VALUES (1, convert_to($1, 'UTF8'), $1)`, large); err != nil {
		t.Fatal(err)
	}
	var payload, note string
	if err := pool.QueryRow(ctx, `SELECT pg_column_compression("the payload"), pg_column_compression(note) FROM `+table).
		Scan(&payload, &note); err != nil {
		t.Fatal(err)
	}
	if payload != want || note != want {
		t.Errorf("compressed with %q and %q, want %q for both (server has LZ4: %v)", payload, note, want, hasLZ4)
	}
}
