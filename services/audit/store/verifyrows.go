package store

// The verifier's reads: every entry and every stored tree hash streamed in order, on the
// raw wire bytes so that a row matching its leaf costs no decoding.

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// VerifyRow is one entry as the verifier reads it: every column and what is stored of its
// payload. StoredLeafHash is the caller's to fill (StreamEntryRange leaves it zero).
type VerifyRow struct {
	Entry
	Nonce, Ciphertext, Wrapped []byte // nil when no payload, or its key destroyed
	StoredLeafHash             [32]byte
}

// Column positions in the rows StreamEntryRange gives (verifyColumns, then with secrets the
// nonce, the ciphertext and the wrapped key).
const (
	ColSeq           = 0
	ColEventID       = 1
	ColEventType     = 2
	ColOccurredAt    = 3
	ColRecordedAt    = 4
	ColPartnership   = 5 // then referral_id, child_id, actor, actor_role, agency, pack_version, decision
	ColPayloadSHA256 = 13
	ColLeaf          = 14
	ColHasPayload    = 15
	ColCipherSHA256  = 16
	ColKeyReferral   = 17
	ColKeyDestroyed  = 18
)

// RawRow is the current row of StreamEntryRange as it came off the wire. The verifier
// compares a million rows with their leaves; doing it on the raw bytes, and decoding a row
// with Scan only when something differs, saves a string per column per row and the
// reflection of pgx's scanning.
type RawRow struct {
	// Values are the columns by Col* position, nil for NULL; valid only during the call.
	Values [][]byte
	// Binary says every column is of the type verifyColumns names and, text columns apart
	// (whose bytes are the string either way), in the binary wire format, so the values
	// may be compared as bytes (the event id as its 16 bytes) and Int64, Micros and Bool
	// used. When false, use Scan.
	Binary bool
	rows   pgx.Rows
	dst    []any
	finish func()
	row    VerifyRow
}

// Int64 is the int8 column at i (binary format).
func (r *RawRow) Int64(i int) (int64, bool) {
	v := r.Values[i]
	if len(v) != 8 {
		return 0, false
	}
	return int64(binary.BigEndian.Uint64(v)), true
}

// Micros is the timestamptz column at i as Unix microseconds; false for NULL or infinity.
func (r *RawRow) Micros(i int) (int64, bool) {
	us, ok := r.Int64(i)
	if !ok || us == math.MaxInt64 || us == math.MinInt64 {
		return 0, false
	}
	// The binary timestamptz counts from 2000-01-01; every finite value fits after the shift.
	return us + postgresEpochMicros, true
}

const postgresEpochMicros = 946_684_800_000_000

// Bool is the boolean column at i; false for NULL.
func (r *RawRow) Bool(i int) bool {
	v := r.Values[i]
	return len(v) == 1 && v[0] == 1
}

// Scan decodes the whole row. The result is reused by the next row.
func (r *RawRow) Scan() (*VerifyRow, error) {
	r.row = VerifyRow{}
	if err := r.rows.Scan(r.dst...); err != nil {
		return nil, err
	}
	r.finish()
	return &r.row, nil
}

// wantOIDs are the types of verifyColumns in order: what RawRow's accessors expect.
var wantOIDs = []uint32{pgtype.Int8OID, pgtype.UUIDOID, pgtype.TextOID, pgtype.TimestamptzOID, pgtype.TimestamptzOID,
	pgtype.TextOID, pgtype.TextOID, pgtype.TextOID, pgtype.TextOID, pgtype.TextOID, pgtype.TextOID, pgtype.TextOID, pgtype.TextOID,
	pgtype.ByteaOID, pgtype.ByteaOID, pgtype.BoolOID, pgtype.ByteaOID, pgtype.TextOID, pgtype.BoolOID}

// verifyColumns are entryColumns with the event id as its 16 bytes: formatting a million
// uuids as text is a measurable share of the server's work, and the verifier formats the
// bytes itself to compare them with the leaf (Scan still gives the text form).
var verifyColumns = strings.Replace(entryColumns, "e.event_id::text", "e.event_id", 1)

// SeqRange is a run of entries by seq, for reading the log in pieces on several
// connections: From <= seq < To. The first range of a split has no lower bound (a negative
// seq is read there, and verification names it) and the last no upper bound, and the last
// also reads, after the others, the rows without a seq that an ORDER BY seq puts last. So
// the ranges of a split read, one after the other, exactly the rows of one ordered read.
type SeqRange struct {
	From, To    int64
	First, Last bool
}

// AllEntries is the range of every entry.
var AllEntries = SeqRange{First: true, Last: true}

// SplitEntries cuts the entries into ranges of size entries each for a log of about n
// entries; the last range takes everything past the others, however many there are.
func SplitEntries(n, size int64) []SeqRange {
	if size <= 0 || n <= size {
		return []SeqRange{AllEntries}
	}
	count := (n + size - 1) / size
	out := make([]SeqRange, count)
	for i := range out {
		out[i] = SeqRange{From: int64(i) * size, To: int64(i+1) * size, First: i == 0, Last: i == len(out)-1}
	}
	return out
}

// where is the condition and arguments that select r, and whether the rows without a seq
// are read separately after it.
func (r SeqRange) where() (cond string, args []any, nulls bool) {
	switch {
	case r.First && r.Last:
		return "", nil, false // ORDER BY seq reads the rows without one last
	case r.First:
		return `WHERE e.seq < $1 `, []any{r.To}, false
	case r.Last:
		return `WHERE e.seq >= $1 `, []any{r.From}, true
	default:
		return `WHERE e.seq >= $1 AND e.seq < $2 `, []any{r.From, r.To}, false
	}
}

// BeginEntryStream sets q's transaction up for StreamEntryRange: the entries read in their
// primary key's order and each payload (and its key) found by its own index, as a hash join
// would need the whole result sorted again, spilling to disk for a large log. Serial too: a
// Gather Merge of rows this wide costs more than the scan it spreads. And without JIT: the
// generic plan of an open-ended range is costed as a third of the table, enough to compile
// each execution, for a range that takes milliseconds to read. end puts the settings back
// for the transaction's later queries.
func BeginEntryStream(ctx context.Context, q Querier) (end func(context.Context) error, err error) {
	var workers, jit string
	if err := q.QueryRow(ctx, `SELECT current_setting('max_parallel_workers_per_gather'), current_setting('jit')`).Scan(&workers, &jit); err != nil {
		return nil, fmt.Errorf("stream entries: plan settings: %w", err)
	}
	set := func(ctx context.Context, joins, workers, jit string) error {
		var a, b, c, d, e string
		if err := q.QueryRow(ctx, `SELECT set_config('enable_hashjoin', $1, true), set_config('enable_mergejoin', $1, true),
			set_config('enable_sort', $1, true), set_config('max_parallel_workers_per_gather', $2, true), set_config('jit', $3, true)`,
			joins, workers, jit).Scan(&a, &b, &c, &d, &e); err != nil {
			return fmt.Errorf("stream entries: plan settings: %w", err)
		}
		return nil
	}
	if err := set(ctx, "off", "0", "off"); err != nil {
		return nil, err
	}
	return func(ctx context.Context) error { return set(ctx, "on", workers, jit) }, nil
}

// StreamEntryRange calls fn for every entry of r in seq order, in a transaction set up with
// BeginEntryStream; with secrets the rows carry each payload's nonce and ciphertext and its
// wrapped case key too (only verification with the master key needs them: a payload's
// digest is computed where it is stored).
func StreamEntryRange(ctx context.Context, q Querier, secrets bool, r SeqRange, fn func(*RawRow) error) error {
	cols := verifyColumns
	if secrets {
		cols += `, p.nonce, CASE WHEN k.destroyed_at IS NULL THEN p.ciphertext END, k.wrapped_key`
	}
	cond, args, nulls := r.where()
	if err := streamEntryRows(ctx, q, secrets, `SELECT `+cols+entryJoins+cond+`ORDER BY e.seq`, args, fn); err != nil {
		return err
	}
	if nulls {
		return streamEntryRows(ctx, q, secrets, `SELECT `+cols+entryJoins+`WHERE e.seq IS NULL`, nil, fn)
	}
	return nil
}

func streamEntryRows(ctx context.Context, q Querier, secrets bool, sql string, args []any, fn func(*RawRow) error) error {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return fmt.Errorf("stream entries: %w", err)
	}
	defer rows.Close()
	r := &RawRow{rows: rows, Binary: true}
	var finish func()
	r.dst, finish = entryDest(&r.row.Entry)
	r.finish = finish
	if secrets {
		r.dst = append(r.dst, &r.row.Nonce, &r.row.Ciphertext, &r.row.Wrapped)
	}
	fds := rows.FieldDescriptions()
	for i, oid := range wantOIDs {
		// A text column's bytes are the string in either format (pgx asks for text).
		if i >= len(fds) || fds[i].DataTypeOID != oid || (fds[i].Format != pgx.BinaryFormatCode && oid != pgtype.TextOID) {
			r.Binary = false
		}
	}
	for rows.Next() {
		r.Values = rows.RawValues()
		if err := fn(r); err != nil {
			return fmt.Errorf("stream entries: %w", err)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("stream entries: %w", err)
	}
	return nil
}

// StreamTreeHashes calls fn for every stored tree hash in index order. hash is valid only
// during the call: the rows are read off the wire without a copy each (two per entry).
func StreamTreeHashes(ctx context.Context, q Querier, fn func(idx int64, hash []byte) error) error {
	rows, err := q.Query(ctx, `SELECT idx, hash FROM audit.tree_hashes ORDER BY idx`)
	if err != nil {
		return fmt.Errorf("stream tree hashes: %w", err)
	}
	defer rows.Close()
	fds := rows.FieldDescriptions()
	raw := len(fds) == 2 && fds[0].Format == pgx.BinaryFormatCode && fds[0].DataTypeOID == pgtype.Int8OID &&
		fds[1].Format == pgx.BinaryFormatCode && fds[1].DataTypeOID == pgtype.ByteaOID
	var idx int64
	var h []byte
	for rows.Next() {
		if v := rows.RawValues(); raw && len(v[0]) == 8 && v[1] != nil {
			idx, h = int64(binary.BigEndian.Uint64(v[0])), v[1]
		} else if err := rows.Scan(&idx, &h); err != nil {
			return fmt.Errorf("stream tree hashes: %w", err)
		}
		if err := fn(idx, h); err != nil {
			return fmt.Errorf("stream tree hashes: %w", err)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("stream tree hashes: %w", err)
	}
	return nil
}
