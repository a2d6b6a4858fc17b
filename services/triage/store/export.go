package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// ChildCases returns every case of a child, oldest first. A subject access export holds
// them all, where ChildHistory shows a practitioner only the latest few.
func ChildCases(ctx context.Context, q Querier, childID string) ([]Case, error) {
	if childID == "" {
		return nil, nil
	}
	cs, err := collectCases(q.Query(ctx, `SELECT `+caseColumns+` FROM triage.cases
		WHERE child_id = $1 ORDER BY received_at NULLS LAST, referral_id`, childID))
	return cs, wrap(err, "read cases of child %s", childID)
}

// Holds returns every legal hold of a case, standing or lifted, oldest first.
func Holds(ctx context.Context, q Querier, referralID string) ([]LegalHold, error) {
	if !isUUID(referralID) {
		return nil, nil
	}
	rows, err := q.Query(ctx, `SELECT `+holdColumns+` FROM triage.legal_holds WHERE referral_id = $1 ORDER BY placed_at, id`, referralID)
	if err != nil {
		return nil, fmt.Errorf("read legal holds of %s: %w", referralID, err)
	}
	hs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (LegalHold, error) { return scanHold(r) })
	if err != nil {
		return nil, fmt.Errorf("read legal holds of %s: %w", referralID, err)
	}
	return hs, nil
}
