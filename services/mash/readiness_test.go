package main

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// A process whose every work connection is taken (by load, here by the test) is still ready:
// readiness checks Postgres over a connection of its own, so a busy instance is not taken out
// of service when it is most needed.
func TestReadyWhileEveryWorkConnectionIsBusy(t *testing.T) {
	ip := startInProcess(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	holdEveryWorkConnection(t, ctx, ip.sys.p.pool)
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

// The gauges counted at scrape time (notify's backlog, each schema's dead letters) are there
// while every work connection is taken: they are read over the readiness connection, so a
// dashboard and its alerts do not go blank just when a backlog builds.
func TestMetricsCountBacklogsWhileEveryWorkConnectionIsBusy(t *testing.T) {
	ip := startInProcess(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	holdEveryWorkConnection(t, ctx, ip.sys.p.pool)
	resp, err := http.Get("http://" + ip.httpAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("metrics with the work pool busy: %d", resp.StatusCode)
	}
	for _, want := range []string{"\nmash_notify_backlog ", "\nmash_notify_dead_letters ", "\nmash_notify_overdue_acknowledgements ",
		`mash_dead_letters{schema="audit"}`, `mash_dead_letters{schema="notify"}`, `mash_dead_letters{schema="triage"}`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics with the work pool busy lack %q", strings.TrimSpace(want))
		}
	}
}
