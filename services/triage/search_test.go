package triage_test

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/mash-hub/mash/pkg/auth"
	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
	intakev1 "github.com/mash-hub/mash/proto/mash/intake/v1"
	rulesv1 "github.com/mash-hub/mash/proto/mash/rules/v1"
	triagev1 "github.com/mash-hub/mash/proto/mash/triage/v1"
	"github.com/mash-hub/mash/services/triage/store"
)

// kid is a synthetic child on a referral.
type kid struct {
	given, family, dob, nhs, postcode string
}

// about publishes a referral about k in partnership, received at, and the rules'
// recommendation linking it to childID, then waits for the case to carry both. It returns
// the referral id.
func (e *env) about(t testing.TB, k kid, partnership, childID, extRef string, at time.Time) string {
	t.Helper()
	id := uuid.NewString()
	sub := &intakev1.ReferralSubmission{ExternalReference: extRef, Partnership: partnership,
		Child: &intakev1.Child{GivenName: k.given, FamilyName: k.family, DateOfBirth: k.dob, NhsNumber: k.nhs,
			Address: &intakev1.Address{Line1: "1 Stryd Fawr", Town: "Pontypridd", Postcode: k.postcode}},
		Concerns: []*intakev1.Concern{{Category: intakev1.ConcernCategory_NEGLECT, Summary: "Synthetic.", ObservedAt: timestamppb.New(at.Add(-time.Hour))}}}
	e.receivedSubmission(t, id, "south-wales-police", at, sub)
	d := decision(id, partnership, 1, rulesv1.DecisionStatus_RECOMMENDED, rulesv1.Level_LEVEL_2, rulesv1.Rag_RAG_GREEN, at.Add(24*time.Hour), at.Add(72*time.Hour))
	d.ChildId = childID
	e.decided(t, d)
	e.waitCase(t, id, func(c store.Case) bool { return c.Received && c.ChildID == childID })
	return id
}

// hubCaller is a hub credential of role serving partnerships.
func (e *env) hubCaller(t testing.TB, role auth.Role, partnerships ...string) caller {
	t.Helper()
	c, token, err := e.auth.Create(context.Background(), "rct-mash", "hub", role, "test", partnerships...)
	if err != nil {
		t.Fatal(err)
	}
	return caller{ctx: metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+token), token: token, id: c.ClientID}
}

func referralIDsOf(rs []*triagev1.SearchReferral) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.GetReferralId())
	}
	return out
}

// Search finds children by name whatever the spelling, case, accents or Welsh letters, and
// by each identifier, saying what matched; it is limited to the searcher's partnerships.
func TestSearchFindsChildrenByEveryKey(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	records := e.records(t)
	sian := e.about(t, kid{"Siân", "Jones", "2015-04-02", "9434765919", "CF37 1AA"}, "rct", uuid.NewString(), "SWP-2026-11-000123", start)
	tomos := e.about(t, kid{"Tomos", "Johnson", "2012-09-30", "", "CF40 2BB"}, "rct", uuid.NewString(), "", start.Add(time.Minute))
	llyr := e.about(t, kid{"Llŷr", "ap Dafydd", "2019-01-15", "", "CF38 1XY"}, "rct", uuid.NewString(), "", start.Add(2*time.Minute))
	phoebe := e.about(t, kid{"Phoebe", "Smyth", "2014-06-06", "", "CF37 2ZZ"}, "rct", uuid.NewString(), "", start.Add(3*time.Minute))
	// Another partnership's child, with the same name as one of ours.
	other := e.about(t, kid{"Sian", "Jones", "2011-01-01", "", "CF10 1AA"}, "cardiff", uuid.NewString(), "", start.Add(4*time.Minute))

	rct := e.hubCaller(t, auth.RolePractitioner, "rct")
	every := e.hubCaller(t, auth.RolePractitioner, auth.AllPartnerships)
	ctx := metadata.AppendToOutgoingContext(rct.ctx, "x-access-reason", "Strategy discussion prep")
	cases := []struct {
		q    string
		want []string
		on   triagev1.MatchBasis
	}{
		{"Sian", []string{sian}, triagev1.MatchBasis_NAME},
		{"SIÂN jones", []string{sian}, triagev1.MatchBasis_NAME},
		{"jonson", []string{tomos}, triagev1.MatchBasis_NAME},
		{"Tomos Jonnson", []string{tomos}, triagev1.MatchBasis_NAME},
		{"llyr", []string{llyr}, triagev1.MatchBasis_NAME},
		{"Llyr ap Dafyd", []string{llyr}, triagev1.MatchBasis_NAME},
		{"Febe Smith", nil, triagev1.MatchBasis_NAME},                // too far from Phoebe Smyth to offer
		{"phoebe smith", []string{phoebe}, triagev1.MatchBasis_NAME}, // Smyth and Smith meet
		{"02/04/2015", []string{sian}, triagev1.MatchBasis_DATE_OF_BIRTH},
		{"2012-09-30", []string{tomos}, triagev1.MatchBasis_DATE_OF_BIRTH},
		{"943 476 5919", []string{sian}, triagev1.MatchBasis_NHS_NUMBER},
		{"cf371aa", []string{sian}, triagev1.MatchBasis_POSTCODE},
		{"CF40 2BB", []string{tomos}, triagev1.MatchBasis_POSTCODE},
		{"mash-test-" + llyr[:8], []string{llyr}, triagev1.MatchBasis_MASH_REFERENCE},
		{"swp-2026-11-000123", []string{sian}, triagev1.MatchBasis_EXTERNAL_REFERENCE},
		{"Jones 2015-04-02", []string{sian}, triagev1.MatchBasis_DATE_OF_BIRTH},
		{"Jones 2015-04-03", nil, triagev1.MatchBasis_DATE_OF_BIRTH}, // every key must match
	}
	for _, c := range cases {
		resp, err := records.Search(ctx, &triagev1.SearchRequest{Q: c.q})
		if err != nil {
			t.Fatalf("search %q: %v", c.q, err)
		}
		if got := referralIDsOf(resp.GetReferrals()); !slices.Equal(got, c.want) {
			t.Errorf("search %q found %v, want %v", c.q, got, c.want)
			continue
		}
		if !slices.Contains(resp.GetSearched(), c.on) {
			t.Errorf("search %q was read as %v, want %v among them", c.q, resp.GetSearched(), c.on)
		}
		for _, r := range resp.GetReferrals() {
			if !slices.Contains(r.GetMatchedOn(), c.on) || r.GetChildId() == "" {
				t.Errorf("search %q: result %v does not say it matched on %v", c.q, r, c.on)
			}
		}
		if len(c.want) > 0 && (len(resp.GetChildren()) != 1 || resp.GetChildren()[0].GetReferralCount() != 1) {
			t.Errorf("search %q: children %v, want the one child with its one referral", c.q, resp.GetChildren())
		}
	}
	// Each search, by whichever key, left one access entry: the searcher, the reason, the
	// key it was read as and what it showed, never the words searched for.
	acc := listAccesses(t, e, eventsv1.SubjectAccessSearch)
	if len(acc) != len(cases) {
		t.Fatalf("%d search access entries for %d searches, want one each", len(acc), len(cases))
	}
	for i, c := range cases {
		a := acc[i]
		var listed []string
		for _, l := range a.GetListed() {
			listed = append(listed, l.GetReferralId())
			if l.GetChildId() == "" {
				t.Errorf("search %q: access entry lists %s without its child", c.q, l.GetReferralId())
			}
		}
		slices.Sort(listed)
		want := slices.Sorted(slices.Values(c.want))
		if a.GetClientId() != rct.id || a.GetReason() != "Strategy discussion prep" || !slices.Equal(listed, want) ||
			!strings.Contains(a.GetAction(), strings.ToLower(c.on.String())) || !slices.Equal(a.GetReaderPartnerships(), []string{"rct"}) {
			t.Errorf("search %q: access entry %v, want %s's, with the reason, by %s, listing %v", c.q, a, rct.id, strings.ToLower(c.on.String()), want)
		}
		if c.on != triagev1.MatchBasis_MASH_REFERENCE && strings.Contains(strings.ToLower(a.String()), strings.ToLower(c.q)) {
			t.Errorf("search %q: the access entry carries the query: %v", c.q, a)
		}
	}
	// The same name across partnerships: only a searcher serving both sees both.
	all, err := records.Search(metadata.AppendToOutgoingContext(every.ctx, "x-access-reason", "audit"), &triagev1.SearchRequest{Q: "sian jones"})
	if err != nil {
		t.Fatal(err)
	}
	if got := referralIDsOf(all.GetReferrals()); len(got) != 2 || !slices.Contains(got, other) || !slices.Contains(got, sian) {
		t.Fatalf("a searcher of every partnership found %v, want %s and %s", got, sian, other)
	}
	// Asking for a partnership one does not serve is refused, naming the field.
	if _, err := records.Search(ctx, &triagev1.SearchRequest{Q: "sian", Partnership: "cardiff"}); status.Code(err) != codes.InvalidArgument ||
		!strings.Contains(err.Error(), "partnership") {
		t.Fatalf("search of another partnership: %v, want INVALID_ARGUMENT naming partnership", err)
	}
}

// Every search leaves one access entry with the searcher's reason, naming what it showed,
// even when it found nothing; a search without a reason is refused over HTTP, naming it.
func TestSearchLeavesAnAccessEntryWithItsReason(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	sian := e.about(t, kid{"Siân", "Jones", "2015-04-02", "", "CF37 1AA"}, "rct", uuid.NewString(), "", start)
	p := e.hubCaller(t, auth.RolePractitioner, "rct")

	code, _, body := httpDo(t, http.MethodGet, e.httpURL+"/v1/search?q=sian", p.token, "")
	if code != http.StatusBadRequest || !strings.Contains(body, `"reason"`) {
		t.Fatalf("search without a reason: HTTP %d %s, want 400 naming reason", code, body)
	}
	if acc := listAccesses(t, e, "mash.access.search"); len(acc) != 0 {
		t.Fatalf("a refused search left access entries: %v", acc)
	}
	q := url.Values{"q": {"Sian, Jones"}, "reason": {"Call from the school, 10:05"}}
	code, _, body = httpDo(t, http.MethodGet, e.httpURL+"/v1/search?"+q.Encode(), p.token, "")
	resp := fromJSON(t, code, body, &triagev1.SearchResponse{})
	if got := referralIDsOf(resp.GetReferrals()); !slices.Equal(got, []string{sian}) {
		t.Fatalf("HTTP search found %v, want %s", got, sian)
	}
	// A search that finds nothing is still a look for a child.
	if code, _, body := httpDo(t, http.MethodGet, e.httpURL+"/v1/search?q=Zebedee&reason=checking", p.token, ""); code != http.StatusOK {
		t.Fatalf("empty search: HTTP %d %s", code, body)
	}
	acc := listAccesses(t, e, "mash.access.search")
	if len(acc) != 2 {
		t.Fatalf("%d search access entries for two searches, want 2", len(acc))
	}
	a := acc[0]
	if a.GetClientId() != p.id || a.GetReason() != "Call from the school, 10:05" || a.GetAction() != "Search by name" ||
		len(a.GetListed()) != 1 || a.GetListed()[0].GetReferralId() != sian || a.GetListed()[0].GetChildId() == "" ||
		!slices.Equal(a.GetReaderPartnerships(), []string{"rct"}) {
		t.Fatalf("search access entry %v", a)
	}
	// The entry names what was searched by, never the words searched for.
	if strings.Contains(strings.ToLower(a.String()), "jones") {
		t.Fatalf("the access entry carries the query: %v", a)
	}
	if acc[1].GetReason() != "checking" || len(acc[1].GetListed()) != 0 {
		t.Fatalf("empty search's access entry %v", acc[1])
	}
	// Referrers may not search.
	ref := e.caller(t, auth.RoleReferrer, "south-wales-police")
	if code, _, _ := httpDo(t, http.MethodGet, e.httpURL+"/v1/search?q=sian&reason=x", ref.token, ""); code != http.StatusForbidden {
		t.Fatalf("a referrer's search: HTTP %d, want 403", code)
	}
}

// records is a RecordsService client on the env's server.
func (e *env) records(t testing.TB) triagev1.RecordsServiceClient {
	t.Helper()
	return triagev1.NewRecordsServiceClient(e.conn)
}

// A search for a household member's name (a parent's, a sibling's) finds the child's
// referrals, saying the match was on the household; the child's own name still matches as
// a name, and the search leaves its access entry.
func TestSearchFindsReferralsByHouseholdNames(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	records := e.records(t)
	id := uuid.NewString()
	sub := &intakev1.ReferralSubmission{Partnership: "rct",
		Child: &intakev1.Child{GivenName: "Dylan", FamilyName: "Evans", DateOfBirth: "2017-05-05",
			Address: &intakev1.Address{Line1: "1 Stryd Fawr", Town: "Pontypridd", Postcode: "CF37 1AA"}},
		Household: []*intakev1.HouseholdMember{
			{Relationship: intakev1.Relationship_MOTHER, GivenName: "Carys", FamilyName: "Morgan", LivesWithChild: true},
			{Relationship: intakev1.Relationship_MOTHERS_PARTNER, GivenName: "Gethin", FamilyName: "Prydderch"},
		},
		Concerns: []*intakev1.Concern{{Category: intakev1.ConcernCategory_NEGLECT, Summary: "Synthetic.", ObservedAt: timestamppb.New(start.Add(-time.Hour))}}}
	e.receivedSubmission(t, id, "south-wales-police", start, sub)
	childID := uuid.NewString()
	d := decision(id, "rct", 1, rulesv1.DecisionStatus_RECOMMENDED, rulesv1.Level_LEVEL_2, rulesv1.Rag_RAG_GREEN, start.Add(24*time.Hour), start.Add(72*time.Hour))
	d.ChildId = childID
	e.decided(t, d)
	e.waitCase(t, id, func(c store.Case) bool { return c.Received && c.ChildID == childID })
	// A child whose own name is the mother's: found as a name, ranked first.
	namesake := e.about(t, kid{"Carys", "Morgan", "2014-01-01", "", "CF40 2BB"}, "rct", uuid.NewString(), "", start.Add(time.Minute))

	p := e.hubCaller(t, auth.RolePractitioner, "rct")
	ctx := metadata.AppendToOutgoingContext(p.ctx, "x-access-reason", "Call from the health visitor")
	for _, c := range []struct {
		q    string
		want []string
		on   []triagev1.MatchBasis
	}{
		{"Carys Morgan", []string{namesake, id}, []triagev1.MatchBasis{triagev1.MatchBasis_NAME, triagev1.MatchBasis_HOUSEHOLD}},
		{"gethin prydderch", []string{id}, []triagev1.MatchBasis{triagev1.MatchBasis_HOUSEHOLD}},
		{"Gethin Pryderch CF37 1AA", []string{id}, []triagev1.MatchBasis{triagev1.MatchBasis_HOUSEHOLD}},
		{"Dylan Evans", []string{id}, []triagev1.MatchBasis{triagev1.MatchBasis_NAME}},
		// Words of two different members' names are not one person.
		{"Carys Prydderch", nil, nil},
	} {
		resp, err := records.Search(ctx, &triagev1.SearchRequest{Q: c.q})
		if err != nil {
			t.Fatalf("search %q: %v", c.q, err)
		}
		if got := referralIDsOf(resp.GetReferrals()); !slices.Equal(got, c.want) {
			t.Errorf("search %q found %v, want %v", c.q, got, c.want)
			continue
		}
		for i, r := range resp.GetReferrals() {
			if !slices.Contains(r.GetMatchedOn(), c.on[i]) {
				t.Errorf("search %q: result %d matched on %v, want %v", c.q, i, r.GetMatchedOn(), c.on[i])
			}
		}
		for _, ch := range resp.GetChildren() {
			if ch.GetChildId() == childID && !slices.Contains(ch.GetMatchedOn(), c.on[len(c.on)-1]) {
				t.Errorf("search %q: child matched on %v", c.q, ch.GetMatchedOn())
			}
		}
	}
	acc := listAccesses(t, e, "mash.access.search")
	if len(acc) != 5 || len(acc[1].GetListed()) != 1 || acc[1].GetListed()[0].GetReferralId() != id || acc[1].GetReason() != "Call from the health visitor" {
		t.Fatalf("access entries of household searches: %v", acc)
	}
}
