package notify_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"mash/pkg/events/eventstest"
	notifyv1 "mash/proto/mash/notify/v1"
	rulesv1 "mash/proto/mash/rules/v1"
	"mash/services/notify/store"
)

// A Red decision at 20:00 on a Sunday: police (and social care, through its out-of-hours
// route) must acknowledge within the hour, the school before the next school day. When the
// hour passes unacknowledged, one escalation goes, to the emergency duty team (the duty
// manager is off duty), listing every late agency and the school still to come; a later
// sweep raises no second one for the decision.
func TestRedOnSundayEveningDeadlinesAndOneEscalation(t *testing.T) {
	e := newEnv(t)
	f := e.directoryFile()
	for i, a := range f.Agencies {
		if a.ID == "rct-duty-manager" {
			f.Agencies[i].HoursStart, f.Agencies[i].HoursEnd, f.Agencies[i].OutOfHours = "09:00", "17:00", "rct-edt"
		}
	}
	e.load(t, f)
	e.approvePending(t)                                      // the out-of-hours route is a routing change: a second manager approves it
	sunday := time.Date(2026, 11, 22, 20, 0, 0, 0, time.UTC) // 20:00 in London (GMT)
	e.clock.Advance(sunday.Sub(e.clock.Now()))

	ref := e.referral(t, noEncompass)
	d := uuid.NewString()
	e.decide(t, confirmed, ref, d, 2, rulesv1.Level_LEVEL_4, rulesv1.Rag_RAG_RED, "childrens_social_care", "police", "school_dsl")
	ns := e.settled(t, ref.GetId(), 5)
	due := map[string]time.Time{}
	for _, n := range ns {
		if n.Kind == "ACTION" && n.AckDue != nil {
			due[n.Role] = n.AckDue.UTC()
		}
	}
	// Red within the hour; Monday's school day starts at 08:45.
	for role, want := range map[string]time.Time{"police": sunday.Add(time.Hour), "childrens_social_care": sunday.Add(time.Hour),
		"school_dsl": time.Date(2026, 11, 23, 8, 45, 0, 0, time.UTC)} {
		if got := due[role]; got.IsZero() || got.Sub(want).Abs() > time.Minute {
			t.Errorf("%s acknowledgement due %s, want %s", role, got, want)
		}
	}

	e.clock.Advance(65 * time.Minute)
	if _, err := e.svc.EscalateDue(context.Background()); err != nil {
		t.Fatal(err)
	}
	ns = e.settled(t, ref.GetId(), 6)
	var escalations []store.Notification
	for _, n := range ns {
		if n.Kind == "ESCALATION" {
			escalations = append(escalations, n)
		}
	}
	if len(escalations) != 1 || escalations[0].Agency != "rct-edt" {
		t.Fatalf("escalations: %v, want one to the emergency duty team", summarise(escalations))
	}
	edt := e.ag.ooh.ofKind(notifyv1.NotificationKind_ESCALATION)
	if len(edt) != 1 {
		t.Fatalf("emergency duty team got %d escalations", len(edt))
	}
	note := edt[0].msg.GetNote()
	for _, want := range []string{"south-wales-police (police)", "rct-edt for rct-csc (childrens_social_care)", "also awaiting example-primary-dsl (school_dsl)"} {
		if !strings.Contains(note, want) {
			t.Errorf("escalation does not list %q: %s", want, note)
		}
	}
	if len(e.ag.duty.ofKind(notifyv1.NotificationKind_ESCALATION)) != 0 {
		t.Error("the off-duty duty manager was escalated to")
	}

	// Monday, the school still silent: the decision was escalated once already.
	e.clock.Advance(13 * time.Hour)
	if n, err := e.svc.EscalateDue(context.Background()); err != nil || n != 0 {
		t.Fatalf("second sweep escalated %d (%v)", n, err)
	}
	eventstest.Drained(t, e.js, "notify")
	if got := countKind(e.settled(t, ref.GetId(), 6), "ESCALATION", ""); got != 1 {
		t.Fatalf("%d escalations for one decision", got)
	}
}

// An agency that fills two roles the decision names gets one message for the decision.
func TestOneMessagePerAgencyPerDecision(t *testing.T) {
	e := newEnv(t)
	f := e.directoryFile()
	for i, a := range f.Agencies {
		if a.ID == "south-wales-police" {
			f.Agencies[i].Roles = []string{"police", "marac_coordinator"}
		}
	}
	e.load(t, f)
	ref := e.referral(t, noEncompass)
	d := uuid.NewString()
	e.decide(t, confirmed, ref, d, 2, rulesv1.Level_LEVEL_4, rulesv1.Rag_RAG_AMBER, "police", "marac_coordinator", "childrens_social_care")
	e.settled(t, ref.GetId(), 4)
	eventstest.Drained(t, e.js, "notify")
	ns := e.settled(t, ref.GetId(), 4)
	if got := countKind(ns, "ACTION", "south-wales-police"); got != 1 {
		t.Fatalf("police (police and MARAC) got %d actions, want 1: %v", got, summarise(ns))
	}
	if got := len(e.ag.police.ofKind(notifyv1.NotificationKind_ACTION)); got != 1 {
		t.Fatalf("police received %d action messages, want 1", got)
	}
}
