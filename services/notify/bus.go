package notify

import (
	"mash/pkg/busauth"
	"mash/pkg/events"
	eventsv1 "mash/proto/mash/events/v1"
	"mash/services/notify/store"
)

// Bus is all notify may do on NATS: publish its notification and directory events, the
// trace of an agency reading a message it was sent, and agencies' messages
// (mash.notify.<agency>, never an agency's .ack or .answer), and read its own consumers,
// including the ones over agencies' acknowledgements and answers. Its NATS user is refused
// every other subject.
var Bus = busauth.Role{
	Service: "notify",
	Publishes: []string{EventSent, EventDelivered, EventAcknowledged, EventFailed, EventEscalated, EventRetried,
		EventAnswerReceived, EventChangeProposed, EventChangeApproved, EventChangeRejected, EventChangeExpired, EventSecretRotated,
		EventContactNotified, EventContactNoticeFailed, EventAdminDirectory, eventsv1.SubjectNotifyAny, eventsv1.SubjectAccessNotification},
	Durables: []string{consumerDurable, acksDurable, answerInbox, erasureDurable, events.AuditedDurable(store.Schema)},
}

// Durable consumers of notify: events to act on, and agencies' acknowledgements (their
// answers are read by answerInbox).
const (
	consumerDurable = "notify"
	acksDurable     = "notify-acks"
	erasureDurable  = "notify-erasure"
)
