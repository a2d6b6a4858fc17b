//go:build failpoint

package events

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mash-hub/mash/pkg/db/dbtest"
	"github.com/mash-hub/mash/pkg/failpoint"
)

// Crash tests run this test binary again as a child process that exits at a failpoint, as
// kill -9 would end it, then restart the broker on the child's store directory and check
// that every event has exactly one effect. Run them with: go test -tags failpoint ./pkg/events/

const (
	envCrashRole  = "MASH_EVENTS_CRASH_ROLE"
	envCrashStore = "MASH_EVENTS_CRASH_STORE"
	envCrashDB    = "MASH_EVENTS_CRASH_DB"
)

// crashConsumerConfig is shared by the child and the parent, so the durable consumer the
// parent updates keeps the child's settings.
func crashConsumerConfig() ConsumerConfig {
	cfg := testConsumerConfig("c1")
	cfg.AckWait = time.Second // the parent waits this long for the redelivery
	return cfg
}

// TestCrashChild is the child's body; it does nothing in a normal run.
func TestCrashChild(t *testing.T) {
	role := os.Getenv(envCrashRole)
	if role == "" {
		t.Skip("runs only as the child of a crash test")
	}
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, os.Getenv(envCrashDB))
	if err != nil {
		t.Fatal(err)
	}
	b := startBroker(t, os.Getenv(envCrashStore))
	switch role {
	case "relay":
		r := newTestRelay(t, pool, b.js, RelayConfig{}, nil)
		res, err := r.round(ctx, 5*time.Second)
		t.Fatalf("relay round returned (%+v, %v) without reaching the failpoint", res, err)
	case "consumer":
		var calls atomic.Int64
		c, err := NewConsumer(pool, b.js, StreamName, crashConsumerConfig(), effectHandler("c1", &calls), testLogger(t), nil)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		err = c.Run(ctx)
		t.Fatalf("consumer ran until %v without reaching the failpoint", err)
	default:
		t.Fatalf("unknown role %q", role)
	}
}

// runCrashChild runs TestCrashChild with point armed and checks it died there.
func runCrashChild(t *testing.T, role, point, store, dbURL string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(),
		envCrashRole+"="+role, envCrashStore+"="+store, envCrashDB+"="+dbURL,
		failpoint.EnvVar+"="+point)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != failpoint.ExitCode {
		t.Fatalf("child %s with %s: %v, want exit status %d; output:\n%s", role, point, err, failpoint.ExitCode, out)
	}
}

func TestCrashRelay(t *testing.T) {
	for _, point := range []string{"relay.after-publish", "relay.after-mark"} {
		t.Run(point, func(t *testing.T) {
			t.Parallel()
			dbURL := dbtest.NewURL(t, dbKey(), dbSetup)
			pool, err := pgxpool.New(context.Background(), dbURL)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(pool.Close)
			store := t.TempDir()
			ids := insertEvents(t, pool, 5)

			runCrashChild(t, "relay", point, store, dbURL)

			b := startBroker(t, store)
			// The child published and died before its commit: the messages are on disk,
			// and the rows are still unpublished.
			if n := len(streamMsgs(t, b.js, StreamName)); n != len(ids) {
				t.Fatalf("after the crash the stream has %d messages, want %d", n, len(ids))
			}
			r := newTestRelay(t, pool, b.js, RelayConfig{PollInterval: 50 * time.Millisecond}, nil)
			if n := backlog(t, r); n != int64(len(ids)) {
				t.Fatalf("after the crash the backlog is %d, want %d", n, len(ids))
			}
			runInBackground(t, r.Run)
			eventually(t, 10*time.Second, "backlog drains after restart", func() bool { return backlog(t, r) == 0 })
			assertExactlyOnce(t, b.js, ids)
		})
	}
}

func TestCrashConsumerAfterCommit(t *testing.T) {
	t.Parallel()
	dbURL := dbtest.NewURL(t, dbKey(), dbSetup)
	pool, err := pgxpool.New(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	store := t.TempDir()
	b1 := startBroker(t, store)
	env, raw := newEvent(t)
	publish(t, b1.js, env.Type, raw, env.EventId)
	b1.stop()

	runCrashChild(t, "consumer", "consumer.after-commit", store, dbURL)
	if n := effects(t, pool, "c1", env.EventId); n != 1 {
		t.Fatalf("child committed %d effects, want 1", n)
	}

	b2 := startBroker(t, store)
	m := NewMetrics(nil)
	var calls atomic.Int64
	startConsumer(t, pool, b2.js, crashConsumerConfig(), effectHandler("c1", &calls), m)
	// The unacked delivery comes back after AckWait and finds the inbox row.
	dups := m.consumed.WithLabelValues("c1", resultDuplicate)
	eventually(t, 15*time.Second, "redelivery skipped as duplicate", func() bool { return metricValue(t, dups) == 1 })
	settled(t, b2.js, "c1")
	if n := effects(t, pool, "c1", env.EventId); n != 1 || calls.Load() != 0 {
		t.Errorf("after restart: %d effects, handler ran %d times; want 1 and 0", n, calls.Load())
	}
}
