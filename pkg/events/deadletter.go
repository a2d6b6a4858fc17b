package events

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// DeadLetter is an event a consumer gave up on, as `mash deadletters list` shows it. The
// payload stays in the database: it may hold personal data.
type DeadLetter struct {
	ID         int64
	Consumer   string
	EventID    string
	Subject    string
	Error      string
	Attempts   int
	Replays    int
	CreatedAt  time.Time
	ReplayedAt *time.Time
}

// ErrDeadLetterNotFound is returned by ReplayDeadLetter for an id not in the table.
var ErrDeadLetterNotFound = errors.New("no such dead letter")

// DeadLetterSchemas lists the schemas that have a dead_letter table, in name order.
func DeadLetterSchemas(ctx context.Context, pool *pgxpool.Pool) ([]string, error) {
	rows, err := pool.Query(ctx, `SELECT table_schema FROM information_schema.tables
		WHERE table_name = 'dead_letter' AND table_type = 'BASE TABLE' ORDER BY table_schema`)
	if err != nil {
		return nil, fmt.Errorf("list dead letter schemas: %w", err)
	}
	schemas, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("list dead letter schemas: %w", err)
	}
	return schemas, nil
}

// ListDeadLetters returns schema's dead letters, oldest first; replayed ones only when
// includeReplayed.
func ListDeadLetters(ctx context.Context, pool *pgxpool.Pool, schema string, includeReplayed bool) ([]DeadLetter, error) {
	q := `SELECT id, consumer, event_id::text, subject, error, attempts, replays, created_at, replayed_at
		FROM ` + pgx.Identifier{schema}.Sanitize() + `.dead_letter`
	if !includeReplayed {
		q += ` WHERE replayed_at IS NULL`
	}
	rows, err := pool.Query(ctx, q+` ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list dead letters in %s: %w", schema, err)
	}
	letters, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (DeadLetter, error) {
		var d DeadLetter
		err := row.Scan(&d.ID, &d.Consumer, &d.EventID, &d.Subject, &d.Error, &d.Attempts, &d.Replays, &d.CreatedAt, &d.ReplayedAt)
		return d, err
	})
	if err != nil {
		return nil, fmt.Errorf("list dead letters in %s: %w", schema, err)
	}
	return letters, nil
}

// ReplayMsgID is the Nats-Msg-Id of the n-th replay of dead letter id holding eventID.
//
// A replay needs a message id of its own: the original id (the event id) is still in the
// stream's dedupe window, or still the id of a stored message, so JetStream would
// acknowledge the replay as a duplicate and deliver nothing. The envelope inside is
// unchanged, so every consumer that already applied the event still finds its event id in
// the inbox and skips it; only the consumer that failed it runs its handler again.
// Numbering replays from the row makes a retried replay (published, but the update lost)
// reuse its id, so JetStream drops the repeat.
func ReplayMsgID(eventID string, id int64, n int) string {
	return fmt.Sprintf("%s.replay.%d.%d", eventID, id, n)
}

// ReplayDeadLetter publishes dead letter id's stored payload again, on its subject, and
// marks it replayed. If the consumer fails it again, the row shows as not replayed again.
func ReplayDeadLetter(ctx context.Context, pool *pgxpool.Pool, js jetstream.JetStream, schema string, id int64) error {
	if pool == nil || js == nil {
		return errors.New("replay dead letter: pool and JetStream are required")
	}
	table := pgx.Identifier{schema}.Sanitize() + `.dead_letter`
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		var (
			eventID, subject string
			payload          []byte
			replays          int
		)
		// The row lock holds off the consumer's own update of this row (a repeated failure)
		// until the replay is recorded.
		err := tx.QueryRow(ctx, `SELECT event_id::text, subject, payload, replays FROM `+table+` WHERE id = $1 FOR UPDATE`, id).
			Scan(&eventID, &subject, &payload, &replays)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("replay dead letter %d in %s: %w", id, schema, ErrDeadLetterNotFound)
		}
		if err != nil {
			return fmt.Errorf("replay dead letter %d in %s: read: %w", id, schema, err)
		}
		msgID := ReplayMsgID(eventID, id, replays+1)
		if _, err := js.PublishMsg(ctx, &nats.Msg{Subject: subject, Data: payload}, jetstream.WithMsgID(msgID)); err != nil {
			return fmt.Errorf("replay dead letter %d in %s: publish event %s: %w", id, schema, eventID, err)
		}
		if _, err := tx.Exec(ctx, `UPDATE `+table+` SET replayed_at = now(), replays = replays + 1 WHERE id = $1`, id); err != nil {
			return fmt.Errorf("replay dead letter %d in %s: mark replayed: %w", id, schema, err)
		}
		return nil
	})
}
