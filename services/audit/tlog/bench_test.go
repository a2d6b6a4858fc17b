package auditlog

import (
	"encoding/binary"
	"sync"
	"testing"

	"golang.org/x/mod/sumdb/tlog"
)

const benchLeaves = 1_000_000

// benchTemplates are realistic leaves (about 220 bytes); leafAt stamps a position into a
// copy of one, so a million distinct leaves cost no 220 MB of test data.
var benchTemplates = sampleLeaves(4096)

func leafAt(buf []byte, i int64) []byte {
	buf = append(buf[:0], benchTemplates[i%int64(len(benchTemplates))]...)
	binary.BigEndian.PutUint64(buf[2:10], uint64(i)) // the seq field of a version-1 leaf
	return buf
}

var (
	benchTreeOnce sync.Once
	benchTree     MemoryHashes
)

// millionLeafTree builds the stored hashes of benchLeaves leaves once per test binary.
func millionLeafTree(b *testing.B) MemoryHashes {
	benchTreeOnce.Do(func() {
		m := make(MemoryHashes, 0, 2*benchLeaves)
		var buf []byte
		for i := range int64(benchLeaves) {
			buf = leafAt(buf, i)
			if err := m.Append(LeafHash(buf)); err != nil {
				panic(err)
			}
		}
		benchTree = m
	})
	return benchTree
}

func BenchmarkLeafHash(b *testing.B) {
	leaf := sampleEntry(42).MarshalLeaf()
	b.SetBytes(int64(len(leaf)))
	for b.Loop() {
		_ = LeafHash(leaf)
	}
}

func BenchmarkMarshalLeaf(b *testing.B) {
	e := sampleEntry(42)
	for b.Loop() {
		_ = e.MarshalLeaf()
	}
}

// BenchmarkAppend1M hashes a million leaves and computes their stored hashes, what the
// sequencer does per million entries.
func BenchmarkAppend1M(b *testing.B) {
	var buf []byte
	for b.Loop() {
		m := make(MemoryHashes, 0, 2*benchLeaves)
		for i := range int64(benchLeaves) {
			buf = leafAt(buf, i)
			if err := m.Append(LeafHash(buf)); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(benchLeaves)*float64(b.N)/b.Elapsed().Seconds(), "leaves/s")
}

// proofCases are 1024 spread-out leaf indexes (and old sizes) in the million-leaf tree.
func proofCases() []int64 {
	cases := make([]int64, 1024)
	for i := range cases {
		cases[i] = 1 + (int64(i)*7919*131)%(benchLeaves-1)
	}
	return cases
}

func BenchmarkInclusionProof(b *testing.B) {
	m := millionLeafTree(b)
	root := mustRoot(b, m, benchLeaves)
	cases := proofCases()
	proofs := make([]tlog.RecordProof, len(cases))
	b.Run("prove", func(b *testing.B) {
		i := 0
		for b.Loop() {
			p, err := InclusionProof(m, benchLeaves, cases[i%len(cases)])
			if err != nil {
				b.Fatal(err)
			}
			proofs[i%len(cases)] = p
			i++
		}
	})
	for i, index := range cases {
		p, err := InclusionProof(m, benchLeaves, index)
		if err != nil {
			b.Fatal(err)
		}
		proofs[i] = p
	}
	b.Run("verify", func(b *testing.B) {
		i := 0
		for b.Loop() {
			index := cases[i%len(cases)]
			if err := VerifyInclusion(proofs[i%len(cases)], benchLeaves, index, root, m[tlog.StoredHashIndex(0, index)]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}

func BenchmarkConsistencyProof(b *testing.B) {
	m := millionLeafTree(b)
	newRoot := mustRoot(b, m, benchLeaves)
	cases := proofCases()
	proofs := make([]tlog.TreeProof, len(cases))
	oldRoots := make([]tlog.Hash, len(cases))
	for i, old := range cases {
		p, err := ConsistencyProof(m, benchLeaves, old)
		if err != nil {
			b.Fatal(err)
		}
		proofs[i], oldRoots[i] = p, mustRoot(b, m, old)
	}
	b.Run("prove", func(b *testing.B) {
		i := 0
		for b.Loop() {
			if _, err := ConsistencyProof(m, benchLeaves, cases[i%len(cases)]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("verify", func(b *testing.B) {
		i := 0
		for b.Loop() {
			j := i % len(cases)
			if err := VerifyConsistency(proofs[j], benchLeaves, cases[j], newRoot, oldRoots[j]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}

// BenchmarkVerify1M streams a million leaves through the Verifier and checks the root: the
// hashing part of verifying the audit log from the database (the rest is reading rows).
func BenchmarkVerify1M(b *testing.B) {
	m := millionLeafTree(b)
	cp := Checkpoint{Origin: testOrigin, Size: benchLeaves, Root: mustRoot(b, m, benchLeaves)}
	for _, withStored := range []bool{false, true} {
		name := "leaves"
		if withStored {
			name = "leaves+stored-hashes"
		}
		b.Run(name, func(b *testing.B) {
			var buf []byte
			for b.Loop() {
				v := NewVerifier()
				for i := range int64(benchLeaves) {
					buf = leafAt(buf, i)
					var err error
					if withStored {
						err = v.AddWithStoredHash(i, buf, i%100 == 0, m[tlog.StoredHashIndex(0, i)])
					} else {
						err = v.Add(i, buf, i%100 == 0)
					}
					if err != nil {
						b.Fatal(err)
					}
				}
				if rep, err := v.Check(cp); err != nil || rep.Redacted != benchLeaves/100 {
					b.Fatalf("Check = %+v, %v", rep, err)
				}
			}
			b.ReportMetric(float64(benchLeaves)*float64(b.N)/b.Elapsed().Seconds(), "leaves/s")
		})
	}
}
