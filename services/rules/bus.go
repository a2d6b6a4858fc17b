package rules

import (
	"mash/pkg/access"
	"mash/pkg/adminact"
	"mash/pkg/busauth"
	"mash/pkg/events"
	"mash/services/rules/store"
)

// Bus is all rules may do on NATS: publish its threshold decisions and reads, and read its
// own consumers. Its NATS user is refused every other subject.
var Bus = busauth.Role{
	Service:   "rules",
	Publishes: []string{EventDecided, EventConfirmed, EventOverridden, access.EventType("decision"), adminact.SubjectPrefix + "pack"},
	Durables:  []string{referralsDurable, notifiedDurable, events.AuditedDurable(store.Schema)},
}

// Durable consumers of rules: referrals to decide, and notifications of its decisions.
const (
	referralsDurable = "rules"
	notifiedDurable  = "rules-notified"
)
