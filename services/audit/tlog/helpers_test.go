package auditlog

import (
	"crypto/sha256"
	"fmt"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"
)

// testOrigin is the origin of every test checkpoint.
const testOrigin = "mash.example/audit"

// testSKey and testVKey are a fixed test key pair (made once with GenerateKey) so golden
// signed checkpoints stay byte-for-byte stable. Never used outside tests.
const (
	testSKey = "PRIVATE+KEY+mash.example/audit+39ccfc09+AX+4PHzQVLG9poiD9fN52vh6OlDLKaHm/oeE96fTnoL8"
	testVKey = "mash.example/audit+39ccfc09+AcJ47QqHzj2+GhS3w9VDfB0k/0rnjirw21Vk1WBcoSEx"
)

var testTime = time.Date(2026, 3, 2, 9, 15, 30, 0, time.UTC)

// sampleEntry is a realistic entry for position i: ids and codes, no personal data.
func sampleEntry(i int64) Entry {
	return Entry{
		Seq:           i,
		EventID:       fmt.Sprintf("01J9Z8Q4K3V7N2M5P6R8T%05d", i),
		EventType:     "mash.events.v1.DecisionRecorded",
		OccurredAt:    testTime.Add(time.Duration(i) * time.Second),
		RecordedAt:    testTime.Add(time.Duration(i)*time.Second + 250*time.Millisecond),
		Partnership:   "northshire",
		ReferralID:    fmt.Sprintf("ref-%06d", i/3),
		ChildID:       fmt.Sprintf("child-%06d", i/5),
		Actor:         "user-55",
		ActorRole:     "mash-manager",
		Agency:        "northshire-csc",
		PackVersion:   "2026.03.1",
		Decision:      "strategy-discussion",
		PayloadSHA256: sha256.Sum256(fmt.Appendf(nil, "encrypted payload %d", i)),
	}
}

// sampleLeaves returns the leaf bytes of n sample entries.
func sampleLeaves(n int64) [][]byte {
	leaves := make([][]byte, n)
	for i := range leaves {
		leaves[i] = sampleEntry(int64(i)).MarshalLeaf()
	}
	return leaves
}

// buildTree returns the stored hashes of a tree over leaves.
func buildTree(tb testing.TB, leaves [][]byte) MemoryHashes {
	tb.Helper()
	var m MemoryHashes
	for _, l := range leaves {
		if err := m.Append(LeafHash(l)); err != nil {
			tb.Fatal(err)
		}
	}
	return m
}

// mustRoot is Root for tests.
func mustRoot(tb testing.TB, r tlog.HashReader, size int64) tlog.Hash {
	tb.Helper()
	h, err := Root(r, size)
	if err != nil {
		tb.Fatal(err)
	}
	return h
}

// signedCheckpoint signs a checkpoint over the first size leaves of m with the test key.
func signedCheckpoint(tb testing.TB, m MemoryHashes, size int64) (Checkpoint, []byte) {
	tb.Helper()
	s, err := NewSigner(testSKey)
	if err != nil {
		tb.Fatal(err)
	}
	cp := Checkpoint{Origin: testOrigin, Size: size, Root: mustRoot(tb, m, size), Time: testTime}
	signed, err := s.Sign(cp)
	if err != nil {
		tb.Fatal(err)
	}
	return cp, signed
}

// flipBit returns a copy of b with one bit flipped.
func flipBit(b []byte, bit int) []byte {
	c := append([]byte(nil), b...)
	c[bit/8] ^= 1 << (bit % 8)
	return c
}
