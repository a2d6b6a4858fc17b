package notify_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/mash-hub/mash/pkg/auth"
	rulesv1 "github.com/mash-hub/mash/proto/mash/rules/v1"
)

// A manager sets a partnership's acknowledgement deadlines through the API, with a reason:
// they apply to the next decision at once, are in the directory's change log and on the
// audit trail; a practitioner may read them but not change them, and a bad deadline is
// refused naming the field.
func TestAckDeadlinesThroughTheAPI(t *testing.T) {
	e := newEnv(t)
	manager := e.token(t, "rct-mash", auth.RoleManager)
	practitioner := e.token(t, "rct-mash", auth.RolePractitioner)
	url := e.httpURL + "/v1/partnerships/" + partnership + "/ack-deadlines"

	code, body := httpDo(t, "GET", url, practitioner, "")
	if code != http.StatusOK || !strings.Contains(body, `"within":"school-day"`) || !strings.Contains(body, `"redAckMinutes":60`) {
		t.Fatalf("read deadlines: %d %s", code, body)
	}
	put := `{"deadlines":[{"role":"school_dsl","rag":"*","within":"4h"},{"role":"police","rag":"red","within":"30m"}],"reason":"schools in this partnership staff a duty lead all day"}`
	if code, body := httpDo(t, "PUT", url, practitioner, put); code != http.StatusForbidden {
		t.Fatalf("practitioner set deadlines: %d %s", code, body)
	}
	for _, bad := range []struct{ body, field string }{
		{`{"deadlines":[{"role":"school_dsl","rag":"*","within":"next week"}],"reason":"x"}`, "deadlines[0]"},
		{`{"deadlines":[{"role":"police","rag":"PURPLE","within":"1h"}],"reason":"x"}`, "deadlines[0]"},
		{`{"deadlines":[{"role":"police","rag":"RED","within":"1h"}]}`, "reason"},
		{`{"redAckMinutes":5000,"reason":"x"}`, "redAckMinutes"},
	} {
		if code, body := httpDo(t, "PUT", url, manager, bad.body); code != http.StatusBadRequest || !strings.Contains(body, bad.field) {
			t.Errorf("%s: %d %s, want 400 naming %s", bad.body, code, body, bad.field)
		}
	}
	if code, body := httpDo(t, "PUT", e.httpURL+"/v1/partnerships/nowhere/ack-deadlines", manager, put); code != http.StatusNotFound {
		t.Errorf("unknown partnership: %d %s", code, body)
	}
	code, body = httpDo(t, "PUT", url, manager, put)
	if code != http.StatusOK || !strings.Contains(body, `"within":"4h"`) || !strings.Contains(body, `"rag":"RED"`) {
		t.Fatalf("set deadlines: %d %s", code, body)
	}

	// The next decision has them: the school within 4 hours, police Red within 30 minutes.
	ref := e.referral(t, noEncompass)
	e.decide(t, confirmed, ref, uuid.NewString(), 2, rulesv1.Level_LEVEL_4, rulesv1.Rag_RAG_RED, "police", "school_dsl")
	for _, n := range e.settled(t, ref.GetId(), 4) {
		if n.Kind != "ACTION" {
			continue
		}
		want := map[string]time.Duration{"school_dsl": 4 * time.Hour, "police": 30 * time.Minute}[n.Role]
		if n.AckDue == nil || n.AckDue.Sub(n.CreatedAt).Round(time.Minute) != want {
			t.Errorf("%s acknowledgement due %v after %v, want %s", n.Role, n.AckDue, n.CreatedAt, want)
		}
	}

	var changes int
	if err := e.pool.QueryRow(context.Background(), `SELECT count(*) FROM notify.directory_changes
		WHERE partnership = $1 AND change = 'partnership' AND reason LIKE 'schools in this partnership%' AND after->'ack_deadlines' @> '[{"within":"4h"}]'`,
		partnership).Scan(&changes); err != nil || changes != 1 {
		t.Errorf("change log rows: %d (%v), want 1", changes, err)
	}
	e.waitFor(t, "the act on the audit trail", func() bool { return len(e.streamEvents(t, "mash.admin.directory")) == 1 })
}
