package events

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/mash-hub/mash/pkg/tracing"
	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
)

// insertEventsInChunks fills the outbox with n events, 1000 per transaction, written
// under ctx (whose span, if any, each row keeps).
func insertEventsInChunks(b *testing.B, ctx context.Context, pool *pgxpool.Pool, n int) {
	for n > 0 {
		k := min(n, 1000)
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			batch := &pgx.Batch{}
			for range k {
				env, raw := newEvent(b)
				AppendOutbox(ctx, batch, testSchema, env, raw)
			}
			return tx.SendBatch(ctx, batch).Close()
		})
		if err != nil {
			b.Fatal(err)
		}
		n -= k
	}
}

// BenchmarkRelayPublish measures rows per second from the outbox to an acknowledged,
// fsynced (SyncAlways) JetStream message, including claiming and marking the rows.
func BenchmarkRelayPublish(b *testing.B) {
	benchRelay(b, context.Background(), context.Background())
}

// BenchmarkRelayPublishTraced is BenchmarkRelayPublish with tracing on: every row keeps a
// trace context and is published in a producer span whose context rides in the headers
// (spans go to an exporter that drops them, so the cost measured is mash's own).
func BenchmarkRelayPublishTraced(b *testing.B) {
	tr, err := tracing.New(context.Background(), tracing.Config{Exporter: tracetest.NewNoopExporter()})
	if err != nil {
		b.Fatal(err)
	}
	defer tr.Shutdown(context.Background()) //nolint:errcheck
	ctx := tracing.WithProvider(context.Background(), tr.Provider("bench"))
	wctx, span := tracing.Tracer(ctx).Start(ctx, "request")
	defer span.End()
	benchRelay(b, ctx, wctx)
}

// benchRelay relays b.N rows written under writeCtx, the relay running under ctx.
func benchRelay(b *testing.B, ctx, writeCtx context.Context) {
	pool := newTestPool(b)
	br := startBroker(b, b.TempDir())
	r := newTestRelay(b, pool, br.js, RelayConfig{}, nil)
	insertEventsInChunks(b, writeCtx, pool, b.N)
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
	benchConsumer(b, testConsumerConfig("bench"))
}

// BenchmarkConsumerBatched is BenchmarkConsumer with batching on: up to 32 waiting events
// per transaction, so one commit (one WAL flush) serves many.
func BenchmarkConsumerBatched(b *testing.B) {
	cfg := testConsumerConfig("bench")
	cfg.BatchSize, cfg.MaxAckPending = 32, 256
	benchConsumer(b, cfg)
}

// benchConsumer publishes b.N events, then times cfg's consumer acking them all.
func benchConsumer(b *testing.B, cfg ConsumerConfig) {
	pool := newTestPool(b)
	br := startBroker(b, b.TempDir())
	for i := range b.N {
		// Distinct cases, as in the pipeline: a batching consumer keeps each case on one
		// worker, so a single case would measure one worker alone.
		env, raw, err := NewEnvelope("mash.referral.test-happened", "p1", fmt.Sprintf("r%d", i), 1, time.Now(), System("test"), &eventsv1.ReferralReceived{})
		if err != nil {
			b.Fatal(err)
		}
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
	startConsumer(b, pool, br.js, cfg, effectHandler("bench", &calls), m)
	for metricValue(b, acked) < float64(b.N) {
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
