package console

import (
	"context"
	"html"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"

	triagev1 "github.com/mash-hub/mash/proto/mash/triage/v1"
)

// The fixture's child records: one with two referrals, and a possible match of it.
const (
	recordA       = "0192a3b4-0000-7000-8000-0000000000a1"
	recordB       = "0192a3b4-0000-7000-8000-0000000000b2"
	referralOfA1  = "0192a3b4-0000-7000-8000-0000000000f1"
	referralOfA2  = "0192a3b4-0000-7000-8000-0000000000f2"
	refNumberOfA1 = "MASH-2026-0000101"
)

// fakeRecords is triage's records service: GetChild shows record A, and the corrections
// that reach it are recorded with the caller.
type fakeRecords struct {
	triagev1.RecordsServiceClient
	mu      sync.Mutex
	links   []*triagev1.LinkReferralRequest
	unlinks []*triagev1.UnlinkReferralRequest
	callers []string
}

func newFakeRecords() *fakeRecords { return &fakeRecords{} }

func (f *fakeRecords) GetChild(_ context.Context, req *triagev1.GetChildRequest, _ ...grpc.CallOption) (*triagev1.GetChildResponse, error) {
	if req.GetChildId() != recordA && req.GetChildId() != recordB {
		return nil, invalid("childId", "is not a child record")
	}
	resp := &triagev1.GetChildResponse{ChildId: req.GetChildId()}
	if req.GetChildId() == recordA {
		resp.Referrals = []*triagev1.SearchReferral{
			{ReferralId: referralOfA1, Reference: refNumberOfA1, ChildName: "Megan Evans", DateOfBirth: "2016-03-01", Postcode: "CF37 1AA",
				ReceivedAt: ts(fixtureNow.Add(-48 * time.Hour))},
			{ReferralId: referralOfA2, ChildName: "Megan Evans", DateOfBirth: "2016-03-01", Postcode: "CF37 1AA", ReceivedAt: ts(fixtureNow.Add(-2 * time.Hour))},
		}
		resp.PossibleMatches = []*triagev1.PossibleMatch{{ChildId: recordB, Name: "Megan Evans", DateOfBirth: "2016-03-01", Postcode: "CF10 2BB",
			ReferralCount: 1, Basis: "same name and date of birth, different postcode"}}
	}
	return resp, nil
}

func (f *fakeRecords) LinkReferral(ctx context.Context, req *triagev1.LinkReferralRequest, _ ...grpc.CallOption) (*triagev1.LinkReferralResponse, error) {
	if req.GetReason() == "" {
		return nil, invalid("reason", "is required: why the referral is about this child")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.links, f.callers = append(f.links, req), append(f.callers, callerOf(ctx))
	return &triagev1.LinkReferralResponse{Case: &triagev1.Case{ReferralId: req.GetReferralId(), ChildId: req.GetChildId()}}, nil
}

func (f *fakeRecords) UnlinkReferral(ctx context.Context, req *triagev1.UnlinkReferralRequest, _ ...grpc.CallOption) (*triagev1.UnlinkReferralResponse, error) {
	if req.GetReason() == "" {
		return nil, invalid("reason", "is required: why the referral is about another child")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.unlinks, f.callers = append(f.unlinks, req), append(f.callers, callerOf(ctx))
	return &triagev1.UnlinkReferralResponse{Case: &triagev1.Case{ReferralId: req.GetReferralId(), ChildId: "new"}}, nil
}

// A practitioner links one of a child record's referrals to a possible match of it from the
// record's page, with a reason: the console asks triage to link that referral to that
// record, as the practitioner, and says it was done; without a reason the service's refusal
// is shown beside the form, left open, and nothing is linked.
func TestLinkAReferralToAPossibleMatch(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.signIn(t, "practitioner1")
	code, body, _ := get(t, c, e.srv.URL+"/console/children/"+recordA)
	if code != http.StatusOK {
		t.Fatalf("child page: %d", code)
	}
	for _, want := range []string{`action="/console/children/` + recordB + `/link"`, `name="referral"`,
		`<option value="` + referralOfA1 + `">` + refNumberOfA1, "Move a referral to that record", "Link to that record"} {
		if !strings.Contains(body, want) {
			t.Fatalf("child page lacks %q:\n%s", want, body)
		}
	}
	csrf := csrfOf(t, body)
	link := e.srv.URL + "/console/children/" + recordB + "/link"

	code, body, _ = post(t, c, link, url.Values{"csrf": {csrf}, "child": {recordA}, "referral": {referralOfA1}, "reason": {""}})
	if code != http.StatusBadRequest || !strings.Contains(html.UnescapeString(body), "why the referral is about this child") ||
		!strings.Contains(body, `<details open><summary>Move a referral to that record`) {
		t.Fatalf("link without a reason: %d, want 400 with the reason's error and the form open:\n%s", code, body)
	}

	code, _, h := post(t, c, link, url.Values{"csrf": {csrf}, "child": {recordA}, "referral": {referralOfA1}, "reason": {"Same child: the school confirmed the move"}})
	if code != http.StatusSeeOther || h.Get("Location") != "/console/children/"+recordA+"?done=linked" {
		t.Fatalf("link: %d to %q", code, h.Get("Location"))
	}
	e.recs.mu.Lock()
	links, callers := e.recs.links, e.recs.callers
	e.recs.mu.Unlock()
	if len(links) != 1 || links[0].GetReferralId() != referralOfA1 || links[0].GetChildId() != recordB ||
		links[0].GetReason() != "Same child: the school confirmed the move" || !strings.HasPrefix(callers[0], "Bearer ") {
		t.Fatalf("links that reached triage: %v by %v", links, callers)
	}
	_, body, _ = get(t, c, e.srv.URL+"/console/children/"+recordA+"?done=linked")
	if !strings.Contains(body, "The referral was linked to the other record.") {
		t.Fatalf("no confirmation after the link:\n%s", body)
	}

	// In Welsh, the same form.
	setLang(t, e, c, "cy")
	_, body, _ = get(t, c, e.srv.URL+"/console/children/"+recordA)
	if !strings.Contains(html.UnescapeString(body), "Cysylltu â'r cofnod hwnnw") {
		t.Fatalf("Welsh child page lacks the link button:\n%s", body)
	}

	// One who may not correct child records cannot link.
	a := e.signIn(t, "auditor1")
	_, abody, _ := get(t, a, e.srv.URL+"/console/search")
	if code, _, _ := post(t, a, link, url.Values{"csrf": {csrfOf(t, abody)}, "child": {recordA}, "referral": {referralOfA2}, "reason": {"x"}}); code != http.StatusForbidden {
		t.Fatalf("auditor's link: %d, want 403", code)
	}
	e.recs.mu.Lock()
	defer e.recs.mu.Unlock()
	if len(e.recs.links) != 1 {
		t.Fatalf("%d links reached triage, want 1", len(e.recs.links))
	}
}

// A practitioner unlinks a referral from a child record onto a new one, with a reason.
func TestUnlinkAReferral(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.signIn(t, "practitioner1")
	code, body, _ := get(t, c, e.srv.URL+"/console/children/"+recordA)
	if code != http.StatusOK || !strings.Contains(body, `action="/console/cases/`+referralOfA2+`/child/unlink"`) {
		t.Fatalf("child page: %d, no unlink form for the second referral:\n%s", code, body)
	}
	csrf := csrfOf(t, body)
	unlink := e.srv.URL + "/console/cases/" + referralOfA2 + "/child/unlink"

	code, body, _ = post(t, c, unlink, url.Values{"csrf": {csrf}, "child": {recordA}, "reason": {""}})
	if code != http.StatusBadRequest || !strings.Contains(body, `<details open><summary>Unlink`) {
		t.Fatalf("unlink without a reason: %d, want 400 with the form open:\n%s", code, body)
	}
	code, _, h := post(t, c, unlink, url.Values{"csrf": {csrf}, "child": {recordA}, "reason": {"A different Megan"}})
	if code != http.StatusSeeOther || h.Get("Location") != "/console/children/"+recordA+"?done=unlinked" {
		t.Fatalf("unlink: %d to %q", code, h.Get("Location"))
	}
	e.recs.mu.Lock()
	defer e.recs.mu.Unlock()
	if len(e.recs.unlinks) != 1 || e.recs.unlinks[0].GetReferralId() != referralOfA2 || e.recs.unlinks[0].GetReason() != "A different Megan" {
		t.Fatalf("unlinks that reached triage: %v", e.recs.unlinks)
	}
}
