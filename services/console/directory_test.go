package console

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// A manager sees pending directory changes with who proposed them and from where, may
// approve others' changes but is not offered their own, and must give a reason to reject.
// Practitioners, auditors and admins see the page but cannot decide. A refusal from notify (the proposer approving their own change, say) shows its message.
func TestDirectoryChangesInTheConsole(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	m := e.signIn(t, "manager1")
	code, body, _ := get(t, m, e.srv.URL+"/console/directory?partnership=rct")
	if code != http.StatusOK || !strings.Contains(body, `action="/console/directory/changes/c-other/approve"`) ||
		strings.Contains(body, `action="/console/directory/changes/c-own/approve"`) || !strings.Contains(body, "another manager must approve it") ||
		!strings.Contains(body, "Recently decided changes") || !strings.Contains(body, "mash.notify.south-wales-police") ||
		!strings.Contains(body, `<tr><th scope="row">police</th><td>RED</td><td>30m</td></tr>`) || !strings.Contains(body, "school-day (default)") {
		t.Fatalf("directory page: %d\n%s", code, body)
	}
	csrf := csrfOf(t, body)
	for role, want := range map[string]int{"auditor1": http.StatusOK, "admin1": http.StatusOK, "practitioner1": http.StatusOK} {
		c := e.signIn(t, role)
		code, page, _ := get(t, c, e.srv.URL+"/console/directory")
		if code != want || strings.Contains(page, "Approve change") {
			t.Errorf("%s: %d, approve offered %t", role, code, strings.Contains(page, "Approve change"))
		}
		if code == http.StatusOK {
			if code, _, _ := post(t, c, e.srv.URL+"/console/directory/changes/c-other/approve", url.Values{"csrf": {csrfOf(t, page)}}); code != http.StatusForbidden {
				t.Errorf("%s approved: %d", role, code)
			}
		}
	}
	if len(e.notify.approved) != 0 {
		t.Fatalf("a decision reached notify: %v", e.notify.approved)
	}

	code, _, h := post(t, m, e.srv.URL+"/console/directory/changes/c-other/approve", url.Values{"csrf": {csrf}, "partnership": {"rct"}, "reason": {"rang CSC"}})
	if code != http.StatusSeeOther || !strings.Contains(h.Get("Location"), "done=change_approved") || len(e.notify.approved) != 1 || e.notify.approved[0] != "c-other: rang CSC" {
		t.Fatalf("approve: %d %q %v", code, h.Get("Location"), e.notify.approved)
	}
	code, page, _ := post(t, m, e.srv.URL+"/console/directory/changes/c-other/reject", url.Values{"csrf": {csrf}, "partnership": {"rct"}})
	if code != http.StatusBadRequest || !strings.Contains(page, "Enter why you are rejecting the change") || len(e.notify.rejected) != 0 {
		t.Fatalf("reject without a reason: %d %v", code, e.notify.rejected)
	}
	if code, _, _ := post(t, m, e.srv.URL+"/console/directory/changes/c-other/reject", url.Values{"csrf": {csrf}, "reason": {"not asked for"}}); code != http.StatusSeeOther ||
		len(e.notify.rejected) != 1 {
		t.Fatalf("reject: %d %v", code, e.notify.rejected)
	}
	e.notify.decideErr = status.Error(codes.PermissionDenied, "the proposer of a change cannot approve it: another manager must")
	code, page, _ = post(t, m, e.srv.URL+"/console/directory/changes/c-own/approve", url.Values{"csrf": {csrf}})
	if code != http.StatusForbidden || !strings.Contains(page, "the proposer of a change cannot approve it") || !strings.Contains(page, "Changes waiting for approval") {
		t.Fatalf("own change: %d\n%s", code, page)
	}
	e.notify.decideErr = status.Error(codes.FailedPrecondition, "directory change c-other is approved already")
	if code, page, _ := post(t, m, e.srv.URL+"/console/directory/changes/c-other/approve", url.Values{"csrf": {csrf}}); code != http.StatusConflict ||
		!strings.Contains(page, "is approved already") {
		t.Fatalf("decided meanwhile: %d", code)
	}
}
