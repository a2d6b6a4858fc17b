package audit_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/mash-hub/mash/pkg/db"
	"github.com/mash-hub/mash/pkg/db/dbtest"
	"github.com/mash-hub/mash/pkg/events"
	"github.com/mash-hub/mash/pkg/events/eventstest"
	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
	intakev1 "github.com/mash-hub/mash/proto/mash/intake/v1"
	rulesv1 "github.com/mash-hub/mash/proto/mash/rules/v1"
	"github.com/mash-hub/mash/services/audit"
	"github.com/mash-hub/mash/services/audit/store"
	auditlog "github.com/mash-hub/mash/services/audit/tlog"
)

const origin = "mash.test/audit"

func migrationsKey(t testing.TB) string {
	t.Helper()
	migs, err := store.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	return "audit_" + db.Checksum(migs)
}

func migrate(ctx context.Context, url string) error {
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return err
	}
	defer pool.Close()
	return audit.Migrate(ctx, pool)
}

// env is an audit service on a cloned database and an embedded JetStream, with a fixed
// clock and a fresh signing key.
type env struct {
	pool       *pgxpool.Pool
	js         jetstream.JetStream
	svc        *audit.Service
	vkey       string
	master     []byte
	now        time.Time
	cancel     context.CancelFunc
	runDone    chan error
	checkEvery int64
}

type option func(*audit.Config)

func newEnv(t testing.TB, opts ...option) *env {
	t.Helper()
	pool := dbtest.NewPool(t, migrationsKey(t), migrate)
	js := eventstest.JetStream(t, "audit-test")
	skey, vkey, err := auditlog.GenerateKey(origin)
	if err != nil {
		t.Fatal(err)
	}
	master := make([]byte, 32)
	_, _ = rand.Read(master)
	cfg := audit.Config{MasterKey: master, SigningKey: skey, Origin: origin, CheckpointEvery: 1 << 40,
		PollInterval: 50 * time.Millisecond}
	for _, o := range opts {
		o(&cfg)
	}
	now := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	svc, err := audit.New(audit.Deps{Pool: pool, JS: js, Log: zap.NewNop(), Events: events.NewMetrics(prometheus.NewRegistry()),
		Now: func() time.Time { return now }, Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	return &env{pool: pool, js: js, svc: svc, vkey: vkey, master: cfg.MasterKey, now: now}
}

// run starts the service until the test ends.
func (e *env) run(t testing.TB) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.svc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

// publish sends raw with a message id of its own, as a relay or a re-emitting reconciler
// would.
func (e *env) publish(t testing.TB, env *eventsv1.Envelope, raw []byte, msgID string) {
	t.Helper()
	if _, err := e.js.Publish(context.Background(), env.GetType(), raw, jetstream.WithMsgID(msgID)); err != nil {
		t.Fatal(err)
	}
}

// record stores envelopes through the consumer's handler without the broker, each in its
// own transaction as the consumer would.
func (e *env) record(t testing.TB, envs ...*eventsv1.Envelope) {
	t.Helper()
	ctx := context.Background()
	for _, ev := range envs {
		if err := pgx.BeginFunc(ctx, e.pool, func(tx pgx.Tx) error { return e.svc.Record(ctx, tx, ev) }); err != nil {
			t.Fatal(err)
		}
	}
}

// sequenceAll appends every pending entry.
func (e *env) sequenceAll(t testing.TB) {
	t.Helper()
	for {
		n, err := audit.AppendBatch(context.Background(), e.pool, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
	}
}

func (e *env) head(t testing.TB) store.Head {
	t.Helper()
	h, err := store.ReadHead(context.Background(), e.pool)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// waitFor polls cond until it holds or 10s pass.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// leaves returns every entry's seq and leaf in seq order.
func (e *env) leaves(t testing.TB) (seqs []int64, leaves [][]byte) {
	t.Helper()
	rows, err := e.pool.Query(context.Background(), `SELECT seq, leaf FROM audit.entries ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	var s int64
	var l []byte
	if _, err := pgx.ForEachRow(rows, []any{&s, &l}, func() error {
		seqs = append(seqs, s)
		leaves = append(leaves, append([]byte(nil), l...))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return seqs, leaves
}

// checkTree asserts seqs are 0..n-1, the head matches them, its root is the RFC 6962 root
// of the stored leaves, and the stored hashes are exactly the tree's.
func (e *env) checkTree(t testing.TB) int64 {
	t.Helper()
	seqs, leaves := e.leaves(t)
	var mem auditlog.MemoryHashes
	for i, l := range leaves {
		if seqs[i] != int64(i) {
			t.Fatalf("entry %d has seq %d: seqs are not contiguous", i, seqs[i])
		}
		ent, err := auditlog.UnmarshalLeaf(l)
		if err != nil || ent.Seq != int64(i) {
			t.Fatalf("leaf %d: seq %d, %v", i, ent.Seq, err)
		}
		if err := mem.Append(auditlog.LeafHash(l)); err != nil {
			t.Fatal(err)
		}
	}
	root, err := auditlog.Root(mem, int64(len(leaves)))
	if err != nil {
		t.Fatal(err)
	}
	h := e.head(t)
	if h.TreeSize != int64(len(leaves)) || h.Root != root {
		t.Fatalf("head (%d, %x) does not match the %d leaves (root %x)", h.TreeSize, h.Root, len(leaves), root)
	}
	var stored int64
	rows, err := e.pool.Query(context.Background(), `SELECT idx, hash FROM audit.tree_hashes ORDER BY idx`)
	if err != nil {
		t.Fatal(err)
	}
	var idx int64
	var hash []byte
	if _, err := pgx.ForEachRow(rows, []any{&idx, &hash}, func() error {
		if idx != stored || idx >= int64(len(mem)) || [32]byte(hash) != mem[idx] {
			return fmt.Errorf("stored hash %d (row %d) differs from the recomputed tree", idx, stored)
		}
		stored++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if stored != int64(len(mem)) {
		t.Fatalf("%d stored hashes, want %d", stored, len(mem))
	}
	return int64(len(leaves))
}

// story builds the events of one referral's life: received, recommended, confirmed (by an
// event rules wrote before triage made decisions and before they carried the reviewer's
// role), overridden by a manager through triage.
func story(t testing.TB, now time.Time) (referralID string, envs []*eventsv1.Envelope, raws [][]byte) {
	t.Helper()
	referralID = uuid.NewString()
	childID := uuid.NewString()
	ref := &intakev1.Referral{Id: referralID, Agency: "south-wales-police", Partnership: "rct", AgencyKind: "police",
		ReceivedAt: timestamppb.New(now)}
	outcome := &rulesv1.Outcome{Level: rulesv1.Level_LEVEL_3A, Rag: rulesv1.Rag_RAG_AMBER}
	decision := func(status rulesv1.DecisionStatus, by, role string, cur *rulesv1.Outcome) *rulesv1.Decision {
		return &rulesv1.Decision{Id: uuid.NewString(), ReferralId: referralID, Partnership: "rct", PackVersion: "2026.1",
			Recommended: outcome, Current: cur, Status: status, ChildId: childID, ReviewedBy: by, ReviewedByRole: role}
	}
	add := func(typ string, version int64, payload proto.Message) {
		ev, raw, err := legacyEnvelope(t, typ, "rct", referralID, version, now, payload)
		if err != nil {
			t.Fatal(err)
		}
		envs, raws = append(envs, ev), append(raws, raw)
	}
	add("mash.referral.received", 1, &eventsv1.ReferralReceived{Referral: ref})
	add("mash.recommendation.made", 2, &eventsv1.RecommendationMade{Decision: decision(rulesv1.DecisionStatus_RECOMMENDED, "", "", outcome)})
	add("mash.triage.confirmed", 3, &eventsv1.TriageConfirmed{Decision: decision(rulesv1.DecisionStatus_CONFIRMED, "user-17", "", outcome)})
	add("mash.decision.made", 4, &eventsv1.DecisionMade{
		Decision: decision(rulesv1.DecisionStatus_OVERRIDDEN, "user-18", "manager", &rulesv1.Outcome{Level: rulesv1.Level_LEVEL_4, Rag: rulesv1.Rag_RAG_RED}),
		Previous: outcome, DecidedByAgency: "rct-mash"})
	return referralID, envs, raws
}

func isMismatch(err error) bool { return errors.Is(err, auditlog.ErrMismatch) }

// insertPending adds n pending entries straight to the table, as the consumer would for
// events without a payload (a payload digest with no payload stored would be tampering).
func insertPending(t testing.TB, e *env, n int) {
	t.Helper()
	ctx := context.Background()
	_, err := e.pool.CopyFrom(ctx, pgx.Identifier{"audit", "pending"},
		[]string{"event_id", "event_type", "occurred_at", "received_at", "partnership", "referral_id", "child_id", "actor",
			"actor_role", "agency", "pack_version", "decision", "payload_sha256"},
		pgx.CopyFromSlice(n, func(i int) ([]any, error) {
			sum := make([]byte, 32)
			return []any{uuid.New(), "mash.triage.decided", e.now, e.now, "rct", uuid.NewString(), uuid.NewString(), "rules",
				audit.RoleSystem, "", "2026.1", "LEVEL_2/RAG_GREEN", sum}, nil
		}))
	if err != nil {
		t.Fatal(err)
	}
}

func zapNop() *zap.Logger { return zap.NewNop() }

func testConfig(t testing.TB) audit.Config {
	skey, _, err := auditlog.GenerateKey(origin)
	if err != nil {
		t.Fatal(err)
	}
	master := make([]byte, 32)
	_, _ = rand.Read(master)
	return audit.Config{MasterKey: master, SigningKey: skey, Origin: origin, PollInterval: 20 * time.Millisecond}
}

// legacyEnvelope builds an event as producers made them before envelopes carried the actor:
// the audit log must still find who acted in its payload.
func legacyEnvelope(t testing.TB, typ, partnership, referralID string, version int64, at time.Time, payload proto.Message) (*eventsv1.Envelope, []byte, error) {
	t.Helper()
	env, _, err := events.NewEnvelope(typ, partnership, referralID, version, at, events.System("test"), payload)
	if err != nil {
		return nil, nil, err
	}
	env.Actor = nil
	raw, err := proto.MarshalOptions{Deterministic: true}.Marshal(env)
	return env, raw, err
}
