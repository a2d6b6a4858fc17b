package audit_test

import (
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	auditv1 "mash/proto/mash/audit/v1"
	eventsv1 "mash/proto/mash/events/v1"
	intakev1 "mash/proto/mash/intake/v1"
	triagev1 "mash/proto/mash/triage/v1"
	"mash/services/audit"
)

// The unusual-access report is calibrated: a hub practitioner reading a case of their own
// partnership's queue is not flagged (before any decision), a reader from another
// partnership is, a read of a closed case is, and bulk reading is.
func TestUnusualAccessCalibration(t *testing.T) {
	e := newEnv(t, func(c *audit.Config) { c.BulkReadsPerHour = 3 })
	at := e.now // a Thursday, 10:00 London: working hours
	var envs []*eventsv1.Envelope
	add := func(typ, partnership, referral string, at time.Time, payload proto.Message) {
		env, _, err := legacyEnvelope(t, typ, partnership, referral, 0, at, payload)
		if err != nil {
			t.Fatal(err)
		}
		envs = append(envs, env)
	}
	open, closed := uuid.NewString(), uuid.NewString()
	for _, id := range []string{open, closed} {
		add("mash.referral.received", "rct", id, at, &eventsv1.ReferralReceived{Referral: &intakev1.Referral{Id: id,
			Agency: "south-wales-police", Partnership: "rct"}})
	}
	add("mash.case.closed", "rct", closed, at, &eventsv1.CaseChanged{Case: &triagev1.Case{ReferralId: closed}, Actor: "user:m1", ActorRole: "manager"})
	read := func(who, agency string, serves []string, referral, child string, at time.Time) {
		add("mash.access.case", "rct", referral, at, &eventsv1.RecordAccessed{ClientId: who, Role: "practitioner", Agency: agency,
			Action: "GetCase", ReferralId: referral, ChildId: child, ReaderPartnerships: serves})
	}
	read("user:own", "rct-mash", []string{"rct"}, open, "child-1", at.Add(time.Minute))
	read("user:other", "cardiff-mash", []string{"cardiff"}, open, "child-1", at.Add(2*time.Minute))
	read("user:own", "rct-mash", []string{"rct"}, closed, "child-2", at.Add(3*time.Minute))
	for i := range 4 { // four distinct children inside an hour: the fourth is one too many
		read("user:bulk", "rct-mash", []string{"rct"}, open, "bulk-child-"+string(rune('a'+i)), at.Add(time.Duration(10+i)*time.Minute))
	}
	e.record(t, envs...)
	e.sequenceAll(t)

	resp, err := e.svc.API().UnusualAccess(auditor, &auditv1.UnusualAccessRequest{From: timestamppb.New(at.Add(-time.Hour)),
		To: timestamppb.New(at.Add(2 * time.Hour))})
	if err != nil {
		t.Fatal(err)
	}
	flagged := map[string][][]string{}
	for _, f := range resp.GetAccesses() {
		a := f.GetAccess()
		flagged[a.GetActor()+" "+a.GetReferralId()+" "+a.GetChildId()] = append(flagged[a.GetActor()+" "+a.GetReferralId()+" "+a.GetChildId()], f.GetReasons())
	}
	if got := flagged["user:own "+open+" child-1"]; got != nil {
		t.Errorf("a practitioner reading their own partnership's case is flagged: %v", got)
	}
	if got := flagged["user:other "+open+" child-1"]; len(got) != 1 || !slices.Contains(got[0], audit.ReasonOutsidePartnerships) {
		t.Errorf("a read from another partnership: %v, want %s", got, audit.ReasonOutsidePartnerships)
	}
	if got := flagged["user:own "+closed+" child-2"]; len(got) != 1 || !slices.Equal(got[0], []string{audit.ReasonNoOpenCase}) {
		t.Errorf("a read of a closed case: %v, want only %s", got, audit.ReasonNoOpenCase)
	}
	for i := range 4 {
		got := flagged["user:bulk "+open+" bulk-child-"+string(rune('a'+i))]
		if i < 3 && got != nil {
			t.Errorf("read %d of 3 allowed an hour is flagged: %v", i+1, got)
		}
		if i == 3 && (len(got) != 1 || !slices.Equal(got[0], []string{audit.ReasonBulkReading})) {
			t.Errorf("the fourth child in an hour: %v, want only %s", got, audit.ReasonBulkReading)
		}
	}
}
