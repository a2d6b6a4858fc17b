package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/mod/sumdb/tlog"

	"mash/services/audit/store"
	auditlog "mash/services/audit/tlog"
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
	keyCache := map[string][]byte{}
	// One snapshot for the checkpoint, the entries, the tree and the head: the sequencer
	// keeps appending while an auditor verifies, and reads from different moments would
	// disagree without anything being wrong.
	pool, err := db.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return auditlog.Report{FirstMismatch: -1}, fmt.Errorf("verify: %w", err)
	}
	defer func() { _ = pool.Rollback(context.WithoutCancel(ctx)) }()
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
	err = store.StreamEntries(ctx, pool, func(r *store.VerifyRow) error {
		pos := v.Len()
		le, lerr := auditlog.UnmarshalLeaf(r.Leaf)
		redacted := false
		if lerr == nil {
			if bad := columnMismatches(&r.Entry, le); len(bad) > 0 {
				side.note(pos, fmt.Sprintf("stored %s differ from what the leaf commits to", strings.Join(bad, ", ")))
			}
			if le.EventType == EventCaseShredded {
				shreds[le.ReferralID] = le
			}
			if !r.HasPayload && le.PayloadSHA256 != ([32]byte{}) {
				// Legitimate only if the case was shredded: checked once every key is read.
				missingPayload = append(missingPayload, missingRow{pos: pos, referral: le.ReferralID})
				redacted = true
			} else {
				var problem string
				redacted, problem = payloadState(&r.Entry, le, nil)
				if problem != "" {
					side.note(pos, problem)
				}
				if problem == "" && !redacted && r.HasPayload && opts.MasterKey != nil {
					if p := openCheck(opts.MasterKey, keyCache, r, le); p != "" {
						side.note(pos, p)
					}
				}
			}
		}
		return v.AddWithStoredHash(r.Seq, r.Leaf, redacted, tlog.Hash(r.StoredLeafHash))
	})
	if err == nil {
		// Every stored hash, interior ones included, must be the one recomputed from the
		// leaves (the served proofs are read from them): a second pass in index order,
		// naming the entry whose append stored the first that differs.
		err = compareStoredHashes(ctx, pool, v.Hashes(), &side)
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

// compareStoredHashes reads every stored tree hash in index order and notes, against the
// entry whose append stored it, the first that is missing, extra or not the one recomputed.
func compareStoredHashes(ctx context.Context, q store.Querier, want auditlog.MemoryHashes, side *sideFinding) error {
	next := int64(0)
	found := false
	note := func(idx int64, reason string) {
		if !found {
			found = true
			side.note(entryOfHash(idx), reason)
		}
	}
	err := store.StreamTreeHashes(ctx, q, func(idx int64, h []byte) error {
		switch {
		case idx >= int64(len(want)):
			note(int64(len(want))-1, fmt.Sprintf("the table stores hash %d, beyond the %d hashes of the tree", idx, len(want)))
		case idx != next:
			note(next, fmt.Sprintf("stored tree hash %d is missing", next))
		case !bytes.Equal(h, want[idx][:]):
			note(idx, fmt.Sprintf("stored tree hash %d is not the one recomputed from the leaves", idx))
		}
		next = idx + 1
		return nil
	})
	if err == nil && !found && next < int64(len(want)) {
		note(next, fmt.Sprintf("stored tree hash %d is missing", next))
	}
	return err
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
