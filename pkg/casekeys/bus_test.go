package casekeys_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/mash-hub/mash/pkg/casekeys"
	"github.com/mash-hub/mash/pkg/db"
	"github.com/mash-hub/mash/pkg/events"
	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
)

// busMigrations give the test schema an outbox, the consumer tables, and a table standing
// in for a service's own rows, where the handler writes what it read.
func busMigrations() []db.Migration {
	return append(events.Migrations(testSchema), db.Migration{Version: 1, Name: "0001_seen.sql",
		SQL: `CREATE TABLE evt.seen (event_id uuid PRIMARY KEY, consumer text NOT NULL, body text NOT NULL)`})
}

// A referral's personal data crosses outbox, JetStream and dead letters sealed under its
// case key, while consumers with the key read it in clear; once the key is destroyed a
// consumer acknowledges the case's events unread, and nothing lands in a dead letter.
func TestPersonalDataCrossesTheBusSealed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := newPool(t, busMigrations()...)
	keys := newStore(t, pool, newKEK(t), casekeys.Options{})
	storeDir := t.TempDir()
	ns, err := events.StartEmbedded(events.EmbeddedConfig{StoreDir: storeDir}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	stopServer := func() {
		if !stopped {
			stopped = true
			ns.Shutdown()
			ns.WaitForShutdown()
		}
	}
	t.Cleanup(stopServer)
	nc, err := events.ConnectEmbedded(ns, "casekeys-test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := events.EnsureStreams(ctx, js, events.StreamOptions{}); err != nil {
		t.Fatal(err)
	}

	live, erased := uuid.NewString(), uuid.NewString()
	// The control marker travels unsealed (no case), proving the raw scans below can see
	// what is in clear.
	const marker = "CONTROL-MARKER-UNSEALED"
	write := func(subject, referralID, body string) string {
		env, _, err := events.NewEnvelope(subject, "rct", referralID, 1, time.Now(), events.System("test"), wrapperspb.String(body))
		if err != nil {
			t.Fatal(err)
		}
		raw, err := events.Seal(ctx, keys, env)
		if err != nil {
			t.Fatal(err)
		}
		if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			return events.InsertOutbox(ctx, tx, testSchema, env, raw)
		}); err != nil {
			t.Fatal(err)
		}
		return env.GetEventId()
	}
	liveEvent := write("mash.referral.test-received", live, childName+" "+nhsNumber)
	erasedEvent := write("mash.referral.test-received", erased, childName+" "+nhsNumber)
	controlEvent := write("mash.referral.test-received", "", marker)
	// The second case is erased before any consumer runs: its copy on the bus is all that
	// is left, and it must stay unread.
	if _, err := keys.Erase(ctx, erased); err != nil {
		t.Fatal(err)
	}

	relay, err := events.NewRelay(pool, js, events.RelayConfig{Schema: testSchema, PollInterval: 50 * time.Millisecond}, zap.NewNop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	stopRelay := run(t, relay.Run)
	defer stopRelay()

	// One consumer reads every event; another fails every event at once, into dead letters.
	reader, err := events.NewConsumer(pool, js, events.StreamName, events.ConsumerConfig{
		Schema: testSchema, Durable: "reader", FilterSubjects: []string{"mash.referral.>"}, Cipher: keys,
	}, func(ctx context.Context, tx pgx.Tx, env *eventsv1.Envelope) error {
		var body wrapperspb.StringValue
		if err := env.GetPayload().UnmarshalTo(&body); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO evt.seen (event_id, consumer, body) VALUES ($1, 'reader', $2)`, env.GetEventId(), body.GetValue())
		return err
	}, zap.NewNop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	failer, err := events.NewConsumer(pool, js, events.StreamName, events.ConsumerConfig{
		Schema: testSchema, Durable: "failer", FilterSubjects: []string{"mash.referral.>"}, Cipher: keys, MaxDeliver: 1,
	}, func(context.Context, pgx.Tx, *eventsv1.Envelope) error {
		return errors.New("handler refuses every event")
	}, zap.NewNop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	stopReader, stopFailer := run(t, reader.Run), run(t, failer.Run)
	defer stopReader()
	defer stopFailer()
	drained(t, js, "reader", 3)
	drained(t, js, "failer", 3)

	got := map[string]string{}
	rows, err := pool.Query(ctx, `SELECT event_id::text, body FROM evt.seen`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id, body string
		if err := rows.Scan(&id, &body); err != nil {
			t.Fatal(err)
		}
		got[id] = body
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	if got[liveEvent] != childName+" "+nhsNumber || got[controlEvent] != marker || len(got) != 2 {
		t.Fatalf("the reader saw %v; want the live case in clear and the control, and nothing of the erased case", got)
	}
	if _, ok := got[erasedEvent]; ok {
		t.Fatal("the reader handled an erased case's event")
	}
	letters, err := events.ListDeadLetters(ctx, pool, testSchema, true)
	if err != nil {
		t.Fatal(err)
	}
	lettered := map[string]bool{}
	for _, l := range letters {
		lettered[l.EventID] = true
	}
	if len(letters) != 2 || !lettered[liveEvent] || !lettered[controlEvent] {
		t.Fatalf("dead letters %+v: want the live and control events, and none for the erased case", letters)
	}

	// At rest: the outbox and the dead letters hold the case's data only sealed.
	for _, table := range []string{"outbox", "dead_letter"} {
		var clearCopies, controls int
		if err := pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE position($1::bytea IN payload) > 0 OR position($2::bytea IN payload) > 0),
				count(*) FILTER (WHERE position($3::bytea IN payload) > 0) FROM evt.`+table,
			[]byte(childName), []byte(nhsNumber), []byte(marker)).Scan(&clearCopies, &controls); err != nil {
			t.Fatal(err)
		}
		if clearCopies != 0 || controls != 1 {
			t.Fatalf("%s: %d rows hold personal data in clear (want 0), %d the control (want 1)", table, clearCopies, controls)
		}
	}
	// On JetStream's disk: the store directory's raw files, after the server flushed them.
	stopReader()
	stopFailer()
	stopRelay()
	nc.Close()
	stopServer()
	var markerSeen bool
	err = filepath.WalkDir(storeDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(b, []byte(childName)) || bytes.Contains(b, []byte(nhsNumber)) {
			t.Errorf("%s holds personal data in clear", path)
		}
		markerSeen = markerSeen || bytes.Contains(b, []byte(marker))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !markerSeen {
		t.Fatal("the control marker is not in the store directory: the scan cannot see clear data")
	}
}

// run starts f in the background; the returned stop cancels it and waits for it, once.
func run(t *testing.T, f func(context.Context) error) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f(ctx) }()
	var stopped bool
	return func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

// drained waits until durable has been delivered want messages and has none pending or
// unacknowledged.
func drained(t *testing.T, js jetstream.JetStream, durable string, want int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		c, err := js.Consumer(ctx, events.StreamName, durable)
		if err == nil {
			info, err := c.Info(ctx)
			if err == nil && info.Delivered.Consumer >= uint64(want) && info.NumPending == 0 && info.NumAckPending == 0 {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("consumer %s did not drain %d events", durable, want)
		case <-time.After(20 * time.Millisecond):
		}
	}
}
