package audit_test

import (
	"context"
	"testing"

	"github.com/mash-hub/mash/pkg/auth"
	auditv1 "github.com/mash-hub/mash/proto/mash/audit/v1"
)

// An auditor reads the trail, the reads and the unusual access of the partnerships they
// serve only: another partnership's entries are left out of every answer.
func TestAuditorsSeeOnlyTheirPartnerships(t *testing.T) {
	t.Parallel()
	w := newAccessWorld(t)
	api := w.e.svc.API()
	serving := func(p string) context.Context {
		return auth.WithIdentity(context.Background(), auth.Identity{ClientID: "client-aud-" + p, Agency: "hub", Kind: "hub",
			Role: auth.RoleAuditor, Partnerships: []string{p}})
	}
	own, other := serving("rct"), serving("cardiff")
	count := func(ctx context.Context) (trail, search, who, activity, unusual int) {
		tr, err := api.GetTrail(ctx, &auditv1.GetTrailRequest{ReferralId: w.referralID})
		if err != nil {
			t.Fatal(err)
		}
		se, err := api.SearchEntries(ctx, &auditv1.SearchEntriesRequest{Partnership: "rct", PageSize: 100})
		if err != nil {
			t.Fatal(err)
		}
		wh, err := api.WhoAccessed(ctx, &auditv1.WhoAccessedRequest{ReferralId: w.referralID})
		if err != nil {
			t.Fatal(err)
		}
		ac, err := api.UserActivity(ctx, &auditv1.UserActivityRequest{Actor: "c-b"})
		if err != nil {
			t.Fatal(err)
		}
		un, err := api.UnusualAccess(ctx, &auditv1.UnusualAccessRequest{})
		if err != nil {
			t.Fatal(err)
		}
		return len(tr.GetEntries()), len(se.GetEntries()), len(wh.GetAccesses()), len(ac.GetAccesses()), len(un.GetAccesses())
	}
	if tr, se, wh, ac, _ := count(own); tr == 0 || se == 0 || wh == 0 || ac == 0 {
		t.Fatalf("an auditor of the partnership: trail %d, search %d, who %d, activity %d", tr, se, wh, ac)
	}
	if tr, se, wh, ac, un := count(other); tr+se+wh+ac+un != 0 {
		t.Errorf("an auditor of another partnership: trail %d, search %d, who %d, activity %d, unusual %d", tr, se, wh, ac, un)
	}
}
