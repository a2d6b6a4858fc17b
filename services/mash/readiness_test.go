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
	// Some connections are held for good (the listeners of revocations and of the outbox);
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
