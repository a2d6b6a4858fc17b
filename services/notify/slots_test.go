package notify_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/mash-hub/mash/pkg/casekeys"
	intakev1 "github.com/mash-hub/mash/proto/mash/intake/v1"
	rulesv1 "github.com/mash-hub/mash/proto/mash/rules/v1"
	"github.com/mash-hub/mash/services/notify"
	"github.com/mash-hub/mash/services/notify/store"
)

// Notifications left unclaimed for want of a sending slot are claimed as soon as a slot is
// freed, not at the worker's next poll: here there is one slot and the poll is an hour
// away, so every message after the first goes only because the attempt before it ended.
func TestAFreedSlotClaimsWhatWaitedForOne(t *testing.T) {
	e := newEnv(t, func(c *notify.DeliveryConfig) { c.InFlight = 1; c.Poll = time.Hour })
	ref := e.referral(t, noEncompass)
	e.decide(t, confirmed, ref, uuid.NewString(), 2, rulesv1.Level_LEVEL_3A, rulesv1.Rag_RAG_AMBER,
		"childrens_social_care", "police", "duty_manager")
	ns := e.settled(t, ref.GetId(), 5) // the receipt, three actions and the outcome
	for _, n := range ns {
		if n.State != store.StateDelivered {
			t.Errorf("%s to %s is %s, want DELIVERED", n.Kind, n.Agency, n.State)
		}
	}
}

// An agency that stops answering holds only its own sending slots: its notifications wait
// unclaimed (so no lease runs out on them and nothing is sent twice) while every other
// agency's go. Here the duty manager may have one attempt in flight and its endpoint hangs,
// there are three slots in all, and four referrals each owe it an action: a claim takes two
// rounds of an agency's slots, the attempt in flight and the next.
func TestAnAgencyThatStopsAnsweringHoldsOnlyItsOwnSlots(t *testing.T) {
	e := newEnv(t, func(c *notify.DeliveryConfig) { c.InFlight = 3; c.SendTimeout = 10 * time.Minute })
	f := e.directoryFile()
	for i := range f.Agencies {
		if f.Agencies[i].ID == "rct-duty-manager" {
			f.Agencies[i].Concurrency = 1
		}
	}
	e.load(t, f)
	answer := make(chan struct{})
	e.ag.duty.respond = func(int64) (int, time.Duration) { <-answer; return 200, 0 }
	var once sync.Once
	release := func() { once.Do(func() { close(answer) }) }
	t.Cleanup(release)

	var refs []string
	for range 4 {
		ref := e.referral(t, noEncompass)
		e.decide(t, confirmed, ref, uuid.NewString(), 2, rulesv1.Level_LEVEL_3A, rulesv1.Rag_RAG_AMBER, "police", "duty_manager")
		refs = append(refs, ref.GetId())
	}
	// Each referral's receipt, police action and outcome are delivered while the duty manager
	// still has not answered the first of its four.
	e.waitFor(t, "every other agency's notifications delivered", func() bool {
		var others, waiting int
		for _, id := range refs {
			for _, n := range e.rows(t, id) {
				switch {
				case n.Agency == "rct-duty-manager":
					waiting++
				case n.State == store.StateDelivered:
					others++
				}
			}
		}
		return others == 12 && waiting == 4
	})
	var sending, pending int
	for _, id := range refs {
		for _, n := range e.rows(t, id) {
			if n.Agency != "rct-duty-manager" {
				continue
			}
			switch n.State {
			case store.StateSending:
				sending++
			case store.StatePending:
				pending++
			}
		}
	}
	if sending != 2 || pending != 2 {
		t.Errorf("duty manager's notifications: %d sending and %d pending, want 2 claimed and 2 left for a free slot", sending, pending)
	}

	release()
	for _, id := range refs {
		for _, n := range e.settled(t, id, 4) {
			if n.State != store.StateDelivered {
				t.Errorf("%s to %s is %s, want DELIVERED", n.Kind, n.Agency, n.State)
			}
		}
	}
	if got := e.ag.duty.calls.Load(); got != 4 {
		t.Errorf("duty manager called %d times, want once per action", got)
	}
}

// An agency that answered quickly and then stops: a claim took many rounds of its one slot,
// and those that would wait past what their lease allows give their claim back unsent, so
// none is claimed again while still waiting and sent twice.
func TestNotificationsThatCannotBeSentInTheirLeaseGiveItBack(t *testing.T) {
	// Lease 13 s: a claimed notification may wait 7 s for its slot.
	e := newEnv(t, func(c *notify.DeliveryConfig) { c.SendTimeout = 4 * time.Second; c.MaxAttempts = 100 })
	f := e.directoryFile()
	for i := range f.Agencies {
		if f.Agencies[i].ID == "rct-duty-manager" {
			f.Agencies[i].Concurrency = 1
		}
	}
	e.load(t, f)
	warm := e.referral(t, noEncompass)
	e.decide(t, confirmed, warm, uuid.NewString(), 2, rulesv1.Level_LEVEL_3A, rulesv1.Rag_RAG_AMBER, "duty_manager")
	e.settled(t, warm.GetId(), 3)

	// Now it answers nothing useful until released. Its first answers are held until every
	// action is due, so all are claimed on what the agency was (quick), however slowly this
	// machine publishes them; then each attempt takes a second to fail, 16 in a row, far past
	// the 7 s a claim may wait. (A 503, never a late 200: an answer after the sender gave up
	// would be a delivery the sender never counted.)
	answer, allDue := make(chan struct{}), make(chan struct{})
	var once, dueOnce sync.Once
	release := func() { once.Do(func() { close(answer) }) }
	markDue := func() { dueOnce.Do(func() { close(allDue) }) }
	t.Cleanup(release)
	t.Cleanup(markDue)
	e.ag.duty.respond = func(int64) (int, time.Duration) {
		select {
		case <-answer:
			return 200, 0
		default:
		}
		<-allDue
		return 503, time.Second
	}
	var refs []string
	for range 16 {
		ref := e.referral(t, noEncompass)
		e.decide(t, confirmed, ref, uuid.NewString(), 2, rulesv1.Level_LEVEL_3A, rulesv1.Rag_RAG_AMBER, "duty_manager")
		refs = append(refs, ref.GetId())
	}
	st := store.New(e.pool)
	dutyOf := func(id string) (store.Notification, bool) {
		for _, n := range e.rows(t, id) {
			if n.Agency == "rct-duty-manager" && n.Kind == "ACTION" {
				return n, true
			}
		}
		return store.Notification{}, false
	}
	e.waitFor(t, "an action to the duty manager for every referral", func() bool {
		for _, id := range refs {
			if _, ok := dutyOf(id); !ok {
				return false
			}
		}
		return true
	})
	markDue()
	var gaveBack int
	e.waitFor(t, "every action to the duty manager attempted or given back", func() bool {
		gaveBack = 0
		for _, id := range refs {
			n, ok := dutyOf(id)
			if !ok {
				return false
			}
			as, err := st.Attempts(context.Background(), n.ID)
			if err != nil {
				t.Fatal(err)
			}
			if len(as) == 0 {
				return false
			}
			for _, a := range as {
				if strings.HasPrefix(a.Result, "not attempted: rct-duty-manager had no free sending slot") {
					gaveBack++
				}
			}
		}
		return true
	})
	if gaveBack == 0 {
		t.Error("no action gave its claim back, though most could not be sent within their lease")
	}

	release()
	for _, id := range refs {
		e.settled(t, id, 3)
		if n, _ := dutyOf(id); n.State != store.StateDelivered {
			t.Errorf("action of %s is %s, want DELIVERED", id, n.State)
		}
	}
	seen := map[string]int{}
	for _, d := range e.ag.duty.deliveries() {
		seen[d.key]++
	}
	for key, times := range seen {
		if times > 1 {
			t.Errorf("the duty manager was sent %s %d times", key, times)
		}
	}
	if len(seen) != 17 {
		t.Errorf("the duty manager received %d actions, want 17", len(seen))
	}
}

// A notification whose events cannot be sealed (its case key was wrapped under another
// key-encryption key, as when two installations share a database) is set aside with the
// reason, and every other message of the claim goes; once the right key is back it is sent,
// announced once.
func TestANotificationThatCannotBeSealedDoesNotHoldUpTheRest(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	keysUnder := func(kek []byte) *casekeys.Store {
		w, err := casekeys.NewLocalWrapper(kek)
		if err != nil {
			t.Fatal(err)
		}
		ks, err := casekeys.New(e.pool, w, casekeys.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return ks
	}
	ours, theirs := make([]byte, casekeys.KEKSize), make([]byte, casekeys.KEKSize)
	for i := range theirs {
		ours[i], theirs[i] = 1, 2
	}
	e.cipher = keysUnder(ours)
	e.restart()

	// The other installation made this case's key first.
	stuckID := uuid.NewString()
	if _, err := keysUnder(theirs).Key(ctx, stuckID); err != nil {
		t.Fatal(err)
	}
	stuck := e.referral(t, noEncompass, func(r *intakev1.Referral) { r.Id = stuckID })
	e.decide(t, confirmed, stuck, uuid.NewString(), 2, rulesv1.Level_LEVEL_3A, rulesv1.Rag_RAG_RED, "police", "duty_manager")
	e.waitFor(t, "the stuck referral's notifications set aside", func() bool {
		ns := e.rows(t, stuckID)
		for _, n := range ns {
			if !strings.Contains(n.LastError, "a different key-encryption key") {
				return false
			}
		}
		return len(ns) == 4
	})

	// Amber, so the stuck Red ones come first in every claim.
	ref := e.referral(t, noEncompass)
	e.decide(t, confirmed, ref, uuid.NewString(), 2, rulesv1.Level_LEVEL_3A, rulesv1.Rag_RAG_AMBER, "police", "duty_manager")
	for _, n := range e.settled(t, ref.GetId(), 4) {
		if n.State != store.StateDelivered {
			t.Errorf("%s to %s is %s (%s), want DELIVERED", n.Kind, n.Agency, n.State, n.LastError)
		}
	}
	for _, n := range e.rows(t, stuckID) {
		if n.State != store.StatePending || n.Attempts != 0 {
			t.Errorf("stuck %s to %s is %s after %d attempts, want PENDING and none counted", n.Kind, n.Agency, n.State, n.Attempts)
		}
	}
	for _, d := range e.ag.police.deliveries() {
		if d.msg.GetReference() == stuck.GetReference() {
			t.Errorf("police were sent %s of the stuck referral before its event could be sealed", d.msg.GetKind())
		}
	}

	// Nobody acknowledges: the other referral's actions are escalated, the stuck ones wait.
	e.clock.Advance(48 * time.Hour)
	if n, err := e.svc.EscalateDue(ctx); err != nil || n == 0 {
		t.Fatalf("escalated %d, want the other referral's actions: %v", n, err)
	}
	if got := countKind(e.rows(t, ref.GetId()), "ESCALATION", ""); got != 1 {
		t.Errorf("%d escalations of the other referral's decision, want 1", got)
	}
	for _, n := range e.rows(t, stuckID) {
		if n.EscalatedAt != nil || n.Kind == "ESCALATION" {
			t.Errorf("stuck %s to %s escalated while its events cannot be sealed", n.Kind, n.Agency)
		}
	}

	// The operator puts the other installation's key in place.
	e.cipher = keysUnder(theirs)
	e.restart()
	ns := e.settled(t, stuckID, 4)
	for _, n := range ns {
		if n.State != store.StateDelivered || n.Attempts != 1 {
			t.Errorf("stuck %s to %s is %s after %d attempts, want DELIVERED at the first", n.Kind, n.Agency, n.State, n.Attempts)
		}
	}
	e.outboxRelayed(t)
	var sent int
	for _, env := range e.streamEvents(t, notify.EventSent) {
		if env.GetReferralId() == stuckID {
			sent++
		}
	}
	if sent != len(ns) {
		t.Errorf("%d sent events for the stuck referral's %d notifications, want one each", sent, len(ns))
	}
}
