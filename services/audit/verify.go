package audit

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"

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
	payloadBad := int64(-1)
	var payloadReason string
	err = store.StreamEntries(ctx, pool, func(r store.VerifyRow) error {
		// A leaf committing to a payload that can no longer be read (key destroyed, or the
		// payload row removed under the retention policy) is redacted; a zero hash means
		// the event had no payload.
		redacted := leafPayloadHash(r.Leaf) != [32]byte{} && (!r.HasPayload || r.Destroyed)
		if payloadBad < 0 && r.HasPayload && !r.Destroyed {
			if got, want := sha256.Sum256(r.Ciphertext), leafPayloadHash(r.Leaf); got != want {
				payloadBad = v.Len()
				payloadReason = fmt.Sprintf("the stored payload hashes to %x but the leaf commits to %x", got, want)
			}
		}
		return v.AddWithStoredHash(r.Seq, r.Leaf, redacted, tlog.Hash(r.StoredLeafHash))
	})
	if err != nil {
		return auditlog.Report{FirstMismatch: -1}, fmt.Errorf("verify: %w", err)
	}
	// The full stored-hash table is the reference: it is read only on a mismatch, and its
	// interior hashes are checked against their parents from the signed root down, so the
	// altered entry is named even when its stored leaf hash was rewritten to match.
	rep, err := v.CheckWithStoredHashes(cp, store.TreeHashes{Ctx: ctx, Pool: pool})
	if err != nil && !errors.Is(err, auditlog.ErrMismatch) {
		return rep, fmt.Errorf("verify: %w", err)
	}
	if payloadBad >= 0 && payloadBad < cp.Size && (rep.FirstMismatch < 0 || payloadBad < rep.FirstMismatch) {
		rep.FirstMismatch, rep.Reason = payloadBad, payloadReason
		err = fmt.Errorf("%w: entry %d: %s", auditlog.ErrMismatch, payloadBad, payloadReason)
	}
	if err != nil {
		return rep, fmt.Errorf("verify: %w", err)
	}

	// The unsigned rest: the head must describe exactly the rows read.
	head, herr := store.ReadHead(ctx, pool)
	if herr != nil {
		return rep, fmt.Errorf("verify: %w", herr)
	}
	if head.TreeSize != v.Len() {
		return rep, fmt.Errorf("verify: the head says %d entries but %d were read", head.TreeSize, v.Len())
	}
	if head.TreeSize > cp.Size {
		hrep, herr := v.Check(auditlog.Checkpoint{Origin: origin, Size: head.TreeSize, Root: tlog.Hash(head.Root)})
		if herr != nil {
			return hrep, fmt.Errorf("verify: entries after the signed checkpoint do not match the head: %w", herr)
		}
		if payloadBad >= 0 {
			hrep.FirstMismatch, hrep.Reason = payloadBad, payloadReason
			return hrep, fmt.Errorf("verify: %w: entry %d: %s", auditlog.ErrMismatch, payloadBad, payloadReason)
		}
	}
	return rep, nil
}

// leafPayloadHash is the last field of a version-1 leaf: the payload's SHA-256.
func leafPayloadHash(leaf []byte) [32]byte {
	var h [32]byte
	if len(leaf) >= 32 {
		copy(h[:], leaf[len(leaf)-32:])
	}
	return h
}
