package rules_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/mash-hub/mash/pkg/auth"
	"github.com/mash-hub/mash/pkg/events"
	"github.com/mash-hub/mash/pkg/events/eventstest"
	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
	intakev1 "github.com/mash-hub/mash/proto/mash/intake/v1"
	triagev1 "github.com/mash-hub/mash/proto/mash/triage/v1"
)

// corrected publishes triage's mash.case.child_changed for referralID, now on childID at
// case version version, moved by corr, and waits for rules to have taken it in.
func (e *env) corrected(t *testing.T, referralID, childID string, version int64, corr *triagev1.ChildCorrection) {
	t.Helper()
	ev := &eventsv1.CaseChanged{Case: &triagev1.Case{ReferralId: referralID, ChildId: childID, Version: version}, Actor: "practitioner",
		ActorRole: string(auth.RolePractitioner), Reason: corr.GetReason(), Correction: corr}
	env, raw, err := events.NewEnvelope(eventsv1.SubjectCaseChildChanged, "default", referralID, version, e.now, events.System("test"), ev)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.js.PublishMsg(context.Background(), &nats.Msg{Subject: eventsv1.SubjectCaseChildChanged, Data: raw},
		jetstream.WithMsgID(env.GetEventId())); err != nil {
		t.Fatal(err)
	}
	eventstest.Drained(t, e.js, "rules-children")
}

// referrals12m is the history count the rules saw for a decision.
func referrals12m(t *testing.T, factsJSON string) int {
	t.Helper()
	var facts struct {
		History struct {
			Referrals12m int `json:"referrals_12m"`
		} `json:"history"`
	}
	if err := json.Unmarshal([]byte(factsJSON), &facts); err != nil {
		t.Fatal(err)
	}
	return facts.History.Referrals12m
}

// When practitioners merge two child records in triage, the rules' child index follows: a
// referral the index links to the merged record counts the combined history; undoing the
// merge restores each record's own history.
func TestHistoryFollowsMergedChildRecords(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	staff := e.token(t, auth.RolePractitioner)
	// Two records of one child: the second referral carried a mistyped NHS number.
	first := uuid.NewString()
	e.received(t, first, e.now.Add(-30*24*time.Hour), lowLevel(t, intakev1.ConcernCategory_SCHOOL_ATTENDANCE))
	a := e.decision(t, staff, first).GetChildId()
	second := uuid.NewString()
	typo := lowLevel(t, intakev1.ConcernCategory_BEHAVIOUR)
	typo.Child.NhsNumber = "4010232137"
	e.received(t, second, e.now.Add(-20*24*time.Hour), typo)
	b := e.decision(t, staff, second).GetChildId()
	if a == b {
		t.Fatal("the two records were linked by the index already")
	}
	// Before any correction, a referral with the first record's NHS number sees one earlier.
	before := uuid.NewString()
	e.received(t, before, e.now.Add(-10*24*time.Hour), lowLevel(t, intakev1.ConcernCategory_NEGLECT))
	if d := e.decision(t, staff, before); d.GetChildId() != a || referrals12m(t, d.GetFactsJson()) != 1 {
		t.Fatalf("before the merge: child %s (want %s), history %d, want 1", d.GetChildId(), a, referrals12m(t, d.GetFactsJson()))
	}

	// A practitioner merges the first record into the second: triage moves both of its
	// referrals and says so, each with the merge.
	merge := &triagev1.ChildCorrection{Id: uuid.NewString(), Kind: "MERGE", FromChildId: a, ToChildId: b, Reason: "Same child: NHS number mistyped.",
		At: timestamppb.New(e.now)}
	e.corrected(t, first, b, 5, merge)
	e.corrected(t, before, b, 5, merge)

	// A new referral the index links to the first record counts the merged history: the
	// three earlier referrals, not the first record's own two.
	after := uuid.NewString()
	e.received(t, after, e.now.Add(-time.Hour), lowLevel(t, intakev1.ConcernCategory_NEGLECT))
	d := e.decision(t, staff, after)
	if n := referrals12m(t, d.GetFactsJson()); n != 3 {
		t.Fatalf("after the merge, history counts %d earlier referrals, want 3 (both records')", n)
	}
	// The decision still names the record the index gave, so triage can follow an unmerge.
	if d.GetChildId() != a {
		t.Fatalf("decision names child %s, want the index's %s", d.GetChildId(), a)
	}

	// The merge is undone: triage moves the first record's referrals back (the one that
	// came during the merge among them), and an older event arriving late changes nothing.
	undone := &triagev1.ChildCorrection{Id: merge.GetId(), Kind: "MERGE", FromChildId: a, ToChildId: b, UndoneAt: timestamppb.New(e.now)}
	e.corrected(t, first, a, 6, undone)
	e.corrected(t, before, a, 6, undone)
	e.corrected(t, after, a, 6, undone)
	e.corrected(t, first, b, 5, merge) // redelivered late: older than the undo
	again := uuid.NewString()
	e.received(t, again, e.now, lowLevel(t, intakev1.ConcernCategory_NEGLECT))
	if n := referrals12m(t, e.decision(t, staff, again).GetFactsJson()); n != 3 {
		t.Fatalf("after the unmerge, history counts %d, want the first record's own 3", n)
	}
	var onB int
	if err := e.pool.QueryRow(context.Background(), `SELECT count(*) FROM rules.decisions WHERE child_id = $1`, b).Scan(&onB); err != nil {
		t.Fatal(err)
	}
	if onB != 1 {
		t.Fatalf("%d decisions on the second record after the unmerge, want its own 1", onB)
	}
}
