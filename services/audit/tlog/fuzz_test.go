package auditlog

import (
	"bytes"
	"testing"

	"golang.org/x/mod/sumdb/tlog"
)

// FuzzDecodeProof feeds untrusted export text to the proof decoder and the decoded proof,
// with untrusted sizes, to both verifiers. Nothing may panic or hang, whatever decodes must
// be canonical, and nothing may verify against a root and leaf the fuzzer cannot see.
func FuzzDecodeProof(f *testing.F) {
	m := buildTree(f, sampleLeaves(37))
	for _, c := range []struct{ size, index int64 }{{37, 5}, {37, 36}, {1, 0}, {32, 31}} {
		p, err := InclusionProof(m, c.size, c.index)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(EncodeProof(p), c.size, c.index)
	}
	f.Add("", int64(0), int64(0))
	f.Add("AA==", MaxTreeSize, MaxTreeSize-1)
	root := mustRoot(f, m, 37)
	leaf := LeafHash(sampleEntry(5).MarshalLeaf())
	secret := tlog.Hash{0x5e, 0xc2, 0xe7}
	f.Fuzz(func(t *testing.T, s string, size, index int64) {
		proof, err := DecodeProof(s)
		if err != nil {
			return
		}
		if len(proof) > MaxProofHashes {
			t.Fatalf("decoded %d hashes", len(proof))
		}
		if EncodeProof(proof) != s {
			t.Fatalf("DecodeProof accepted non-canonical %q", s)
		}
		if VerifyInclusion(proof, size, index, secret, leaf) == nil {
			t.Fatalf("an inclusion proof verified against a root the fuzzer cannot know")
		}
		_ = VerifyInclusion(proof, size, index, root, leaf)
		if VerifyConsistency(proof, size, index, secret, root) == nil {
			t.Fatalf("a consistency proof verified against a root the fuzzer cannot know")
		}
		_ = VerifyConsistency(proof, size, index, root, root)
	})
}

// FuzzParseCheckpoint: whatever parses must be exactly what Marshal writes, and opening the
// input as a signed note must never panic or succeed without the test key's signature.
func FuzzParseCheckpoint(f *testing.F) {
	f.Add([]byte(goldenCheckpoint37))
	f.Add([]byte(goldenSigned37))
	f.Add([]byte("o\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n"))
	f.Add([]byte("o\n1\nAQIDAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\ntime 2026-01-02T03:04:05.0000006Z\n"))
	f.Fuzz(func(t *testing.T, text []byte) {
		cp, err := ParseCheckpoint(text)
		if err == nil {
			if got := cp.Marshal(); !bytes.Equal(got, text) {
				t.Fatalf("ParseCheckpoint accepted %q, which Marshal writes as %q", text, got)
			}
			if cp.Size < 0 || cp.Size > MaxTreeSize {
				t.Fatalf("size %d accepted", cp.Size)
			}
		}
		if opened, err := OpenCheckpoint(text, testVKey, testOrigin); err == nil && !bytes.HasPrefix(text, opened.Marshal()) {
			t.Fatalf("OpenCheckpoint returned %+v, which is not the signed text", opened)
		}
	})
}

// FuzzUnmarshalLeaf: whatever decodes must be valid and re-encode to the same bytes, so one
// entry has one leaf hash.
func FuzzUnmarshalLeaf(f *testing.F) {
	f.Add(sampleEntry(42).MarshalLeaf())
	f.Add(sampleEntry(0).MarshalLeaf())
	f.Add(Entry{EventID: "e", EventType: "t", OccurredAt: testTime, RecordedAt: testTime}.MarshalLeaf())
	f.Add([]byte{LeafVersion})
	f.Fuzz(func(t *testing.T, leaf []byte) {
		e, err := UnmarshalLeaf(leaf)
		v, ok := ParseLeafView(leaf)
		if ok != (err == nil) {
			t.Fatalf("ParseLeafView ok %v but UnmarshalLeaf error %v", ok, err)
		}
		if err != nil {
			return
		}
		if v.Seq != e.Seq || string(v.EventID) != e.EventID || string(v.EventType) != e.EventType ||
			v.OccurredAt != e.OccurredAt.UnixNano() || v.RecordedAt != e.RecordedAt.UnixNano() ||
			!bytes.Equal(v.PayloadSHA256, e.PayloadSHA256[:]) {
			t.Fatalf("ParseLeafView %+v differs from UnmarshalLeaf %+v", v, e)
		}
		if strs := e.stringFields(); [8]string{string(v.Strings[0]), string(v.Strings[1]), string(v.Strings[2]),
			string(v.Strings[3]), string(v.Strings[4]), string(v.Strings[5]), string(v.Strings[6]), string(v.Strings[7])} !=
			[8]string(strs[2:]) {
			t.Fatalf("ParseLeafView strings %q differ from UnmarshalLeaf %+v", v.Strings, e)
		}
		if err := e.Validate(); err != nil {
			t.Fatalf("UnmarshalLeaf returned an invalid entry: %v", err)
		}
		if got := e.MarshalLeaf(); !bytes.Equal(got, leaf) {
			t.Fatalf("UnmarshalLeaf accepted %x, which re-encodes as %x", leaf, got)
		}
		if s, ok := leafSeq(leaf); !ok || s != e.Seq {
			t.Fatalf("leafSeq = %d, %v; entry seq %d", s, ok, e.Seq)
		}
	})
}
