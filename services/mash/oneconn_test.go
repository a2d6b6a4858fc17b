package main

import (
	"context"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/mash-hub/mash/pkg/auth"
	"github.com/mash-hub/mash/pkg/casekeys"
	triagev1 "github.com/mash-hub/mash/proto/mash/triage/v1"
)

// A referral goes all the way through (received, recommended, queued, claimed, decided,
// every agency told, and all of it on the audit log) with one work connection to share,
// beside the one the audit sequencer keeps: no step holds a work connection while it waits
// for another. One that did would wait here at once, and under load would stop the process
// once every connection was held that way. The case's key keeps being dropped from the
// cache, as it is in a process that has not seen the case or has seen too many since, so the
// steps read it again; before the claim and the decision it is dropped for certain.
func TestAReferralGoesThroughOnOneWorkConnection(t *testing.T) {
	ctx := context.Background()
	kek := make([]byte, 32)
	_, _ = rand.Read(kek)
	ip := startInProcessWith(t, newMigratedURL(t), func(c *serveConfig) {
		c.DatabaseURL, c.CaseKEK = strings.Replace(c.DatabaseURL, "pool_max_conns=6", "pool_max_conns=2", 1), kek
		c.Notify.DirectoryFile = "../../scripts/demo/directory.yaml" // every agency on its stream of the embedded server
	})
	keys, ok := ip.sys.p.cipher.(*casekeys.Store)
	if !ok {
		t.Fatalf("the process seals with %T, want the case-key store", ip.sys.p.cipher)
	}
	if got := ip.sys.p.pool.Config().MaxConns; got != 2 {
		t.Fatalf("the work pool holds %d connections, want 2", got)
	}
	_, referrer, err := ip.sys.p.auth.Create(ctx, "south-wales-police", "police", auth.RoleReferrer, "test")
	if err != nil {
		t.Fatal(err)
	}
	_, practitioner, err := ip.sys.p.auth.Create(ctx, "rct-mash", "hub", auth.RolePractitioner, "test", "rhondda-cynon-taf")
	if err != nil {
		t.Fatal(err)
	}
	referralID := ip.submitExample(t, referrer)

	stop := make(chan struct{})
	forgetting := make(chan struct{})
	go func() {
		defer close(forgetting)
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
				keys.Forget(referralID)
			}
		}
	}()
	defer func() { close(stop); <-forgetting }()

	conn, err := grpc.NewClient(ip.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	triage := triagev1.NewTriageServiceClient(conn)
	pctx, cancel := context.WithTimeout(metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+practitioner), 20*time.Second)
	defer cancel()
	var c *triagev1.Case
	eventually(t, "the case on the queue", func() bool {
		got, err := triage.GetCase(pctx, &triagev1.GetCaseRequest{ReferralId: referralID})
		c = got.GetCase()
		return err == nil && c.GetState() == triagev1.CaseState_AWAITING_DECISION
	})
	keys.Forget(referralID)
	claimed, err := triage.ClaimCase(pctx, &triagev1.ClaimCaseRequest{ReferralId: referralID, ExpectedVersion: c.GetVersion()})
	if err != nil {
		t.Fatalf("claim: %v", err)
	}
	keys.Forget(referralID)
	if _, err := triage.DecideCase(pctx, &triagev1.DecideCaseRequest{ReferralId: referralID,
		ExpectedVersion: claimed.GetCase().GetVersion(), Confirm: true, Reason: "confirmed on one connection"}); err != nil {
		t.Fatalf("decide: %v", err)
	}
	want := []string{"mash.referral.received", "mash.recommendation.made", "mash.case.claimed", "mash.decision.made", "mash.case.decided"}
	eventually(t, "the referral's events on the audit log", func() bool {
		var n int
		err := ip.sys.p.pool.QueryRow(ctx, `SELECT count(DISTINCT event_type) FROM audit.entries
			WHERE referral_id = $1 AND event_type = ANY($2)`, referralID, want).Scan(&n)
		return err == nil && n == len(want)
	})
	// Notify claims each message and seals its "sent" event in one transaction.
	eventually(t, "every agency the decision names told, and the log saying so", func() bool {
		var messages, undelivered, delivered, audited int
		err := ip.sys.p.pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE delivered_at IS NULL AND withdrawn_at IS NULL), count(delivered_at),
				(SELECT count(*) FROM audit.entries WHERE referral_id = $1::text AND event_type = 'mash.notification.delivered')
			FROM notify.notifications WHERE referral_id = $1::uuid`, referralID).Scan(&messages, &undelivered, &delivered, &audited)
		if err != nil {
			t.Fatalf("reading what the referral's agencies were told: %v", err)
		}
		return messages > 0 && undelivered == 0 && audited == delivered
	})
}
