package exportfile

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	auditlog "github.com/mash-hub/mash/services/audit/tlog"
)

const fuzzOrigin = "mash.test/audit-fuzz"

// zeroReader makes note.GenerateKey deterministic, so every fuzz worker process has the
// same key and the seed's signature verifies in all of them.
type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// fuzzExport builds an export with the exporter's own line encoders: n entries (every
// third one redacted), a signed checkpoint of the whole tree and a proof for each entry.
func fuzzExport(tb testing.TB, n int) (export []byte, vkey string) {
	tb.Helper()
	skey, vkey, err := note.GenerateKey(zeroReader{}, fuzzOrigin)
	if err != nil {
		tb.Fatal(err)
	}
	signer, err := auditlog.NewSigner(skey)
	if err != nil {
		tb.Fatal(err)
	}
	at := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	var mem auditlog.MemoryHashes
	var buf bytes.Buffer
	for i := range n {
		e := auditlog.Entry{Seq: int64(i), EventID: fmt.Sprintf("00000000-0000-7000-8000-%012d", i), EventType: "mash.triage.decided",
			OccurredAt: at, RecordedAt: at, Partnership: "rct", ReferralID: "ref-1", ChildID: "child-1", Actor: "rules",
			ActorRole: "system", PackVersion: "2026.1", Decision: "LEVEL_3A/RAG_AMBER", PayloadSHA256: sha256.Sum256([]byte{byte(i)})}
		leaf := e.MarshalLeaf()
		if err := mem.Append(auditlog.LeafHash(leaf)); err != nil {
			tb.Fatal(err)
		}
		buf.Write(EntryLine(int64(i), leaf, i%3 == 0))
		buf.WriteByte('\n')
	}
	root, err := auditlog.Root(mem, int64(n))
	if err != nil {
		tb.Fatal(err)
	}
	signed, err := signer.Sign(auditlog.Checkpoint{Origin: fuzzOrigin, Size: int64(n), Root: root, Time: at})
	if err != nil {
		tb.Fatal(err)
	}
	buf.Write(CheckpointLine(string(signed)))
	buf.WriteByte('\n')
	for i := range n {
		p, err := auditlog.InclusionProof(mem, int64(n), int64(i))
		if err != nil {
			tb.Fatal(err)
		}
		buf.Write(ProofLine(int64(i), []tlog.Hash(p)))
		buf.WriteByte('\n')
	}
	return buf.Bytes(), vkey
}

// FuzzVerifyExport feeds arbitrary bytes to the export decoder and verifier, seeded with
// an export written by the exporter's encoders (the database path is covered by
// audit.TestExportVerifiesAndNamesAlteredEntry) and damaged copies of it. It must never panic,
// never pass a report naming a failure, and every single-bit flip of the seed must fail.
// Run: go test -run '^$' -fuzz FuzzVerifyExport ./services/audit/exportfile/
func FuzzVerifyExport(f *testing.F) {
	seed, vkey := fuzzExport(f, 7)
	rep, err := Verify(bytes.NewReader(seed), vkey, fuzzOrigin)
	if err != nil || rep.Entries != 7 || rep.Redacted != 3 {
		f.Fatalf("seed export: %+v, %v", rep, err)
	}
	f.Add(seed)
	f.Add(seed[:len(seed)/2])
	f.Add(bytes.Replace(seed, []byte(`"redacted":true,`), nil, 1))
	f.Add([]byte(`{"type":"checkpoint","note":""}` + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		rep, err := Verify(bytes.NewReader(data), vkey, fuzzOrigin)
		if err != nil {
			if rep.FirstBad >= 0 && rep.Reason == "" {
				t.Fatalf("named entry %d without a reason", rep.FirstBad)
			}
			return
		}
		if rep.FirstBad != -1 || rep.Redacted > rep.Entries || rep.Entries > rep.TreeSize {
			t.Fatalf("passed with an inconsistent report %+v", rep)
		}
	})
}

// Every single-bit flip of an export's entry and proof lines is caught, as a bad export or
// a named entry (the signed note's flips are auditlog's checkpoint tests).
func TestVerifyExportEveryBitFlip(t *testing.T) {
	seed, vkey := fuzzExport(t, 5)
	cpStart := bytes.Index(seed, []byte(`{"type":"checkpoint"`))
	cpEnd := cpStart + bytes.IndexByte(seed[cpStart:], '\n')
	passed := 0
	for i := range len(seed) {
		if i >= cpStart && i < cpEnd {
			continue // the signed note: covered by auditlog's checkpoint tests
		}
		for bit := range 8 {
			d := bytes.Clone(seed)
			d[i] ^= 1 << bit
			if _, err := Verify(bytes.NewReader(d), vkey, fuzzOrigin); err == nil {
				passed++
				t.Errorf("flip of bit %d of byte %d (%q) passed", bit, i, seed[i])
			}
		}
	}
	t.Logf("%d of %d flips passed", passed, 8*(len(seed)-(cpEnd-cpStart)))
}
