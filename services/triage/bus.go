package triage

import (
	"mash/pkg/access"
	"mash/pkg/busauth"
	"mash/pkg/events"
	"mash/services/triage/store"
)

// Bus is all triage may do on NATS: publish its casework events (the decision itself among
// them: triage is its one door) and reads, and read its own consumers. Its NATS user is
// refused every other subject.
var Bus = busauth.Role{
	Service: "triage",
	Publishes: []string{EventClaimed, EventReleased, EventAssigned, EventDecided, EventDecisionMade, EventClosed, EventStrategyRecorded,
		EventResearchRequested, EventResearchAnswered, EventDisagreementRaised, EventDisagreementEscal, EventDisagreementResolve,
		EventSharingAuthorised, EventSharingRevoked, EventConsentChanged, EventLegalHoldPlaced, EventLegalHoldLifted, EventCaseErased, EventAdminCase, access.EventType("case"),
		access.EventType("queue"), access.EventType("information-requests"), access.EventType("export"), EventChildChanged,
		access.EventType("search"), access.EventType("child")},
	Durables: []string{consumerDurable, events.AuditedDurable(store.Schema)},
}

// consumerDurable is triage's consumer of referrals, decisions and notifications.
const consumerDurable = "triage"
