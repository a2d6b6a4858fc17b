package auditlog

import (
	"errors"
	"fmt"
	"slices"
	"sort"

	"golang.org/x/mod/sumdb/tlog"
)

// ErrMismatch is wrapped by the error [Verifier.Check] returns when the entries read do not
// match the checkpoint, as opposed to a misuse or a failing hash reader.
var ErrMismatch = errors.New("auditlog: entries do not match the checkpoint")

// Report is the outcome of [Verifier.Check].
type Report struct {
	Entries       int64     // entries checked: the checkpoint size, or fewer if fewer were read
	Redacted      int64     // of those, entries whose payload was redacted (leaf kept)
	Root          tlog.Hash // root recomputed from the entries; zero if fewer than the size were read
	FirstMismatch int64     // position of the first entry that does not match; -1 if all match
	Reason        string    // what is wrong at FirstMismatch; empty if all match
}

// Verifier recomputes the tree from leaves streamed in order (for example rows read by
// seq from the database, or an export file) and checks it against a signed checkpoint.
//
// How it names the first entry that does not match: a root alone says only that something
// differs. So the verifier keeps the recomputed tree's stored hashes in memory (about 64 MB
// per million leaves) and, when the root differs, walks down from the checkpoint root
// comparing against a reference tree: the database's stored leaf hashes, given with
// [Verifier.AddWithStoredHash] (another 32 MB per million, plus a tree built from them on
// mismatch), or its full stored-hash table through [Verifier.CheckWithStoredHashes]. A
// reference node is trusted only when its two children hash to a node already trusted
// (starting from the signed root), so a tampered reference cannot mislead the walk: the walk
// stops where the reference stops being consistent. Everything left of the stopping point is
// proven by the checkpoint. Without a usable reference the report says so and names the
// first unproven entry, together with anything caught while adding:
//
//   - the row's seq is not its position (a row missing, duplicated or out of order);
//   - the leaf's own seq field is not its position (leaves swapped or moved);
//   - with stored hashes, the leaf bytes do not hash to the stored leaf hash.
//
// Leaves are hashed as given; the verifier never re-marshals them.
type Verifier struct {
	tree     MemoryHashes // stored hashes recomputed from the leaves read
	n        int64        // leaves read
	redacted []int64      // positions of redacted entries, increasing
	mode     int          // modeNone until the first Add, then fixed
	stored   []tlog.Hash  // database leaf hashes (modeStored)
	refTree  MemoryHashes // tree of stored, built on the first mismatch and extended after
	first    finding      // first problem seen while adding; pos -1 if none
}

const (
	modeNone = iota
	modePlain
	modeStored
)

// finding is one problem at a position.
type finding struct {
	pos    int64
	reason string
}

var noFinding = finding{pos: -1}

// NewVerifier returns an empty Verifier.
func NewVerifier() *Verifier {
	return &Verifier{first: noFinding}
}

// Grow makes room for n more entries, so a caller that knows how many it will add (the
// head's size) has the trees allocated once rather than copied as they grow.
func (v *Verifier) Grow(n int64) {
	if n <= 0 || n > MaxTreeSize {
		return
	}
	v.tree = slices.Grow(v.tree, int(2*n))
	v.stored = slices.Grow(v.stored, int(n))
}

// Len returns the number of entries added.
func (v *Verifier) Len() int64 { return v.n }

// Add adds the next leaf. seq is the row's own sequence number, leaf its stored bytes, and
// redacted whether its payload was erased (its leaf remains and is verified like any
// other). Problems are recorded for Check rather than returned, so one pass finds the first
// of them; Add returns an error only when misused (mixed with AddWithStoredHash, or a full
// tree).
func (v *Verifier) Add(seq int64, leaf []byte, redacted bool) error {
	if err := v.setMode(modePlain); err != nil {
		return err
	}
	return v.add(seq, PrepareLeaf(leaf), redacted)
}

// AddWithStoredHash is Add with the leaf hash the database holds for this row, which lets
// Check name the exact first entry that does not match. Use it for every entry or none.
func (v *Verifier) AddWithStoredHash(seq int64, leaf []byte, redacted bool, storedLeafHash tlog.Hash) error {
	return v.AddPreparedWithStoredHash(seq, PrepareLeaf(leaf), redacted, storedLeafHash)
}

// AddPrepared is Add for a leaf already prepared with [PrepareLeaf].
func (v *Verifier) AddPrepared(seq int64, leaf PreparedLeaf, redacted bool) error {
	if err := v.setMode(modePlain); err != nil {
		return err
	}
	return v.add(seq, leaf, redacted)
}

// AddPreparedWithStoredHash is AddWithStoredHash for a leaf already prepared with
// [PrepareLeaf].
func (v *Verifier) AddPreparedWithStoredHash(seq int64, leaf PreparedLeaf, redacted bool, storedLeafHash tlog.Hash) error {
	if err := v.setMode(modeStored); err != nil {
		return err
	}
	pos := v.n
	if err := v.add(seq, leaf, redacted); err != nil {
		return err
	}
	v.stored = append(roomForHashes(v.stored, 1), storedLeafHash)
	if leaf.hash != storedLeafHash {
		v.note(pos, fmt.Sprintf("leaf bytes hash to %s but the database's stored leaf hash is %s", leaf.hash, storedLeafHash))
	}
	return nil
}

func (v *Verifier) setMode(m int) error {
	if v.mode != modeNone && v.mode != m {
		return errors.New("auditlog: verifier: use Add or AddWithStoredHash for every entry, not both")
	}
	v.mode = m
	return nil
}

func (v *Verifier) add(seq int64, leaf PreparedLeaf, redacted bool) error {
	pos := v.n
	if err := v.tree.Append(leaf.hash); err != nil {
		return err
	}
	v.n++
	if redacted {
		v.redacted = append(v.redacted, pos)
	}
	if seq != pos {
		v.note(pos, fmt.Sprintf("row seq %d is at position %d: an entry is missing, duplicated or out of order", seq, pos))
	}
	if !leaf.version {
		v.note(pos, "leaf is not a version-1 leaf")
	} else if leaf.seq != pos {
		v.note(pos, fmt.Sprintf("leaf says seq %d but is at position %d", leaf.seq, pos))
	}
	return nil
}

// note records a finding if it is the first; positions only grow, so first is earliest.
func (v *Verifier) note(pos int64, reason string) {
	if v.first.pos < 0 {
		v.first = finding{pos: pos, reason: reason}
	}
}

// Check recomputes the root of the first cp.Size entries and compares it with cp.Root; cp
// must come from [OpenCheckpoint]. On a mismatch the Report names the first entry that does
// not match and the error wraps [ErrMismatch]. Check does not change the Verifier, so it may
// be called for several checkpoints, and more entries may be added afterwards.
func (v *Verifier) Check(cp Checkpoint) (Report, error) {
	return v.check(cp, func() (tlog.HashReader, error) {
		if v.mode != modeStored {
			return nil, nil
		}
		// Built only on a mismatch: a log that verifies costs no second tree.
		for i := v.refTree.Size(); i < min(cp.Size, int64(len(v.stored))); i++ {
			if err := v.refTree.Append(v.stored[i]); err != nil {
				return nil, err
			}
		}
		return v.refTree, nil
	})
}

// CheckWithStoredHashes is Check with the database's full stored-hash table as the
// reference (a tlog.HashReader over it, one query per call). The walk reads O(log² n)
// hashes, and because interior hashes are checked against their parents it narrows even
// when the stored leaf hash of a tampered row was rewritten too.
func (v *Verifier) CheckWithStoredHashes(cp Checkpoint, stored tlog.HashReader) (Report, error) {
	return v.check(cp, func() (tlog.HashReader, error) { return stored, nil })
}

// check compares with cp; reference supplies the reference tree for the walk, nil if none.
func (v *Verifier) check(cp Checkpoint, reference func() (tlog.HashReader, error)) (Report, error) {
	if cp.Size < 0 || cp.Size > MaxTreeSize {
		return Report{}, fmt.Errorf("auditlog: checkpoint size %d out of range", cp.Size)
	}
	rep := Report{FirstMismatch: -1, Entries: min(v.n, cp.Size)}
	rep.Redacted = int64(sort.Search(len(v.redacted), func(i int) bool { return v.redacted[i] >= rep.Entries }))

	seen := noFinding
	if v.first.pos >= 0 && v.first.pos < rep.Entries {
		seen = v.first
	}
	var found finding
	switch {
	case v.n < cp.Size:
		// The tree cannot be recomputed; what is missing is certainly wrong.
		found = earliest(seen, finding{v.n, fmt.Sprintf("the checkpoint has %d entries but only %d were read", cp.Size, v.n)})
	default:
		root, err := Root(v.tree, cp.Size)
		if err != nil {
			return Report{}, err
		}
		rep.Root = root
		if root == cp.Root {
			found = seen
			break
		}
		if cp.Size == 0 {
			found = finding{0, "a checkpoint of 0 entries must carry the empty-tree root"}
			break
		}
		ref, err := reference()
		if err != nil {
			return rep, fmt.Errorf("auditlog: reference tree: %w", err)
		}
		pos, exact, reason, err := locate(v.tree, ref, 0, cp.Size, cp.Root)
		if err != nil {
			return rep, fmt.Errorf("auditlog: locating the first mismatch: %w", err)
		}
		switch {
		case exact:
			found = earliest(seen, finding{pos, reason})
		case seen.pos >= 0:
			found = seen
			found.reason += fmt.Sprintf(" (the root differs; entries from %d on could not be checked one by one: %s)", pos, reason)
		default:
			found = finding{pos, "the root differs and entries from here on could not be checked one by one: " + reason}
		}
	}
	if found.pos < 0 {
		return rep, nil
	}
	rep.FirstMismatch, rep.Reason = found.pos, found.reason
	return rep, fmt.Errorf("%w: entry %d: %s", ErrMismatch, found.pos, found.reason)
}

// earliest returns the finding with the smaller position, b on a tie (b is the more
// specific, coming from the tree walk).
func earliest(a, b finding) finding {
	if a.pos >= 0 && (b.pos < 0 || a.pos < b.pos) {
		return a
	}
	return b
}

// locate walks down the subtree [lo, hi), whose hash must be want (already trusted), to the
// first leaf whose recomputed hash differs. It returns -1 if the recomputed subtree matches.
// exact says the position is proven wrong; otherwise the reference could not be trusted
// below this node and pos is only the first unproven entry, and reason says why.
func locate(got, ref tlog.HashReader, lo, hi int64, want tlog.Hash) (pos int64, exact bool, reason string, err error) {
	h, err := subtreeHash(got, lo, hi)
	if err != nil {
		return 0, false, "", err
	}
	if h == want {
		return -1, false, "", nil
	}
	if hi-lo == 1 {
		return lo, true, fmt.Sprintf("leaf bytes hash to %s but the signed checkpoint requires %s", h, want), nil
	}
	if ref == nil {
		return lo, false, "no stored hashes to compare with", nil
	}
	mid := lo + splitPoint(hi-lo)
	left, err := subtreeHash(ref, lo, mid)
	if err != nil {
		return 0, false, "", err
	}
	right, err := subtreeHash(ref, mid, hi)
	if err != nil {
		return 0, false, "", err
	}
	if tlog.NodeHash(left, right) != want {
		return lo, false, fmt.Sprintf("the database's stored hashes for entries %d..%d do not match the checkpoint either", lo, hi-1), nil
	}
	if pos, exact, reason, err = locate(got, ref, lo, mid, left); err != nil || pos >= 0 {
		return pos, exact, reason, err
	}
	return locate(got, ref, mid, hi, right)
}

// VerifyConsistencyChain checks that next extends prev, both opened with [OpenCheckpoint]:
// the same origin, no fewer leaves, time not going backwards, and proof showing prev's tree
// is a prefix of next's. An auditor keeps the last checkpoint it accepted and calls this
// with each new one; a failure means the log forked or was rewritten.
func VerifyConsistencyChain(prev, next Checkpoint, proof tlog.TreeProof) error {
	if prev.Origin != next.Origin {
		return fmt.Errorf("auditlog: checkpoint origin %q does not follow %q", next.Origin, prev.Origin)
	}
	if next.Size < prev.Size {
		return fmt.Errorf("auditlog: checkpoint of %d entries follows one of %d: the log shrank", next.Size, prev.Size)
	}
	if !prev.Time.IsZero() && !next.Time.IsZero() && next.Time.Before(prev.Time) {
		return fmt.Errorf("auditlog: checkpoint time %s is before the previous %s", formatTime(next.Time), formatTime(prev.Time))
	}
	if err := VerifyConsistency(proof, next.Size, prev.Size, next.Root, prev.Root); err != nil {
		return fmt.Errorf("auditlog: checkpoint of %d entries does not extend the one of %d: %w", next.Size, prev.Size, err)
	}
	return nil
}

// Hashes returns the stored hashes recomputed from the leaves added so far, in tlog
// stored-hash order. A caller that holds a copy of the tree (the database's tree_hashes)
// compares it with these to prove every stored hash, interior ones included, and reads the
// root of any earlier size from them with [Root]. The caller must not modify the result.
func (v *Verifier) Hashes() MemoryHashes { return v.tree }
