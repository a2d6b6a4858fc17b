package triage_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/mash-hub/mash/pkg/auth"
	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
	rulesv1 "github.com/mash-hub/mash/proto/mash/rules/v1"
	triagev1 "github.com/mash-hub/mash/proto/mash/triage/v1"
	"github.com/mash-hub/mash/services/triage/store"
)

// listAccesses returns the access events of subject waiting in triage's outbox, oldest first.
func listAccesses(t *testing.T, e *env, subject string) []*eventsv1.RecordAccessed {
	t.Helper()
	rows, err := e.pool.Query(context.Background(), `SELECT payload FROM triage.outbox WHERE subject = $1 ORDER BY id`, subject)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []*eventsv1.RecordAccessed
	for rows.Next() {
		var raw []byte
		if err := rows.Scan(&raw); err != nil {
			t.Fatal(err)
		}
		var env eventsv1.Envelope
		ev := &eventsv1.RecordAccessed{}
		if err := proto.Unmarshal(raw, &env); err != nil || env.GetPayload().UnmarshalTo(ev) != nil {
			t.Fatalf("outbox row is not an access event: %v", err)
		}
		out = append(out, ev)
	}
	return out
}

// Each queue page leaves one access entry listing every child it showed.
func TestQueuePageLeavesAnAccessEntry(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	queueFixture(t, e)
	p := e.staff(t, auth.RolePractitioner)
	first, err := e.client.ListQueue(p.ctx, &triagev1.ListQueueRequest{PageSize: 3})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.ListQueue(p.ctx, &triagev1.ListQueueRequest{PageSize: 3, PageToken: first.GetNextPageToken()}); err != nil {
		t.Fatal(err)
	}
	acc := listAccesses(t, e, "mash.access.queue")
	if len(acc) != 2 {
		t.Fatalf("%d queue access entries for two pages, want 2", len(acc))
	}
	a := acc[0]
	// The reader's partnerships travel with the read, for the unusual-access report.
	if a.GetAction() != "ListQueue" || a.GetClientId() != p.id || len(a.GetListed()) != len(first.GetCases()) ||
		!slices.Equal(a.GetReaderPartnerships(), []string{auth.AllPartnerships}) {
		t.Fatalf("queue access %v", a)
	}
	for i, c := range first.GetCases() {
		l := a.GetListed()[i]
		got, _ := e.row(t, c.GetReferralId())
		if l.GetReferralId() != c.GetReferralId() || l.GetChildId() != got.ChildID {
			t.Fatalf("listed %d: %v, want referral %s child %s", i, l, c.GetReferralId(), got.ChildID)
		}
	}

}

// An agency reading its information requests leaves one access entry per page, naming the
// referral and the child of every request shown (a case the rules have not yet matched to
// a child: the referral alone).
func TestInformationRequestListLeavesAnAccessEntry(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	matched, unmatched := uuid.NewString(), uuid.NewString()
	e.received(t, referral{id: matched, partnership: "rct", agency: "south-wales-police", receivedAt: start})
	e.decided(t, decision(matched, "rct", 1, rulesv1.DecisionStatus_RECOMMENDED, rulesv1.Level_LEVEL_2, rulesv1.Rag_RAG_GREEN,
		start.Add(24*time.Hour), start.Add(72*time.Hour)))
	e.received(t, referral{id: unmatched, partnership: "rct", agency: "south-wales-police", receivedAt: start})
	e.waitCase(t, matched, func(c store.Case) bool { return c.Received && c.ChildID != "" })
	e.waitCase(t, unmatched, func(c store.Case) bool { return c.Received })
	p := e.staff(t, auth.RolePractitioner)
	police := e.caller(t, auth.RoleReferrer, "gwent-police")
	for _, id := range []string{matched, unmatched} {
		if _, err := e.client.RequestInformation(p.ctx, &triagev1.RequestInformationRequest{ReferralId: id, Agency: "gwent-police", Question: "Any call-outs?"}); err != nil {
			t.Fatal(err)
		}
	}
	list, err := e.client.ListInformationRequests(police.ctx, &triagev1.ListInformationRequestsRequest{})
	if err != nil || len(list.GetRequests()) != 2 {
		t.Fatalf("list: %v %v", list, err)
	}
	acc := listAccesses(t, e, "mash.access.information-requests")
	if len(acc) != 1 || acc[0].GetClientId() != police.id || acc[0].GetAction() != "ListInformationRequests" ||
		len(acc[0].GetListed()) != len(list.GetRequests()) {
		t.Fatalf("information request access %v", acc)
	}
	for i, r := range list.GetRequests() {
		l := acc[0].GetListed()[i]
		c, _ := e.row(t, r.GetReferralId())
		if l.GetReferralId() != r.GetReferralId() || l.GetChildId() != c.ChildID {
			t.Errorf("listed %d: %v, want referral %s child %q", i, l, r.GetReferralId(), c.ChildID)
		}
	}
}

// listedCasesAre fails the test unless a, the access entry of action by reader, lists
// exactly the referrals shown, in order, each with its case's child record.
func listedCasesAre(t *testing.T, e *env, a *eventsv1.RecordAccessed, action, reader string, shown []string) {
	t.Helper()
	if a.GetAction() != action || a.GetClientId() != reader || len(a.GetListed()) != len(shown) {
		t.Fatalf("%s access %v, want %d listed by %s", action, a, len(shown), reader)
	}
	for i, r := range shown {
		l := a.GetListed()[i]
		c, _ := e.row(t, r)
		if c.ChildID == "" || l.GetReferralId() != r || l.GetChildId() != c.ChildID {
			t.Errorf("%s listed %d: %v, want referral %s child %q", action, i, l, r, c.ChildID)
		}
	}
}

// accessesOf returns the access entries of subject that action left.
func accessesOf(t *testing.T, e *env, subject, action string) []*eventsv1.RecordAccessed {
	t.Helper()
	var out []*eventsv1.RecordAccessed
	for _, a := range listAccesses(t, e, subject) {
		if a.GetAction() == action {
			out = append(out, a)
		}
	}
	return out
}

// A page of disagreements shows what an agency disputes about a child: it leaves one access
// entry naming the referral and child of each disagreement shown; an empty page none.
func TestDisagreementListLeavesAnAccessEntry(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	id := uuid.NewString()
	e.received(t, referral{id: id, partnership: "rct", agency: "south-wales-police", receivedAt: start})
	e.decided(t, decision(id, "rct", 2, rulesv1.DecisionStatus_CONFIRMED, rulesv1.Level_LEVEL_2, rulesv1.Rag_RAG_GREEN, start.Add(24*time.Hour), start.Add(72*time.Hour)))
	e.waitCase(t, id, func(c store.Case) bool { return c.Received && c.State == store.StateDecided && c.ChildID != "" })
	police := e.caller(t, auth.RoleReferrer, "south-wales-police")
	stranger := e.caller(t, auth.RoleReferrer, "dyfed-powys-police")
	if _, err := e.client.RaiseDisagreement(police.ctx, &triagev1.RaiseDisagreementRequest{ReferralId: id, Reason: "Third incident this year; level 2 is too low."}); err != nil {
		t.Fatal(err)
	}
	ds, err := e.client.ListDisagreements(police.ctx, &triagev1.ListDisagreementsRequest{})
	if err != nil || len(ds.GetDisagreements()) != 1 {
		t.Fatalf("list: %v %v", ds, err)
	}
	if others, err := e.client.ListDisagreements(stranger.ctx, &triagev1.ListDisagreementsRequest{}); err != nil || len(others.GetDisagreements()) != 0 {
		t.Fatalf("another agency's list: %v %v", others, err)
	}
	acc := accessesOf(t, e, eventsv1.SubjectAccessQueue, "ListDisagreements")
	if len(acc) != 1 {
		t.Fatalf("%d disagreement access entries for one page shown and one empty, want 1", len(acc))
	}
	listedCasesAre(t, e, acc[0], "ListDisagreements", police.id, []string{id})
}

// A page of quality reviews shows managers' views of decisions about children: it leaves
// one access entry naming the referral and child of each review shown.
func TestQualityReviewListLeavesAnAccessEntry(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{qaPercent: 100})
	qa := triagev1.NewQualityServiceClient(e.conn)
	m1 := e.hubCaller(t, auth.RoleManager, "rct")
	m2 := e.hubCaller(t, auth.RoleManager, "rct")
	p := e.hubCaller(t, auth.RolePractitioner, "rct")
	id := e.about(t, kid{"Alys", "Test", "2016-01-01", "", "CF37 1AA"}, "rct", uuid.NewString(), "", start)
	e.decidedBy(t, id, "rct", actorOf(p, auth.RolePractitioner))
	for _, m := range []caller{m1, m2} {
		if _, err := qa.RecordQualityReview(m.ctx, &triagev1.RecordQualityReviewRequest{ReferralId: id, Verdict: triagev1.QualityVerdict_AGREE}); err != nil {
			t.Fatal(err)
		}
	}
	reviews, err := qa.ListQualityReviews(m1.ctx, &triagev1.ListQualityReviewsRequest{})
	if err != nil || len(reviews.GetReviews()) != 2 {
		t.Fatalf("reviews: %v %v", reviews, err)
	}
	acc := accessesOf(t, e, eventsv1.SubjectAccessQueue, "ListQualityReviews")
	if len(acc) != 1 {
		t.Fatalf("%d quality review access entries for one page, want 1", len(acc))
	}
	listedCasesAre(t, e, acc[0], "ListQualityReviews", m1.id, []string{id, id})

	// The sample shows children's names: its entry names each child too.
	sample, err := qa.ListQualitySample(m1.ctx, &triagev1.ListQualitySampleRequest{From: timestamppb.New(start.Add(-time.Hour)), To: timestamppb.New(start.Add(time.Hour))})
	if err != nil || len(sample.GetCases()) != 1 {
		t.Fatalf("sample: %v %v", sample, err)
	}
	acc = accessesOf(t, e, eventsv1.SubjectAccessQueue, "ListQualitySample")
	if len(acc) != 1 {
		t.Fatalf("%d quality sample access entries for one page, want 1", len(acc))
	}
	listedCasesAre(t, e, acc[0], "ListQualitySample", m1.id, []string{id})
}
