package audit_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/mash-hub/mash/pkg/events"
	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
	triagev1 "github.com/mash-hub/mash/proto/mash/triage/v1"
	"github.com/mash-hub/mash/services/audit"
	"github.com/mash-hub/mash/services/audit/store"
	auditlog "github.com/mash-hub/mash/services/audit/tlog"
)

// Every event type lands once, even when the broker delivers it twice under different
// message ids (a reconciler's re-emission), with the fields derived from its payload.
func TestEveryEventRecordedOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.run(t)
	referralID, envs, raws := story(t, e.now)
	// An event type the service does not know yet, without a payload.
	other, otherRaw, err := legacyEnvelope(t, "mash.notification.sent", "rct", referralID, 5, e.now, nil)
	if err != nil {
		t.Fatal(err)
	}
	envs, raws = append(envs, other), append(raws, otherRaw)
	delivered, deliveredRaw, err := legacyEnvelope(t, "mash.notification.delivered", "rct", referralID, 0, e.now, &eventsv1.NotificationEvent{
		NotificationId: uuid.NewString(), Agency: "rct-csc", Kind: "ACTION", PayloadSha256: strings.Repeat("ab", 32)})

	if err != nil {
		t.Fatal(err)
	}
	envs, raws = append(envs, delivered), append(raws, deliveredRaw)
	// Casework: who did what to the case, in what role, is on the trail. An event without a
	// role was written before events carried one, when only hub practitioners acted.
	for _, c := range []struct {
		typ     string
		payload proto.Message
	}{
		{"mash.case.closed", &eventsv1.CaseChanged{Actor: "user:alice", ActorRole: "manager", Case: &triagev1.Case{ReferralId: referralID, ChildId: "c-1",
			State: triagev1.CaseState_CLOSED, Outcome: triagev1.CaseOutcome_EARLY_HELP}}},
		{"mash.research.requested", &eventsv1.InformationRequestChanged{Actor: "user:alice", Request: &triagev1.InformationRequest{
			Id: "r-1", Agency: "cwm-taf-health", State: triagev1.InformationRequestState_REQUESTED}}},
		{"mash.disagreement.escalated", &eventsv1.DisagreementChanged{Actor: "triage", Disagreement: &triagev1.Disagreement{
			Id: "d-1", RaisedByAgency: "south-wales-police", Stage: triagev1.DisagreementStage_TEAM_MANAGER}}},
		{"mash.research.answer_received", &eventsv1.InformationAnswerReceived{RequestId: "r-1", Agency: "cwm-taf-health", Answer: "Known.", Channel: "nats"}},
		// A manager recording an agency's acknowledgement by phone; an agency's own from before
		// events carried a role; notify escalating on its own.
		{"mash.notification.acknowledged", &eventsv1.NotificationEvent{NotificationId: "n-1", Agency: "rct-school", Kind: "ACTION",
			Actor: "user:bob", ActorRole: "manager"}},
		{"mash.notification.acknowledged", &eventsv1.NotificationEvent{NotificationId: "n-2", Agency: "rct-csc", Kind: "ACTION",
			Actor: "agency:rct-csc (bus)"}},
		{"mash.notification.escalated", &eventsv1.NotificationEvent{NotificationId: "n-3", Agency: "rct-duty", Kind: "ESCALATION",
			Actor: "notify", ActorRole: "system"}},
		// A lead professional: the agency in the leaf, the team and the person only sealed.
		{"mash.case.lead_professional_named", &eventsv1.LeadProfessionalNamed{ReferralId: referralID, LeadProfessional: &triagev1.LeadProfessional{
			Agency: "rct-csc", Team: "Assessment team north", Person: "Rhys Demoford", Scope: triagev1.LeadProfessionalScope_LEAD_FOR_FAMILY_GROUP,
			NamedBy: "user:carol", NamedByRole: "practitioner"}, Previous: &triagev1.LeadProfessional{Agency: "rct-early-help"}, GroupCases: 2}},
	} {
		ev, raw, err := legacyEnvelope(t, c.typ, "rct", referralID, 0, e.now, c.payload)
		if err != nil {
			t.Fatal(err)
		}
		envs, raws = append(envs, ev), append(raws, raw)
	}
	// An agency's own channel traffic shares the stream but is not an event: skipped, not
	// dead-lettered.
	if _, err := e.js.Publish(context.Background(), "mash.notify.rct-csc", []byte(`{"notificationId":"x"}`)); err != nil {
		t.Fatal(err)
	}
	for round := range 2 {
		for i, ev := range envs {
			e.publish(t, ev, raws[i], ev.GetEventId()+"."+string(rune('a'+round)))
		}
	}
	waitFor(t, "every delivery handled", func() bool {
		c, err := e.js.Consumer(context.Background(), events.StreamName, "audit")
		if err != nil {
			return false
		}
		info, err := c.Info(context.Background())
		return err == nil && info.NumPending == 0 && info.NumAckPending == 0 && info.Delivered.Consumer >= uint64(2*len(envs)+1)
	})
	waitFor(t, "pending sequenced", func() bool {
		var n int
		_ = e.pool.QueryRow(context.Background(), `SELECT count(*) FROM audit.pending`).Scan(&n)
		return n == 0 && e.head(t).TreeSize == int64(len(envs))
	})
	if n := e.checkTree(t); n != int64(len(envs)) {
		t.Fatalf("%d entries, want %d", n, len(envs))
	}
	var dead int
	if err := e.pool.QueryRow(context.Background(), `SELECT count(*) FROM audit.dead_letter`).Scan(&dead); err != nil || dead != 0 {
		t.Fatalf("dead letters: %d (%v)", dead, err)
	}

	type row struct{ typ, agency, actor, role, child, pack, decision string }
	want := map[string]row{
		envs[0].GetEventId():  {"mash.referral.received", "south-wales-police", "south-wales-police", audit.RoleAgency, "", "", "received"},
		envs[1].GetEventId():  {"mash.recommendation.made", "", "rules", audit.RoleSystem, "child", "2026.1", "recommended LEVEL_3A/RAG_AMBER"},
		envs[2].GetEventId():  {"mash.triage.confirmed", "", "user-17", audit.RolePractitioner, "child", "2026.1", "LEVEL_3A/RAG_AMBER"},
		envs[3].GetEventId():  {"mash.decision.made", "rct-mash", "user-18", "manager", "child", "2026.1", "overridden LEVEL_4/RAG_RED from LEVEL_3A/RAG_AMBER"},
		envs[4].GetEventId():  {"mash.notification.sent", "", "", "", "", "", ""},
		envs[5].GetEventId():  {"mash.notification.delivered", "rct-csc", "notify", audit.RoleSystem, "", "", "delivered ACTION to rct-csc sha256:abababababababab"},
		envs[6].GetEventId():  {"mash.case.closed", "", "user:alice", "manager", "c-1", "", "closed: CLOSED EARLY_HELP"},
		envs[7].GetEventId():  {"mash.research.requested", "cwm-taf-health", "user:alice", audit.RolePractitioner, "", "", "information request r-1 requested (cwm-taf-health)"},
		envs[8].GetEventId():  {"mash.disagreement.escalated", "south-wales-police", "triage", audit.RoleSystem, "", "", "disagreement d-1 escalated at TEAM_MANAGER"},
		envs[9].GetEventId():  {"mash.research.answer_received", "cwm-taf-health", "cwm-taf-health", audit.RoleAgency, "", "", "information request r-1 answered on nats"},
		envs[10].GetEventId(): {"mash.notification.acknowledged", "rct-school", "user:bob", "manager", "", "", "acknowledged ACTION to rct-school"},
		envs[11].GetEventId(): {"mash.notification.acknowledged", "rct-csc", "agency:rct-csc (bus)", audit.RoleAgency, "", "", "acknowledged ACTION to rct-csc"},
		envs[12].GetEventId(): {"mash.notification.escalated", "rct-duty", "notify", audit.RoleSystem, "", "", "escalated ESCALATION to rct-duty"},
		envs[13].GetEventId(): {"mash.case.lead_professional_named", "rct-csc", "user:carol", audit.RolePractitioner, "", "", "lead professional named: rct-csc for family_group (was rct-early-help)"},
	}
	rows, err := e.pool.Query(context.Background(), `SELECT event_id::text, event_type, agency, actor, actor_role, child_id,
		pack_version, decision, referral_id, partnership, payload_sha256 FROM audit.entries ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	var id, ref, partnership string
	var r row
	var sum []byte
	if _, err := pgx.ForEachRow(rows, []any{&id, &r.typ, &r.agency, &r.actor, &r.role, &r.child, &r.pack, &r.decision, &ref, &partnership, &sum}, func() error {
		w, ok := want[id]
		if !ok {
			t.Errorf("unexpected entry %s", id)
			return nil
		}
		if w.child == "child" {
			w.child = r.child // the pseudonymous child id: present, checked below
			if r.child == "" {
				t.Errorf("%s: no child id", w.typ)
			}
		}
		if r != w || ref != referralID || partnership != "rct" {
			t.Errorf("entry %s = %+v (%s, %s), want %+v", id, r, ref, partnership, w)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	// Payloads come back as they were sent; the event without one has none.
	for _, ev := range envs[:4] {
		got, err := e.svc.ReadPayload(context.Background(), ev.GetEventId())
		if err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(got, ev.GetPayload()) {
			t.Errorf("payload of %s changed on the way through", ev.GetType())
		}
	}
	if _, err := e.svc.ReadPayload(context.Background(), envs[4].GetEventId()); !errors.Is(err, audit.ErrNoPayload) {
		t.Errorf("payload of an event without one: %v", err)
	}
	// The stored ciphertext holds no plain text of the referral.
	var plainLeak bool
	if err := e.pool.QueryRow(context.Background(), `SELECT bool_or(position('south-wales-police'::bytea in ciphertext) > 0) FROM audit.payloads`).Scan(&plainLeak); err != nil || plainLeak {
		t.Errorf("payloads are not encrypted (leak %v, %v)", plainLeak, err)
	}
}

// The writer role can insert but not change or remove entries, hashes or checkpoints, and
// the triggers refuse it even to a superuser.
func TestAppendOnly(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, envs, _ := story(t, e.now)
	e.record(t, envs...)
	e.sequenceAll(t)
	if _, err := e.svc.SignCheckpoint(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	stmts := map[string]string{
		"update entries":     `UPDATE audit.entries SET decision = 'x' WHERE seq = 0`,
		"delete entries":     `DELETE FROM audit.entries WHERE seq = 0`,
		"update tree_hashes": `UPDATE audit.tree_hashes SET hash = sha256('x') WHERE idx = 0`,
		"delete tree_hashes": `DELETE FROM audit.tree_hashes WHERE idx = 0`,
		"update checkpoints": `UPDATE audit.checkpoints SET note = 'x'`,
		"delete checkpoints": `DELETE FROM audit.checkpoints`,
		"truncate entries":   `TRUNCATE audit.entries`,
	}
	for name, sql := range stmts {
		for _, asWriter := range []bool{true, false} {
			err := pgx.BeginFunc(ctx, e.pool, func(tx pgx.Tx) error {
				if asWriter {
					if _, err := tx.Exec(ctx, `SET LOCAL ROLE `+store.WriterRole); err != nil {
						return err
					}
				}
				_, err := tx.Exec(ctx, sql)
				return err
			})
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) {
				t.Errorf("%s (writer %v) was allowed: %v", name, asWriter, err)
				continue
			}
			switch {
			case asWriter && !strings.Contains(pgErr.Message, "permission denied"):
				t.Errorf("%s as writer: %v, want permission denied", name, pgErr)
			case !asWriter && !strings.Contains(pgErr.Message, "append-only"):
				t.Errorf("%s as superuser: %v, want the trigger's refusal", name, pgErr)
			}
		}
	}
	if n := e.checkTree(t); n != 4 {
		t.Fatalf("%d entries after the refused changes, want 4", n)
	}
}

// tamper runs sql as a superuser with triggers off for the transaction, as an attacker with
// database access could.
func tamper(t *testing.T, e *env, sql string, args ...any) {
	t.Helper()
	ctx := context.Background()
	if err := pgx.BeginFunc(ctx, e.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL session_replication_role = replica`); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, sql, args...)
		if err == nil && tag.RowsAffected() != 1 {
			t.Fatalf("tamper changed %d rows", tag.RowsAffected())
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyNamesAlteredEntry(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		sql  string
		pair bool
	}{
		// One byte of the leaf (the decision field region) flipped.
		{"leaf byte", `UPDATE audit.entries SET leaf = set_byte(leaf, 40, get_byte(leaf, 40) # 1) WHERE seq = $1`, false},
		// The leaf rewritten and its stored leaf hash recomputed to match.
		{"leaf and stored hash", `WITH u AS (UPDATE audit.entries SET leaf = set_byte(leaf, 40, get_byte(leaf, 40) # 1) WHERE seq = $1 RETURNING seq, leaf)
			UPDATE audit.tree_hashes t SET hash = sha256('\x00'::bytea || u.leaf) FROM u WHERE t.idx = 2 * u.seq - bit_count(u.seq::bit(64))`, true},
		// The encrypted payload swapped: its hash no longer matches the leaf.
		{"payload", `UPDATE audit.payloads SET ciphertext = ciphertext || '\x00'::bytea WHERE event_id = (SELECT event_id FROM audit.entries WHERE seq = $1)`, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			for range 5 {
				_, envs, _ := story(t, e.now)
				e.record(t, envs...)
			}
			e.sequenceAll(t)
			if _, err := e.svc.SignCheckpoint(context.Background()); err != nil {
				t.Fatal(err)
			}
			rep, err := audit.VerifyDatabase(context.Background(), e.pool, e.vkey, origin)
			if err != nil || rep.Entries != 20 || rep.FirstMismatch != -1 {
				t.Fatalf("untouched log: %+v, %v", rep, err)
			}
			const victim = 13
			tamper(t, e, tc.sql, victim)
			rep, err = audit.VerifyDatabase(context.Background(), e.pool, e.vkey, origin)
			want := int64(victim)
			if tc.pair {
				// With the stored leaf hash forged too, only the parent of entries 12 and 13
				// is proven, so the report can name the pair, not which of the two changed.
				want = victim &^ 1
			}
			if !isMismatch(err) || rep.FirstMismatch != want {
				t.Fatalf("after altering entry %d: report %+v, error %v", victim, rep, err)
			}
			t.Logf("%s: %v", tc.name, err)
		})
	}
}

func TestVerifyRejectsForeignCheckpoint(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, envs, _ := story(t, e.now)
	e.record(t, envs...)
	e.sequenceAll(t)
	if _, err := e.svc.SignCheckpoint(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, otherKey, _ := auditlog.GenerateKey(origin)
	if _, err := audit.VerifyDatabase(context.Background(), e.pool, otherKey, origin); err == nil {
		t.Fatal("a checkpoint verified with another log's key")
	}
	// Appended entries not yet covered by a checkpoint are checked against the head.
	_, more, _ := story(t, e.now)
	e.record(t, more...)
	e.sequenceAll(t)
	if rep, err := audit.VerifyDatabase(context.Background(), e.pool, e.vkey, origin); err != nil || rep.Entries != 4 {
		t.Fatalf("log grown past its checkpoint: %+v, %v", rep, err)
	}
	tamper(t, e, `UPDATE audit.entries SET leaf = set_byte(leaf, 40, get_byte(leaf, 40) # 1) WHERE seq = $1`, 6)
	if rep, err := audit.VerifyDatabase(context.Background(), e.pool, e.vkey, origin); !isMismatch(err) || rep.FirstMismatch != 6 {
		t.Fatalf("altered entry past the checkpoint: %+v, %v", rep, err)
	}
}

// Shredding a case makes its payloads unreadable, is itself an entry, and verification
// reports the case's entries as redacted, not as tampering.
func TestShredCase(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	victim, envs, _ := story(t, e.now)
	_, others, _ := story(t, e.now)
	e.record(t, append(envs, others...)...)
	e.sequenceAll(t)
	ctx := context.Background()
	if err := e.svc.ShredCase(ctx, victim, "dpo-1", "retention period ended"); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.ShredCase(ctx, victim, "dpo-1", "again"); err != nil {
		t.Fatal(err)
	}
	e.sequenceAll(t)
	if _, err := e.svc.SignCheckpoint(ctx); err != nil {
		t.Fatal(err)
	}
	for _, ev := range envs {
		if _, err := e.svc.ReadPayload(ctx, ev.GetEventId()); !errors.Is(err, audit.ErrRedacted) {
			t.Errorf("payload of shredded %s: %v, want redacted", ev.GetType(), err)
		}
	}
	if _, err := e.svc.ReadPayload(ctx, others[0].GetEventId()); err != nil {
		t.Errorf("another case's payload: %v", err)
	}
	var wrapped []byte
	if err := e.pool.QueryRow(ctx, `SELECT wrapped_key FROM audit.case_keys WHERE referral_id = $1`, victim).Scan(&wrapped); err != nil || wrapped != nil {
		t.Errorf("wrapped key after shredding: %x, %v", wrapped, err)
	}
	var typ, actor string
	if err := e.pool.QueryRow(ctx, `SELECT event_type, actor FROM audit.entries WHERE referral_id = $1 ORDER BY seq DESC LIMIT 1`, victim).Scan(&typ, &actor); err != nil || typ != audit.EventCaseShredded || actor != "dpo-1" {
		t.Errorf("last entry of the shredded case: %s by %s (%v)", typ, actor, err)
	}
	if n := e.checkTree(t); n != 9 {
		t.Fatalf("%d entries, want 8 events and 1 shredding", n)
	}
	rep, err := audit.VerifyDatabase(ctx, e.pool, e.vkey, origin)
	if err != nil || rep.Redacted != 4 || rep.Entries != 9 {
		t.Fatalf("verify after shredding: %+v, %v; want 4 redacted of 9", rep, err)
	}
	// An event of the shredded case arriving later is recorded, its payload never stored.
	late, _, err := legacyEnvelope(t, "mash.triage.confirmed", "rct", victim, 9, e.now, envs[2].GetPayload())
	if err != nil {
		t.Fatal(err)
	}
	e.record(t, late)
	e.sequenceAll(t)
	if _, err := e.svc.ReadPayload(ctx, late.GetEventId()); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("late payload of a shredded case: %v", err)
	}
	if _, err := e.svc.SignCheckpoint(ctx); err != nil {
		t.Fatal(err)
	}
	if rep, err := audit.VerifyDatabase(ctx, e.pool, e.vkey, origin); err != nil || rep.Redacted != 5 {
		t.Fatalf("verify with a late event of a shredded case: %+v, %v", rep, err)
	}
}

// Two sequencers at once never fork the log: the runners' lock serialises them, and even
// without it the compare-and-swap on the head makes one of two racing batches roll back.
func TestConcurrentSequencers(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	const total = 3000
	insertPending(t, e, total)
	var wg sync.WaitGroup
	var mu sync.Mutex
	races := 0
	for range 4 {
		wg.Go(func() {
			for {
				n, err := audit.AppendBatch(ctx, e.pool, 97)
				if errors.Is(err, store.ErrRaced) {
					mu.Lock()
					races++
					mu.Unlock()
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				if n == 0 {
					return
				}
			}
		})
	}
	wg.Wait()
	t.Logf("lost compare-and-swaps (rolled back and retried): %d", races)
	if n := e.checkTree(t); n != total {
		t.Fatalf("%d entries, want %d", n, total)
	}

	// Two full services (two sequencer runners, two consumers) on one database.
	e2 := newEnv(t)
	second, err := audit.New(audit.Deps{Pool: e2.pool, JS: e2.js, Log: zapNop(), Now: func() time.Time { return e2.now },
		Config: testConfig(t)})
	if err != nil {
		t.Fatal(err)
	}
	e2.run(t)
	ctx2, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- second.Run(ctx2) }()
	t.Cleanup(func() { cancel(); <-done })
	// One runner holds the sequencer lock; the other waits for it.
	waitFor(t, "one sequencer holding the lock and one waiting", func() bool {
		var held, waiting int
		_ = e2.pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE granted), count(*) FILTER (WHERE NOT granted)
			FROM pg_locks WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).
			Scan(&held, &waiting)
		return held == 1 && waiting == 1
	})
	insertPending(t, e2, total)
	waitFor(t, "both sequencers done", func() bool { return e2.head(t).TreeSize == total })
	if n := e2.checkTree(t); n != total {
		t.Fatalf("%d entries, want %d", n, total)
	}
}

// A checkpoint is signed every CheckpointEvery entries and leaves the database as an event
// whose note verifies with the public key alone.
func TestCheckpointPublished(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *audit.Config) { c.CheckpointEvery = 4 })
	e.run(t)
	_, envs, raws := story(t, e.now)
	for i, ev := range envs {
		e.publish(t, ev, raws[i], ev.GetEventId())
	}
	ctx := context.Background()
	cons, err := e.js.OrderedConsumer(ctx, events.StreamName, jetstream.OrderedConsumerConfig{FilterSubjects: []string{audit.EventCheckpoint}})
	if err != nil {
		t.Fatal(err)
	}
	mctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	// The clock stands still, so only CheckpointEvery (4) makes a checkpoint.
	var sizes []int64
	var msg jetstream.Msg
	var env eventsv1.Envelope
	for len(sizes) == 0 || sizes[len(sizes)-1] < 4 {
		msg, err = cons.Next(jetstream.FetchContext(mctx))
		if err != nil {
			t.Fatalf("no checkpoint event after sizes %v: %v", sizes, err)
		}
		if err := proto.Unmarshal(msg.Data(), &env); err != nil {
			t.Fatal(err)
		}
		var note eventsv1.CheckpointSigned
		if err := env.GetPayload().UnmarshalTo(&note); err != nil {
			t.Fatal(err)
		}
		cp, err := auditlog.OpenCheckpoint(note.GetNote(), e.vkey, origin)
		if err != nil {
			t.Fatal(err)
		}
		if !cp.Time.Equal(e.now) {
			t.Errorf("checkpoint time %v", cp.Time)
		}
		sizes = append(sizes, cp.Size)
		if cp.Size == 4 {
			if h := e.head(t); h.TreeSize != 4 || [32]byte(cp.Root) != h.Root {
				t.Fatalf("checkpoint %+v, head %+v", cp, h)
			}
		}
	}
	if len(sizes) != 1 {
		t.Fatalf("checkpoint sizes %v, want one of 4", sizes)
	}
	if msg.Headers().Get(jetstream.MsgIDHeader) != env.GetEventId() {
		t.Errorf("checkpoint published without its event id as message id")
	}
	// The audit consumer saw the checkpoint event too and did not record it.
	waitFor(t, "checkpoint event consumed", func() bool {
		var n int
		_ = e.pool.QueryRow(ctx, `SELECT count(*) FROM audit.inbox WHERE event_id = $1`, env.GetEventId()).Scan(&n)
		return n == 1
	})
	if h := e.head(t); h.TreeSize != 4 {
		t.Fatalf("the checkpoint event became an entry: tree size %d", h.TreeSize)
	}
	if _, err := uuid.Parse(env.GetEventId()); err != nil || env.GetType() != audit.EventCheckpoint {
		t.Errorf("checkpoint envelope %+v", &env)
	}
}

// An auditor verifies while the sequencer keeps appending: every read comes from one
// snapshot, so a live log always verifies (found by the chaos harness, where the head read
// after the entries was already ahead of them).
func TestVerifyWhileAppending(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *audit.Config) { c.CheckpointEvery = 50; c.PollInterval = time.Millisecond })
	e.run(t)
	insertPending(t, e, 20000)
	waitFor(t, "a first checkpoint", func() bool {
		_, err := audit.VerifyDatabase(context.Background(), e.pool, e.vkey, origin)
		return err == nil
	})
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			insertPending(t, e, 200)
		}
	}()
	for i := range 10 {
		if _, err := audit.VerifyDatabase(context.Background(), e.pool, e.vkey, origin); err != nil {
			close(stop)
			<-done
			t.Fatalf("verification %d during appends: %v", i, err)
		}
	}
	close(stop)
	<-done
}
