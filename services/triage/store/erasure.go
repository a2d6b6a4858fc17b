package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Erasure is when and by whom a case was erased.
type Erasure struct {
	By string
	At time.Time
}

// ErasureOf returns referralID's erasure within tx; nil when the case was not erased.
func ErasureOf(ctx context.Context, q Querier, referralID string) (*Erasure, error) {
	var e Erasure
	var at *time.Time
	err := q.QueryRow(ctx, `SELECT erased_by, erased_at FROM triage.cases WHERE referral_id = $1`, referralID).Scan(&e.By, &at)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read erasure of case %s: %w", referralID, err)
	}
	if at == nil {
		return nil, nil
	}
	e.At = *at
	return &e, nil
}

// StandingHold returns referralID's standing legal hold, nil when none stands.
func StandingHold(ctx context.Context, q Querier, referralID string) (*LegalHold, error) {
	h, err := scanHold(q.QueryRow(ctx, `SELECT `+holdColumns+` FROM triage.legal_holds WHERE referral_id = $1 AND lifted_at IS NULL`, referralID))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read legal hold of case %s: %w", referralID, err)
	}
	return &h, nil
}

// EraseCase blanks, within tx (which holds the case's lock), every piece of personal data
// triage keeps of referralID: the child's name and age, the closing note, the decision as
// triage holds it (with its facts), the reason for sharing without consent, strategy
// discussions' participants and outcome, information requests' questions and answers,
// disagreements' reasons and resolutions and their steps' outcomes, legal holds' reasons,
// and quality reviews' reasons and learning points. Ids, times, states, levels and who
// acted stay, for the figures and the trail. It marks the case erased by by at at.
func EraseCase(ctx context.Context, tx pgx.Tx, referralID, by string, at time.Time) error {
	stmts := []string{
		`UPDATE triage.cases SET child_name = '', child_age_years = 0, outcome_note = '', decision = NULL,
			sharing_reason = CASE WHEN sharing_reason IS NULL THEN NULL ELSE '' END,
			erased_at = $2, erased_by = $3, updated_at = $2 WHERE referral_id = $1`,
		`UPDATE triage.strategy_discussions SET participants = '{}', outcome = '' WHERE referral_id = $1`,
		`UPDATE triage.information_requests SET question = '', answer = '' WHERE referral_id = $1`,
		`UPDATE triage.disagreement_steps SET outcome = '' WHERE disagreement_id IN
			(SELECT id FROM triage.disagreements WHERE referral_id = $1)`,
		`UPDATE triage.disagreements SET reason = '', resolution = '' WHERE referral_id = $1`,
		`UPDATE triage.legal_holds SET reason = '', lift_reason = '' WHERE referral_id = $1`,
		// What the referral could be found by (names, the household's too, date of birth, NHS
		// number, postcode) and the reasons given for moving it between child records.
		`UPDATE triage.search_keys SET name_key = '', person_key = '', date_of_birth = NULL, nhs_number = '', postcode = '',
			external_reference = '' WHERE referral_id = $1`,
		`DELETE FROM triage.search_household WHERE referral_id = $1`,
		`UPDATE triage.referral_links SET reason = '' WHERE referral_id = $1`,
		// Quality reviews' reasons and learning points speak of the case.
		`UPDATE triage.quality_reviews SET reason = '', learning_point = '' WHERE referral_id = $1`,
	}
	for i, q := range stmts {
		args := []any{referralID}
		if i == 0 {
			args = append(args, at, by)
		}
		if _, err := tx.Exec(ctx, q, args...); err != nil {
			return fmt.Errorf("erase case %s: %w", referralID, err)
		}
	}
	return nil
}
