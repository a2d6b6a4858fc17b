//go:build failpoint

package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mash-hub/mash/pkg/failpoint"
)

// The broker acknowledges an event and then loses it (the relay.lose failpoint marks it
// published without sending it): the reconciler of the service that produced it finds the
// missing effect and re-emits the original event, and every effect appears exactly once.
func TestReconcilerRestoresLostReceivedEvent(t *testing.T) {
	t.Parallel()
	reconcileLost(t, "intake")
}

func TestReconcilerRestoresLostDecidedEvent(t *testing.T) {
	t.Parallel()
	reconcileLost(t, "rules")
}

func reconcileLost(t *testing.T, schema string) {
	s := newSystem(t)
	token := s.credential(t, "south-wales-police")
	rcv := newAgencyEndpoint(t, fmt.Sprintf("%064d", 9))
	dirFile := t.TempDir() + "/directory.yaml"
	if err := os.WriteFile(dirFile, []byte(fmt.Sprintf(`partnerships:
  - {id: default, dutyManager: duty}
agencies:
  - {id: duty, partnership: default, name: Duty manager, roles: [duty_manager], channel: nats}
  - {id: south-wales-police, partnership: default, name: SWP, roles: [police], channel: webhook, url: %q, secretEnv: RECONCILE_SECRET}
`, rcv.srv.URL)), 0o600); err != nil {
		t.Fatal(err)
	}
	s.start(t, failpoint.EnvVar+"=relay.lose."+schema, "MASH_RECONCILE_AGE=1s", "MASH_RECONCILE_EVERY=300ms",
		"MASH_NOTIFY_DIRECTORY="+dirFile, "RECONCILE_SECRET="+fmt.Sprintf("%064d", 9))
	code, body, err := s.submit(token, example(t))
	if err != nil || code != 201 {
		t.Fatalf("submit: %d %s %v", code, body, err)
	}
	var ack struct {
		ReferralID string `json:"referralId"`
	}
	if err := json.Unmarshal([]byte(body), &ack); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	pool := s.pool(t)
	deadline := time.Now().Add(40 * time.Second)
	for {
		var decisions, notified, decided, reconciled, police int
		if err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM rules.decisions WHERE referral_id = $1::uuid),
				(SELECT count(*) FROM rules.decisions WHERE referral_id = $1 AND notified_at IS NOT NULL),
				(SELECT count(*) FROM intake.referrals WHERE id = $1 AND status = 'DECIDED'),
				(SELECT coalesce(sum(reconciles), 0) FROM `+schema+`.outbox WHERE referral_id = $1::text),
				(SELECT count(*) FROM notify.notifications WHERE referral_id = $1 AND agency = 'south-wales-police' AND state = 'DELIVERED')`,
			ack.ReferralID).Scan(&decisions, &notified, &decided, &reconciled, &police); err != nil {
			t.Fatal(err)
		}
		if decisions == 1 && notified == 1 && decided == 1 && police >= 2 {
			if reconciled == 0 {
				t.Fatalf("the effects appeared without the reconciler: the failpoint did not lose the %s event", schema)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after loss in %s: %d decisions, %d notified, %d decided in intake, %d re-emissions, %d delivered to police",
				schema, decisions, notified, decided, reconciled, police)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The process exports the reconciler's gauge for the effect it checks.
	effect := map[string]string{"intake": "decision", "rules": "notification"}[schema]
	resp, err := http.Get("http://" + s.httpAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := `mash_reconcile_missing_effects{effect="` + effect + `",schema="` + schema + `"}`; !strings.Contains(string(metrics), want) {
		t.Fatalf("/metrics has no %s", want)
	}
	// Exactly once everywhere: one decision, each audit entry once, one delivery per
	// notification at the receiver.
	time.Sleep(time.Second) // a further pass or two of the reconciler changes nothing
	var decisions, twice int
	if err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM rules.decisions WHERE referral_id = $1::uuid),
		(SELECT count(*) FROM (SELECT event_id FROM audit.entries GROUP BY event_id HAVING count(*) > 1) d)`, ack.ReferralID).
		Scan(&decisions, &twice); err != nil {
		t.Fatal(err)
	}
	if decisions != 1 || twice != 0 {
		t.Fatalf("%d decisions, %d events audited twice", decisions, twice)
	}
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	for key, n := range rcv.keys {
		if n != 1 {
			t.Fatalf("notification %s delivered %d times", key, n)
		}
	}
}

// The audit log never receives some events (its consumer loses them while the failpoint is
// armed): once it runs normally, every producer's reconciler finds its events the log has not
// reported recording and re-emits them, and each is recorded exactly once.
func TestReconcilerRestoresMissingAuditEntries(t *testing.T) {
	t.Parallel()
	s := newSystem(t)
	token := s.credential(t, "south-wales-police")
	env := []string{"MASH_RECONCILE_AGE=1s", "MASH_RECONCILE_EVERY=300ms"}
	p := s.start(t, append(env, failpoint.EnvVar+"=consumer.lose.audit")...)
	code, body, err := s.submit(token, example(t))
	if err != nil || code != 201 {
		t.Fatalf("submit: %d %s %v", code, body, err)
	}
	var ack struct {
		ReferralID string `json:"referralId"`
	}
	_ = json.Unmarshal([]byte(body), &ack)
	ctx := context.Background()
	pool := s.pool(t)
	count := func(q string) int {
		var n int
		if err := pool.QueryRow(ctx, q, ack.ReferralID).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	deadline := time.Now().Add(30 * time.Second)
	for count(`SELECT count(*) FROM rules.decisions WHERE referral_id = $1::uuid`) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no decision")
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Second)
	if n := count(`SELECT count(*) FROM audit.entries WHERE referral_id = $1`); n != 0 {
		t.Fatalf("%d audit entries while the audit consumer was losing events", n)
	}
	p.stop(t)
	s.start(t, env...)
	deadline = time.Now().Add(40 * time.Second)
	for {
		unaudited := count(`SELECT (SELECT count(*) FROM intake.outbox WHERE audited_at IS NULL AND referral_id = $1)
			+ (SELECT count(*) FROM rules.outbox WHERE audited_at IS NULL AND referral_id = $1)`)
		received := count(`SELECT count(*) FROM audit.entries WHERE referral_id = $1 AND event_type IN ('mash.referral.received', 'mash.recommendation.made')`)
		if unaudited == 0 && received == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of the referral's events still unaudited; %d received/decided entries", unaudited, received)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if n := count(`SELECT count(*) FROM (SELECT event_id FROM audit.entries WHERE referral_id = $1 GROUP BY event_id HAVING count(*) > 1) d`); n != 0 {
		t.Fatalf("%d events audited twice", n)
	}
}

// An event is deleted from the stream behind the system's back before any consumer reads
// it: intake alone runs, the received event is removed from the stream, then the other
// services start. Nothing ever delivers it; intake's reconciler re-emits it and every
// effect appears once.
func TestReconcilerRestoresEventDeletedFromStream(t *testing.T) {
	t.Parallel()
	s := newSystem(t)
	token := s.credential(t, "south-wales-police")
	// A test stream: the failpoint build lets this run's stream allow deletes.
	env := []string{"MASH_RECONCILE_AGE=1s", "MASH_RECONCILE_EVERY=300ms", failpoint.EnvVar + "=stream.allow-delete"}
	intakeOnly := s.start(t, append(env, "MASH_SERVICES=intake")...)
	code, body, err := s.submit(token, example(t))
	if err != nil || code != 201 {
		t.Fatalf("submit: %d %s %v", code, body, err)
	}
	var ack struct {
		ReferralID string `json:"referralId"`
	}
	_ = json.Unmarshal([]byte(body), &ack)
	nc := s.busOperator(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	stream, err := js.Stream(ctx, "MASH")
	if err != nil {
		t.Fatal(err)
	}
	var seq uint64
	deadline := time.Now().Add(20 * time.Second)
	for seq == 0 {
		if m, err := stream.GetLastMsgForSubject(ctx, "mash.referral.received"); err == nil {
			seq = m.Sequence
		} else if time.Now().After(deadline) {
			t.Fatalf("the received event never reached the stream: %v", err)
		} else {
			time.Sleep(50 * time.Millisecond)
		}
	}
	// Behind the system's back.
	if err := stream.DeleteMsg(ctx, seq); err != nil {
		t.Fatalf("delete the event: %v", err)
	}
	intakeOnly.stop(t)
	s.start(t, env...)
	pool := s.pool(t)
	deadline = time.Now().Add(40 * time.Second)
	for {
		var decisions, decided, audited, notifications int
		if err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM rules.decisions WHERE referral_id = $1::uuid),
			(SELECT count(*) FROM intake.referrals WHERE id = $1::uuid AND status = 'DECIDED'),
			(SELECT count(*) FROM audit.entries WHERE referral_id = $1::text AND event_type IN ('mash.referral.received', 'mash.recommendation.made')),
			(SELECT count(*) FROM notify.notifications WHERE referral_id = $1::uuid)`, ack.ReferralID).
			Scan(&decisions, &decided, &audited, &notifications); err != nil {
			t.Fatal(err)
		}
		if decisions == 1 && decided == 1 && audited == 2 && notifications > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the deletion: %d decisions, %d decided, %d audited, %d notifications", decisions, decided, audited, notifications)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
