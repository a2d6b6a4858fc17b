package auditlog

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"math/bits"
	"slices"

	"golang.org/x/mod/sumdb/tlog"
)

// MaxProofHashes bounds a decoded or verified proof. A proof in a tree of at most
// [MaxTreeSize] leaves has at most 63 hashes; the bound stops a hostile export file from
// making the verifier work on megabytes of "proof".
const MaxProofHashes = 64

// ErrInvalidProof is wrapped by every proof verification failure, so callers can tell a
// proof that does not verify from a malformed request.
var ErrInvalidProof = errors.New("auditlog: invalid proof")

// emptyRoot is the RFC 6962 root of the empty tree, SHA-256 of the empty string.
var emptyRoot tlog.Hash = sha256.Sum256(nil)

// MemoryHashes holds a tree's stored hashes in memory, in tlog stored-hash order
// (tlog.StoredHashIndex): the same layout the audit service keeps in Postgres, so code
// under test and the offline verifier read trees the way the service does. It implements
// tlog.HashReader. A tree of n leaves takes 2n - popcount(n) hashes, 64 MB per million.
type MemoryHashes []tlog.Hash

// ReadHashes returns the stored hashes at the given indexes; it implements tlog.HashReader.
func (m MemoryHashes) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		if x < 0 || x >= int64(len(m)) {
			return nil, fmt.Errorf("auditlog: stored hash %d not in memory (have %d)", x, len(m))
		}
		out[i] = m[x]
	}
	return out, nil
}

// Size returns the number of leaves whose hashes m holds.
func (m MemoryHashes) Size() int64 {
	// A tree of n leaves stores f(n) = 2n - popcount(n) hashes and f is strictly increasing,
	// so the answer is the largest n with f(n) <= len(m); it lies within 32 of len(m)/2.
	total := int64(len(m))
	n := total / 2
	for 2*(n+1)-int64(bits.OnesCount64(uint64(n+1))) <= total {
		n++
	}
	return n
}

// Append adds the leaf hash of the next leaf, and the hashes of every subtree that leaf
// completes, exactly as tlog.StoredHashesForRecordHash would (the tests check this), but
// without allocating per leaf: the verifier appends a million leaves in one pass.
func (m *MemoryHashes) Append(leafHash tlog.Hash) error {
	n := m.Size()
	if n >= MaxTreeSize {
		return fmt.Errorf("auditlog: tree is full at %d leaves", n)
	}
	*m = append(roomForHashes(*m, 1+bits.TrailingZeros64(uint64(n+1))), leafHash)
	h := leafHash
	// Each trailing 1 bit of n means leaf n closes a subtree whose left half is stored.
	for level := 0; (n>>level)&1 == 1; level++ {
		h = tlog.NodeHash((*m)[tlog.StoredHashIndex(level, n>>level-1)], h)
		*m = append(*m, h)
	}
	return nil
}

// roomForHashes makes room for n more hashes, doubling the capacity when it runs out. Plain
// append grows large slices by only 1.25x, which copies a million-leaf tree about five
// times over.
func roomForHashes(s []tlog.Hash, n int) []tlog.Hash {
	if cap(s)-len(s) < n {
		s = slices.Grow(s, max(len(s), 1024))
	}
	return s
}

// Root returns the RFC 6962 root hash of the first size leaves of the tree that r stores.
// The root of the empty tree is SHA-256 of the empty string.
func Root(r tlog.HashReader, size int64) (tlog.Hash, error) {
	if size < 0 || size > MaxTreeSize {
		return tlog.Hash{}, fmt.Errorf("auditlog: tree size %d out of range", size)
	}
	if size == 0 {
		return emptyRoot, nil
	}
	h, err := tlog.TreeHash(size, r)
	if err != nil {
		return tlog.Hash{}, fmt.Errorf("auditlog: root of %d leaves: %w", size, err)
	}
	return h, nil
}

// InclusionProof returns the RFC 6962 audit path proving that leaf index is in the tree of
// the given size, ordered from the leaf's sibling up to the root's child.
func InclusionProof(r tlog.HashReader, size, index int64) (tlog.RecordProof, error) {
	if size < 1 || size > MaxTreeSize || index < 0 || index >= size {
		return nil, fmt.Errorf("auditlog: no inclusion proof for leaf %d in tree of %d", index, size)
	}
	p, err := tlog.ProveRecord(size, index, r)
	if err != nil {
		return nil, fmt.Errorf("auditlog: inclusion proof for leaf %d in tree of %d: %w", index, size, err)
	}
	return p, nil
}

// VerifyInclusion checks that proof shows the leaf with hash leafHash at index in the tree
// of the given size with the given root. size and root must come from a checkpoint whose
// signature was checked: a proof binds the leaf to a root, and only the signature binds the
// root to the log.
func VerifyInclusion(proof tlog.RecordProof, size, index int64, root, leafHash tlog.Hash) error {
	if size < 1 || size > MaxTreeSize || index < 0 || index >= size {
		return fmt.Errorf("%w: leaf %d cannot be in a tree of %d", ErrInvalidProof, index, size)
	}
	if len(proof) > MaxProofHashes {
		return fmt.Errorf("%w: %d hashes", ErrInvalidProof, len(proof))
	}
	if err := tlog.CheckRecord(proof, size, root, index, leafHash); err != nil {
		return fmt.Errorf("%w: leaf %d in tree of %d: %v", ErrInvalidProof, index, size, err)
	}
	return nil
}

// ConsistencyProof returns the RFC 6962 proof that the tree of oldSize leaves is a prefix
// of the tree of newSize leaves. It is empty when oldSize is 0 or equals newSize (RFC 9162
// section 2.1.4).
func ConsistencyProof(r tlog.HashReader, newSize, oldSize int64) (tlog.TreeProof, error) {
	if oldSize < 0 || oldSize > newSize || newSize > MaxTreeSize {
		return nil, fmt.Errorf("auditlog: no consistency proof from %d to %d leaves", oldSize, newSize)
	}
	if oldSize == 0 || oldSize == newSize {
		return tlog.TreeProof{}, nil
	}
	p, err := tlog.ProveTree(newSize, oldSize, r)
	if err != nil {
		return nil, fmt.Errorf("auditlog: consistency proof from %d to %d leaves: %w", oldSize, newSize, err)
	}
	return p, nil
}

// VerifyConsistency checks that proof shows the tree (oldSize, oldRoot) is a prefix of the
// tree (newSize, newRoot). The empty tree is a prefix of every tree, with an empty proof,
// but only if oldRoot is the empty-tree root: a size-0 head claiming any other root is
// already wrong.
func VerifyConsistency(proof tlog.TreeProof, newSize, oldSize int64, newRoot, oldRoot tlog.Hash) error {
	if oldSize < 0 || oldSize > newSize || newSize > MaxTreeSize {
		return fmt.Errorf("%w: tree of %d cannot extend tree of %d", ErrInvalidProof, newSize, oldSize)
	}
	if len(proof) > MaxProofHashes {
		return fmt.Errorf("%w: %d hashes", ErrInvalidProof, len(proof))
	}
	switch {
	case oldSize == 0:
		if len(proof) != 0 || oldRoot != emptyRoot || (newSize == 0 && newRoot != emptyRoot) {
			return fmt.Errorf("%w: from the empty tree", ErrInvalidProof)
		}
		return nil
	case oldSize == newSize:
		if len(proof) != 0 || oldRoot != newRoot {
			return fmt.Errorf("%w: two different roots for %d leaves", ErrInvalidProof, newSize)
		}
		return nil
	}
	if err := tlog.CheckTree(proof, newSize, newRoot, oldSize, oldRoot); err != nil {
		return fmt.Errorf("%w: from %d to %d leaves: %v", ErrInvalidProof, oldSize, newSize, err)
	}
	return nil
}

// EncodeProof encodes proof hashes for export files: standard padded base64 of the
// concatenated 32-byte hashes. An empty proof encodes as "".
func EncodeProof(proof []tlog.Hash) string {
	raw := make([]byte, 0, len(proof)*tlog.HashSize)
	for _, h := range proof {
		raw = append(raw, h[:]...)
	}
	return base64.StdEncoding.EncodeToString(raw)
}

// DecodeProof decodes the output of [EncodeProof] from an untrusted export file. It accepts
// only what EncodeProof writes: canonical base64 (no newlines, no spare bits set) of a whole
// number of hashes, at most [MaxProofHashes] of them.
func DecodeProof(s string) ([]tlog.Hash, error) {
	if len(s) > base64.StdEncoding.EncodedLen(MaxProofHashes*tlog.HashSize) {
		return nil, fmt.Errorf("auditlog: proof longer than %d hashes", MaxProofHashes)
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("auditlog: proof is not base64: %w", err)
	}
	if len(raw)%tlog.HashSize != 0 {
		return nil, fmt.Errorf("auditlog: proof of %d bytes is not whole hashes", len(raw))
	}
	// Strict decoding still skips \r and \n; only the canonical text is one proof.
	if base64.StdEncoding.EncodeToString(raw) != s {
		return nil, errors.New("auditlog: proof is not canonical base64")
	}
	proof := make([]tlog.Hash, len(raw)/tlog.HashSize)
	for i := range proof {
		copy(proof[i][:], raw[i*tlog.HashSize:])
	}
	return proof, nil
}

// subtreeHash returns the hash of leaves [lo, hi), an RFC 6962 subtree (a node on the way
// down from some root), from the stored hashes r holds: the maximal aligned power-of-two
// blocks from lo, folded right to left, as tlog.TreeHash does for [0, n).
func subtreeHash(r tlog.HashReader, lo, hi int64) (tlog.Hash, error) {
	if lo < 0 || lo >= hi {
		return tlog.Hash{}, fmt.Errorf("auditlog: empty subtree [%d, %d)", lo, hi)
	}
	var indexes []int64
	for n := lo; n < hi; {
		level := bits.Len64(uint64(hi-n)) - 1
		if n&(1<<level-1) != 0 {
			return tlog.Hash{}, fmt.Errorf("auditlog: [%d, %d) is not an RFC 6962 subtree", lo, hi)
		}
		indexes = append(indexes, tlog.StoredHashIndex(level, n>>level))
		n += 1 << level
	}
	hashes, err := r.ReadHashes(indexes)
	if err != nil {
		return tlog.Hash{}, err
	}
	if len(hashes) != len(indexes) {
		return tlog.Hash{}, fmt.Errorf("auditlog: read %d stored hashes, want %d", len(hashes), len(indexes))
	}
	h := hashes[len(hashes)-1]
	for i := len(hashes) - 2; i >= 0; i-- {
		h = tlog.NodeHash(hashes[i], h)
	}
	return h, nil
}

// splitPoint is RFC 6962's k for a subtree of n > 1 leaves: the largest power of two
// smaller than n.
func splitPoint(n int64) int64 {
	return 1 << (bits.Len64(uint64(n-1)) - 1)
}
