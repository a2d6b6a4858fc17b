package audit_test

import (
	"context"
	"testing"
	"time"

	"mash/services/audit"
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
