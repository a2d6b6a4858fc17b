package audit_test

import (
	"context"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	auditv1 "github.com/mash-hub/mash/proto/mash/audit/v1"

	"github.com/mash-hub/mash/services/audit/store"
	auditlog "github.com/mash-hub/mash/services/audit/tlog"
)

// reportLatencies reports p50 and p99 of ds in milliseconds.
func reportLatencies(b *testing.B, prefix string, ds []time.Duration) {
	slices.Sort(ds)
	ms := func(q float64) float64 { return float64(ds[int(q*float64(len(ds)-1))]) / float64(time.Millisecond) }
	b.ReportMetric(ms(0.50), prefix+"p50-ms")
	b.ReportMetric(ms(0.99), prefix+"p99-ms")
}

// BenchmarkTrail measures GetTrail of one referral among MASH_AUDIT_BENCH_ENTRIES entries
// (default 100,000; the goal is stated at 10,000,000), through the API (access entry written
// and committed, then the trail read) and the trail query alone.
// Run: go test -run '^$' -bench Trail -benchtime 2000x ./services/audit/
// At scale: MASH_AUDIT_BENCH_ENTRIES=10000000 go test -run '^$' -bench Trail -benchtime 2000x -timeout 60m ./services/audit/
func BenchmarkTrail(b *testing.B) {
	e := newEnv(b)
	entries := 100_000
	if v, err := strconv.Atoi(os.Getenv("MASH_AUDIT_BENCH_ENTRIES")); err == nil && v > 0 {
		entries = v
	}
	for done := 0; done < entries; done += 1_000_000 {
		insertPending(b, e, min(1_000_000, entries-done))
		e.sequenceAll(b)
	}
	referralID, envs, _ := story(b, e.now)
	e.record(b, envs...)
	e.sequenceAll(b)
	b.Logf("log holds %d entries", e.head(b).TreeSize)
	api := e.svc.API()
	ctx := context.Background()
	// b.Loop runs this function once, so the log is built once whatever the iterations.
	var api_, query []time.Duration
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		resp, err := api.GetTrail(auditor, &auditv1.GetTrailRequest{ReferralId: referralID})
		if err != nil || len(resp.GetEntries()) < 4 {
			b.Fatal(err)
		}
		api_ = append(api_, time.Since(start))
		start = time.Now()
		if _, err := store.Trail(ctx, e.pool, referralID, "", -1, 101); err != nil {
			b.Fatal(err)
		}
		query = append(query, time.Since(start))
	}
	b.StopTimer()
	reportLatencies(b, "api-", api_)
	reportLatencies(b, "query-", query)
}

// BenchmarkProveInclusion100k measures inclusion proof generation for random entries of a
// 100,000-entry log against its checkpoint: the API call (access entry, leaf, proof from
// stored hashes) and the proof alone from the stored hashes (one query).
// Run: go test -run '^$' -bench ProveInclusion100k -benchtime 2000x ./services/audit/
func BenchmarkProveInclusion100k(b *testing.B) {
	const entries = 100_000
	e := newEnv(b)
	insertPending(b, e, entries)
	e.sequenceAll(b)
	e.sign(b)
	api := e.svc.API()
	hashes := store.TreeHashes{Ctx: context.Background(), Pool: e.pool}
	apiLat := make([]time.Duration, 0, b.N)
	proofLat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		seq := rand.Int64N(entries)
		start := time.Now()
		if _, err := api.ProveInclusion(auditor, &auditv1.ProveInclusionRequest{Seq: seq, TreeSize: entries}); err != nil {
			b.Fatal(err)
		}
		apiLat = append(apiLat, time.Since(start))
		start = time.Now()
		if _, err := auditlog.InclusionProof(hashes, entries, seq); err != nil {
			b.Fatal(err)
		}
		proofLat = append(proofLat, time.Since(start))
	}
	b.StopTimer()
	reportLatencies(b, "api-", apiLat)
	reportLatencies(b, "proof-", proofLat)
}
