//go:build failpoint

package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mash-hub/mash/pkg/failpoint"
)

// Each test arms a failpoint, makes the process die there, restarts it without, and checks
// the referral exists once and its event is in the stream exactly once.

func TestCrashIntakeAfterCommitBeforeReply(t *testing.T) {
	t.Parallel()
	s := newSystem(t)
	token := s.credential(t, "south-wales-police")
	p := s.start(t, failpoint.EnvVar+"=intake.after-commit")
	if code, body, err := s.submit(token, example(t)); err == nil {
		t.Fatalf("the process answered (%d %s) though it should have died before replying", code, body)
	}
	if code := p.exitCode(t); code != failpoint.ExitCode {
		t.Fatalf("exit %d, want failpoint exit %d:\n%s", code, failpoint.ExitCode, p.out)
	}
	s.start(t)
	code, body, err := s.submit(token, example(t))
	if err != nil || code != 200 {
		t.Fatalf("retry after crash: %d %s %v; want 200 (the referral committed before the crash)", code, body, err)
	}
	var ack struct {
		ReferralID string `json:"referralId"`
		Replay     bool   `json:"replay"`
	}
	if err := json.Unmarshal([]byte(body), &ack); err != nil || !ack.Replay {
		t.Fatalf("retry is not a replay: %s", body)
	}
	s.expectExactlyOnce(t, 1)
}

func TestCrashRelayAfterPublishBeforeMark(t *testing.T) {
	t.Parallel()
	crashRelay(t, "relay.after-publish@intake")
}

func TestCrashRelayAfterMarkBeforeCommit(t *testing.T) {
	t.Parallel()
	crashRelay(t, "relay.after-mark@intake")
}

func crashRelay(t *testing.T, point string) {
	s := newSystem(t)
	token := s.credential(t, "south-wales-police")
	p := s.start(t, failpoint.EnvVar+"="+point)
	// The reply may or may not arrive before the relay kills the process.
	_, _, _ = s.submit(token, example(t))
	if code := p.exitCode(t); code != failpoint.ExitCode {
		t.Fatalf("exit %d, want failpoint exit %d:\n%s", code, failpoint.ExitCode, p.out)
	}
	// The restarted embedded broker recovers its files; the relay republishes the unmarked
	// row with the same Nats-Msg-Id and the stream rejects it as a duplicate.
	s.start(t)
	s.expectExactlyOnce(t, 1)
}

// expectExactlyOnce waits for the outboxes to drain, the rules to decide and the audit log
// to integrate, then checks there is exactly one referral, one decision, one event of each
// kind per referral, one audit entry per event, and no event id twice in the stream.
func (s *system) expectExactlyOnce(t *testing.T, referrals int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool := s.pool(t)
	for {
		var pending, decisions, audited int
		if err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM intake.outbox WHERE published_at IS NULL)
			+ (SELECT count(*) FROM rules.outbox WHERE published_at IS NULL) + (SELECT count(*) FROM notify.outbox WHERE published_at IS NULL)
			+ (SELECT count(*) FROM audit.pending),
			(SELECT count(*) FROM rules.decisions),
			(SELECT count(*) FROM audit.entries WHERE event_type IN ('mash.referral.received', 'mash.recommendation.made'))`).Scan(&pending, &decisions, &audited); err != nil {
			t.Fatal(err)
		}
		// Every referral has two events (received, decided), each audited once.
		if pending == 0 && decisions >= referrals && audited >= 2*referrals {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%d outbox rows unpublished, %d decisions of %d", pending, decisions, referrals)
		case <-time.After(50 * time.Millisecond):
		}
	}
	for table, want := range map[string]int{"intake.referrals": referrals, "intake.outbox": referrals, "rules.decisions": referrals,
		"rules.outbox": referrals, "audit.entries WHERE event_type IN ('mash.referral.received', 'mash.recommendation.made')": 2 * referrals} {
		var n int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM `+table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != want {
			t.Fatalf("%d rows in %s, want %d", n, table, want)
		}
	}
	nc := s.busOperator(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	stream, err := js.Stream(ctx, "MASH")
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(ctx, jetstream.WithSubjectFilter("mash.>"))
	if err != nil {
		t.Fatal(err)
	}
	for _, subject := range []string{"mash.referral.received", "mash.recommendation.made"} {
		if got := int(info.State.Subjects[subject]); got != referrals {
			t.Fatalf("stream holds %d %s events, want exactly %d", got, subject, referrals)
		}
	}
	// No event is audited twice, whichever service emitted it.
	var twice int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM (SELECT event_id FROM audit.entries GROUP BY event_id HAVING count(*) > 1) d`).Scan(&twice); err != nil || twice != 0 {
		t.Fatalf("%d events audited more than once (%v)", twice, err)
	}
	seen := map[string]bool{}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		msg, err := stream.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		id := msg.Header.Get(jetstream.MsgIDHeader)
		if seen[id] {
			t.Fatalf("event %s is in the stream twice", id)
		}
		seen[id] = true
	}
}

// The rules consumer dies after committing a decision but before acknowledging the event:
// the redelivered event finds its id in the inbox, so there is still one decision.
func TestCrashConsumerAfterCommitBeforeAck(t *testing.T) {
	t.Parallel()
	s := newSystem(t)
	token := s.credential(t, "south-wales-police")
	p := s.start(t, failpoint.EnvVar+"=consumer.after-commit@rules")
	if code, body, err := s.submit(token, example(t)); err != nil || code != 201 {
		t.Fatalf("submit: %d %s %v", code, body, err)
	}
	if code := p.exitCode(t); code != failpoint.ExitCode {
		t.Fatalf("exit %d, want failpoint exit %d:\n%s", code, failpoint.ExitCode, p.out)
	}
	s.start(t)
	s.expectExactlyOnce(t, 1)
}

// Notify dies after an agency's system accepted a notification but before the delivery was
// recorded. The restarted process sends it again once the lease runs out, under the same
// Idempotency-Key, so the agency can drop the repeat; every notification ends delivered
// once in the database and once in the audit log.
func TestCrashNotifyAfterSendBeforeRecord(t *testing.T) {
	t.Parallel()
	s := newSystem(t)
	token := s.credential(t, "south-wales-police")
	rcv := newAgencyEndpoint(t, fmt.Sprintf("%064d", 7))
	dir := fmt.Sprintf(`partnerships:
  - {id: default, dutyManager: duty}
agencies:
  - {id: duty, partnership: default, name: Duty manager, roles: [duty_manager], channel: nats}
  - {id: south-wales-police, partnership: default, name: SWP, roles: [police], channel: webhook, url: %q, secretEnv: CRASH_SECRET}
`, rcv.srv.URL)
	dirFile := t.TempDir() + "/directory.yaml"
	if err := os.WriteFile(dirFile, []byte(dir), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"MASH_NOTIFY_DIRECTORY=" + dirFile, "CRASH_SECRET=" + fmt.Sprintf("%064d", 7), "MASH_NOTIFY_SEND_TIMEOUT=1s"}
	p := s.start(t, append(env, failpoint.EnvVar+"=notify.after-send-before-record")...)
	if code, body, err := s.submit(token, example(t)); err != nil || code != 201 {
		t.Fatalf("submit: %d %s %v", code, body, err)
	}
	if code := p.exitCode(t); code != failpoint.ExitCode {
		t.Fatalf("exit %d, want failpoint exit %d:\n%s", code, failpoint.ExitCode, p.out)
	}
	s.start(t, env...)
	s.expectExactlyOnce(t, 1)
	ctx := context.Background()
	pool := s.pool(t)
	deadline := time.Now().Add(30 * time.Second)
	for {
		var open, toPolice, delivered, audited int
		if err := pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE state IN ('PENDING', 'SENDING')),
				count(*) FILTER (WHERE agency = 'south-wales-police'),
				count(*) FILTER (WHERE agency = 'south-wales-police' AND state = 'DELIVERED'),
				(SELECT count(*) FROM audit.entries WHERE event_type = 'mash.notification.delivered' AND agency = 'south-wales-police')
			FROM notify.notifications`).Scan(&open, &toPolice, &delivered, &audited); err != nil {
			t.Fatal(err)
		}
		if open == 0 && toPolice > 0 && delivered == toPolice && audited == toPolice {
			rcv.mu.Lock()
			keys := len(rcv.keys)
			rcv.mu.Unlock()
			if keys != toPolice {
				t.Fatalf("receiver saw %d distinct notifications, the database has %d", keys, toPolice)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("notifications: %d open, %d to police, %d delivered, %d audited as delivered", open, toPolice, delivered, audited)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
