package notify_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/mash-hub/mash/pkg/auth"
	"github.com/mash-hub/mash/pkg/events/eventstest"
	notifyv1 "github.com/mash-hub/mash/proto/mash/notify/v1"
	rulesv1 "github.com/mash-hub/mash/proto/mash/rules/v1"
	"github.com/mash-hub/mash/services/notify"
	"github.com/mash-hub/mash/services/notify/store"
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

// gateSocialCare makes children's social care's webhook hold every call until the returned
// function is called (at the latest when the test ends), so with one sending slot nothing
// else is sent meanwhile.
func gateSocialCare(t *testing.T, e *env) (open func()) {
	gate := make(chan struct{})
	var once sync.Once
	open = func() { once.Do(func() { close(gate) }) }
	e.ag.social.respond = func(int64) (int, time.Duration) { <-gate; return 200, 0 }
	t.Cleanup(open) // before the service stops: it waits for attempts in flight
	return open
}

// An Operation Encompass notice not yet sent when the decision names the same school is
// folded into the decision's message: the school gets one message, carrying the incident
// and the decision, and the notice itself is never sent.
func TestEncompassNotYetSentIsMergedIntoTheDecisionsMessage(t *testing.T) {
	e := newEnv(t, func(c *notify.DeliveryConfig) { c.InFlight = 1; c.SendTimeout = 30 * time.Second })
	open := gateSocialCare(t, e)
	// Another referral's action to social care takes the only sending slot and holds it.
	blocker := e.referral(t, noEncompass)
	e.decide(t, confirmed, blocker, uuid.NewString(), 2, rulesv1.Level_LEVEL_3A, rulesv1.Rag_RAG_AMBER, "childrens_social_care")
	e.waitFor(t, "social care's delivery to hold the sending slot", func() bool { return e.ag.social.calls.Load() >= 1 })

	ref := e.referral(t) // police, domestic abuse, school-age child: Encompass applies
	d := uuid.NewString()
	e.decide(t, confirmed, ref, d, 2, rulesv1.Level_LEVEL_4, rulesv1.Rag_RAG_AMBER, "police", "school_dsl")
	eventstest.Drained(t, e.js, "notify")
	var enc, action store.Notification
	for _, n := range e.rows(t, ref.GetId()) {
		switch {
		case n.Kind == "ENCOMPASS":
			enc = n
		case n.Kind == "ACTION" && n.Agency == "example-primary-dsl":
			action = n
		}
	}
	if enc.ID == "" || enc.WithdrawnAt == nil || enc.Attempts != 0 || !strings.Contains(enc.LastError, "merged into notification "+action.ID) {
		t.Fatalf("Encompass notice not merged into the decision's message: %+v", enc)
	}
	if action.ID == "" || !strings.Contains(action.Purpose, "Operation Encompass") || action.AckDue == nil {
		t.Fatalf("school's action does not carry the Encompass notice: %+v", action)
	}

	open()
	e.settled(t, ref.GetId(), 4) // receipt, the merged notice, police's and the school's actions
	eventstest.Drained(t, e.js, "notify")
	ns := e.settled(t, ref.GetId(), 5)
	got := e.ag.school.deliveries()
	if len(got) != 1 || got[0].msg.GetKind() != notifyv1.NotificationKind_ACTION {
		t.Fatalf("school received %d messages (%v), want the one action", len(got), got)
	}
	m := got[0].msg
	if m.GetIncidentAt() == nil || !strings.Contains(m.GetNote(), "Operation Encompass") || m.GetDecision().GetDecisionId() != d {
		t.Fatalf("school's message lacks the incident or the decision: %s", got[0].body)
	}
	if n := countKind(ns, "ACTION", "example-primary-dsl"); n != 1 {
		t.Fatalf("%d actions to the school", n)
	}

	// Unacknowledged past the school day, it is escalated once, with the decision.
	e.clock.Advance(30 * time.Hour)
	if _, err := e.svc.EscalateDue(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := countKind(e.rows(t, ref.GetId()), "ESCALATION", ""); got != 1 {
		t.Fatalf("%d escalations, want 1", got)
	}
	// The blocker's decision is overdue too and has its own escalation: find this decision's.
	var note string
	e.waitFor(t, "the escalation delivered", func() bool {
		for _, m := range e.ag.duty.ofKind(notifyv1.NotificationKind_ESCALATION) {
			if strings.Contains(m.msg.GetNote(), d) {
				note = m.msg.GetNote()
				return true
			}
		}
		return false
	})
	if !strings.Contains(note, "example-primary-dsl (school_dsl, Operation Encompass)") {
		t.Fatalf("escalation does not say the school's message carried the Encompass notice: %s", note)
	}
}

// An Encompass notice sent by its own timetable before the decision: the decision's message
// to the school is an update that names it, and the decision's one escalation lists the
// school once, its decision and its Encompass notice together; no second escalation follows
// when the notice's own deadline passes.
func TestEncompassSentEarlierMakesTheDecisionAnUpdateWithOneEscalation(t *testing.T) {
	e := newEnv(t)
	ref := e.referral(t)
	e.waitFor(t, "the Encompass notice delivered", func() bool { return len(e.ag.school.ofKind(notifyv1.NotificationKind_ENCOMPASS)) == 1 })
	enc := e.ag.school.ofKind(notifyv1.NotificationKind_ENCOMPASS)[0].msg
	d := uuid.NewString()
	e.decide(t, confirmed, ref, d, 2, rulesv1.Level_LEVEL_4, rulesv1.Rag_RAG_RED, "police", "school_dsl")
	e.settled(t, ref.GetId(), 5)
	actions := e.ag.school.ofKind(notifyv1.NotificationKind_ACTION)
	if len(actions) != 1 {
		t.Fatalf("school got %d decision messages, want 1", len(actions))
	}
	if m := actions[0].msg; m.GetAboutNotificationId() != enc.GetNotificationId() || !strings.Contains(m.GetNote(), "update to the Operation Encompass notice") {
		t.Fatalf("the decision's message is not an update to the Encompass notice: %s", actions[0].body)
	}

	// Police miss the Red hour: one escalation lists police late and the school (decision
	// and Encompass) still to come.
	e.clock.Advance(65 * time.Minute)
	if _, err := e.svc.EscalateDue(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.waitFor(t, "the escalation delivered", func() bool { return len(e.ag.duty.ofKind(notifyv1.NotificationKind_ESCALATION)) == 1 })
	note := e.ag.duty.ofKind(notifyv1.NotificationKind_ESCALATION)[0].msg.GetNote()
	for _, want := range []string{"south-wales-police (police)", "also awaiting example-primary-dsl (school_dsl, Operation Encompass)"} {
		if !strings.Contains(note, want) {
			t.Errorf("escalation does not list %q: %s", want, note)
		}
	}
	if strings.Count(note, "example-primary-dsl") != 1 {
		t.Errorf("the school is listed more than once: %s", note)
	}
	// Thursday's school day begins with both still unacknowledged: nothing more.
	e.clock.Advance(24 * time.Hour)
	if _, err := e.svc.EscalateDue(context.Background()); err != nil {
		t.Fatal(err)
	}
	eventstest.Drained(t, e.js, "notify")
	if got := countKind(e.rows(t, ref.GetId()), "ESCALATION", ""); got != 1 {
		t.Fatalf("%d escalations for one decision, want 1", got)
	}
}

// When only the school is late, its Encompass notice coming due first still raises the
// decision's one escalation, listing the school once.
func TestLateEncompassJoinsTheDecisionsEscalation(t *testing.T) {
	e := newEnv(t)
	ref := e.referral(t)
	e.waitFor(t, "the Encompass notice delivered", func() bool { return len(e.ag.school.ofKind(notifyv1.NotificationKind_ENCOMPASS)) == 1 })
	e.decide(t, confirmed, ref, uuid.NewString(), 2, rulesv1.Level_LEVEL_3B, rulesv1.Rag_RAG_AMBER, "school_dsl", "childrens_social_care")
	ns := e.settled(t, ref.GetId(), 5)
	manager := e.token(t, "rct-mash", auth.RoleManager)
	for _, n := range ns {
		if n.Kind == "ACTION" && n.Agency == "rct-csc" {
			if _, err := e.client.AcknowledgeNotification(bearer(manager), &notifyv1.AcknowledgeNotificationRequest{NotificationId: n.ID, Note: "by telephone"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	e.clock.Advance(24 * time.Hour) // Thursday 10:00: the school's deadlines (08:45) passed
	if n, err := e.svc.EscalateDue(context.Background()); err != nil || n != 2 {
		t.Fatalf("escalated %d (the school's action and Encompass notice), want 2: %v", n, err)
	}
	var esc []store.Notification
	for _, n := range e.rows(t, ref.GetId()) {
		if n.Kind == "ESCALATION" {
			esc = append(esc, n)
		}
	}
	if len(esc) != 1 {
		t.Fatalf("escalations: %v, want 1", summarise(esc))
	}
	e.waitFor(t, "the escalation delivered", func() bool { return len(e.ag.duty.ofKind(notifyv1.NotificationKind_ESCALATION)) == 1 })
	note := e.ag.duty.ofKind(notifyv1.NotificationKind_ESCALATION)[0].msg.GetNote()
	if !strings.Contains(note, "not acknowledged by example-primary-dsl (") || strings.Count(note, "example-primary-dsl") != 1 ||
		!strings.Contains(note, "Operation Encompass") || strings.Contains(note, "rct-csc") {
		t.Fatalf("escalation note: %s", note)
	}
}
