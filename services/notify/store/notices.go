package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Notice states.
const (
	NoticePending   = "PENDING"
	NoticeDelivered = "DELIVERED"
	NoticeFailed    = "FAILED"
)

// Notice tells an agency's previous contact that its directory entry changed.
type Notice struct {
	ID, ChangeID, Partnership, Agency string
	// The previous endpoint; SealedSecret is the previous secret sealed for the notice
	// (NoticeSecretAAD).
	Channel, URL, Email string
	SealedSecret        []byte
	Payload             []byte
	State               string
	Attempts            int
	NextAttemptAt       time.Time
	LastError           string
	CreatedAt           time.Time
}

// NoticeSecretAAD binds a notice's sealed secret to the notice.
func NoticeSecretAAD(id string) string { return "notify.contact_notices/" + id }

const noticeColumns = `id::text, change_id::text, partnership, agency, channel, url, email, secret_sealed, payload, state, attempts,
	next_attempt_at, last_error, created_at`

func scanNotice(r pgx.Row) (Notice, error) {
	var n Notice
	err := r.Scan(&n.ID, &n.ChangeID, &n.Partnership, &n.Agency, &n.Channel, &n.URL, &n.Email, &n.SealedSecret, &n.Payload, &n.State,
		&n.Attempts, &n.NextAttemptAt, &n.LastError, &n.CreatedAt)
	return n, err
}

// InsertNotice stores a notice due at once.
func InsertNotice(ctx context.Context, tx pgx.Tx, n Notice) error {
	_, err := tx.Exec(ctx, `INSERT INTO notify.contact_notices (id, change_id, partnership, agency, channel, url, email, secret_sealed,
			payload, next_attempt_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)`,
		n.ID, n.ChangeID, n.Partnership, n.Agency, n.Channel, n.URL, n.Email, n.SealedSecret, n.Payload, n.CreatedAt)
	if err != nil {
		return fmt.Errorf("store notice for change %s: %w", n.ChangeID, err)
	}
	return nil
}

// ClaimNotices takes up to limit due notices for one attempt each: the attempt is counted
// and the notice leased until now+lease, so a sender that dies leaves it to be retried.
func ClaimNotices(ctx context.Context, tx pgx.Tx, now time.Time, lease time.Duration, limit int) ([]Notice, error) {
	rows, err := tx.Query(ctx, `UPDATE notify.contact_notices SET attempts = attempts + 1, next_attempt_at = $2
		WHERE id IN (SELECT id FROM notify.contact_notices WHERE state = 'PENDING' AND next_attempt_at <= $1
			ORDER BY next_attempt_at LIMIT $3 FOR UPDATE SKIP LOCKED)
		RETURNING `+noticeColumns, now, now.Add(lease), limit)
	if err != nil {
		return nil, fmt.Errorf("claim notices: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Notice, error) { return scanNotice(r) })
}

// RecordNotice records the attempt numbered attempt: delivered, failed for good, or to be
// retried at retry. It reports false when the notice has moved on (another sender took it
// after the lease), so the caller emits no event for a stale attempt.
func RecordNotice(ctx context.Context, tx pgx.Tx, id string, attempt int, state, detail string, retry, at time.Time) (bool, error) {
	tag, err := tx.Exec(ctx, `UPDATE notify.contact_notices SET state = $3, last_error = $4, next_attempt_at = $5,
			delivered_at = CASE WHEN $3 = 'DELIVERED' THEN $6::timestamptz END
		WHERE id = $1 AND attempts = $2 AND state = 'PENDING'`, id, attempt, state, detail, retry, at)
	if err != nil {
		return false, fmt.Errorf("record notice %s: %w", id, err)
	}
	return tag.RowsAffected() == 1, nil
}
