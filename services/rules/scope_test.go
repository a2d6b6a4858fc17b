package rules_test

import (
	"context"
	"strings"
	"testing"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/mash-hub/mash/pkg/auth"
	intakev1 "github.com/mash-hub/mash/proto/mash/intake/v1"
	rulesv1 "github.com/mash-hub/mash/proto/mash/rules/v1"
)

// Staff read and decide only their partnerships' decisions, and managers change only
// their partnerships' rule packs: the default pack, which decides for every partnership
// without its own, only a manager serving every partnership.
func TestDecisionsAndPacksKeepToThePartnershipsServed(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	scoped := func(role auth.Role, ps ...string) context.Context {
		_, tok, err := e.auth.Create(context.Background(), "rct-mash", "hub", role, "test", ps...)
		if err != nil {
			t.Fatal(err)
		}
		return metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+tok)
	}
	every := e.token(t, auth.RolePractitioner)
	rct := scoped(auth.RolePractitioner, "rhondda-cynon-taf")
	rctManager := scoped(auth.RoleManager, "rhondda-cynon-taf")

	theirs := uuid.NewString()
	sub := lowLevel(t, intakev1.ConcernCategory_BEREAVEMENT)
	sub.Partnership = "merthyr-tydfil"
	e.received(t, theirs, e.now, sub)
	e.decision(t, every, theirs)
	if _, err := e.client.GetDecision(rct, &rulesv1.GetDecisionRequest{ReferralId: theirs}); status.Code(err) != codes.NotFound {
		t.Errorf("reading another partnership's decision: %v, want NotFound", err)
	}
	// Rules decides nothing for anyone (triage is the one door), so the refusal is the same
	// whoever's decision it is, and says nothing of it.
	if _, err := e.client.ConfirmDecision(rct, &rulesv1.ConfirmDecisionRequest{ReferralId: theirs, ExpectedVersion: 1}); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("confirming another partnership's decision: %v, want FailedPrecondition", err)
	}
	ours := uuid.NewString()
	e.received(t, ours, e.now, lowLevel(t, intakev1.ConcernCategory_BEREAVEMENT))
	e.decision(t, rct, ours)

	src := strings.Replace(replaySource(t), "partnership: default", "partnership: merthyr-tydfil", 1)
	if _, err := e.client.UploadPack(rctManager, &rulesv1.UploadPackRequest{Source: src}); status.Code(err) != codes.PermissionDenied ||
		!strings.Contains(err.Error(), "merthyr-tydfil") {
		t.Errorf("uploading another partnership's pack: %v", err)
	}
	if _, err := e.client.ReplayPack(rctManager, &rulesv1.ReplayPackRequest{Source: src}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("replaying over another partnership's decisions: %v", err)
	}
	if _, err := e.client.UploadPack(rctManager, &rulesv1.UploadPackRequest{Source: replaySource(t)}); status.Code(err) != codes.PermissionDenied ||
		!strings.Contains(err.Error(), "default pack") {
		t.Errorf("a manager of one partnership uploading the default pack: %v", err)
	}
	// A pack uploaded by a manager of every partnership cannot be activated by one of another.
	up, err := e.client.UploadPack(e.token(t, auth.RoleManager), &rulesv1.UploadPackRequest{Source: src})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.ActivatePack(rctManager, &rulesv1.ActivatePackRequest{PackId: up.GetPack().GetId(), Reason: "x"}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("activating another partnership's pack: %v", err)
	}
	own := strings.Replace(replaySource(t), "partnership: default", "partnership: rhondda-cynon-taf", 1)
	mine, err := e.client.UploadPack(rctManager, &rulesv1.UploadPackRequest{Source: own})
	if err != nil {
		t.Fatalf("uploading its own partnership's pack: %v", err)
	}
	if _, err := e.client.ActivatePack(rctManager, &rulesv1.ActivatePackRequest{PackId: mine.GetPack().GetId(), Reason: "agreed"}); err != nil {
		t.Errorf("activating its own partnership's pack: %v", err)
	}
	list, err := e.client.ListPacks(every, &rulesv1.ListPacksRequest{Partnership: "merthyr-tydfil"})
	if err != nil || len(list.GetPacks()) != 1 || list.GetPacks()[0].GetActive() {
		t.Errorf("the refused activation changed merthyr-tydfil's packs: %v %v", list, err)
	}
}
