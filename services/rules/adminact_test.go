package rules_test

import (
	"strings"
	"testing"

	"github.com/mash-hub/mash/pkg/auth"
	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
	rulesv1 "github.com/mash-hub/mash/proto/mash/rules/v1"
)

// adminActs returns the pack acts published so far, waiting for want of them.
func adminActs(t *testing.T, e *env, want int) []*eventsv1.AdminActRecorded {
	t.Helper()
	var out []*eventsv1.AdminActRecorded
	for _, m := range e.events(t, "mash.admin.pack", want) {
		_, act := decode(t, m.Data, &eventsv1.AdminActRecorded{})
		out = append(out, act)
	}
	return out
}

// Uploading a rule pack is an administrative act on the trail: who, which pack, from where.
func TestPackUploadIsAnAdminAct(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	manager := e.token(t, auth.RoleManager)
	src := strings.Replace(replaySource(t), "partnership: default", "partnership: rhondda-cynon-taf", 1)
	up, err := e.client.UploadPack(manager, &rulesv1.UploadPackRequest{Source: src})
	if err != nil {
		t.Fatal(err)
	}
	acts := adminActs(t, e, 1)
	a := acts[0]
	if a.GetAction() != "pack.upload" || a.GetOutcome() != "succeeded" || !strings.Contains(a.GetTarget(), up.GetPack().GetId()) ||
		a.GetActorRole() != "manager" || a.GetAgency() != "rct-mash" || a.GetActor() == "" || a.GetClientAddress() == "" {
		t.Fatalf("upload act %v", a)
	}
}

// Activating a rule pack is an administrative act on the trail, with the reason given.
func TestPackActivationIsAnAdminAct(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	manager := e.token(t, auth.RoleManager)
	src := strings.Replace(replaySource(t), "partnership: default", "partnership: rhondda-cynon-taf", 1)
	up, err := e.client.UploadPack(manager, &rulesv1.UploadPackRequest{Source: src})
	if err != nil {
		t.Fatal(err)
	}
	const why = "Agreed at the partnership board"
	if _, err := e.client.ActivatePack(manager, &rulesv1.ActivatePackRequest{PackId: up.GetPack().GetId(), Reason: why}); err != nil {
		t.Fatal(err)
	}
	acts := adminActs(t, e, 2)
	a := acts[1]
	if a.GetAction() != "pack.activate" || a.GetReason() != why || !strings.Contains(a.GetTarget(), up.GetPack().GetId()) ||
		a.GetActorRole() != "manager" || a.GetClientAddress() == "" {
		t.Fatalf("activation act %v", a)
	}
}
