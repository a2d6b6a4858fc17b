package events

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
)

// SubjectAuditRecorded is where the audit log lists the event ids of each batch it recorded.
const SubjectAuditRecorded = eventsv1.SubjectAuditRecorded

// AuditedDurable is the durable consumer of schema's audit tracker.
func AuditedDurable(schema string) string { return schema + "-audited" }

// NewAuditedTracker returns a consumer that marks the service's outbox rows the audit log
// reports recorded, so its reconciler's audit check (UnauditedSQL) finds only the events the
// log never received.
func NewAuditedTracker(pool *pgxpool.Pool, js jetstream.JetStream, schema string, log *zap.Logger, m *Metrics) (*Consumer, error) {
	sql := `UPDATE ` + pgx.Identifier{schema}.Sanitize() + `.outbox SET audited_at = now() WHERE event_id = ANY($1::uuid[]) AND audited_at IS NULL`
	return NewConsumer(pool, js, StreamName, ConsumerConfig{
		Schema: schema, Durable: AuditedDurable(schema), FilterSubjects: []string{SubjectAuditRecorded},
	}, func(ctx context.Context, tx pgx.Tx, env *eventsv1.Envelope) error {
		var ev eventsv1.AuditRecorded
		if err := env.GetPayload().UnmarshalTo(&ev); err != nil {
			return fmt.Errorf("decode %s %s: %w", env.GetType(), env.GetEventId(), err)
		}
		if _, err := tx.Exec(ctx, sql, ev.GetEventIds()); err != nil {
			return fmt.Errorf("mark events audited: %w", err)
		}
		return nil
	}, log, m)
}
