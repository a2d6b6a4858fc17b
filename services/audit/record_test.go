package audit_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/mash-hub/mash/pkg/events"
	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
	"github.com/mash-hub/mash/services/audit"
	"github.com/mash-hub/mash/services/audit/store"
)

// verifyWithMaster signs a checkpoint and verifies the whole log, opening every payload
// with the master key, and checks every event's payload reads back as it was sent.
func verifyWithMaster(t *testing.T, e *env, entries int64, envs ...*eventsv1.Envelope) {
	t.Helper()
	ctx := context.Background()
	e.sequenceAll(t)
	if _, err := e.svc.SignCheckpoint(ctx); err != nil {
		t.Fatal(err)
	}
	rep, err := audit.VerifyDatabaseWith(ctx, e.pool, e.vkey, origin, audit.VerifyOptions{MasterKey: e.master})
	if err != nil || rep.Entries != entries {
		t.Fatalf("verify: %+v, %v; want %d entries", rep, err, entries)
	}
	for _, ev := range envs {
		got, err := e.svc.ReadPayload(ctx, ev.GetEventId())
		if err != nil {
			t.Fatalf("payload of %s: %v", ev.GetType(), err)
		}
		if !proto.Equal(got, ev.GetPayload()) {
			t.Errorf("payload of %s changed on the way through", ev.GetType())
		}
	}
}

func keysOf(t *testing.T, e *env, referralID string) int {
	t.Helper()
	var n int
	if err := e.pool.QueryRow(context.Background(), `SELECT count(*) FROM audit.case_keys WHERE referral_id = $1`, referralID).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// recordWays are the two ways the consumer records events in one transaction: one handler
// call writing after another (events applied one by one, or a batch without BatchScope),
// and a batch queuing every entry and writing them in one round trip.
var recordWays = []struct {
	name string
	in   func(ctx context.Context, svc *audit.Service, tx pgx.Tx, envs ...*eventsv1.Envelope) error
}{
	{"each at once", func(ctx context.Context, svc *audit.Service, tx pgx.Tx, envs ...*eventsv1.Envelope) error {
		for _, ev := range envs {
			if err := svc.Record(ctx, tx, ev); err != nil {
				return err
			}
		}
		return nil
	}},
	{"in one round trip", func(ctx context.Context, svc *audit.Service, tx pgx.Tx, envs ...*eventsv1.Envelope) error {
		return svc.RecordBatch(ctx, tx, envs...)
	}},
}

// recordIn records envs in one committed transaction, the given way.
func recordIn(t *testing.T, e *env, in func(context.Context, *audit.Service, pgx.Tx, ...*eventsv1.Envelope) error, envs ...*eventsv1.Envelope) {
	t.Helper()
	ctx := context.Background()
	if err := pgx.BeginFunc(ctx, e.pool, func(tx pgx.Tx) error { return in(ctx, e.svc, tx, envs...) }); err != nil {
		t.Fatal(err)
	}
}

// A consumer handling a batch records many events in one transaction: every one is
// recorded once, each referral gets one case key (made by its first event, found by the
// rest), and the log verifies with every payload opened. A batch also holds events without
// payload.
func TestRecordSeveralEventsInOneTransaction(t *testing.T) {
	t.Parallel()
	for _, way := range recordWays {
		t.Run(way.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			a, envsA, _ := story(t, e.now)
			b, envsB, _ := story(t, e.now)
			bare := proto.Clone(envsB[1]).(*eventsv1.Envelope)
			bare.EventId, bare.Type, bare.Payload = "01900000-0000-7000-8000-0000000000b1", "mash.case.viewed", nil
			all := append(append(append([]*eventsv1.Envelope{}, envsA...), envsB...), bare)
			recordIn(t, e, way.in, all...)
			if keysOf(t, e, a) != 1 || keysOf(t, e, b) != 1 {
				t.Fatalf("case keys: %d and %d, want one each", keysOf(t, e, a), keysOf(t, e, b))
			}
			verifyWithMaster(t, e, int64(len(all)), append(envsA, envsB...)...)
		})
	}
}

// A case key made in a transaction that rolled back is gone from the database though the
// consumer remembers it: the next event of the case makes it again, and its payload opens.
func TestRecordAfterKeyRolledBack(t *testing.T) {
	t.Parallel()
	for _, way := range recordWays {
		t.Run(way.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			ref, envs, _ := story(t, e.now)
			ctx := context.Background()
			boom := errors.New("rolled back")
			if err := pgx.BeginFunc(ctx, e.pool, func(tx pgx.Tx) error {
				if err := way.in(ctx, e.svc, tx, envs[0]); err != nil {
					return err
				}
				return boom
			}); !errors.Is(err, boom) {
				t.Fatal(err)
			}
			if n := keysOf(t, e, ref); n != 0 {
				t.Fatalf("%d case keys after the rollback", n)
			}
			recordIn(t, e, way.in, envs...)
			if n := keysOf(t, e, ref); n != 1 {
				t.Fatalf("%d case keys, want 1", n)
			}
			verifyWithMaster(t, e, int64(len(envs)), envs...)
		})
	}
}

// Another process (a second replica) made the case's key while this one remembered a key
// that never committed: this one finds the other's key and seals with it (in a batch, every
// event of the case sealed under the stale key is sealed again).
func TestRecordFindsAnotherProcessKey(t *testing.T) {
	t.Parallel()
	for _, way := range recordWays {
		t.Run(way.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			ref, envs, _ := story(t, e.now)
			ctx := context.Background()
			_ = pgx.BeginFunc(ctx, e.pool, func(tx pgx.Tx) error {
				if err := way.in(ctx, e.svc, tx, envs[0]); err != nil {
					t.Fatal(err)
				}
				return errors.New("rolled back")
			})
			cfg := testConfig(t)
			cfg.MasterKey = e.master
			other, err := audit.New(audit.Deps{Pool: e.pool, JS: e.js, Log: zapNop(), Events: events.NewMetrics(prometheus.NewRegistry()), Config: cfg})
			if err != nil {
				t.Fatal(err)
			}
			if err := pgx.BeginFunc(ctx, e.pool, func(tx pgx.Tx) error { return other.Record(ctx, tx, envs[1]) }); err != nil {
				t.Fatal(err)
			}
			recordIn(t, e, way.in, envs[0], envs[2], envs[3])
			if n := keysOf(t, e, ref); n != 1 {
				t.Fatalf("%d case keys, want 1", n)
			}
			verifyWithMaster(t, e, int64(len(envs)), envs...)
		})
	}
}

// A case shredded by another process while this one remembers its key: the next events'
// payloads are not stored and their entries commit to the redacted marker.
func TestRecordAfterAnotherProcessShredded(t *testing.T) {
	t.Parallel()
	for _, way := range recordWays {
		t.Run(way.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			ref, envs, _ := story(t, e.now)
			ctx := context.Background()
			recordIn(t, e, way.in, envs[0])
			if err := pgx.BeginFunc(ctx, e.pool, func(tx pgx.Tx) error {
				if err := store.AsWriter(ctx, tx); err != nil {
					return err
				}
				_, err := store.DestroyCaseKey(ctx, tx, "01900000-0000-7000-8000-000000000001", ref, "dpo-2", "elsewhere", e.now)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			recordIn(t, e, way.in, envs[1], envs[2])
			for _, ev := range envs[1:3] {
				if _, err := e.svc.ReadPayload(ctx, ev.GetEventId()); !errors.Is(err, store.ErrNotFound) {
					t.Errorf("payload recorded after the case was shredded: %v", err)
				}
				var sum []byte
				if err := e.pool.QueryRow(ctx, `SELECT payload_sha256 FROM audit.pending WHERE event_id = $1`, ev.GetEventId()).Scan(&sum); err != nil {
					t.Fatal(err)
				}
				if want := sha256.Sum256([]byte("redacted: case key destroyed before the event arrived")); [32]byte(sum) != want {
					t.Errorf("payload digest %x, want the redacted marker", sum)
				}
			}
		})
	}
}

// Verification reads the stored hashes on a second connection; with a pool of one it
// reads them first on the only one, and finds the same.
func TestVerifyWithOneConnection(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, envs, _ := story(t, e.now)
	e.record(t, envs...)
	e.sequenceAll(t)
	ctx := context.Background()
	if _, err := e.svc.SignCheckpoint(ctx); err != nil {
		t.Fatal(err)
	}
	cfg := e.pool.Config().Copy()
	cfg.MaxConns = 1
	one, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer one.Close()
	rep, err := audit.VerifyDatabase(ctx, one, e.vkey, origin)
	if err != nil || rep.Entries != int64(len(envs)) {
		t.Fatalf("verify on one connection: %+v, %v", rep, err)
	}
}
