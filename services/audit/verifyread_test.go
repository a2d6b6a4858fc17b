package audit_test

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mash-hub/mash/services/audit"
	auditlog "github.com/mash-hub/mash/services/audit/tlog"
)

// Small ranges on several connections, so that a test log of a few entries is read in
// many pieces, by readers that finish out of order, as a large log is.
const (
	testReaders   = 3
	testChunkRows = 2
)

// sameInRanges verifies the log again reading it in small ranges on several connections and
// fails unless that judges it exactly as verification did (want, wantErr): the same report,
// naming the same entry, and the same error.
func sameInRanges(t *testing.T, e *env, opts audit.VerifyOptions, want auditlog.Report, wantErr error) {
	t.Helper()
	got, err := audit.VerifyInRanges(context.Background(), e.pool, e.vkey, origin, opts, testReaders, testChunkRows)
	if got != want || errText(err) != errText(wantErr) {
		t.Fatalf("read in ranges of %d on %d connections: %+v, %v\nread as usual: %+v, %v", testChunkRows, testReaders, got, err, want, wantErr)
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// Rows missing, duplicated, moved, without a seq or beyond the end are each read exactly once
// whatever the ranges, and judged as one ordered read judges them.
func TestVerifyInRangesReadsEveryRow(t *testing.T) {
	t.Parallel()
	// copyRow puts a copy of entry n back into the table, altered by set (on the copy x).
	copyRow := func(n, set string) string {
		return `CREATE TEMP TABLE x ON COMMIT DROP AS SELECT * FROM audit.entries WHERE seq = ` + n + `;
			UPDATE x SET event_id = gen_random_uuid(), ` + set + `;
			INSERT INTO audit.entries SELECT * FROM x`
	}
	cases := []struct{ name, sql string }{
		{"missing", `DELETE FROM audit.entries WHERE seq = 17`},
		{"duplicated", `ALTER TABLE audit.entries DROP CONSTRAINT entries_pkey;
			ALTER TABLE audit.entries DROP CONSTRAINT entries_event_id_key;
			INSERT INTO audit.entries SELECT * FROM audit.entries WHERE seq = 21`},
		{"swapped", `UPDATE audit.entries SET seq = 100000 WHERE seq = 9;
			UPDATE audit.entries SET seq = 9 WHERE seq = 30;
			UPDATE audit.entries SET seq = 30 WHERE seq = 100000`},
		{"negative seq", `ALTER TABLE audit.entries DROP CONSTRAINT entries_seq_check;` + copyRow("0", "seq = -1")},
		{"beyond the end", copyRow("5", "seq = 1000")},
		{"without a seq", `ALTER TABLE audit.entries DROP CONSTRAINT entries_pkey;
			ALTER TABLE audit.entries ALTER COLUMN seq DROP NOT NULL;` + copyRow("3", "seq = NULL")},
		{"two entries altered", `UPDATE audit.entries SET decision = 'NFA' WHERE seq IN (6, 33)`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			insertPending(t, e, 40)
			e.sequenceAll(t)
			e.sign(t)
			ctx := context.Background()
			if err := pgx.BeginFunc(ctx, e.pool, func(tx pgx.Tx) error {
				_, err := tx.Exec(ctx, `SET LOCAL session_replication_role = replica; `+tc.sql)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			rep, err := audit.VerifyDatabase(ctx, e.pool, e.vkey, origin)
			if err == nil {
				t.Fatalf("went unnoticed: %+v", rep)
			}
			sameInRanges(t, e, audit.VerifyOptions{}, rep, err)
			t.Logf("%+v: %v", rep, err)
		})
	}
}

// Cancelling verification stops every reader: it returns the cancellation, gives back every
// connection, and the pool verifies again afterwards.
func TestVerifyInRangesStopsWhenCancelled(t *testing.T) {
	e := newEnv(t)
	insertPending(t, e, 600)
	e.sequenceAll(t)
	e.sign(t)
	ctx := context.Background()
	// Every row differs from its leaf, so every row is decoded and the hook sees each one.
	if _, err := e.pool.Exec(ctx, `SET session_replication_role = replica;
		UPDATE audit.entries SET decision = decision || '~'; SET session_replication_role = origin`); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	audit.OnFullCheck(func(pos int64) {
		if pos == 200 {
			cancel()
		}
	})
	defer audit.OnFullCheck(nil)
	rep, err := audit.VerifyInRanges(cctx, e.pool, e.vkey, origin, audit.VerifyOptions{}, testReaders, 16)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled verification: %+v, %v; want the cancellation", rep, err)
	}
	audit.OnFullCheck(nil)
	// A connection whose query was cancelled is released once the pool has cleaned it up,
	// which may finish just after the verification returns.
	waitFor(t, "every connection the cancelled verification held to be released", func() bool {
		return e.pool.Stat().AcquiredConns() == 0
	})
	rep, err = audit.VerifyDatabase(ctx, e.pool, e.vkey, origin)
	if !isMismatch(err) || rep.FirstMismatch != 0 {
		t.Fatalf("after a cancelled verification: %+v, %v; want entry 0 named", rep, err)
	}
}

// A reader that gets no connection (the pool is busy) leaves its share to the others: the
// verification still ends, judging the log as it would with every reader.
func TestVerifyInRangesWithoutSpareConnections(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	insertPending(t, e, 30)
	e.sequenceAll(t)
	e.sign(t)
	ctx := context.Background()
	want, werr := audit.VerifyDatabase(ctx, e.pool, e.vkey, origin)
	if werr != nil {
		t.Fatalf("%+v, %v", want, werr)
	}
	cfg := e.pool.Config().Copy()
	cfg.MaxConns = 3 // the verifier's own, the stored hashes' and one reader's
	small, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer small.Close()
	held, err := small.Acquire(ctx) // ... which someone else holds
	if err != nil {
		t.Fatal(err)
	}
	defer held.Release()
	got, err := audit.VerifyInRanges(ctx, small, e.vkey, origin, audit.VerifyOptions{}, testReaders, testChunkRows)
	if got != want || err != nil {
		t.Fatalf("with no connection to spare: %+v, %v; want %+v", got, err, want)
	}
}
