// Package audit keeps the hub's tamper-evident decision trail. It records every mash event
// exactly once as an entry of an RFC 6962 Merkle tree held in Postgres, signs checkpoints of
// the tree with a key kept outside the database and publishes them, keeps personal data
// apart from the tree encrypted per case so a case can be crypto-shredded without breaking
// a proof, and verifies the stored log against its latest signed checkpoint.
//
// Invariants:
//
//   - An event id is recorded once: the consumer writes the pending entry in the
//     transaction that records the id in its inbox.
//   - Entries, tree hashes and checkpoints are only ever inserted: the service's
//     transactions run as mash_audit_writer, which has no UPDATE or DELETE on them, and
//     triggers refuse both for everyone.
//   - One sequencer appends at a time (a session advisory lock), and even without the lock
//     the head only moves by compare-and-swap on its tree size, in the transaction that
//     inserts the entries: the log cannot fork.
//   - Every query of the audit API (auditors and admins only) is itself an entry: an access
//     entry is committed through the pending path, in a transaction of its own, before the
//     query reads anything (see recordAccess).
//   - Leaves hold no personal data; payloads are sealed with a per-case key wrapped by the
//     master key. Destroying the case key redacts the payloads and leaves every leaf valid.
package audit

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/mash-hub/mash/pkg/db"
	"github.com/mash-hub/mash/pkg/events"
	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
	"github.com/mash-hub/mash/services/audit/store"
	auditlog "github.com/mash-hub/mash/services/audit/tlog"
)

// Deps are what the audit service needs from the process that runs it.
type Deps struct {
	Pool   *pgxpool.Pool
	JS     jetstream.JetStream
	Log    *zap.Logger
	Events *events.Metrics
	Now    func() time.Time
	Config Config
	// Cipher seals the personal data in this service's events under each case's key and
	// opens the events it consumes (pkg/casekeys); nil leaves payloads clear.
	Cipher events.PayloadCipher
}

// Service is the audit service.
type Service struct {
	pool     *pgxpool.Pool
	cfg      Config
	relay    *events.Relay
	consumer *events.Consumer
	seq      *sequencer
	vkey     string // the public key of SigningKey: served entries are proven as an auditor would
	log      *zap.Logger
	now      func() time.Time
	cipher   events.PayloadCipher
	keys     *keyCache // case keys the consumer seals with, by referral
}

// ErrRedacted is returned when a payload's case was shredded.
var ErrRedacted = errors.New("redacted: the case key was destroyed")

// ErrNoPayload is returned for an event recorded without a payload.
var ErrNoPayload = store.ErrNotFound

// New validates deps and builds the service.
func New(d Deps) (*Service, error) {
	if d.Pool == nil || d.JS == nil || d.Log == nil {
		return nil, errors.New("audit.New: pool, JetStream and logger are required")
	}
	cfg := d.Config.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("audit.New: %w", err)
	}
	signer, err := auditlog.NewSigner(cfg.SigningKey)
	if err != nil {
		return nil, fmt.Errorf("audit.New: %s: %w", EnvSigningKey, err)
	}
	vkey, err := auditlog.VerifierKeyOf(cfg.SigningKey)
	if err != nil {
		return nil, fmt.Errorf("audit.New: %s: %w", EnvSigningKey, err)
	}
	s := &Service{cipher: d.Cipher, pool: d.Pool, cfg: cfg, vkey: vkey, log: d.Log, now: d.Now, keys: newKeyCache()}
	if s.now == nil {
		s.now = time.Now
	}
	if s.relay, err = events.NewRelay(d.Pool, d.JS, events.RelayConfig{Schema: store.Schema}, d.Log.Named("relay"), d.Events); err != nil {
		return nil, fmt.Errorf("audit.New: %w", err)
	}
	s.seq = &sequencer{pool: d.Pool, cfg: cfg, signer: signer, now: s.now, log: d.Log.Named("sequencer"),
		wake: make(chan struct{}, 1), relayWake: s.relay.Wake}
	router, err := s.handler()
	if err != nil {
		return nil, fmt.Errorf("audit.New: %w", err)
	}
	s.consumer, err = events.NewConsumer(d.Pool, d.JS, events.StreamName, events.ConsumerConfig{
		Schema: store.Schema, Durable: consumerDurable, FilterSubjects: []string{"mash.>"}, Cipher: d.Cipher, SkipErased: true,
		// Agencies' own channel traffic (their notifications and acknowledgements) is not an
		// event; notify records each share as mash.notification.* events instead. It has a
		// stream of its own now; a stream older than that still holds some on mash.notify.
		SkipSubjectPrefixes: []string{events.PatternPrefix(eventsv1.SubjectNotifyAny)},
		// Batches: one commit (one WAL flush) for up to 64 entries when events pile up.
		AfterCommit: s.seq.Wake, MaxAckPending: 512, Concurrency: 8, BatchSize: 64,
		// An event of an erased case (its payload unreadable, or arriving after the
		// shredding) is still an entry of the trail, without its payload.
		Erased: s.recordErased,
		// A batch's entries go to the database in one round trip.
		BatchScope: s.inOneRoundTrip,
	}, router.Handle, d.Log.Named("consumer"), d.Events)
	if err != nil {
		return nil, fmt.Errorf("audit.New: %w", err)
	}
	return s, nil
}

// Migrate brings the audit schema up to date, including the writer role (which needs
// CREATEROLE; see store/migrations/2000_writer_role.sql).
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	migs, err := store.Migrations()
	if err != nil {
		return err
	}
	return db.Migrate(ctx, pool, store.Schema, migs)
}

// Run consumes events, sequences them into the tree, signs checkpoints and publishes them
// until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.relay.Run(ctx) })
	g.Go(func() error { return s.consumer.Run(ctx) })
	g.Go(func() error { return s.seq.Run(ctx) })
	return g.Wait()
}

// SignCheckpoint signs, stores and publishes a checkpoint of the current head now, unless
// one of that size exists. It reports whether one was made.
func (s *Service) SignCheckpoint(ctx context.Context) (bool, error) {
	_, ok, err := s.seq.checkpoint(ctx, s.pool, true)
	return ok, err
}

// ShredCase destroys the case key of a referral, which makes every payload of the case
// unreadable while its entries and every proof stay valid, and records the shredding as an
// entry of its own (actor by; the reason stays beside the key, out of the tree, as it may
// name people). Shredding a case again does nothing. A referral with no key yet gets a
// destroyed one, so its later events are never readable either.
//
// The old key bytes stay in dead row versions until Postgres vacuums audit.case_keys;
// run VACUUM on it after shredding where that matters.
func (s *Service) ShredCase(ctx context.Context, referralID, by, reason string) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := store.AsWriter(ctx, tx); err != nil {
			return err
		}
		return s.shredIn(ctx, tx, referralID, by, RolePractitioner, reason)
	})
}

// shredIn is ShredCase within tx, which already runs as the writer role; role is the
// shredder's role on the entry.
func (s *Service) shredIn(ctx context.Context, tx pgx.Tx, referralID, by, role, reason string) error {
	if referralID == "" || by == "" || reason == "" {
		return errors.New("shred case: referral id, who and why are all required")
	}
	// The key leaves memory here, whether or not this transaction commits; a cached key is
	// only ever a guess the database confirms, so dropping it is always safe.
	s.keys.forget(referralID)
	now := s.now().UTC()
	destroyed, err := store.DestroyCaseKey(ctx, tx, uuid.Must(uuid.NewV7()).String(), referralID, by, reason, now)
	if err != nil || !destroyed {
		return err
	}
	var partnership string
	if err := tx.QueryRow(ctx, `SELECT coalesce((SELECT partnership FROM audit.entries WHERE referral_id = $1 AND partnership <> '' LIMIT 1),
		(SELECT partnership FROM audit.pending WHERE referral_id = $1 AND partnership <> '' LIMIT 1), '')`, referralID).Scan(&partnership); err != nil {
		return fmt.Errorf("shred case %s: %w", referralID, err)
	}
	err = store.InsertPending(ctx, tx, store.Pending{
		EventID: uuid.Must(uuid.NewV7()).String(), EventType: EventCaseShredded, OccurredAt: now, ReceivedAt: now,
		Partnership: partnership, ReferralID: referralID, Actor: by, ActorRole: role, Decision: shredDecision(reason),
	})
	if err == nil {
		s.seq.Wake()
	}
	return err
}

// shredDecision is the decision of a case-shredded entry: it commits to the reason's
// SHA-256 (the reason itself stays beside the key, out of the tree), so verification can
// prove the stored reason is the one given.
func shredDecision(reason string) string {
	return fmt.Sprintf("case-key-destroyed reason-sha256:%x", sha256.Sum256([]byte(reason)))
}

// ReadPayload returns an event's payload as it arrived (the envelope's Any). It returns
// ErrRedacted when the case was shredded and ErrNoPayload when the event had none.
func (s *Service) ReadPayload(ctx context.Context, eventID string) (*anypb.Any, error) {
	p, err := store.ReadPayload(ctx, s.pool, eventID)
	if err != nil {
		return nil, err
	}
	if p.Destroyed {
		return nil, ErrRedacted
	}
	key, err := unwrapKey(s.cfg.MasterKey, p.Wrapped, p.ReferralID)
	if err != nil {
		return nil, err
	}
	plain, err := open(key, p.Nonce, p.Ciphertext, eventID)
	if err != nil {
		return nil, err
	}
	a := &anypb.Any{}
	if err := proto.Unmarshal(plain, a); err != nil {
		return nil, fmt.Errorf("read payload %s: %w", eventID, err)
	}
	return a, nil
}
