package triage_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/mash-hub/mash/services/triage/store"
)

// A transaction Postgres ends as a deadlock victim runs again: here a writer takes a
// child's lock and then waits for a case row that another transaction holds, which then
// asks for the same child's lock (the shape of a claim meeting the consumer's batch). The
// other transaction waits longer before checking for deadlocks, so the writer is the victim;
// its second run finds both free and commits, and its caller sees no error.
func TestInTxRunsADeadlockVictimAgain(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	id := e.receivedCases(t, "rct", 1)[0]
	ctx := context.Background()
	const childLock = 0x6d617368

	holder, err := e.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Rollback(ctx) //nolint:errcheck
	if _, err := holder.Exec(ctx, `SET LOCAL deadlock_timeout = '30s'`); err != nil {
		t.Fatal(err)
	}
	if _, err := holder.Exec(ctx, `SELECT 1 FROM triage.cases WHERE referral_id = $1 FOR UPDATE`, id); err != nil {
		t.Fatal(err)
	}

	var runs atomic.Int32
	done := make(chan error, 1)
	go func() {
		done <- store.New(e.pool).InTx(ctx, func(tx pgx.Tx) error {
			runs.Add(1)
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, childLock); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `UPDATE triage.cases SET updated_at = now() WHERE referral_id = $1`, id)
			return err
		})
	}()
	// The writer holds the child's lock and waits for the row.
	eventually(t, "the writer to wait for the case row", func() bool {
		var waiting bool
		err := e.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_locks l JOIN pg_locks a ON a.pid = l.pid
			WHERE NOT l.granted AND a.granted AND a.locktype = 'advisory' AND a.objid = $1
				AND a.database = (SELECT oid FROM pg_database WHERE datname = current_database()))`, childLock).Scan(&waiting)
		return err == nil && waiting
	})
	// Asking for the child's lock closes the cycle; Postgres ends the writer's transaction
	// (its deadlock check comes first) and the holder gets the lock.
	if _, err := holder.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, childLock); err != nil {
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
}
