package triage

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/mash-hub/mash/pkg/apierr"
	"github.com/mash-hub/mash/pkg/auth"
	"github.com/mash-hub/mash/pkg/peers"
	"github.com/mash-hub/mash/pkg/server"
	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
	notifyv1 "github.com/mash-hub/mash/proto/mash/notify/v1"
	triagev1 "github.com/mash-hub/mash/proto/mash/triage/v1"
	"github.com/mash-hub/mash/services/triage/store"
)

// EventLeadProfessionalNamed is published once per case a lead professional is named for;
// notify tells the named agency.
const EventLeadProfessionalNamed = eventsv1.SubjectCaseLeadProfessionalNamed

// agencyID is the shape of an agency's directory id.
var agencyID = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)

// maxLeadText bounds a team's or person's name.
const maxLeadText = 200

// NameLeadProfessional names who leads the work with a decided case's child, or with every
// decided child of its family group, each case changing (and going on its trail) in one
// transaction.
// checkLeadProfessional is NameLeadProfessional's check of its request.
func checkLeadProfessional(req *triagev1.NameLeadProfessionalRequest) []apierr.Violation {
	agency, team, person := strings.TrimSpace(req.GetAgency()), strings.TrimSpace(req.GetTeam()), strings.TrimSpace(req.GetPerson())
	var vs []apierr.Violation
	if req.GetReferralId() == "" {
		vs = append(vs, apierr.Violation{Field: "referralId", Reason: "is required"})
	}
	if agency == "" || len(agency) > 64 || !agencyID.MatchString(agency) {
		vs = append(vs, apierr.Violation{Field: "agency", Reason: "is required: the lead agency's id in the partnership's directory (e.g. rct-childrens-services)"})
	}
	if team == "" || len(team) > maxLeadText {
		vs = append(vs, apierr.Violation{Field: "team", Reason: fmt.Sprintf("is required: the team within the agency that leads (at most %d characters)", maxLeadText)})
	}
	if person == "" || len(person) > maxLeadText {
		vs = append(vs, apierr.Violation{Field: "person", Reason: fmt.Sprintf("is required: the professional who leads, as \"name (role)\" (at most %d characters)", maxLeadText)})
	}
	switch req.GetScope() {
	case triagev1.LeadProfessionalScope_LEAD_PROFESSIONAL_SCOPE_UNSPECIFIED,
		triagev1.LeadProfessionalScope_LEAD_FOR_CHILD, triagev1.LeadProfessionalScope_LEAD_FOR_FAMILY_GROUP:
	default:
		vs = append(vs, apierr.Violation{Field: "scope", Reason: "is not a lead professional scope: LEAD_FOR_CHILD or LEAD_FOR_FAMILY_GROUP"})
	}
	return vs
}

func (a *grpcAPI) NameLeadProfessional(ctx context.Context, req *triagev1.NameLeadProfessionalRequest) (*triagev1.NameLeadProfessionalResponse, error) {
	id, err := server.Require(ctx, auth.DecideCases)
	if err != nil {
		return nil, err
	}
	s := a.svc
	if vs := checkLeadProfessional(req); len(vs) > 0 {
		return nil, apierr.Invalid(vs)
	}
	agency, team, person := strings.TrimSpace(req.GetAgency()), strings.TrimSpace(req.GetTeam()), strings.TrimSpace(req.GetPerson())
	scope := req.GetScope()
	if scope == triagev1.LeadProfessionalScope_LEAD_PROFESSIONAL_SCOPE_UNSPECIFIED {
		scope = triagev1.LeadProfessionalScope_LEAD_FOR_CHILD
	}
	pool := s.store.Pool()
	c, err := store.GetCase(ctx, pool, req.GetReferralId())
	if err == nil && !id.Serves(c.Partnership) {
		err = store.ErrNotFound
	}
	if err != nil {
		return nil, notFoundAs(err, caseNotFound(req.GetReferralId()))
	}
	if err := s.checkLeadAgency(ctx, c.Partnership, agency); err != nil {
		return nil, err
	}
	now := s.now().UTC()
	lead := store.Lead{Agency: agency, Team: team, Person: person, Scope: int16(scope), NamedBy: id.ClientID, NamedByRole: string(id.Role), NamedAt: &now}
	var named []store.Case
	err = s.store.InTx(ctx, func(tx pgx.Tx) error {
		named = nil
		ids := []string{c.ReferralID}
		if scope == triagev1.LeadProfessionalScope_LEAD_FOR_FAMILY_GROUP {
			if c.FamilyGroup == "" {
				return invalid("scope", fmt.Sprintf("case %s was not sent in a family group: name the lead professional for the child (LEAD_FOR_CHILD)", c.ReferralID))
			}
			siblings, err := store.FamilyGroup(ctx, tx, c.SourceAgency, c.FamilyGroup, c.ReferralID, caseListLimit)
			if err != nil {
				return err
			}
			for _, f := range siblings {
				if id.Serves(f.Partnership) && decided(f) {
					ids = append(ids, f.ReferralID)
				}
			}
		}
		// Locked in id order, so two namings for one family never wait on each other.
		order := slices.Clone(ids)
		slices.Sort(order)
		locked := map[string]store.Case{}
		for _, r := range order {
			lc, err := store.LockCase(ctx, tx, r)
			if err != nil {
				return notFoundAs(err, caseNotFound(r))
			}
			locked[r] = lc
		}
		first := locked[c.ReferralID]
		if err := checkVersion(first, req.GetExpectedVersion()); err != nil {
			return err
		}
		if !decided(first) {
			return apierr.FailedPrecondition(fmt.Sprintf("case %s is %s: a lead professional is named once a practitioner has decided the case",
				first.ReferralID, triagev1.CaseState(first.State)))
		}
		for _, r := range ids {
			lc := locked[r]
			if e, err := store.ErasureOf(ctx, tx, r); err != nil || e != nil {
				if err != nil {
					return err
				}
				if r == c.ReferralID {
					return caseErased(r)
				}
				continue // an erased sibling holds nothing more
			}
			after, err := store.SetLead(ctx, tx, r, lead)
			if err != nil {
				return err
			}
			ev := &eventsv1.LeadProfessionalNamed{ReferralId: r, LeadProfessional: leadToProto(after.Lead), Previous: leadToProto(lc.Lead),
				GroupCases: int32(len(ids))}
			if scope == triagev1.LeadProfessionalScope_LEAD_FOR_FAMILY_GROUP {
				ev.FamilyGroup = c.FamilyGroup
			}
			if err := s.emit(ctx, tx, staff(id), EventLeadProfessionalNamed, after.Partnership, r, after.Version, ev); err != nil {
				return err
			}
			named = append(named, after)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.relay.Wake()
	s.log.Info("lead professional named", zap.String("referral_id", c.ReferralID), zap.Int("cases", len(named)),
		zap.String("agency", agency), zap.String("client", id.ClientID))
	resp := &triagev1.NameLeadProfessionalResponse{}
	for _, n := range named {
		resp.Cases = append(resp.Cases, caseToProto(n, s.now()))
	}
	return resp, nil
}

// decided reports whether a person has decided the case (it may since have closed): a lead
// professional follows the decision.
func decided(c store.Case) bool {
	return c.State == store.StateDecided || c.State == store.StateClosed && c.DecidedAt != nil
}

// checkLeadAgency refuses (naming "agency") an agency that neither the partnership's
// directory nor the directory every partnership shares ("default") lists, as notify would
// have nowhere to tell it. When notify cannot answer, the naming stands: notify records a
// notice it cannot route and tells the duty manager, as for any gap in the directory.
func (s *Service) checkLeadAgency(ctx context.Context, partnership, agency string) error {
	if s.peers == nil {
		return nil
	}
	conn, err := s.peers.Conn("notify")
	if err != nil {
		return nil
	}
	client := notifyv1.NewNotifyServiceClient(conn)
	for _, p := range []string{partnership, "default"} {
		resp, err := client.ListAgencies(peers.AsCaller(ctx), &notifyv1.ListAgenciesRequest{Partnership: p})
		if err != nil {
			if c := status.Code(err); c != codes.Unimplemented && c != codes.Unavailable {
				s.log.Warn("notify did not list the directory; lead agency not checked", zap.String("partnership", partnership), zap.Error(err))
			}
			return nil
		}
		for _, a := range resp.GetAgencies() {
			if a.GetId() == agency {
				return nil
			}
		}
	}
	return invalid("agency", fmt.Sprintf("%q is not in the agency directory of partnership %s: name an agency the directory lists, so it can be told", agency, partnership))
}

func leadToProto(l store.Lead) *triagev1.LeadProfessional {
	if l.NamedAt == nil {
		return nil
	}
	return &triagev1.LeadProfessional{Agency: l.Agency, Team: l.Team, Person: l.Person, Scope: triagev1.LeadProfessionalScope(l.Scope),
		NamedBy: l.NamedBy, NamedByRole: l.NamedByRole, NamedAt: ts(l.NamedAt)}
}

// followGroupLead names, for a case just decided, the lead professional its family group
// already has: naming one for the whole group reaches only the siblings decided by then, so
// a sibling decided later joins the group's lead here, in the decision's transaction, with
// its own event (notify tells the agency) as for the siblings named at first. The lead
// keeps who named it; the event's actor is whoever decided. A case that has a lead of its
// own, or whose group has none, is returned unchanged.
func (s *Service) followGroupLead(ctx context.Context, tx pgx.Tx, c store.Case, by auth.Actor) (store.Case, error) {
	if c.FamilyGroup == "" || c.Lead.NamedAt != nil || !decided(c) {
		return c, nil
	}
	siblings, err := store.FamilyGroup(ctx, tx, c.SourceAgency, c.FamilyGroup, c.ReferralID, caseListLimit)
	if err != nil {
		return c, err
	}
	var lead store.Lead
	for _, f := range siblings {
		l := f.Lead
		if f.Partnership != c.Partnership || l.NamedAt == nil || l.Scope != store.ScopeFamilyGroup {
			continue
		}
		if lead.NamedAt == nil || l.NamedAt.After(*lead.NamedAt) { // the group's latest naming
			lead = l
		}
	}
	if lead.NamedAt == nil {
		return c, nil
	}
	cases := 1 // this case and the siblings that share the naming
	for _, f := range siblings {
		if f.Partnership == c.Partnership && f.Lead == lead {
			cases++
		}
	}
	after, err := store.SetLead(ctx, tx, c.ReferralID, lead)
	if err != nil {
		return c, err
	}
	ev := &eventsv1.LeadProfessionalNamed{ReferralId: c.ReferralID, LeadProfessional: leadToProto(after.Lead),
		FamilyGroup: c.FamilyGroup, GroupCases: int32(cases)}
	if err := s.emit(ctx, tx, by, EventLeadProfessionalNamed, after.Partnership, c.ReferralID, after.Version, ev); err != nil {
		return c, err
	}
	s.log.Info("lead professional followed the family group", zap.String("referral_id", c.ReferralID), zap.String("agency", lead.Agency))
	return after, nil
}
