package notify_test

import (
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
