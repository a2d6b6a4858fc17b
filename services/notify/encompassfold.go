package notify

// Operation Encompass notices folded into a decision's plan, so a school gets one message
// per decision.

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/encoding/protojson"

	notifyv1 "github.com/mash-hub/mash/proto/mash/notify/v1"
	"github.com/mash-hub/mash/services/notify/store"
)

// loadEncompass reads the referral's Encompass notices, locked, for foldEncompass: a notice
// to a school the plan also tells is folded into the one message, or, if it went already
// by its own timetable, the decision's message says it follows it.
func (p *plan) loadEncompass(ctx context.Context, tx pgx.Tx, referralID string) error {
	encs, err := store.EncompassOf(ctx, tx, referralID)
	if err != nil {
		return err
	}
	for _, n := range encs {
		if n.Agency != "" {
			if p.encompass == nil {
				p.encompass = map[string]store.Notification{}
			}
			p.encompass[n.Agency] = n
		}
	}
	return nil
}

// encompassMergedNote says a decision's message also carries the Encompass notice.
const encompassMergedNote = "Operation Encompass: police attended a domestic abuse incident involving this child (see incidentAt); this message carries that notice with the hub's decision"

// foldEncompass keeps to one message per agency per decision where the agency is a school
// with an Operation Encompass notice for the referral. A notice not yet sent is merged into
// the decision's message (its content, the incident time, and the earlier of the two
// deadlines) and never sent itself; one already sent by its own timetable makes the
// decision's message an update that follows it. A message replacing one that carried the
// notice carries it again.
func (p *plan) foldEncompass(sp *spec, prior []store.Notification) {
	enc, ok := p.encompass[sp.agency.ID]
	if !ok {
		for _, n := range prior {
			if at, carried := carriedEncompass(n); carried && n.Agency == sp.agency.ID {
				sp.encompass, sp.incidentAt = true, at
				sp.note = joinNotes(sp.note, encompassMergedNote)
			}
		}
		return
	}
	delete(p.encompass, sp.agency.ID)
	if enc.State == store.StatePending && enc.Attempts == 0 {
		at, _ := carriedEncompass(enc)
		sp.encompass, sp.incidentAt, sp.merges = true, at, enc.ID
		if enc.AckDue != nil && (sp.ackDue.IsZero() || enc.AckDue.Before(sp.ackDue)) {
			sp.ackDue = enc.AckDue.UTC()
		}
		sp.note = joinNotes(sp.note, encompassMergedNote)
		return
	}
	sp.aboutID, sp.aboutAgency = enc.ID, enc.Agency
	sp.note = joinNotes(sp.note, "the hub's decision, an update to the Operation Encompass notice "+enc.ID+" sent earlier")
}

// carriedEncompass reports whether a notification carries an Operation Encompass notice
// (its message names the incident time), and that time.
func carriedEncompass(n store.Notification) (time.Time, bool) {
	var m notifyv1.AgencyMessage
	if protojson.Unmarshal(n.Payload, &m) != nil || m.GetIncidentAt() == nil {
		return time.Time{}, false
	}
	return m.GetIncidentAt().AsTime(), true
}

func joinNotes(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}
