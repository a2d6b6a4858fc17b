// Package store holds all of the audit service's SQL. The service owns the Postgres schema
// "audit": pending events, the entries of the Merkle tree and its stored hashes, the head,
// signed checkpoints, per-case keys and encrypted payloads.
//
// Every transaction that writes runs as the role mash_audit_writer (AsWriter), which may
// insert into but not update or delete entries, tree_hashes and checkpoints.
package store

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/mash-hub/mash/pkg/db"
	"github.com/mash-hub/mash/pkg/events"
)

// Schema is the Postgres schema the audit service owns.
const Schema = "audit"

// WriterRole is the role the service's transactions run as.
const WriterRole = "mash_audit_writer"

// laterVersions are migrations that must run after the outbox and consumer tables.
const laterVersions = 2000

//go:embed migrations/*.sql
var migrationFS embed.FS

// Migrations returns the audit service's migrations, outbox and consumer tables included,
// in the order they apply: the service's own tables, then events' outbox and inbox (1000,
// 1001), then the writer role's grants (2000 and up), which cover those tables too.
func Migrations() ([]db.Migration, error) {
	migs, err := db.LoadMigrations(migrationFS, "migrations")
	if err != nil {
		return nil, err
	}
	var early, late []db.Migration
	for _, m := range migs {
		if m.Version >= laterVersions {
			late = append(late, m)
		} else {
			early = append(early, m)
		}
	}
	out := append(early, events.Migrations(Schema)...)
	return append(out, late...), nil
}

// ErrNotFound is returned when a row asked for does not exist.
var ErrNotFound = errors.New("not found")

// ErrRaced is returned when another sequencer advanced the head first.
var ErrRaced = errors.New("the head moved: another sequencer appended first")

// AsWriter switches tx to the writer role until it ends.
func AsWriter(ctx context.Context, tx pgx.Tx) error {
	if _, err := tx.Exec(ctx, `SET LOCAL ROLE `+WriterRole); err != nil {
		return fmt.Errorf("set role %s: %w", WriterRole, err)
	}
	return nil
}

// Pending is an accepted event awaiting its place in the tree.
type Pending struct {
	ID                                              int64
	EventID, EventType                              string
	OccurredAt, ReceivedAt                          time.Time
	Partnership, ReferralID, ChildID                string
	Actor, ActorRole, Agency, PackVersion, Decision string
	PayloadSHA256                                   [32]byte
}

const insertPendingSQL = `INSERT INTO audit.pending (event_id, event_type, occurred_at, received_at, partnership,
		referral_id, child_id, actor, actor_role, agency, pack_version, decision, payload_sha256)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) ON CONFLICT (event_id) DO NOTHING`

func pendingArgs(p Pending) []any {
	return []any{p.EventID, p.EventType, p.OccurredAt, p.ReceivedAt, p.Partnership, p.ReferralID, p.ChildID, p.Actor,
		p.ActorRole, p.Agency, p.PackVersion, p.Decision, p.PayloadSHA256[:]}
}

// InsertPending records p; an event id already pending is left as it is.
func InsertPending(ctx context.Context, tx pgx.Tx, p Pending) error {
	if _, err := tx.Exec(ctx, insertPendingSQL, pendingArgs(p)...); err != nil {
		return fmt.Errorf("insert pending %s: %w", p.EventID, err)
	}
	return nil
}

// InsertPendingAsWriter is AsWriter then InsertPending, in one round trip.
func InsertPendingAsWriter(ctx context.Context, tx pgx.Tx, p Pending) error {
	b := &pgx.Batch{}
	b.Queue(`SET LOCAL ROLE ` + WriterRole)
	b.Queue(insertPendingSQL, pendingArgs(p)...)
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("insert pending %s as %s: %w", p.EventID, WriterRole, err)
	}
	return nil
}

// SealOutcome is what SealedPending found of the referral's case key.
type SealOutcome int

// Outcomes of SealedPending.
const (
	// Sealed: the key offered is the referral's live key (inserted now if it had none); the
	// payload and the pending entry are stored.
	Sealed SealOutcome = iota
	// Redacted: the referral's key is destroyed; the pending entry is stored with the
	// payload digest redactedSum, and no payload.
	Redacted
	// OtherKey: the referral has another live key, or none could be read in this
	// statement's snapshot (a concurrent first use); nothing was stored. Seal again with
	// CaseKeyFor's key.
	OtherKey
)

// sealedPendingSQL stores a pending entry and its sealed payload in one statement, given
// the case key the caller sealed with ($14 id, $15 wrapped): the key is inserted if the
// referral has none, the payload is stored only if that key is the referral's live key,
// and the entry only if so or if the referral's key is destroyed (then with the redacted
// digest $18 and no payload). The data-modifying CTEs share one snapshot: k is the key
// inserted now or the one already there, never both.
const sealedPendingSQL = `WITH nk AS (
		INSERT INTO audit.case_keys (id, referral_id, wrapped_key) VALUES ($14::uuid, $6::text, $15::bytea)
		ON CONFLICT DO NOTHING RETURNING id, false AS destroyed),
	k AS (SELECT id, destroyed FROM nk
		UNION ALL SELECT id, destroyed_at IS NOT NULL FROM audit.case_keys WHERE referral_id = $6),
	pl AS (INSERT INTO audit.payloads (event_id, case_key_id, nonce, ciphertext)
		SELECT $1::uuid, k.id, $16::bytea, $17::bytea FROM k WHERE k.id = $14::uuid AND NOT k.destroyed
		ON CONFLICT (event_id) DO NOTHING),
	pe AS (INSERT INTO audit.pending (event_id, event_type, occurred_at, received_at, partnership,
		referral_id, child_id, actor, actor_role, agency, pack_version, decision, payload_sha256)
		SELECT $1::uuid, $2::text, $3::timestamptz, $4::timestamptz, $5::text, $6::text, $7::text, $8::text, $9::text,
			$10::text, $11::text, $12::text, CASE WHEN k.destroyed THEN $18::bytea ELSE $13::bytea END
		FROM k WHERE k.id = $14::uuid OR k.destroyed
		ON CONFLICT (event_id) DO NOTHING)
	SELECT coalesce((SELECT CASE WHEN destroyed THEN 1 WHEN id = $14 THEN 0 ELSE 2 END FROM k LIMIT 1), 2)`

// SealedPending switches tx to the writer role and stores p (whose PayloadSHA256 is the
// digest of ciphertext) with its payload sealed under the case key (keyID, wrapped) of
// p.ReferralID, in one round trip; see SealOutcome for what it stored. redactedSum is the
// digest recorded instead when the case key turns out destroyed.
func SealedPending(ctx context.Context, tx pgx.Tx, p Pending, keyID string, wrapped, nonce, ciphertext []byte, redactedSum [32]byte) (SealOutcome, error) {
	b := &pgx.Batch{}
	b.Queue(`SET LOCAL ROLE ` + WriterRole)
	args := append(pendingArgs(p), keyID, wrapped, nonce, ciphertext, redactedSum[:])
	var out SealOutcome
	b.Queue(sealedPendingSQL, args...).QueryRow(func(r pgx.Row) error { return r.Scan(&out) })
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return 0, fmt.Errorf("insert pending %s with its payload: %w", p.EventID, err)
	}
	return out, nil
}

// Queued is one pending entry for WritePending. With a KeyID its payload is sealed under that
// case key (Wrapped, Nonce, Ciphertext) and stored as SealedPending stores it; without, the
// entry has no payload and is stored as InsertPending stores it.
type Queued struct {
	P                          Pending
	KeyID                      string
	Wrapped, Nonce, Ciphertext []byte
}

// WritePending switches tx to the writer role and stores every entry of qs, in order, in one
// statement, returning each entry's outcome (Sealed for an entry without payload). An entry
// whose outcome is OtherKey stored nothing, as with SealedPending. Every sealed entry of one
// referral in qs must be sealed under the same key: the first of them offers it.
func WritePending(ctx context.Context, tx pgx.Tx, qs []Queued, redactedSum [32]byte) ([]SealOutcome, error) {
	n := len(qs)
	var (
		eventIDs, types, partnerships, referrals, children = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		actors, roles, agencies, packs, decisions          = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		occurred, received                                 = make([]time.Time, n), make([]time.Time, n)
		sums, wrapped, nonces, ciphertexts                 = make([][]byte, n), make([][]byte, n), make([][]byte, n), make([][]byte, n)
		keyIDs                                             = make([]*string, n)
	)
	for i, q := range qs {
		p := q.P
		eventIDs[i], types[i], partnerships[i], referrals[i], children[i] = p.EventID, p.EventType, p.Partnership, p.ReferralID, p.ChildID
		actors[i], roles[i], agencies[i], packs[i], decisions[i] = p.Actor, p.ActorRole, p.Agency, p.PackVersion, p.Decision
		occurred[i], received[i], sums[i] = p.OccurredAt, p.ReceivedAt, p.PayloadSHA256[:]
		if q.KeyID != "" {
			keyIDs[i], wrapped[i], nonces[i], ciphertexts[i] = &q.KeyID, q.Wrapped, q.Nonce, q.Ciphertext
		}
	}
	b := &pgx.Batch{}
	b.Queue(`SET LOCAL ROLE ` + WriterRole)
	out := make([]SealOutcome, 0, n)
	b.Queue(writePendingSQL, eventIDs, types, occurred, received, partnerships, referrals, children, actors, roles, agencies,
		packs, decisions, sums, keyIDs, wrapped, nonces, ciphertexts, redactedSum[:]).Query(func(rows pgx.Rows) error {
		var o int
		_, err := pgx.ForEachRow(rows, []any{&o}, func() error {
			if o < 0 || o >= len(writeOutcomes) {
				return fmt.Errorf("unknown outcome %d", o)
			}
			out = append(out, writeOutcomes[o])
			return nil
		})
		return err
	})
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return nil, fmt.Errorf("insert %d pending entries: %w", n, err)
	}
	if len(out) != n {
		return nil, fmt.Errorf("insert %d pending entries: %d outcomes", n, len(out))
	}
	return out, nil
}

// writeOutcomes maps writePendingSQL's outcome numbers to SealOutcome.
var writeOutcomes = [...]SealOutcome{0: Sealed, 1: Redacted, 2: OtherKey, 3: Sealed}

// writePendingSQL is sealedPendingSQL for many entries at once, in the order given: the
// first sealed entry of each referral offers its key, which is inserted if the referral has
// none; each entry's outcome is 0 sealed, 1 redacted (the key is destroyed: the entry is
// stored with the redacted digest $18 and no payload), 2 another key (nothing stored), or 3
// no payload (the entry is stored as given). As in sealedPendingSQL, k holds the key
// inserted now or the one already there, never both.
const writePendingSQL = `WITH i AS (
		SELECT * FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::timestamptz[], $5::text[], $6::text[], $7::text[],
			$8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::bytea[], $14::uuid[], $15::bytea[], $16::bytea[], $17::bytea[])
		WITH ORDINALITY AS i(event_id, event_type, occurred_at, received_at, partnership, referral_id, child_id, actor,
			actor_role, agency, pack_version, decision, payload_sha256, key_id, wrapped, nonce, ciphertext, ord)),
	nk AS (INSERT INTO audit.case_keys (id, referral_id, wrapped_key)
		SELECT DISTINCT ON (referral_id) key_id, referral_id, wrapped FROM i WHERE key_id IS NOT NULL ORDER BY referral_id, ord
		ON CONFLICT DO NOTHING RETURNING id, referral_id, false AS destroyed),
	k AS (SELECT id, referral_id, destroyed FROM nk
		UNION ALL SELECT id, referral_id, destroyed_at IS NOT NULL FROM audit.case_keys
		WHERE referral_id IN (SELECT referral_id FROM i WHERE key_id IS NOT NULL)),
	o AS (SELECT i.*, CASE WHEN i.key_id IS NULL THEN 3 WHEN k.destroyed THEN 1 WHEN k.id = i.key_id THEN 0 ELSE 2 END AS outcome
		FROM i LEFT JOIN k ON k.referral_id = i.referral_id),
	pl AS (INSERT INTO audit.payloads (event_id, case_key_id, nonce, ciphertext)
		SELECT event_id, key_id, nonce, ciphertext FROM o WHERE outcome = 0 ORDER BY ord
		ON CONFLICT (event_id) DO NOTHING),
	pe AS (INSERT INTO audit.pending (event_id, event_type, occurred_at, received_at, partnership,
		referral_id, child_id, actor, actor_role, agency, pack_version, decision, payload_sha256)
		SELECT event_id, event_type, occurred_at, received_at, partnership, referral_id, child_id, actor, actor_role,
			agency, pack_version, decision, CASE WHEN outcome = 1 THEN $18::bytea ELSE payload_sha256 END
		FROM o WHERE outcome <> 2 ORDER BY ord
		ON CONFLICT (event_id) DO NOTHING)
	SELECT outcome FROM o ORDER BY ord`

// Head is the log's current size and root.
type Head struct {
	TreeSize int64
	Root     [32]byte
}

// ReadHead returns the head through q.
func ReadHead(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}) (Head, error) {
	var h Head
	var root []byte
	if err := q.QueryRow(ctx, `SELECT tree_size, root FROM audit.head`).Scan(&h.TreeSize, &root); err != nil {
		return Head{}, fmt.Errorf("read head: %w", err)
	}
	copy(h.Root[:], root)
	return h, nil
}

// ReadHashes returns the stored tree hashes at indexes, in that order.
func ReadHashes(ctx context.Context, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, indexes []int64) ([][32]byte, error) {
	rows, err := q.Query(ctx, `SELECT idx, hash FROM audit.tree_hashes WHERE idx = ANY($1)`, indexes)
	if err != nil {
		return nil, fmt.Errorf("read tree hashes: %w", err)
	}
	got := make(map[int64][32]byte, len(indexes))
	var idx int64
	var h []byte
	_, err = pgx.ForEachRow(rows, []any{&idx, &h}, func() error {
		var x [32]byte
		copy(x[:], h)
		got[idx] = x
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read tree hashes: %w", err)
	}
	out := make([][32]byte, len(indexes))
	for i, x := range indexes {
		v, ok := got[x]
		if !ok {
			return nil, fmt.Errorf("read tree hashes: stored hash %d is missing", x)
		}
		out[i] = v
	}
	return out, nil
}

// ReadHashesPresent returns the stored tree hashes at indexes that exist.
func ReadHashesPresent(ctx context.Context, q Querier, indexes []int64) (map[int64]tlog.Hash, error) {
	rows, err := q.Query(ctx, `SELECT idx, hash FROM audit.tree_hashes WHERE idx = ANY($1)`, indexes)
	if err != nil {
		return nil, fmt.Errorf("read tree hashes: %w", err)
	}
	out := make(map[int64]tlog.Hash, len(indexes))
	var idx int64
	var h []byte
	_, err = pgx.ForEachRow(rows, []any{&idx, &h}, func() error {
		var x tlog.Hash
		copy(x[:], h)
		out[idx] = x
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read tree hashes: %w", err)
	}
	return out, nil
}

// Appended is one sequenced entry with its leaf bytes.
type Appended struct {
	Seq  int64
	P    Pending
	Leaf []byte
}

// BeginAppend switches tx to the writer role and reads the head and up to limit pending
// entries in received order, in one round trip.
func BeginAppend(ctx context.Context, tx pgx.Tx, limit int) (Head, []Pending, error) {
	b := &pgx.Batch{}
	b.Queue(`SET LOCAL ROLE ` + WriterRole)
	var h Head
	b.Queue(`SELECT tree_size, root FROM audit.head`).QueryRow(func(r pgx.Row) error {
		var root []byte
		if err := r.Scan(&h.TreeSize, &root); err != nil {
			return fmt.Errorf("read head: %w", err)
		}
		copy(h.Root[:], root)
		return nil
	})
	var out []Pending
	b.Queue(`SELECT id, event_id::text, event_type, occurred_at, received_at, partnership, referral_id,
		child_id, actor, actor_role, agency, pack_version, decision, payload_sha256
		FROM audit.pending ORDER BY id LIMIT $1`, limit).Query(func(rows pgx.Rows) error {
		var err error
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (Pending, error) {
			var p Pending
			var sum []byte
			err := r.Scan(&p.ID, &p.EventID, &p.EventType, &p.OccurredAt, &p.ReceivedAt, &p.Partnership, &p.ReferralID,
				&p.ChildID, &p.Actor, &p.ActorRole, &p.Agency, &p.PackVersion, &p.Decision, &sum)
			copy(p.PayloadSHA256[:], sum)
			return p, err
		})
		if err != nil {
			return fmt.Errorf("read pending: %w", err)
		}
		return nil
	})
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return Head{}, nil, fmt.Errorf("begin append: %w", err)
	}
	return h, out, nil
}

// appendEntriesSQL moves pending rows ($2, their ids) into entries at seqs $1 with leaves
// $3. The columns come from the pending rows themselves, the same rows the leaves were
// made from (pending rows are never updated), so only seqs and leaves travel.
const appendEntriesSQL = `WITH d AS (DELETE FROM audit.pending WHERE id = ANY($2::bigint[]) RETURNING *)
	INSERT INTO audit.entries (seq, event_id, event_type, occurred_at, recorded_at, partnership, referral_id, child_id,
		actor, actor_role, agency, pack_version, decision, leaf, payload_sha256)
	SELECT x.seq, d.event_id, d.event_type, d.occurred_at, d.received_at, d.partnership, d.referral_id, d.child_id,
		d.actor, d.actor_role, d.agency, d.pack_version, d.decision, x.leaf, d.payload_sha256
	FROM d JOIN unnest($1::bigint[], $2::bigint[], $3::bytea[]) AS x(seq, pid, leaf) ON x.pid = d.id`

// Append moves the entries' pending rows into entries (recorded_at is the pending row's
// received_at), inserts the new stored hashes (starting at index firstHash) and advances
// the head from old to (newSize, root) with compare-and-swap, in one round trip. It
// returns ErrRaced when the head is no longer old or the pending rows were taken: the
// caller rolls back and tries again.
func Append(ctx context.Context, tx pgx.Tx, old Head, newSize int64, root [32]byte, entries []Appended, firstHash int64, hashes [][32]byte) error {
	seqs := make([]int64, len(entries))
	ids := make([]int64, len(entries))
	leaves := make([][]byte, len(entries))
	for i, e := range entries {
		seqs[i], ids[i], leaves[i] = e.Seq, e.P.ID, e.Leaf
	}
	hs := make([][]byte, len(hashes))
	for i := range hashes {
		hs[i] = hashes[i][:]
	}
	b := &pgx.Batch{}
	var moved, headMoved int64
	b.Queue(appendEntriesSQL, seqs, ids, leaves).Exec(func(tag pgconn.CommandTag) error {
		moved = tag.RowsAffected()
		return nil
	})
	b.Queue(`INSERT INTO audit.tree_hashes (idx, hash) SELECT $1::bigint + i - 1, h FROM unnest($2::bytea[]) WITH ORDINALITY AS t(h, i)`,
		firstHash, hs)
	b.Queue(`UPDATE audit.head SET tree_size = $1, root = $2 WHERE tree_size = $3`, newSize, root[:], old.TreeSize).
		Exec(func(tag pgconn.CommandTag) error {
			headMoved = tag.RowsAffected()
			return nil
		})
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		if raced(err) {
			return ErrRaced
		}
		return fmt.Errorf("append entries: %w", err)
	}
	if moved != int64(len(entries)) || headMoved != 1 {
		return ErrRaced
	}
	return nil
}

// raced reports a unique violation: another sequencer inserted the same seq or hash index.
func raced(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505"
}

// Checkpoint is a stored signed checkpoint.
type Checkpoint struct {
	TreeSize  int64
	Note      string
	CreatedAt time.Time
}

// InsertCheckpoint stores a signed checkpoint; it reports false when one of that size exists.
func InsertCheckpoint(ctx context.Context, tx pgx.Tx, c Checkpoint) (bool, error) {
	tag, err := tx.Exec(ctx, `INSERT INTO audit.checkpoints (tree_size, note, created_at) VALUES ($1, $2, $3)
		ON CONFLICT (tree_size) DO NOTHING`, c.TreeSize, c.Note, c.CreatedAt)
	if err != nil {
		return false, fmt.Errorf("insert checkpoint %d: %w", c.TreeSize, err)
	}
	return tag.RowsAffected() == 1, nil
}

// LatestCheckpoint returns the checkpoint of the largest tree.
func LatestCheckpoint(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}) (Checkpoint, error) {
	var c Checkpoint
	err := q.QueryRow(ctx, `SELECT tree_size, note, created_at FROM audit.checkpoints ORDER BY tree_size DESC LIMIT 1`).
		Scan(&c.TreeSize, &c.Note, &c.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return Checkpoint{}, ErrNotFound
	}
	if err != nil {
		return Checkpoint{}, fmt.Errorf("read latest checkpoint: %w", err)
	}
	return c, nil
}

// RecordedAt returns when entry seq was recorded.
func RecordedAt(ctx context.Context, tx pgx.Tx, seq int64) (time.Time, error) {
	var t time.Time
	if err := tx.QueryRow(ctx, `SELECT recorded_at FROM audit.entries WHERE seq = $1`, seq).Scan(&t); err != nil {
		return time.Time{}, fmt.Errorf("read entry %d: %w", seq, err)
	}
	return t, nil
}

// CaseKey is a case's data key, wrapped; Wrapped is nil once destroyed.
type CaseKey struct {
	ID, ReferralID string
	Wrapped        []byte
	DestroyedAt    *time.Time
}

// CaseKeyFor returns the referral's case key, inserting newKey (id, wrapped) if it has none.
// Concurrent callers for one referral all get the same key.
func CaseKeyFor(ctx context.Context, tx pgx.Tx, referralID, newID string, newWrapped []byte) (CaseKey, error) {
	if _, err := tx.Exec(ctx, `INSERT INTO audit.case_keys (id, referral_id, wrapped_key) VALUES ($1, $2, $3)
		ON CONFLICT (referral_id) DO NOTHING`, newID, referralID, newWrapped); err != nil {
		return CaseKey{}, fmt.Errorf("insert case key of %q: %w", referralID, err)
	}
	k := CaseKey{ReferralID: referralID}
	if err := tx.QueryRow(ctx, `SELECT id::text, wrapped_key, destroyed_at FROM audit.case_keys WHERE referral_id = $1`, referralID).
		Scan(&k.ID, &k.Wrapped, &k.DestroyedAt); err != nil {
		return CaseKey{}, fmt.Errorf("read case key of %q: %w", referralID, err)
	}
	return k, nil
}

// InsertPayload stores an event's sealed payload.
func InsertPayload(ctx context.Context, tx pgx.Tx, eventID, caseKeyID string, nonce, ciphertext []byte) error {
	if _, err := tx.Exec(ctx, `INSERT INTO audit.payloads (event_id, case_key_id, nonce, ciphertext) VALUES ($1, $2, $3, $4)
		ON CONFLICT (event_id) DO NOTHING`, eventID, caseKeyID, nonce, ciphertext); err != nil {
		return fmt.Errorf("insert payload %s: %w", eventID, err)
	}
	return nil
}

// DestroyCaseKey erases the referral's case key, or records a destroyed one (id newID) if
// the referral has none yet. It reports false when the key was already destroyed.
func DestroyCaseKey(ctx context.Context, tx pgx.Tx, newID, referralID, by, reason string, at time.Time) (bool, error) {
	tag, err := tx.Exec(ctx, `INSERT INTO audit.case_keys AS k (id, referral_id, wrapped_key, destroyed_at, destroyed_by, destroy_reason)
		VALUES ($1, $2, NULL, $3, $4, $5)
		ON CONFLICT (referral_id) DO UPDATE SET wrapped_key = NULL, destroyed_at = EXCLUDED.destroyed_at,
			destroyed_by = EXCLUDED.destroyed_by, destroy_reason = EXCLUDED.destroy_reason
		WHERE k.destroyed_at IS NULL`, newID, referralID, at, by, reason)
	if err != nil {
		return false, fmt.Errorf("destroy case key of %s: %w", referralID, err)
	}
	return tag.RowsAffected() == 1, nil
}

// Payload is an event's sealed payload with its case key, which is nil once destroyed.
type Payload struct {
	EventID, ReferralID string
	Nonce, Ciphertext   []byte
	Wrapped             []byte
	Destroyed           bool
}

// ReadPayload returns the sealed payload of an event.
func ReadPayload(ctx context.Context, pool *pgxpool.Pool, eventID string) (Payload, error) {
	p := Payload{EventID: eventID}
	err := pool.QueryRow(ctx, `SELECT k.referral_id, p.nonce, p.ciphertext, k.wrapped_key, k.destroyed_at IS NOT NULL
		FROM audit.payloads p JOIN audit.case_keys k ON k.id = p.case_key_id WHERE p.event_id = $1`, eventID).
		Scan(&p.ReferralID, &p.Nonce, &p.Ciphertext, &p.Wrapped, &p.Destroyed)
	if errors.Is(err, pgx.ErrNoRows) {
		return Payload{}, ErrNotFound
	}
	if err != nil {
		return Payload{}, fmt.Errorf("read payload %s: %w", eventID, err)
	}
	return p, nil
}

// Checkpoints returns every stored checkpoint, smallest first.
func Checkpoints(ctx context.Context, q pgx.Tx) ([]Checkpoint, error) {
	rows, err := q.Query(ctx, `SELECT tree_size, note, created_at FROM audit.checkpoints ORDER BY tree_size`)
	if err != nil {
		return nil, fmt.Errorf("read checkpoints: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Checkpoint, error) {
		var c Checkpoint
		err := r.Scan(&c.TreeSize, &c.Note, &c.CreatedAt)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("read checkpoints: %w", err)
	}
	return out, nil
}

// KeyRow is a case key as the verifier reads it.
type KeyRow struct {
	ID, ReferralID string
	Wrapped        []byte
	DestroyedAt    *time.Time
	DestroyedBy    *string
	DestroyReason  *string
	Payloads       int64 // payload rows sealed with it
}

// CaseKeys returns every case key with the number of payloads sealed with it.
func CaseKeys(ctx context.Context, q pgx.Tx) ([]KeyRow, error) {
	// One aggregate over payloads, not a count per key: payloads have no index by key.
	rows, err := q.Query(ctx, `SELECT k.id::text, k.referral_id, k.wrapped_key, k.destroyed_at, k.destroyed_by, k.destroy_reason,
		coalesce(c.n, 0) FROM audit.case_keys k
		LEFT JOIN (SELECT case_key_id, count(*) AS n FROM audit.payloads GROUP BY case_key_id) c ON c.case_key_id = k.id
		ORDER BY k.referral_id`)
	if err != nil {
		return nil, fmt.Errorf("read case keys: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (KeyRow, error) {
		var k KeyRow
		err := r.Scan(&k.ID, &k.ReferralID, &k.Wrapped, &k.DestroyedAt, &k.DestroyedBy, &k.DestroyReason, &k.Payloads)
		return k, err
	})
	if err != nil {
		return nil, fmt.Errorf("read case keys: %w", err)
	}
	return out, nil
}

// OrphanPayloads returns the event ids of payloads that belong to no entry and no pending
// event: a payload moved off its entry.
func OrphanPayloads(ctx context.Context, q pgx.Tx) ([]string, error) {
	rows, err := q.Query(ctx, `SELECT p.event_id::text FROM audit.payloads p
		WHERE NOT EXISTS (SELECT 1 FROM audit.entries e WHERE e.event_id = p.event_id)
		AND NOT EXISTS (SELECT 1 FROM audit.pending q WHERE q.event_id = p.event_id) ORDER BY p.event_id`)
	if err != nil {
		return nil, fmt.Errorf("read orphan payloads: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("read orphan payloads: %w", err)
	}
	return out, nil
}

// CaseKeyStates reports, for each referral id given that has a case key, whether the key
// is destroyed.
func CaseKeyStates(ctx context.Context, q Querier, referralIDs []string) (map[string]bool, error) {
	rows, err := q.Query(ctx, `SELECT referral_id, destroyed_at IS NOT NULL FROM audit.case_keys WHERE referral_id = ANY($1)`, referralIDs)
	if err != nil {
		return nil, fmt.Errorf("read case key states: %w", err)
	}
	out := map[string]bool{}
	var ref string
	var destroyed bool
	if _, err := pgx.ForEachRow(rows, []any{&ref, &destroyed}, func() error { out[ref] = destroyed; return nil }); err != nil {
		return nil, fmt.Errorf("read case key states: %w", err)
	}
	return out, nil
}

// Payloads returns the sealed payloads of eventIDs that have one, by event id.
func Payloads(ctx context.Context, q Querier, eventIDs []string) (map[string]Payload, error) {
	rows, err := q.Query(ctx, `SELECT p.event_id::text, k.referral_id, p.nonce, p.ciphertext, k.wrapped_key, k.destroyed_at IS NOT NULL
		FROM audit.payloads p JOIN audit.case_keys k ON k.id = p.case_key_id WHERE p.event_id = ANY($1::uuid[])`, eventIDs)
	if err != nil {
		return nil, fmt.Errorf("read payloads: %w", err)
	}
	out := map[string]Payload{}
	var p Payload
	if _, err := pgx.ForEachRow(rows, []any{&p.EventID, &p.ReferralID, &p.Nonce, &p.Ciphertext, &p.Wrapped, &p.Destroyed}, func() error {
		out[p.EventID] = p
		return nil
	}); err != nil {
		return nil, fmt.Errorf("read payloads: %w", err)
	}
	return out, nil
}

// TreeHashes reads the stored tree hashes through pool: the tlog.HashReader that proofs and
// verification walk. The hashes it returns are checked against signed roots by its callers,
// never trusted on their own.
type TreeHashes struct {
	Ctx  context.Context
	Pool Querier
}

// Querier is a pool or a transaction (a verifier reads everything in one snapshot).
type Querier interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
	QueryRow(context.Context, string, ...any) pgx.Row
}

// ReadHashes implements tlog.HashReader.
func (h TreeHashes) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	hs, err := ReadHashes(h.Ctx, h.Pool, indexes)
	if err != nil {
		return nil, err
	}
	out := make([]tlog.Hash, len(hs))
	for i, x := range hs {
		out[i] = x
	}
	return out, nil
}
