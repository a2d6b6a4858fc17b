package triage_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/mash-hub/mash/pkg/auth"
	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
	triagev1 "github.com/mash-hub/mash/proto/mash/triage/v1"
	"github.com/mash-hub/mash/services/triage"
	"github.com/mash-hub/mash/services/triage/store"
)

// A manager places and lifts a legal hold with a reason, each on the trail; nobody else
// may; and a held case is never due for erasure under its retention schedule.
func TestLegalHoldIsAManagersAndStopsRetention(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	id := uuid.NewString()
	e.received(t, referral{id: id, partnership: "rct", agency: "south-wales-police", receivedAt: start})
	e.waitCase(t, id, func(c store.Case) bool { return c.ReferralID == id })
	// Closed with no further action in 2027: due in 2029 under the default schedule.
	if _, err := e.pool.Exec(ctx, `UPDATE triage.cases SET state = 4, outcome = 1, closed_at = '2027-06-01' WHERE referral_id = $1`, id); err != nil {
		t.Fatal(err)
	}
	dueAt := func() bool {
		due, err := store.RetentionDue(ctx, e.pool, time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range due {
			if d.ReferralID == id {
				return true
			}
		}
		return false
	}
	if !dueAt() {
		t.Fatal("the closed case is not due before any hold")
	}
	manager, practitioner := e.staff(t, auth.RoleManager), e.staff(t, auth.RolePractitioner)
	const reason = "Family court proceedings: order to preserve records"

	if _, err := e.client.PlaceLegalHold(practitioner.ctx, &triagev1.PlaceLegalHoldRequest{ReferralId: id, Reason: reason}); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("practitioner placing a hold: %v, want PermissionDenied", err)
	}
	_, err := e.client.PlaceLegalHold(manager.ctx, &triagev1.PlaceLegalHoldRequest{ReferralId: id, Reason: "  "})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "reason") {
		t.Fatalf("hold without a reason: %v, want InvalidArgument naming reason", err)
	}
	if _, err := e.client.PlaceLegalHold(manager.ctx, &triagev1.PlaceLegalHoldRequest{ReferralId: uuid.NewString(), Reason: reason}); status.Code(err) != codes.NotFound {
		t.Fatalf("hold on an unknown case: %v, want NotFound", err)
	}
	placed, err := e.client.PlaceLegalHold(manager.ctx, &triagev1.PlaceLegalHoldRequest{ReferralId: id, Reason: reason})
	if err != nil || placed.GetHold().GetPlacedBy() != manager.id || placed.GetHold().GetReason() != reason || placed.GetHold().GetLiftedAt() != nil {
		t.Fatalf("place: %v %v", placed, err)
	}
	if _, err := e.client.PlaceLegalHold(manager.ctx, &triagev1.PlaceLegalHoldRequest{ReferralId: id, Reason: reason}); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("second hold: %v, want FailedPrecondition", err)
	}
	if dueAt() {
		t.Fatal("a held case is listed as due for erasure")
	}
	_, ev := decode(t, e.streamEvents(t, triage.EventLegalHoldPlaced, 1)[0].Data, &eventsv1.CaseChanged{})
	if ev.GetActor() != manager.id || ev.GetActorRole() != string(auth.RoleManager) || ev.GetReason() != reason || ev.GetCase().GetReferralId() != id {
		t.Fatalf("hold placed event: %v", ev)
	}

	// Lifted over HTTP, by a manager, with a reason.
	code, _, body := httpDo(t, "POST", e.httpURL+"/v1/cases/"+id+"/legal-hold/lift", practitioner.token, `{"reason": "proceedings ended"}`)
	if code != 403 {
		t.Fatalf("practitioner lifting: %d %s", code, body)
	}
	code, _, body = httpDo(t, "POST", e.httpURL+"/v1/cases/"+id+"/legal-hold/lift", manager.token, `{"reason": "Proceedings concluded"}`)
	if code != 200 || !strings.Contains(body, `"liftReason":"Proceedings concluded"`) || !strings.Contains(body, `"liftedBy":"`+manager.id+`"`) {
		t.Fatalf("lift: %d %s", code, body)
	}
	code, _, body = httpDo(t, "POST", e.httpURL+"/v1/cases/"+id+"/legal-hold/lift", manager.token, `{"reason": "again"}`)
	if code != 409 || !strings.Contains(body, "not under legal hold") {
		t.Fatalf("lifting a lifted hold: %d %s", code, body)
	}
	if !dueAt() {
		t.Fatal("the case is not due again once its hold is lifted")
	}
	_, ev = decode(t, e.streamEvents(t, triage.EventLegalHoldLifted, 1)[0].Data, &eventsv1.CaseChanged{})
	if ev.GetActor() != manager.id || ev.GetReason() != "Proceedings concluded" {
		t.Fatalf("hold lifted event: %v", ev)
	}
	// A new hold may be placed after one was lifted; both stay on record.
	code, _, body = httpDo(t, "POST", e.httpURL+"/v1/cases/"+id+"/legal-hold", manager.token, `{"reason": "Serious case review"}`)
	if code != 200 || dueAt() {
		t.Fatalf("second hold: %d %s (due %v)", code, body, dueAt())
	}
	var holds int
	if err := e.pool.QueryRow(ctx, `SELECT count(*) FROM triage.legal_holds WHERE referral_id = $1`, id).Scan(&holds); err != nil || holds != 2 {
		t.Fatalf("holds on record: %d %v, want 2", holds, err)
	}
}

// With case keys, triage's events cross the bus sealed; once a case's key is destroyed,
// nothing more is recorded about it, and the caller is told why rather than given a 500.
func TestAnErasedCaseRefusesChangesWithAClearError(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{caseKeys: true})
	id := uuid.NewString()
	e.received(t, referral{id: id, partnership: "rct", agency: "south-wales-police", receivedAt: start})
	e.waitCase(t, id, func(c store.Case) bool { return c.ReferralID == id })
	manager := e.staff(t, auth.RoleManager)
	if _, err := e.client.PlaceLegalHold(manager.ctx, &triagev1.PlaceLegalHoldRequest{ReferralId: id, Reason: "Inquiry"}); err != nil {
		t.Fatal(err)
	}
	raw := e.streamEvents(t, triage.EventLegalHoldPlaced, 1)[0].Data
	var env eventsv1.Envelope
	if err := proto.Unmarshal(raw, &env); err != nil {
		t.Fatal(err)
	}
	if env.GetSealed() == nil || env.GetPayload() != nil || env.GetReferralId() != id || strings.Contains(string(raw), "Inquiry") {
		t.Fatalf("hold event on the bus is not sealed: %v", &env)
	}
	if err := e.keys.OpenPayload(context.Background(), &env); err != nil {
		t.Fatal(err)
	}
	var ev eventsv1.CaseChanged
	if err := env.GetPayload().UnmarshalTo(&ev); err != nil || ev.GetReason() != "Inquiry" {
		t.Fatalf("opened hold event: %v %v", &ev, err)
	}

	if _, err := e.keys.Erase(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	_, err := e.client.LiftLegalHold(manager.ctx, &triagev1.LiftLegalHoldRequest{ReferralId: id, Reason: "Inquiry closed"})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "was erased") {
		t.Fatalf("change to an erased case: %v, want FailedPrecondition saying it was erased", err)
	}
}

// A read's access event carries the reader's stated reason, free text that may name people:
// it crosses the bus sealed under the case's key like every other event of the case. Once
// the case is erased, a read is refused as not found, not answered with a 500.
func TestAccessEventsAreSealedAndErasedCasesAreNotFound(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{caseKeys: true})
	id := uuid.NewString()
	e.received(t, referral{id: id, partnership: "rct", agency: "south-wales-police", receivedAt: start})
	e.waitCase(t, id, func(c store.Case) bool { return c.ReferralID == id })
	p := e.staff(t, auth.RolePractitioner)
	const reason = "Strategy meeting about Quillfeather household"
	if _, err := e.client.GetCase(metadata.AppendToOutgoingContext(p.ctx, "x-access-reason", reason), &triagev1.GetCaseRequest{ReferralId: id}); err != nil {
		t.Fatal(err)
	}
	var raw []byte
	if err := e.pool.QueryRow(context.Background(), `SELECT payload FROM triage.outbox WHERE subject = $1 ORDER BY id DESC LIMIT 1`,
		eventsv1.SubjectAccessCase).Scan(&raw); err != nil {
		t.Fatal(err)
	}
	var env eventsv1.Envelope
	if err := proto.Unmarshal(raw, &env); err != nil {
		t.Fatal(err)
	}
	if env.GetSealed() == nil || env.GetPayload() != nil || strings.Contains(string(raw), "Quillfeather") {
		t.Fatalf("access event is not sealed: %v", &env)
	}
	if err := e.keys.OpenPayload(context.Background(), &env); err != nil {
		t.Fatal(err)
	}
	var ev eventsv1.RecordAccessed
	if err := env.GetPayload().UnmarshalTo(&ev); err != nil || ev.GetReason() != reason || ev.GetAction() != "GetCase" {
		t.Fatalf("opened access event: %v %v", &ev, err)
	}

	if _, err := e.keys.Erase(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	_, err := e.client.GetCase(p.ctx, &triagev1.GetCaseRequest{ReferralId: id})
	if status.Code(err) != codes.NotFound || !strings.Contains(err.Error(), "erased") {
		t.Fatalf("read of an erased case: %v, want NotFound saying it was erased", err)
	}
}
