package intake_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mash-hub/mash/pkg/auth"
)

// A partner agency's person, signed in to the console, reads its own agency's referrals
// only, as the agency's system does, and cannot submit one.
func TestPartnerSeesOnlyItsAgencysReferrals(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	swp := e.credential(t, "south-wales-police", "police", auth.RoleReferrer)
	partner := func(agency string) string {
		_, token, err := e.auth.CreateSessionOfKind(context.Background(), "p."+agency, "Partner", auth.RolePartner, agency, "police", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return token
	}
	code, body := e.post(t, swp, string(exampleJSON(t)))
	if code != 201 {
		t.Fatal(code, body)
	}
	id := decode[ackJSON](t, body).ReferralID
	gwent := partner("gwent-police")
	if code, body := e.get(t, gwent, "/v1/referrals/"+id); code != 404 {
		t.Fatalf("another force's partner reading: %d %s, want 404", code, body)
	}
	if code, body := e.get(t, gwent, "/v1/referrals"); code != 200 || strings.Contains(body, id) {
		t.Fatalf("another force's partner listing: %d %s", code, body)
	}
	own := partner("south-wales-police")
	if code, body := e.get(t, own, "/v1/referrals/"+id); code != 200 {
		t.Fatalf("its own agency's partner reading: %d %s", code, body)
	}
	if code, body := e.post(t, own, string(exampleJSON(t))); code != 403 {
		t.Fatalf("a partner submitting: %d %s, want 403", code, body)
	}
}
