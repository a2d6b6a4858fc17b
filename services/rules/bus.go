package rules

import (
	"github.com/mash-hub/mash/pkg/busauth"
	"github.com/mash-hub/mash/pkg/events"
	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
	"github.com/mash-hub/mash/services/rules/store"
)

// Bus is all rules may do on NATS: publish its recommendations and reads, and read its own
// consumers (referrals to recommend on, the decisions triage makes, corrections of child
// records, notifications). Its NATS user is refused every other subject: it publishes no
// decision.
var Bus = busauth.Role{
	Service:   "rules",
	Publishes: []string{EventRecommended, eventsv1.SubjectAccessDecision, eventsv1.SubjectAdminPack},
	Durables:  []string{referralsDurable, decisionsDurable, childrenDurable, notifiedDurable, erasureDurable, events.AuditedDurable(store.Schema)},
}

// Durable consumers of rules: referrals to decide, and notifications of its decisions.
const (
	referralsDurable = "rules"
	decisionsDurable = "rules-decisions"
	// childrenDurable follows triage's corrections of child records.
	childrenDurable = "rules-children"
	notifiedDurable = "rules-notified"
	erasureDurable  = "rules-erasure"
)
