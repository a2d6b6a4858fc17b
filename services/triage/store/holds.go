package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// LegalHold is one hold on a case; LiftedAt is nil while it stands.
type LegalHold struct {
	ReferralID string
	Reason     string
	PlacedBy   string
	PlacedAt   time.Time
	LiftedBy   string
	LiftReason string
	LiftedAt   *time.Time
}

// ErrHeld is returned when placing a hold on a case that already has one standing.
var ErrHeld = errors.New("the case is already under legal hold")

// ErrNotHeld is returned when lifting a hold from a case that has none standing.
var ErrNotHeld = errors.New("the case is not under legal hold")

const holdColumns = `referral_id::text, reason, placed_by, placed_at, lifted_by, lift_reason, lifted_at`

func scanHold(row pgx.Row) (LegalHold, error) {
	var h LegalHold
	err := row.Scan(&h.ReferralID, &h.Reason, &h.PlacedBy, &h.PlacedAt, &h.LiftedBy, &h.LiftReason, &h.LiftedAt)
	return h, err
}

// PlaceHold puts referralID under legal hold within tx, which must hold the case's lock
// (LockCase), so two managers cannot both place one.
func PlaceHold(ctx context.Context, tx pgx.Tx, referralID, reason, by string, at time.Time) (LegalHold, error) {
	h, err := scanHold(tx.QueryRow(ctx, `INSERT INTO triage.legal_holds (referral_id, reason, placed_by, placed_at)
		SELECT $1, $2, $3, $4 WHERE NOT EXISTS (SELECT 1 FROM triage.legal_holds WHERE referral_id = $1 AND lifted_at IS NULL)
		RETURNING `+holdColumns, referralID, reason, by, at))
	if errors.Is(err, pgx.ErrNoRows) {
		return LegalHold{}, ErrHeld
	}
	if err != nil {
		return LegalHold{}, fmt.Errorf("place legal hold on %s: %w", referralID, err)
	}
	return h, nil
}

// LiftHold lifts referralID's standing hold within tx, which must hold the case's lock.
func LiftHold(ctx context.Context, tx pgx.Tx, referralID, reason, by string, at time.Time) (LegalHold, error) {
	h, err := scanHold(tx.QueryRow(ctx, `UPDATE triage.legal_holds SET lifted_by = $2, lift_reason = $3, lifted_at = $4
		WHERE referral_id = $1 AND lifted_at IS NULL RETURNING `+holdColumns, referralID, by, reason, at))
	if errors.Is(err, pgx.ErrNoRows) {
		return LegalHold{}, ErrNotHeld
	}
	if err != nil {
		return LegalHold{}, fmt.Errorf("lift legal hold on %s: %w", referralID, err)
	}
	return h, nil
}
