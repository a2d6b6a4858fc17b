package events

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	eventsv1 "mash/proto/mash/events/v1"
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
