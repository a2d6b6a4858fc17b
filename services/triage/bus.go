package triage

import (
	"github.com/mash-hub/mash/pkg/busauth"
	"github.com/mash-hub/mash/pkg/events"
	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
	"github.com/mash-hub/mash/services/triage/store"
)

// Bus is all triage may do on NATS: publish its casework events (the decision itself among
// them: triage is its one door) and reads, and read its own consumers. Its NATS user is
// refused every other subject.
var Bus = busauth.Role{
	Service: "triage",
	Publishes: []string{EventClaimed, EventReleased, EventAssigned, EventDecided, EventDecisionMade, EventClosed, EventStrategyRecorded,
		EventResearchRequested, EventResearchAnswered, EventDisagreementRaised, EventDisagreementEscal, EventDisagreementResolve,
		EventSharingAuthorised, EventSharingRevoked, EventConsentChanged, EventLegalHoldPlaced, EventLegalHoldLifted, EventCaseErased, EventAdminCase, eventsv1.SubjectAccessCase,
		eventsv1.SubjectAccessQueue, eventsv1.SubjectAccessInformationRequests, eventsv1.SubjectAccessExport, eventsv1.SubjectCaseChildChanged,
		eventsv1.SubjectAccessSearch, eventsv1.SubjectAccessChild, EventQualityReviewed, EventLeadProfessionalNamed},
	Durables: []string{consumerDurable, noticesDurable, events.AuditedDurable(store.Schema)},
}

// Triage's consumers: of referrals, recommendations, decisions and channel answers; and of
// notify's events about each notification.
const (
	consumerDurable = "triage"
	noticesDurable  = "triage-notices"
)
