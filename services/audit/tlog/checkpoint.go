package auditlog

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// MaxTreeSize is the largest tree size this package accepts. The x/mod tlog arithmetic
// loops forever on sizes near 2^63, and sizes come from untrusted checkpoints and export
// files, so they are bounded well below that.
const MaxTreeSize int64 = 1<<62 - 1

// maxOriginLen bounds the origin line; origins are short schema-less URLs.
const maxOriginLen = 256

// maxSignedNote bounds a signed checkpoint read from an untrusted source: a checkpoint is a
// few hundred bytes even with a handful of witness cosignatures.
const maxSignedNote = 64 << 10

// timePrefix starts the one extension line this package writes.
const timePrefix = "time "

// Checkpoint is a signed statement of the log's head in the C2SP tlog-checkpoint format
// (https://c2sp.org/tlog-checkpoint):
//
//	<origin>\n
//	<size, decimal, no leading zeros>\n
//	<root hash, standard base64 with padding>\n
//	time <RFC 3339 UTC, nanoseconds without trailing zeros>\n
//
// The time line is a C2SP extension line carrying when the sequencer signed the head, so an
// auditor can tell a stale head from a fresh one. It is written only when Time is set;
// [Signer.Sign] insists on it. No other extension lines are accepted: this package is the
// only writer of mash checkpoints, and a line it does not understand is an error, not
// something to skip.
type Checkpoint struct {
	Origin string    // identifies the log, e.g. "mash.example.gov.uk/audit"
	Size   int64     // number of leaves
	Root   tlog.Hash // RFC 6962 root of the first Size leaves
	Time   time.Time // when the checkpoint was signed; zero means no time line
}

// Marshal returns the checkpoint text (the body of the signed note). Marshal does not
// validate; [Signer.Sign] does.
func (c Checkpoint) Marshal() []byte {
	var b bytes.Buffer
	b.WriteString(c.Origin)
	b.WriteByte('\n')
	b.WriteString(strconv.FormatInt(c.Size, 10))
	b.WriteByte('\n')
	b.WriteString(base64.StdEncoding.EncodeToString(c.Root[:]))
	b.WriteByte('\n')
	if !c.Time.IsZero() {
		b.WriteString(timePrefix)
		b.WriteString(formatTime(c.Time))
		b.WriteByte('\n')
	}
	return b.Bytes()
}

func formatTime(t time.Time) string {
	return t.UTC().Format(time.RFC3339Nano)
}

func (c Checkpoint) validate() error {
	if err := checkOrigin(c.Origin); err != nil {
		return err
	}
	if c.Size < 0 || c.Size > MaxTreeSize {
		return fmt.Errorf("auditlog: checkpoint size %d out of range", c.Size)
	}
	if !c.Time.IsZero() {
		if y := c.Time.UTC().Year(); y < 0 || y > 9999 {
			return fmt.Errorf("auditlog: checkpoint time %v has no RFC 3339 form", c.Time)
		}
	}
	return nil
}

func checkOrigin(origin string) error {
	if origin == "" || len(origin) > maxOriginLen {
		return fmt.Errorf("auditlog: checkpoint origin must be 1..%d bytes", maxOriginLen)
	}
	if !utf8.ValidString(origin) {
		return errors.New("auditlog: checkpoint origin is not valid UTF-8")
	}
	for _, r := range origin {
		// Signed notes forbid control characters; spaces at the edges are invisible and
		// would let two origins that look the same differ.
		if unicode.IsControl(r) {
			return errors.New("auditlog: checkpoint origin contains a control character")
		}
	}
	if strings.TrimSpace(origin) != origin {
		return errors.New("auditlog: checkpoint origin has leading or trailing space")
	}
	return nil
}

// ParseCheckpoint parses checkpoint text strictly: three lines, or four with the time line,
// each ending in a newline; no blank lines, no other extension lines; the size in decimal
// without sign or leading zeros, 0 <= size <= [MaxTreeSize]; the root exactly 32 bytes in
// canonical padded base64; the time in canonical UTC RFC 3339. A text that parses is
// byte-for-byte what Marshal would write for the result.
//
// ParseCheckpoint checks no signature; use [OpenCheckpoint] on anything received.
func ParseCheckpoint(text []byte) (Checkpoint, error) {
	if len(text) == 0 || text[len(text)-1] != '\n' {
		return Checkpoint{}, errors.New("auditlog: checkpoint must end with a newline")
	}
	lines := strings.Split(string(text[:len(text)-1]), "\n")
	if len(lines) < 3 || len(lines) > 4 {
		return Checkpoint{}, fmt.Errorf("auditlog: checkpoint has %d lines, want 3 or 4", len(lines))
	}
	var c Checkpoint
	c.Origin = lines[0]
	if err := checkOrigin(c.Origin); err != nil {
		return Checkpoint{}, err
	}
	size, err := parseSize(lines[1])
	if err != nil {
		return Checkpoint{}, err
	}
	c.Size = size
	root, err := base64.StdEncoding.Strict().DecodeString(lines[2])
	// Strict still skips \r and \n, so compare with the canonical encoding as well.
	if err != nil || len(root) != tlog.HashSize || base64.StdEncoding.EncodeToString(root) != lines[2] {
		return Checkpoint{}, errors.New("auditlog: checkpoint root is not a base64 32-byte hash")
	}
	copy(c.Root[:], root)
	if len(lines) == 4 {
		ts, ok := strings.CutPrefix(lines[3], timePrefix)
		if !ok {
			return Checkpoint{}, fmt.Errorf("auditlog: unknown checkpoint extension line %q", lines[3])
		}
		t, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil || t.IsZero() || formatTime(t) != ts {
			return Checkpoint{}, fmt.Errorf("auditlog: checkpoint time %q is not canonical UTC RFC 3339", ts)
		}
		c.Time = t.UTC()
	}
	return c, nil
}

func parseSize(s string) (int64, error) {
	bad := s == "" || len(s) > 19 || (len(s) > 1 && s[0] == '0')
	for i := 0; i < len(s) && !bad; i++ {
		bad = s[i] < '0' || s[i] > '9'
	}
	if bad {
		return 0, fmt.Errorf("auditlog: checkpoint size %q is not a canonical decimal", s)
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n > MaxTreeSize {
		return 0, fmt.Errorf("auditlog: checkpoint size %q out of range", s)
	}
	return n, nil
}

// GenerateKey makes a new Ed25519 note key pair named name (use the log's origin, as C2SP
// recommends). skey is secret and belongs outside the database (a secret store, an HSM
// wrapper); vkey is public and goes to every auditor.
func GenerateKey(name string) (skey, vkey string, err error) {
	skey, vkey, err = note.GenerateKey(rand.Reader, name)
	if err != nil {
		return "", "", fmt.Errorf("auditlog: generate key: %w", err)
	}
	return skey, vkey, nil
}

// VerifierKeyOf returns the public verifier key ("name+hash+data") of the private note key
// skey, so a service holding only its signing key can check the checkpoints it signed the
// way an auditor would.
func VerifierKeyOf(skey string) (string, error) {
	// A note private key is PRIVATE+KEY+name+hash+base64(algorithm byte || seed).
	parts := strings.SplitN(skey, "+", 5)
	if len(parts) != 5 || parts[0] != "PRIVATE" || parts[1] != "KEY" {
		return "", errors.New("auditlog: signer key is not a note private key")
	}
	raw, err := base64.StdEncoding.DecodeString(parts[4])
	if err != nil || len(raw) != 1+ed25519.SeedSize || raw[0] != algEd25519 {
		return "", errors.New("auditlog: signer key is not an Ed25519 note key")
	}
	pub := ed25519.NewKeyFromSeed(raw[1:]).Public().(ed25519.PublicKey)
	vkey, err := note.NewEd25519VerifierKey(parts[2], pub)
	if err != nil {
		return "", fmt.Errorf("auditlog: verifier key: %w", err)
	}
	return vkey, nil
}

// algEd25519 is the note format's algorithm byte for Ed25519 keys.
const algEd25519 = 1

// Signer signs checkpoints with one Ed25519 note key.
type Signer struct {
	signer note.Signer
}

// NewSigner returns a Signer for an encoded private key ("PRIVATE+KEY+name+hash+data",
// as returned by [GenerateKey]).
func NewSigner(skey string) (*Signer, error) {
	s, err := note.NewSigner(skey)
	if err != nil {
		return nil, fmt.Errorf("auditlog: signer key: %w", err)
	}
	return &Signer{signer: s}, nil
}

// Name is the key name, which appears on the signature line.
func (s *Signer) Name() string { return s.signer.Name() }

// Sign validates c and returns it as a signed note: the checkpoint text, a blank line and
// one signature line. Checkpoints must carry a time.
func (s *Signer) Sign(c Checkpoint) ([]byte, error) {
	if err := c.validate(); err != nil {
		return nil, err
	}
	if c.Time.IsZero() {
		return nil, errors.New("auditlog: checkpoint to sign has no time")
	}
	signed, err := note.Sign(&note.Note{Text: string(c.Marshal())}, s.signer)
	if err != nil {
		return nil, fmt.Errorf("auditlog: sign checkpoint: %w", err)
	}
	return signed, nil
}

// OpenCheckpoint verifies a signed checkpoint with the public key vkey alone and returns
// it if the signature is valid, the text parses strictly and the origin is origin.
// Signature lines from other keys (witness cosignatures, say) are allowed and ignored; the
// note must carry a valid signature by vkey and no invalid one by it.
//
// Signatures must be in canonical base64: the standard decoder ignores the two spare bits
// at the end of a 68-byte signature, and a flipped spare bit must not verify.
func OpenCheckpoint(signed []byte, vkey string, origin string) (Checkpoint, error) {
	if len(signed) > maxSignedNote {
		return Checkpoint{}, fmt.Errorf("auditlog: signed checkpoint is %d bytes, more than %d", len(signed), maxSignedNote)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("auditlog: verifier key: %w", err)
	}
	n, err := note.Open(signed, note.VerifierList(v))
	if err != nil {
		return Checkpoint{}, fmt.Errorf("auditlog: open checkpoint: %w", err)
	}
	for _, sig := range n.Sigs {
		raw, err := base64.StdEncoding.DecodeString(sig.Base64)
		if err != nil || base64.StdEncoding.EncodeToString(raw) != sig.Base64 {
			return Checkpoint{}, errors.New("auditlog: open checkpoint: signature is not canonical base64")
		}
	}
	c, err := ParseCheckpoint([]byte(n.Text))
	if err != nil {
		return Checkpoint{}, err
	}
	if c.Origin != origin {
		return Checkpoint{}, fmt.Errorf("auditlog: checkpoint origin %q, want %q", c.Origin, origin)
	}
	return c, nil
}
