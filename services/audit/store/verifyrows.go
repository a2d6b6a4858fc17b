package store

// The verifier's reads: every entry and every stored tree hash streamed in order, on the
// raw wire bytes so that a row matching its leaf costs no decoding.

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// VerifyRow is one entry as the verifier reads it: every column and what is stored of its
// payload. StoredLeafHash is the caller's to fill (StreamEntries leaves it zero).
type VerifyRow struct {
	Entry
	Nonce, Ciphertext, Wrapped []byte // nil when no payload, or its key destroyed
	StoredLeafHash             [32]byte
}

// Column positions in the rows StreamEntries gives (entryColumns, then with secrets the
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

// RawRow is the current row of StreamEntries as it came off the wire. The verifier compares
// a million rows with their leaves; doing it on the raw bytes, and decoding a row with Scan
// only when something differs, saves a string per column per row and the reflection of
// pgx's scanning.
type RawRow struct {
	// Values are the columns by Col* position, nil for NULL; valid only during the call.
	Values [][]byte
	// Binary says every column is of the type entryColumns names and, text columns apart
	// (whose bytes are the string either way), in the binary wire format, so the values
	// may be compared as bytes and Int64, Micros and Bool used. When false, use Scan.
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

// wantOIDs are the types of entryColumns in order: what RawRow's accessors expect.
var wantOIDs = []uint32{pgtype.Int8OID, pgtype.TextOID, pgtype.TextOID, pgtype.TimestamptzOID, pgtype.TimestamptzOID,
	pgtype.TextOID, pgtype.TextOID, pgtype.TextOID, pgtype.TextOID, pgtype.TextOID, pgtype.TextOID, pgtype.TextOID, pgtype.TextOID,
	pgtype.ByteaOID, pgtype.ByteaOID, pgtype.BoolOID, pgtype.ByteaOID, pgtype.TextOID, pgtype.BoolOID}

// StreamEntries calls fn for every entry in seq order, reading in one pass; with secrets
// the rows carry each payload's nonce and ciphertext and its wrapped case key too (only
// verification with the master key needs them: a payload's digest is computed where it is
// stored). The entries are read in their primary key's order and each payload (and its
// key) found by its own index: a hash join would need the whole result sorted again,
// spilling to disk for a large log.
func StreamEntries(ctx context.Context, q Querier, secrets bool, fn func(*RawRow) error) error {
	var d0 string
	if err := q.QueryRow(ctx, `SELECT current_setting('max_parallel_workers_per_gather')`).Scan(&d0); err != nil {
		return fmt.Errorf("stream entries: plan settings: %w", err)
	}
	// Serial too: a Gather Merge of rows this wide costs more than the scan it spreads.
	var a, b, c, d string
	if err := q.QueryRow(ctx, `SELECT set_config('enable_hashjoin', 'off', true), set_config('enable_mergejoin', 'off', true),
		set_config('enable_sort', 'off', true), set_config('max_parallel_workers_per_gather', '0', true)`).Scan(&a, &b, &c, &d); err != nil {
		return fmt.Errorf("stream entries: plan settings: %w", err)
	}
	cols := entryColumns
	if secrets {
		cols += `, p.nonce, CASE WHEN k.destroyed_at IS NULL THEN p.ciphertext END, k.wrapped_key`
	}
	rows, err := q.Query(ctx, `SELECT `+cols+entryJoins+`ORDER BY e.seq`)
	if err != nil {
		return fmt.Errorf("stream entries: %w", err)
	}
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
			rows.Close()
			return fmt.Errorf("stream entries: %w", err)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("stream entries: %w", err)
	}
	if err := q.QueryRow(ctx, `SELECT set_config('enable_hashjoin', 'on', true), set_config('enable_mergejoin', 'on', true),
		set_config('enable_sort', 'on', true), set_config('max_parallel_workers_per_gather', $1, true)`, d0).Scan(&a, &b, &c, &d); err != nil {
		return fmt.Errorf("stream entries: plan settings: %w", err)
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
