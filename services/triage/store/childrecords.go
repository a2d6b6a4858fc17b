package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
)

// Correction is one merge, unmerge, link or unlink of child records.
type Correction struct {
	ID, Kind                 string
	FromChild, ToChild       string
	ReferralID               string
	Reason, Actor, ActorRole string
	At                       time.Time
	UndoneAt                 *time.Time
	UndoneBy, UndoReason     string
}

// Kinds of correction.
const (
	CorrectionMerge  = "MERGE"
	CorrectionLink   = "LINK"
	CorrectionUnlink = "UNLINK"
)

// ErrMergedAway is returned when a correction names a record that was merged into another.
var ErrMergedAway = errors.New("the child record was merged into another")

// ErrAlreadyUndone is returned when a merge that was undone is undone again.
var ErrAlreadyUndone = errors.New("the merge was already undone")

// effectiveChild is a case's child record in SQL: the practitioner's override, else the
// rules' record, followed through standing merges.
const effectiveChild = `triage.resolve_child(coalesce(child_override, rules_child_id))`

// ChildPartnerships lists the partnerships of a child record's cases (none: no such record).
func ChildPartnerships(ctx context.Context, q Querier, childID string) ([]string, error) {
	rows, err := q.Query(ctx, `SELECT DISTINCT partnership FROM triage.cases WHERE child_id = $1 ORDER BY 1`, childID)
	if err != nil {
		return nil, fmt.Errorf("partnerships of child %s: %w", childID, err)
	}
	ps, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("partnerships of child %s: %w", childID, err)
	}
	return ps, nil
}

// MergedInto is the record a child record now is, when a standing merge took it into
// another; "" when it stands on its own.
func MergedInto(ctx context.Context, q Querier, childID string) (string, error) {
	var to string
	if err := q.QueryRow(ctx, `SELECT triage.resolve_child($1::uuid)::text`, childID).Scan(&to); err != nil {
		return "", fmt.Errorf("resolve child %s: %w", childID, err)
	}
	if to == childID {
		return "", nil
	}
	return to, nil
}

// lockChildren takes the re-referral triggers' child locks in id order, before any case row.
func lockChildren(ctx context.Context, tx pgx.Tx, ids ...string) error {
	ids = slices.Clone(ids)
	slices.Sort(ids)
	for _, id := range slices.Compact(ids) {
		if _, err := tx.Exec(ctx, `SELECT `+childLock(`$1::uuid`), id); err != nil {
			return fmt.Errorf("lock child %s: %w", id, err)
		}
	}
	return nil
}

// MergeChildren records the merge of from into into and moves every case of from (and of
// the records merged into it) onto into, returning the cases as they are now. The
// re-referral triggers re-link both children's cases in the same transaction.
func MergeChildren(ctx context.Context, tx pgx.Tx, m Correction) ([]Case, error) {
	if err := lockChildren(ctx, tx, m.FromChild, m.ToChild); err != nil {
		return nil, err
	}
	for _, id := range []string{m.FromChild, m.ToChild} {
		to, err := MergedInto(ctx, tx, id)
		if err != nil {
			return nil, err
		}
		if to != "" {
			return nil, fmt.Errorf("child %s: %w (%s)", id, ErrMergedAway, to)
		}
	}
	if _, err := tx.Exec(ctx, `INSERT INTO triage.child_merges (id, from_child, into_child, reason, actor, actor_role, at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, m.ID, m.FromChild, m.ToChild, m.Reason, m.Actor, m.ActorRole, m.At); err != nil {
		return nil, fmt.Errorf("record merge of child %s into %s: %w", m.FromChild, m.ToChild, err)
	}
	return rechild(ctx, tx, m.FromChild)
}

// rechild recomputes the effective child of every case now on childID, returning those that
// moved.
func rechild(ctx context.Context, tx pgx.Tx, childID string) ([]Case, error) {
	rows, err := tx.Query(ctx, `UPDATE triage.cases SET child_id = `+effectiveChild+`, version = version + 1, updated_at = now()
		WHERE child_id = $1 AND child_id IS DISTINCT FROM `+effectiveChild+` RETURNING `+caseColumns, childID)
	if err != nil {
		return nil, fmt.Errorf("move cases of child %s: %w", childID, err)
	}
	cs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Case, error) { return scanCase(r) })
	if err != nil {
		return nil, fmt.Errorf("move cases of child %s: %w", childID, err)
	}
	return cs, nil
}

// LockMerge reads a merge for update.
func LockMerge(ctx context.Context, tx pgx.Tx, id string) (Correction, error) {
	m := Correction{Kind: CorrectionMerge}
	err := tx.QueryRow(ctx, `SELECT id::text, from_child::text, into_child::text, reason, actor, actor_role, at, undone_at, undone_by,
			undo_reason FROM triage.child_merges WHERE id = $1 FOR UPDATE`, id).
		Scan(&m.ID, &m.FromChild, &m.ToChild, &m.Reason, &m.Actor, &m.ActorRole, &m.At, &m.UndoneAt, &m.UndoneBy, &m.UndoReason)
	if errors.Is(err, pgx.ErrNoRows) {
		return m, ErrNotFound
	}
	if err != nil {
		return m, fmt.Errorf("merge %s: %w", id, err)
	}
	return m, nil
}

// UnmergeChildren undoes a standing merge: the merged record's cases (and those of records
// merged into it) return to it, and the merge stays on record as undone.
func UnmergeChildren(ctx context.Context, tx pgx.Tx, mergeID, by, reason string, at time.Time) (Correction, []Case, error) {
	m, err := LockMerge(ctx, tx, mergeID)
	if err != nil {
		return m, nil, err
	}
	if m.UndoneAt != nil {
		return m, nil, ErrAlreadyUndone
	}
	target, err := MergedInto(ctx, tx, m.ToChild)
	if err != nil {
		return m, nil, err
	}
	if target == "" {
		target = m.ToChild
	}
	if err := lockChildren(ctx, tx, m.FromChild, m.ToChild, target); err != nil {
		return m, nil, err
	}
	if _, err := tx.Exec(ctx, `UPDATE triage.child_merges SET undone_at = $2, undone_by = $3, undo_reason = $4 WHERE id = $1`,
		m.ID, at, by, reason); err != nil {
		return m, nil, fmt.Errorf("undo merge %s: %w", m.ID, err)
	}
	m.UndoneAt, m.UndoneBy, m.UndoReason = &at, by, reason
	moved, err := rechild(ctx, tx, target)
	return m, moved, err
}

// SetChildOverride puts one case on childID (a link, or an unlink onto a new record),
// records the correction, and returns the case as it is now.
func SetChildOverride(ctx context.Context, tx pgx.Tx, l Correction) (Case, error) {
	if err := lockChildren(ctx, tx, l.FromChild, l.ToChild); err != nil {
		return Case{}, err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO triage.referral_links (id, referral_id, kind, from_child, to_child, reason, actor, actor_role, at)
		VALUES ($1, $2, $3, nullif($4, '')::uuid, $5, $6, $7, $8, $9)`,
		l.ID, l.ReferralID, l.Kind, l.FromChild, l.ToChild, l.Reason, l.Actor, l.ActorRole, l.At); err != nil {
		return Case{}, fmt.Errorf("record %s of referral %s: %w", l.Kind, l.ReferralID, err)
	}
	c, err := scanCase(tx.QueryRow(ctx, `UPDATE triage.cases SET child_override = $2, child_id = $2, version = version + 1,
		updated_at = now() WHERE referral_id = $1 RETURNING `+caseColumns, l.ReferralID, l.ToChild))
	if err != nil {
		return Case{}, fmt.Errorf("%s referral %s: %w", l.Kind, l.ReferralID, err)
	}
	return c, nil
}

// Corrections lists the merges into or out of a child record and the referrals linked to or
// unlinked from it, oldest first.
func Corrections(ctx context.Context, q Querier, childID string) ([]Correction, error) {
	rows, err := q.Query(ctx, `SELECT id::text, 'MERGE', from_child::text, into_child::text, '', reason, actor, actor_role, at,
			undone_at, undone_by, undo_reason
		FROM triage.child_merges WHERE from_child = $1 OR into_child = $1
		UNION ALL
		SELECT id::text, kind, coalesce(from_child::text, ''), to_child::text, referral_id::text, reason, actor, actor_role, at,
			NULL::timestamptz, '', ''
		FROM triage.referral_links WHERE from_child = $1 OR to_child = $1
		ORDER BY at, id`, childID)
	if err != nil {
		return nil, fmt.Errorf("corrections of child %s: %w", childID, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Correction, error) {
		var c Correction
		err := r.Scan(&c.ID, &c.Kind, &c.FromChild, &c.ToChild, &c.ReferralID, &c.Reason, &c.Actor, &c.ActorRole, &c.At,
			&c.UndoneAt, &c.UndoneBy, &c.UndoReason)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("corrections of child %s: %w", childID, err)
	}
	return out, nil
}
