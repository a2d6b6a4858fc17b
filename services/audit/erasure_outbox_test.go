package audit_test

import (
	"context"
	"crypto/rand"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/mash-hub/mash/pkg/casekeys"
	"github.com/mash-hub/mash/pkg/db"
	"github.com/mash-hub/mash/pkg/db/dbtest"
	"github.com/mash-hub/mash/pkg/events"
	"github.com/mash-hub/mash/pkg/events/eventstest"
	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
	"github.com/mash-hub/mash/services/audit"
	auditlog "github.com/mash-hub/mash/services/audit/tlog"
)

// producer is the schema of a producing service in the outbox test: its outbox, inbox and
// erased cases.
const producer = "svc"

// Events still in a service's outbox when their case key is destroyed reach the trail: one
// whose service applied the erasure before its relay ran (the row became a tombstone), one
// published sealed under the destroyed key. Each is an entry without a payload, marked as
// erased; nothing is lost or dead-lettered, the erasure shreds both cases, and the log
// verifies.
func TestEventsPendingInAnOutboxAtErasureReachTheTrail(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	extra := append(casekeys.Migrations(), events.Migrations(producer)...)
	pool := dbtest.NewPool(t, migrationsKey(t)+"_outbox_"+db.Checksum(extra), func(ctx context.Context, url string) error {
		if err := migrate(ctx, url); err != nil {
			return err
		}
		p, err := db.Open(ctx, url)
		if err != nil {
			return err
		}
		defer p.Close()
		if err := casekeys.Migrate(ctx, p); err != nil {
			return err
		}
		return db.Migrate(ctx, p, producer, events.Migrations(producer))
	})
	kek := make([]byte, casekeys.KEKSize)
	_, _ = rand.Read(kek)
	w, err := casekeys.NewLocalWrapper(kek)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := casekeys.New(pool, w, casekeys.Options{})
	if err != nil {
		t.Fatal(err)
	}
	js := eventstest.JetStream(t, "audit-outbox-test")
	skey, vkey, err := auditlog.GenerateKey(origin)
	if err != nil {
		t.Fatal(err)
	}
	master := make([]byte, 32)
	_, _ = rand.Read(master)
	svc, err := audit.New(audit.Deps{Pool: pool, JS: js, Log: zap.NewNop(), Events: events.NewMetrics(prometheus.NewRegistry()), Cipher: keys,
		Config: audit.Config{MasterKey: master, SigningKey: skey, Origin: origin, CheckpointEvery: 1 << 40, PollInterval: 50 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- svc.Run(runCtx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})

	// Each case has an event in the producer's outbox, sealed under its key, not yet relayed.
	tombstoned, sealed := uuid.NewString(), uuid.NewString()
	now := time.Now().UTC()
	pending := map[string]string{} // event id -> case
	insert := func(env *eventsv1.Envelope, raw []byte) {
		t.Helper()
		if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { return events.InsertOutbox(ctx, tx, producer, env, raw) }); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{tombstoned, sealed} {
		env, _, err := events.NewEnvelope(eventsv1.SubjectCaseClosed, "rct", id, 3, now, events.Actor("practitioner-1", "practitioner", "rct-mash"),
			&eventsv1.CaseChanged{Actor: "practitioner-1", Reason: "Zephyrine Quillfeather is safe with the mother"})
		if err != nil {
			t.Fatal(err)
		}
		raw, err := events.Seal(ctx, keys, env)
		if err != nil {
			t.Fatal(err)
		}
		insert(env, raw)
		pending[env.GetEventId()] = id
	}
	// Both cases are erased: their keys destroyed and their erasure events written. The
	// producer applies the erasure of one before its relay runs; the other's row goes out
	// sealed under a key nobody has any more.
	for _, id := range []string{tombstoned, sealed} {
		if _, err := keys.Erase(ctx, id); err != nil {
			t.Fatal(err)
		}
		env, raw, err := events.ErasedEnvelope(&eventsv1.CaseErased{ReferralId: id, ErasedBy: "manager-1", ErasedByRole: "manager",
			ErasedAt: timestamppb.New(now)}, "rct")
		if err != nil {
			t.Fatal(err)
		}
		insert(env, raw)
	}
	if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		_, err := events.EraseCase(ctx, tx, producer, tombstoned)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	relay, err := events.NewRelay(pool, js, events.RelayConfig{Schema: producer, PollInterval: 50 * time.Millisecond}, zap.NewNop(), events.NewMetrics(nil))
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = relay.Run(runCtx) }()

	waitFor(t, "every outbox row relayed", func() bool {
		var n int
		_ = pool.QueryRow(ctx, `SELECT count(*) FROM svc.outbox WHERE published_at IS NULL`).Scan(&n)
		return n == 0
	})
	eventstest.Drained(t, js, "audit")
	waitFor(t, "the sequencer to integrate every entry", func() bool {
		var n int
		_ = pool.QueryRow(ctx, `SELECT count(*) FROM audit.pending`).Scan(&n)
		return n == 0
	})
	for eventID, id := range pending {
		var decision string
		var hasPayload bool
		err := pool.QueryRow(ctx, `SELECT decision, payload_sha256 <> decode(repeat('00', 32), 'hex')
			FROM audit.entries WHERE event_id = $1 AND referral_id = $2`, eventID, id).
			Scan(&decision, &hasPayload)
		if err != nil {
			t.Errorf("the pending event %s of case %s is not on the trail: %v", eventID, id, err)
			continue
		}
		if decision != audit.ErasedPayloadDecision || hasPayload {
			t.Errorf("entry of the pending event %s: decision %q, payload committed %v; want %q and none", eventID, decision, hasPayload, audit.ErasedPayloadDecision)
		}
	}
	for _, id := range []string{tombstoned, sealed} {
		var shredded int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM audit.entries WHERE referral_id = $1 AND event_type = $2`, id, audit.EventCaseShredded).
			Scan(&shredded); err != nil || shredded != 1 {
			t.Errorf("case %s shredded %d times (%v), want once", id, shredded, err)
		}
	}
	var letters int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM audit.dead_letter`).Scan(&letters); err != nil || letters != 0 {
		t.Errorf("%d dead letters in the audit log (%v), want none", letters, err)
	}
	if _, err := svc.SignCheckpoint(ctx); err != nil {
		t.Fatal(err)
	}
	if rep, err := audit.VerifyDatabase(ctx, pool, vkey, origin); err != nil {
		t.Fatalf("verify: %+v, %v", rep, err)
	}
}
