//go:build failpoint

package audit_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mash-hub/mash/pkg/db/dbtest"
	"github.com/mash-hub/mash/pkg/failpoint"
	"github.com/mash-hub/mash/services/audit"
)

// Run with: go test -tags failpoint ./services/audit/

const envCrashDB = "MASH_AUDIT_CRASH_DB"

// TestSequencerCrashChild appends one batch and is killed at the failpoint before commit.
func TestSequencerCrashChild(t *testing.T) {
	url := os.Getenv(envCrashDB)
	if url == "" {
		t.Skip("runs only as the child of TestSequencerCrash")
	}
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	n, err := audit.AppendBatch(context.Background(), pool, 100)
	t.Fatalf("AppendBatch returned (%d, %v) without reaching the failpoint", n, err)
}

// A sequencer killed after appending but before committing leaves no trace: the head, the
// entries and the pending rows are as before, and the next sequencer appends them all once.
func TestSequencerCrash(t *testing.T) {
	url := dbtest.NewURL(t, migrationsKey(t), migrate)
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	e := &env{pool: pool, now: time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)}
	insertPending(t, e, 250)

	cmd := exec.Command(os.Args[0], "-test.run=^TestSequencerCrashChild$")
	cmd.Env = append(os.Environ(), envCrashDB+"="+url, failpoint.EnvVar+"=audit.sequencer.after-append")
	err = cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != failpoint.ExitCode {
		t.Fatalf("child ended with %v, want exit %d at the failpoint", err, failpoint.ExitCode)
	}
	var pending int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM audit.pending`).Scan(&pending); err != nil || pending != 250 {
		t.Fatalf("pending after the crash: %d, %v", pending, err)
	}
	if h := e.head(t); h.TreeSize != 0 {
		t.Fatalf("head moved to %d by a transaction that never committed", h.TreeSize)
	}
	e.sequenceAll(t)
	if n := e.checkTree(t); n != 250 {
		t.Fatalf("%d entries after recovery, want 250", n)
	}
}
