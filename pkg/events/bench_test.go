package events

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// insertEventsInChunks fills the outbox with n events, 1000 per transaction.
func insertEventsInChunks(b *testing.B, pool *pgxpool.Pool, n int) {
	for n > 0 {
		k := min(n, 1000)
		insertEvents(b, pool, k)
		n -= k
	}
}

// BenchmarkRelayPublish measures rows per second from the outbox to an acknowledged,
// fsynced (SyncAlways) JetStream message, including claiming and marking the rows.
func BenchmarkRelayPublish(b *testing.B) {
	ctx := context.Background()
	pool := newTestPool(b)
	br := startBroker(b, b.TempDir())
	r := newTestRelay(b, pool, br.js, RelayConfig{}, nil)
	insertEventsInChunks(b, pool, b.N)
	b.ResetTimer()
	for {
		res, err := r.round(ctx, 30*time.Second)
		if err != nil {
			b.Fatal(err)
		}
		if res.claimed == 0 {
			break
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	if n := backlog(b, r); n != 0 {
		b.Fatalf("backlog %d", n)
	}
}

// BenchmarkConsumer measures events per second through a consumer whose handler writes one
// row: inbox insert, effect, commit and double ack per event.
func BenchmarkConsumer(b *testing.B) {
	pool := newTestPool(b)
	br := startBroker(b, b.TempDir())
	for i := range b.N {
		env, raw := newEvent(b)
		if _, err := br.js.PublishMsgAsync(&nats.Msg{Subject: env.Type, Data: raw}, jetstream.WithMsgID(env.EventId)); err != nil {
			b.Fatal(err)
		}
		if i%1000 == 999 || i == b.N-1 {
			select {
			case <-br.js.PublishAsyncComplete():
			case <-time.After(time.Minute):
				b.Fatal("publishing the benchmark events timed out")
			}
		}
	}
	var calls atomic.Int64
	m := NewMetrics(nil)
	acked := m.consumed.WithLabelValues("bench", resultOK)
	b.ResetTimer()
	startConsumer(b, pool, br.js, testConsumerConfig("bench"), effectHandler("bench", &calls), m)
	for metricValue(b, acked) < float64(b.N) {
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
