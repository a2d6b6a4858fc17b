package audit_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	auditv1 "github.com/mash-hub/mash/proto/mash/audit/v1"
	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
	intakev1 "github.com/mash-hub/mash/proto/mash/intake/v1"
	triagev1 "github.com/mash-hub/mash/proto/mash/triage/v1"
	"github.com/mash-hub/mash/services/audit"
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

// A closed referral read for the history of a child who has another, open referral is not
// a read of a child with no open case; once every referral of the child is closed, it is.
func TestNoOpenCaseIsJudgedForTheChild(t *testing.T) {
	e := newEnv(t)
	at := e.now // working hours
	var envs []*eventsv1.Envelope
	add := func(typ, referral string, at time.Time, payload proto.Message) {
		env, _, err := legacyEnvelope(t, typ, "rct", referral, 0, at, payload)
		if err != nil {
			t.Fatal(err)
		}
		envs = append(envs, env)
	}
	older, newer := uuid.NewString(), uuid.NewString()
	for _, id := range []string{older, newer} {
		add(eventsv1.SubjectReferralReceived, id, at, &eventsv1.ReferralReceived{Referral: &intakev1.Referral{Id: id,
			Agency: "south-wales-police", Partnership: "rct"}})
		add(eventsv1.SubjectCaseDecided, id, at, &eventsv1.CaseChanged{Case: &triagev1.Case{ReferralId: id, ChildId: "child-h"}})
	}
	add(eventsv1.SubjectCaseClosed, older, at, &eventsv1.CaseChanged{Case: &triagev1.Case{ReferralId: older, ChildId: "child-h"},
		Actor: "user:m1", ActorRole: "manager"})
	read := func(at time.Time) {
		add("mash.access.case", older, at, &eventsv1.RecordAccessed{ClientId: "user:own", Role: "practitioner", Agency: "rct-mash",
			Action: "GetCase", ReferralId: older, ChildId: "child-h", ReaderPartnerships: []string{"rct"}})
	}
	read(at.Add(time.Minute)) // the newer referral is open
	add(eventsv1.SubjectCaseClosed, newer, at.Add(2*time.Minute), &eventsv1.CaseChanged{Case: &triagev1.Case{ReferralId: newer, ChildId: "child-h"},
		Actor: "user:m1", ActorRole: "manager"})
	read(at.Add(3 * time.Minute)) // both closed
	e.record(t, envs...)
	e.sequenceAll(t)

	resp, err := e.svc.API().UnusualAccess(auditor, &auditv1.UnusualAccessRequest{From: timestamppb.New(at.Add(-time.Hour)),
		To: timestamppb.New(at.Add(time.Hour))})
	if err != nil {
		t.Fatal(err)
	}
	var flaggedAt []time.Time
	for _, f := range resp.GetAccesses() {
		if !slices.Equal(f.GetReasons(), []string{audit.ReasonNoOpenCase}) {
			t.Errorf("unexpected reasons %v for the read at %v", f.GetReasons(), f.GetAccess().GetOccurredAt().AsTime())
		}
		flaggedAt = append(flaggedAt, f.GetAccess().GetOccurredAt().AsTime())
	}
	if len(flaggedAt) != 1 || !flaggedAt[0].Equal(at.Add(3*time.Minute)) {
		t.Fatalf("flagged reads at %v, want only the read after every referral of the child closed (%v)", flaggedAt, at.Add(3*time.Minute))
	}
}

// The report's flags are worked out from other entries: the referral's receipt and
// decisions, closures, the reader's other reads. A reader made to look involved by
// altering the referral's receipt is not served as involved: the read is reported as
// resting on an altered entry.
func TestUnusualAccessFlagsRestOnProvenEntries(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	at := e.now
	referral := uuid.NewString()
	var envs []*eventsv1.Envelope
	for _, m := range []struct {
		typ     string
		at      time.Time
		payload proto.Message
	}{
		{eventsv1.SubjectReferralReceived, at, &eventsv1.ReferralReceived{Referral: &intakev1.Referral{Id: referral,
			Agency: "south-wales-police", Partnership: "rct"}}},
		{"mash.access.case", at.Add(time.Minute), &eventsv1.RecordAccessed{ClientId: "user:partner", Role: "agency",
			Agency: "cwm-taf-health", Action: "GetCase", ReferralId: referral}},
	} {
		env, _, err := legacyEnvelope(t, m.typ, "rct", referral, 0, m.at, m.payload)
		if err != nil {
			t.Fatal(err)
		}
		envs = append(envs, env)
	}
	e.record(t, envs...)
	e.sequenceAll(t)
	report := func() []*auditv1.FlaggedAccess {
		t.Helper()
		resp, err := e.svc.API().UnusualAccess(auditor, &auditv1.UnusualAccessRequest{From: timestamppb.New(at.Add(-time.Hour)),
			To: timestamppb.New(at.Add(time.Hour))})
		if err != nil {
			t.Fatal(err)
		}
		return resp.GetAccesses()
	}
	if got := report(); len(got) != 1 || !slices.Equal(got[0].GetReasons(), []string{audit.ReasonNotInvolved}) {
		t.Fatalf("before tampering: %v, want one read flagged %s", got, audit.ReasonNotInvolved)
	}
	// Make the reader's agency the referrer's, in the column only.
	if err := pgx.BeginFunc(ctx, e.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL session_replication_role = replica`); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `UPDATE audit.entries SET agency = 'cwm-taf-health'
			WHERE event_type = 'mash.referral.received' AND referral_id = $1`, referral)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	got := report()
	if len(got) != 1 || !slices.Equal(got[0].GetReasons(), []string{audit.ReasonIntegrity}) ||
		!strings.Contains(got[0].GetAccess().GetIntegrityError(), "rest on an altered entry") {
		t.Fatalf("after altering the receipt's agency: %v, want the read reported as resting on an altered entry", got)
	}
}
