package notify

import (
	"context"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
	intakev1 "github.com/mash-hub/mash/proto/mash/intake/v1"
	rulesv1 "github.com/mash-hub/mash/proto/mash/rules/v1"
	"github.com/mash-hub/mash/services/notify/share"
	"github.com/mash-hub/mash/services/notify/store"
)

// ImmediateDanger is who "authorised" what the rules' level 4 Red recommendation shares at
// once: the law allows sharing without consent to protect a child from significant harm.
const ImmediateDanger = "immediate danger"

// consentGiven reports whether the family's consent lets a decision be shared as decided.
func consentGiven(status string) bool {
	return status == intakev1.ConsentStatus_GIVEN.String()
}

// shareOn is what an action share rests on: the consent position and lawful basis recorded
// with it, who authorised it when not consent, and the sharing generation it belongs to.
type shareOn struct {
	basis      *share.Basis
	by         string
	generation int64
}

// shareOnFor says what a share made now rests on, or held when nothing may be shared:
// consent refused, not sought or withdrawn, with no manager's authorisation. A referral
// notify has no position for (from before positions were kept) shares on its own consent.
func shareOnFor(pos store.Sharing, found, recommendation bool) (shareOn, bool) {
	if !found {
		return shareOn{}, false
	}
	on := shareOn{basis: &share.Basis{ConsentStatus: pos.ConsentStatus}, generation: pos.Generation}
	switch {
	case consentGiven(pos.ConsentStatus):
		return on, false
	case recommendation:
		on.basis.ConsentReason = "shared without consent at once: the rules found the child in immediate danger (level 4, Red); awaiting the hub's decision"
		on.by = ImmediateDanger
		return on, false
	case pos.AuthorisedBy != "":
		on.basis.ConsentReason = "shared without consent on a manager's authorisation: " + pos.Reason
		on.basis.LawfulBasis = pos.LawfulBasis
		on.by = pos.AuthorisedBy
		return on, false
	}
	return on, true
}

// onSharingChanged applies a new sharing position: what rested on consent now withdrawn or
// refused, or on an authorisation now revoked, is withdrawn (and not sent if it has not
// been); what the position now allows of the decision already made is shared.
func (s *Service) onSharingChanged(ctx context.Context, tx pgx.Tx, subject string, ev *eventsv1.SharingChanged) error {
	next := store.Sharing{ConsentStatus: ev.GetConsentStatus()}
	if a := ev.GetAuthorisation(); a != nil {
		next.AuthorisedBy, next.LawfulBasis, next.Reason = a.GetAuthorisedBy(), a.GetLawfulBasis(), a.GetReason()
	}
	st, err := store.ReadDecisionState(ctx, tx, ev.GetReferralId())
	if err != nil {
		return err
	}
	gen, err := store.SetSharing(ctx, tx, ev.GetReferralId(), next)
	if err != nil {
		return err
	}
	next.Generation = gen
	if !st.ReferralFound || !st.AppliedFound || st.Applied.Decision == nil {
		return nil // nothing decided yet: the decision will be shared by this position
	}
	var ref intakev1.Referral
	if err := proto.Unmarshal(st.Referral.Proto, &ref); err != nil {
		return fmt.Errorf("referral %s: decode: %w", st.Referral.ID, err)
	}
	var d rulesv1.Decision
	if err := proto.Unmarshal(st.Applied.Decision, &d); err != nil {
		return fmt.Errorf("decision of %s: decode: %w", st.Referral.ID, err)
	}
	dir, err := s.directoryOf(ctx, tx, ref.GetPartnership())
	if err != nil {
		return err
	}
	now := s.now().UTC()
	sum := decisionSummary(&d)
	consentOK := consentGiven(next.ConsentStatus)
	var p plan
	active := map[string][]store.Notification{}
	for _, n := range st.Active {
		switch {
		case n.AuthorisedBy == "" && !consentOK:
			p.withdraw(dir, &ref, sum, n, now, "the family's consent to sharing was "+consentWord(next.ConsentStatus)+": disregard and delete the earlier notification")
		case n.AuthorisedBy != "" && n.AuthorisedBy != ImmediateDanger && next.AuthorisedBy == "" && !consentOK:
			p.withdraw(dir, &ref, sum, n, now, "the authorisation to share without the family's consent was revoked: disregard and delete the earlier notification")
		default:
			active[n.Role] = append(active[n.Role], n)
		}
	}
	recommendation := d.GetStatus() == rulesv1.DecisionStatus_RECOMMENDED
	on, held := shareOnFor(next, true, recommendation)
	p.actionTo = map[string]string{}
	for role, ns := range active {
		for _, n := range ns {
			if n.DecisionVersion == d.GetVersion() {
				p.actionTo[n.Agency] = role
			}
		}
	}
	if !held && !recommendation {
		if err := p.loadEncompass(ctx, tx, ev.GetReferralId()); err != nil {
			return err
		}
		rag := ragName(d.GetCurrent().GetRag())
		for _, role := range d.GetCurrent().GetAgencies() {
			// A role told of this decision already keeps it; one told only of something
			// earlier (the immediate-danger recommendation) hears the decision in its place.
			if slices.ContainsFunc(active[role], func(n store.Notification) bool { return n.DecisionVersion == d.GetVersion() }) {
				continue
			}
			if err := s.notifyRole(ctx, tx, &p, dir, &ref, sum, role, rag, now, active[role], "", on); err != nil {
				return err
			}
		}
	}
	s.log.Info("sharing position applied", zap.String("referral_id", ev.GetReferralId()), zap.String("event", subject),
		zap.String("consent", next.ConsentStatus), zap.Bool("authorised", next.AuthorisedBy != ""), zap.Int("withdrawn", len(p.withdrawn)),
		zap.Int("created", len(p.creates)))
	return s.execute(ctx, tx, ev.GetReferralId(), p, now)
}

func consentWord(status string) string {
	if i := slices.Index([]string{"REFUSED", "WITHDRAWN", "NOT_SOUGHT"}, status); i >= 0 {
		return []string{"refused", "withdrawn", "not sought"}[i]
	}
	return "not given"
}
