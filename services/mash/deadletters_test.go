package main_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mash-hub/mash/pkg/events"
	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
)

// An operator lists the dead letters of every consuming schema and replays one into the
// running system's stream.
func TestDeadLettersListAndReplay(t *testing.T) {
	t.Parallel()
	s := newSystem(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pool := s.pool(t)
	if _, err := pool.Exec(ctx, `CREATE SCHEMA probe; `+events.ConsumerDDL("probe")); err != nil {
		t.Fatal(err)
	}
	env, raw, err := events.NewEnvelope("mash.referral.received", "rhondda-cynon-taf", "00000000-0000-7000-8000-000000000001", 1, time.Now(), events.System("test"), &eventsv1.ReferralReceived{})
	if err != nil {
		t.Fatal(err)
	}
	var id int64
	if err := pool.QueryRow(ctx, `INSERT INTO probe.dead_letter (consumer, event_id, subject, payload, error, attempts)
		VALUES ('probe-consumer', $1, 'mash.referral.received', $2, 'handler failed', 8) RETURNING id`, env.GetEventId(), raw).Scan(&id); err != nil {
		t.Fatal(err)
	}

	out, stderr, code := s.run(t, "deadletters", "list")
	if code != 0 || !strings.Contains(out, env.GetEventId()) || !strings.Contains(out, "probe-consumer") {
		t.Fatalf("deadletters list: %d %s %s", code, out, stderr)
	}
	if _, stderr, code := s.run(t, "deadletters", "replay", "--schema", "probe", "999"); code == 0 {
		t.Fatalf("replaying an unknown dead letter succeeded: %s", stderr)
	}

	s.start(t)
	nc := s.busOperator(t)
	if _, stderr, code := s.run(t, "deadletters", "replay", "--schema", "probe", "1"); code != 0 {
		t.Fatalf("deadletters replay: %d %s", code, stderr)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	stream, err := js.Stream(ctx, events.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := stream.GetLastMsgForSubject(ctx, "mash.referral.received")
	if err != nil {
		t.Fatalf("replayed event not in the stream: %v", err)
	}
	if got, want := msg.Header.Get(jetstream.MsgIDHeader), events.ReplayMsgID(env.GetEventId(), id, 1); got != want || string(msg.Data) != string(raw) {
		t.Fatalf("replayed message id %q, want %q (payload equal: %v)", got, want, string(msg.Data) == string(raw))
	}
	out, _, _ = s.run(t, "deadletters", "list")
	if strings.Contains(out, env.GetEventId()) {
		t.Fatalf("a replayed dead letter is still listed as pending: %s", out)
	}
	out, _, _ = s.run(t, "deadletters", "list", "--all")
	if !strings.Contains(out, env.GetEventId()) {
		t.Fatalf("--all does not show the replayed dead letter: %s", out)
	}
}
