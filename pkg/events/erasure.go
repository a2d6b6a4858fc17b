package events

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
)

// CaseErasedSubject is the event triage publishes when a case is erased (CaseErased). It is
// the one event of a case that travels unsealed: the case key is destroyed before it is
// written, and it carries ids only.
const CaseErasedSubject = eventsv1.SubjectCaseErased

// ErasureDDL adds schema.erased_cases: the cases this schema's service has erased. A
// consumer with SkipErased reads it (under a per-case lock, see LockCase) so that an event
// of an erased case, still readable through a key cached before the erasure, never brings
// the case's personal data back.
func ErasureDDL(schema string) string {
	s := pgx.Identifier{schema}.Sanitize()
	return `CREATE TABLE IF NOT EXISTS ` + s + `.erased_cases (
	referral_id text PRIMARY KEY,
	erased_at   timestamptz NOT NULL DEFAULT now()
);
`
}

// caseLockKey is the advisory lock of one case in one schema: erasing takes it exclusively,
// applying any other event of the case takes it shared, so the two never interleave.
const caseLockSQL = `SELECT pg_advisory_xact_lock%s(hashtextextended($1 || '.case.' || $2, 0))`

// lockCase takes schema's lock of referralID for the rest of tx: shared or exclusive.
func lockCase(ctx context.Context, tx pgx.Tx, schema, referralID string, exclusive bool) error {
	kind := "_shared"
	if exclusive {
		kind = ""
	}
	if _, err := tx.Exec(ctx, fmt.Sprintf(caseLockSQL, kind), schema, referralID); err != nil {
		return fmt.Errorf("lock case %s in %s: %w", referralID, schema, err)
	}
	return nil
}

// CaseErased reports, within tx, whether schema's service erased referralID, after taking
// the case's shared lock: an erasure committing meanwhile is waited for, and then seen.
func CaseErased(ctx context.Context, tx pgx.Tx, schema, referralID string) (bool, error) {
	if err := lockCase(ctx, tx, schema, referralID, false); err != nil {
		return false, err
	}
	var erased bool
	err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM `+pgx.Identifier{schema}.Sanitize()+`.erased_cases WHERE referral_id = $1)`,
		referralID).Scan(&erased)
	if err != nil {
		return false, fmt.Errorf("is case %s erased in %s: %w", referralID, schema, err)
	}
	return erased, nil
}

// EraseCase records, within tx, that schema's service erased referralID, and deletes what
// the events plumbing of schema holds of the case: its published outbox rows (the erasure
// event itself, CaseErasedSubject, excepted; unpublished ones become tombstones that the
// relay still publishes, see Tombstone) and its dead letters. The caller blanks its own
// tables in the same transaction. It takes the case's exclusive lock first, so no event of
// the case is being applied meanwhile; running it again finds nothing more to delete.
// It reports whether the case was erased here before.
func EraseCase(ctx context.Context, tx pgx.Tx, schema, referralID string) (before bool, err error) {
	if referralID == "" {
		return false, fmt.Errorf("erase case in %s: referral id is empty", schema)
	}
	if err := lockCase(ctx, tx, schema, referralID, true); err != nil {
		return false, err
	}
	s := pgx.Identifier{schema}.Sanitize()
	tag, err := tx.Exec(ctx, `INSERT INTO `+s+`.erased_cases (referral_id) VALUES ($1) ON CONFLICT DO NOTHING`, referralID)
	if err != nil {
		return false, fmt.Errorf("erase case %s in %s: %w", referralID, schema, err)
	}
	before = tag.RowsAffected() == 0
	// Published rows go (the events are on the bus, sealed). A row not yet published keeps
	// its place, reduced to a tombstone (its envelope without the payload), so the relay
	// still publishes the event and the audit trail still lists it: deleting it would lose
	// the event from the trail.
	// Tombstones first: a row a relay was publishing meanwhile is waited for, found
	// published, and deleted next.
	if err := tombstoneOutbox(ctx, tx, s, referralID); err != nil {
		return before, fmt.Errorf("erase case %s in %s: outbox: %w", referralID, schema, err)
	}
	if _, err := tx.Exec(ctx, `DELETE FROM `+s+`.outbox WHERE referral_id = $1 AND subject <> $2 AND published_at IS NOT NULL`,
		referralID, CaseErasedSubject); err != nil {
		return before, fmt.Errorf("erase case %s in %s: outbox: %w", referralID, schema, err)
	}
	// Dead letters keep the message as it arrived; its envelope names the case. A letter
	// that is not an envelope at all names no case and is left.
	rows, err := tx.Query(ctx, `SELECT id, payload FROM `+s+`.dead_letter`)
	if err != nil {
		return before, fmt.Errorf("erase case %s in %s: dead letters: %w", referralID, schema, err)
	}
	var drop []int64
	for rows.Next() {
		var id int64
		var payload []byte
		if err := rows.Scan(&id, &payload); err != nil {
			rows.Close()
			return before, fmt.Errorf("erase case %s in %s: dead letters: %w", referralID, schema, err)
		}
		env := &eventsv1.Envelope{}
		if proto.Unmarshal(payload, env) == nil && env.GetReferralId() == referralID {
			drop = append(drop, id)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return before, fmt.Errorf("erase case %s in %s: dead letters: %w", referralID, schema, err)
	}
	if len(drop) > 0 {
		if _, err := tx.Exec(ctx, `DELETE FROM `+s+`.dead_letter WHERE id = ANY($1)`, drop); err != nil {
			return before, fmt.Errorf("erase case %s in %s: dead letters: %w", referralID, schema, err)
		}
	}
	return before, nil
}

// tombstoneOutbox rewrites the case's unpublished outbox rows of table schema.outbox (a
// sanitized identifier) as tombstones. A row that is not an envelope names no case through
// its payload and is left; the erasure event itself is never touched.
func tombstoneOutbox(ctx context.Context, tx pgx.Tx, s, referralID string) error {
	rows, err := tx.Query(ctx, `SELECT id, payload FROM `+s+`.outbox WHERE referral_id = $1 AND subject <> $2 AND published_at IS NULL
		ORDER BY id FOR UPDATE`, referralID, CaseErasedSubject)
	if err != nil {
		return err
	}
	type row struct {
		id  int64
		raw []byte
	}
	var rewrite []row
	for rows.Next() {
		var id int64
		var payload []byte
		if err := rows.Scan(&id, &payload); err != nil {
			rows.Close()
			return err
		}
		env := &eventsv1.Envelope{}
		if proto.Unmarshal(payload, env) != nil || Erased(env) {
			continue
		}
		raw, err := proto.MarshalOptions{Deterministic: true}.Marshal(Tombstone(env))
		if err != nil {
			rows.Close()
			return fmt.Errorf("tombstone of event %s: %w", env.GetEventId(), err)
		}
		rewrite = append(rewrite, row{id, raw})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, r := range rewrite {
		if _, err := tx.Exec(ctx, `UPDATE `+s+`.outbox SET payload = $2 WHERE id = $1`, r.id, r.raw); err != nil {
			return err
		}
	}
	return nil
}

// ErasedEnvelope builds the unsealed CaseErased event of referralID and its bytes, to be
// inserted with InsertOutbox (never through Seal: the case key is gone).
func ErasedEnvelope(ev *eventsv1.CaseErased, partnership string) (*eventsv1.Envelope, []byte, error) {
	by := Actor(ev.GetErasedBy(), ev.GetErasedByRole(), "")
	if ev.GetErasedBy() == "" {
		by = System("triage") // a retention run erases on its own
	}
	return NewEnvelope(CaseErasedSubject, partnership, ev.GetReferralId(), 0, ev.GetErasedAt().AsTime(), by, ev)
}

// CaseErasedOf returns env's CaseErased payload.
func CaseErasedOf(env *eventsv1.Envelope) (*eventsv1.CaseErased, error) {
	ev := &eventsv1.CaseErased{}
	if env.GetPayload() == nil || !env.GetPayload().MessageIs(ev) {
		return nil, fmt.Errorf("event %s (%s): payload is not a CaseErased", env.GetEventId(), env.GetType())
	}
	if err := env.GetPayload().UnmarshalTo(ev); err != nil {
		return nil, fmt.Errorf("event %s: decode CaseErased: %w", env.GetEventId(), err)
	}
	if ev.GetReferralId() != env.GetReferralId() {
		return nil, fmt.Errorf("event %s: CaseErased names case %q, its envelope %q", env.GetEventId(), ev.GetReferralId(), env.GetReferralId())
	}
	return ev, nil
}

// ErasureHandler blanks or deletes, within tx, the clear personal data a service keeps of
// an erased case. EraseCase has already run in tx. It must be idempotent: a redelivered
// erasure finds the case blanked.
type ErasureHandler func(ctx context.Context, tx pgx.Tx, ev *eventsv1.CaseErased) error

// ErasureConsumerConfig configures NewErasureConsumer.
type ErasureConsumerConfig struct {
	// Schema is the service's schema (its outbox, dead letters, erased_cases); Durable
	// names its consumer of CaseErasedSubject.
	Schema, Durable string
	// Cipher is the service's payload cipher: a cache of keys it can Forget (a
	// casekeys.Store) drops the case's key at once.
	Cipher PayloadCipher
	// AfterCommit runs after an erasure committed (e.g. to wake the relay).
	AfterCommit func()
}

// NewErasureConsumer returns the consumer of mash.case.erased a service runs beside its
// others: for each erased case it records the erasure and deletes the case's outbox rows
// and dead letters (EraseCase), calls blank in the same transaction, and forgets the case's
// key. A crash before the commit redelivers the event; after it, the inbox absorbs it.
func NewErasureConsumer(pool *pgxpool.Pool, js jetstream.JetStream, cfg ErasureConsumerConfig, blank ErasureHandler,
	log *zap.Logger, m *Metrics) (*Consumer, error) {
	if blank == nil {
		return nil, errors.New("new erasure consumer: a handler is required")
	}
	return NewConsumer(pool, js, StreamName, ConsumerConfig{
		Schema: cfg.Schema, Durable: cfg.Durable, FilterSubjects: []string{CaseErasedSubject}, Cipher: cfg.Cipher,
		AfterCommit: cfg.AfterCommit,
	}, func(ctx context.Context, tx pgx.Tx, env *eventsv1.Envelope) error {
		ev, err := CaseErasedOf(env)
		if err != nil {
			return err
		}
		if _, err := EraseCase(ctx, tx, cfg.Schema, ev.GetReferralId()); err != nil {
			return err
		}
		if err := blank(ctx, tx, ev); err != nil {
			return fmt.Errorf("erase case %s in %s: %w", ev.GetReferralId(), cfg.Schema, err)
		}
		// The key is destroyed already; dropping it from the cache makes this process stop
		// opening the case's payloads now rather than when the cache entry expires.
		if f, ok := cfg.Cipher.(interface{ Forget(string) }); ok {
			f.Forget(ev.GetReferralId())
		}
		return nil
	}, log, m)
}
