package notify_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/mash-hub/mash/pkg/auth"
	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
	notifyv1 "github.com/mash-hub/mash/proto/mash/notify/v1"
	rulesv1 "github.com/mash-hub/mash/proto/mash/rules/v1"
	"github.com/mash-hub/mash/services/notify/directory"
	"github.com/mash-hub/mash/services/notify/store"
)

// actionTo decides a new referral for children's social care and returns the settled
// ACTION notification to rct-csc.
func (e *env) actionTo(t *testing.T) store.Notification {
	t.Helper()
	ref := e.referral(t, noEncompass)
	e.decide(t, confirmed, ref, uuid.NewString(), 1, rulesv1.Level_LEVEL_3B, rulesv1.Rag_RAG_AMBER, "childrens_social_care")
	ns := e.settled(t, ref.GetId(), 2)
	got := ofKindTo(ns, "ACTION", "rct-csc")
	if len(got) != 1 || got[0].State != store.StateDelivered {
		t.Fatalf("action to rct-csc: %+v", summarise(ns))
	}
	return got[0]
}

// delivered reports whether r received notification id.
func delivered(r *receiver, id string) bool {
	for _, d := range r.deliveries() {
		if d.key == id {
			return true
		}
	}
	return false
}

// An admin or a manager moving an agency's webhook and rotating its secret changes nothing
// until a different manager approves: a referral decided meanwhile still goes to the old
// URL, signed with the old secret. The proposer cannot approve, nor can an admin. Once
// approved, deliveries go to the new URL with the new secret, the old contact gets a notice
// without personal data, and the trail has both acts with who and from where. The secret is
// shown once, never stored or returned in clear.
func TestDirectoryChangeNeedsASecondManager(t *testing.T) {
	e := newEnv(t)
	alice := e.token(t, "rct-mash", auth.RoleManager)
	bob := e.token(t, "rct-mash", auth.RoleManager)
	admin := e.token(t, "rct-mash", auth.RoleAdmin)
	moved := newReceiver(t)
	oldSecret := e.ag.social.secret

	// Alice proposes the new URL and a new secret over HTTP.
	code, body := httpDo(t, "PUT", e.httpURL+"/v1/agencies/rct-csc", alice, `{"agency":{"partnership":"rhondda-cynon-taf",
		"name":"RCT Children's Services duty team","roles":["childrens_social_care"],"channel":"WEBHOOK","url":"`+moved.srv.URL+`",
		"hours":{"start":"09:00","end":"17:00"},"outOfHours":"rct-edt"},"reason":"new case management system","rotateSecret":true}`)
	if code != 200 {
		t.Fatalf("propose: %d %s", code, body)
	}
	var put notifyv1.PutAgencyResponse
	if err := protojson.Unmarshal([]byte(body), &put); err != nil {
		t.Fatal(err)
	}
	change, newSecret := put.GetPendingChange(), put.GetSecret()
	if change.GetState() != notifyv1.DirectoryChangeState_DIRECTORY_CHANGE_PENDING || len(newSecret) != 64 || !change.GetRotatesSecret() ||
		change.GetProposedFrom() != "127.0.0.1" || change.GetProposedByRole() != "manager" || put.GetAgency().GetUrl() != e.ag.social.srv.URL {
		t.Fatalf("proposal: %s", body)
	}
	var fields []string
	for _, c := range change.GetChanges() {
		fields = append(fields, c.GetField())
	}
	if strings.Join(fields, ",") != "url,secret" {
		t.Fatalf("changed fields %v", fields)
	}

	// Until approved, a decision goes to the old URL, signed with the old secret.
	before := e.actionTo(t)
	if !delivered(e.ag.social, before.ID) || len(moved.deliveries()) != 0 {
		t.Fatalf("before approval: old endpoint got it %t, new endpoint got %d", delivered(e.ag.social, before.ID), len(moved.deliveries()))
	}

	// A second change to the same agency waits for the first.
	if _, err := e.client.PutAgency(bearer(admin), &notifyv1.PutAgencyRequest{Reason: "typo", Agency: &notifyv1.Agency{Id: "rct-csc",
		Partnership: partnership, Name: "CSC", Roles: []string{"childrens_social_care"}, Channel: notifyv1.ChannelKind_EMAIL, Email: "duty@csc.example"}}); status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), change.GetId()) {
		t.Fatalf("second proposal while one is pending: %v", err)
	}
	// A manager of another partnership may not decide it.
	_, elsewhere, err := e.auth.Create(context.Background(), "cwm-mash", "hub", auth.RoleManager, "test", "cwm-taf-morgannwg")
	if err != nil {
		t.Fatal(err)
	}
	if code, body := httpDo(t, "POST", e.httpURL+"/v1/agencies/rct-csc/changes/"+change.GetId()+"/approve", elsewhere, `{}`); code != 403 || !strings.Contains(body, partnership) {
		t.Fatalf("another partnership's manager approved: %d %s", code, body)
	}
	// Neither the proposer nor an admin may approve.
	for who, token := range map[string]string{"the proposer": alice, "an admin": admin} {
		code, body := httpDo(t, "POST", e.httpURL+"/v1/agencies/rct-csc/changes/"+change.GetId()+"/approve", token, `{}`)
		if code != 403 {
			t.Fatalf("%s approved: %d %s", who, code, body)
		}
	}
	// Staff see the pending change; no read returns a secret.
	code, body = httpDo(t, "GET", e.httpURL+"/v1/agencies/-/changes?state=PENDING", bob, "")
	if code != 200 || !strings.Contains(body, change.GetId()) || strings.Contains(body, newSecret) || strings.Contains(body, oldSecret) {
		t.Fatalf("pending list: %d %s", code, body)
	}

	// Bob approves.
	code, body = httpDo(t, "POST", e.httpURL+"/v1/agencies/rct-csc/changes/"+change.GetId()+"/approve", bob, `{"reason":"confirmed by phone with the CSC service manager"}`)
	if code != 200 || !strings.Contains(body, `"DIRECTORY_CHANGE_APPROVED"`) || !strings.Contains(body, `"decidedFrom":"127.0.0.1"`) ||
		strings.Contains(body, newSecret) {
		t.Fatalf("approve: %d %s", code, body)
	}
	var approved notifyv1.ApproveDirectoryChangeResponse
	if err := protojson.Unmarshal([]byte(body), &approved); err != nil {
		t.Fatal(err)
	}
	noticeID := approved.GetChange().GetPreviousContactNoticeId()
	if approved.GetAgency().GetUrl() != moved.srv.URL || noticeID == "" {
		t.Fatalf("approved: %s", body)
	}
	if code, body := httpDo(t, "POST", e.httpURL+"/v1/agencies/-/changes/"+change.GetId()+"/approve", bob, `{}`); code != 409 {
		t.Fatalf("approved twice: %d %s", code, body)
	}

	// Now deliveries go to the new URL, with the new secret.
	moved.secret = newSecret
	after := e.actionTo(t)
	if !delivered(moved, after.ID) || delivered(e.ag.social, after.ID) {
		t.Fatalf("after approval: new endpoint got it %t, old endpoint got it %t", delivered(moved, after.ID), delivered(e.ag.social, after.ID))
	}
	// The old contact was told, signed with the secret it holds, with no personal data.
	e.waitFor(t, "the notice to the old contact", func() bool { return len(e.ag.social.ofKind(notifyv1.NotificationKind_DIRECTORY_CHANGE)) == 1 })
	notice := e.ag.social.ofKind(notifyv1.NotificationKind_DIRECTORY_CHANGE)[0]
	child := example(t).GetChild()
	if notice.key != noticeID || notice.kind != "directory-change" || notice.msg.GetDirectoryChange().GetChangeId() != change.GetId() ||
		strings.Join(notice.msg.GetDirectoryChange().GetFields(), ",") != "url,secret" || notice.msg.GetReferralId() != "" ||
		strings.Contains(notice.body, child.GetNhsNumber()) || strings.Contains(notice.body, child.GetFamilyName()) || strings.Contains(notice.body, moved.srv.URL) {
		t.Fatalf("notice: %s", notice.body)
	}
	if len(moved.ofKind(notifyv1.NotificationKind_DIRECTORY_CHANGE)) != 0 {
		t.Fatal("the notice went to the new endpoint")
	}

	// Both acts, the rotation and the notice are events naming who and from where; none
	// carries a secret.
	e.waitFor(t, "the notice's event", func() bool { return len(e.streamEvents(t, "mash.directory.contact_notified")) == 1 })
	var proposed eventsv1.DirectoryChangeProposed
	var approval eventsv1.DirectoryChangeApproved
	var rotated eventsv1.AgencySecretRotated
	e.oneEvent(t, "mash.directory.change_proposed", &proposed, newSecret, oldSecret)
	e.oneEvent(t, "mash.directory.change_approved", &approval, newSecret, oldSecret)
	e.oneEvent(t, "mash.directory.secret_rotated", &rotated, newSecret, oldSecret)
	if p := proposed.GetChange(); p.GetId() != change.GetId() || !strings.HasPrefix(p.GetProposedBy(), "client:") || p.GetProposedFrom() != "127.0.0.1" {
		t.Fatalf("proposed event: %v", p)
	}
	if a := approval.GetChange(); a.GetDecidedBy() == a.GetProposedBy() || a.GetDecidedByRole() != "manager" || a.GetDecidedFrom() != "127.0.0.1" ||
		a.GetState() != notifyv1.DirectoryChangeState_DIRECTORY_CHANGE_APPROVED {
		t.Fatalf("approved event: %v", a)
	}
	if rotated.GetAgency() != "rct-csc" || rotated.GetApprovedBy() != approval.GetChange().GetDecidedBy() {
		t.Fatalf("rotation event: %v", &rotated)
	}

	// At rest: no clear secret in any column.
	assertNoClearSecrets(t, e, oldSecret, newSecret, e.ag.police.secret)
	// No read API returns a secret after it was shown.
	for _, path := range []string{"/v1/agencies?partnership=" + partnership, "/v1/agencies/rct-csc/changes", "/v1/agencies/-/changes"} {
		code, body := httpDo(t, "GET", e.httpURL+path, bob, "")
		if code != 200 || strings.Contains(body, newSecret) || strings.Contains(body, oldSecret) || !strings.Contains(body, "rct-csc") {
			t.Fatalf("GET %s: %d %s", path, code, body)
		}
	}
}

// oneEvent reads the single event of subject into m, failing if it carries any of secrets.
func (e *env) oneEvent(t *testing.T, subject string, m proto.Message, secrets ...string) {
	t.Helper()
	envs := e.streamEvents(t, subject)
	if len(envs) != 1 {
		t.Fatalf("%s: %d events, want 1", subject, len(envs))
	}
	raw, err := protoMarshalOpts(envs[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range secrets {
		if bytes.Contains(raw, []byte(secret)) {
			t.Fatalf("%s carries a secret", subject)
		}
	}
	if envs[0].GetReferralId() != "" {
		t.Fatalf("%s names referral %s", subject, envs[0].GetReferralId())
	}
	if err := envs[0].GetPayload().UnmarshalTo(m); err != nil {
		t.Fatal(err)
	}
}

// assertNoClearSecrets checks that no column of the notify schema that holds a secret
// holds one in clear: the old column is empty, and the sealed ones contain none of secrets.
func assertNoClearSecrets(t *testing.T, e *env, secrets ...string) {
	t.Helper()
	ctx := context.Background()
	var clear int
	if err := e.pool.QueryRow(ctx, `SELECT count(*) FROM notify.agencies WHERE secret IS NOT NULL`).Scan(&clear); err != nil || clear != 0 {
		t.Fatalf("%d agencies with a clear secret (%v)", clear, err)
	}
	rows, err := e.pool.Query(ctx, `SELECT secret_sealed FROM notify.agencies WHERE secret_sealed IS NOT NULL
		UNION ALL SELECT secret_sealed FROM notify.directory_proposals WHERE secret_sealed IS NOT NULL
		UNION ALL SELECT secret_sealed FROM notify.contact_notices WHERE secret_sealed IS NOT NULL
		UNION ALL SELECT convert_to(coalesce(before::text, '') || coalesce(after::text, ''), 'UTF8') FROM notify.directory_changes
		UNION ALL SELECT convert_to(proposed::text || changes::text, 'UTF8') FROM notify.directory_proposals`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			t.Fatal(err)
		}
		n++
		for _, secret := range secrets {
			if bytes.Contains(b, []byte(secret)) || bytes.Contains(b, []byte(strings.ToUpper(secret))) {
				t.Fatalf("a clear secret at rest: %q", b)
			}
		}
	}
	if rows.Err() != nil || n == 0 {
		t.Fatalf("read %d sealed values: %v", n, rows.Err())
	}
}

// A rejected change, and one nobody decides before it expires, change nothing: deliveries
// keep the old endpoint, and each outcome is an event. A reason is required to reject;
// admins may withdraw only their own proposals.
func TestRejectedAndExpiredChangesChangeNothing(t *testing.T) {
	e := newEnv(t)
	alice := e.token(t, "rct-mash", auth.RoleManager)
	bob := e.token(t, "rct-mash", auth.RoleManager)
	admin := e.token(t, "rct-mash", auth.RoleAdmin)
	elsewhere := newReceiver(t)
	propose := func(token string) *notifyv1.DirectoryChange {
		t.Helper()
		put, err := e.client.PutAgency(bearer(token), &notifyv1.PutAgencyRequest{Reason: "move", Agency: &notifyv1.Agency{Id: "rct-csc",
			Partnership: partnership, Name: "RCT Children's Services duty team", Roles: []string{"childrens_social_care"},
			Channel: notifyv1.ChannelKind_WEBHOOK, Url: elsewhere.srv.URL, Hours: &notifyv1.WorkingHours{Start: "09:00", End: "17:00"}, OutOfHours: "rct-edt"}})
		if err != nil || put.GetPendingChange() == nil {
			t.Fatalf("propose: %v %v", put, err)
		}
		return put.GetPendingChange()
	}

	first := propose(admin)
	if _, err := e.client.RejectDirectoryChange(bearer(bob), &notifyv1.RejectDirectoryChangeRequest{ChangeId: first.GetId()}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("reject without a reason: %v", err)
	}
	rej, err := e.client.RejectDirectoryChange(bearer(bob), &notifyv1.RejectDirectoryChangeRequest{ChangeId: first.GetId(), Reason: "not asked for by CSC"})
	if err != nil || rej.GetChange().GetState() != notifyv1.DirectoryChangeState_DIRECTORY_CHANGE_REJECTED || rej.GetChange().GetDecisionReason() != "not asked for by CSC" {
		t.Fatalf("reject: %v %v", rej, err)
	}
	if _, err := e.client.ApproveDirectoryChange(bearer(alice), &notifyv1.ApproveDirectoryChangeRequest{ChangeId: first.GetId()}); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("approve a rejected change: %v", err)
	}
	if n := e.actionTo(t); !delivered(e.ag.social, n.ID) || len(elsewhere.deliveries()) != 0 {
		t.Fatal("a rejected change took effect")
	}

	// An admin may not refuse a manager's proposal, only withdraw its own.
	second := propose(alice)
	if _, err := e.client.RejectDirectoryChange(bearer(admin), &notifyv1.RejectDirectoryChangeRequest{ChangeId: second.GetId(), Reason: "no"}); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("admin rejected a manager's change: %v", err)
	}
	// Past its expiry it can no longer be approved, and the sweep marks it expired.
	e.clock.Advance(73 * time.Hour)
	if _, err := e.client.ApproveDirectoryChange(bearer(bob), &notifyv1.ApproveDirectoryChangeRequest{ChangeId: second.GetId()}); status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("approve an expired change: %v", err)
	}
	if n, err := e.svc.ExpireChanges(context.Background()); err != nil || n != 1 {
		t.Fatalf("expire: %d %v", n, err)
	}
	list, err := e.client.ListDirectoryChanges(bearer(bob), &notifyv1.ListDirectoryChangesRequest{AgencyId: "rct-csc"})
	if err != nil || len(list.GetChanges()) != 2 || list.GetChanges()[0].GetState() != notifyv1.DirectoryChangeState_DIRECTORY_CHANGE_EXPIRED {
		t.Fatalf("changes: %v %v", list, err)
	}
	e.waitFor(t, "rejected and expired events", func() bool {
		return len(e.streamEvents(t, "mash.directory.change_rejected")) == 1 && len(e.streamEvents(t, "mash.directory.change_expired")) == 1
	})
	var rejected eventsv1.DirectoryChangeRejected
	e.oneEvent(t, "mash.directory.change_rejected", &rejected)
	if c := rejected.GetChange(); !strings.Contains(c.GetDecidedBy(), "manager") || c.GetDecidedFrom() == "" || !strings.Contains(c.GetProposedBy(), "admin") {
		t.Fatalf("rejected event: %v", c)
	}
	// Nothing changed: the agency is as it was, and a new proposal may be made.
	agencies, err := e.client.ListAgencies(bearer(bob), &notifyv1.ListAgenciesRequest{Partnership: partnership})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range agencies.GetAgencies() {
		if a.GetId() == "rct-csc" && a.GetUrl() != e.ag.social.srv.URL {
			t.Fatalf("rct-csc moved to %s", a.GetUrl())
		}
	}
	propose(alice)
}

// A change that decides nothing about who receives what applies at once, beside nothing
// pending: a team's new name or hours need no second pair of eyes.
func TestNameAndHoursApplyAtOnce(t *testing.T) {
	e := newEnv(t)
	alice := e.token(t, "rct-mash", auth.RoleManager)
	put, err := e.client.PutAgency(bearer(alice), &notifyv1.PutAgencyRequest{Reason: "renamed", Agency: &notifyv1.Agency{Id: "rct-csc",
		Partnership: partnership, Name: "Children's Services front door", Roles: []string{"childrens_social_care"},
		Channel: notifyv1.ChannelKind_WEBHOOK, Url: e.ag.social.srv.URL, Hours: &notifyv1.WorkingHours{Start: "08:30", End: "17:30"}, OutOfHours: "rct-edt"}})
	if err != nil || put.GetPendingChange() != nil || put.GetAgency().GetName() != "Children's Services front door" || put.GetAgency().GetHours().GetStart() != "08:30" ||
		!put.GetAgency().GetHasSecret() {
		t.Fatalf("rename: %v %v", put, err)
	}
	if n := e.actionTo(t); !delivered(e.ag.social, n.ID) {
		t.Fatal("delivery after a rename")
	}
}

// Secrets stored in clear before sealing existed are sealed when notify starts, and still
// sign deliveries.
func TestClearSecretsAreSealedAtStart(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.pool.Exec(ctx, `UPDATE notify.agencies SET secret = $1, secret_sealed = NULL WHERE id = 'rct-csc'`, []byte(e.ag.social.secret)); err != nil {
		t.Fatal(err)
	}
	e.restart()
	e.waitFor(t, "the clear secret sealed", func() bool {
		var n int
		return e.pool.QueryRow(ctx, `SELECT count(*) FROM notify.agencies WHERE secret IS NOT NULL`).Scan(&n) == nil && n == 0
	})
	assertNoClearSecrets(t, e, e.ag.social.secret)
	var sealed []byte
	if err := e.pool.QueryRow(ctx, `SELECT secret_sealed FROM notify.agencies WHERE id = 'rct-csc'`).Scan(&sealed); err != nil || len(sealed) == 0 {
		t.Fatalf("sealed: %x %v", sealed, err)
	}
	if n := e.actionTo(t); !delivered(e.ag.social, n.ID) {
		t.Fatal("the sealed secret no longer signs deliveries")
	}
}

// Loading the directory file into an empty directory applies it; a later load that moves an
// existing agency, or adds one, proposes the change instead of applying it, once however
// often the file is loaded, and a manager approves it.
func TestDirectoryFileChangesNeedApproval(t *testing.T) {
	e := newEnv(t)
	moved := newReceiver(t)
	f := directory.File{Agencies: []directory.Agency{
		{ID: "rct-csc", Partnership: partnership, Name: "RCT Children's Services duty team", Roles: []string{"childrens_social_care"}, Channel: "webhook",
			URL: moved.srv.URL, Secret: []byte(moved.secret), HoursStart: "09:00", HoursEnd: "17:00", OutOfHours: "rct-edt"},
		{ID: "rct-yjs", Partnership: partnership, Name: "Youth justice", Roles: []string{"youth_justice"}, Channel: "nats"},
	}}
	for i := range f.Agencies {
		f.Agencies[i].Normalise()
	}
	for range 2 {
		if err := e.svc.LoadDirectory(context.Background(), f, "file:directory.yaml"); err != nil {
			t.Fatal(err)
		}
	}
	manager := e.token(t, "rct-mash", auth.RoleManager)
	list, err := e.client.ListDirectoryChanges(bearer(manager), &notifyv1.ListDirectoryChangesRequest{State: notifyv1.DirectoryChangeState_DIRECTORY_CHANGE_PENDING})
	if err != nil || len(list.GetChanges()) != 2 {
		t.Fatalf("pending after two loads: %v %v", list, err)
	}
	for _, c := range list.GetChanges() {
		if c.GetProposedBy() != "file:directory.yaml" || c.GetProposedByRole() != auth.ActorRoleSystem || (c.GetAgencyId() == "rct-yjs") != c.GetNewAgency() {
			t.Fatalf("proposal: %v", c)
		}
	}
	if n := e.actionTo(t); !delivered(e.ag.social, n.ID) || len(moved.deliveries()) != 0 {
		t.Fatal("the file moved an agency without approval")
	}
	e.approvePending(t)
	if n := e.actionTo(t); !delivered(moved, n.ID) {
		t.Fatal("the approved file change did not take effect")
	}
}

// Managers proposing the same new agency at once: one proposal is made, the others are told
// which change is pending; none fails otherwise.
func TestConcurrentProposalsMakeOnePendingChange(t *testing.T) {
	e := newEnv(t)
	tokens := []string{e.token(t, "rct-mash", auth.RoleManager), e.token(t, "rct-mash", auth.RoleManager),
		e.token(t, "rct-mash", auth.RoleManager), e.token(t, "rct-mash", auth.RoleAdmin)}
	errs := make(chan error, len(tokens))
	start := make(chan struct{})
	for _, tok := range tokens {
		go func() {
			<-start
			_, err := e.client.PutAgency(bearer(tok), &notifyv1.PutAgencyRequest{Reason: "CAMHS joins", RotateSecret: true, Agency: &notifyv1.Agency{
				Id: "rct-camhs", Partnership: partnership, Name: "CAMHS", Roles: []string{"camhs"}, Channel: notifyv1.ChannelKind_WEBHOOK, Url: "https://camhs.example.test/hook"}})
			errs <- err
		}()
	}
	close(start)
	made := 0
	for range tokens {
		switch err := <-errs; {
		case err == nil:
			made++
		case status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "pending change"):
			t.Errorf("concurrent proposal: %v", err)
		}
	}
	list, err := e.client.ListDirectoryChanges(bearer(tokens[0]), &notifyv1.ListDirectoryChangesRequest{AgencyId: "rct-camhs"})
	if err != nil || made != 1 || len(list.GetChanges()) != 1 {
		t.Fatalf("%d proposals made, %d stored (%v)", made, len(list.GetChanges()), err)
	}
}
