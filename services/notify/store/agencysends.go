package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// AgencySend is the intent to publish a notification on an agency's NATS subject, recorded
// before the publish: if the place the message landed at is never recorded (a crash, or a
// failed recording transaction, between the publish and the record), erasing the case still
// finds the message on Stream by Subject and Nats-Msg-Id (= NotificationID), past AfterSeq.
type AgencySend struct {
	NotificationID string
	ReferralID     string
	Stream         string
	Subject        string
	// AfterSeq is the highest sequence on Stream notify had recorded when the intent was:
	// the message is published after, so it rests past it.
	AfterSeq uint64
	// Attempt is the delivery attempt that recorded the intent first.
	Attempt int
	At      time.Time
}

// RecordAgencySend stores the intent to publish, once: a retry keeps the first attempt's
// intent, whose AfterSeq is below every copy any attempt may have published.
func RecordAgencySend(ctx context.Context, tx pgx.Tx, s AgencySend) error {
	if _, err := tx.Exec(ctx, `INSERT INTO notify.agency_sends (notification_id, referral_id, stream, subject, after_seq, attempt, created_at)
		VALUES ($1, $2, $3, $4, (SELECT coalesce(max(seq), 0) FROM notify.agency_messages WHERE stream = $3), $5, $6)
		ON CONFLICT DO NOTHING`, s.NotificationID, s.ReferralID, s.Stream, s.Subject, s.Attempt, s.At); err != nil {
		return fmt.Errorf("record intent to send notification %s on %s: %w", s.NotificationID, s.Subject, err)
	}
	return nil
}

const agencySendCols = `notification_id, referral_id, stream, subject, after_seq, attempt, created_at`

func scanAgencySend(r pgx.CollectableRow) (AgencySend, error) {
	var s AgencySend
	var after int64
	err := r.Scan(&s.NotificationID, &s.ReferralID, &s.Stream, &s.Subject, &after, &s.Attempt, &s.At)
	s.AfterSeq = uint64(after)
	return s, err
}

// AgencySendOf returns notificationID's intent, if one is recorded.
func AgencySendOf(ctx context.Context, tx pgx.Tx, notificationID string) (AgencySend, bool, error) {
	rows, err := tx.Query(ctx, `SELECT `+agencySendCols+` FROM notify.agency_sends WHERE notification_id = $1`, notificationID)
	if err != nil {
		return AgencySend{}, false, fmt.Errorf("read intent to send notification %s: %w", notificationID, err)
	}
	s, err := pgx.CollectExactlyOneRow(rows, scanAgencySend)
	if errors.Is(err, pgx.ErrNoRows) {
		return AgencySend{}, false, nil
	}
	if err != nil {
		return AgencySend{}, false, fmt.Errorf("read intent to send notification %s: %w", notificationID, err)
	}
	return s, true, nil
}

// AgencySends lists the intents recorded about referralID whose place is not known for sure.
func AgencySends(ctx context.Context, tx pgx.Tx, referralID string) ([]AgencySend, error) {
	if _, err := uuid.Parse(referralID); err != nil {
		return nil, nil
	}
	rows, err := tx.Query(ctx, `SELECT `+agencySendCols+` FROM notify.agency_sends WHERE referral_id = $1 ORDER BY created_at`, referralID)
	if err != nil {
		return nil, fmt.Errorf("list intents to send about %s: %w", referralID, err)
	}
	return pgx.CollectRows(rows, scanAgencySend)
}

// ForgetAgencySend deletes notificationID's intent, once its message's place is recorded.
func ForgetAgencySend(ctx context.Context, tx pgx.Tx, notificationID string) error {
	if _, err := tx.Exec(ctx, `DELETE FROM notify.agency_sends WHERE notification_id = $1`, notificationID); err != nil {
		return fmt.Errorf("forget intent to send notification %s: %w", notificationID, err)
	}
	return nil
}

// ForgetAgencySends deletes referralID's intents, once their messages are deleted from the bus.
func ForgetAgencySends(ctx context.Context, tx pgx.Tx, referralID string) error {
	if _, err := uuid.Parse(referralID); err != nil {
		return nil
	}
	if _, err := tx.Exec(ctx, `DELETE FROM notify.agency_sends WHERE referral_id = $1`, referralID); err != nil {
		return fmt.Errorf("forget intents to send about %s: %w", referralID, err)
	}
	return nil
}

// PruneAgencyRecords deletes the records of agency messages sent, and intents recorded,
// before before: their messages have aged out of the stream, so there is nothing left for an
// erasure to delete. It returns how many rows it deleted.
func PruneAgencyRecords(ctx context.Context, tx pgx.Tx, before time.Time) (int64, error) {
	a, err := tx.Exec(ctx, `DELETE FROM notify.agency_messages WHERE sent_at < $1`, before)
	if err != nil {
		return 0, fmt.Errorf("prune agency message records: %w", err)
	}
	// An intent is recorded before its publish, so one whose notification is still being
	// retried may have a copy published later than created_at: it stays until it settles.
	b, err := tx.Exec(ctx, `DELETE FROM notify.agency_sends s WHERE created_at < $1
		AND NOT EXISTS (SELECT 1 FROM notify.notifications n WHERE n.id = s.notification_id AND n.state IN ('PENDING', 'SENDING'))`, before)
	if err != nil {
		return 0, fmt.Errorf("prune intents to send: %w", err)
	}
	return a.RowsAffected() + b.RowsAffected(), nil
}
