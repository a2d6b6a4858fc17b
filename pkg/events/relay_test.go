package events

import (
	"bytes"
	"context"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mash-hub/mash/pkg/testport"
)

func newTestRelay(t testing.TB, pool *pgxpool.Pool, js jetstream.JetStream, cfg RelayConfig, m *Metrics) *Relay {
	t.Helper()
	cfg.Schema = testSchema
	r, err := NewRelay(pool, js, cfg, testLogger(t), m)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func backlog(t testing.TB, r *Relay) int64 {
	t.Helper()
	n, err := r.Backlog(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestRelayPublishesEachRowOnce(t *testing.T) {
	t.Parallel()
	pool := newTestPool(t)
	b := startBroker(t, t.TempDir())
	// 300 rows in one transaction: more than a round, so full rounds must repeat at once.
	ids := insertEvents(t, pool, 300)
	m := NewMetrics(nil)
	r := newTestRelay(t, pool, b.js, RelayConfig{PollInterval: time.Hour}, m)
	runInBackground(t, r.Run)

	eventually(t, 10*time.Second, "backlog drains", func() bool { return backlog(t, r) == 0 })
	assertExactlyOnce(t, b.js, ids)
	if n := queryInt(t, pool, `SELECT count(*) FROM evt.outbox WHERE published_at IS NOT NULL`); n != 300 {
		t.Errorf("%d rows marked published, want 300", n)
	}
	if got := metricValue(t, m.published.WithLabelValues(testSchema)); got != 300 {
		t.Errorf("published_total = %v, want 300", got)
	}
	eventually(t, 5*time.Second, "backlog gauge at 0", func() bool {
		return metricValue(t, m.backlog.WithLabelValues(testSchema)) == 0
	})

	// The stored message is the outbox payload, byte for byte, on the event's subject.
	var payload []byte
	if err := pool.QueryRow(context.Background(), `SELECT payload FROM evt.outbox WHERE event_id = $1`, ids[0]).Scan(&payload); err != nil {
		t.Fatal(err)
	}
	msg := streamMsgs(t, b.js, StreamName)[0]
	if msg.Subject != "mash.referral.test-happened" || !bytes.Equal(msg.Data, payload) {
		t.Errorf("first message: subject %q, payload equal %v", msg.Subject, bytes.Equal(msg.Data, payload))
	}
	env, err := decodeEnvelope(msg.Data)
	if err != nil || env.EventId != ids[0] {
		t.Errorf("first message decodes to %v, %v; want event %s", env, err, ids[0])
	}
}

func TestRelayWakePublishesPromptly(t *testing.T) {
	t.Parallel()
	pool := newTestPool(t)
	b := startBroker(t, t.TempDir())
	// With an hour between polls, only the first round and Wake can publish.
	r := newTestRelay(t, pool, b.js, RelayConfig{PollInterval: time.Hour}, nil)
	first := insertEvents(t, pool, 1)
	runInBackground(t, r.Run)
	eventually(t, 10*time.Second, "first round publishes", func() bool { return backlog(t, r) == 0 })

	second := insertEvents(t, pool, 5)
	r.Wake()
	r.Wake() // coalesces, never blocks
	eventually(t, 10*time.Second, "Wake publishes", func() bool { return backlog(t, r) == 0 })
	assertExactlyOnce(t, b.js, append(first, second...))
}

// TestRelayPublishesLateCommit proves there is no cursor on the id: a row with a lower id
// whose transaction commits after a higher one was published still goes out.
func TestRelayPublishesLateCommit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := newTestPool(t)
	b := startBroker(t, t.TempDir())
	r := newTestRelay(t, pool, b.js, RelayConfig{PollInterval: 50 * time.Millisecond}, nil)
	runInBackground(t, r.Run)

	slow, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Rollback(ctx) //nolint:errcheck
	envA, rawA := newEvent(t)
	if err := InsertOutbox(ctx, slow, testSchema, envA, rawA); err != nil {
		t.Fatal(err)
	}
	idsB := insertEvents(t, pool, 1)
	r.Wake()
	eventually(t, 10*time.Second, "B published", func() bool { return len(streamMsgs(t, b.js, StreamName)) == 1 })
	assertExactlyOnce(t, b.js, idsB)

	if err := slow.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	idOf := func(eventID string) int64 {
		return queryInt(t, pool, `SELECT id FROM evt.outbox WHERE event_id = $1`, eventID)
	}
	if a, b := idOf(envA.EventId), idOf(idsB[0]); a >= b {
		t.Fatalf("setup: A has id %d, B %d; want A lower", a, b)
	}
	r.Wake()
	eventually(t, 10*time.Second, "A published after its late commit", func() bool { return backlog(t, r) == 0 })
	assertExactlyOnce(t, b.js, append(idsB, envA.EventId))
}

func TestRelaysInParallelPublishEachRowOnce(t *testing.T) {
	t.Parallel()
	pool := newTestPool(t)
	b := startBroker(t, t.TempDir())
	m := NewMetrics(nil)
	cfg := RelayConfig{BatchSize: 16, PollInterval: 20 * time.Millisecond}
	r1 := newTestRelay(t, pool, b.js, cfg, m)
	r2 := newTestRelay(t, pool, b.js, cfg, m)
	runInBackground(t, r1.Run)
	runInBackground(t, r2.Run)
	var ids []string
	for range 20 {
		ids = append(ids, insertEvents(t, pool, 20)...)
		r1.Wake()
		r2.Wake()
	}
	eventually(t, 20*time.Second, "backlog drains", func() bool { return backlog(t, r1) == 0 })
	assertExactlyOnce(t, b.js, ids)
	// Each row was claimed by one relay: marks add up to the rows, with no second publish.
	if got := metricValue(t, m.published.WithLabelValues(testSchema)); got != float64(len(ids)) {
		t.Errorf("published_total = %v, want %d", got, len(ids))
	}
}

func TestRelayWaitsOutBrokerOutage(t *testing.T) {
	t.Parallel()
	pool := newTestPool(t)
	dir := t.TempDir()
	// The broker comes back on the same address, so it must not be a port the kernel may
	// hand to an outgoing connection while the broker is down.
	addr := testport.Addr(t)
	b1 := startBrokerListen(t, dir, addr)
	nc, err := Connect("nats://"+addr, "relay-test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	m := NewMetrics(nil)
	r := newTestRelay(t, pool, js, RelayConfig{PollInterval: 50 * time.Millisecond, PublishTimeout: 300 * time.Millisecond}, m)
	runInBackground(t, r.Run)
	ids := insertEvents(t, pool, 1)
	r.Wake()
	eventually(t, 10*time.Second, "published while the broker is up", func() bool { return backlog(t, r) == 0 })

	// Enough rows for an atomic batch: a batch that gets no answer leaves its rows for later,
	// and does not turn batches off as if the server had refused them.
	b1.stop()
	down := insertEvents(t, pool, 2*atomicBatchMin)
	ids = append(ids, down...)
	r.Wake()
	errs := m.publishErrors.WithLabelValues(testSchema)
	eventually(t, 10*time.Second, "a failed round", func() bool { return metricValue(t, errs) >= float64(len(down)) })
	if n := backlog(t, r); n != int64(len(down)) {
		t.Errorf("backlog %d while the broker is down, want %d", n, len(down))
	}

	b2 := startBrokerListen(t, dir, addr)
	eventually(t, 20*time.Second, "published after the broker is back", func() bool { return backlog(t, r) == 0 })
	assertExactlyOnce(t, b2.js, ids)
	if r.atomicOff.Load() {
		t.Error("an outage turned atomic batches off")
	}
	got := batchIDs(t, b2.js)
	for _, id := range down {
		if got[id] == "" {
			t.Errorf("event %s, held through the outage, was not published in an atomic batch", id)
		}
	}
}

func TestRelayDrainsOnCancel(t *testing.T) {
	t.Parallel()
	pool := newTestPool(t)
	b := startBroker(t, t.TempDir())
	r := newTestRelay(t, pool, b.js, RelayConfig{PollInterval: time.Hour}, nil)
	ids := insertEvents(t, pool, 1)
	stop := runInBackground(t, r.Run)
	eventually(t, 10*time.Second, "first round publishes", func() bool { return backlog(t, r) == 0 })
	// No Wake and no poll: only the drain can publish these.
	ids = append(ids, insertEvents(t, pool, 10)...)
	stop()
	if n := backlog(t, r); n != 0 {
		t.Errorf("backlog %d after drain, want 0", n)
	}
	assertExactlyOnce(t, b.js, ids)
}

func TestRelayPrune(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := newTestPool(t)
	b := startBroker(t, t.TempDir())
	r := newTestRelay(t, pool, b.js, RelayConfig{Retention: time.Hour}, nil)
	insertEvents(t, pool, 3)
	if _, err := r.round(ctx, time.Second); err != nil {
		t.Fatal(err)
	}
	insertEvents(t, pool, 2) // unpublished: never pruned
	if _, err := pool.Exec(ctx, `UPDATE evt.outbox SET published_at = now() - interval '2 hours' WHERE id IN (SELECT id FROM evt.outbox WHERE published_at IS NOT NULL LIMIT 2)`); err != nil {
		t.Fatal(err)
	}
	n, err := r.Prune(ctx)
	if err != nil || n != 2 {
		t.Fatalf("Prune = %d, %v; want 2", n, err)
	}
	if left := queryInt(t, pool, `SELECT count(*) FROM evt.outbox`); left != 3 {
		t.Errorf("%d rows left, want 3", left)
	}
}

func TestNewEnvelope(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	env, raw, err := NewEnvelope("mash.referral.received", "north", "ref-1", 3, at, System("test"), nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeEnvelope(raw)
	if err != nil {
		t.Fatal(err)
	}
	if got.EventId != env.EventId || got.Type != "mash.referral.received" || got.Version != 3 ||
		got.ReferralId != "ref-1" || got.Partnership != "north" || !got.OccurredAt.AsTime().Equal(at) {
		t.Errorf("round trip: %v", got)
	}
	if env.EventId[14] != '7' {
		t.Errorf("event id %s is not a UUIDv7", env.EventId)
	}
	for _, bad := range []string{"", "referral.received", "mash.referral.*", "mash..x", "mash.a b"} {
		if _, _, err := NewEnvelope(bad, "", "", 0, at, System("test"), nil); err == nil {
			t.Errorf("NewEnvelope(%q) accepted", bad)
		}
	}
	if _, _, err := NewEnvelope("mash.x", "", "", 0, time.Time{}, System("test"), nil); err == nil {
		t.Error("zero occurredAt accepted")
	}
	if _, _, err := NewEnvelope("mash.x", "", "", 0, at, nil, nil); err == nil {
		t.Error("an envelope without an actor accepted")
	}
	if a := got.GetActor(); a.GetId() != "test" || a.GetRole() != RoleSystem {
		t.Errorf("decoded actor %v, want test as system", a)
	}
}

// batchIDs returns the atomic batch id each stored message came in ("" for none), by event id.
func batchIDs(t testing.TB, js jetstream.JetStream) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, m := range streamMsgs(t, js, StreamName) {
		out[m.Header.Get(jetstream.MsgIDHeader)] = m.Header.Get(batchIDHeader)
	}
	return out
}

func TestRelayPublishesALargeRoundAsOneAtomicBatch(t *testing.T) {
	t.Parallel()
	pool := newTestPool(t)
	b := startBroker(t, t.TempDir())
	ids := insertEvents(t, pool, 100)
	r := newTestRelay(t, pool, b.js, RelayConfig{PollInterval: time.Hour}, nil)
	runInBackground(t, r.Run)
	eventually(t, 10*time.Second, "backlog drains", func() bool { return backlog(t, r) == 0 })

	assertExactlyOnce(t, b.js, ids)
	batches := map[string]int{}
	for _, id := range batchIDs(t, b.js) {
		batches[id]++
	}
	if len(batches) != 1 || batches[""] != 0 {
		t.Errorf("100 rows in one round came in batches %v; want one atomic batch", batches)
	}
	if n := queryInt(t, pool, `SELECT count(*) FROM evt.outbox WHERE published_at IS NOT NULL`); n != 100 {
		t.Errorf("%d rows marked published, want 100", n)
	}

	// A round below the threshold goes event by event.
	few := insertEvents(t, pool, atomicBatchMin-1)
	r.Wake()
	eventually(t, 10*time.Second, "small round published", func() bool { return backlog(t, r) == 0 })
	got := batchIDs(t, b.js)
	for _, id := range few {
		if bid, ok := got[id]; !ok || bid != "" {
			t.Errorf("event %s of a small round: stored %v, batch %q; want stored alone", id, ok, bid)
		}
	}
}

// After a round big enough for a batch, the relay lingers, so rows committed meanwhile go
// out together in one larger batch rather than in a batch each.
func TestRelayLingersAfterALargeRoundSoBatchesGrow(t *testing.T) {
	t.Parallel()
	pool := newTestPool(t)
	b := startBroker(t, t.TempDir())
	first := insertEvents(t, pool, atomicBatchMin)
	// A long linger, so a loaded test machine cannot stretch the two inserts below past it.
	r := newTestRelay(t, pool, b.js, RelayConfig{PollInterval: time.Hour, Linger: 8 * time.Second}, nil)
	runInBackground(t, r.Run)
	eventually(t, 10*time.Second, "first round published", func() bool { return backlog(t, r) == 0 })

	// Two commits, each woken at once, as intake does: without the linger each would start
	// a round of its own.
	second := insertEvents(t, pool, atomicBatchMin)
	r.Wake()
	third := insertEvents(t, pool, atomicBatchMin)
	r.Wake()
	eventually(t, 30*time.Second, "later rows published", func() bool { return backlog(t, r) == 0 })

	assertExactlyOnce(t, b.js, slices.Concat(first, second, third))
	got := batchIDs(t, b.js)
	later := map[string]int{}
	for _, id := range slices.Concat(second, third) {
		later[got[id]]++
	}
	if len(later) != 1 || later[""] != 0 || later[got[first[0]]] != 0 {
		t.Errorf("rows committed while the relay lingered came in batches %v; want one batch of %d, apart from the first round's",
			later, 2*atomicBatchMin)
	}
}

// A round too small for an atomic batch does not linger, however long the linger is: at
// ordinary rates events go at once.
func TestRelayDoesNotLingerAfterAQuietRound(t *testing.T) {
	t.Parallel()
	pool := newTestPool(t)
	b := startBroker(t, t.TempDir())
	r := newTestRelay(t, pool, b.js, RelayConfig{PollInterval: time.Hour, Linger: time.Hour}, nil)
	runInBackground(t, r.Run)
	first := insertEvents(t, pool, 5)
	r.Wake()
	eventually(t, 10*time.Second, "first quiet round published", func() bool { return backlog(t, r) == 0 })
	second := insertEvents(t, pool, 5)
	r.Wake()
	eventually(t, 10*time.Second, "second quiet round published at once", func() bool { return backlog(t, r) == 0 })
	assertExactlyOnce(t, b.js, slices.Concat(first, second))
}

// The relay vacuums its outbox as published rows gather, so claims do not walk their dead
// index entries, whether or not autovacuum runs.
func TestRelayVacuumsItsOutbox(t *testing.T) {
	t.Parallel()
	pool := newTestPool(t)
	b := startBroker(t, t.TempDir())
	ids := insertEvents(t, pool, 25)
	r := newTestRelay(t, pool, b.js, RelayConfig{PollInterval: time.Hour, VacuumEvery: 10}, nil)
	runInBackground(t, r.Run)
	eventually(t, 10*time.Second, "backlog drains", func() bool { return backlog(t, r) == 0 })
	assertExactlyOnce(t, b.js, ids)
	// vacuum_count counts VACUUM commands only, not autovacuum's runs.
	eventually(t, 15*time.Second, "the outbox vacuumed", func() bool {
		return queryInt(t, pool, `SELECT vacuum_count FROM pg_stat_user_tables WHERE schemaname = 'evt' AND relname = 'outbox'`) > 0
	})
}

// A relay killed after publishing a round and before marking it republishes the round: the
// atomic batch is refused for its duplicates, and the round goes event by event, so every
// event is stored once and every row marked.
func TestRelayRepublishesARoundPartlyStoredBefore(t *testing.T) {
	t.Parallel()
	pool := newTestPool(t)
	b := startBroker(t, t.TempDir())
	ids := insertEvents(t, pool, 100)
	ctx := context.Background()
	for _, id := range ids[:10] {
		var subject string
		var payload []byte
		if err := pool.QueryRow(ctx, `SELECT subject, payload FROM evt.outbox WHERE event_id = $1`, id).Scan(&subject, &payload); err != nil {
			t.Fatal(err)
		}
		if _, err := b.js.Publish(ctx, subject, payload, jetstream.WithMsgID(id)); err != nil {
			t.Fatal(err)
		}
	}
	r := newTestRelay(t, pool, b.js, RelayConfig{PollInterval: time.Hour}, nil)
	runInBackground(t, r.Run)
	eventually(t, 10*time.Second, "backlog drains", func() bool { return backlog(t, r) == 0 })

	assertExactlyOnce(t, b.js, ids)
	if n := queryInt(t, pool, `SELECT count(*) FROM evt.outbox WHERE published_at IS NOT NULL`); n != 100 {
		t.Errorf("%d rows marked published, want 100", n)
	}
	if r.atomicOff.Load() {
		t.Error("a batch refused for duplicates turned atomic batches off for good")
	}
}

// On a stream that does not allow atomic batches (created by an older mash, or a server
// before 2.12), the relay publishes event by event from the first refusal on.
func TestRelayPublishesEventByEventWhereBatchesAreOff(t *testing.T) {
	t.Parallel()
	pool := newTestPool(t)
	b := startBroker(t, t.TempDir())
	// Updated in place: deleting the stream and creating it again races the server's removal
	// of the old store ("error creating store for stream").
	cfg := StreamConfig(Streams[0], StreamOptions{})
	cfg.AllowAtomicPublish = false
	if _, err := b.js.UpdateStream(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	ids := insertEvents(t, pool, 100)
	r := newTestRelay(t, pool, b.js, RelayConfig{PollInterval: time.Hour}, nil)
	runInBackground(t, r.Run)
	eventually(t, 10*time.Second, "backlog drains", func() bool { return backlog(t, r) == 0 })

	assertExactlyOnce(t, b.js, ids)
	if !r.atomicOff.Load() {
		t.Error("atomic batches still on after the stream refused them")
	}
}

// The relay lingers only after a round that went as an atomic batch: never when lingering
// is off, after a small round, or once the server refused atomic batches, since then the
// wait would save nothing.
func TestLingersOnlyAfterAnAtomicBatch(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		linger    time.Duration
		claimed   int
		atomicOff bool
		want      bool
	}{
		{"batch-sized round", 20 * time.Millisecond, atomicBatchMin, false, true},
		{"small round", 20 * time.Millisecond, atomicBatchMin - 1, false, false},
		{"linger off", -1, 200, false, false},
		{"server without atomic batches", 20 * time.Millisecond, 200, true, false},
	} {
		r := &Relay{cfg: RelayConfig{Linger: tc.linger}}
		r.atomicOff.Store(tc.atomicOff)
		if got := r.lingers(roundResult{claimed: tc.claimed, acked: tc.claimed}); got != tc.want {
			t.Errorf("%s: lingers = %v, want %v", tc.name, got, tc.want)
		}
	}
}
