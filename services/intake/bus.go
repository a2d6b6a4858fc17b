package intake

import (
	"mash/pkg/access"
	"mash/pkg/busauth"
	"mash/pkg/events"
	"mash/services/intake/store"
)

// Bus is all intake may do on NATS: publish the referrals it receives and its reads, and
// read its own consumers. Its NATS user is refused every other subject.
var Bus = busauth.Role{
	Service:   "intake",
	Publishes: []string{EventReferralReceived, access.EventType("referral")},
	Durables:  []string{decidedDurable, erasureDurable, events.AuditedDurable(store.Schema)},
}

// erasureDurable is intake's consumer of erased cases.
const erasureDurable = "intake-erasure"

// decidedDurable is intake's consumer of threshold decisions.
const decidedDurable = "intake-status"
