package rules

import (
	"mash/pkg/access"
	"mash/pkg/adminact"
	"mash/pkg/busauth"
	"mash/pkg/events"
	"mash/services/rules/store"
)

// Bus is all rules may do on NATS: publish its recommendations and reads, and read its own
// consumers (referrals to recommend on, the decisions triage makes, notifications). Its NATS
// user is refused every other subject: it publishes no decision.
var Bus = busauth.Role{
	Service:   "rules",
	Publishes: []string{EventRecommended, access.EventType("decision"), adminact.SubjectPrefix + "pack"},
	Durables:  []string{referralsDurable, decisionsDurable, notifiedDurable, erasureDurable, events.AuditedDurable(store.Schema)},
}

// Durable consumers of rules: referrals to decide, and notifications of its decisions.
const (
	referralsDurable = "rules"
	decisionsDurable = "rules-decisions"
	notifiedDurable  = "rules-notified"
	erasureDurable   = "rules-erasure"
)
