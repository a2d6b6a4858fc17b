package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// QualityReview is one manager's review of one decided case.
type QualityReview struct {
	ID, ReferralID, Partnership string
	Verdict                     string // AGREE or DISAGREE
	Reason, LearningPoint       string
	Reviewer, ReviewerRole      string
	DecidedBy                   string
	Level                       int16
	ReviewedAt                  time.Time
}

// Verdicts of a review.
const (
	VerdictAgree    = "AGREE"
	VerdictDisagree = "DISAGREE"
)

// ErrAlreadyReviewed is returned when a reviewer reviews a case a second time.
var ErrAlreadyReviewed = errors.New("already reviewed by this reviewer")

// InsertQualityReview records r; a second review of the case by the same reviewer is
// ErrAlreadyReviewed (the unique key decides, so two concurrent tries cannot both land).
func InsertQualityReview(ctx context.Context, tx pgx.Tx, r QualityReview) error {
	_, err := tx.Exec(ctx, `INSERT INTO triage.quality_reviews (id, referral_id, partnership, verdict, reason, learning_point,
			reviewer, reviewer_role, decided_by, level, reviewed_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		r.ID, r.ReferralID, r.Partnership, r.Verdict, r.Reason, r.LearningPoint, r.Reviewer, r.ReviewerRole, r.DecidedBy, r.Level, r.ReviewedAt)
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23505" {
		return ErrAlreadyReviewed
	}
	if err != nil {
		return fmt.Errorf("record quality review of case %s: %w", r.ReferralID, err)
	}
	return nil
}

const reviewColumns = `id::text, referral_id::text, partnership, verdict, reason, learning_point, reviewer, reviewer_role,
	decided_by, level, reviewed_at`

// ReviewFilter selects reviews: one case's, or a period's in some partnerships.
type ReviewFilter struct {
	ReferralID   string
	Partnership  string
	Partnerships []string // nil: all
	From, To     time.Time
	Limit        int
}

// QualityReviews lists reviews, newest first.
func QualityReviews(ctx context.Context, q Querier, f ReviewFilter) ([]QualityReview, error) {
	rows, err := q.Query(ctx, `SELECT `+reviewColumns+` FROM triage.quality_reviews
		WHERE ($1 = '' OR referral_id = nullif($1, '')::uuid)
		  AND ($1 <> '' OR (reviewed_at >= $2 AND reviewed_at < $3))
		  AND ($4 = '' OR partnership = $4) AND ($5::text[] IS NULL OR partnership = ANY($5))
		ORDER BY reviewed_at DESC, id LIMIT $6`, f.ReferralID, f.From, f.To, f.Partnership, f.Partnerships, f.Limit)
	if err != nil {
		return nil, fmt.Errorf("list quality reviews: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (QualityReview, error) {
		var v QualityReview
		err := r.Scan(&v.ID, &v.ReferralID, &v.Partnership, &v.Verdict, &v.Reason, &v.LearningPoint, &v.Reviewer, &v.ReviewerRole,
			&v.DecidedBy, &v.Level, &v.ReviewedAt)
		return v, err
	})
	if err != nil {
		return nil, fmt.Errorf("list quality reviews: %w", err)
	}
	return out, nil
}

// SampleFilter selects the QA sample of a period.
type SampleFilter struct {
	Partnership  string
	Partnerships []string // nil: all
	From, To     time.Time
	// Percent of decided cases sampled (1-100).
	Percent int
	// Seed makes the sample of one period differ from the next's (the period's start).
	Seed   string
	Caller string
	Limit  int
}

// SampleCase is a decided case offered for review.
type SampleCase struct {
	ReferralID, Reference, Partnership, ChildName string
	Level, RecommendedLevel                       int16
	Pathway, DecidedBy                            string
	DecidedAt                                     time.Time
	Reviews                                       int32
	ReviewedByCaller                              bool
}

// sampleHash is a case's place in the sample, 0-9999: the first 16 bits of the md5 of the
// seed and the case's id, so a case is in or out of a period's sample whatever else was
// decided in it (the same period always offers the same cases).
const sampleHash = `(('x' || substr(md5($5 || ':' || c.referral_id::text), 1, 4))::bit(16)::int * 10000 / 65536)`

// QualitySample lists the decided cases of the period that fall in the sample, oldest
// decision first, with the number decided in the period (sampled or not).
func QualitySample(ctx context.Context, q Querier, f SampleFilter) ([]SampleCase, int, error) {
	const where = `c.decided_at IS NOT NULL AND c.decided_at >= $1 AND c.decided_at < $2 AND c.decided_by <> ''
		AND c.erased_at IS NULL AND ($3 = '' OR c.partnership = $3) AND ($4::text[] IS NULL OR c.partnership = ANY($4))`
	var decided int
	if err := q.QueryRow(ctx, `SELECT count(*) FROM triage.cases c WHERE `+where,
		f.From, f.To, f.Partnership, f.Partnerships).Scan(&decided); err != nil {
		return nil, 0, fmt.Errorf("count decided cases: %w", err)
	}
	rows, err := q.Query(ctx, `SELECT c.referral_id::text, c.reference, c.partnership, c.child_name, c.level, c.recommended_level,
			c.pathway, c.decided_by, c.decided_at,
			(SELECT count(*) FROM triage.quality_reviews r WHERE r.referral_id = c.referral_id)::int,
			EXISTS (SELECT 1 FROM triage.quality_reviews r WHERE r.referral_id = c.referral_id AND r.reviewer = $7)
		FROM triage.cases c WHERE `+where+` AND `+sampleHash+` < $6 * 100
		ORDER BY c.decided_at, c.referral_id LIMIT $8`,
		f.From, f.To, f.Partnership, f.Partnerships, f.Seed, f.Percent, f.Caller, f.Limit)
	if err != nil {
		return nil, 0, fmt.Errorf("sample decided cases: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (SampleCase, error) {
		var c SampleCase
		err := r.Scan(&c.ReferralID, &c.Reference, &c.Partnership, &c.ChildName, &c.Level, &c.RecommendedLevel, &c.Pathway,
			&c.DecidedBy, &c.DecidedAt, &c.Reviews, &c.ReviewedByCaller)
		return c, err
	})
	if err != nil {
		return nil, 0, fmt.Errorf("sample decided cases: %w", err)
	}
	return out, decided, nil
}

// Agreement is one partnership's reviews in one month.
type Agreement struct {
	Partnership, Period string
	Reviewed, Agreed    int64
}

// QualityAgreement counts reviews and agreements per partnership and month of review
// (Europe/London), oldest month first.
func QualityAgreement(ctx context.Context, q Querier, partnership string, partnerships []string, from, to time.Time) ([]Agreement, error) {
	rows, err := q.Query(ctx, `SELECT partnership, to_char(reviewed_at AT TIME ZONE 'Europe/London', 'YYYY-MM') AS period,
			count(*), count(*) FILTER (WHERE verdict = 'AGREE')
		FROM triage.quality_reviews
		WHERE reviewed_at >= $1 AND reviewed_at < $2 AND ($3 = '' OR partnership = $3) AND ($4::text[] IS NULL OR partnership = ANY($4))
		GROUP BY 1, 2 ORDER BY 2, 1`, from, to, partnership, partnerships)
	if err != nil {
		return nil, fmt.Errorf("quality agreement: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Agreement, error) {
		var a Agreement
		err := r.Scan(&a.Partnership, &a.Period, &a.Reviewed, &a.Agreed)
		return a, err
	})
	if err != nil {
		return nil, fmt.Errorf("quality agreement: %w", err)
	}
	return out, nil
}
