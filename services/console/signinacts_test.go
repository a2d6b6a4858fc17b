package console

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
)

// signInActs returns the sign-in acts waiting in the auth outbox, oldest first.
func signInActs(t *testing.T, e *env) []*eventsv1.AdminActRecorded {
	t.Helper()
	rows, err := e.pool.Query(context.Background(), `SELECT payload FROM auth.outbox WHERE subject = 'mash.admin.signin' ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []*eventsv1.AdminActRecorded
	for rows.Next() {
		var raw []byte
		if err := rows.Scan(&raw); err != nil {
			t.Fatal(err)
		}
		var env eventsv1.Envelope
		act := &eventsv1.AdminActRecorded{}
		if err := proto.Unmarshal(raw, &env); err != nil || env.GetPayload().UnmarshalTo(act) != nil {
			t.Fatalf("outbox row is not an admin act: %v", err)
		}
		out = append(out, act)
	}
	return out
}

// A sign-in is an administrative act on the trail: who, in what role, from where.
func TestSignInIsAnAdminAct(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.signIn(t, "auditor1")
	acts := signInActs(t, e)
	if len(acts) != 1 {
		t.Fatalf("%d sign-in acts, want 1", len(acts))
	}
	a := acts[0]
	if a.GetAction() != "signin.succeeded" || a.GetActor() != "user:auditor1" || a.GetOutcome() != "succeeded" || a.GetClientAddress() == "" {
		t.Fatalf("sign-in act %v", a)
	}
}

// A failed sign-in is on the trail too, with the account tried (in the sealed payload) and
// where from.
func TestFailedSignInIsAnAdminAct(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client(t)
	_, body, _ := get(t, c, e.srv.URL+"/console/sign-in")
	if code, _, _ := post(t, c, e.srv.URL+"/console/sign-in", url.Values{"csrf": {csrfOf(t, body)}, "username": {"auditor1"},
		"password": {"not the password at all"}}); code != http.StatusUnauthorized {
		t.Fatalf("wrong password: %d", code)
	}
	acts := signInActs(t, e)
	if len(acts) != 1 {
		t.Fatalf("%d sign-in acts, want 1", len(acts))
	}
	a := acts[0]
	if a.GetAction() != "signin.failed" || a.GetActor() != "anonymous" || a.GetOutcome() != "refused" ||
		!strings.Contains(a.GetDetail(), "bad_credentials") || !strings.Contains(a.GetDetail(), "auditor1") || a.GetClientAddress() == "" {
		t.Fatalf("failed sign-in act %v", a)
	}
}
