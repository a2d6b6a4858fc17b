package events

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
)

// An erasure consumer records the erased case, deletes its outbox rows and dead letters
// (and no other case's), and runs the service's blanking once even when the event comes
// again; after it, a consumer with SkipErased never applies another event of the case,
// while events of other cases go on.
func TestErasureConsumerAndSkipErased(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := newTestPool(t)
	b := startBroker(t, t.TempDir())
	m := NewMetrics(nil)
	const erased, other = "0199aaaa-0000-7000-8000-000000000001", "0199aaaa-0000-7000-8000-000000000002"

	// Rows of both cases: an outbox row each, a dead letter each (clear, as before sealing).
	for _, id := range []string{erased, other} {
		env, raw, err := NewEnvelope("mash.referral.test-happened", "p1", id, 1, time.Now(), System("test"), wrapperspb.String("Quillfeather "+id))
		if err != nil {
			t.Fatal(err)
		}
		if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { return InsertOutbox(ctx, tx, testSchema, env, raw) }); err != nil {
			t.Fatal(err)
		}
		if _, err := pool.Exec(ctx, `INSERT INTO evt.dead_letter (consumer, event_id, subject, payload, error, attempts)
			VALUES ('c', $1, $2, $3, 'x', 8)`, env.GetEventId(), env.GetType(), raw); err != nil {
			t.Fatal(err)
		}
	}
	var blanked atomic.Int64
	ec, err := NewErasureConsumer(pool, b.js, ErasureConsumerConfig{Schema: testSchema, Durable: "erasure"},
		func(ctx context.Context, tx pgx.Tx, ev *eventsv1.CaseErased) error {
			blanked.Add(1)
			return nil
		}, testLogger(t), m)
	if err != nil {
		t.Fatal(err)
	}
	runInBackground(t, ec.Run)
	cfg := testConsumerConfig("c-skip")
	cfg.SkipErased = true
	var calls atomic.Int64
	startConsumer(t, pool, b.js, cfg, effectHandler("c-skip", &calls), m)

	env, raw, err := ErasedEnvelope(&eventsv1.CaseErased{ReferralId: erased, ErasedBy: "manager-1", ErasedAt: timestamppb.Now()}, "p1")
	if err != nil {
		t.Fatal(err)
	}
	if env.GetSealed() != nil || env.GetPayload() == nil {
		t.Fatal("the erasure event must travel unsealed")
	}
	publish(t, b.js, env.GetType(), raw, env.GetEventId())
	publish(t, b.js, env.GetType(), raw, env.GetEventId()+".again") // a redelivery, as a re-emit
	settled(t, b.js, "erasure")
	if blanked.Load() != 1 {
		t.Errorf("blanking ran %d times, want 1", blanked.Load())
	}
	if n := queryInt(t, pool, `SELECT count(*) FROM evt.erased_cases WHERE referral_id = $1`, erased); n != 1 {
		t.Errorf("erased_cases rows %d, want 1", n)
	}
	for id, want := range map[string]int64{erased: 0, other: 1} {
		// The unpublished row of the erased case stays, as a tombstone (below).
		if n := queryInt(t, pool, `SELECT count(*) FROM evt.outbox WHERE referral_id = $1`, id); n != 1 {
			t.Errorf("outbox rows of %s: %d, want 1", id, n)
		}
		if n := queryInt(t, pool, `SELECT count(*) FROM evt.outbox WHERE position('Quillfeather'::bytea IN payload) > 0 AND referral_id = $1`, id); n != want {
			t.Errorf("outbox rows of %s holding the name: %d, want %d", id, n, want)
		}
		if n := queryInt(t, pool, `SELECT count(*) FROM evt.dead_letter WHERE position($1::bytea IN payload) > 0`, []byte(id)); n != want {
			t.Errorf("dead letters of %s: %d, want %d", id, n, want)
		}
	}
	var tomb []byte
	if err := pool.QueryRow(ctx, `SELECT payload FROM evt.outbox WHERE referral_id = $1`, erased).Scan(&tomb); err != nil {
		t.Fatal(err)
	}
	if got, err := decodeEnvelope(tomb); err != nil || !Erased(got) || got.GetPayload() != nil || got.GetType() != "mash.referral.test-happened" {
		t.Errorf("the erased case's unpublished row: %v (%v), want a tombstone of its event", got, err)
	}

	// Later events: the erased case's are skipped, the other case's applied.
	var ids [2]string
	for i, id := range []string{erased, other} {
		e, r, err := NewEnvelope("mash.referral.test-happened", "p1", id, 2, time.Now(), System("test"), &eventsv1.ReferralReceived{})
		if err != nil {
			t.Fatal(err)
		}
		publish(t, b.js, e.GetType(), r, e.GetEventId())
		ids[i] = e.GetEventId()
	}
	eventually(t, 10*time.Second, "the other case's event applied", func() bool { return effects(t, pool, "c-skip", ids[1]) == 1 })
	settled(t, b.js, "c-skip")
	if n := effects(t, pool, "c-skip", ids[0]); n != 0 {
		t.Errorf("an event of the erased case was applied %d times", n)
	}
}
