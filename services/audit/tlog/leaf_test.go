package auditlog

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"
)

// goldenLeaf42 is sampleEntry(42).MarshalLeaf(), spelled out field by field. If this test
// fails, the leaf format changed: that needs a new LeafVersion, never an edit here.
var goldenLeaf42 = strings.Join([]string{
	"01",                      // version
	"08" + "000000000000002a", // seq 42
	"1a" + hex.EncodeToString([]byte("01J9Z8Q4K3V7N2M5P6R8T00042")), // event_id
	"1f" + hex.EncodeToString([]byte("mash.events.v1.DecisionRecorded")),
	"08" + "1898fb7e02b29800", // occurred_at 2026-03-02T09:16:12Z = 1772442972000000000 ns
	"08" + "1898fb7e11994a80", // recorded_at 2026-03-02T09:16:12.25Z
	"0a" + hex.EncodeToString([]byte("northshire")),
	"0a" + hex.EncodeToString([]byte("ref-000014")),
	"0c" + hex.EncodeToString([]byte("child-000008")),
	"07" + hex.EncodeToString([]byte("user-55")),
	"0c" + hex.EncodeToString([]byte("mash-manager")),
	"0e" + hex.EncodeToString([]byte("northshire-csc")),
	"09" + hex.EncodeToString([]byte("2026.03.1")),
	"13" + hex.EncodeToString([]byte("strategy-discussion")),
	"20" + "a10e7a4fb2dd4458802cff5c53c6aa8b569b92bdca224d0dc6d82b8220d63291", // SHA-256("encrypted payload 42")
}, "")

// goldenLeafBytes is the same leaf as one committed hex string, to catch a mistake in
// spelling out goldenLeaf42.
const goldenLeafBytes = "0108000000000000002a1a30314a395a3851344b3356374e324d35503652385430303034321f6d6173682e6576656e74732e76312e4465636973696f6e5265636f72646564081898fb7e02b29800081898fb7e11994a800a6e6f72746873686972650a7265662d3030303031340c6368696c642d30303030303807757365722d35350c6d6173682d6d616e616765720e6e6f72746873686972652d63736309323032362e30332e311373747261746567792d64697363757373696f6e20a10e7a4fb2dd4458802cff5c53c6aa8b569b92bdca224d0dc6d82b8220d63291"

// goldenLeafHash42 is SHA-256(0x00 || goldenLeafBytes).
const goldenLeafHash42 = "ffd02173e6d936f2088a35e51c832fc4298e6bdf65ebca4ccaad78789ce92d4c"

func TestLeafGolden(t *testing.T) {
	t.Parallel()
	got := hex.EncodeToString(sampleEntry(42).MarshalLeaf())
	if got != goldenLeaf42 || got != goldenLeafBytes {
		t.Fatalf("MarshalLeaf(sampleEntry(42)) =\n%s\nwant\n%s", got, goldenLeafBytes)
	}
	h := LeafHash(sampleEntry(42).MarshalLeaf())
	if hex.EncodeToString(h[:]) != goldenLeafHash42 {
		t.Fatalf("LeafHash = %x, want %s", h, goldenLeafHash42)
	}
}

func TestLeafRoundTrip(t *testing.T) {
	t.Parallel()
	london, err := time.LoadLocation("Europe/London")
	if err != nil {
		london = time.FixedZone("BST", 3600)
	}
	long := strings.Repeat("x", MaxFieldSize)
	tests := []struct {
		name string
		e    Entry
	}{
		{"sample", sampleEntry(42)},
		{"zero seq and empty optional fields", Entry{Seq: 0, EventID: "e", EventType: "t", OccurredAt: testTime, RecordedAt: testTime}},
		{"max size fields", func() Entry {
			e := sampleEntry(7)
			e.Partnership, e.Decision, e.EventID = long, long, long
			return e
		}()},
		{"non-ASCII UTF-8", func() Entry { e := sampleEntry(1); e.Agency = "Gwasanaethau Cymdeithasol – Môn"; return e }()},
		{"times before 1970 and with zone", func() Entry {
			e := sampleEntry(2)
			e.OccurredAt = time.Date(1969, 12, 31, 23, 59, 59, 999999999, time.UTC)
			e.RecordedAt = time.Date(2026, 7, 1, 10, 0, 0, 1, london)
			return e
		}()},
		{"large seq", func() Entry { e := sampleEntry(3); e.Seq = 1<<62 - 1; return e }()},
		{"field of 128 bytes (two-byte length)", func() Entry { e := sampleEntry(4); e.ChildID = strings.Repeat("c", 128); return e }()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if err := tt.e.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			leaf := tt.e.MarshalLeaf()
			got, err := UnmarshalLeaf(leaf)
			if err != nil {
				t.Fatalf("UnmarshalLeaf: %v", err)
			}
			if !got.OccurredAt.Equal(tt.e.OccurredAt) || !got.RecordedAt.Equal(tt.e.RecordedAt) {
				t.Fatalf("times changed: %v %v, want %v %v", got.OccurredAt, got.RecordedAt, tt.e.OccurredAt, tt.e.RecordedAt)
			}
			if got.OccurredAt.Location() != time.UTC || got.RecordedAt.Location() != time.UTC {
				t.Fatal("decoded times are not UTC")
			}
			want := tt.e
			want.OccurredAt, want.RecordedAt = got.OccurredAt, got.RecordedAt
			if got != want {
				t.Fatalf("round trip changed the entry:\n got %+v\nwant %+v", got, want)
			}
			if again := got.MarshalLeaf(); !bytes.Equal(again, leaf) {
				t.Fatal("re-marshalling the decoded entry gives different bytes")
			}
			if s, ok := leafSeq(leaf); !ok || s != tt.e.Seq {
				t.Fatalf("leafSeq = %d, %v; want %d", s, ok, tt.e.Seq)
			}
		})
	}
}

func TestMarshalLeafIgnoresZone(t *testing.T) {
	t.Parallel()
	a := sampleEntry(9)
	b := a
	b.OccurredAt = a.OccurredAt.In(time.FixedZone("X", -7*3600))
	if !bytes.Equal(a.MarshalLeaf(), b.MarshalLeaf()) {
		t.Fatal("the same instant in another zone encodes differently")
	}
}

func TestUnmarshalLeafRejects(t *testing.T) {
	t.Parallel()
	good := sampleEntry(42).MarshalLeaf()
	// at returns the offset of the field with index i (0 = seq) in good.
	at := func(i int) int {
		off := 1
		for ; i > 0; i-- {
			n, w := binary.Uvarint(good[off:])
			off += w + int(n)
		}
		return off
	}
	edit := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	withField := func(i int, value []byte) []byte {
		return edit(func(b []byte) []byte {
			start := at(i)
			end := at(i + 1)
			out := append([]byte(nil), b[:start]...)
			out = binary.AppendUvarint(out, uint64(len(value)))
			out = append(out, value...)
			return append(out, b[end:]...)
		})
	}
	tests := []struct {
		name string
		leaf []byte
		want string
	}{
		{"empty", nil, "empty leaf"},
		{"unknown version 0", edit(func(b []byte) []byte { b[0] = 0; return b }), "unknown leaf version"},
		{"unknown version 2", edit(func(b []byte) []byte { b[0] = 2; return b }), "unknown leaf version"},
		{"version only", []byte{LeafVersion}, "seq"},
		{"trailing byte", append(append([]byte(nil), good...), 0), "trailing"},
		{"truncated in the hash", good[:len(good)-1], "truncated"},
		{"truncated in a length", good[:at(2)], "event_type"},
		{"seq of 7 bytes", withField(0, make([]byte, 7)), "want 8"},
		{"negative seq", withField(0, []byte{0x80, 0, 0, 0, 0, 0, 0, 1}), "negative"},
		{"time of 9 bytes", withField(3, make([]byte, 9)), "occurred_at"},
		{"hash of 31 bytes", withField(13, make([]byte, 31)), "payload_sha256"},
		{"oversized field", withField(7, bytes.Repeat([]byte("c"), MaxFieldSize+1)), "more than 1024"},
		{"invalid UTF-8", withField(12, []byte{'o', 0xff, 'k'}), "UTF-8"},
		{"overlong UTF-8", withField(5, []byte{0xc0, 0xaf}), "UTF-8"},
		{"empty event id", withField(1, nil), "event id"},
		{"empty event type", withField(2, nil), "event type"},
		{"padded length prefix", edit(func(b []byte) []byte {
			// 0x8a 0x00 is 10 in a two-byte uvarint: same value, different bytes.
			off := at(5)
			out := append([]byte(nil), b[:off]...)
			out = append(out, 0x8a, 0x00)
			return append(out, b[off+1:]...)
		}), "shortest form"},
		{"length prefix overflowing uint64", append(append([]byte(nil), good[:at(1)]...), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01), "bad length"},
		{"huge length", append(append([]byte(nil), good[:at(1)]...), 0xff, 0xff, 0xff, 0xff, 0x0f), "more than 1024"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := UnmarshalLeaf(tt.leaf)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("UnmarshalLeaf: err = %v, want one mentioning %q", err, tt.want)
			}
		})
	}
}

func TestEntryValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		edit func(*Entry)
		want string
	}{
		{"negative seq", func(e *Entry) { e.Seq = -1 }, "negative"},
		{"zero occurred_at", func(e *Entry) { e.OccurredAt = time.Time{} }, "occurred_at"},
		{"recorded_at after 2262", func(e *Entry) { e.RecordedAt = time.Date(2263, 1, 1, 0, 0, 0, 0, time.UTC) }, "recorded_at"},
		{"occurred_at before 1678", func(e *Entry) { e.OccurredAt = time.Date(1677, 1, 1, 0, 0, 0, 0, time.UTC) }, "occurred_at"},
		{"long actor", func(e *Entry) { e.Actor = strings.Repeat("a", MaxFieldSize+1) }, "actor"},
		{"bad UTF-8 decision", func(e *Entry) { e.Decision = "\xff" }, "decision"},
		{"no event id", func(e *Entry) { e.EventID = "" }, "event id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := sampleEntry(1)
			tt.edit(&e)
			if err := e.Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate: err = %v, want one mentioning %q", err, tt.want)
			}
		})
	}
}

// A leaf prepared apart (as the database verifier does on its reading goroutines) is added
// exactly as Add adds its bytes: the same report for every kind of problem Add notices.
func TestPreparedLeafAddsAsItsBytes(t *testing.T) {
	t.Parallel()
	const size = 24
	leaves := sampleLeaves(size)
	m := buildTree(t, leaves)
	cp := Checkpoint{Origin: testOrigin, Size: size, Root: mustRoot(t, m, size)}
	altered := sampleEntry(9)
	altered.Decision = "no-further-action"
	cases := map[string]func(rows []row){
		"untouched":      func([]row) {},
		"leaf changed":   func(rows []row) { rows[9].leaf = altered.MarshalLeaf() },
		"leaf moved":     func(rows []row) { rows[4].leaf = leaves[5] },
		"row seq wrong":  func(rows []row) { rows[7].seq = 8 },
		"not version 1":  func(rows []row) { rows[3].leaf = append([]byte{2}, leaves[3][1:]...) },
		"empty leaf":     func(rows []row) { rows[11].leaf = nil },
		"stored differs": func(rows []row) { rows[15].stored = LeafHash(leaves[16]) },
		"redacted":       func(rows []row) { rows[2].redacted, rows[20].redacted = true, true },
	}
	for name, tamper := range cases {
		for _, withStored := range []bool{false, true} {
			rows := rowsOf(leaves)
			tamper(rows)
			want, werr := feed(t, rows, withStored).Check(cp)
			v := NewVerifier()
			for _, r := range rows {
				var err error
				if withStored {
					err = v.AddPreparedWithStoredHash(r.seq, PrepareLeaf(r.leaf), r.redacted, r.stored)
				} else {
					err = v.AddPrepared(r.seq, PrepareLeaf(r.leaf), r.redacted)
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			got, gerr := v.Check(cp)
			if got != want || fmt.Sprint(gerr) != fmt.Sprint(werr) {
				t.Errorf("%s (stored hashes %v): prepared %+v, %v; from the bytes %+v, %v", name, withStored, got, gerr, want, werr)
			}
		}
	}
	if err := NewVerifier().AddPrepared(0, PreparedLeaf{}, false); err != nil {
		t.Fatal(err)
	}
	v := NewVerifier()
	_ = v.AddPrepared(0, PrepareLeaf(leaves[0]), false)
	if err := v.AddPreparedWithStoredHash(1, PrepareLeaf(leaves[1]), false, LeafHash(leaves[1])); err == nil {
		t.Fatal("AddPreparedWithStoredHash after AddPrepared: no error")
	}
}
