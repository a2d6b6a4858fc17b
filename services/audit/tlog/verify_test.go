package auditlog

import (
	"errors"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"
)

// row is one audit row as the verifier reads it from the database.
type row struct {
	seq      int64
	leaf     []byte
	redacted bool
	stored   tlog.Hash // the database's stored leaf hash
}

func rowsOf(leaves [][]byte, redacted ...int64) []row {
	rows := make([]row, len(leaves))
	for i, l := range leaves {
		rows[i] = row{seq: int64(i), leaf: l, stored: LeafHash(l)}
	}
	for _, r := range redacted {
		rows[r].redacted = true
	}
	return rows
}

func feed(t *testing.T, rows []row, withStored bool) *Verifier {
	t.Helper()
	v := NewVerifier()
	for _, r := range rows {
		var err error
		if withStored {
			err = v.AddWithStoredHash(r.seq, r.leaf, r.redacted, r.stored)
		} else {
			err = v.Add(r.seq, r.leaf, r.redacted)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return v
}

func TestVerifier(t *testing.T) {
	t.Parallel()
	const size = 37
	leaves := sampleLeaves(size)
	m := buildTree(t, leaves)
	cp, signed := signedCheckpoint(t, m, size)
	if _, err := OpenCheckpoint(signed, testVKey, testOrigin); err != nil {
		t.Fatal(err)
	}
	changed := func(i int64) []byte {
		e := sampleEntry(i)
		e.Decision = "no-further-action" // the kind of edit someone would want to hide
		return e.MarshalLeaf()
	}
	tests := []struct {
		name       string
		edit       func(rows []row) []row
		stored     bool
		want       int64  // FirstMismatch
		reason     string // substring of Reason
		entries    int64
		redactions int64
	}{
		{"clean", nil, false, -1, "", size, 3},
		{"clean with stored hashes", nil, true, -1, "", size, 3},
		{"more rows than the checkpoint", func(r []row) []row {
			extra := sampleEntry(size).MarshalLeaf()
			return append(r, row{seq: size, leaf: extra, redacted: true, stored: LeafHash(extra)})
		}, true, -1, "", size, 3},
		{"leaf bytes changed", func(r []row) []row { r[17].leaf = changed(17); return r },
			true, 17, "signed checkpoint requires", size, 3},
		{"leaf bytes changed, no stored hashes", func(r []row) []row { r[17].leaf = changed(17); return r },
			false, 0, "could not be checked one by one: no stored hashes", size, 3},
		{"leaf and its stored hash rewritten", func(r []row) []row {
			r[17].leaf = changed(17)
			r[17].stored = LeafHash(r[17].leaf)
			return r
		}, true, 0, "stored hashes for entries 0..36 do not match the checkpoint either", size, 3},
		{"first leaf changed", func(r []row) []row { r[0].leaf = changed(0); return r },
			true, 0, "signed checkpoint requires", size, 3},
		{"last leaf changed", func(r []row) []row { r[36].leaf = changed(36); return r },
			true, 36, "signed checkpoint requires", size, 3},
		{"two leaves swapped", func(r []row) []row {
			r[9].leaf, r[23].leaf = r[23].leaf, r[9].leaf
			return r
		}, true, 9, "signed checkpoint requires", size, 3},
		{"two leaves swapped, no stored hashes", func(r []row) []row {
			r[9].leaf, r[23].leaf = r[23].leaf, r[9].leaf
			return r
		}, false, 9, "leaf says seq 23", size, 3},
		{"two whole rows swapped", func(r []row) []row {
			r[9], r[23] = r[23], r[9]
			return r
		}, true, 9, "row seq 23 is at position 9", size, 3},
		{"leaf missing", func(r []row) []row { return append(r[:5:5], r[6:]...) },
			true, 5, "row seq 6 is at position 5", size - 1, 3},
		{"leaf missing, no stored hashes", func(r []row) []row { return append(r[:5:5], r[6:]...) },
			false, 5, "row seq 6 is at position 5", size - 1, 3},
		{"row duplicated", func(r []row) []row {
			return append(append(r[:13:13], r[12]), r[13:]...)
		}, false, 13, "row seq 12 is at position 13", size, 2}, // position 36 now holds row 35
		{"tail missing", func(r []row) []row { return r[:34] },
			true, 34, "the checkpoint has 37 entries but only 34 were read", 34, 2},
		{"nothing read", func(r []row) []row { return nil },
			false, 0, "only 0 were read", 0, 0},
		{"stored leaf hash wrong, leaves authentic", func(r []row) []row { r[20].stored = tlog.Hash{1}; return r },
			true, 20, "database's stored leaf hash", size, 3},
		{"row seq column edited", func(r []row) []row { r[30].seq = 99; return r },
			false, 30, "row seq 99", size, 3},
		{"leaf replaced by a non-leaf", func(r []row) []row {
			r[8].leaf = []byte("not a leaf")
			r[8].stored = LeafHash(r[8].leaf)
			return r
		}, false, 8, "not a version-1 leaf", size, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rows := rowsOf(sampleLeaves(size), 3, 10, 36)
			if tt.edit != nil {
				rows = tt.edit(rows)
			}
			v := feed(t, rows, tt.stored)
			rep, err := v.Check(cp)
			if rep.FirstMismatch != tt.want {
				t.Fatalf("FirstMismatch = %d, want %d (reason %q, err %v)", rep.FirstMismatch, tt.want, rep.Reason, err)
			}
			if rep.Entries != tt.entries || rep.Redacted != tt.redactions {
				t.Errorf("Entries, Redacted = %d, %d; want %d, %d", rep.Entries, rep.Redacted, tt.entries, tt.redactions)
			}
			if tt.want < 0 {
				if err != nil || rep.Reason != "" || rep.Root != cp.Root {
					t.Fatalf("clean log: err %v, reason %q, root %v", err, rep.Reason, rep.Root)
				}
				return
			}
			if !errors.Is(err, ErrMismatch) {
				t.Fatalf("err = %v, want ErrMismatch", err)
			}
			if !strings.Contains(rep.Reason, tt.reason) {
				t.Fatalf("Reason = %q, want it to contain %q", rep.Reason, tt.reason)
			}
		})
	}
}

// TestVerifierEveryLeaf changes each leaf of every tree size up to 40 in turn; with stored
// hashes (leaf hashes, or the full table) the verifier must name exactly that leaf.
func TestVerifierEveryLeaf(t *testing.T) {
	t.Parallel()
	const maxSize = 40
	leaves := sampleLeaves(maxSize)
	m := buildTree(t, leaves)
	for size := int64(1); size <= maxSize; size++ {
		cp := Checkpoint{Origin: testOrigin, Size: size, Root: mustRoot(t, m, size)}
		for p := range size {
			rows := rowsOf(leaves[:size])
			e := sampleEntry(p)
			e.Actor = "someone-else"
			rows[p].leaf = e.MarshalLeaf()

			rep, err := feed(t, rows, true).Check(cp)
			if rep.FirstMismatch != p || !errors.Is(err, ErrMismatch) {
				t.Fatalf("size %d, leaf %d changed: FirstMismatch %d (%v)", size, p, rep.FirstMismatch, err)
			}
			rep, err = feed(t, rows, false).CheckWithStoredHashes(cp, m)
			if rep.FirstMismatch != p || !strings.Contains(rep.Reason, "signed checkpoint requires") {
				t.Fatalf("size %d, leaf %d changed, full table: FirstMismatch %d (%v)", size, p, rep.FirstMismatch, err)
			}
		}
	}
}

// TestVerifierRewrittenStoredLeafHash: an attacker who rewrites a leaf and its stored leaf
// hash, but not the interior hashes, is narrowed to the pair holding the leaf when the full
// stored-hash table is the reference.
func TestVerifierRewrittenStoredLeafHash(t *testing.T) {
	t.Parallel()
	const size = 32
	leaves := sampleLeaves(size)
	m := buildTree(t, leaves)
	cp := Checkpoint{Origin: testOrigin, Size: size, Root: mustRoot(t, m, size)}
	rows := rowsOf(leaves)
	e := sampleEntry(13)
	e.Decision = "no-further-action"
	rows[13].leaf = e.MarshalLeaf()
	tampered := append(MemoryHashes(nil), m...)
	tampered[tlog.StoredHashIndex(0, 13)] = LeafHash(rows[13].leaf)

	rep, err := feed(t, rows, false).CheckWithStoredHashes(cp, tampered)
	if rep.FirstMismatch != 12 || !errors.Is(err, ErrMismatch) || !strings.Contains(rep.Reason, "entries 12..13") {
		t.Fatalf("FirstMismatch %d, reason %q, err %v; want 12, the pair 12..13", rep.FirstMismatch, rep.Reason, err)
	}
	if _, err := feed(t, rows, false).CheckWithStoredHashes(cp, MemoryHashes(nil)); err == nil || errors.Is(err, ErrMismatch) {
		t.Fatalf("an unreadable reference gave %v, want a plain error", err)
	}
}

func TestVerifierSeveralCheckpoints(t *testing.T) {
	t.Parallel()
	leaves := sampleLeaves(37)
	m := buildTree(t, leaves)
	rows := rowsOf(leaves, 4, 30)
	e := sampleEntry(25)
	e.ChildID = "child-other"
	rows[25].leaf = e.MarshalLeaf()
	v := feed(t, rows[:20], true)

	older := Checkpoint{Origin: testOrigin, Size: 20, Root: mustRoot(t, m, 20)}
	if rep, err := v.Check(older); err != nil || rep.Entries != 20 || rep.Redacted != 1 {
		t.Fatalf("Check(20) = %+v, %v", rep, err)
	}
	for _, r := range rows[20:] {
		if err := v.AddWithStoredHash(r.seq, r.leaf, r.redacted, r.stored); err != nil {
			t.Fatal(err)
		}
	}
	if rep, err := v.Check(older); err != nil || rep.FirstMismatch != -1 {
		t.Fatalf("Check(20) after more rows = %+v, %v", rep, err)
	}
	newer := Checkpoint{Origin: testOrigin, Size: 37, Root: mustRoot(t, m, 37)}
	if rep, err := v.Check(newer); rep.FirstMismatch != 25 || rep.Redacted != 2 || !errors.Is(err, ErrMismatch) {
		t.Fatalf("Check(37) = %+v, %v", rep, err)
	}
	if _, err := v.Check(Checkpoint{Size: -1}); err == nil || errors.Is(err, ErrMismatch) {
		t.Fatalf("Check(size -1) = %v", err)
	}
	if rep, err := v.Check(Checkpoint{Size: 0, Root: emptyRoot}); err != nil || rep.Entries != 0 {
		t.Fatalf("Check(empty) = %+v, %v", rep, err)
	}
	if rep, err := v.Check(Checkpoint{Size: 0, Root: newer.Root}); rep.FirstMismatch != 0 || !errors.Is(err, ErrMismatch) {
		t.Fatalf("Check(size 0, non-empty root) = %+v, %v", rep, err)
	}
	if err := v.Add(37, leaves[0], false); err == nil {
		t.Fatal("Add after AddWithStoredHash succeeded")
	}
}

func TestVerifyConsistencyChain(t *testing.T) {
	t.Parallel()
	leaves := sampleLeaves(37)
	m := buildTree(t, leaves)
	at := func(size int64, ts time.Time) Checkpoint {
		return Checkpoint{Origin: testOrigin, Size: size, Root: mustRoot(t, m, size), Time: ts}
	}
	prev, next := at(20, testTime), at(37, testTime.Add(time.Minute))
	p, err := ConsistencyProof(m, 37, 20)
	if err != nil {
		t.Fatal(err)
	}
	// A fork: the same 37 entries but one changed after the old head.
	forked := append([][]byte(nil), leaves...)
	forked[30] = sampleEntry(99).MarshalLeaf()
	fm := buildTree(t, forked)
	fork := Checkpoint{Origin: testOrigin, Size: 37, Root: mustRoot(t, fm, 37), Time: next.Time}
	forkProof, err := ConsistencyProof(fm, 37, 20)
	if err != nil {
		t.Fatal(err)
	}
	rewritten := append([][]byte(nil), leaves...)
	rewritten[3] = sampleEntry(98).MarshalLeaf()
	rm := buildTree(t, rewritten)
	rewrite := Checkpoint{Origin: testOrigin, Size: 37, Root: mustRoot(t, rm, 37), Time: next.Time}
	rewriteProof, err := ConsistencyProof(rm, 37, 20)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name       string
		prev, next Checkpoint
		proof      tlog.TreeProof
		ok         bool
	}{
		{"extends", prev, next, p, true},
		{"same head", next, next, nil, true},
		{"from the empty log", Checkpoint{Origin: testOrigin, Root: emptyRoot, Time: testTime}, next, nil, true},
		{"no time on the old head", at(20, time.Time{}), next, p, true},
		{"other origin", prev, Checkpoint{Origin: "other", Size: 37, Root: next.Root, Time: next.Time}, p, false},
		{"shrinks", next, prev, p, false},
		{"time goes back", prev, at(37, testTime.Add(-time.Second)), p, false},
		{"another extension of the old head", prev, fork, forkProof, true},
		{"history rewritten before the old head", prev, rewrite, rewriteProof, false},
		{"history rewritten, proof from the real log", prev, rewrite, p, false},
		{"same size, different root", next, fork, nil, false},
		{"truncated proof", prev, next, p[:len(p)-1], false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := VerifyConsistencyChain(tt.prev, tt.next, tt.proof)
			if (err == nil) != tt.ok {
				t.Fatalf("VerifyConsistencyChain = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}
