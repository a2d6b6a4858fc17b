package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
)

// Decision is a stored threshold decision. Outcomes are protobuf bytes (rulesv1.Outcome);
// Facts is the JSON of the facts the rules saw.
//
// ChildID is the child record the decision counts in now (corrections followed);
// IndexChildID the one the child index linked the referral to, which is what events name
// (triage follows corrections itself, so an undone merge returns the referral).
type Decision struct {
	ID, ReferralID, Partnership, ChildID, MatchBasis, PackID, PackVersion string
	IndexChildID                                                          string
	ReceivedAt, DecidedAt, DecisionDue, ResponseDue                       time.Time
	Concerns                                                              []string
	Facts                                                                 []byte
	Recommended, Current                                                  []byte
	Level, RAG, Status                                                    string
	Version                                                               int64
	ReviewedBy, ReviewedByRole, ReviewReason                              string
	ReviewedAt                                                            *time.Time
}

// History counts a child's earlier decisions.
type History struct {
	Referrals     int
	ByCategory    map[string]int
	ByLevel       map[string]int
	PreviousLevel string
	// LastLevelAt is when the most recent earlier referral was received.
	LastLevelAt *time.Time
	// OpenCase: a practitioner confirmed or set level 3a or above on an earlier referral in
	// the window, so a service is working with the family. Case closure (the triage queue)
	// will end it; until closures are recorded, such a decision counts as open for the
	// 12-month window.
	OpenCase bool
}

// openLevels are the levels at which a service (early help or social care) works with the
// family after a practitioner's decision.
var openLevels = map[string]bool{"3a": true, "3b": true, "4": true}

// ChildHistory counts the child's decisions received in [since, before), other than
// excludeReferral, inside tx so it sees the index as this transaction does.
func ChildHistory(ctx context.Context, tx pgx.Tx, childID, excludeReferral string, since, before time.Time) (History, error) {
	h := History{ByCategory: map[string]int{}, ByLevel: map[string]int{}}
	rows, err := tx.Query(ctx, `SELECT concerns, level, status, received_at FROM rules.decisions
		WHERE child_id = $1 AND referral_id <> $2 AND received_at >= $3 AND received_at < $4 AND erased_at IS NULL
		ORDER BY received_at DESC`, childID, excludeReferral, since, before)
	if err != nil {
		return h, fmt.Errorf("read history of child %s: %w", childID, err)
	}
	defer rows.Close()
	for rows.Next() {
		var concerns []string
		var level, status string
		var at time.Time
		if err := rows.Scan(&concerns, &level, &status, &at); err != nil {
			return h, fmt.Errorf("read history of child %s: %w", childID, err)
		}
		if h.Referrals == 0 {
			h.PreviousLevel, h.LastLevelAt = level, &at
		}
		h.Referrals++
		h.ByLevel[level]++
		if status != "RECOMMENDED" && openLevels[level] {
			h.OpenCase = true
		}
		seen := map[string]bool{}
		for _, c := range concerns {
			if !seen[c] {
				h.ByCategory[c]++
				seen[c] = true
			}
		}
	}
	return h, rows.Err()
}

// InsertDecision stores d unless the referral already has a decision; it reports whether it
// did.
func InsertDecision(ctx context.Context, tx pgx.Tx, d Decision) (bool, error) {
	if d.IndexChildID == "" {
		d.IndexChildID = d.ChildID
	}
	tag, err := tx.Exec(ctx, `INSERT INTO rules.decisions (referral_id, id, partnership, child_id, match_basis, pack_id,
			pack_version, received_at, decided_at, decision_due, response_due, concerns, facts, recommended, current,
			level, rag, status, version, index_child_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)
		ON CONFLICT (referral_id) DO NOTHING`,
		d.ReferralID, d.ID, d.Partnership, d.ChildID, d.MatchBasis, d.PackID, d.PackVersion, d.ReceivedAt, d.DecidedAt,
		d.DecisionDue, d.ResponseDue, d.Concerns, d.Facts, d.Recommended, d.Current, d.Level, d.RAG, d.Status, d.Version, d.IndexChildID)
	if err != nil {
		return false, fmt.Errorf("store decision for referral %s: %w", d.ReferralID, err)
	}
	return tag.RowsAffected() == 1, nil
}

const decisionColumns = `id::text, referral_id::text, partnership, child_id::text, match_basis, pack_id::text, pack_version,
	received_at, decided_at, decision_due, response_due, concerns, facts, recommended, current, level, rag, status, version,
	coalesce(reviewed_by, ''), coalesce(reviewed_by_role, ''), coalesce(review_reason, ''), reviewed_at, index_child_id::text`

func scanDecision(row pgx.Row) (Decision, error) {
	var d Decision
	err := row.Scan(&d.ID, &d.ReferralID, &d.Partnership, &d.ChildID, &d.MatchBasis, &d.PackID, &d.PackVersion,
		&d.ReceivedAt, &d.DecidedAt, &d.DecisionDue, &d.ResponseDue, &d.Concerns, &d.Facts, &d.Recommended, &d.Current,
		&d.Level, &d.RAG, &d.Status, &d.Version, &d.ReviewedBy, &d.ReviewedByRole, &d.ReviewReason, &d.ReviewedAt, &d.IndexChildID)
	if errors.Is(err, pgx.ErrNoRows) {
		return Decision{}, ErrNotFound
	}
	return d, err
}

// GetDecision returns the decision on a referral.
func (s *Store) GetDecision(ctx context.Context, referralID string) (Decision, error) {
	d, err := scanDecision(s.pool.QueryRow(ctx, `SELECT `+decisionColumns+` FROM rules.decisions WHERE referral_id = $1 AND erased_at IS NULL`, referralID))
	if err != nil && !errors.Is(err, ErrNotFound) {
		return Decision{}, fmt.Errorf("read decision for referral %s: %w", referralID, err)
	}
	return d, err
}

// Review is a practitioner's or manager's confirmation or override. Role is the reviewer's
// role when they reviewed.
type Review struct {
	Status, Level, RAG, By, Role, Reason string
	Current                              []byte
	At                                   time.Time
}

// RecordReview applies the review triage decided as version of the referral's decision,
// within tx, unless the decision already holds that version or a newer one. It reports
// whether it changed the decision. A referral rules never decided is ErrNotFound: the
// consumer retries until the recommendation is stored.
func RecordReview(ctx context.Context, tx pgx.Tx, referralID string, version int64, r Review) (bool, error) {
	tag, err := tx.Exec(ctx, `UPDATE rules.decisions
		SET status = $2, level = $3, rag = $4, current = $5, reviewed_by = $6, review_reason = $7, reviewed_at = $8,
		    reviewed_by_role = $9, version = $10
		WHERE referral_id = $1 AND version < $10`, referralID, r.Status, r.Level, r.RAG, r.Current, r.By, r.Reason, r.At, r.Role, version)
	if err != nil {
		return false, fmt.Errorf("record decision v%d for referral %s: %w", version, referralID, err)
	}
	if tag.RowsAffected() == 1 {
		return true, nil
	}
	var exists bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM rules.decisions WHERE referral_id = $1)`, referralID).Scan(&exists); err != nil {
		return false, fmt.Errorf("record decision v%d for referral %s: %w", version, referralID, err)
	}
	if !exists {
		return false, fmt.Errorf("record decision v%d for referral %s: %w", version, referralID, ErrNotFound)
	}
	return false, nil
}

// ReplayInput is what a replay re-runs: the facts a past decision saw and its outcome.
type ReplayInput struct {
	ReferralID string
	Facts      []byte
	Current    []byte
}

// RecentDecisions returns the most recent decisions (at most last), or those decided in
// [from, to) when both are set, newest first, that a pack of partnership would decide: the
// partnership's own referrals, and for the default partnership every referral its packs
// decided.
func (s *Store) RecentDecisions(ctx context.Context, partnership string, last int, from, to *time.Time) ([]ReplayInput, error) {
	q := `SELECT referral_id::text, facts, recommended FROM rules.decisions
		WHERE (partnership = $1 OR pack_id IN (SELECT id FROM rules.packs WHERE partnership = $1)) AND erased_at IS NULL`
	args := []any{partnership}
	if from != nil && to != nil {
		q += ` AND decided_at >= $2 AND decided_at < $3 ORDER BY decided_at DESC LIMIT $4`
		args = append(args, *from, *to, last)
	} else {
		q += ` ORDER BY decided_at DESC LIMIT $2`
		args = append(args, last)
	}
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("read decisions of %s for replay: %w", partnership, err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (ReplayInput, error) {
		var in ReplayInput
		err := r.Scan(&in.ReferralID, &in.Facts, &in.Current)
		return in, err
	})
}

// MarkNotified records, once for each, that notify acted on decisions ids. Rows are locked in
// id order, so two batches naming the same decisions cannot deadlock.
func MarkNotified(ctx context.Context, tx pgx.Tx, ids []string) error {
	if _, err := tx.Exec(ctx, `UPDATE rules.decisions SET notified_at = now()
		WHERE id IN (SELECT id FROM rules.decisions WHERE id = ANY($1::uuid[]) AND notified_at IS NULL ORDER BY id FOR UPDATE)
			AND notified_at IS NULL`, ids); err != nil {
		return fmt.Errorf("mark %d decisions notified: %w", len(ids), err)
	}
	return nil
}

// UnnotifiedSQL is the reconciler's check for rules: recommendations of immediate danger
// (level 4, Red: the only ones shared before a person decides) made before the cutoff $1
// that no notification event has named, with their original event. Other recommendations
// wait for the hub's decision, so notify rightly says nothing of them yet.
const UnnotifiedSQL = `SELECT o.id, o.event_id::text, o.subject, o.payload, o.reconciles
	FROM rules.decisions d
	JOIN rules.outbox o ON o.referral_id = d.referral_id::text AND o.subject = '` + eventsv1.SubjectRecommendationMade + `'
	WHERE d.notified_at IS NULL AND d.decided_at < $1 AND o.published_at IS NOT NULL
		AND d.status = 'RECOMMENDED' AND d.level = '4' AND d.rag = 'red'
	ORDER BY d.decided_at`

// EraseDecision blanks, within tx, what rules keeps of referralID's case: the facts the
// rules saw, the recommended and current outcomes (with every fired rule's reason) and the
// reviewer's reason; level, RAG, status, who reviewed and the times stay. When no other
// decision of the child is left unerased, the child index forgets the child's NHS number
// and demographic key too (the row stays, as erased decisions still name it). Erasing it
// again changes nothing.
func EraseDecision(ctx context.Context, tx pgx.Tx, referralID string) error {
	if _, err := uuid.Parse(referralID); err != nil {
		return nil // not a referral rules could have decided
	}
	var childID string
	err := tx.QueryRow(ctx, `UPDATE rules.decisions SET facts = '{}', recommended = '', current = '', review_reason = NULL,
			erased_at = coalesce(erased_at, now())
		WHERE referral_id = $1 RETURNING index_child_id::text`, referralID).Scan(&childID)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil // never decided here: nothing held
	}
	if err != nil {
		return fmt.Errorf("erase decision of %s: %w", referralID, err)
	}
	if _, err := tx.Exec(ctx, `UPDATE rules.children SET nhs_number = NULL, demographic_key = NULL
		WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM rules.decisions WHERE index_child_id = $1 AND erased_at IS NULL)`, childID); err != nil {
		return fmt.Errorf("erase decision of %s: child index: %w", referralID, err)
	}
	return nil
}
