package intake

import (
	"github.com/mash-hub/mash/pkg/busauth"
	"github.com/mash-hub/mash/pkg/events"
	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
	"github.com/mash-hub/mash/services/intake/store"
)

// Bus is all intake may do on NATS: publish the referrals it receives and its reads, and
// read its own consumers. Its NATS user is refused every other subject.
var Bus = busauth.Role{
	Service:   "intake",
	Publishes: []string{EventReferralReceived, eventsv1.SubjectAccessReferral},
	Durables:  []string{decidedDurable, erasureDurable, events.AuditedDurable(store.Schema)},
}

// erasureDurable is intake's consumer of erased cases.
const erasureDurable = "intake-erasure"

// decidedDurable is intake's consumer of threshold decisions.
const decidedDurable = "intake-status"
