package auditlog

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// goldenCheckpoint37 is the checkpoint text for the first 37 sample leaves at testTime, and
// goldenSigned37 the same signed with the test key (Ed25519 signatures are deterministic).
const (
	goldenCheckpoint37 = "mash.example/audit\n" +
		"37\n" +
		"AjTL/xiaPJScmUcdu7MkrhTrrTam6z30jV7Uq5/pgU0=\n" +
		"time 2026-03-02T09:15:30Z\n"
	goldenSigned37 = goldenCheckpoint37 + "\n" +
		"— mash.example/audit Ocz8Cd2TZN7FSy2N5eALyyhVs1ZmnqVPMLfopQduWEyTPonHMcS9Yy3HrmW/wy2EfgbE86p7f3MF5XY4CnnfrkE3WQ8=\n"
)

func TestCheckpointGolden(t *testing.T) {
	t.Parallel()
	m := buildTree(t, sampleLeaves(37))
	cp, signed := signedCheckpoint(t, m, 37)
	if got := string(cp.Marshal()); got != goldenCheckpoint37 {
		t.Fatalf("Marshal =\n%s\nwant\n%s", got, goldenCheckpoint37)
	}
	if string(signed) != goldenSigned37 {
		t.Fatalf("Sign =\n%s\nwant\n%s", signed, goldenSigned37)
	}
	parsed, err := ParseCheckpoint([]byte(goldenCheckpoint37))
	if err != nil {
		t.Fatal(err)
	}
	if parsed != cp {
		t.Fatalf("ParseCheckpoint = %+v, want %+v", parsed, cp)
	}
	opened, err := OpenCheckpoint([]byte(goldenSigned37), testVKey, testOrigin)
	if err != nil {
		t.Fatal(err)
	}
	if opened != cp {
		t.Fatalf("OpenCheckpoint = %+v, want %+v", opened, cp)
	}
}

func TestCheckpointMarshalParse(t *testing.T) {
	t.Parallel()
	root := tlog.Hash{1, 2, 3}
	tests := []struct {
		name string
		cp   Checkpoint
		text string
	}{
		{"empty tree, no time", Checkpoint{Origin: "o", Size: 0, Root: emptyRoot},
			"o\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n"},
		{"nanoseconds", Checkpoint{Origin: "mash.example/audit", Size: 1, Root: root, Time: time.Date(2026, 1, 2, 3, 4, 5, 600, time.UTC)},
			"mash.example/audit\n1\nAQIDAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\ntime 2026-01-02T03:04:05.0000006Z\n"},
		{"zone normalised to UTC", Checkpoint{Origin: "o", Size: MaxTreeSize, Root: root, Time: time.Date(2026, 6, 1, 12, 0, 0, 0, time.FixedZone("BST", 3600))},
			"o\n4611686018427387903\nAQIDAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\ntime 2026-06-01T11:00:00Z\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := string(tt.cp.Marshal()); got != tt.text {
				t.Fatalf("Marshal = %q, want %q", got, tt.text)
			}
			got, err := ParseCheckpoint([]byte(tt.text))
			if err != nil {
				t.Fatal(err)
			}
			if got.Origin != tt.cp.Origin || got.Size != tt.cp.Size || got.Root != tt.cp.Root || !got.Time.Equal(tt.cp.Time) {
				t.Fatalf("ParseCheckpoint = %+v, want %+v", got, tt.cp)
			}
		})
	}
}

func TestParseCheckpointRejects(t *testing.T) {
	t.Parallel()
	const root = "AjTL/xiaPJScmUcdu7MkrhTrrTam6z30jV7Uq5/pgU0="
	tests := []struct{ name, text string }{
		{"empty", ""},
		{"no final newline", "o\n1\n" + root},
		{"two lines", "o\n1\n"},
		{"blank line at end", "o\n1\n" + root + "\n\n"},
		{"blank line in the middle", "o\n\n1\n" + root + "\n"},
		{"empty origin", "\n1\n" + root + "\n"},
		{"origin with tab", "o\tx\n1\n" + root + "\n"},
		{"origin with trailing space", "o \n1\n" + root + "\n"},
		{"origin with CR", "o\r\n1\n" + root + "\n"},
		{"origin not UTF-8", "o\xff\n1\n" + root + "\n"},
		{"origin too long", strings.Repeat("o", 257) + "\n1\n" + root + "\n"},
		{"negative size", "o\n-1\n" + root + "\n"},
		{"plus sign", "o\n+1\n" + root + "\n"},
		{"leading zero", "o\n01\n" + root + "\n"},
		{"size with space", "o\n 1\n" + root + "\n"},
		{"hex size", "o\n0x1\n" + root + "\n"},
		{"size above MaxTreeSize", "o\n4611686018427387904\n" + root + "\n"},
		{"size overflows int64", "o\n9223372036854775808\n" + root + "\n"},
		{"root of 31 bytes", "o\n1\nAjTL/xiaPJScmUcdu7MkrhTrrTam6z30jV7Uq5/pgQ==\n"},
		{"root unpadded", "o\n1\nAjTL/xiaPJScmUcdu7MkrhTrrTam6z30jV7Uq5/pgU0\n"},
		{"root with spare bits set", "o\n1\nAjTL/xiaPJScmUcdu7MkrhTrrTam6z30jV7Uq5/pgU1=\n"},
		{"root URL-safe alphabet", "o\n1\nAjTL_xiaPJScmUcdu7MkrhTrrTam6z30jV7Uq5_pgU0=\n"},
		{"root in hex", "o\n1\n0234cbff189a3c949c99471dbbb324ae14ebad36a6eb3df48d5ed4ab9fe9814d\n"},
		{"unknown extension", "o\n1\n" + root + "\nwitness x\n"},
		{"two extensions", "o\n1\n" + root + "\ntime 2026-03-02T09:15:30Z\ntime 2026-03-02T09:15:30Z\n"},
		{"time with offset", "o\n1\n" + root + "\ntime 2026-03-02T10:15:30+01:00\n"},
		{"time with trailing zeros", "o\n1\n" + root + "\ntime 2026-03-02T09:15:30.100Z\n"},
		{"time lower-case z", "o\n1\n" + root + "\ntime 2026-03-02T09:15:30z\n"},
		{"zero time line", "o\n1\n" + root + "\ntime 0001-01-01T00:00:00Z\n"},
		{"time not a time", "o\n1\n" + root + "\ntime yesterday\n"},
		{"time two spaces", "o\n1\n" + root + "\ntime  2026-03-02T09:15:30Z\n"},
		{"CRLF", "o\r\n1\r\n" + root + "\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if cp, err := ParseCheckpoint([]byte(tt.text)); err == nil {
				t.Fatalf("ParseCheckpoint(%q) = %+v, want an error", tt.text, cp)
			}
		})
	}
}

func TestSignRejects(t *testing.T) {
	t.Parallel()
	s, err := NewSigner(testSKey)
	if err != nil {
		t.Fatal(err)
	}
	good := Checkpoint{Origin: testOrigin, Size: 1, Time: testTime}
	tests := []struct {
		name string
		edit func(*Checkpoint)
	}{
		{"no time", func(c *Checkpoint) { c.Time = time.Time{} }},
		{"negative size", func(c *Checkpoint) { c.Size = -1 }},
		{"size too large", func(c *Checkpoint) { c.Size = MaxTreeSize + 1 }},
		{"origin with newline", func(c *Checkpoint) { c.Origin = "a\nb" }},
		{"empty origin", func(c *Checkpoint) { c.Origin = "" }},
		{"year 10000", func(c *Checkpoint) { c.Time = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := good
			tt.edit(&c)
			if signed, err := s.Sign(c); err == nil {
				t.Fatalf("Sign(%+v) = %q, want an error", c, signed)
			}
		})
	}
	if _, err := NewSigner(testVKey); err == nil {
		t.Fatal("NewSigner accepted a public key")
	}
	if s.Name() != testOrigin {
		t.Fatalf("Name = %q", s.Name())
	}
}

func TestOpenCheckpoint(t *testing.T) {
	t.Parallel()
	otherSKey, otherVKey, err := GenerateKey(testOrigin)
	if err != nil {
		t.Fatal(err)
	}
	other, err := NewSigner(otherSKey)
	if err != nil {
		t.Fatal(err)
	}
	cp, err := ParseCheckpoint([]byte(goldenCheckpoint37))
	if err != nil {
		t.Fatal(err)
	}
	signedByOther, err := other.Sign(cp)
	if err != nil {
		t.Fatal(err)
	}
	// A witness cosignature from a key we do not know is carried along, not trusted.
	witnessSKey, _, err := GenerateKey("witness.example")
	if err != nil {
		t.Fatal(err)
	}
	witness, err := note.NewSigner(witnessSKey)
	if err != nil {
		t.Fatal(err)
	}
	n, err := note.Open([]byte(goldenSigned37), note.VerifierList(mustVerifier(t, testVKey)))
	if err != nil {
		t.Fatal(err)
	}
	cosigned, err := note.Sign(n, witness)
	if err != nil {
		t.Fatal(err)
	}
	onlyWitness, err := note.Sign(&note.Note{Text: goldenCheckpoint37}, witness)
	if err != nil {
		t.Fatal(err)
	}
	replace := func(old, new string) []byte {
		if !strings.Contains(goldenSigned37, old) {
			t.Fatalf("golden note has no %q", old)
		}
		return []byte(strings.Replace(goldenSigned37, old, new, 1))
	}
	otherRoot := Checkpoint{Origin: testOrigin, Size: 37, Root: tlog.Hash{9}, Time: testTime}

	tests := []struct {
		name      string
		signed    []byte
		vkey      string
		origin    string
		ok        bool
		signature bool // the failure must be the signature check itself
	}{
		{"right key", []byte(goldenSigned37), testVKey, testOrigin, true, false},
		{"with a witness cosignature", cosigned, testVKey, testOrigin, true, false},
		{"other key's signature, our vkey", signedByOther, testVKey, testOrigin, false, false},
		{"our signature, other vkey", []byte(goldenSigned37), otherVKey, testOrigin, false, false},
		{"only a witness signature", onlyWitness, testVKey, testOrigin, false, false},
		{"wrong origin", []byte(goldenSigned37), testVKey, "mash.example/other", false, false},
		{"size edited", replace("\n37\n", "\n38\n"), testVKey, testOrigin, false, true},
		{"size shrunk", replace("\n37\n", "\n3\n"), testVKey, testOrigin, false, true},
		{"root edited", replace("AjTL/xia", "AjTL/xib"), testVKey, testOrigin, false, true},
		{"root replaced", replace(goldenCheckpoint37, string(otherRoot.Marshal())), testVKey, testOrigin, false, true},
		{"time edited", replace("09:15:30Z", "09:15:31Z"), testVKey, testOrigin, false, true},
		{"time removed", replace("time 2026-03-02T09:15:30Z\n", ""), testVKey, testOrigin, false, true},
		{"extension added", replace("Z\n\n", "Z\nextra\n\n"), testVKey, testOrigin, false, true},
		{"origin edited", replace("mash.example/audit\n37", "mash.example/audiT\n37"), testVKey, testOrigin, false, true},
		{"no signature", []byte(goldenCheckpoint37), testVKey, testOrigin, false, false},
		{"signature spare bits set", replace("WQ8=", "WQ9="), testVKey, testOrigin, false, false},
		{"malformed vkey", []byte(goldenSigned37), "not a key", testOrigin, false, false},
		{"oversized", append(bytes.Repeat([]byte("x"), maxSignedNote), goldenSigned37...), testVKey, testOrigin, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := OpenCheckpoint(tt.signed, tt.vkey, tt.origin)
			if tt.ok {
				if err != nil || got != cp {
					t.Fatalf("OpenCheckpoint = %+v, %v; want %+v", got, err, cp)
				}
				return
			}
			if err == nil {
				t.Fatalf("OpenCheckpoint accepted it: %+v", got)
			}
			var bad *note.InvalidSignatureError
			if tt.signature && !errors.As(err, &bad) {
				t.Fatalf("err = %v, want a signature failure", err)
			}
		})
	}
}

// TestOpenCheckpointEveryBitFlip flips each bit of a signed checkpoint in turn; not one of
// the results may open.
func TestOpenCheckpointEveryBitFlip(t *testing.T) {
	t.Parallel()
	signed := []byte(goldenSigned37)
	if _, err := OpenCheckpoint(signed, testVKey, testOrigin); err != nil {
		t.Fatal(err)
	}
	for bit := range len(signed) * 8 {
		if cp, err := OpenCheckpoint(flipBit(signed, bit), testVKey, testOrigin); err == nil {
			t.Errorf("bit %d (byte %d %q) flipped: still opens as %+v", bit, bit/8, signed[bit/8], cp)
		}
	}
}

func mustVerifier(t *testing.T, vkey string) note.Verifier {
	t.Helper()
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestVerifierKeyOfMatchesGenerateKey(t *testing.T) {
	skey, vkey, err := GenerateKey("mash-audit")
	if err != nil {
		t.Fatal(err)
	}
	got, err := VerifierKeyOf(skey)
	if err != nil {
		t.Fatal(err)
	}
	if got != vkey {
		t.Fatalf("VerifierKeyOf = %q, want %q", got, vkey)
	}
	if _, err := VerifierKeyOf(vkey); err == nil {
		t.Fatal("a public key was accepted as a private one")
	}
}
