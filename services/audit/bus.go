package audit

import (
	"github.com/mash-hub/mash/pkg/busauth"
	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
)

// Bus is all audit may do on NATS: read every event through its one consumer, and publish
// what it recorded and its signed checkpoints. Its NATS user is refused every other subject.
var Bus = busauth.Role{
	Service:   "audit",
	Publishes: []string{eventsv1.SubjectAuditRecorded, EventCheckpoint},
	Durables:  []string{consumerDurable},
}

// consumerDurable is the audit log's consumer of every event.
const consumerDurable = "audit"
