// Package busauth says who may do what on the NATS bus, in one table: every service's user
// may publish only the events it declares and read only its own durable consumers; every
// agency's user may read only mash.notify.<agency> and publish only its own acknowledgements
// and answers; an operator may inspect the stream and replay dead letters. Nothing is
// anonymous. The same permissions configure the embedded server in code and are rendered as
// a nats-server configuration block for an external one, so the two cannot drift apart.
//
// Each user's replies (JetStream acknowledgements, pull deliveries, API responses) arrive on
// an inbox prefix of its own, InboxPrefix(user), never on the shared _INBOX.>: a client that
// may subscribe to _INBOX.> reads every other client's deliveries, referrals included.
package busauth

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/mash-hub/mash/pkg/events"
	"github.com/mash-hub/mash/pkg/failpoint"
	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
)

// Role is what one service does on the bus, declared by the service beside the subjects and
// consumers it uses. A subject a service publishes but does not list here is refused by the
// server, so adding an event means adding its subject to the service's Role.
type Role struct {
	// Service is the service's name, which is also its NATS user name.
	Service string
	// Publishes are the subjects the service publishes (its events; wildcards allowed).
	Publishes []string
	// Durables are the JetStream durable consumers the service creates and reads on the
	// mash stream. Reading the stream is only ever through these: no service subscribes to
	// event subjects directly.
	Durables []string
	// AgencyDurables are the durable consumers the service reads on the agency stream
	// (events.AgencyStreamName): notify's, over agencies' acknowledgements and answers.
	AgencyDurables []string
	// DeletesAgencyMessages lets the service read and delete messages of the agency stream
	// by sequence: notify, erasing what it sent about an erased case. Nobody may purge it.
	DeletesAgencyMessages bool
}

// Permissions are the subjects a user may publish to and subscribe to. Everything else is
// denied.
type Permissions struct {
	Publish []string
	// PublishDeny carves exceptions out of Publish.
	PublishDeny []string
	Subscribe   []string
}

// User kinds.
const (
	KindService  = "service"
	KindAgency   = "agency"
	KindOperator = "operator"
)

// PlumbingUser is the user of the process itself: it declares the stream and answers the
// readiness probe, and may neither publish nor read events.
const PlumbingUser = "mash"

// namePattern bounds user names to what is safe inside a subject token.
var namePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// ValidName reports whether s can be a service, agency or operator id on the bus.
func ValidName(s string) bool { return namePattern.MatchString(s) }

// UserName is the NATS user of an agency or operator id (a service's user is its name).
func UserName(kind, id string) string {
	switch kind {
	case KindAgency:
		return "agency-" + id
	case KindOperator:
		return "operator-" + id
	}
	return id
}

// InboxPrefix is where user's replies arrive; its client must use it (nats.go:
// nats.CustomInboxPrefix, nats CLI: --inbox-prefix).
func InboxPrefix(user string) string { return "_INBOX_" + user }

func inbox(user string) string { return InboxPrefix(user) + ".>" }

// jsAPI is the JetStream API prefix of the mash stream.
var jsAPI = "$JS.API"

func consumerAPI(s, durable string) []string {
	return []string{
		// Create or update: without a filter in the subject, and with one (single-filter
		// consumers put it in the subject).
		jsAPI + ".CONSUMER.CREATE." + s + "." + durable,
		jsAPI + ".CONSUMER.CREATE." + s + "." + durable + ".>",
		jsAPI + ".CONSUMER.DURABLE.CREATE." + s + "." + durable,
		jsAPI + ".CONSUMER.INFO." + s + "." + durable,
		jsAPI + ".CONSUMER.MSG.NEXT." + s + "." + durable,
		// Acknowledgements go to the reply subject of each delivered message.
		"$JS.ACK." + s + "." + durable + ".>",
	}
}

// Permissions returns the service's permissions: publish its events, read its durables,
// receive its replies, and look up the stream.
func (r Role) Permissions() Permissions {
	pub := slices.Clone(r.Publishes)
	pub = append(pub, jsAPI+".INFO", jsAPI+".STREAM.INFO."+events.StreamName)
	for _, d := range r.Durables {
		pub = append(pub, consumerAPI(events.StreamName, d)...)
	}
	if len(r.AgencyDurables) > 0 || r.DeletesAgencyMessages {
		pub = append(pub, jsAPI+".STREAM.INFO."+events.AgencyStreamName)
	}
	for _, d := range r.AgencyDurables {
		pub = append(pub, consumerAPI(events.AgencyStreamName, d)...)
	}
	if r.DeletesAgencyMessages {
		// Reading by sequence and subject lets an erasure find a message whose place was
		// never recorded (published before a crash) by its Nats-Msg-Id.
		pub = append(pub, jsAPI+".STREAM.MSG.DELETE."+events.AgencyStreamName, jsAPI+".STREAM.MSG.GET."+events.AgencyStreamName,
			jsAPI+".DIRECT.GET."+events.AgencyStreamName, jsAPI+".DIRECT.GET."+events.AgencyStreamName+".>")
	}
	return Permissions{Publish: pub, Subscribe: []string{inbox(r.Service)}}
}

// Validate reports a Role that could not be a user: a bad name, or an empty publish
// subject or durable.
func (r Role) Validate() error {
	if !ValidName(r.Service) {
		return fmt.Errorf("bus role %q: name must be lower-case letters, digits and dashes", r.Service)
	}
	for _, s := range r.Publishes {
		if s == "" || strings.HasPrefix(s, "$") || strings.HasPrefix(s, "_INBOX") {
			return fmt.Errorf("bus role %s: publish subject %q is not an event subject", r.Service, s)
		}
	}
	for _, d := range slices.Concat(r.Durables, r.AgencyDurables) {
		if !ValidName(d) {
			return fmt.Errorf("bus role %s: durable %q must be lower-case letters, digits and dashes", r.Service, d)
		}
	}
	return nil
}

// PlumbingPermissions are the process's own: declare and inspect the mash streams (the
// event stream and the agency stream), and report the account for the readiness probe.
func PlumbingPermissions() Permissions {
	pub := []string{jsAPI + ".INFO"}
	for _, s := range []string{events.StreamName, events.AgencyStreamName} {
		pub = append(pub, jsAPI+".STREAM.INFO."+s, jsAPI+".STREAM.CREATE."+s, jsAPI+".STREAM.UPDATE."+s)
	}
	return Permissions{Publish: pub, Subscribe: []string{inbox(PlumbingUser)}}
}

// AgencySubject is where notify sends agency's messages.
func AgencySubject(agency string) string { return events.Fill(eventsv1.SubjectNotifyAny, agency) }

// AgencyDurable is the one durable consumer an agency may keep on its own subject, on the
// agency stream (events.AgencyStreamName), so it misses nothing sent while it was away.
func AgencyDurable(agency string) string { return "agency-" + agency }

// AgencyPermissions are an agency's: receive its messages (live, or through its durable
// consumer, which the server lets it create only filtered on its own subject), and publish
// its acknowledgements and answers. Notify still checks that each acknowledgement and answer
// refers to something sent to that agency.
func AgencyPermissions(agency string) Permissions {
	s, d, subj := events.AgencyStreamName, AgencyDurable(agency), AgencySubject(agency)
	return Permissions{
		Publish: []string{
			subj + ".ack", subj + ".answer",
			// The filter is part of the subject, so no other subject can be asked for.
			jsAPI + ".CONSUMER.CREATE." + s + "." + d + "." + subj,
			jsAPI + ".CONSUMER.INFO." + s + "." + d,
			jsAPI + ".CONSUMER.MSG.NEXT." + s + "." + d,
			"$JS.ACK." + s + "." + d + ".>",
		},
		Subscribe: []string{subj, inbox(UserName(KindAgency, agency))},
	}
}

// OperatorPermissions are an operator's: inspect the stream, its consumers and its messages
// (an operator already reads the database these events come from) and republish
// dead-lettered events on their event subjects. An operator can neither consume (take
// deliveries from a service's durable) nor publish on agencies' subjects, so it cannot
// acknowledge or answer for an agency.
func OperatorPermissions(id string) Permissions {
	s := events.StreamName
	pub := []string{
		"mash.>",
		jsAPI + ".INFO", jsAPI + ".STREAM.NAMES", jsAPI + ".STREAM.LIST", jsAPI + ".STREAM.INFO." + s,
		jsAPI + ".CONSUMER.NAMES." + s, jsAPI + ".CONSUMER.LIST." + s, jsAPI + ".CONSUMER.INFO." + s + ".*",
		jsAPI + ".STREAM.MSG.GET." + s, jsAPI + ".DIRECT.GET." + s, jsAPI + ".DIRECT.GET." + s + ".>",
		// The agency stream's state and its consumers' lag, never its messages (agencies'
		// messages in clear).
		jsAPI + ".STREAM.INFO." + events.AgencyStreamName, jsAPI + ".CONSUMER.NAMES." + events.AgencyStreamName,
		jsAPI + ".CONSUMER.LIST." + events.AgencyStreamName, jsAPI + ".CONSUMER.INFO." + events.AgencyStreamName + ".*",
	}
	if failpoint.Armed("stream.allow-delete") {
		// Tests only (failpoint builds): delete an event behind the system's back.
		pub = append(pub, jsAPI+".STREAM.MSG.DELETE."+s)
	}
	return Permissions{
		Publish:     pub,
		PublishDeny: []string{"mash.notify.>"},
		Subscribe:   []string{inbox(UserName(KindOperator, id))},
	}
}
