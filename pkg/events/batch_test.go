package events

import (
	"context"
	"errors"
	"hash/fnv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"

	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
)

// txHandler records each event it applies in evt.effects with the id of the transaction
// that applied it (in the consumer column), so a test can tell batches apart.
func txHandler(calls *atomic.Int64, fail string) Handler {
	return func(ctx context.Context, tx pgx.Tx, env *eventsv1.Envelope) error {
		calls.Add(1)
		if env.EventId == fail {
			return errors.New("this event always fails")
		}
		_, err := tx.Exec(ctx, `INSERT INTO evt.effects (event_id, consumer) VALUES ($1, txid_current()::text)`, env.EventId)
		return err
	}
}

// publishEvents publishes n events on referral referralID (each its own when empty) and
// returns their ids.
func publishEvents(t testing.TB, js jetstream.JetStream, n int, referralID string) []string {
	t.Helper()
	ids := make([]string, n)
	for i := range ids {
		ref := referralID
		if ref == "" {
			ref = "r-" + uuid.NewString()
		}
		env, raw, err := NewEnvelope("mash.referral.test-happened", "p1", ref, 1, time.Now(), System("test"), &eventsv1.ReferralReceived{})
		if err != nil {
			t.Fatal(err)
		}
		publish(t, js, env.Type, raw, env.EventId)
		ids[i] = env.EventId
	}
	return ids
}

// fetchBatch creates c's durable consumer and fetches n deliveries from it, as Run's
// workers would find them waiting, so a test drives processBatch without racing a puller.
func fetchBatch(t testing.TB, c *Consumer, n int) []jetstream.Msg {
	t.Helper()
	ctx := context.Background()
	cons, err := c.js.CreateOrUpdateConsumer(ctx, c.stream, c.jetStreamConfig())
	if err != nil {
		t.Fatal(err)
	}
	b, err := cons.Fetch(n, jetstream.FetchMaxWait(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var out []jetstream.Msg
	for m := range b.Messages() {
		out = append(out, m)
	}
	if b.Error() != nil || len(out) != n {
		t.Fatalf("fetched %d deliveries (error %v), want %d", len(out), b.Error(), n)
	}
	return out
}

func newBatchConsumer(t testing.TB, pool *pgxpool.Pool, js jetstream.JetStream, durable string, h Handler, m *Metrics) *Consumer {
	t.Helper()
	cfg := testConsumerConfig(durable)
	cfg.BatchSize = 16
	cfg.SkipErased = true
	c, err := NewConsumer(pool, js, StreamName, cfg, h, testLogger(t), m)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// transactions maps each applied event to the transaction that applied it.
func transactions(t testing.TB, pool *pgxpool.Pool, ids []string) map[string][]string {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT event_id::text, consumer FROM evt.effects WHERE event_id = ANY($1::uuid[])`, ids)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for rows.Next() {
		var id, txid string
		if err := rows.Scan(&id, &txid); err != nil {
			t.Fatal(err)
		}
		out[id] = append(out[id], txid)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestBatchAppliesEventsInOneTransaction(t *testing.T) {
	t.Parallel()
	pool := newTestPool(t)
	b := startBroker(t, t.TempDir())
	var calls atomic.Int64
	m := NewMetrics(nil)
	c := newBatchConsumer(t, pool, b.js, "batch1", txHandler(&calls, ""), m)
	ids := publishEvents(t, b.js, 10, "")
	c.processBatch(context.Background(), context.Background(), fetchBatch(t, c, 10))

	txs := transactions(t, pool, ids)
	seen := map[string]bool{}
	for _, id := range ids {
		if len(txs[id]) != 1 {
			t.Fatalf("event %s applied %d times, want once", id, len(txs[id]))
		}
		seen[txs[id][0]] = true
	}
	if len(seen) != 1 {
		t.Errorf("10 events applied in %d transactions, want 1", len(seen))
	}
	if got := metricValue(t, m.consumed.WithLabelValues("batch1", resultOK)); got != 10 {
		t.Errorf("consumed ok = %v, want 10", got)
	}
	settled(t, b.js, "batch1") // every delivery acked
}

func TestBatchFailureFallsBackToOneByOne(t *testing.T) {
	t.Parallel()
	pool := newTestPool(t)
	b := startBroker(t, t.TempDir())
	ids := publishEvents(t, b.js, 8, "")
	poison := ids[3]
	var calls atomic.Int64
	m := NewMetrics(nil)
	c := newBatchConsumer(t, pool, b.js, "batch2", txHandler(&calls, poison), m)
	c.processBatch(context.Background(), context.Background(), fetchBatch(t, c, 8))

	// The batch ran the handler up to the poison event, rolled back, and applied each
	// event alone: every other event once, in a transaction of its own.
	txs := transactions(t, pool, ids)
	seen := map[string]bool{}
	for _, id := range ids {
		want := 1
		if id == poison {
			want = 0
		}
		if len(txs[id]) != want {
			t.Fatalf("event %s applied %d times, want %d", id, len(txs[id]), want)
		}
		if want == 1 {
			seen[txs[id][0]] = true
		}
	}
	if len(seen) != 7 {
		t.Errorf("7 events applied in %d transactions, want 7 (one by one)", len(seen))
	}
	if got := metricValue(t, m.consumed.WithLabelValues("batch2", resultRetry)); got != 1 {
		t.Errorf("retries = %v, want 1 (the poison event)", got)
	}
	// Run takes the poison event's redeliveries one by one until it is a dead letter; the
	// others are not applied again.
	stop := startConsumer(t, pool, b.js, c.cfg, txHandler(&calls, poison), m)
	eventually(t, 10*time.Second, "the poison event is a dead letter", func() bool {
		return queryInt(t, pool, `SELECT count(*) FROM evt.dead_letter WHERE consumer = 'batch2' AND event_id = $1`, poison) == 1
	})
	stop()
	settled(t, b.js, "batch2")
	if n := queryInt(t, pool, `SELECT count(*) FROM evt.effects WHERE event_id = ANY($1::uuid[])`, ids); n != 7 {
		t.Errorf("%d effects after the dead letter, want 7", n)
	}
}

type queuedKey struct{}

// BatchScope wraps a batch's handlers: here they queue their writes on ctx and the scope
// writes them all after the last handler, in the batch's transaction. When the scope's own
// write fails, the batch rolls back and each event is applied alone, unwrapped: the
// handler then finds nothing queued and writes at once. No event is lost or applied twice.
func TestBatchScopeWrapsTheBatchsHandlers(t *testing.T) {
	t.Parallel()
	for _, scopeFails := range []bool{false, true} {
		name := map[bool]string{false: "scope writes", true: "scope fails"}[scopeFails]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			pool := newTestPool(t)
			b := startBroker(t, t.TempDir())
			durable := map[bool]string{false: "scope1", true: "scope2"}[scopeFails]
			var scoped, direct atomic.Int64
			h := func(ctx context.Context, tx pgx.Tx, env *eventsv1.Envelope) error {
				if q, ok := ctx.Value(queuedKey{}).(*[]string); ok {
					*q = append(*q, env.EventId)
					return nil
				}
				direct.Add(1)
				_, err := tx.Exec(ctx, `INSERT INTO evt.effects (event_id, consumer) VALUES ($1, txid_current()::text)`, env.EventId)
				return err
			}
			c := newBatchConsumer(t, pool, b.js, durable, h, NewMetrics(nil))
			c.cfg.BatchScope = func(ctx context.Context, tx pgx.Tx, apply func(context.Context) error) error {
				scoped.Add(1)
				var q []string
				if err := apply(context.WithValue(ctx, queuedKey{}, &q)); err != nil {
					return err
				}
				if scopeFails {
					return errors.New("the scope's write failed")
				}
				_, err := tx.Exec(ctx, `INSERT INTO evt.effects (event_id, consumer) SELECT e, txid_current()::text FROM unnest($1::uuid[]) e`, q)
				return err
			}
			ids := publishEvents(t, b.js, 6, "")
			c.processBatch(context.Background(), context.Background(), fetchBatch(t, c, 6))

			txs := transactions(t, pool, ids)
			seen := map[string]bool{}
			for _, id := range ids {
				if len(txs[id]) != 1 {
					t.Fatalf("event %s applied %d times, want once", id, len(txs[id]))
				}
				seen[txs[id][0]] = true
			}
			wantTx, wantDirect := 1, int64(0)
			if scopeFails {
				wantTx, wantDirect = 6, 6
			}
			if len(seen) != wantTx || direct.Load() != wantDirect || scoped.Load() != 1 {
				t.Errorf("%d transactions, %d direct writes, %d scopes; want %d, %d, 1", len(seen), direct.Load(), scoped.Load(), wantTx, wantDirect)
			}
			settled(t, b.js, durable)
		})
	}
}

func TestBatchSkipsDuplicatesAndErasedCases(t *testing.T) {
	t.Parallel()
	pool := newTestPool(t)
	b := startBroker(t, t.TempDir())
	ids := publishEvents(t, b.js, 4, "")
	erasedIDs := publishEvents(t, b.js, 2, "r-erased-batch3")
	// The first event again, as a second message (a republish without its Msg-Id).
	env, raw, err := NewEnvelope("mash.referral.test-happened", "p1", "r-dup", 1, time.Now(), System("test"), &eventsv1.ReferralReceived{})
	if err != nil {
		t.Fatal(err)
	}
	publish(t, b.js, env.Type, raw, env.EventId)
	publish(t, b.js, env.Type, raw, "")
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `INSERT INTO evt.inbox (consumer, event_id) VALUES ('batch3', $1)`, ids[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO evt.erased_cases (referral_id) VALUES ('r-erased-batch3')`); err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int64
	m := NewMetrics(nil)
	c := newBatchConsumer(t, pool, b.js, "batch3", txHandler(&calls, ""), m)
	c.processBatch(ctx, ctx, fetchBatch(t, c, 8))

	all := append(append(append([]string{}, ids...), erasedIDs...), env.EventId)
	txs := transactions(t, pool, all)
	for _, id := range all {
		want := 1
		if id == ids[0] || id == erasedIDs[0] || id == erasedIDs[1] {
			want = 0
		}
		if len(txs[id]) != want {
			t.Errorf("event %s applied %d times, want %d", id, len(txs[id]), want)
		}
	}
	if got := calls.Load(); got != 4 {
		t.Errorf("handler ran %d times, want 4 (3 new events and the republished one once)", got)
	}
	if got := metricValue(t, m.consumed.WithLabelValues("batch3", resultDuplicate)); got != 4 {
		t.Errorf("duplicates = %v, want 4 (one in the inbox, one repeated in the batch, two erased)", got)
	}
	settled(t, b.js, "batch3")
}

// A batched consumer with an Erased handler (the audit log's) records a readable event of
// a case it erased through that handler, once, on the envelope alone and in the batch's
// transaction, as the one-by-one path does; a copy of the event in the same batch or in a
// later one stops at the inbox.
func TestBatchRecordsErasedCasesThroughTheErasedHandler(t *testing.T) {
	t.Parallel()
	pool := newTestPool(t)
	b := startBroker(t, t.TempDir())
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `INSERT INTO evt.erased_cases (referral_id) VALUES ('r-erased-batch6')`); err != nil {
		t.Fatal(err)
	}
	ids := publishEvents(t, b.js, 3, "")
	erasedIDs := publishEvents(t, b.js, 2, "r-erased-batch6")
	// The first erased event again, as a second message (a republish without its Msg-Id).
	republish := func() {
		t.Helper()
		msgs := streamMsgs(t, b.js, StreamName)
		for _, m := range msgs {
			env, err := decodeEnvelope(m.Data)
			if err != nil {
				t.Fatal(err)
			}
			if env.EventId == erasedIDs[0] {
				publish(t, b.js, m.Subject, m.Data, "")
				return
			}
		}
		t.Fatalf("event %s not in the stream", erasedIDs[0])
	}
	republish()
	var calls, erasedCalls atomic.Int64
	var sawPayload atomic.Bool
	erasedHandler := func(ctx context.Context, tx pgx.Tx, env *eventsv1.Envelope) error {
		erasedCalls.Add(1)
		if env.GetPayload() != nil || env.GetSealed() != nil {
			sawPayload.Store(true)
		}
		_, err := tx.Exec(ctx, `INSERT INTO evt.effects (event_id, consumer) VALUES ($1, 'erased:' || txid_current()::text)`, env.EventId)
		return err
	}
	m := NewMetrics(nil)
	c := newBatchConsumer(t, pool, b.js, "batch6", txHandler(&calls, ""), m)
	c.cfg.Erased = erasedHandler
	c.processBatch(ctx, ctx, fetchBatch(t, c, 6))

	all := append(append([]string{}, ids...), erasedIDs...)
	txs := transactions(t, pool, all)
	seen := map[string]bool{}
	for _, id := range all {
		if len(txs[id]) != 1 {
			t.Fatalf("event %s recorded %d times, want once", id, len(txs[id]))
		}
		tx, byErased := strings.CutPrefix(txs[id][0], "erased:")
		if want := id == erasedIDs[0] || id == erasedIDs[1]; byErased != want {
			t.Errorf("event %s recorded by the Erased handler: %v, want %v", id, byErased, want)
		}
		seen[tx] = true
	}
	if len(seen) != 1 {
		t.Errorf("the batch's events recorded in %d transactions, want 1", len(seen))
	}
	if calls.Load() != 3 || erasedCalls.Load() != 2 || sawPayload.Load() {
		t.Errorf("handler ran %d times (want 3), Erased handler %d times (want 2), payload seen %v (want none)",
			calls.Load(), erasedCalls.Load(), sawPayload.Load())
	}
	if got := metricValue(t, m.consumed.WithLabelValues("batch6", resultDuplicate)); got != 1 {
		t.Errorf("duplicates = %v, want 1 (the erased event repeated in the batch)", got)
	}
	settled(t, b.js, "batch6")

	// The erased event once more, in a later batch with a new event: the inbox absorbs it.
	republish()
	more := publishEvents(t, b.js, 1, "")
	c.processBatch(ctx, ctx, fetchBatch(t, c, 2))
	if n := queryInt(t, pool, `SELECT count(*) FROM evt.effects WHERE event_id = $1`, erasedIDs[0]); n != 1 {
		t.Errorf("erased event %s recorded %d times after a redelivery, want once", erasedIDs[0], n)
	}
	if n := queryInt(t, pool, `SELECT count(*) FROM evt.effects WHERE event_id = $1`, more[0]); n != 1 {
		t.Errorf("new event %s recorded %d times, want once", more[0], n)
	}
	if erasedCalls.Load() != 2 {
		t.Errorf("Erased handler ran %d times after a redelivery, want 2", erasedCalls.Load())
	}
	settled(t, b.js, "batch6")
}

func TestBatchedConsumerAppliesEveryEventOnce(t *testing.T) {
	t.Parallel()
	pool := newTestPool(t)
	b := startBroker(t, t.TempDir())
	ids := publishEvents(t, b.js, 200, "")
	var calls atomic.Int64
	cfg := testConsumerConfig("batch4")
	cfg.BatchSize, cfg.Concurrency, cfg.MaxAckPending = 32, 2, 128
	startConsumer(t, pool, b.js, cfg, txHandler(&calls, ""), nil)
	settled(t, b.js, "batch4")
	txs := transactions(t, pool, ids)
	for _, id := range ids {
		if len(txs[id]) != 1 {
			t.Fatalf("event %s applied %d times, want once", id, len(txs[id]))
		}
	}
}

func TestConsumerLagReportsBacklog(t *testing.T) {
	t.Parallel()
	pool := newTestPool(t)
	b := startBroker(t, t.TempDir())
	m := NewMetrics(nil)
	var calls atomic.Int64
	c := newBatchConsumer(t, pool, b.js, "lag1", txHandler(&calls, ""), m)
	// The durable consumer exists but nothing runs it: every event published is lag.
	if _, err := b.js.CreateOrUpdateConsumer(context.Background(), StreamName, c.jetStreamConfig()); err != nil {
		t.Fatal(err)
	}
	if got := metricValue(t, m.lag); got != 0 {
		t.Fatalf("mash_consumer_lag before any event = %v, want 0", got)
	}
	publishEvents(t, b.js, 5, "")
	// The broker counts a stored message as pending for its consumers just after acking
	// the publish; wait for that count, not for time.
	eventually(t, 10*time.Second, "mash_consumer_lag reports the 5 events unconsumed", func() bool {
		return metricValue(t, m.lag) == 5
	})
	// Five delivered but not yet acknowledged are still lag.
	msgs := fetchBatch(t, c, 5)
	if got := metricValue(t, m.lag); got != 5 {
		t.Errorf("mash_consumer_lag with 5 events in flight = %v, want 5", got)
	}
	c.processBatch(context.Background(), context.Background(), msgs)
	if got := metricValue(t, m.lag); got != 0 {
		t.Errorf("mash_consumer_lag after the batch was acked = %v, want 0", got)
	}
}

func TestPartitionKeepsACaseOnOneWorker(t *testing.T) {
	t.Parallel()
	want := func(key string, n int) int {
		h := fnv.New32a()
		_, _ = h.Write([]byte(key))
		return int(h.Sum32() % uint32(n))
	}
	spread := map[int]bool{}
	for i := range 64 {
		ref := "r-" + uuid.NewString()
		for range 3 {
			env, raw, err := NewEnvelope("mash.referral.test-happened", "p1", ref, int64(i), time.Now(), System("test"), &eventsv1.ReferralReceived{})
			if err != nil {
				t.Fatal(err)
			}
			if got := partition(raw, 8); got != want(env.GetReferralId(), 8) {
				t.Fatalf("event of case %s went to worker %d, want %d", ref, got, want(ref, 8))
			}
			spread[partition(raw, 8)] = true
		}
	}
	if len(spread) < 4 {
		t.Errorf("64 cases went to %d of 8 workers", len(spread))
	}
	// No case: by event id. Not an envelope, or one worker: the first.
	env, raw, err := NewEnvelope("mash.referral.test-happened", "p1", "", 1, time.Now(), System("test"), &eventsv1.ReferralReceived{})
	if err != nil {
		t.Fatal(err)
	}
	if got := partition(raw, 8); got != want(env.GetEventId(), 8) {
		t.Errorf("event without a case went to worker %d, want %d (by event id)", got, want(env.GetEventId(), 8))
	}
	if got := partition([]byte("not a protobuf \xff\xff"), 8); got < 0 || got >= 8 {
		t.Errorf("undecodable message went to worker %d", got)
	}
	if got := partition(raw, 1); got != 0 {
		t.Errorf("one worker: partition %d", got)
	}
}
