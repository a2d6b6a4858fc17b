// Package adminact puts administrative acts on the audit trail: rule pack uploads and
// activations, API client and console user changes, sign-ins, directory and secret changes.
// Each is an AdminActRecorded event on mash.admin.<area> (eventsv1.SubjectAdmin...), written to the producer's outbox
// in the transaction of the act itself, so an act never commits without its event and the
// relay delivers it even after a crash.
package adminact

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mash-hub/mash/pkg/auth"
	"github.com/mash-hub/mash/pkg/events"
	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
)

// Outcomes of an act.
const (
	Succeeded = "succeeded"
	Refused   = "refused"
	Failed    = "failed"
)

// Act is one administrative act.
type Act struct {
	// Subject is the act's subject from the event catalogue (eventsv1.SubjectAdminPack, ...),
	// whose last token is the area acted on; Verb is what was done to it. The action is
	// "<area>.<verb>", e.g. "pack.activate".
	Subject, Verb                 string
	Actor, ActorRole, Agency      string
	Target, Outcome               string
	ClientAddress, Reason, Detail string
	// Partnership the act concerns, if any (goes on the envelope).
	Partnership string
}

// By fills the actor, role and agency from id and the client address from ctx.
func (a Act) By(ctx context.Context, id auth.Identity) Act {
	a.Actor, a.ActorRole, a.Agency = id.ClientID, string(id.Role), id.Agency
	if a.ClientAddress == "" {
		a.ClientAddress = auth.ClientAddress(ctx)
	}
	return a
}

// Area is the kind of thing acted on: the last token of the act's subject ("pack" for
// mash.admin.pack).
func (a Act) Area() string { return a.Subject[strings.LastIndexByte(a.Subject, '.')+1:] }

// Envelope builds the act's event.
func Envelope(a Act, now time.Time) (*eventsv1.Envelope, []byte, error) {
	if a.Subject == "" || a.Verb == "" || a.Actor == "" {
		return nil, nil, fmt.Errorf("admin act: subject, verb and actor are required (got %q, %q, %q)", a.Subject, a.Verb, a.Actor)
	}
	area := a.Area()
	outcome := a.Outcome
	if outcome == "" {
		outcome = Succeeded
	}
	env, raw, err := events.NewEnvelope(a.Subject, a.Partnership, "", 0, now, events.Actor(a.Actor, a.ActorRole, a.Agency), &eventsv1.AdminActRecorded{
		Actor: a.Actor, ActorRole: a.ActorRole, Agency: a.Agency, Action: area + "." + a.Verb, Target: a.Target,
		Outcome: outcome, ClientAddress: a.ClientAddress, Reason: a.Reason, Detail: a.Detail,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("admin act %s.%s: %w", area, a.Verb, err)
	}
	return env, raw, nil
}

// Insert writes the act's event into schema's outbox within tx; wake the relay after commit.
func Insert(ctx context.Context, tx pgx.Tx, schema string, a Act, now time.Time) error {
	env, raw, err := Envelope(a, now)
	if err != nil {
		return err
	}
	if err := events.InsertOutbox(ctx, tx, schema, env, raw); err != nil {
		return fmt.Errorf("admin act %s.%s: %w", a.Area(), a.Verb, err)
	}
	return nil
}
