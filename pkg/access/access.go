// Package access records that a caller read a child's record (and why, when the caller sent
// an X-Access-Reason header or x-access-reason metadata): the service writes a
// RecordAccessed event to its own outbox, in a transaction that commits before the record is
// returned, so a read through any API without a trace in the audit log cannot happen.
package access

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mash-hub/mash/pkg/apierr"
	"github.com/mash-hub/mash/pkg/auth"
	"github.com/mash-hub/mash/pkg/events"
	"github.com/mash-hub/mash/pkg/server"
	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
)

// Read is one read of a child's record.
type Read struct {
	// Type is the access event's subject from the event catalogue, naming what was read
	// (eventsv1.SubjectAccessReferral, eventsv1.SubjectAccessDecision, ...).
	Type        string
	Action      string
	Partnership string
	ReferralID  string
	ChildID     string
	// Listed are the records a list read showed (a queue page, search results, information
	// requests): one access entry per page, naming every child on it.
	Listed []Listed
	// Reason, when set, is why the read was made as the request itself said it (an export's
	// reason field, say), in place of the X-Access-Reason the caller may have sent.
	Reason string
}

// Listed is one record shown on a listed page.
type Listed struct {
	ReferralID, ChildID string
}

// ErrErased means the record read belongs to an erased case: its key is destroyed, so no
// access entry could be sealed for it, and nothing is left to read.
var ErrErased = apierr.NotFound("the case was erased: nothing about it is held any more")

// Record writes the access event for r by id into schema's outbox and commits, then wakes
// the relay. An error means the read must not go ahead. The event's payload (the reader's
// stated reason is free text) is sealed with cipher under the case's key, as every event
// about a case is; a list read names no one case and stays clear.
func Record(ctx context.Context, pool *pgxpool.Pool, schema string, wake func(), cipher events.PayloadCipher, id auth.Identity, r Read, now time.Time) error {
	reason := server.AccessReason(ctx)
	if r.Reason != "" {
		reason = r.Reason
	}
	ev := &eventsv1.RecordAccessed{
		ClientId: id.ClientID, Role: string(id.Role), Agency: id.Agency, Action: r.Action, ReferralId: r.ReferralID, ChildId: r.ChildID,
		Reason: reason, ReaderPartnerships: id.Partnerships,
	}
	for _, l := range r.Listed {
		ev.Listed = append(ev.Listed, &eventsv1.ListedRecord{ReferralId: l.ReferralID, ChildId: l.ChildID})
	}
	env, _, err := events.NewEnvelope(r.Type, r.Partnership, r.ReferralID, 0, now, id.EventActor(), ev)
	if err != nil {
		return fmt.Errorf("record access to %s: %w", r.ReferralID, err)
	}
	raw, err := events.Seal(ctx, cipher, env)
	if errors.Is(err, events.ErrPayloadErased) {
		return ErrErased
	}
	if err != nil {
		return fmt.Errorf("record access to %s: %w", r.ReferralID, err)
	}
	if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { return events.InsertOutbox(ctx, tx, schema, env, raw) }); err != nil {
		return fmt.Errorf("record access to %s: %w", r.ReferralID, err)
	}
	if wake != nil {
		wake()
	}
	return nil
}
