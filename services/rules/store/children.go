package store

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/mash-hub/mash/services/rules/childindex"
)

// ResolveChild links a referral's child to the index inside tx, creating a child record when
// the policy finds no strong match. A transaction-scoped advisory lock per key serialises
// concurrent referrals about the same new child, so they cannot create two records.
func ResolveChild(ctx context.Context, tx pgx.Tx, k childindex.Key) (string, childindex.Basis, error) {
	for _, lockKey := range []string{k.NHSNumber, k.Demographic} {
		if lockKey == "" {
			continue
		}
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('mash.child.' || $1))`, lockKey); err != nil {
			return "", "", fmt.Errorf("lock child key: %w", err)
		}
	}
	var byNHS, byDemo []childindex.Candidate
	var err error
	if k.NHSNumber != "" {
		if byNHS, err = candidates(ctx, tx, `SELECT id::text, coalesce(nhs_number, '') FROM rules.children WHERE nhs_number = $1`, k.NHSNumber); err != nil {
			return "", "", err
		}
	}
	if k.Demographic != "" && len(byNHS) == 0 {
		if byDemo, err = candidates(ctx, tx, `SELECT id::text, coalesce(nhs_number, '') FROM rules.children WHERE demographic_key = $1 LIMIT 10`, k.Demographic); err != nil {
			return "", "", err
		}
	}
	childID, basis := childindex.Decide(k, byNHS, byDemo)
	if childID != "" {
		// A demographic match that brings an NHS number teaches the index the number.
		if basis == childindex.MatchDemographics && k.NHSNumber != "" {
			if _, err := tx.Exec(ctx, `UPDATE rules.children SET nhs_number = $2 WHERE id = $1 AND nhs_number IS NULL`, childID, k.NHSNumber); err != nil {
				return "", "", fmt.Errorf("record NHS number on child %s: %w", childID, err)
			}
		}
		return childID, basis, nil
	}
	id, err := uuid.NewV7()
	if err != nil {
		return "", "", err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO rules.children (id, nhs_number, demographic_key) VALUES ($1, nullif($2, ''), nullif($3, ''))`,
		id, k.NHSNumber, k.Demographic); err != nil {
		return "", "", fmt.Errorf("create child record: %w", err)
	}
	return id.String(), basis, nil
}

func candidates(ctx context.Context, tx pgx.Tx, q, arg string) ([]childindex.Candidate, error) {
	rows, err := tx.Query(ctx, q, arg)
	if err != nil {
		return nil, fmt.Errorf("look up child: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (childindex.Candidate, error) {
		var c childindex.Candidate
		err := r.Scan(&c.ChildID, &c.NHSNumber)
		return c, err
	})
}

// EffectiveChild is the record childID now is: itself, or the record a standing merge took
// it into.
func EffectiveChild(ctx context.Context, tx pgx.Tx, childID string) (string, error) {
	var to string
	if err := tx.QueryRow(ctx, `SELECT rules.resolve_child($1::uuid)::text`, childID).Scan(&to); err != nil {
		return "", fmt.Errorf("resolve child %s: %w", childID, err)
	}
	return to, nil
}

// RecordMerge records triage's merge of one child record into another, or (undone) that it
// was undone. Each moved referral's event carries the merge, so it is recorded once and
// the rest change nothing; an undo stays undone whatever order the events come in.
func RecordMerge(ctx context.Context, tx pgx.Tx, id, from, into string, undone bool) error {
	if _, err := tx.Exec(ctx, `INSERT INTO rules.child_merges (id, from_child, into_child, undone) VALUES ($1, $2, $3, $4)
		ON CONFLICT (id) DO UPDATE SET undone = rules.child_merges.undone OR EXCLUDED.undone`, id, from, into, undone); err != nil {
		return fmt.Errorf("record merge %s of child %s into %s: %w", id, from, into, err)
	}
	return nil
}

// MoveDecision puts referralID's decision on childID, as of case version version: an
// older correction arriving after a newer one changes nothing. A record the index never
// made (an unlink's new record) is added, without keys, so nothing links to it by
// matching. It reports whether the decision moved.
func MoveDecision(ctx context.Context, tx pgx.Tx, referralID, childID string, version int64) (bool, error) {
	if _, err := tx.Exec(ctx, `INSERT INTO rules.children (id) VALUES ($1) ON CONFLICT (id) DO NOTHING`, childID); err != nil {
		return false, fmt.Errorf("move decision of %s: child record %s: %w", referralID, childID, err)
	}
	tag, err := tx.Exec(ctx, `UPDATE rules.decisions SET child_id = $2, child_version = $3
		WHERE referral_id = $1 AND child_version < $3`, referralID, childID, version)
	if err != nil {
		return false, fmt.Errorf("move decision of %s to child %s: %w", referralID, childID, err)
	}
	return tag.RowsAffected() == 1, nil
}
