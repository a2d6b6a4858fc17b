package audit_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mash-hub/mash/services/audit"
	"github.com/mash-hub/mash/services/audit/store"
)

// BenchmarkAppend measures entries per second through the sequencer: pending rows read,
// leaves marshalled, tree hashes appended, root recomputed, entries and hashes copied in,
// pending deleted and the head advanced, in batches of 1000 (the default).
// Run: go test -run '^$' -bench Append -benchtime 100000x ./services/audit/
func BenchmarkAppend(b *testing.B) {
	e := newEnv(b)
	insertPending(b, e, b.N)
	ctx := context.Background()
	b.ResetTimer()
	start := time.Now()
	for {
		n, err := audit.AppendBatch(ctx, e.pool, audit.DefaultBatchSize)
		if err != nil {
			b.Fatal(err)
		}
		if n == 0 {
			break
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "entries/s")
	if h := e.head(b); h.TreeSize != int64(b.N) {
		b.Fatalf("tree size %d, want %d", h.TreeSize, b.N)
	}
}

// BenchmarkVerifyDatabase100k measures VerifyDatabase over 100,000 entries: the checkpoint
// opened, every row streamed, the tree recomputed and compared.
// Run: go test -run '^$' -bench VerifyDatabase ./services/audit/
func BenchmarkVerifyDatabase100k(b *testing.B) {
	const entries = 100_000
	e := newEnv(b)
	insertPending(b, e, entries)
	e.sequenceAll(b)
	ctx := context.Background()
	if _, err := e.svc.SignCheckpoint(ctx); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		rep, err := audit.VerifyDatabase(ctx, e.pool, e.vkey, origin)
		if err != nil || rep.Entries != entries {
			b.Fatalf("%+v, %v", rep, err)
		}
	}
	b.ReportMetric(float64(entries)*float64(b.N)/b.Elapsed().Seconds(), "entries/s")
}

// BenchmarkConsumerAppend measures entries per second through the whole audit path: b.N
// events (referral stories: received, recommended, confirmed, decided, each with a
// payload) already on the embedded JetStream stream are consumed by the real consumer
// (inbox row, payload sealed under the case key, pending entry, one transaction each) and
// appended by the running sequencer, timed from the service's start until the tree holds
// them all.
// Run: go test -run '^$' -bench ConsumerAppend -benchtime 20000x ./services/audit/
func BenchmarkConsumerAppend(b *testing.B) {
	e := newEnv(b)
	publishStories(b, e, b.N)
	b.ResetTimer()
	start := time.Now()
	e.run(b)
	waitForTree(b, e, b.N)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "entries/s")
}

// BenchmarkVerifyDatabaseStories measures VerifyDatabase over 50,000 entries made as in
// production, by the consumer from referral stories: unlike BenchmarkVerifyDatabase100k's
// bare entries, each row has a sealed payload whose digest the verifier checks.
// Run: go test -run '^$' -bench VerifyDatabaseStories -benchtime 3x ./services/audit/
func BenchmarkVerifyDatabaseStories(b *testing.B) {
	const entries = 50_000
	e := newEnv(b)
	publishStories(b, e, entries)
	e.run(b)
	waitForTree(b, e, entries)
	ctx := context.Background()
	if _, err := e.svc.SignCheckpoint(ctx); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		rep, err := audit.VerifyDatabase(ctx, e.pool, e.vkey, origin)
		if err != nil || rep.Entries < entries {
			b.Fatalf("%+v, %v", rep, err)
		}
	}
	b.ReportMetric(float64(entries)*float64(b.N)/b.Elapsed().Seconds(), "entries/s")
}

// publishStories puts n events of referral stories on the stream, waiting for the broker.
func publishStories(b *testing.B, e *env, n int) {
	b.Helper()
	var acks []jetstream.PubAckFuture
	for published := 0; published < n; {
		_, envs, raws := story(b, e.now)
		for i := range envs {
			if published == n {
				break
			}
			f, err := e.js.PublishAsync(envs[i].GetType(), raws[i], jetstream.WithMsgID(envs[i].GetEventId()))
			if err != nil {
				b.Fatal(err)
			}
			acks = append(acks, f)
			published++
		}
		if len(acks) >= 1000 || published == n {
			for _, f := range acks {
				select {
				case <-f.Ok():
				case err := <-f.Err():
					b.Fatal(err)
				}
			}
			acks = acks[:0]
		}
	}
}

// waitForTree waits until the log holds n entries.
func waitForTree(b *testing.B, e *env, n int) {
	b.Helper()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	deadline := time.Now().Add(10 * time.Minute)
	for range tick.C {
		h, err := store.ReadHead(context.Background(), e.pool)
		if err != nil {
			b.Fatal(err)
		}
		if h.TreeSize >= int64(n) {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d entries appended after 10 minutes", h.TreeSize, n)
		}
	}
}
