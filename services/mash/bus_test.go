package main_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mash-hub/mash/pkg/busauth"
)

// busAgency creates an agency's NATS user through the CLI and connects as it, collecting
// the permission violations the server reports.
func (s *system) busAgency(t *testing.T, agency string) (*nats.Conn, <-chan error) {
	t.Helper()
	out, errOut, code := s.run(t, "bus", "users", "create", "--agency", agency)
	if code != 0 {
		t.Fatalf("bus users create --agency %s: %d %s", agency, code, errOut)
	}
	errs := make(chan error, 16)
	u := busauth.User{Name: busauth.UserName(busauth.KindAgency, agency), Password: strings.TrimSpace(out)}
	nc, err := nats.Connect("nats://"+s.nats, append(u.Options(), nats.Timeout(20*time.Second), nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		select {
		case errs <- err:
		default:
		}
	}))...)
	if err != nil {
		t.Fatalf("connect as %s: %v", u.Name, err)
	}
	t.Cleanup(nc.Close)
	return nc, errs
}

func waitViolation(t *testing.T, errs <-chan error, subject string) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case err := <-errs:
			if strings.Contains(strings.ToLower(err.Error()), "permissions violation") && strings.Contains(err.Error(), subject) {
				return
			}
		case <-timeout:
			t.Fatalf("the server did not refuse %s", subject)
		}
	}
}

// The one-process system's bus: an anonymous client is refused; an agency receives its own
// notifications and acknowledges them, but can neither listen on another agency's subject,
// nor publish there, nor acknowledge another agency's notification on its own subject.
func TestAgenciesOnTheBusActOnlyForThemselves(t *testing.T) {
	t.Parallel()
	s := newSystem(t)
	referrer := s.credential(t, "south-wales-police")
	others := newAgencyEndpoint(t, fmt.Sprintf("%064d", 1))
	dir := fmt.Sprintf(`partnerships:
  - id: rhondda-cynon-taf
    dutyManager: rct-duty-manager
agencies:
  - {id: south-wales-police, partnership: rhondda-cynon-taf, name: SWP PPU, roles: [police], channel: nats}
  - {id: rct-csc, partnership: rhondda-cynon-taf, name: CSC duty, roles: [childrens_social_care], channel: nats}
  - {id: rct-duty-manager, partnership: rhondda-cynon-taf, name: Duty manager, roles: [duty_manager], channel: webhook, url: %q, secretEnv: E2E_SECRET_1}
  - {id: rct-education, partnership: rhondda-cynon-taf, name: Education safeguarding, roles: [school_dsl], channel: webhook, url: %q, secretEnv: E2E_SECRET_1}
`, others.srv.URL, others.srv.URL)
	dirFile := t.TempDir() + "/directory.yaml"
	if err := writeTestFile(dirFile, dir); err != nil {
		t.Fatal(err)
	}
	p := s.start(t, "MASH_NOTIFY_DIRECTORY="+dirFile, "E2E_SECRET_1="+fmt.Sprintf("%064d", 1))

	if nc, err := nats.Connect("nats://" + s.nats); !errors.Is(err, nats.ErrAuthorization) {
		if nc != nil {
			nc.Close()
		}
		t.Fatalf("anonymous client on the embedded server: %v, want an authorization violation", err)
	}

	police, policeErrs := s.busAgency(t, "south-wales-police")
	social, _ := s.busAgency(t, "rct-csc")
	if _, err := police.SubscribeSync("mash.notify.rct-csc"); err != nil {
		t.Fatal(err)
	}
	_ = police.Flush()
	waitViolation(t, policeErrs, "mash.notify.rct-csc")
	inbox, err := social.SubscribeSync("mash.notify.rct-csc")
	if err != nil {
		t.Fatal(err)
	}
	_ = social.Flush()

	code, body, err := s.submit(referrer, example(t))
	if err != nil || code != 201 {
		t.Fatalf("submit: %d %s %v", code, body, err)
	}
	// Social care's action notification arrives on its subject; its id is the message id.
	var actionID string
	for actionID == "" {
		m, err := inbox.NextMsg(30 * time.Second)
		if err != nil {
			t.Fatalf("social care's notification did not arrive: %v\n%s", err, p.out)
		}
		var b struct {
			Kind string `json:"kind"`
		}
		_ = json.Unmarshal(m.Data, &b)
		if b.Kind == "ACTION" {
			actionID = m.Header.Get(jetstream.MsgIDHeader)
		}
	}
	ack := func(id string) []byte {
		b, _ := json.Marshal(map[string]string{"notificationId": id, "note": "seen"})
		return b
	}
	// The police try social care's subject (refused by the server), then their own subject
	// naming social care's notification (refused by notify); social care then acknowledges.
	if err := police.Publish("mash.notify.rct-csc.ack", ack(actionID)); err != nil {
		t.Fatal(err)
	}
	_ = police.Flush()
	waitViolation(t, policeErrs, "mash.notify.rct-csc.ack")
	pjs, _ := jetstream.New(police)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := pjs.Publish(ctx, "mash.notify.south-wales-police.ack", ack(actionID)); err != nil {
		t.Fatalf("police publish on their own subject: %v", err)
	}
	sjs, _ := jetstream.New(social)
	if _, err := sjs.Publish(ctx, "mash.notify.rct-csc.ack", ack(actionID)); err != nil {
		t.Fatalf("social care acknowledges: %v", err)
	}
	pool := s.pool(t)
	// notify's acknowledgement consumer takes its messages in order, so once social care's
	// is recorded the police's has been decided.
	var by string
	poll(30*time.Second, func() bool {
		if err := pool.QueryRow(context.Background(), `SELECT coalesce(acknowledged_by, '') FROM notify.notifications WHERE id = $1`, actionID).Scan(&by); err != nil {
			t.Fatal(err)
		}
		return by != ""
	})
	if !strings.Contains(by, "agency:rct-csc") {
		t.Fatalf("social care's notification acknowledged by %q, want social care itself\n%s", by, p.out)
	}
	if !strings.Contains(p.out.String(), "bus acknowledgement rejected") || !strings.Contains(p.out.String(), actionID) {
		t.Fatalf("notify did not log the police's acknowledgement of social care's notification as rejected:\n%s", p.out)
	}
}

func writeTestFile(path, s string) error { return os.WriteFile(path, []byte(s), 0o600) }
