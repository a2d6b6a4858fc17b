package audit

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/mash-hub/mash/services/audit/store"
	auditlog "github.com/mash-hub/mash/services/audit/tlog"
)

// VerifyDatabase checks the stored log against its latest signed checkpoint, trusting
// only the public key vkey and the origin: it opens the checkpoint, streams every entry in
// seq order, recomputes the tree from the stored leaf bytes (the stored leaf hashes are
// the reference that lets it name the first altered entry), and checks each readable
// payload against the payload hash its leaf commits to. Entries whose case key was
// destroyed are counted as redacted, not as tampering.
//
// Entries past the checkpoint are checked against the head row as well, which is only as
// trustworthy as the database; the signed checkpoint is the proof. The error wraps
// auditlog.ErrMismatch when the data does not match, and the Report names the entry.
func VerifyDatabase(ctx context.Context, db *pgxpool.Pool, vkey, origin string) (auditlog.Report, error) {
	return VerifyDatabaseWith(ctx, db, vkey, origin, VerifyOptions{})
}

// VerifyOptions are what an operator may add to the public-key verification.
type VerifyOptions struct {
	// MasterKey, when set, also unwraps every live case key and opens every payload, which
	// proves the wrapped keys and nonces (a public verifier sees only their digests).
	MasterKey []byte
}

// VerifyDatabaseWith is VerifyDatabase with options. Beyond the tree it checks everything
// the audit APIs serve or rely on: every column of every entry against its leaf, every
// stored tree hash (interior ones too) against the recomputed tree, the head, every signed
// checkpoint, each payload's digest and case key against its leaf, and each destroyed key
// against the entry recording its shredding. The Report names the first entry that does
// not match.
func VerifyDatabaseWith(ctx context.Context, db *pgxpool.Pool, vkey, origin string, opts VerifyOptions) (auditlog.Report, error) {
	return verifyDatabase(ctx, db, vkey, origin, opts, defaultEntryReads)
}

func verifyDatabase(ctx context.Context, db *pgxpool.Pool, vkey, origin string, opts VerifyOptions, reads entryReads) (auditlog.Report, error) {
	// One snapshot for the checkpoint, the entries, the tree and the head: the sequencer
	// keeps appending while an auditor verifies, and reads from different moments would
	// disagree without anything being wrong.
	pool, err := db.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return auditlog.Report{FirstMismatch: -1}, fmt.Errorf("verify: %w", err)
	}
	defer func() { _ = pool.Rollback(context.WithoutCancel(ctx)) }()
	// The stored tree hashes, and ranges of the entries, are read at the same time on more
	// connections in the same snapshot, so the reads use the database's cores and this
	// process's together.
	var snap string
	if db.Config().MaxConns >= 2 {
		if snap, err = exportSnapshot(ctx, pool); err != nil {
			return auditlog.Report{FirstMismatch: -1}, fmt.Errorf("verify: %w", err)
		}
	}
	fctx, stopFeed := context.WithCancel(ctx)
	defer stopFeed()
	feed, err := startHashFeed(fctx, db, pool, snap)
	if err != nil {
		return auditlog.Report{FirstMismatch: -1}, fmt.Errorf("verify: %w", err)
	}
	last, err := store.LatestCheckpoint(ctx, pool)
	if errors.Is(err, store.ErrNotFound) {
		return auditlog.Report{FirstMismatch: -1}, errors.New("verify: no signed checkpoint yet: nothing can be proven")
	}
	if err != nil {
		return auditlog.Report{FirstMismatch: -1}, fmt.Errorf("verify: %w", err)
	}
	cp, err := auditlog.OpenCheckpoint([]byte(last.Note), vkey, origin)
	if err != nil {
		return auditlog.Report{FirstMismatch: -1}, fmt.Errorf("verify: checkpoint of %d entries: %w", last.TreeSize, err)
	}
	if cp.Size != last.TreeSize {
		return auditlog.Report{FirstMismatch: -1}, fmt.Errorf("verify: checkpoint row says %d entries but its signed text says %d", last.TreeSize, cp.Size)
	}

	v := auditlog.NewVerifier()
	// First finding of the checks beside the tree (columns, payloads, stored interior
	// hashes), by position; merged with the tree's own finding below.
	side := sideFinding{pos: -1}
	shreds := map[string]auditlog.Entry{} // referral id -> its case-shredded entry
	var missingPayload []missingRow
	// Allocate the trees once for the signed size and the head's few entries past it (the
	// head, same snapshot, is trusted only that far: an inflated one must not allocate).
	grow := cp.Size
	if h, herr := store.ReadHead(ctx, pool); herr == nil && h.TreeSize > grow {
		grow = min(h.TreeSize, grow+grow/4+1<<16)
	}
	v.Grow(grow)
	feed.reserve(tlog.StoredHashIndex(0, grow))
	endStream, err := store.BeginEntryStream(ctx, pool)
	if err != nil {
		return auditlog.Report{FirstMismatch: -1}, fmt.Errorf("verify: %w", err)
	}
	// Readers past the first each take a connection of their own in the snapshot, as the
	// stored hashes do.
	var open func(context.Context) (pgx.Tx, error)
	readers := min(reads.readers, int(db.Config().MaxConns)-1)
	if snap != "" && readers > 1 {
		open = func(ctx context.Context) (pgx.Tx, error) { return beginInSnapshot(ctx, db, snap) }
	}
	// The rows arrive checked against their leaves and hashed, in order; the tree and the
	// positions of what was found are built here exactly as from one ordered read.
	err = readEntries(ctx, pool, open, readers, store.SplitEntries(grow, reads.chunkRows), opts.MasterKey, func(c *entryChunk) error {
		pos0 := v.Len()
		for i := range c.rows {
			r := &c.rows[i]
			if r.full && onFullCheck != nil {
				onFullCheck(pos0 + int64(i))
			}
			// The leaf hash stored for seq n sits at stored-hash index 2n - popcount(n); zero
			// when missing.
			var stored tlog.Hash
			if r.seq >= 0 {
				stored, _ = feed.get(tlog.StoredHashIndex(0, r.seq))
			}
			if err := v.AddPreparedWithStoredHash(r.seq, r.leaf, r.redacted, stored); err != nil {
				return fmt.Errorf("stream entries: %w", err)
			}
		}
		if c.first.row >= 0 {
			side.note(pos0+int64(c.first.row), c.first.reason)
		}
		for _, sh := range c.shreds {
			shreds[sh.ReferralID] = sh
		}
		for _, m := range c.missing {
			missingPayload = append(missingPayload, missingRow{pos: pos0 + m.pos, referral: m.referral})
		}
		return c.err
	})
	if err == nil {
		err = endStream(ctx)
	}
	if err == nil {
		// Every stored hash, interior ones included, must be the one recomputed from the
		// leaves (the served proofs are read from them), naming the entry whose append
		// stored the first that differs.
		err = feed.compare(v.Hashes(), &side)
	}
	if err != nil {
		return auditlog.Report{FirstMismatch: -1}, fmt.Errorf("verify: %w", err)
	}
	keyProblems, err := verifyKeys(ctx, pool, shreds, missingPayload)
	if err != nil {
		return auditlog.Report{FirstMismatch: -1}, fmt.Errorf("verify: %w", err)
	}
	var keyOnly string // a problem with a key that no entry names
	for _, f := range keyProblems {
		if f.pos < 0 {
			if keyOnly == "" {
				keyOnly = f.reason
			}
			continue
		}
		side.note(f.pos, f.reason)
	}
	// The full stored-hash table is the reference: it is read only on a mismatch, and its
	// interior hashes are checked against their parents from the signed root down, so the
	// altered entry is named even when its stored leaf hash was rewritten to match.
	rep, err := v.CheckWithStoredHashes(cp, store.TreeHashes{Ctx: ctx, Pool: pool})
	if err != nil && !errors.Is(err, auditlog.ErrMismatch) {
		return rep, fmt.Errorf("verify: %w", err)
	}
	if side.pos >= 0 && (rep.FirstMismatch < 0 || side.pos < rep.FirstMismatch) {
		rep.FirstMismatch, rep.Reason = side.pos, side.reason
		err = fmt.Errorf("%w: entry %d: %s", auditlog.ErrMismatch, side.pos, side.reason)
	}
	if err != nil {
		return rep, fmt.Errorf("verify: %w", err)
	}

	// The unsigned rest: the head must describe exactly the rows read, and the stored hash
	// table must hold nothing else.
	head, herr := store.ReadHead(ctx, pool)
	if herr != nil {
		return rep, fmt.Errorf("verify: %w", herr)
	}
	if head.TreeSize != v.Len() {
		return rep, fmt.Errorf("verify: the head says %d entries but %d were read", head.TreeSize, v.Len())
	}
	hrep, herr := v.Check(auditlog.Checkpoint{Origin: origin, Size: head.TreeSize, Root: tlog.Hash(head.Root)})
	if herr != nil {
		return hrep, fmt.Errorf("verify: the head's root does not match the entries: %w", herr)
	}
	// Every checkpoint ever signed, not only the latest: its row must be what was signed,
	// and its root the tree's root at its size.
	if err := verifyCheckpoints(ctx, pool, v, vkey, origin); err != nil {
		return rep, fmt.Errorf("verify: %w", err)
	}
	if keyOnly != "" {
		return rep, fmt.Errorf("verify: %w: %s", auditlog.ErrMismatch, keyOnly)
	}
	orphans, err := store.OrphanPayloads(ctx, pool)
	if err != nil {
		return rep, fmt.Errorf("verify: %w", err)
	}
	if len(orphans) > 0 {
		return rep, fmt.Errorf("verify: %w: the payload of event %s belongs to no entry", auditlog.ErrMismatch, orphans[0])
	}
	return rep, nil
}

// onFullCheck, when set (by tests), is told each entry verify decodes in full.
var onFullCheck func(pos int64)

// fastRow reports whether the row is an ordinary entry that matches its leaf, checked on
// the raw column bytes without decoding it: the leaf decodes; every column equals the
// field the leaf commits to; it is not a shredding (whose key is checked later); and its
// payload is as the leaf says (none stored for none committed, or one whose digest is the
// committed one, sealed with the key of the leaf's referral). redacted is whether that key
// is destroyed. Anything else, or verification with the master key (which opens the
// payload), is left to the full check, which names what differs.
func fastRow(r *store.RawRow, masterKey bool) (redacted, ok bool) {
	if !r.Binary {
		return false, false
	}
	c := r.Values
	lv, ok := auditlog.ParseLeafView(c[store.ColLeaf])
	if !ok {
		return false, false
	}
	if seq, ok := r.Int64(store.ColSeq); !ok || seq != lv.Seq {
		return false, false
	}
	if !uuidTextEqual(c[store.ColEventID], lv.EventID) || !bytes.Equal(c[store.ColEventType], lv.EventType) ||
		string(lv.EventType) == EventCaseShredded {
		return false, false
	}
	if us, ok := r.Micros(store.ColOccurredAt); !ok || us != floorMicros(lv.OccurredAt) {
		return false, false
	}
	if us, ok := r.Micros(store.ColRecordedAt); !ok || us != floorMicros(lv.RecordedAt) {
		return false, false
	}
	for i, f := range lv.Strings {
		if v := c[store.ColPartnership+i]; v == nil || !bytes.Equal(v, f) {
			return false, false
		}
	}
	if !bytes.Equal(c[store.ColPayloadSHA256], lv.PayloadSHA256) {
		return false, false
	}
	hasPayload := r.Bool(store.ColHasPayload)
	if [32]byte(lv.PayloadSHA256) == ([32]byte{}) {
		return false, !hasPayload
	}
	ref := lv.Strings[1]
	if !hasPayload || masterKey || c[store.ColKeyReferral] == nil || !bytes.Equal(c[store.ColKeyReferral], ref) ||
		!bytes.Equal(c[store.ColCipherSHA256], lv.PayloadSHA256) {
		return false, false
	}
	return r.Bool(store.ColKeyDestroyed), true
}

// uuidTextEqual reports whether text is the uuid of the 16 bytes b as Postgres prints it
// (lowercase hex in groups of 8-4-4-4-12), which is what a uuid column compared as text is.
func uuidTextEqual(b, text []byte) bool {
	if len(b) != 16 || len(text) != 36 {
		return false
	}
	var buf [36]byte
	hex.Encode(buf[0:8], b[0:4])
	buf[8] = '-'
	hex.Encode(buf[9:13], b[4:6])
	buf[13] = '-'
	hex.Encode(buf[14:18], b[6:8])
	buf[18] = '-'
	hex.Encode(buf[19:23], b[8:10])
	buf[23] = '-'
	hex.Encode(buf[24:36], b[10:16])
	return bytes.Equal(buf[:], text)
}

// floorMicros is Unix nanoseconds truncated to the microseconds a timestamptz keeps, as
// sameInstant truncates (towards the past, before 1970 too).
func floorMicros(ns int64) int64 {
	us := ns / 1000
	if ns%1000 < 0 {
		us--
	}
	return us
}

// sideFinding is the earliest problem found beside the tree's own checks.
type sideFinding struct {
	pos    int64
	reason string
}

func (f *sideFinding) note(pos int64, reason string) {
	if f.pos < 0 || pos < f.pos {
		f.pos, f.reason = pos, reason
	}
}

// missingRow is an entry whose leaf commits to a payload that is not stored.
type missingRow struct {
	pos      int64
	referral string
}

// hashFeed is the stored tree hashes, in index order, as a goroutine reads them on a
// second connection: get waits only until the rows up to the index asked for arrived.
type hashFeed struct {
	ch   <-chan hashChunk
	idxs []int64
	hs   []tlog.Hash
	done bool
	err  error
}

type hashChunk struct {
	idxs []int64
	hs   []tlog.Hash
	err  error
}

// exportSnapshot exports tx's snapshot for other connections to read in.
func exportSnapshot(ctx context.Context, tx pgx.Tx) (string, error) {
	var snap string
	if err := tx.QueryRow(ctx, `SELECT pg_export_snapshot()`).Scan(&snap); err != nil {
		return "", fmt.Errorf("export snapshot: %w", err)
	}
	return snap, nil
}

// beginInSnapshot opens a read-only transaction on db that sees the exported snapshot snap.
func beginInSnapshot(ctx context.Context, db *pgxpool.Pool, snap string) (pgx.Tx, error) {
	tx, err := db.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, err
	}
	if _, err := tx.Exec(ctx, `SET TRANSACTION SNAPSHOT '`+strings.ReplaceAll(snap, "'", "")+`'`); err != nil {
		_ = tx.Rollback(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("import snapshot: %w", err)
	}
	return tx, nil
}

// startHashFeed streams audit.tree_hashes until the table ends or ctx is cancelled: on a
// connection of db of its own in the exported snapshot snap, or, without one (snap empty),
// all of them first in tx itself.
func startHashFeed(ctx context.Context, db *pgxpool.Pool, tx pgx.Tx, snap string) (*hashFeed, error) {
	if snap == "" {
		f := &hashFeed{done: true}
		f.err = store.StreamTreeHashes(ctx, tx, func(idx int64, h []byte) error {
			var x tlog.Hash
			copy(x[:], h)
			f.idxs, f.hs = append(f.idxs, idx), append(f.hs, x)
			return nil
		})
		return f, f.err
	}
	tx2, err := beginInSnapshot(ctx, db, snap)
	if err != nil {
		return nil, err
	}
	ch := make(chan hashChunk, 4)
	go func() {
		defer close(ch)
		defer func() { _ = tx2.Rollback(context.WithoutCancel(ctx)) }()
		const size = 16384
		c := hashChunk{idxs: make([]int64, 0, size), hs: make([]tlog.Hash, 0, size)}
		send := func(c hashChunk) bool {
			select {
			case ch <- c:
				return true
			case <-ctx.Done():
				return false
			}
		}
		err := store.StreamTreeHashes(ctx, tx2, func(idx int64, h []byte) error {
			var x tlog.Hash
			copy(x[:], h)
			c.idxs, c.hs = append(c.idxs, idx), append(c.hs, x)
			if len(c.idxs) == size {
				if !send(c) {
					return ctx.Err()
				}
				c = hashChunk{idxs: make([]int64, 0, size), hs: make([]tlog.Hash, 0, size)}
			}
			return nil
		})
		if err != nil {
			send(hashChunk{err: err})
			return
		}
		if len(c.idxs) > 0 {
			send(c)
		}
	}()
	return &hashFeed{ch: ch}, nil
}

// reserve makes room for n stored hashes, so the table is not copied as it grows.
func (f *hashFeed) reserve(n int64) {
	if n > int64(cap(f.idxs)) && n < math.MaxInt32 {
		f.idxs, f.hs = slices.Grow(f.idxs, int(n)-len(f.idxs)), slices.Grow(f.hs, int(n)-len(f.hs))
	}
}

// upTo receives rows until one beyond idx arrived or the table ended.
func (f *hashFeed) upTo(idx int64) {
	for !f.done && (len(f.idxs) == 0 || f.idxs[len(f.idxs)-1] <= idx) {
		c, ok := <-f.ch
		switch {
		case !ok:
			f.done = true
		case c.err != nil:
			f.done, f.err = true, c.err
		default:
			f.idxs, f.hs = append(f.idxs, c.idxs...), append(f.hs, c.hs...)
		}
	}
}

// get returns the stored hash at idx and whether there is one.
func (f *hashFeed) get(idx int64) (tlog.Hash, bool) {
	f.upTo(idx)
	if idx < int64(len(f.idxs)) && f.idxs[idx] == idx { // the table is whole up to idx
		return f.hs[idx], true
	}
	i := sort.Search(len(f.idxs), func(i int) bool { return f.idxs[i] >= idx })
	if i < len(f.idxs) && f.idxs[i] == idx {
		return f.hs[i], true
	}
	return tlog.Hash{}, false
}

// compare notes, against the entry whose append stored it, the first stored hash that is
// missing, extra or not the one recomputed (want).
func (f *hashFeed) compare(want auditlog.MemoryHashes, side *sideFinding) error {
	f.upTo(math.MaxInt64)
	if f.err != nil {
		return f.err
	}
	next := int64(0)
	found := false
	note := func(idx int64, reason string) {
		if !found {
			found = true
			side.note(entryOfHash(idx), reason)
		}
	}
	for i, idx := range f.idxs {
		switch {
		case idx >= int64(len(want)):
			note(int64(len(want))-1, fmt.Sprintf("the table stores hash %d, beyond the %d hashes of the tree", idx, len(want)))
		case idx != next:
			note(next, fmt.Sprintf("stored tree hash %d is missing", next))
		case f.hs[i] != want[idx]:
			note(idx, fmt.Sprintf("stored tree hash %d is not the one recomputed from the leaves", idx))
		}
		next = idx + 1
	}
	if !found && next < int64(len(want)) {
		note(next, fmt.Sprintf("stored tree hash %d is missing", next))
	}
	return nil
}

// entryOfHash is the leaf whose append stores hash idx: the n with
// StoredHashIndex(0, n) <= idx < StoredHashIndex(0, n+1).
func entryOfHash(idx int64) int64 {
	lo, hi := int64(0), idx // StoredHashIndex(0, n) = 2n - popcount(n) >= n, so n <= idx
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if tlog.StoredHashIndex(0, mid) <= idx {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return lo
}

// verifyCheckpoints checks every stored checkpoint against the recomputed tree.
func verifyCheckpoints(ctx context.Context, tx pgx.Tx, v *auditlog.Verifier, vkey, origin string) error {
	cps, err := store.Checkpoints(ctx, tx)
	if err != nil {
		return err
	}
	for _, c := range cps {
		cp, err := auditlog.OpenCheckpoint([]byte(c.Note), vkey, origin)
		if err != nil {
			return fmt.Errorf("%w: checkpoint of %d entries: %v", auditlog.ErrMismatch, c.TreeSize, err)
		}
		if cp.Size != c.TreeSize {
			return fmt.Errorf("%w: checkpoint row says %d entries but its signed text says %d", auditlog.ErrMismatch, c.TreeSize, cp.Size)
		}
		if !c.CreatedAt.Equal(cp.Time.Truncate(time.Microsecond)) {
			return fmt.Errorf("%w: checkpoint of %d entries: stored created_at %s is not its signed time %s", auditlog.ErrMismatch,
				c.TreeSize, c.CreatedAt.UTC().Format(time.RFC3339Nano), cp.Time.Format(time.RFC3339Nano))
		}
		if cp.Size > v.Len() {
			return fmt.Errorf("%w: checkpoint of %d entries but the log has %d", auditlog.ErrMismatch, cp.Size, v.Len())
		}
		root, err := auditlog.Root(v.Hashes(), cp.Size)
		if err != nil {
			return err
		}
		if root != cp.Root {
			return fmt.Errorf("%w: checkpoint of %d entries signs a root the entries do not make", auditlog.ErrMismatch, cp.Size)
		}
	}
	return nil
}

// verifyKeys checks the case keys: a destroyed key must be the one a case-shredded entry
// records (who and when, and the reason's digest), every case-shredded entry must have its
// destroyed key, a live key must seal at least one payload (keys are made for a payload),
// and a payload may be missing only where its case's key is destroyed.
func verifyKeys(ctx context.Context, tx pgx.Tx, shreds map[string]auditlog.Entry, missing []missingRow) ([]sideFinding, error) {
	keys, err := store.CaseKeys(ctx, tx)
	if err != nil {
		return nil, err
	}
	var out []sideFinding
	byRef := make(map[string]store.KeyRow, len(keys))
	for _, k := range keys {
		byRef[k.ReferralID] = k
		le, shredded := shreds[k.ReferralID]
		switch {
		case k.DestroyedAt == nil && k.Payloads == 0:
			out = append(out, sideFinding{-1, fmt.Sprintf("the case key of referral %q seals no payload", k.ReferralID)})
		case k.DestroyedAt == nil:
		case !shredded:
			out = append(out, sideFinding{-1, fmt.Sprintf("the case key of referral %q is destroyed but no entry records its shredding", k.ReferralID)})
		case k.DestroyedBy == nil || *k.DestroyedBy != le.Actor || !sameInstant(*k.DestroyedAt, le.OccurredAt) ||
			k.DestroyReason == nil || le.Decision != shredDecision(*k.DestroyReason):
			out = append(out, sideFinding{le.Seq, fmt.Sprintf("the destroyed case key of referral %q is not the one this entry records (who, when or why differ)", k.ReferralID)})
		}
	}
	for ref, le := range shreds {
		if k, ok := byRef[ref]; !ok || k.DestroyedAt == nil {
			out = append(out, sideFinding{le.Seq, fmt.Sprintf("this entry records shredding referral %q but its case key is not destroyed", ref)})
		}
	}
	for _, m := range missing {
		if k, ok := byRef[m.referral]; !ok || k.DestroyedAt == nil {
			out = append(out, sideFinding{m.pos, "the payload the leaf commits to is missing, and the case key of its referral is not destroyed"})
		}
	}
	return out, nil
}

// openCheck opens a payload with its unwrapped case key (verification with the master
// key): a wrapped key or nonce altered in the database fails here.
func openCheck(master []byte, cache map[string][]byte, r *store.VerifyRow, le auditlog.Entry) string {
	key, ok := cache[le.ReferralID]
	if !ok {
		var err error
		if key, err = unwrapKey(master, r.Wrapped, le.ReferralID); err != nil {
			return "the case key of the payload does not unwrap with the master key"
		}
		cache[le.ReferralID] = key
	}
	if _, err := open(key, r.Nonce, r.Ciphertext, le.EventID); err != nil {
		return "the payload does not open with its case key"
	}
	return ""
}
