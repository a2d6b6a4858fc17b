package events

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/mash-hub/mash/pkg/db"
	"github.com/mash-hub/mash/pkg/tracing"
	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
)

// OutboxDDL returns the statements creating schema.outbox and its indexes. It is idempotent
// and meant to be embedded in the producing service's migrations.
//
// The partial index on unpublished ids is the relay's claim query; the one on published_at
// serves pruning.
func OutboxDDL(schema string) string {
	s := pgx.Identifier{schema}.Sanitize()
	return `CREATE TABLE IF NOT EXISTS ` + s + `.outbox (
	id           bigserial PRIMARY KEY,
	event_id     uuid NOT NULL UNIQUE,
	subject      text NOT NULL,
	payload      bytea NOT NULL,
	created_at   timestamptz NOT NULL DEFAULT now(),
	published_at timestamptz
);
CREATE INDEX IF NOT EXISTS outbox_unpublished ON ` + s + `.outbox (id) WHERE published_at IS NULL;
CREATE INDEX IF NOT EXISTS outbox_published_at ON ` + s + `.outbox (published_at) WHERE published_at IS NOT NULL;
`
}

// NewEnvelope builds an event: a fresh UUIDv7 event id, eventType as both type and subject,
// who acted, and payload packed in an Any. It returns the envelope and its marshalled bytes,
// which are what the outbox stores and the relay publishes unchanged.
//
// The actor (its id at least) is required: whoever makes an event knows who made it happen (the caller's
// identity for a request, System(service) for what a service does on its own), and every
// consumer, the audit log first, reads it from the envelope rather than from the payload.
func NewEnvelope(eventType, partnership, referralID string, version int64, occurredAt time.Time, actor *eventsv1.Actor, payload proto.Message) (*eventsv1.Envelope, []byte, error) {
	if err := ValidSubject(eventType); err != nil {
		return nil, nil, fmt.Errorf("new envelope: event type: %w", err)
	}
	if occurredAt.IsZero() {
		return nil, nil, errors.New("new envelope: occurredAt is zero: pass the time the event happened")
	}
	if actor.GetId() == "" {
		// The role may be unknown (a failed sign-in names only what was tried); who is not.
		return nil, nil, fmt.Errorf("new envelope %s: the actor is required (System(service) for a service acting on its own)", eventType)
	}
	id, err := uuid.NewV7()
	if err != nil {
		return nil, nil, fmt.Errorf("new envelope: event id: %w", err)
	}
	env := &eventsv1.Envelope{
		EventId:     id.String(),
		Type:        eventType,
		OccurredAt:  timestamppb.New(occurredAt),
		Partnership: partnership,
		ReferralId:  referralID,
		Version:     version,
		Actor:       proto.Clone(actor).(*eventsv1.Actor),
	}
	if payload != nil {
		if env.Payload, err = anypb.New(payload); err != nil {
			return nil, nil, fmt.Errorf("new envelope %s: pack payload: %w", eventType, err)
		}
	}
	raw, err := proto.MarshalOptions{Deterministic: true}.Marshal(env)
	if err != nil {
		return nil, nil, fmt.Errorf("new envelope %s: marshal: %w", eventType, err)
	}
	return env, raw, nil
}

// ValidSubject reports whether subject can be published on the mash stream: it starts with
// "mash.", and its tokens are non-empty and contain no wildcards or whitespace.
func ValidSubject(subject string) error {
	if !strings.HasPrefix(subject, "mash.") {
		return fmt.Errorf("%q must start with \"mash.\"", subject)
	}
	for _, tok := range strings.Split(subject, ".") {
		if tok == "" || tok == "*" || tok == ">" || strings.ContainsAny(tok, " \t\r\n") {
			return fmt.Errorf("%q is not a literal NATS subject (empty token, wildcard or whitespace)", subject)
		}
	}
	return nil
}

// AppendOutbox queues the insert of env (marshalled as raw) into schema.outbox on b, with
// the trace context of ctx. Send the batch inside the transaction that writes the domain
// rows, then call Relay.Wake after the commit.
func AppendOutbox(ctx context.Context, b *pgx.Batch, schema string, env *eventsv1.Envelope, raw []byte) {
	b.Queue(insertOutboxSQL(schema), env.GetEventId(), env.GetType(), raw, env.GetReferralId(), TraceContext(ctx))
}

// InsertOutbox inserts env (marshalled as raw) into schema.outbox within tx, with the trace
// context of ctx.
func InsertOutbox(ctx context.Context, tx pgx.Tx, schema string, env *eventsv1.Envelope, raw []byte) error {
	if _, err := tx.Exec(ctx, insertOutboxSQL(schema), env.GetEventId(), env.GetType(), raw, env.GetReferralId(), TraceContext(ctx)); err != nil {
		return fmt.Errorf("insert outbox event %s: %w", env.GetEventId(), err)
	}
	return nil
}

// TraceContext is what an outbox row keeps of ctx's span, for the relay to send in the
// event's headers: the W3C traceparent, or NULL when ctx has no span (tracing off).
func TraceContext(ctx context.Context) *string {
	if tc := tracing.Encode(ctx); tc != "" {
		return &tc
	}
	return nil
}

func insertOutboxSQL(schema string) string {
	return `INSERT INTO ` + pgx.Identifier{schema}.Sanitize() + `.outbox (event_id, subject, payload, referral_id, trace_context)
		VALUES ($1, $2, $3, nullif($4, ''), $5)`
}

// TraceDDL adds the trace context of the request or event that wrote each row, so the relay
// publishes the event as part of the same trace.
func TraceDDL(schema string) string {
	return `ALTER TABLE ` + pgx.Identifier{schema}.Sanitize() + `.outbox ADD COLUMN IF NOT EXISTS trace_context text;
`
}

// AuditedDDL adds when the audit log reported each event recorded, so a reconciler can
// re-emit what it never received.
func AuditedDDL(schema string) string {
	s := pgx.Identifier{schema}.Sanitize()
	return `ALTER TABLE ` + s + `.outbox ADD COLUMN IF NOT EXISTS audited_at timestamptz;
CREATE INDEX IF NOT EXISTS outbox_unaudited ON ` + s + `.outbox (published_at) WHERE audited_at IS NULL AND published_at IS NOT NULL;
`
}

// UnauditedSQL is a reconcile check for any producer: events published before the cutoff $1
// that the audit log has not reported recording.
func UnauditedSQL(schema string) string {
	return `SELECT id, event_id::text, subject, payload, reconciles FROM ` + pgx.Identifier{schema}.Sanitize() + `.outbox
	WHERE audited_at IS NULL AND published_at IS NOT NULL AND published_at < $1 ORDER BY published_at`
}

// PayloadLZ4DDL has the outbox compress its large payloads with LZ4 where the server has it
// (db.PreferLZ4): each event is written once, most are small, and a referral's decision
// carries tens of kilobytes.
func PayloadLZ4DDL(schema string) string {
	return db.PreferLZ4(pgx.Identifier{schema, "outbox"}.Sanitize(), "payload")
}

// ReconcileDDL adds what the reconciler needs to an outbox: the referral an event concerns,
// so a missing effect can be traced to its original event, and how often it was re-emitted.
func ReconcileDDL(schema string) string {
	s := pgx.Identifier{schema}.Sanitize()
	return `ALTER TABLE ` + s + `.outbox ADD COLUMN IF NOT EXISTS referral_id text;
ALTER TABLE ` + s + `.outbox ADD COLUMN IF NOT EXISTS reconciles integer NOT NULL DEFAULT 0;
ALTER TABLE ` + s + `.outbox ADD COLUMN IF NOT EXISTS reconciled_at timestamptz;
CREATE INDEX IF NOT EXISTS outbox_referral ON ` + s + `.outbox (referral_id, subject) WHERE referral_id IS NOT NULL;
`
}

// decodeEnvelope parses an Envelope and checks what the inbox relies on. Protobuf accepts
// many random byte strings, so a valid event id is the real test.
func decodeEnvelope(data []byte) (*eventsv1.Envelope, error) {
	env := &eventsv1.Envelope{}
	if err := proto.Unmarshal(data, env); err != nil {
		return nil, err
	}
	if _, err := uuid.Parse(env.EventId); err != nil {
		return nil, fmt.Errorf("event_id %q is not a UUID", truncate(env.EventId, 40))
	}
	if env.Type == "" {
		return nil, errors.New("type is empty")
	}
	return env, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// Migrations are the outbox and consumer tables of a service's schema, as migrations the
// service appends to its own. Their versions (1000, 1001) sit above any a service numbers
// itself, so a service's later migrations never collide with them.
func Migrations(schema string) []db.Migration {
	return []db.Migration{
		{Version: 1000, Name: "1000_outbox.sql", SQL: OutboxDDL(schema)},
		{Version: 1001, Name: "1001_consumer.sql", SQL: ConsumerDDL(schema)},
		{Version: 1002, Name: "1002_reconcile.sql", SQL: ReconcileDDL(schema)},
		{Version: 1003, Name: "1003_audited.sql", SQL: AuditedDDL(schema)},
		{Version: 1004, Name: "1004_trace.sql", SQL: TraceDDL(schema)},
		{Version: 1005, Name: "1005_erased_cases.sql", SQL: ErasureDDL(schema)},
		{Version: 1006, Name: "1006_outbox_lz4.sql", SQL: PayloadLZ4DDL(schema)},
	}
}
