package events

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mash-hub/mash/pkg/failpoint"
	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
)

// StreamSpec declares one JetStream stream. Every stream mash uses is listed in Streams.
type StreamSpec struct {
	Name        string
	Subjects    []string
	Description string
	// AllowDelete lets a message be deleted by sequence (erasure of a case). Purge stays
	// denied on every stream, and who may delete is decided by the bus permissions.
	AllowDelete bool
}

// StreamName is the stream that carries every mash event (every catalogue subject outside
// the agencies' channel).
const StreamName = "MASH"

// AgencyStreamName is the stream of the agencies' channel: the messages notify sends on
// mash.notify.<agency> and the agencies' acknowledgements and answers. It is apart from
// StreamName because those messages are JSON in clear (an agency must read what it is sent)
// and an erased case's messages must be deleted from it, while the event stream denies
// deletes; JetStream forbids two streams with overlapping subjects, so StreamName lists the
// event families instead of mash.>.
const AgencyStreamName = "MASH_AGENCY"

// Streams is the one place streams are declared; EnsureStreams creates or updates them, in
// this order: the event stream first, so that a deployment whose event stream still covers
// mash.> gives up the agencies' subjects before the agency stream claims them.
var Streams = []StreamSpec{{
	Name:        StreamName,
	Subjects:    EventSubjects(),
	Description: "mash domain events (subject = event type); each message is a mash.events.v1.Envelope with Nats-Msg-Id = event id",
}, {
	Name:        AgencyStreamName,
	Subjects:    AgencySubjects(),
	Description: "agencies' channel: messages to mash.notify.<agency> (JSON, Nats-Msg-Id = notification id), deleted when their case is erased, and agencies' acknowledgements and answers",
	AllowDelete: true,
}}

// EventSubjects are the subjects of the event stream: mash.<family>.> for every family of
// the event catalogue's envelope subjects (mash.referral.>, mash.case.>, ...), so a new
// event of a known family needs no stream change. No family may be the agencies' channel's.
func EventSubjects() []string {
	var out []string
	for _, e := range eventsv1.Catalogue {
		if e.Channel {
			continue
		}
		if f := "mash." + family(e.Subject) + ".>"; !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	slices.Sort(out)
	return out
}

// AgencySubjects are the subjects of the agency stream: the catalogue's channel subjects
// (mash.notify.*, mash.notify.*.ack, mash.notify.*.answer).
func AgencySubjects() []string {
	var out []string
	for _, e := range eventsv1.Catalogue {
		if e.Channel && !slices.Contains(out, e.Subject) {
			out = append(out, e.Subject)
		}
	}
	return out
}

// family is the second token of a mash subject: case for mash.case.erased.
func family(subject string) string {
	toks := strings.Split(subject, ".")
	if len(toks) < 2 {
		return subject
	}
	return toks[1]
}

// StreamOptions are the settings that differ between a laptop and a cluster.
type StreamOptions struct {
	// Replicas is 1 on a laptop, 3 in a cluster. Default 1.
	Replicas int
	// Duplicates is the window in which a Nats-Msg-Id is remembered. It must cover the
	// longest time a relay can keep republishing a row (broker outage, relay restart).
	// Default 30m, at least MinDuplicates.
	Duplicates time.Duration
	// MaxAge is how long messages are kept. Default 14 days.
	MaxAge time.Duration
}

// Defaults and bounds for StreamOptions.
const (
	DefaultReplicas   = 1
	DefaultDuplicates = 30 * time.Minute
	DefaultMaxAge     = 14 * 24 * time.Hour
	// MinDuplicates is the shortest dedupe window accepted: shorter ones let a relay that
	// was down a few minutes republish an event as new.
	MinDuplicates = 15 * time.Minute
)

func (o StreamOptions) withDefaults() StreamOptions {
	if o.Replicas == 0 {
		o.Replicas = DefaultReplicas
	}
	if o.Duplicates == 0 {
		o.Duplicates = DefaultDuplicates
	}
	if o.MaxAge == 0 {
		o.MaxAge = DefaultMaxAge
	}
	return o
}

func (o StreamOptions) validate() error {
	var errs []error
	if o.Replicas < 1 || o.Replicas > 5 {
		errs = append(errs, fmt.Errorf("Replicas is %d: use 1 to 5 (1 on a laptop, 3 in a cluster)", o.Replicas))
	}
	if o.Duplicates < MinDuplicates {
		errs = append(errs, fmt.Errorf("Duplicates is %s: use at least %s so a republish after an outage is still recognised", o.Duplicates, MinDuplicates))
	}
	if o.MaxAge < o.Duplicates {
		errs = append(errs, fmt.Errorf("MaxAge %s is shorter than the Duplicates window %s: make MaxAge longer", o.MaxAge, o.Duplicates))
	}
	return errors.Join(errs...)
}

// StreamConfig is the full JetStream configuration for spec with opts (defaults applied).
// It never uses WorkQueue or Interest retention: see the package documentation.
func StreamConfig(spec StreamSpec, opts StreamOptions) jetstream.StreamConfig {
	opts = opts.withDefaults()
	return jetstream.StreamConfig{
		Name:        spec.Name,
		Description: spec.Description,
		Subjects:    spec.Subjects,
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Discard:     jetstream.DiscardOld,
		MaxAge:      opts.MaxAge,
		Duplicates:  opts.Duplicates,
		Replicas:    opts.Replicas,
		// Tests only (failpoint builds): a stream an event can be deleted from behind the
		// system's back, to prove the reconciler repairs it.
		DenyDelete: !spec.AllowDelete && !failpoint.Armed("stream.allow-delete"),
		DenyPurge:  true,
		MaxMsgs:    -1,
		MaxBytes:   -1,
		// Relays publish a large round as one atomic batch: one fsync for the round.
		AllowAtomicPublish: true,
	}
}

// EnsureStreams creates every stream in Streams, or updates it to the declared settings.
// It is safe to call at every start and from several processes at once.
func EnsureStreams(ctx context.Context, js jetstream.JetStream, opts StreamOptions) error {
	if js == nil {
		return errors.New("ensure streams: no JetStream connection")
	}
	opts = opts.withDefaults()
	if err := opts.validate(); err != nil {
		return fmt.Errorf("ensure streams: %w", err)
	}
	for _, spec := range Streams {
		if _, err := js.CreateOrUpdateStream(ctx, StreamConfig(spec, opts)); err != nil {
			return fmt.Errorf("ensure stream %s: %w", spec.Name, err)
		}
	}
	return nil
}
