package auditlog

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"
	"golang.org/x/mod/sumdb/tlog"
)

func hexHash(t *testing.T, s string) tlog.Hash {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != tlog.HashSize {
		t.Fatalf("bad test hash %q", s)
	}
	return tlog.Hash(b)
}

// TestRootKnownAnswers uses the RFC 6962 reference vectors (from the Certificate
// Transparency reference implementation, also in transparency-dev/merkle/testonly),
// written out here so the test does not trust any library for the expected values.
func TestRootKnownAnswers(t *testing.T) {
	t.Parallel()
	inputs := []string{"", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"}
	roots := []string{
		"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", // SHA-256(""): the empty tree
		"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
		"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
		"aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
		"d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
		"4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
		"76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
		"ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
		"5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
	}
	var m MemoryHashes
	for i, in := range inputs {
		leaf, _ := hex.DecodeString(in)
		if err := m.Append(LeafHash(leaf)); err != nil {
			t.Fatal(err)
		}
		if i == 0 && LeafHash(leaf) != hexHash(t, roots[1]) {
			t.Fatalf("LeafHash(empty) = %x, want %s", LeafHash(leaf), roots[1])
		}
	}
	for size, want := range roots {
		if got := mustRoot(t, m, int64(size)); got != hexHash(t, want) {
			t.Errorf("root of %d leaves = %x, want %s", size, got, want)
		}
	}
	if got := mustRoot(t, MemoryHashes(nil), 0); got != hexHash(t, roots[0]) {
		t.Errorf("empty root = %x", got)
	}
}

// TestCrossCheckTransparencyDev compares roots and proofs with transparency-dev/merkle for
// every tree size 1..64, every leaf index and every old size: ours must equal theirs hash
// for hash, and each side must accept the other's proofs.
func TestCrossCheckTransparencyDev(t *testing.T) {
	t.Parallel()
	const maxSize = 64
	leaves := sampleLeaves(maxSize)
	m := buildTree(t, leaves)
	ref := testonly.New(rfc6962.DefaultHasher)
	ref.AppendData(leaves...)
	hasher := rfc6962.DefaultHasher

	roots := make([]tlog.Hash, maxSize+1)
	for size := range int64(maxSize + 1) {
		roots[size] = mustRoot(t, m, size)
		if !bytes.Equal(roots[size][:], ref.HashAt(uint64(size))) {
			t.Fatalf("root of %d differs: ours %x, theirs %x", size, roots[size], ref.HashAt(uint64(size)))
		}
	}
	for size := int64(1); size <= maxSize; size++ {
		for index := range size {
			ours, err := InclusionProof(m, size, index)
			if err != nil {
				t.Fatal(err)
			}
			theirs, err := ref.InclusionProof(uint64(index), uint64(size))
			if err != nil {
				t.Fatal(err)
			}
			if !equalProof(ours, theirs) {
				t.Fatalf("inclusion proof %d/%d differs", index, size)
			}
			leafHash := LeafHash(leaves[index])
			if err := proof.VerifyInclusion(hasher, uint64(index), uint64(size), leafHash[:], toBytes(ours), roots[size][:]); err != nil {
				t.Fatalf("transparency-dev rejects our inclusion proof %d/%d: %v", index, size, err)
			}
			if err := VerifyInclusion(fromBytes(theirs), size, index, roots[size], leafHash); err != nil {
				t.Fatalf("we reject transparency-dev's inclusion proof %d/%d: %v", index, size, err)
			}
		}
		for old := range size + 1 {
			ours, err := ConsistencyProof(m, size, old)
			if err != nil {
				t.Fatal(err)
			}
			theirs, err := ref.ConsistencyProof(uint64(old), uint64(size))
			if err != nil {
				t.Fatal(err)
			}
			if !equalProof(ours, theirs) {
				t.Fatalf("consistency proof %d->%d differs: ours %d hashes, theirs %d", old, size, len(ours), len(theirs))
			}
			if err := proof.VerifyConsistency(hasher, uint64(old), uint64(size), toBytes(ours), roots[old][:], roots[size][:]); err != nil {
				t.Fatalf("transparency-dev rejects our consistency proof %d->%d: %v", old, size, err)
			}
			if err := VerifyConsistency(fromBytes(theirs), size, old, roots[size], roots[old]); err != nil {
				t.Fatalf("we reject transparency-dev's consistency proof %d->%d: %v", old, size, err)
			}
			if old > 0 && old < size {
				// A wrong old root must fail on both sides.
				bad := roots[old-1]
				if VerifyConsistency(ours, size, old, roots[size], bad) == nil ||
					proof.VerifyConsistency(hasher, uint64(old), uint64(size), toBytes(ours), bad[:], roots[size][:]) == nil {
					t.Fatalf("consistency %d->%d accepted a wrong old root", old, size)
				}
			}
		}
	}
}

func equalProof(ours []tlog.Hash, theirs [][]byte) bool {
	if len(ours) != len(theirs) {
		return false
	}
	for i := range ours {
		if !bytes.Equal(ours[i][:], theirs[i]) {
			return false
		}
	}
	return true
}

func toBytes(p []tlog.Hash) [][]byte {
	out := make([][]byte, len(p))
	for i := range p {
		out[i] = p[i][:]
	}
	return out
}

func fromBytes(p [][]byte) []tlog.Hash {
	out := make([]tlog.Hash, len(p))
	for i := range p {
		out[i] = tlog.Hash(p[i])
	}
	return out
}

// TestAppendMatchesTlog checks the allocation-free Append against tlog.StoredHashes.
func TestAppendMatchesTlog(t *testing.T) {
	t.Parallel()
	leaves := sampleLeaves(300)
	var ours, theirs MemoryHashes
	for i, leaf := range leaves {
		if got := ours.Size(); got != int64(i) {
			t.Fatalf("Size = %d, want %d", got, i)
		}
		if err := ours.Append(LeafHash(leaf)); err != nil {
			t.Fatal(err)
		}
		hs, err := tlog.StoredHashes(int64(i), leaf, theirs)
		if err != nil {
			t.Fatal(err)
		}
		theirs = append(theirs, hs...)
		if len(ours) != len(theirs) || int64(len(ours)) != tlog.StoredHashCount(int64(i+1)) {
			t.Fatalf("after %d leaves: %d stored hashes, tlog %d", i+1, len(ours), len(theirs))
		}
	}
	for i := range ours {
		if ours[i] != theirs[i] {
			t.Fatalf("stored hash %d differs", i)
		}
	}
	if _, err := ours.ReadHashes([]int64{int64(len(ours))}); err == nil {
		t.Fatal("ReadHashes past the end succeeded")
	}
	if _, err := ours.ReadHashes([]int64{-1}); err == nil {
		t.Fatal("ReadHashes(-1) succeeded")
	}
}

func TestProofArgumentErrors(t *testing.T) {
	t.Parallel()
	m := buildTree(t, sampleLeaves(8))
	root := mustRoot(t, m, 8)
	leaf := LeafHash(sampleLeaves(1)[0])
	if _, err := Root(m, -1); err == nil {
		t.Error("Root(-1) succeeded")
	}
	if _, err := Root(m, 9); err == nil {
		t.Error("Root beyond the stored tree succeeded")
	}
	for _, c := range []struct{ size, index int64 }{{0, 0}, {8, 8}, {8, -1}, {-1, 0}, {MaxTreeSize + 1, 0}} {
		if _, err := InclusionProof(m, c.size, c.index); err == nil {
			t.Errorf("InclusionProof(%d, %d) succeeded", c.size, c.index)
		}
		if err := VerifyInclusion(nil, c.size, c.index, root, leaf); !errors.Is(err, ErrInvalidProof) {
			t.Errorf("VerifyInclusion(%d, %d) = %v", c.size, c.index, err)
		}
	}
	for _, c := range []struct{ newSize, oldSize int64 }{{4, 5}, {4, -1}, {MaxTreeSize + 1, 1}} {
		if _, err := ConsistencyProof(m, c.newSize, c.oldSize); err == nil {
			t.Errorf("ConsistencyProof(%d, %d) succeeded", c.newSize, c.oldSize)
		}
		if err := VerifyConsistency(nil, c.newSize, c.oldSize, root, root); !errors.Is(err, ErrInvalidProof) {
			t.Errorf("VerifyConsistency(%d, %d) = %v", c.newSize, c.oldSize, err)
		}
	}
	// Sizes near 2^62 must fail fast, not loop in the tlog arithmetic.
	if err := VerifyInclusion(make(tlog.RecordProof, 62), MaxTreeSize, MaxTreeSize-1, root, leaf); !errors.Is(err, ErrInvalidProof) {
		t.Errorf("VerifyInclusion at MaxTreeSize = %v", err)
	}
	if err := VerifyConsistency(make(tlog.TreeProof, 63), MaxTreeSize, MaxTreeSize-1, root, root); !errors.Is(err, ErrInvalidProof) {
		t.Errorf("VerifyConsistency at MaxTreeSize = %v", err)
	}
	tooLong := make(tlog.RecordProof, MaxProofHashes+1)
	if err := VerifyInclusion(tooLong, 8, 0, root, leaf); !errors.Is(err, ErrInvalidProof) {
		t.Errorf("VerifyInclusion accepted %d hashes: %v", len(tooLong), err)
	}
	// The empty tree: any tree extends it, but only from the real empty root.
	if err := VerifyConsistency(nil, 8, 0, root, emptyRoot); err != nil {
		t.Errorf("consistency from the empty tree: %v", err)
	}
	if err := VerifyConsistency(nil, 8, 0, root, root); err == nil {
		t.Error("consistency from a size-0 tree with a non-empty root succeeded")
	}
	if err := VerifyConsistency(tlog.TreeProof{root}, 8, 0, root, emptyRoot); err == nil {
		t.Error("consistency from the empty tree with a non-empty proof succeeded")
	}
	if err := VerifyConsistency(nil, 0, 0, root, emptyRoot); err == nil {
		t.Error("two empty trees with different roots are consistent")
	}
	if err := VerifyConsistency(nil, 8, 8, root, mustRoot(t, m, 7)); err == nil {
		t.Error("two different roots of the same size are consistent")
	}
}

func TestDecodeProof(t *testing.T) {
	t.Parallel()
	m := buildTree(t, sampleLeaves(37))
	p, err := InclusionProof(m, 37, 5)
	if err != nil {
		t.Fatal(err)
	}
	enc := EncodeProof(p)
	if got, err := DecodeProof(enc); err != nil || !equalHashes(got, p) {
		t.Fatalf("DecodeProof(EncodeProof(p)) = %v, %v", got, err)
	}
	if got, err := DecodeProof(""); err != nil || len(got) != 0 {
		t.Fatalf("DecodeProof(\"\") = %v, %v", got, err)
	}
	full := EncodeProof(make([]tlog.Hash, MaxProofHashes))
	if got, err := DecodeProof(full); err != nil || len(got) != MaxProofHashes {
		t.Fatalf("DecodeProof of %d hashes = %d, %v", MaxProofHashes, len(got), err)
	}
	one := EncodeProof([]tlog.Hash{{1, 2, 3}})
	tests := []struct{ name, s string }{
		{"too many hashes", EncodeProof(make([]tlog.Hash, MaxProofHashes+1))},
		{"31 bytes", one[:40] + "AA=="},
		{"33 bytes", EncodeProof(nil) + "AQIDAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
		{"spare bits set", one[:42] + "B="},
		{"no padding", strings.TrimRight(one, "=")},
		{"newline inside", one[:20] + "\n" + one[20:]},
		{"trailing newline", one + "\n"},
		{"CR", "\r" + one},
		{"space", " " + one},
		{"URL-safe alphabet", strings.NewReplacer("+", "-", "/", "_").Replace(enc)},
		{"not base64", "!!!!"},
		{"hex", hex.EncodeToString(p[0][:])},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got, err := DecodeProof(tt.s); err == nil {
				t.Fatalf("DecodeProof(%q) = %d hashes, want an error", tt.s, len(got))
			}
		})
	}
}

func equalHashes(a, b []tlog.Hash) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestInclusionProofEveryBitFlip flips each bit of an inclusion proof in a 37-leaf tree, of
// its export encoding, of the leaf hash and of the root, for several leaves; not one of the
// results may verify.
func TestInclusionProofEveryBitFlip(t *testing.T) {
	t.Parallel()
	const size = 37
	leaves := sampleLeaves(size)
	m := buildTree(t, leaves)
	root := mustRoot(t, m, size)
	for _, index := range []int64{0, 1, 17, 31, 32, 35, 36} {
		p, err := InclusionProof(m, size, index)
		if err != nil {
			t.Fatal(err)
		}
		leafHash := LeafHash(leaves[index])
		if err := VerifyInclusion(p, size, index, root, leafHash); err != nil {
			t.Fatalf("leaf %d: %v", index, err)
		}
		var raw []byte
		for _, h := range p {
			raw = append(raw, h[:]...)
		}
		for bit := range len(raw) * 8 {
			flipped := fromBytes(split32(flipBit(raw, bit)))
			if VerifyInclusion(flipped, size, index, root, leafHash) == nil {
				t.Errorf("leaf %d: proof bit %d flipped still verifies", index, bit)
			}
		}
		enc := []byte(EncodeProof(p))
		for bit := range len(enc) * 8 {
			decoded, err := DecodeProof(string(flipBit(enc, bit)))
			if err == nil && VerifyInclusion(decoded, size, index, root, leafHash) == nil {
				t.Errorf("leaf %d: encoded proof bit %d flipped still verifies", index, bit)
			}
		}
		for bit := range tlog.HashSize * 8 {
			if VerifyInclusion(p, size, index, root, tlog.Hash(flipBit(leafHash[:], bit))) == nil {
				t.Errorf("leaf %d: leaf hash bit %d flipped still verifies", index, bit)
			}
			if VerifyInclusion(p, size, index, tlog.Hash(flipBit(root[:], bit)), leafHash) == nil {
				t.Errorf("leaf %d: root bit %d flipped still verifies", index, bit)
			}
		}
		for _, other := range []int64{index - 1, index + 1} {
			if other >= 0 && other < size && VerifyInclusion(p, size, other, root, leafHash) == nil {
				t.Errorf("proof for leaf %d also proves leaf %d", index, other)
			}
		}
	}
}

// TestConsistencyProofEveryBitFlip does the same for consistency proofs into a 37-leaf tree.
func TestConsistencyProofEveryBitFlip(t *testing.T) {
	t.Parallel()
	const size = 37
	m := buildTree(t, sampleLeaves(size))
	newRoot := mustRoot(t, m, size)
	for _, old := range []int64{1, 5, 16, 32, 36} {
		oldRoot := mustRoot(t, m, old)
		p, err := ConsistencyProof(m, size, old)
		if err != nil {
			t.Fatal(err)
		}
		if err := VerifyConsistency(p, size, old, newRoot, oldRoot); err != nil {
			t.Fatalf("%d->%d: %v", old, size, err)
		}
		enc := []byte(EncodeProof(p))
		for bit := range len(enc) * 8 {
			decoded, err := DecodeProof(string(flipBit(enc, bit)))
			if err == nil && VerifyConsistency(decoded, size, old, newRoot, oldRoot) == nil {
				t.Errorf("%d->%d: encoded proof bit %d flipped still verifies", old, size, bit)
			}
		}
		for bit := range tlog.HashSize * 8 {
			if VerifyConsistency(p, size, old, tlog.Hash(flipBit(newRoot[:], bit)), oldRoot) == nil ||
				VerifyConsistency(p, size, old, newRoot, tlog.Hash(flipBit(oldRoot[:], bit))) == nil {
				t.Errorf("%d->%d: root bit %d flipped still verifies", old, size, bit)
			}
		}
	}
}

func split32(b []byte) [][]byte {
	var out [][]byte
	for len(b) >= tlog.HashSize {
		out = append(out, b[:tlog.HashSize])
		b = b[tlog.HashSize:]
	}
	return out
}
