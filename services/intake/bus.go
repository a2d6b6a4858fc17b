package intake

import (
	"mash/pkg/busauth"
	"mash/pkg/events"
	eventsv1 "mash/proto/mash/events/v1"
	"mash/services/intake/store"
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
