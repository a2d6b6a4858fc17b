package notify

import (
	"github.com/mash-hub/mash/pkg/busauth"
	"github.com/mash-hub/mash/pkg/events"
	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
	"github.com/mash-hub/mash/services/notify/store"
)

// Bus is all notify may do on NATS: publish its notification and directory events, the
// trace of an agency reading a message it was sent, and agencies' messages
// (mash.notify.<agency>, never an agency's .ack or .answer), read its own consumers,
// including the ones over agencies' acknowledgements and answers on the agency stream, and
// delete an erased case's messages from that stream. Its NATS user is refused every other
// subject.
var Bus = busauth.Role{
	Service: "notify",
	Publishes: []string{EventSent, EventDelivered, EventAcknowledged, EventFailed, EventEscalated, EventRetried,
		EventAnswerReceived, EventChangeProposed, EventChangeApproved, EventChangeRejected, EventChangeExpired, EventSecretRotated,
		EventContactNotified, EventContactNoticeFailed, EventAdminDirectory, eventsv1.SubjectNotifyAny, eventsv1.SubjectAccessNotification},
	Durables: []string{consumerDurable, erasureDurable, events.AuditedDurable(store.Schema)},
	// Agencies' acknowledgements and answers rest on the agency stream, and so do the
	// messages notify deletes when their case is erased.
	AgencyDurables:        []string{acksDurable, answerInbox},
	DeletesAgencyMessages: true,
}

// Durable consumers of notify: events to act on, and agencies' acknowledgements (their
// answers are read by answerInbox).
const (
	consumerDurable = "notify"
	acksDurable     = "notify-acks"
	erasureDurable  = "notify-erasure"
)
