package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Entry is a stored entry as the query API reads it: its columns, its leaf bytes and what
// is stored of its payload. The columns are indexes for finding entries, not what is
// served: the service serves the leaf (once proven in the tree) and checks every column
// against it, so a column altered in the database is reported, never shown as true.
type Entry struct {
	Seq                                             int64
	EventID, EventType                              string
	OccurredAt, RecordedAt                          time.Time
	Partnership, ReferralID, ChildID                string
	Actor, ActorRole, Agency, PackVersion, Decision string
	PayloadSHA256                                   [32]byte
	Leaf                                            []byte
	// What is stored of the payload under the column event id: whether a row exists, the
	// SHA-256 of its ciphertext, and its case key (nil KeyReferral: the key row is missing).
	HasPayload   bool
	CipherSHA256 [32]byte
	KeyReferral  *string
	KeyDestroyed bool
}

// entryColumns reads an Entry from audit.entries e joined to payloads p and case_keys k.
const entryColumns = `e.seq, e.event_id::text, e.event_type, e.occurred_at, e.recorded_at, e.partnership, e.referral_id,
	e.child_id, e.actor, e.actor_role, e.agency, e.pack_version, e.decision, e.payload_sha256, e.leaf,
	p.event_id IS NOT NULL, coalesce(sha256(p.ciphertext), ''::bytea), k.referral_id, coalesce(k.destroyed_at IS NOT NULL, false)`

const entryJoins = ` FROM audit.entries e
	LEFT JOIN audit.payloads p ON p.event_id = e.event_id
	LEFT JOIN audit.case_keys k ON k.id = p.case_key_id `

// entryDest returns scan destinations for entryColumns into e; finish copies the byte
// columns into their arrays after each scan.
func entryDest(e *Entry) (dst []any, finish func()) {
	var sum, csum []byte
	dst = []any{&e.Seq, &e.EventID, &e.EventType, &e.OccurredAt, &e.RecordedAt, &e.Partnership, &e.ReferralID,
		&e.ChildID, &e.Actor, &e.ActorRole, &e.Agency, &e.PackVersion, &e.Decision, &sum, &e.Leaf,
		&e.HasPayload, &csum, &e.KeyReferral, &e.KeyDestroyed}
	return dst, func() {
		e.PayloadSHA256, e.CipherSHA256 = [32]byte{}, [32]byte{}
		copy(e.PayloadSHA256[:], sum)
		copy(e.CipherSHA256[:], csum)
	}
}

func scanEntries(rows pgx.Rows) ([]Entry, error) {
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Entry, error) {
		var e Entry
		dst, finish := entryDest(&e)
		err := r.Scan(dst...)
		finish()
		return e, err
	})
}

// Trail returns up to limit entries of a referral (or, with childID, of every referral
// the child appears in, plus entries naming the child) with seq > after, in seq order.
func Trail(ctx context.Context, pool *pgxpool.Pool, referralID, childID string, after int64, limit int) ([]Entry, error) {
	var rows pgx.Rows
	var err error
	if referralID != "" {
		rows, err = pool.Query(ctx, `SELECT `+entryColumns+entryJoins+`WHERE e.referral_id = $1 AND e.seq > $2
			ORDER BY e.seq LIMIT $3`, referralID, after, limit)
	} else {
		// A child's referrals are those with an entry naming the child (decisions carry the
		// child id; the received entry does not).
		rows, err = pool.Query(ctx, `SELECT `+entryColumns+entryJoins+`WHERE e.seq > $2 AND (e.child_id = $1 OR e.referral_id IN
			(SELECT DISTINCT c.referral_id FROM audit.entries c WHERE c.child_id = $1 AND c.child_id <> '' AND c.referral_id <> ''))
			ORDER BY e.seq LIMIT $3`, childID, after, limit)
	}
	if err != nil {
		return nil, fmt.Errorf("read trail: %w", err)
	}
	out, err := scanEntries(rows)
	if err != nil {
		return nil, fmt.Errorf("read trail: %w", err)
	}
	return out, nil
}

// Filter selects entries for Search; empty fields match everything.
type Filter struct {
	Actor, Agency, EventType, Partnership, PackVersion string
	// Partnerships, when not nil, limits the search to entries of those partnerships and
	// entries of none (the log's own, and queries naming no referral).
	Partnerships []string
	From, To     *time.Time // occurred_at in [From, To)
	// Cursor is the last seq of the previous page, or -1 for the first page.
	Cursor      int64
	OldestFirst bool
	Limit       int
}

// Search returns up to f.Limit entries matching f after the cursor, newest first unless
// f.OldestFirst.
func Search(ctx context.Context, pool *pgxpool.Pool, f Filter) ([]Entry, error) {
	var where []string
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, strings.ReplaceAll(cond, "?", "$"+strconv.Itoa(len(args))))
	}
	for _, c := range []struct{ col, v string }{{"actor", f.Actor}, {"agency", f.Agency}, {"event_type", f.EventType},
		{"partnership", f.Partnership}, {"pack_version", f.PackVersion}} {
		if c.v != "" {
			add("e."+c.col+" = ?", c.v)
		}
	}
	if f.Partnerships != nil {
		add("(e.partnership = '' OR e.partnership = ANY(?::text[]))", f.Partnerships)
	}
	if f.From != nil {
		add("e.occurred_at >= ?", *f.From)
	}
	if f.To != nil {
		add("e.occurred_at < ?", *f.To)
	}
	order := "DESC"
	if f.OldestFirst {
		order = "ASC"
		if f.Cursor >= 0 {
			add("e.seq > ?", f.Cursor)
		}
	} else if f.Cursor >= 0 {
		add("e.seq < ?", f.Cursor)
	}
	q := `SELECT ` + entryColumns + entryJoins
	if len(where) > 0 {
		q += `WHERE ` + strings.Join(where, " AND ")
	}
	args = append(args, f.Limit)
	q += ` ORDER BY e.seq ` + order + ` LIMIT $` + strconv.Itoa(len(args))
	rows, err := pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("search entries: %w", err)
	}
	out, err := scanEntries(rows)
	if err != nil {
		return nil, fmt.Errorf("search entries: %w", err)
	}
	return out, nil
}

// ExportRange streams the entries of a referral, or with occurred_at in [from, to), that
// are below maxSeq, in seq order.
func ExportRange(ctx context.Context, pool *pgxpool.Pool, referralID string, from, to *time.Time, maxSeq int64, fn func(Entry) error) error {
	q := `SELECT ` + entryColumns + entryJoins + `WHERE e.seq < $1 `
	args := []any{maxSeq}
	if referralID != "" {
		args = append(args, referralID)
		q += ` AND e.referral_id = $2`
	}
	if from != nil {
		args = append(args, *from)
		q += ` AND e.occurred_at >= $` + strconv.Itoa(len(args))
	}
	if to != nil {
		args = append(args, *to)
		q += ` AND e.occurred_at < $` + strconv.Itoa(len(args))
	}
	rows, err := pool.Query(ctx, q+` ORDER BY e.seq`, args...)
	if err != nil {
		return fmt.Errorf("export entries: %w", err)
	}
	var e Entry
	dst, finish := entryDest(&e)
	_, err = pgx.ForEachRow(rows, dst, func() error { finish(); return fn(e) })
	if err != nil {
		return fmt.Errorf("export entries: %w", err)
	}
	return nil
}

// CheckpointOfSize returns the stored checkpoint of exactly size entries.
func CheckpointOfSize(ctx context.Context, pool *pgxpool.Pool, size int64) (Checkpoint, error) {
	c := Checkpoint{TreeSize: size}
	err := pool.QueryRow(ctx, `SELECT note, created_at FROM audit.checkpoints WHERE tree_size = $1`, size).Scan(&c.Note, &c.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return Checkpoint{}, ErrNotFound
	}
	if err != nil {
		return Checkpoint{}, fmt.Errorf("read checkpoint %d: %w", size, err)
	}
	return c, nil
}

// Leaf returns the stored leaf bytes of entry seq.
func Leaf(ctx context.Context, pool *pgxpool.Pool, seq int64) ([]byte, error) {
	var leaf []byte
	err := pool.QueryRow(ctx, `SELECT leaf FROM audit.entries WHERE seq = $1`, seq).Scan(&leaf)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read entry %d: %w", seq, err)
	}
	return leaf, nil
}

// EntriesBySeq returns the entries with the given seqs, in seq order; seqs with no entry
// are left out.
func EntriesBySeq(ctx context.Context, pool *pgxpool.Pool, seqs []int64) ([]Entry, error) {
	if len(seqs) == 0 {
		return nil, nil
	}
	rows, err := pool.Query(ctx, `SELECT `+entryColumns+entryJoins+` WHERE e.seq = ANY($1) ORDER BY e.seq`, seqs)
	if err != nil {
		return nil, fmt.Errorf("read entries by seq: %w", err)
	}
	out, err := scanEntries(rows)
	if err != nil {
		return nil, fmt.Errorf("read entries by seq: %w", err)
	}
	return out, nil
}
