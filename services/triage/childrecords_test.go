package triage_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/mash-hub/mash/pkg/auth"
	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
	rulesv1 "github.com/mash-hub/mash/proto/mash/rules/v1"
	triagev1 "github.com/mash-hub/mash/proto/mash/triage/v1"
	"github.com/mash-hub/mash/services/triage"
	"github.com/mash-hub/mash/services/triage/store"
)

func historyIDs(h []*triagev1.ChildHistoryEntry) []string {
	var out []string
	for _, e := range h {
		out = append(out, e.GetReferralId())
	}
	slices.Sort(out)
	return out
}

func sorted(ids ...string) []string {
	out := slices.Clone(ids)
	slices.Sort(out)
	return out
}

// childEvents are the child-changed case events in triage's outbox, oldest first.
func (e *env) childEvents(t *testing.T) []*eventsv1.CaseChanged {
	t.Helper()
	rows, err := e.pool.Query(context.Background(), `SELECT payload FROM triage.outbox WHERE subject = $1 ORDER BY id`, triage.EventChildChanged)
	if err != nil {
		t.Fatal(err)
	}
	raws, err := pgxCollectBytes(rows)
	if err != nil {
		t.Fatal(err)
	}
	var out []*eventsv1.CaseChanged
	for _, raw := range raws {
		_, ev := decode(t, raw, &eventsv1.CaseChanged{})
		out = append(out, ev)
	}
	return out
}

// A manager merges a duplicate child record: the child's history and re-referral facts
// follow the merged record, the merge is on the trail with its reason, a later decision
// naming the old record does not undo it, and unmerging restores the history as it was.
func TestMergeThenUnmergeRestoresTheHistory(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	records := e.records(t)
	a, b := uuid.NewString(), uuid.NewString()
	// Two records of one boy: one with his NHS number, one without (a different postcode
	// after a move), so the rules' index could not link them.
	a1 := e.about(t, kid{"Dylan", "Morgan", "2013-05-05", "9434765919", "CF37 1AA"}, "rct", a, "", start.Add(-60*24*time.Hour))
	a2 := e.about(t, kid{"Dylan", "Morgan", "2013-05-05", "9434765919", "CF37 1AA"}, "rct", a, "", start.Add(-30*24*time.Hour))
	b1 := e.about(t, kid{"Dylan", "Morgan", "2013-05-05", "", "CF44 9ZZ"}, "rct", b, "", start)
	m := e.hubCaller(t, auth.RoleManager, "rct")

	before, err := e.client.GetCase(m.ctx, &triagev1.GetCaseRequest{ReferralId: b1})
	if err != nil {
		t.Fatal(err)
	}
	if len(before.GetHistory()) != 0 {
		t.Fatalf("history before the merge: %v", before.GetHistory())
	}
	if c, _ := e.row(t, b1); c.ChildID != b {
		t.Fatalf("b1 is on %s, want %s", c.ChildID, b)
	}
	// A reason is required.
	if _, err := records.MergeChildren(m.ctx, &triagev1.MergeChildrenRequest{ChildId: b, IntoChildId: a}); status.Code(err) != codes.InvalidArgument ||
		!strings.Contains(err.Error(), "reason") {
		t.Fatalf("merge without a reason: %v", err)
	}
	merged, err := records.MergeChildren(m.ctx, &triagev1.MergeChildrenRequest{ChildId: b, IntoChildId: a, Reason: "Same boy: school confirmed the move"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(merged.GetReferralIds(), []string{b1}) || merged.GetMerge().GetKind() != "MERGE" {
		t.Fatalf("merge response %v", merged)
	}
	after, err := e.client.GetCase(m.ctx, &triagev1.GetCaseRequest{ReferralId: b1})
	if err != nil {
		t.Fatal(err)
	}
	if got := historyIDs(after.GetHistory()); !slices.Equal(got, sorted(a1, a2)) || after.GetCase().GetChildId() != a {
		t.Fatalf("after the merge b1's case is on %s with history %v, want %s with %v", after.GetCase().GetChildId(), got, a, sorted(a1, a2))
	}
	// Re-referral counts follow: b1 is now a re-referral of a2.
	var rereferralOf *string
	if err := e.pool.QueryRow(context.Background(), `SELECT rereferral_of::text FROM triage.cases WHERE referral_id = $1`, b1).Scan(&rereferralOf); err != nil {
		t.Fatal(err)
	}
	if rereferralOf == nil || *rereferralOf != a2 {
		t.Fatalf("b1's rereferral_of %v after the merge, want %s", rereferralOf, a2)
	}
	// A later decision about b1 still names the rules' old record: the merge holds.
	d := decision(b1, "rct", 2, rulesv1.DecisionStatus_RECOMMENDED, rulesv1.Level_LEVEL_3A, rulesv1.Rag_RAG_AMBER, start.Add(24*time.Hour), start.Add(48*time.Hour))
	d.ChildId = b
	e.decided(t, d)
	e.waitCase(t, b1, func(c store.Case) bool { return c.DecisionVersion == 2 })
	if c, _ := e.row(t, b1); c.ChildID != a {
		t.Fatalf("a later decision moved b1 back to %s", c.ChildID)
	}
	// The merged-away record says what it now is; the remaining one shows the merge.
	gone, err := records.GetChild(m.ctx, &triagev1.GetChildRequest{ChildId: b})
	if err != nil || gone.GetMergedInto() != a {
		t.Fatalf("merged-away record: %v %v", gone, err)
	}
	kept, err := records.GetChild(m.ctx, &triagev1.GetChildRequest{ChildId: a})
	if err != nil {
		t.Fatal(err)
	}
	if len(kept.GetReferrals()) != 3 || len(kept.GetCorrections()) != 1 || kept.GetCorrections()[0].GetReason() != "Same boy: school confirmed the move" {
		t.Fatalf("kept record %v", kept)
	}

	// Unmerge over HTTP: the history is as it was.
	code, _, body := httpDo(t, http.MethodPost, e.httpURL+"/v1/child-merges/"+merged.GetMerge().GetId()+"/unmerge", m.token,
		`{"reason": "Different boys after all: dates of birth checked with health"}`)
	un := fromJSON(t, code, body, &triagev1.UnmergeChildrenResponse{})
	if !slices.Equal(un.GetReferralIds(), []string{b1}) || un.GetMerge().GetUndoneAt() == nil {
		t.Fatalf("unmerge response %v", un)
	}
	restored, err := e.client.GetCase(m.ctx, &triagev1.GetCaseRequest{ReferralId: b1})
	if err != nil {
		t.Fatal(err)
	}
	if len(restored.GetHistory()) != 0 || restored.GetCase().GetChildId() != b {
		t.Fatalf("after unmerging b1 is on %s with history %v", restored.GetCase().GetChildId(), restored.GetHistory())
	}
	if err := e.pool.QueryRow(context.Background(), `SELECT rereferral_of::text FROM triage.cases WHERE referral_id = $1`, b1).Scan(&rereferralOf); err != nil {
		t.Fatal(err)
	}
	if rereferralOf != nil {
		t.Fatalf("b1 is still a re-referral of %s after the unmerge", *rereferralOf)
	}
	// Undoing it twice is refused.
	if _, err := records.UnmergeChildren(m.ctx, &triagev1.UnmergeChildrenRequest{MergeId: merged.GetMerge().GetId(), Reason: "again"}); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("second unmerge: %v", err)
	}
	// Both moves are case events on the trail, with who and why.
	evs := e.childEvents(t)
	if len(evs) != 2 {
		t.Fatalf("%d child-changed events, want 2", len(evs))
	}
	if evs[0].GetCase().GetChildId() != a || !strings.Contains(evs[0].GetReason(), "school confirmed") || evs[0].GetActor() == "" ||
		evs[1].GetCase().GetChildId() != b || !strings.Contains(evs[1].GetReason(), "health") {
		t.Fatalf("child-changed events %v", evs)
	}
	e.checkCounters(t)
}

// Two records with the same name and date of birth but different postcodes are offered as
// possible matches, never linked: the rules' index keeps them apart, and triage shows the
// possibility until a practitioner links one referral (or unlinks it again).
func TestWeakMatchIsOfferedNotLinked(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{runRules: true})
	records := e.records(t)
	first, second := uuid.NewString(), uuid.NewString()
	sub := example(t)
	sub.Child.NhsNumber = ""
	sub.Child.GivenName, sub.Child.FamilyName, sub.Child.DateOfBirth = "Megan", "Price", "2014-02-14"
	sub.Child.Address.Postcode = "CF37 1AA"
	sub.ExternalReference = "SWP-WEAK-1"
	e.receivedSubmission(t, first, "south-wales-police", start, sub)
	sub2 := example(t)
	sub2.Child.NhsNumber = ""
	sub2.Child.GivenName, sub2.Child.FamilyName, sub2.Child.DateOfBirth = "Megan", "Price", "2014-02-14"
	sub2.Child.Address.Postcode = "NP20 4AA"
	sub2.ExternalReference = "SWP-WEAK-2"
	e.receivedSubmission(t, second, "south-wales-police", start.Add(time.Hour), sub2)
	c1 := e.waitCase(t, first, func(c store.Case) bool { return c.ChildID != "" && c.Received })
	c2 := e.waitCase(t, second, func(c store.Case) bool { return c.ChildID != "" && c.Received })
	if c1.ChildID == c2.ChildID {
		t.Fatal("the rules linked two referrals that share only a name and a date of birth")
	}
	p := e.hubCaller(t, auth.RolePractitioner, auth.AllPartnerships)
	rec, err := records.GetChild(p.ctx, &triagev1.GetChildRequest{ChildId: c2.ChildID})
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.GetPossibleMatches()) != 1 {
		t.Fatalf("possible matches %v, want the other record", rec.GetPossibleMatches())
	}
	pm := rec.GetPossibleMatches()[0]
	if pm.GetChildId() != c1.ChildID || pm.GetBasis() != "same name and date of birth, different postcode" || pm.GetPostcode() != "CF37 1AA" {
		t.Fatalf("possible match %v", pm)
	}
	// Offered only: nothing moved.
	if c, _ := e.row(t, second); c.ChildID != c2.ChildID {
		t.Fatal("a possible match was linked without a person deciding")
	}
	// The practitioner links the second referral to the first record, then thinks better of it.
	code, _, body := httpDo(t, http.MethodPost, e.httpURL+"/v1/cases/"+second+"/child:link", p.token,
		`{"childId": "`+c1.ChildID+`", "reason": "Mother confirmed the family moved to Newport"}`)
	linked := fromJSON(t, code, body, &triagev1.LinkReferralResponse{})
	if linked.GetCase().GetChildId() != c1.ChildID {
		t.Fatalf("linked case %v", linked.GetCase())
	}
	got, err := e.client.GetCase(p.ctx, &triagev1.GetCaseRequest{ReferralId: second})
	if err != nil || !slices.Equal(historyIDs(got.GetHistory()), []string{first}) {
		t.Fatalf("history after linking: %v %v", got.GetHistory(), err)
	}
	un, err := records.UnlinkReferral(p.ctx, &triagev1.UnlinkReferralRequest{ReferralId: second, Reason: "Wrong family: a different Megan"})
	if err != nil {
		t.Fatal(err)
	}
	if id := un.GetCase().GetChildId(); id == c1.ChildID || id == c2.ChildID || id == "" {
		t.Fatalf("unlinked onto %s, want a new record", id)
	}
	kept, err := records.GetChild(p.ctx, &triagev1.GetChildRequest{ChildId: c1.ChildID})
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, c := range kept.GetCorrections() {
		kinds = append(kinds, c.GetKind())
	}
	if !slices.Equal(kinds, []string{"LINK", "UNLINK"}) || len(kept.GetReferrals()) != 1 {
		t.Fatalf("corrections %v, referrals %d", kept.GetCorrections(), len(kept.GetReferrals()))
	}
	// Unlinking the only referral of a record is refused: there is nothing to unlink from.
	if _, err := records.UnlinkReferral(p.ctx, &triagev1.UnlinkReferralRequest{ReferralId: first, Reason: "x"}); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("unlinking a record's only referral: %v", err)
	}
}

// A child record with a referral outside the caller's partnerships cannot be merged by
// them, and another partnership's record is as unknown as a missing one.
func TestChildRecordsAreScopedToPartnerships(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	records := e.records(t)
	a, b := uuid.NewString(), uuid.NewString()
	e.about(t, kid{"Ela", "Hughes", "2016-07-07", "", "CF37 1AA"}, "rct", a, "", start)
	e.about(t, kid{"Ela", "Hughes", "2016-07-07", "", "CF10 1AA"}, "cardiff", b, "", start)
	rct := e.hubCaller(t, auth.RoleManager, "rct")
	if _, err := records.GetChild(rct.ctx, &triagev1.GetChildRequest{ChildId: b}); status.Code(err) != codes.NotFound {
		t.Fatalf("another partnership's record: %v, want NOT_FOUND", err)
	}
	if rec, err := records.GetChild(rct.ctx, &triagev1.GetChildRequest{ChildId: a}); err != nil || len(rec.GetPossibleMatches()) != 0 {
		t.Fatalf("possible matches across partnerships were offered: %v %v", rec, err)
	}
	if _, err := records.MergeChildren(rct.ctx, &triagev1.MergeChildrenRequest{ChildId: a, IntoChildId: b, Reason: "same"}); status.Code(err) != codes.NotFound {
		t.Fatalf("merge into another partnership's record: %v, want NOT_FOUND", err)
	}
}

func pgxCollectBytes(rows pgx.Rows) ([][]byte, error) {
	return pgx.CollectRows(rows, pgx.RowTo[[]byte])
}
