package audit_test

import (
	"testing"

	"github.com/mash-hub/mash/pkg/adminact"
	auditv1 "github.com/mash-hub/mash/proto/mash/audit/v1"
	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
)

// An administrative act becomes a trail entry naming who did what to what, with the
// outcome, found by its event type; the client address and reason stay in the sealed
// payload.
func TestAdminActIsRecorded(t *testing.T) {
	e := newEnv(t)
	env, _, err := adminact.Envelope(adminact.Act{Subject: eventsv1.SubjectAdminPack, Verb: "activate", Actor: "user:7", ActorRole: "manager",
		Agency: "rct-mash", Target: "p-1 version 2026.2", ClientAddress: "10.0.0.9:51515", Reason: "board decision"}, e.now)
	if err != nil {
		t.Fatal(err)
	}
	e.record(t, env)
	e.sequenceAll(t)
	resp, err := e.svc.API().SearchEntries(auditor, &auditv1.SearchEntriesRequest{EventType: "mash.admin.pack"})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetEntries()) != 1 {
		t.Fatalf("entries %v", resp.GetEntries())
	}
	got := resp.GetEntries()[0]
	if got.GetActor() != "user:7" || got.GetActorRole() != "manager" || got.GetAgency() != "rct-mash" ||
		got.GetDecision() != "pack.activate p-1 version 2026.2: succeeded" || got.GetIntegrityError() != "" {
		t.Fatalf("entry %v", got)
	}
	p, err := e.svc.ReadPayload(t.Context(), got.GetEventId())
	if err != nil || p == nil {
		t.Fatalf("payload: %v", err)
	}
}
