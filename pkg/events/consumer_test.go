package events

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
)

// effectHandler records each event it applies in evt.effects, through the consumer's tx.
func effectHandler(consumer string, calls *atomic.Int64) Handler {
	return func(ctx context.Context, tx pgx.Tx, env *eventsv1.Envelope) error {
		calls.Add(1)
		_, err := tx.Exec(ctx, `INSERT INTO evt.effects (event_id, consumer) VALUES ($1, $2)`, env.EventId, consumer)
		return err
	}
}

func testConsumerConfig(durable string) ConsumerConfig {
	return ConsumerConfig{
		Schema:         testSchema,
		Durable:        durable,
		FilterSubjects: []string{"mash.referral.>"},
		Backoff:        []time.Duration{10 * time.Millisecond, 20 * time.Millisecond},
		MaxDeliver:     3,
	}
}

func startConsumer(t testing.TB, pool *pgxpool.Pool, js jetstream.JetStream, cfg ConsumerConfig, h Handler, m *Metrics) (stop func()) {
	t.Helper()
	c, err := NewConsumer(pool, js, StreamName, cfg, h, testLogger(t), m)
	if err != nil {
		t.Fatal(err)
	}
	return runInBackground(t, c.Run)
}

func publish(t testing.TB, js jetstream.JetStream, subject string, data []byte, msgID string) {
	t.Helper()
	var opts []jetstream.PublishOpt
	if msgID != "" {
		opts = append(opts, jetstream.WithMsgID(msgID))
	}
	if _, err := js.PublishMsg(context.Background(), &nats.Msg{Subject: subject, Data: data}, opts...); err != nil {
		t.Fatal(err)
	}
}

// effects counts the effects consumer applied for eventID.
func effects(t testing.TB, pool *pgxpool.Pool, consumer, eventID string) int64 {
	t.Helper()
	return queryInt(t, pool, `SELECT count(*) FROM evt.effects WHERE consumer = $1 AND event_id = $2`, consumer, eventID)
}

// settled waits until the consumer has nothing pending or unacknowledged.
func settled(t testing.TB, js jetstream.JetStream, durable string) {
	t.Helper()
	eventually(t, 10*time.Second, durable+" has acked everything", func() bool {
		c, err := js.Consumer(context.Background(), StreamName, durable)
		if err != nil {
			return false
		}
		info, err := c.Info(context.Background())
		return err == nil && info.NumPending == 0 && info.NumAckPending == 0 && info.NumRedelivered == 0
	})
}

func TestConsumerAppliesOnceAndSkipsRedelivery(t *testing.T) {
	t.Parallel()
	pool := newTestPool(t)
	b := startBroker(t, t.TempDir())
	m := NewMetrics(nil)
	var calls atomic.Int64
	startConsumer(t, pool, b.js, testConsumerConfig("c1"), effectHandler("c1", &calls), m)

	env, raw := newEvent(t)
	publish(t, b.js, env.Type, raw, env.EventId)
	eventually(t, 10*time.Second, "effect applied", func() bool { return effects(t, pool, "c1", env.EventId) == 1 })
	if n := queryInt(t, pool, `SELECT count(*) FROM evt.inbox WHERE consumer = 'c1' AND event_id = $1`, env.EventId); n != 1 {
		t.Errorf("inbox rows %d, want 1", n)
	}

	// The same envelope under another message id, as a reconciler re-emit or a replay arrives.
	publish(t, b.js, env.Type, raw, env.EventId+".again")
	dups := m.consumed.WithLabelValues("c1", resultDuplicate)
	eventually(t, 10*time.Second, "duplicate acknowledged", func() bool { return metricValue(t, dups) == 1 })
	settled(t, b.js, "c1")
	if calls.Load() != 1 || effects(t, pool, "c1", env.EventId) != 1 {
		t.Errorf("handler ran %d times, %d effects; want 1 and 1", calls.Load(), effects(t, pool, "c1", env.EventId))
	}
}

func TestConsumerRetriesAndRollsBack(t *testing.T) {
	t.Parallel()
	pool := newTestPool(t)
	b := startBroker(t, t.TempDir())
	var calls atomic.Int64
	apply := effectHandler("c1", &calls)
	h := func(ctx context.Context, tx pgx.Tx, env *eventsv1.Envelope) error {
		// The effect is written, then the handler fails: neither it nor the inbox row may
		// survive.
		if err := apply(ctx, tx, env); err != nil {
			return err
		}
		if calls.Load() == 1 {
			return errors.New("transient")
		}
		return nil
	}
	startConsumer(t, pool, b.js, testConsumerConfig("c1"), h, nil)
	env, raw := newEvent(t)
	publish(t, b.js, env.Type, raw, env.EventId)
	eventually(t, 10*time.Second, "applied on the second delivery", func() bool { return calls.Load() == 2 })
	settled(t, b.js, "c1")
	if n := effects(t, pool, "c1", env.EventId); n != 1 {
		t.Errorf("%d effects, want 1 (the failed attempt rolled back)", n)
	}
	if n := queryInt(t, pool, `SELECT count(*) FROM evt.dead_letter`); n != 0 {
		t.Errorf("%d dead letters, want 0", n)
	}
}

func deadLetterFor(t testing.TB, pool *pgxpool.Pool, eventID string) *DeadLetter {
	t.Helper()
	all, err := ListDeadLetters(context.Background(), pool, testSchema, true)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range all {
		if d.EventID == eventID {
			return &d
		}
	}
	return nil
}

func TestConsumerDeadLettersAfterMaxDeliver(t *testing.T) {
	t.Parallel()
	pool := newTestPool(t)
	b := startBroker(t, t.TempDir())
	m := NewMetrics(nil)
	var calls atomic.Int64
	apply := effectHandler("c1", &calls)
	h := func(ctx context.Context, tx pgx.Tx, env *eventsv1.Envelope) error {
		_ = apply(ctx, tx, env)
		return errors.New("boom")
	}
	startConsumer(t, pool, b.js, testConsumerConfig("c1"), h, m)
	env, raw := newEvent(t)
	publish(t, b.js, env.Type, raw, env.EventId)

	eventually(t, 10*time.Second, "dead letter written", func() bool { return deadLetterFor(t, pool, env.EventId) != nil })
	settled(t, b.js, "c1") // terminated: nothing left to deliver
	d := deadLetterFor(t, pool, env.EventId)
	if d.Attempts != 3 || d.Consumer != "c1" || d.Subject != env.Type || !strings.Contains(d.Error, "boom") || d.ReplayedAt != nil {
		t.Errorf("dead letter %+v", d)
	}
	if calls.Load() != 3 || effects(t, pool, "c1", env.EventId) != 0 {
		t.Errorf("handler ran %d times, %d effects; want 3 and 0", calls.Load(), effects(t, pool, "c1", env.EventId))
	}
	if got := metricValue(t, m.consumed.WithLabelValues("c1", resultRetry)); got != 2 {
		t.Errorf("retry count %v, want 2", got)
	}
	if got := metricValue(t, m.consumed.WithLabelValues("c1", resultDeadLetter)); got != 1 {
		t.Errorf("dead_letter count %v, want 1", got)
	}
	if got := metricValue(t, m.deadLetters); got != 1 {
		t.Errorf("mash_dead_letters = %v, want 1", got)
	}
}

func TestConsumerSurvivesPanickingHandler(t *testing.T) {
	t.Parallel()
	pool := newTestPool(t)
	b := startBroker(t, t.TempDir())
	h := func(context.Context, pgx.Tx, *eventsv1.Envelope) error { panic("handler bug") }
	cfg := testConsumerConfig("c1")
	cfg.MaxDeliver = 2
	startConsumer(t, pool, b.js, cfg, h, nil)
	env, raw := newEvent(t)
	publish(t, b.js, env.Type, raw, env.EventId)
	eventually(t, 10*time.Second, "dead letter written", func() bool { return deadLetterFor(t, pool, env.EventId) != nil })
	if d := deadLetterFor(t, pool, env.EventId); d.Attempts != 2 || !strings.Contains(d.Error, "panicked: handler bug") {
		t.Errorf("dead letter %+v", d)
	}
	settled(t, b.js, "c1")
}

func TestConsumerDeadLettersPoison(t *testing.T) {
	t.Parallel()
	pool := newTestPool(t)
	b := startBroker(t, t.TempDir())
	var calls atomic.Int64
	startConsumer(t, pool, b.js, testConsumerConfig("c1"), effectHandler("c1", &calls), nil)

	id := uuid.NewString()
	publish(t, b.js, "mash.referral.test-poison", []byte("not a protobuf"), id)
	// Decodes as protobuf, but carries no event id.
	publish(t, b.js, "mash.referral.test-poison", []byte{}, "")
	eventually(t, 10*time.Second, "both dead-lettered", func() bool {
		return queryInt(t, pool, `SELECT count(*) FROM evt.dead_letter`) == 2
	})
	d := deadLetterFor(t, pool, id)
	if d == nil || d.Attempts != 1 || !strings.Contains(d.Error, "undecodable") {
		t.Fatalf("dead letter for the poison message: %+v", d)
	}
	var payload []byte
	if err := pool.QueryRow(context.Background(), `SELECT payload FROM evt.dead_letter WHERE id = $1`, d.ID).Scan(&payload); err != nil || string(payload) != "not a protobuf" {
		t.Errorf("stored payload %q, %v", payload, err)
	}
	settled(t, b.js, "c1")
	if calls.Load() != 0 {
		t.Errorf("handler ran %d times for poison", calls.Load())
	}
}

func TestReplayDeadLetter(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := newTestPool(t)
	b := startBroker(t, t.TempDir())
	m := NewMetrics(nil)
	var fixed atomic.Bool
	var calls, otherCalls atomic.Int64
	apply := effectHandler("c1", &calls)
	h := func(ctx context.Context, tx pgx.Tx, env *eventsv1.Envelope) error {
		if !fixed.Load() {
			return errors.New("bug")
		}
		return apply(ctx, tx, env)
	}
	cfg := testConsumerConfig("c1")
	cfg.MaxDeliver = 2
	startConsumer(t, pool, b.js, cfg, h, m)
	// Another consumer of the same events, which handled the original fine.
	startConsumer(t, pool, b.js, testConsumerConfig("c2"), effectHandler("c2", &otherCalls), m)

	env, raw := newEvent(t)
	publish(t, b.js, env.Type, raw, env.EventId)
	eventually(t, 10*time.Second, "dead letter written", func() bool { return deadLetterFor(t, pool, env.EventId) != nil })
	eventually(t, 10*time.Second, "c2 applied", func() bool { return otherCalls.Load() == 1 })

	schemas, err := DeadLetterSchemas(ctx, pool)
	if err != nil || len(schemas) != 1 || schemas[0] != testSchema {
		t.Fatalf("DeadLetterSchemas = %v, %v", schemas, err)
	}
	open, err := ListDeadLetters(ctx, pool, testSchema, false)
	if err != nil || len(open) != 1 {
		t.Fatalf("ListDeadLetters = %v, %v", open, err)
	}

	fixed.Store(true)
	if err := ReplayDeadLetter(ctx, pool, b.js, testSchema, open[0].ID); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "effect after replay", func() bool { return effects(t, pool, "c1", env.EventId) == 1 })
	eventually(t, 10*time.Second, "c2 skipped the replay", func() bool {
		return metricValue(t, m.consumed.WithLabelValues("c2", resultDuplicate)) == 1
	})

	// A second replay changes nothing: c1's inbox has the event now.
	if err := ReplayDeadLetter(ctx, pool, b.js, testSchema, open[0].ID); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "c1 skipped the second replay", func() bool {
		return metricValue(t, m.consumed.WithLabelValues("c1", resultDuplicate)) == 1
	})
	settled(t, b.js, "c1")
	settled(t, b.js, "c2")
	if calls.Load() != 1 || otherCalls.Load() != 1 || queryInt(t, pool, `SELECT count(*) FROM evt.effects`) != 2 {
		t.Errorf("c1 ran %d times, c2 %d; want 1 each", calls.Load(), otherCalls.Load())
	}
	d := deadLetterFor(t, pool, env.EventId)
	if d.ReplayedAt == nil || d.Replays != 2 {
		t.Errorf("after replays: %+v", d)
	}
	if open, _ := ListDeadLetters(ctx, pool, testSchema, false); len(open) != 0 {
		t.Errorf("%d dead letters still open", len(open))
	}
	if got := metricValue(t, m.deadLetters); got != 0 {
		t.Errorf("mash_dead_letters = %v, want 0", got)
	}
	if err := ReplayDeadLetter(ctx, pool, b.js, testSchema, 999); !errors.Is(err, ErrDeadLetterNotFound) {
		t.Errorf("replay of a missing letter: %v", err)
	}
}

func TestConsumerDrainsOnCancel(t *testing.T) {
	t.Parallel()
	pool := newTestPool(t)
	b := startBroker(t, t.TempDir())
	started := make(chan struct{})
	release := make(chan struct{})
	var calls atomic.Int64
	apply := effectHandler("c1", &calls)
	h := func(ctx context.Context, tx pgx.Tx, env *eventsv1.Envelope) error {
		close(started)
		<-release
		return apply(ctx, tx, env)
	}
	c, err := NewConsumer(pool, b.js, StreamName, testConsumerConfig("c1"), h, testLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	env, raw := newEvent(t)
	publish(t, b.js, env.Type, raw, env.EventId)
	<-started
	cancel()
	select {
	case err := <-done:
		t.Fatalf("Run returned %v while a handler was running", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return after the handler finished")
	}
	if effects(t, pool, "c1", env.EventId) != 1 {
		t.Error("in-flight event not committed")
	}
	settled(t, b.js, "c1")
}

func TestConsumerKeepsLongHandlerAlive(t *testing.T) {
	t.Parallel()
	pool := newTestPool(t)
	b := startBroker(t, t.TempDir())
	var calls atomic.Int64
	apply := effectHandler("c1", &calls)
	h := func(ctx context.Context, tx pgx.Tx, env *eventsv1.Envelope) error {
		time.Sleep(2500 * time.Millisecond) // two and a half AckWaits
		return apply(ctx, tx, env)
	}
	cfg := testConsumerConfig("c1")
	cfg.AckWait = time.Second
	startConsumer(t, pool, b.js, cfg, h, nil)
	env, raw := newEvent(t)
	publish(t, b.js, env.Type, raw, env.EventId)
	eventually(t, 10*time.Second, "applied", func() bool { return effects(t, pool, "c1", env.EventId) == 1 })
	settled(t, b.js, "c1")
	if calls.Load() != 1 {
		t.Errorf("handler ran %d times; InProgress should have prevented redelivery", calls.Load())
	}
}

func TestNewConsumerValidates(t *testing.T) {
	t.Parallel()
	pool := &pgxpool.Pool{}
	b := startBroker(t, t.TempDir())
	h := effectHandler("x", new(atomic.Int64))
	for name, cfg := range map[string]ConsumerConfig{
		"no schema":     {Durable: "c", FilterSubjects: []string{"mash.>"}},
		"dotted name":   {Schema: "s", Durable: "a.b", FilterSubjects: []string{"mash.>"}},
		"no subjects":   {Schema: "s", Durable: "c"},
		"short ackwait": {Schema: "s", Durable: "c", FilterSubjects: []string{"mash.>"}, AckWait: time.Millisecond},
		"zero backoff":  {Schema: "s", Durable: "c", FilterSubjects: []string{"mash.>"}, Backoff: []time.Duration{0}},
	} {
		if _, err := NewConsumer(pool, b.js, StreamName, cfg, h, nil, nil); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
