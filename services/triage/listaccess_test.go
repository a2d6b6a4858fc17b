package triage_test

import (
	"context"
	"slices"
	"testing"

	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"

	"mash/pkg/auth"
	eventsv1 "mash/proto/mash/events/v1"
	triagev1 "mash/proto/mash/triage/v1"
	"mash/services/triage/store"
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
// referrals shown.
func TestInformationRequestListLeavesAnAccessEntry(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	id := uuid.NewString()
	e.received(t, referral{id: id, partnership: "rct", agency: "south-wales-police", receivedAt: start})
	e.waitCase(t, id, func(c store.Case) bool { return c.Received })
	p := e.staff(t, auth.RolePractitioner)
	police := e.caller(t, auth.RoleReferrer, "gwent-police")
	if _, err := e.client.RequestInformation(p.ctx, &triagev1.RequestInformationRequest{ReferralId: id, Agency: "gwent-police", Question: "Any call-outs?"}); err != nil {
		t.Fatal(err)
	}
	list, err := e.client.ListInformationRequests(police.ctx, &triagev1.ListInformationRequestsRequest{})
	if err != nil || len(list.GetRequests()) != 1 {
		t.Fatalf("list: %v %v", list, err)
	}
	acc := listAccesses(t, e, "mash.access.information-requests")
	if len(acc) != 1 || acc[0].GetClientId() != police.id || len(acc[0].GetListed()) != 1 || acc[0].GetListed()[0].GetReferralId() != id {
		t.Fatalf("information request access %v", acc)
	}
}
