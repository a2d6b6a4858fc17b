package notify_test

import (
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

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
