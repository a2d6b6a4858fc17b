package events

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap"

	"github.com/mash-hub/mash/pkg/db"
	"github.com/mash-hub/mash/pkg/db/dbtest"
	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
)

const testSchema = "evt"

// testMigrations give the test schema an outbox, the consumer tables, and an effects table
// standing in for a service's domain rows.
func testMigrations() []db.Migration {
	return []db.Migration{
		{Version: 1, Name: "0001_outbox.sql", SQL: OutboxDDL(testSchema)},
		{Version: 2, Name: "0002_consumer.sql", SQL: ConsumerDDL(testSchema)},
		{Version: 4, Name: "0004_reconcile.sql", SQL: ReconcileDDL(testSchema)},
		{Version: 5, Name: "0005_trace.sql", SQL: TraceDDL(testSchema)},
		{Version: 6, Name: "0006_erased_cases.sql", SQL: ErasureDDL(testSchema)},
		{Version: 3, Name: "0003_effects.sql", SQL: `CREATE TABLE evt.effects (
			event_id uuid NOT NULL, consumer text NOT NULL, created_at timestamptz NOT NULL DEFAULT now())`},
	}
}

func dbKey() string { return "events_" + db.Checksum(testMigrations()) }

func dbSetup(ctx context.Context, url string) error {
	pool, err := db.Open(ctx, url)
	if err != nil {
		return err
	}
	defer pool.Close()
	// Applying twice proves the DDL is idempotent.
	if err := db.Migrate(ctx, pool, testSchema, testMigrations()); err != nil {
		return err
	}
	_, err = pool.Exec(ctx, OutboxDDL(testSchema)+ConsumerDDL(testSchema)+ReconcileDDL(testSchema)+TraceDDL(testSchema))
	return err
}

func newTestPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	return dbtest.NewPool(t, dbKey(), dbSetup)
}

func testLogger(t testing.TB) *zap.Logger {
	if os.Getenv("EVENTS_TEST_LOG") != "" {
		l, _ := zap.NewDevelopment()
		return l.With(zap.String("test", t.Name()))
	}
	return zap.NewNop()
}

// broker is an embedded JetStream server with one in-process connection.
type broker struct {
	s    *server.Server
	nc   *nats.Conn
	js   jetstream.JetStream
	once sync.Once
}

// startBroker starts an embedded server on dir with the mash streams in place. It is
// stopped when the test ends, or earlier with stop.
func startBroker(t testing.TB, dir string) *broker {
	t.Helper()
	return startBrokerListen(t, dir, "")
}

func startBrokerListen(t testing.TB, dir, listen string) *broker {
	t.Helper()
	s, err := StartEmbedded(EmbeddedConfig{StoreDir: dir, Listen: listen, ServerName: "test"}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	nc, err := ConnectEmbedded(s, t.Name())
	if err != nil {
		s.Shutdown()
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	b := &broker{s: s, nc: nc, js: js}
	t.Cleanup(b.stop)
	if err := EnsureStreams(context.Background(), js, StreamOptions{}); err != nil {
		t.Fatal(err)
	}
	return b
}

func (b *broker) stop() {
	b.once.Do(func() {
		b.nc.Close()
		b.s.Shutdown()
		b.s.WaitForShutdown()
	})
}

// streamMsgs returns every message stored in stream, in order.
func streamMsgs(t testing.TB, js jetstream.JetStream, stream string) []*jetstream.RawStreamMsg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var msgs []*jetstream.RawStreamMsg
	if info.State.Msgs == 0 {
		return nil
	}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("get message %d: %v", seq, err)
		}
		msgs = append(msgs, m)
	}
	return msgs
}

// assertExactlyOnce checks the stream holds exactly one message per event id, and no others.
func assertExactlyOnce(t testing.TB, js jetstream.JetStream, eventIDs []string) {
	t.Helper()
	msgs := streamMsgs(t, js, StreamName)
	seen := map[string]int{}
	for _, m := range msgs {
		seen[m.Header.Get(jetstream.MsgIDHeader)]++
	}
	if len(msgs) != len(eventIDs) {
		t.Errorf("stream has %d messages, want %d", len(msgs), len(eventIDs))
	}
	for _, id := range eventIDs {
		if seen[id] != 1 {
			t.Errorf("event %s is in the stream %d times, want 1", id, seen[id])
		}
	}
}

// newEvent makes an envelope on mash.referral.test-happened.
func newEvent(t testing.TB) (*eventsv1.Envelope, []byte) {
	t.Helper()
	env, raw, err := NewEnvelope("mash.referral.test-happened", "p1", "r1", 1, time.Now(), System("test"), &eventsv1.ReferralReceived{})
	if err != nil {
		t.Fatal(err)
	}
	return env, raw
}

// insertEvents writes n events to the outbox in one transaction and returns their ids.
func insertEvents(t testing.TB, pool *pgxpool.Pool, n int) []string {
	t.Helper()
	ids := make([]string, 0, n)
	err := pgx.BeginFunc(context.Background(), pool, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		for range n {
			env, raw := newEvent(t)
			AppendOutbox(context.Background(), b, testSchema, env, raw)
			ids = append(ids, env.EventId)
		}
		return tx.SendBatch(context.Background(), b).Close()
	})
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

func queryInt(t testing.TB, pool *pgxpool.Pool, sql string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// runInBackground runs f until the returned stop is called (or the test ends) and checks
// it returned nil.
func runInBackground(t testing.TB, f func(context.Context) error) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("run returned %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Errorf("run did not return within 30s of cancel")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// metricValue reads a counter or gauge.
func metricValue(t testing.TB, c prometheus.Collector) float64 {
	t.Helper()
	ch := make(chan prometheus.Metric, 1)
	c.Collect(ch)
	var m dto.Metric
	if err := (<-ch).Write(&m); err != nil {
		t.Fatal(err)
	}
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	t.Fatalf("unsupported metric %v", &m)
	return 0
}
