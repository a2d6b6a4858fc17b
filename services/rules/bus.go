package rules

import (
	"mash/pkg/busauth"
	"mash/pkg/events"
	eventsv1 "mash/proto/mash/events/v1"
	"mash/services/rules/store"
)

// Bus is all rules may do on NATS: publish its recommendations and reads, and read its own
// consumers (referrals to recommend on, the decisions triage makes, notifications). Its NATS
// user is refused every other subject: it publishes no decision.
var Bus = busauth.Role{
	Service:   "rules",
	Publishes: []string{EventRecommended, eventsv1.SubjectAccessDecision, eventsv1.SubjectAdminPack},
	Durables:  []string{referralsDurable, decisionsDurable, notifiedDurable, erasureDurable, events.AuditedDurable(store.Schema)},
}

// Durable consumers of rules: referrals to decide, and notifications of its decisions.
const (
	referralsDurable = "rules"
	decisionsDurable = "rules-decisions"
	notifiedDurable  = "rules-notified"
	erasureDurable   = "rules-erasure"
)
