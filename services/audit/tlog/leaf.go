package auditlog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"golang.org/x/mod/sumdb/tlog"
)

// LeafVersion is the first byte of every leaf this package writes. A new layout gets a new
// version byte; old leaves keep theirs forever because they are hashed as stored.
const LeafVersion byte = 0x01

// MaxFieldSize bounds each leaf field (1 KiB). Identifiers and summaries are far shorter;
// the bound keeps a hostile export file from making the decoder allocate without limit.
const MaxFieldSize = 1024

// leafFields is the number of length-prefixed fields after the version byte.
const leafFields = 14

// Entry is one audit decision as it is committed to the log. It holds identifiers, types,
// roles, the decision summary, times and the SHA-256 of the encrypted payload — never
// personal data, which lives in the payload table encrypted per case.
type Entry struct {
	Seq           int64     // index of the leaf in the tree (0-based)
	EventID       string    // id of the event that caused the entry (required)
	EventType     string    // e.g. "mash.events.v1.DecisionRecorded" (required)
	OccurredAt    time.Time // when the decision happened
	RecordedAt    time.Time // when the audit service accepted it
	Partnership   string    // safeguarding partnership id
	ReferralID    string    // referral id
	ChildID       string    // pseudonymous child id, not a name or NHS number
	Actor         string    // user or service id
	ActorRole     string    // role the actor acted in
	Agency        string    // agency id of the actor
	PackVersion   string    // version of the rules pack that produced the decision
	Decision      string    // short decision code, e.g. "strategy-discussion"
	PayloadSHA256 [32]byte  // SHA-256 of the encrypted payload; zero when there is none
}

// Validate reports whether e can be encoded as a leaf that decodes back to e. The audit
// service calls it before appending, because MarshalLeaf cannot fail and an invalid entry
// (for example a zero time, which has no Unix-nanosecond form) would be committed wrongly.
func (e Entry) Validate() error {
	if e.Seq < 0 {
		return fmt.Errorf("auditlog: entry seq %d is negative", e.Seq)
	}
	for i, s := range e.stringFields() {
		name := stringFieldNames[i]
		if len(s) > MaxFieldSize {
			return fmt.Errorf("auditlog: entry %s is %d bytes, more than %d", name, len(s), MaxFieldSize)
		}
		if !utf8.ValidString(s) {
			return fmt.Errorf("auditlog: entry %s is not valid UTF-8", name)
		}
	}
	if e.EventID == "" || e.EventType == "" {
		return errors.New("auditlog: entry needs an event id and an event type")
	}
	for _, t := range []struct {
		name string
		t    time.Time
	}{{"occurred_at", e.OccurredAt}, {"recorded_at", e.RecordedAt}} {
		// UnixNano covers 1678..2262; outside that it wraps, and the decoded time would differ.
		if t.t.IsZero() || !time.Unix(0, t.t.UnixNano()).Equal(t.t) {
			return fmt.Errorf("auditlog: entry %s %v is not representable in Unix nanoseconds", t.name, t.t)
		}
	}
	return nil
}

var stringFieldNames = [...]string{
	"event_id", "event_type", "partnership", "referral_id", "child_id",
	"actor", "actor_role", "agency", "pack_version", "decision",
}

func (e Entry) stringFields() [10]string {
	return [10]string{
		e.EventID, e.EventType, e.Partnership, e.ReferralID, e.ChildID,
		e.Actor, e.ActorRole, e.Agency, e.PackVersion, e.Decision,
	}
}

// MarshalLeaf returns the canonical leaf bytes of e:
//
//	0x01                                   version
//	field(seq)                             8 bytes, int64 big-endian
//	field(event_id) field(event_type)      UTF-8
//	field(occurred_at) field(recorded_at)  8 bytes each, int64 Unix nanoseconds (UTC), big-endian
//	field(partnership) field(referral_id) field(child_id) field(actor) field(actor_role)
//	field(agency) field(pack_version) field(decision)
//	field(payload_sha256)                  32 bytes
//
// where field(x) is uvarint(len(x)) followed by x, with the shortest uvarint encoding.
// Every field is length-prefixed, fixed-width ones too, so one rule reads the whole leaf.
// The output is a function of e alone (time zones do not matter). Call [Entry.Validate]
// first; the bytes of an invalid entry do not decode back to it.
//
// Store these bytes and hash the stored bytes. Verification never re-marshals an Entry:
// re-encoding would tie every old proof to today's encoder.
func (e Entry) MarshalLeaf() []byte {
	size := 1 + 3*(1+8) + 1 + 32 + 1
	for _, s := range e.stringFields() {
		size += binary.MaxVarintLen16 + len(s)
	}
	b := make([]byte, 0, size)
	b = append(b, LeafVersion)
	b = appendInt64Field(b, e.Seq)
	b = appendField(b, e.EventID)
	b = appendField(b, e.EventType)
	b = appendInt64Field(b, e.OccurredAt.UnixNano())
	b = appendInt64Field(b, e.RecordedAt.UnixNano())
	strs := e.stringFields()
	for _, s := range strs[2:] {
		b = appendField(b, s)
	}
	b = binary.AppendUvarint(b, 32)
	return append(b, e.PayloadSHA256[:]...)
}

func appendField(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendInt64Field(b []byte, v int64) []byte {
	b = append(b, 8)
	return binary.BigEndian.AppendUint64(b, uint64(v))
}

// UnmarshalLeaf decodes leaf bytes made by [Entry.MarshalLeaf]. It accepts exactly the
// canonical encoding: a known version, shortest-form lengths, fixed-width fields of their
// exact width, fields of at most [MaxFieldSize] bytes, valid UTF-8, no trailing bytes, and
// an entry that passes [Entry.Validate]. So UnmarshalLeaf(b) succeeding implies
// MarshalLeaf of the result equals b. Times come back in UTC.
func UnmarshalLeaf(leaf []byte) (Entry, error) {
	if len(leaf) == 0 {
		return Entry{}, errors.New("auditlog: empty leaf")
	}
	if leaf[0] != LeafVersion {
		return Entry{}, fmt.Errorf("auditlog: unknown leaf version 0x%02x", leaf[0])
	}
	d := leafDecoder{rest: leaf[1:]}
	var e Entry
	e.Seq = d.int64Field("seq")
	e.EventID = d.stringField("event_id")
	e.EventType = d.stringField("event_type")
	e.OccurredAt = time.Unix(0, d.int64Field("occurred_at")).UTC()
	e.RecordedAt = time.Unix(0, d.int64Field("recorded_at")).UTC()
	e.Partnership = d.stringField("partnership")
	e.ReferralID = d.stringField("referral_id")
	e.ChildID = d.stringField("child_id")
	e.Actor = d.stringField("actor")
	e.ActorRole = d.stringField("actor_role")
	e.Agency = d.stringField("agency")
	e.PackVersion = d.stringField("pack_version")
	e.Decision = d.stringField("decision")
	copy(e.PayloadSHA256[:], d.fixed("payload_sha256", 32))
	if d.err != nil {
		return Entry{}, d.err
	}
	if len(d.rest) != 0 {
		return Entry{}, fmt.Errorf("auditlog: %d trailing bytes after leaf", len(d.rest))
	}
	if err := e.Validate(); err != nil {
		return Entry{}, err
	}
	return e, nil
}

// leafDecoder reads fields in order and keeps the first error, so UnmarshalLeaf reads as a
// straight list of fields.
type leafDecoder struct {
	rest []byte
	err  error
}

func (d *leafDecoder) field(name string) []byte {
	if d.err != nil {
		return nil
	}
	n, w := binary.Uvarint(d.rest)
	if w <= 0 {
		d.err = fmt.Errorf("auditlog: leaf field %s: bad length prefix", name)
		return nil
	}
	// Uvarint accepts padded forms such as 0x80 0x00; only the shortest form is canonical,
	// otherwise two byte strings (two leaf hashes) would decode to the same entry.
	if w != uvarintLen(n) {
		d.err = fmt.Errorf("auditlog: leaf field %s: length prefix not in shortest form", name)
		return nil
	}
	if n > MaxFieldSize {
		d.err = fmt.Errorf("auditlog: leaf field %s: %d bytes, more than %d", name, n, MaxFieldSize)
		return nil
	}
	if uint64(len(d.rest)-w) < n {
		d.err = fmt.Errorf("auditlog: leaf field %s: truncated", name)
		return nil
	}
	v := d.rest[w : w+int(n)]
	d.rest = d.rest[w+int(n):]
	return v
}

func (d *leafDecoder) fixed(name string, size int) []byte {
	v := d.field(name)
	if d.err == nil && len(v) != size {
		d.err = fmt.Errorf("auditlog: leaf field %s: %d bytes, want %d", name, len(v), size)
		return nil
	}
	return v
}

func (d *leafDecoder) int64Field(name string) int64 {
	v := d.fixed(name, 8)
	if v == nil {
		return 0
	}
	return int64(binary.BigEndian.Uint64(v))
}

func (d *leafDecoder) stringField(name string) string {
	v := d.field(name)
	if d.err == nil && !utf8.Valid(v) {
		d.err = fmt.Errorf("auditlog: leaf field %s: not valid UTF-8", name)
		return ""
	}
	return string(v)
}

func uvarintLen(n uint64) int {
	w := 1
	for n >= 0x80 {
		n >>= 7
		w++
	}
	return w
}

// leafSeq reads the seq field of a version-1 leaf without decoding the rest, so the
// verifier can cheaply notice a leaf stored at the wrong position.
func leafSeq(leaf []byte) (int64, bool) {
	if len(leaf) < 10 || leaf[0] != LeafVersion || leaf[1] != 8 {
		return 0, false
	}
	return int64(binary.BigEndian.Uint64(leaf[2:10])), true
}

// LeafHash is the RFC 6962 leaf hash SHA-256(0x00 || leaf) (tlog.RecordHash). Pass it the
// bytes exactly as stored.
func LeafHash(leaf []byte) tlog.Hash {
	return tlog.RecordHash(leaf)
}

// PreparedLeaf is what a [Verifier] needs of one leaf: its leaf hash and its own seq field.
// [PrepareLeaf] depends on the leaf bytes alone, so a reader can prepare leaves on several
// goroutines (hashing is most of the verifier's work) while the tree is still built in
// order with [Verifier.AddPrepared]. The zero value is a leaf that is not a version-1 leaf
// and whose hash matches nothing.
type PreparedLeaf struct {
	hash    tlog.Hash
	seq     int64
	version bool // a version-1 leaf, whose seq field is seq
}

// PrepareLeaf hashes leaf (the bytes exactly as stored) and reads its seq field.
func PrepareLeaf(leaf []byte) PreparedLeaf {
	seq, ok := leafSeq(leaf)
	return PreparedLeaf{hash: LeafHash(leaf), seq: seq, version: ok}
}

// LeafView is a leaf decoded without copying: each field is a slice of the leaf's bytes,
// valid as long as they are. The verifier reads a million leaves in one pass and compares
// them with columns as raw bytes, so it decodes with [ParseLeafView] and decodes into an
// [Entry] (which allocates a string per field) only when something differs.
type LeafView struct {
	Seq                    int64
	OccurredAt, RecordedAt int64     // Unix nanoseconds
	EventID, EventType     []byte    // UTF-8
	Strings                [8][]byte // partnership, referral_id, child_id, actor, actor_role, agency, pack_version, decision
	PayloadSHA256          []byte    // 32 bytes
}

// ParseLeafView decodes leaf as [UnmarshalLeaf] does, accepting exactly what it accepts,
// without allocating.
func ParseLeafView(leaf []byte) (LeafView, bool) {
	var v LeafView
	if len(leaf) == 0 || leaf[0] != LeafVersion {
		return v, false
	}
	rest := leaf[1:]
	field := func() ([]byte, bool) {
		n, w := binary.Uvarint(rest)
		if w <= 0 || w != uvarintLen(n) || n > MaxFieldSize || uint64(len(rest)-w) < n {
			return nil, false
		}
		f := rest[w : w+int(n) : w+int(n)]
		rest = rest[w+int(n):]
		return f, true
	}
	int64Field := func() (int64, bool) {
		f, ok := field()
		if !ok || len(f) != 8 {
			return 0, false
		}
		return int64(binary.BigEndian.Uint64(f)), true
	}
	textField := func() ([]byte, bool) {
		f, ok := field()
		return f, ok && utf8.Valid(f)
	}
	var ok bool
	if v.Seq, ok = int64Field(); !ok || v.Seq < 0 {
		return v, false
	}
	if v.EventID, ok = textField(); !ok || len(v.EventID) == 0 {
		return v, false
	}
	if v.EventType, ok = textField(); !ok || len(v.EventType) == 0 {
		return v, false
	}
	if v.OccurredAt, ok = int64Field(); !ok {
		return v, false
	}
	if v.RecordedAt, ok = int64Field(); !ok {
		return v, false
	}
	for i := range v.Strings {
		if v.Strings[i], ok = textField(); !ok {
			return v, false
		}
	}
	if v.PayloadSHA256, ok = field(); !ok || len(v.PayloadSHA256) != 32 || len(rest) != 0 {
		return v, false
	}
	// Validate's time check: every int64 of nanoseconds is a non-zero time that round-trips.
	return v, true
}
