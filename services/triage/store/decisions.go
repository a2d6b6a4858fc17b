package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// DecisionRecord is the decision a case holds (rulesv1.Decision bytes) and the agency roles
// and pathways the recommending pack knows. Decision is nil for a case projected before
// triage kept it; the vocabularies are nil when unknown.
type DecisionRecord struct {
	Decision           []byte
	Agencies, Pathways []string
}

// SetDecisionRecord stores the decision a case now holds, within tx; vocabularies that are
// nil keep what the case had.
func SetDecisionRecord(ctx context.Context, tx pgx.Tx, referralID string, r DecisionRecord) error {
	if _, err := tx.Exec(ctx, `UPDATE triage.cases SET decision = $2, pack_agencies = coalesce($3, pack_agencies),
			pack_pathways = coalesce($4, pack_pathways)
		WHERE referral_id = $1`, referralID, r.Decision, r.Agencies, r.Pathways); err != nil {
		return fmt.Errorf("store decision of case %s: %w", referralID, err)
	}
	return nil
}

// GetDecisionRecord reads the decision a case holds through q.
func GetDecisionRecord(ctx context.Context, q Querier, referralID string) (DecisionRecord, error) {
	var r DecisionRecord
	if !isUUID(referralID) {
		return r, ErrNotFound
	}
	err := q.QueryRow(ctx, `SELECT decision, pack_agencies, pack_pathways FROM triage.cases WHERE referral_id = $1`, referralID).
		Scan(&r.Decision, &r.Agencies, &r.Pathways)
	if errors.Is(err, pgx.ErrNoRows) {
		return r, ErrNotFound
	}
	if err != nil {
		return r, fmt.Errorf("read decision of case %s: %w", referralID, err)
	}
	return r, nil
}
