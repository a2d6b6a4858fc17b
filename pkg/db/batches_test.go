package db_test

import (
	"context"
	"errors"
	"testing"

	"github.com/mash-hub/mash/pkg/db"
	"github.com/mash-hub/mash/pkg/db/dbtest"
)

// More rows than one batch: the loop goes on until a statement removes fewer than a batch,
// and only the rows the statement selects go.
func TestDeleteInBatchesRemovesEveryMatchingRow(t *testing.T) {
	pool := dbtest.NewPool(t, "empty", func(context.Context, string) error { return nil })
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `CREATE TABLE rows_to_prune AS SELECT n FROM generate_series(1, $1::int) n`, 2*db.DeleteBatch+700); err != nil {
		t.Fatal(err)
	}
	n, err := db.DeleteInBatches(ctx, pool, `DELETE FROM rows_to_prune WHERE ctid IN (
		SELECT ctid FROM rows_to_prune WHERE n > $2 LIMIT $1)`, 100)
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(2*db.DeleteBatch + 600); n != want {
		t.Errorf("deleted %d rows, want %d", n, want)
	}
	var left int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM rows_to_prune`).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != 100 {
		t.Errorf("%d rows left, want the 100 the statement does not select", left)
	}
}

// A cancelled context stops the loop before its next statement and is reported, so a prune
// at shutdown neither runs on nor passes for finished.
func TestDeleteInBatchesStopsWhenCancelled(t *testing.T) {
	pool := dbtest.NewPool(t, "empty", func(context.Context, string) error { return nil })
	if _, err := pool.Exec(context.Background(), `CREATE TABLE rows_to_keep AS SELECT n FROM generate_series(1, 10) n`); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	n, err := db.DeleteInBatches(ctx, pool, `DELETE FROM rows_to_keep WHERE ctid IN (SELECT ctid FROM rows_to_keep LIMIT $1)`)
	if !errors.Is(err, context.Canceled) || n != 0 {
		t.Errorf("cancelled: deleted %d, err %v; want 0 and context.Canceled", n, err)
	}
	var left int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM rows_to_keep`).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != 10 {
		t.Errorf("%d rows left, want all 10", left)
	}
}
