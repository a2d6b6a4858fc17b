//go:build failpoint

package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"mash/pkg/failpoint"
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
	pool, err := pgxpool.New(ctx, s.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
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
