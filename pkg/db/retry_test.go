package db_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mash-hub/mash/pkg/db"
	"github.com/mash-hub/mash/pkg/db/dbtest"
)

// A transaction Postgres ends as a deadlock victim runs again and commits: the writer locks
// row 1 and waits for row 2, which a holder locked and which then asks for row 1. The holder
// waits longer before checking for deadlocks, so the writer is the victim; its second run
// finds both rows free, and its caller sees no error.
func TestInTxRunsADeadlockVictimAgain(t *testing.T) {
	pool := dbtest.NewPool(t, "empty", func(context.Context, string) error { return nil })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := pool.Exec(ctx, `CREATE TABLE locked_rows AS SELECT n, 0 AS v FROM generate_series(1, 2) n`); err != nil {
		t.Fatal(err)
	}
	holder, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Rollback(ctx) //nolint:errcheck
	if _, err := holder.Exec(ctx, `SET LOCAL deadlock_timeout = '30s'`); err != nil {
		t.Fatal(err)
	}
	if _, err := holder.Exec(ctx, `UPDATE locked_rows SET v = v + 1 WHERE n = 2`); err != nil {
		t.Fatal(err)
	}
	var runs atomic.Int32
	done := make(chan error, 1)
	go func() {
		done <- db.InTx(ctx, pool, func(tx pgx.Tx) error {
			runs.Add(1)
			if _, err := tx.Exec(ctx, `UPDATE locked_rows SET v = v + 10 WHERE n = 1`); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `UPDATE locked_rows SET v = v + 10 WHERE n = 2`)
			return err
		})
	}()
	for {
		var waiting bool
		if err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_stat_activity
			WHERE wait_event_type = 'Lock' AND query LIKE 'UPDATE locked_rows SET v = v + 10 WHERE n = 2%')`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("the writer never waited for row 2")
		case <-time.After(10 * time.Millisecond):
		}
	}
	if _, err := holder.Exec(ctx, `UPDATE locked_rows SET v = v + 1 WHERE n = 1`); err != nil {
		t.Fatal(err)
	}
	if err := holder.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("the deadlock victim's caller got %v; want its transaction run again", err)
	}
	if runs.Load() != 2 {
		t.Fatalf("the transaction ran %d times, want 2", runs.Load())
	}
	var sum int
	if err := pool.QueryRow(ctx, `SELECT sum(v) FROM locked_rows`).Scan(&sum); err != nil {
		t.Fatal(err)
	}
	if sum != 22 {
		t.Fatalf("the rows sum to %d, want 22: the holder's two updates and the writer's two, each once", sum)
	}
}

// Any other error is the caller's at once: running again could repeat a refusal or a bug.
func TestInTxRunsOtherFailuresOnce(t *testing.T) {
	pool := dbtest.NewPool(t, "empty", func(context.Context, string) error { return nil })
	refused := errors.New("refused")
	runs := 0
	err := db.InTx(context.Background(), pool, func(pgx.Tx) error { runs++; return refused })
	if !errors.Is(err, refused) || runs != 1 {
		t.Fatalf("got %v after %d runs, want the error after one run", err, runs)
	}
	runs = 0
	err = db.InTx(context.Background(), pool, func(tx pgx.Tx) error {
		runs++
		_, err := tx.Exec(context.Background(), `SELECT 1/0`)
		return err
	})
	if err == nil || db.Retryable(err) || runs != 1 {
		t.Fatalf("division by zero: got %v after %d runs, want it after one run", err, runs)
	}
}
