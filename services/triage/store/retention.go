package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// DueCase is a closed case its retention schedule says may be kept no longer.
type DueCase struct {
	ReferralID  string
	Partnership string
	// RecordType is no_further_action, early_help or statutory, from the case's outcome.
	RecordType string
	// SchedulePartnership is the partnership whose schedule row applied; "" for the default.
	SchedulePartnership string
	KeepYears           int
	// UntilAge is the child's age the record is kept until, when the schedule has one.
	UntilAge *int
	ClosedAt time.Time
	// DueAt is when the case became due.
	DueAt time.Time
}

// RetentionDue returns the closed cases due for erasure at, oldest due first, with the
// schedule row that makes each due. A case under legal hold, or already erased, is never
// due.
//
// The triage copy holds the child's age in whole years at receipt, not the date of birth, so
// the 25th birthday is taken as received_at + (25 - age) years: the latest it can be, which
// never makes a case due early.
func RetentionDue(ctx context.Context, q Querier, at time.Time) ([]DueCase, error) {
	rows, err := q.Query(ctx, `
		WITH closed AS (
			SELECT referral_id, partnership, closed_at, coalesce(received_at, closed_at) AS received_at, child_age_years,
				CASE WHEN outcome IN (1, 2) THEN 'no_further_action'
				     WHEN outcome IN (3, 4, 5) THEN 'early_help'
				     WHEN outcome IN (6, 7, 8) THEN 'statutory' END AS record_type
			FROM triage.cases c WHERE state = 4 AND closed_at IS NOT NULL AND erased_at IS NULL
				AND NOT EXISTS (SELECT 1 FROM triage.legal_holds h WHERE h.referral_id = c.referral_id AND h.lifted_at IS NULL)
		), scheduled AS (
			SELECT c.*, s.partnership AS schedule_partnership, s.keep_years, s.until_age,
				greatest(c.closed_at + make_interval(years => s.keep_years),
					CASE WHEN s.until_age IS NOT NULL
					     THEN c.received_at + make_interval(years => greatest(s.until_age - c.child_age_years, 0)) END) AS due_at
			FROM closed c
			JOIN LATERAL (SELECT * FROM triage.retention_schedules s
				WHERE s.record_type = c.record_type AND s.partnership IN (c.partnership, '')
				ORDER BY s.partnership = '' LIMIT 1) s ON true
		)
		SELECT referral_id::text, partnership, record_type, schedule_partnership, keep_years, until_age, closed_at, due_at
		FROM scheduled WHERE due_at <= $1 ORDER BY due_at, referral_id`, at)
	if err != nil {
		return nil, fmt.Errorf("list cases due for erasure: %w", err)
	}
	due, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (DueCase, error) {
		var d DueCase
		err := row.Scan(&d.ReferralID, &d.Partnership, &d.RecordType, &d.SchedulePartnership, &d.KeepYears, &d.UntilAge, &d.ClosedAt, &d.DueAt)
		return d, err
	})
	if err != nil {
		return nil, fmt.Errorf("list cases due for erasure: %w", err)
	}
	return due, nil
}

// Rule says in words which schedule row makes d due.
func (d DueCase) Rule() string {
	whose := "default schedule"
	if d.SchedulePartnership != "" {
		whose = "schedule of " + d.SchedulePartnership
	}
	if d.UntilAge != nil {
		return fmt.Sprintf("%s: %s, kept %d years after closure or until the child is %d, whichever is later", whose, d.RecordType, d.KeepYears, *d.UntilAge)
	}
	return fmt.Sprintf("%s: %s, kept %d years after closure", whose, d.RecordType, d.KeepYears)
}
