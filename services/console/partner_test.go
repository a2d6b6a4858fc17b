package console

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/mash-hub/mash/pkg/auth"
	notifyv1 "github.com/mash-hub/mash/proto/mash/notify/v1"
	triagev1 "github.com/mash-hub/mash/proto/mash/triage/v1"
)

// The fake services answer a partner as the real ones do for the parts the console relies
// on; the scoping itself is proven against the real services (notify and triage tests).

func (f *fakeTriage) ListInformationRequests(ctx context.Context, req *triagev1.ListInformationRequestsRequest, _ ...grpc.CallOption) (*triagev1.ListInformationRequestsResponse, error) {
	f.note(ctx)
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*triagev1.InformationRequest
	for _, r := range f.infoOf(caseOne) {
		if (req.GetReferralId() == "" || r.GetReferralId() == req.GetReferralId()) && (req.GetAgency() == "" || r.GetAgency() == req.GetAgency()) {
			out = append(out, r)
		}
	}
	return &triagev1.ListInformationRequestsResponse{Requests: out}, nil
}

func (f *fakeTriage) RaiseDisagreement(ctx context.Context, req *triagev1.RaiseDisagreementRequest, _ ...grpc.CallOption) (*triagev1.RaiseDisagreementResponse, error) {
	f.note(ctx)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.raised = append(f.raised, proto.Clone(req).(*triagev1.RaiseDisagreementRequest))
	return &triagev1.RaiseDisagreementResponse{Disagreement: &triagev1.Disagreement{Id: "d-new", ReferralId: req.GetReferralId()}}, nil
}

// fakeInbox holds the message of each notification the partner's agency was sent.
type fakeInbox struct {
	notifyv1.AgencyInboxServiceClient
	messages map[string]*notifyv1.GetNotificationMessageResponse
}

func (f *fakeInbox) GetNotificationMessage(ctx context.Context, req *notifyv1.GetNotificationMessageRequest, _ ...grpc.CallOption) (*notifyv1.GetNotificationMessageResponse, error) {
	m, ok := f.messages[req.GetNotificationId()]
	if !ok {
		return nil, status.Error(codes.NotFound, "notification "+req.GetNotificationId()+" not found")
	}
	return m, nil
}

// partnerEnv is newEnv with a police partner account and its inbox.
func partnerEnv(t *testing.T) *env {
	t.Helper()
	e := newEnv(t)
	if err := e.svc.CreateAccountOfKind(context.Background(), "pc.evans", "PC Evans", auth.RolePartner, "police", "police", testPassword); err != nil {
		t.Fatal(err)
	}
	e.svc.b.Inbox = &fakeInbox{messages: map[string]*notifyv1.GetNotificationMessageResponse{
		"n-ok": {Notification: &notifyv1.Notification{Id: "n-ok", ReferralId: caseOne, Reference: "MASH-2026-000001", Agency: "police",
			Kind: notifyv1.NotificationKind_ACTION, State: notifyv1.NotificationState_DELIVERED, CreatedAt: ts(fixtureNow)},
			Message: &notifyv1.AgencyMessage{NotificationId: "n-ok", Kind: notifyv1.NotificationKind_ACTION, Agency: "police", Role: "police",
				Decision: &notifyv1.DecisionSummary{Level: "LEVEL_4", Rag: "RED", Status: "CONFIRMED", Reason: "Injury seen by the school nurse"},
				Child:    &notifyv1.ChildSummary{GivenName: "Ffion", FamilyName: "Test", DateOfBirth: "2019-04-01"},
				Share:    &notifyv1.ShareBasis{LawfulBasis: "UK GDPR Art 6(1)(e)", ConsentStatus: "NOT_SOUGHT"}}},
		"n-resolved": {Notification: &notifyv1.Notification{Id: "n-resolved", ReferralId: caseOne, Reference: "MASH-2026-000001", Agency: "police",
			Kind: notifyv1.NotificationKind_DISAGREEMENT, State: notifyv1.NotificationState_DELIVERED, CreatedAt: ts(fixtureNow)},
			Message: &notifyv1.AgencyMessage{NotificationId: "n-resolved", Kind: notifyv1.NotificationKind_DISAGREEMENT, Agency: "police",
				Disagreement: &notifyv1.DisagreementSummary{DisagreementId: disagreeOverdue, RaisedByAgency: "police", Reason: "A strategy discussion is needed",
					Stage: "PARTNERSHIP", Resolution: "The partnership agreed a strategy discussion today."}}},
	}}
	e.notify.extra = []*notifyv1.Notification{{Id: "n-resolved", ReferralId: caseOne, Reference: "MASH-2026-000001", Agency: "police",
		Kind: notifyv1.NotificationKind_DISAGREEMENT, State: notifyv1.NotificationState_DELIVERED, CreatedAt: ts(fixtureNow)}}
	return e
}

// The email's link opens the partner view after sign-in, back at the referral it named.
func TestEmailLinkSignsAPartnerInToTheReferral(t *testing.T) {
	t.Parallel()
	e := partnerEnv(t)
	c := e.client(t)
	code, _, h := get(t, c, e.srv.URL+"/referrals/"+caseOne)
	if code != http.StatusSeeOther || h.Get("Location") != "/console/referrals/"+caseOne {
		t.Fatalf("email link: %d to %q", code, h.Get("Location"))
	}
	code, _, h = get(t, c, e.srv.URL+h.Get("Location"))
	next := "/console/referrals/" + caseOne
	if code != http.StatusSeeOther || h.Get("Location") != "/console/sign-in?next="+url.QueryEscape(next) {
		t.Fatalf("signed out: %d to %q", code, h.Get("Location"))
	}
	_, body, _ := get(t, c, e.srv.URL+h.Get("Location"))
	if !strings.Contains(body, `value="`+next+`"`) {
		t.Fatal("the sign-in form does not carry the link back")
	}
	code, _, h = post(t, c, e.srv.URL+"/console/sign-in", url.Values{"csrf": {csrfOf(t, body)}, "username": {"pc.evans"}, "password": {testPassword}, "next": {next}})
	if code != http.StatusSeeOther || h.Get("Location") != next {
		t.Fatalf("sign in: %d to %q", code, h.Get("Location"))
	}
	code, _, h = get(t, c, e.srv.URL+next)
	if code != http.StatusSeeOther || h.Get("Location") != "/console/partner/referrals/"+caseOne {
		t.Fatalf("a partner at the link: %d to %q", code, h.Get("Location"))
	}
	code, body, _ = get(t, c, e.srv.URL+h.Get("Location"))
	if code != http.StatusOK || !strings.Contains(body, "Injury seen by the school nurse") || !strings.Contains(body, "Ffion Test") ||
		!strings.Contains(body, `id="ack-form-n-ok"`) || !strings.Contains(body, `id="raise-form"`) ||
		!strings.Contains(body, "The partnership agreed a strategy discussion today.") || strings.Contains(body, `id="ack-form-n-resolved"`) {
		t.Fatalf("partner referral page: %d\n%s", code, body)
	}
	// The person's session is its agency's: kind police, role partner.
	u, _ := url.Parse(e.srv.URL)
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == SessionCookie {
			id, err := e.auth.Authenticate(context.Background(), ck.Value)
			if err != nil || id.Role != auth.RolePartner || id.Agency != "police" || id.Kind != "police" || !id.AgencyScoped() {
				t.Fatalf("partner session: %+v %v", id, err)
			}
		}
	}
	// Acknowledge, answer, raise: each reaches the service as the person.
	code, _, h = post(t, c, e.srv.URL+"/console/partner/referrals/"+caseOne+"/disagreements", url.Values{"csrf": {csrfOf(t, body)}, "reason": {"  "}})
	if code != http.StatusBadRequest {
		t.Fatalf("an empty disagreement: %d", code)
	}
	code, _, h = post(t, c, e.srv.URL+"/console/partner/referrals/"+caseOne+"/disagreements", url.Values{"csrf": {csrfOf(t, body)}, "reason": {"Level 4 is needed."}})
	if code != http.StatusSeeOther || !strings.HasSuffix(h.Get("Location"), "done=disagreement_raised") || len(e.triage.raised) != 1 ||
		e.triage.raised[0].GetReason() != "Level 4 is needed." {
		t.Fatalf("raise: %d %q %v", code, h.Get("Location"), e.triage.raised)
	}
	code, _, h = post(t, c, e.srv.URL+"/console/partner/referrals/"+caseOne+"/information-requests/"+infoOpen+"/answer", url.Values{"csrf": {csrfOf(t, body)}, "answer": {"Known since 2024."}})
	if code != http.StatusSeeOther || e.triage.answered != 1 || e.triage.info[infoOpen].GetAnsweredBy() != "user:pc.evans" {
		t.Fatalf("answer: %d %q", code, h.Get("Location"))
	}
}

// A partner reaches none of the hub's screens, and hub staff none of the partner view.
func TestPartnerAndHubScreensAreApart(t *testing.T) {
	t.Parallel()
	e := partnerEnv(t)
	pc := e.signInTo(t, "pc.evans", "/console/partner")
	for _, p := range []string{"/console/queue", "/console/cases/" + caseOne, "/console/notifications", "/console/disagreements",
		"/console/dashboard", "/console/dashboard.csv", "/console/audit", "/console/packs"} {
		if code, _, _ := get(t, pc, e.srv.URL+p); code != http.StatusForbidden {
			t.Errorf("a partner at %s: %d, want 403", p, code)
		}
	}
	code, body, _ := get(t, pc, e.srv.URL+"/console/")
	if code != http.StatusSeeOther {
		t.Fatalf("home: %d", code)
	}
	code, body, _ = get(t, pc, e.srv.URL+"/console/partner")
	if code != http.StatusOK || !strings.Contains(body, `href="/console/partner"`) || strings.Contains(body, `href="/console/queue"`) {
		t.Fatalf("partner inbox: %d\n%s", code, body)
	}
	// In Welsh too.
	pc.Jar.SetCookies(mustURL(t, e.srv.URL), []*http.Cookie{{Name: LangCookie, Value: "cy"}})
	if _, body, _ := get(t, pc, e.srv.URL+"/console/partner"); !strings.Contains(body, "Wedi&#39;u hanfon at police") {
		t.Fatalf("Welsh partner inbox:\n%s", body)
	}
	// A referral the agency has nothing about is not found.
	e.svc.b.Inbox = &fakeInbox{}
	if code, _, _ := get(t, pc, e.srv.URL+"/console/partner/referrals/0192a3b4-0000-7000-8000-000000000003"); code != http.StatusNotFound {
		t.Fatalf("a referral the partner's agency has nothing about: %d", code)
	}

	mgr := e.signIn(t, "manager1")
	if code, _, _ := get(t, mgr, e.srv.URL+"/console/partner"); code != http.StatusForbidden {
		t.Fatalf("a manager at the partner view: %d", code)
	}
	if code, _, h := get(t, mgr, e.srv.URL+"/console/referrals/"+caseOne); code != http.StatusSeeOther || h.Get("Location") != "/console/cases/"+caseOne {
		t.Fatalf("a manager at the email link: %d %q", code, h.Get("Location"))
	}
}

// signInTo signs in and expects to land at next.
func (e *env) signInTo(t *testing.T, username, next string) *http.Client {
	t.Helper()
	c := e.client(t)
	_, body, _ := get(t, c, e.srv.URL+"/console/sign-in")
	code, _, h := post(t, c, e.srv.URL+"/console/sign-in", url.Values{"csrf": {csrfOf(t, body)}, "username": {username}, "password": {testPassword}, "next": {next}})
	if code != http.StatusSeeOther || h.Get("Location") != next {
		t.Fatalf("sign in %s: %d to %q", username, code, h.Get("Location"))
	}
	return c
}

// Partner accounts belong to a partner agency with the partner role; hub accounts never
// hold it.
func TestPartnerAccountsNeedTheirAgencysKind(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	for _, c := range []struct {
		name, agency, kind string
		role               auth.Role
		want               string
	}{
		{"hub-partner", "rct-mash", "hub", auth.RolePartner, "kind"},
		{"police-manager", "south-wales-police", "police", auth.RoleManager, "role"},
		{"bad-kind", "south-wales-police", "constabulary", auth.RolePartner, "kind"},
		{"bad-agency", "South Wales Police", "police", auth.RolePartner, "agency"},
		{"referrer", "south-wales-police", "hub", auth.RoleReferrer, "role"},
	} {
		err := e.svc.CreateAccountOfKind(ctx, c.name, "Someone", c.role, c.agency, c.kind, testPassword)
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error naming %s", c.name, err, c.want)
		}
	}
	if err := e.svc.CreateAccountOfKind(ctx, "dc.jones", "DC Jones", auth.RolePartner, "south-wales-police", "police", testPassword); err != nil {
		t.Fatal(err)
	}
}

// Single sign-on maps a partner group to its agency and the partner role; a staff role
// wins, and two partner agencies are refused.
func TestOIDCPartnerMap(t *testing.T) {
	t.Parallel()
	m, err := ParsePartnerMap("swp-ppu=south-wales-police/police, ctm-hv=cwm-taf-health/health")
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"x=south-wales-police", "x=rct-mash/hub", "x=South/police", "=a/police", "x=a/constabulary"} {
		if _, err := ParsePartnerMap(bad); err == nil {
			t.Errorf("partner map %q accepted", bad)
		}
	}
	cfg := OIDCConfig{RoleClaim: "groups", PartnerMap: m, RoleMap: map[string]auth.Role{"mash-managers": auth.RoleManager}}
	p, err := personFromClaims(cfg, map[string]any{"groups": []any{"swp-ppu", "all-staff"}, "name": "PC Evans"}, "sub-1", "rct-mash")
	if err != nil || p.role != auth.RolePartner || p.agency != "south-wales-police" || p.kind != "police" {
		t.Fatalf("partner from claims: %+v %v", p, err)
	}
	p, err = personFromClaims(cfg, map[string]any{"groups": []any{"swp-ppu", "mash-managers"}}, "sub-2", "rct-mash")
	if err != nil || p.role != auth.RoleManager || p.agency != "rct-mash" || p.kind != auth.StaffKind {
		t.Fatalf("staff and partner groups: %+v %v", p, err)
	}
	if _, err := personFromClaims(cfg, map[string]any{"groups": []any{"swp-ppu", "ctm-hv"}}, "sub-3", "rct-mash"); err == nil {
		t.Fatal("a person in two partner agencies' groups was let in")
	}
}

// Hub staff who work cases raise a disagreement on a decided case; others cannot.
func TestHubStaffRaiseADisagreementOnTheCase(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.triage.mu.Lock()
	e.triage.cases[caseOne].State = triagev1.CaseState_DECIDED
	e.triage.mu.Unlock()
	c := e.signIn(t, "practitioner1")
	code, body, _ := get(t, c, e.srv.URL+"/console/cases/"+caseOne)
	if code != http.StatusOK || !strings.Contains(body, `id="raise-form"`) {
		t.Fatalf("case page: %d, raise form shown: %v", code, strings.Contains(body, `id="raise-form"`))
	}
	code, body, _ = post(t, c, e.srv.URL+"/console/cases/"+caseOne+"/disagreements", url.Values{"csrf": {csrfOf(t, body)}, "disagree_reason": {" "}})
	if code != http.StatusBadRequest || !strings.Contains(body, "Enter what is disagreed with, and why") || !strings.Contains(body, `<details open id="raise">`) {
		t.Fatalf("empty reason: %d", code)
	}
	code, _, h := post(t, c, e.srv.URL+"/console/cases/"+caseOne+"/disagreements", url.Values{"csrf": {csrfOf(t, body)},
		"disagree_reason": {"Health visiting should lead."}})
	if code != http.StatusSeeOther || !strings.HasSuffix(h.Get("Location"), "done=disagreement_raised") || len(e.triage.raised) != 1 ||
		e.triage.raised[0].GetReferralId() != caseOne {
		t.Fatalf("raise: %d %q %v", code, h.Get("Location"), e.triage.raised)
	}
	aud := e.signIn(t, "auditor1")
	_, body, _ = get(t, aud, e.srv.URL+"/console/cases/"+caseOne)
	if strings.Contains(body, `id="raise-form"`) {
		t.Fatal("an auditor is offered the raise form")
	}
	if code, _, _ := post(t, aud, e.srv.URL+"/console/cases/"+caseOne+"/disagreements", url.Values{"csrf": {csrfOf(t, body)}, "disagree_reason": {"x"}}); code != http.StatusForbidden {
		t.Fatalf("an auditor raising: %d", code)
	}
}

// A bad partner map stops start-up naming the setting; a good one reaches the OIDC config.
func TestPartnerMapFromEnvironment(t *testing.T) {
	t.Parallel()
	env := func(v string) func(string) (string, bool) {
		return func(k string) (string, bool) {
			if k == EnvOIDCPartnerMap {
				return v, true
			}
			return "", false
		}
	}
	if _, err := ConfigFromEnv(env("swp-ppu=south-wales-police")); err == nil || !strings.Contains(err.Error(), EnvOIDCPartnerMap) {
		t.Fatalf("bad partner map: %v, want an error naming %s", err, EnvOIDCPartnerMap)
	}
	c, err := ConfigFromEnv(env("swp-ppu=south-wales-police/police"))
	if err != nil || c.OIDC.PartnerMap["swp-ppu"] != (PartnerAgency{Agency: "south-wales-police", Kind: "police"}) {
		t.Fatalf("partner map: %+v %v", c.OIDC.PartnerMap, err)
	}
}

// A partner agency's person signs in through the council's provider: the group maps to their
// agency and the partner role, and the session is that agency's alone.
func TestPartnerSignsInThroughTheProvider(t *testing.T) {
	t.Parallel()
	idp := newIdentityProvider(t)
	e := newOIDCEnv(t, idp)
	idp.claims = map[string]any{"sub": "swp-1234", "name": "DC Morgan", "groups": []string{"everyone", "swp-ppu"}, "agency": "rct-mash"}
	c, _ := signInThrough(t, e)
	var token string
	for _, ck := range c.Jar.Cookies(mustURL(t, e.srv.URL)) {
		if ck.Name == SessionCookie {
			token = ck.Value
		}
	}
	id, err := e.auth.Authenticate(context.Background(), token)
	if err != nil || id.Role != auth.RolePartner || id.Agency != "south-wales-police" || id.Kind != "police" || id.Name != "DC Morgan" {
		t.Fatalf("partner through single sign-on: %+v %v", id, err)
	}
	if code, _, _ := get(t, c, e.srv.URL+"/console/queue"); code != http.StatusForbidden {
		t.Fatalf("a partner at the queue: %d", code)
	}
	if code, _, h := get(t, c, e.srv.URL+"/console/"); code != http.StatusSeeOther || h.Get("Location") != "/console/partner" {
		t.Fatalf("a partner's home: %d %q", code, h.Get("Location"))
	}
}
