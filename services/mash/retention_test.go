package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

// mash retention run --dry-run prints the cases due with their rule and changes nothing.
func TestRetentionDryRunListsTheCasesDue(t *testing.T) {
	t.Parallel()
	s := newSystem(t)
	ctx := context.Background()
	pool := s.pool(t)
	due, kept := uuid.NewString(), uuid.NewString()
	if _, err := pool.Exec(ctx, `INSERT INTO triage.cases (referral_id, partnership, state, outcome, received, received_at, closed_at) VALUES
		($1, 'rct', 4, 1, true, '2027-05-01', '2027-06-01'), ($2, 'rct', 4, 4, true, '2027-05-01', '2027-06-01')`, due, kept); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := s.run(t, "retention", "run", "--dry-run", "--at", "2030-01-01")
	if code != 0 {
		t.Fatalf("retention run --dry-run: exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, due) || !strings.Contains(out, "default schedule: no_further_action, kept 2 years after closure") ||
		strings.Contains(out, kept) || !strings.Contains(errOut, "1 cases due for erasure at 2030-01-01") {
		t.Fatalf("dry run printed:\n%s\n%s\nwant %s due (no further action) and %s kept (early help)", out, errOut, due, kept)
	}
	if _, errOut, code := s.run(t, "retention", "run", "--dry-run", "--at", "soon"); code == 0 || !strings.Contains(errOut, "--at") {
		t.Fatalf("retention run --at soon: exit %d, %q; want a failure naming --at", code, errOut)
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM triage.cases WHERE referral_id IN ($1, $2) AND state = 4`, due, kept).Scan(&n); err != nil || n != 2 {
		t.Fatalf("the dry run changed the cases: %d left, %v", n, err)
	}
}

// mash cases hold and unhold go through the triage API with a manager's credential: the
// API's rules (managers only, a reason) hold for the CLI too.
func TestCasesHoldAndUnholdThroughTheAPI(t *testing.T) {
	t.Parallel()
	s := newSystem(t)
	referrer := s.credential(t, "south-wales-police")
	client := func(role string) string {
		out, errOut, code := s.run(t, "clients", "create", "--agency", "rct-mash", "--kind", "hub", "--role", role, "--partnerships", "rhondda-cynon-taf")
		if code != 0 {
			t.Fatalf("clients create: %s", errOut)
		}
		return strings.TrimSpace(out)
	}
	manager, practitioner := client("manager"), client("practitioner")
	s.start(t)
	code, body, err := s.submit(referrer, example(t))
	if err != nil || code != 201 {
		t.Fatalf("submit: %d %s %v", code, body, err)
	}
	var ack struct {
		ReferralID string `json:"referralId"`
	}
	if err := json.Unmarshal([]byte(body), &ack); err != nil {
		t.Fatal(err)
	}
	cli := func(token string, args ...string) (string, string, int) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, mashBinary, append([]string{"cases"}, args...)...)
		cmd.Env = s.env("MASH_TOKEN="+token, "MASH_API_URL=http://"+s.httpAddr)
		var o, e bytes.Buffer
		cmd.Stdout, cmd.Stderr = &o, &e
		err := cmd.Run()
		if ee, ok := err.(*exec.ExitError); ok {
			return o.String(), e.String(), ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return o.String(), e.String(), 0
	}
	// The case reaches triage within seconds of receipt.
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, errOut, code := cli(manager, "hold", ack.ReferralID, "--reason", "Family court order to preserve records")
		if code == 0 {
			if !strings.Contains(out, `"placedBy"`) || !strings.Contains(out, "Family court order") {
				t.Fatalf("hold printed %s", out)
			}
			break
		}
		if !strings.Contains(errOut, "404") || time.Now().After(deadline) {
			t.Fatalf("hold: exit %d: %s", code, errOut)
		}
		<-time.After(100 * time.Millisecond)
	}
	if _, errOut, code := cli(practitioner, "unhold", ack.ReferralID, "--reason", "done"); code == 0 || !strings.Contains(errOut, "403") {
		t.Fatalf("practitioner unhold: exit %d, %s; want 403", code, errOut)
	}
	if _, errOut, code := cli(manager, "unhold", ack.ReferralID); code == 0 || !strings.Contains(errOut, "--reason") {
		t.Fatalf("unhold without a reason: exit %d, %s; want a failure naming --reason", code, errOut)
	}
	if _, errOut, code := cli("", "unhold", ack.ReferralID, "--reason", "done"); code == 0 || !strings.Contains(errOut, "MASH_TOKEN") {
		t.Fatalf("unhold without a credential: exit %d, %s; want a failure naming MASH_TOKEN", code, errOut)
	}
	out, errOut, code := cli(manager, "unhold", ack.ReferralID, "--reason", "Proceedings concluded")
	if code != 0 || !strings.Contains(out, `"liftReason":"Proceedings concluded"`) {
		t.Fatalf("unhold: exit %d: %s %s", code, out, errOut)
	}
	if _, errOut, code := cli(manager, "unhold", ack.ReferralID, "--reason", "again"); code == 0 || !strings.Contains(errOut, "not under legal hold") {
		t.Fatalf("second unhold: exit %d, %s", code, errOut)
	}
	// Both acts reach the audit trail over the bus, sealed on the way.
	pool := s.pool(t)
	deadline = time.Now().Add(30 * time.Second)
	for {
		var n int
		if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM audit.entries WHERE referral_id = $1
			AND event_type IN ('mash.case.legal_hold_placed', 'mash.case.legal_hold_lifted')`, ack.ReferralID).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d legal hold events on the audit trail, want 2", n)
		}
		<-time.After(100 * time.Millisecond)
	}
}
