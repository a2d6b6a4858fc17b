package events

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
)

// erasedCipher stands in for a case key store whose every key was destroyed.
type erasedCipher struct{}

func (erasedCipher) SealPayload(context.Context, *eventsv1.Envelope) error { return nil }
func (erasedCipher) OpenPayload(context.Context, *eventsv1.Envelope) error { return ErrPayloadErased }

// sealedEvent is an event whose payload went under a case key.
func sealedEvent(t testing.TB) (*eventsv1.Envelope, []byte) {
	t.Helper()
	env, _ := newEvent(t)
	env.Payload = nil
	env.Sealed = &eventsv1.SealedPayload{KeyId: env.ReferralId, Nonce: make([]byte, 12), Ciphertext: []byte("sealed")}
	raw, err := proto.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	return env, raw
}

// An erased case's event is acknowledged unread: the handler never runs, nothing is retried
// and nothing is dead-lettered.
func TestConsumerAcknowledgesAnErasedCasesEventUnread(t *testing.T) {
	t.Parallel()
	pool := newTestPool(t)
	b := startBroker(t, t.TempDir())
	m := NewMetrics(nil)
	var calls atomic.Int64
	cfg := testConsumerConfig("erased")
	cfg.Cipher = erasedCipher{}
	startConsumer(t, pool, b.js, cfg, effectHandler("erased", &calls), m)

	env, raw := sealedEvent(t)
	publish(t, b.js, env.Type, raw, env.EventId)
	erased := m.consumed.WithLabelValues("erased", resultErased)
	eventually(t, 10*time.Second, "erased event acknowledged", func() bool { return metricValue(t, erased) == 1 })
	settled(t, b.js, "erased")
	if calls.Load() != 0 || queryInt(t, pool, `SELECT count(*) FROM evt.dead_letter`) != 0 {
		t.Fatalf("handler ran %d times, %d dead letters; want none", calls.Load(), queryInt(t, pool, `SELECT count(*) FROM evt.dead_letter`))
	}
}

// A consumer that was given no cipher cannot read a sealed event: it ends as a dead letter
// that says why, never as a handler seeing an empty payload.
func TestConsumerWithoutCipherDeadLettersSealedEvents(t *testing.T) {
	t.Parallel()
	pool := newTestPool(t)
	b := startBroker(t, t.TempDir())
	var calls atomic.Int64
	startConsumer(t, pool, b.js, testConsumerConfig("nocipher"), effectHandler("nocipher", &calls), NewMetrics(nil))

	env, raw := sealedEvent(t)
	publish(t, b.js, env.Type, raw, env.EventId)
	eventually(t, 15*time.Second, "sealed event dead-lettered", func() bool {
		return queryInt(t, pool, `SELECT count(*) FROM evt.dead_letter WHERE event_id = $1`, env.EventId) == 1
	})
	var reason string
	if err := pool.QueryRow(context.Background(), `SELECT error FROM evt.dead_letter WHERE event_id = $1`, env.EventId).Scan(&reason); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(reason, "sealed payload") || calls.Load() != 0 {
		t.Fatalf("dead letter error %q, handler ran %d times; want a sealed-payload error and no handler run", reason, calls.Load())
	}
}

// A consumer with an Erased handler (the audit log) records every event of an erased case
// through it, once, on the envelope alone: one sealed under a destroyed key, a tombstone
// that an erasure left in an outbox (readable by a consumer without a cipher too), and,
// with SkipErased, one of a case it erased itself. Never the ordinary handler, never a
// dead letter.
func TestConsumerRecordsErasedEventsThroughTheErasedHandler(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := newTestPool(t)
	b := startBroker(t, t.TempDir())
	m := NewMetrics(nil)
	var calls, erasedCalls atomic.Int64
	var sawPayload atomic.Bool
	recordErased := func(ctx context.Context, tx pgx.Tx, env *eventsv1.Envelope) error {
		erasedCalls.Add(1)
		if env.GetPayload() != nil || env.GetSealed() != nil {
			sawPayload.Store(true)
		}
		_, err := tx.Exec(ctx, `INSERT INTO evt.effects (event_id, consumer) VALUES ($1, 'erased-handler')`, env.EventId)
		return err
	}
	cfg := testConsumerConfig("recorder")
	cfg.Cipher, cfg.SkipErased, cfg.Erased = erasedCipher{}, true, recordErased
	startConsumer(t, pool, b.js, cfg, effectHandler("recorder", &calls), m)
	plain := testConsumerConfig("plain")
	plain.Erased = recordErased // no cipher at all
	startConsumer(t, pool, b.js, plain, effectHandler("plain", &calls), m)

	sealed, raw := sealedEvent(t)
	publish(t, b.js, sealed.Type, raw, sealed.EventId)
	publish(t, b.js, sealed.Type, raw, sealed.EventId) // a re-send: the inbox absorbs it
	clear, _ := newEvent(t)
	tomb, err := proto.Marshal(Tombstone(clear))
	if err != nil {
		t.Fatal(err)
	}
	if !Erased(&eventsv1.Envelope{Sealed: &eventsv1.SealedPayload{KeyId: "x"}}) || Erased(sealed) {
		t.Fatal("Erased must tell a tombstone from a sealed payload")
	}
	publish(t, b.js, clear.Type, tomb, clear.EventId)
	// A case the recorder erased itself: its readable events go to the Erased handler too.
	if _, err := pool.Exec(ctx, `INSERT INTO evt.erased_cases (referral_id) VALUES ('r-erased') ON CONFLICT DO NOTHING`); err != nil {
		t.Fatal(err)
	}
	own, ownRaw, err := NewEnvelope("mash.referral.test-happened", "p1", "r-erased", 1, time.Now(), System("test"), &eventsv1.ReferralReceived{})
	if err != nil {
		t.Fatal(err)
	}
	publish(t, b.js, own.Type, ownRaw, own.EventId)
	settled(t, b.js, "recorder")
	settled(t, b.js, "plain")
	for _, id := range []string{sealed.EventId, clear.EventId, own.EventId} {
		if n := effects(t, pool, "erased-handler", id); n < 1 {
			t.Errorf("event %s not recorded through the Erased handler", id)
		}
	}
	// recorder: sealed, tombstone, own; plain: tombstone and own (no SkipErased: applied).
	if n := queryInt(t, pool, `SELECT count(*) FROM evt.inbox WHERE consumer = 'recorder'`); n != 3 {
		t.Errorf("recorder's inbox holds %d events, want 3", n)
	}
	// plain cannot read the (real) sealed event without a cipher: that one alone is its
	// dead letter, as before.
	letters := queryInt(t, pool, `SELECT count(*) FROM evt.dead_letter WHERE consumer = 'recorder' OR event_id <> $1`, sealed.EventId)
	if calls.Load() != 1 || sawPayload.Load() || letters != 0 {
		t.Errorf("ordinary handler ran %d times (want 1: plain, for the erased case's readable event), payload seen %v, %d dead letters",
			calls.Load(), sawPayload.Load(), letters)
	}
}
