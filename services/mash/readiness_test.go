package main

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// A process whose every work connection is taken (by load, here by the test) is still ready:
// readiness checks Postgres over a connection of its own, so a busy instance is not taken out
// of service when it is most needed.
func TestReadyWhileEveryWorkConnectionIsBusy(t *testing.T) {
	ip := startInProcess(t)
	pool := ip.sys.p.pool
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var held []*pgxpool.Conn
	defer func() {
		for _, c := range held {
			c.Release()
		}
	}()
	// One connection is held for good (the audit sequencer's, which keeps its lock on it);
	// the test takes every other one: all it can until none comes free for two seconds.
	for idle := 0; idle < 2; {
		actx, acancel := context.WithTimeout(ctx, time.Second)
		c, err := pool.Acquire(actx)
		acancel()
		switch {
		case err == nil:
			held, idle = append(held, c), 0
		case ctx.Err() != nil:
			t.Fatalf("took %d of %d work connections: %v", len(held), pool.Config().MaxConns, err)
		default:
			idle++
		}
	}
	if got := pool.Stat().AcquiredConns(); got != pool.Config().MaxConns {
		t.Fatalf("%d of %d work connections taken", got, pool.Config().MaxConns)
	}
	resp, err := http.Get("http://" + ip.httpAddr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "postgres: ok") {
		t.Errorf("readyz with the work pool busy: %d %s", resp.StatusCode, body)
	}
}

// The readiness connection is replaced when Postgres drops it (a restart, a failover): the
// process is ready again without being restarted itself.
func TestReadyAgainAfterPostgresDropsTheReadinessConnection(t *testing.T) {
	ip := startInProcess(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var dropped int
	if err := ip.sys.p.pool.QueryRow(ctx, `SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE application_name = 'mash-readiness' AND datname = current_database()) t`).Scan(&dropped); err != nil {
		t.Fatal(err)
	}
	if dropped == 0 {
		t.Fatal("no readiness connection to drop")
	}
	eventually(t, "ready again after the readiness connection was dropped", func() bool {
		resp, err := http.Get("http://" + ip.httpAddr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}
