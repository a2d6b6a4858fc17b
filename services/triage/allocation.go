package triage

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"
	rpccode "google.golang.org/genproto/googleapis/rpc/code"

	"github.com/mash-hub/mash/pkg/apierr"
	"github.com/mash-hub/mash/pkg/auth"
	"github.com/mash-hub/mash/pkg/server"
	triagev1 "github.com/mash-hub/mash/proto/mash/triage/v1"
	"github.com/mash-hub/mash/services/triage/store"
)

// StaffDirectory tells triage who may be given work: the people and clients the auth
// schema knows, with their role and the partnerships they serve (auth.Store).
type StaffDirectory interface {
	StaffMember(ctx context.Context, clientID string) (auth.Member, error)
}

// maxReassign bounds one bulk reassignment: a queue page at most.
const maxReassign = maxPageSize

// assigneeRequired refuses a request that names no one to give the work to.
var assigneeRequired = apierr.Violation{Field: "assignee", Reason: "is required: the practitioner's id (user:<id> for a person, or a client id)"}

// assignee looks up who a manager wants to give work to, and refuses (naming the field
// "assignee") anyone who is unknown, disabled or revoked, or whose role does not work cases.
// Whether they serve a case's partnership is checked against each case (servesCase).
func (s *Service) assignee(ctx context.Context, typed string) (auth.Member, error) {
	typed = strings.TrimSpace(typed)
	if typed == "" {
		return auth.Member{}, apierr.Invalid([]apierr.Violation{assigneeRequired})
	}
	m, err := s.staff.StaffMember(ctx, typed)
	switch {
	case errors.Is(err, auth.ErrNotStaff):
		return auth.Member{}, invalid("assignee", fmt.Sprintf("%q is not a member of staff the hub knows: give a person's id as user:<id> (they are known once their account exists or they have signed in), or a client id", typed))
	case err != nil:
		return auth.Member{}, err
	case !m.Active:
		return auth.Member{}, invalid("assignee", fmt.Sprintf("%s is disabled or revoked and can be given no work", typed))
	case !slices.Contains(auth.ClaimCases.Roles(), m.Role):
		return auth.Member{}, invalid("assignee", fmt.Sprintf("%s holds role %s, which does not work cases; assign a practitioner or a manager", typed, m.Role))
	}
	return m, nil
}

// servesCase refuses to give m a case of a partnership m is not staff of.
func servesCase(m auth.Member, c store.Case) error {
	if m.Serves(c.Partnership) {
		return nil
	}
	return invalid("assignee", fmt.Sprintf("%s is not staff of partnership %s, whose case %s is; assign someone who serves it",
		m.ClientID, c.Partnership, c.ReferralID))
}

// assign gives one case to m until a manager changes it: unlike a practitioner's own claim,
// an assignment does not lapse, so a case allocated by a manager stays allocated however
// long the work takes.
func (s *Service) assign(ctx context.Context, id auth.Identity, referralID string, expected int64, m auth.Member) (store.Case, error) {
	now := s.now()
	return s.changeCase(ctx, referralID, id, func(tx pgx.Tx, c store.Case) (store.Case, string, string, error) {
		if err := checkVersion(c, expected); err != nil {
			return c, "", "", err
		}
		if c.State == store.StateClosed {
			return c, "", "", caseClosed(c)
		}
		if err := servesCase(m, c); err != nil {
			return c, "", "", err
		}
		reason := "assigned to " + m.ClientID
		if c.ClaimLive(now) && c.Assignee != m.ClientID {
			reason += " (from " + c.Assignee + ")"
		}
		after, err := store.SetClaim(ctx, tx, c.ReferralID, m.ClientID, nil)
		return after, EventAssigned, reason, err
	})
}

// checkAssign is AssignCase's check of its request; who the assignee is, the staff
// directory says (assignee).
func checkAssign(req *triagev1.AssignCaseRequest) []apierr.Violation {
	if strings.TrimSpace(req.GetAssignee()) == "" {
		return []apierr.Violation{assigneeRequired}
	}
	return nil
}

func (a *grpcAPI) AssignCase(ctx context.Context, req *triagev1.AssignCaseRequest) (*triagev1.AssignCaseResponse, error) {
	id, err := server.Require(ctx, auth.AssignCases)
	if err != nil {
		return nil, err
	}
	if vs := checkAssign(req); len(vs) > 0 {
		return nil, apierr.Invalid(vs)
	}
	s := a.svc
	m, err := s.assignee(ctx, req.GetAssignee())
	if err != nil {
		return nil, err
	}
	c, err := s.assign(ctx, id, req.GetReferralId(), req.GetExpectedVersion(), m)
	if err != nil {
		return nil, err
	}
	s.log.Info("case assigned", zap.String("referral_id", c.ReferralID), zap.String("assignee", m.ClientID), zap.String("client", id.ClientID))
	return &triagev1.AssignCaseResponse{Case: caseToProto(c, s.now())}, nil
}

// ReassignCases assigns each case on its own: a case that cannot be assigned (unknown,
// closed, of a partnership the assignee does not serve) is reported in its result and leaves
// the others assigned, each with its own event. A malformed request, or an assignee who
// cannot be given work at all, changes nothing.
// checkReassign is ReassignCases' check of its request.
func checkReassign(req *triagev1.ReassignCasesRequest) []apierr.Violation {
	ids := req.GetReferralIds()
	var vs []apierr.Violation
	switch {
	case len(ids) == 0:
		vs = append(vs, apierr.Violation{Field: "referralIds", Reason: "is required: the cases to reassign"})
	case len(ids) > maxReassign:
		vs = append(vs, apierr.Violation{Field: "referralIds", Reason: fmt.Sprintf("has %d cases; reassign at most %d at once", len(ids), maxReassign)})
	}
	seen := map[string]bool{}
	for i, r := range ids {
		switch {
		case !isUUIDString(r):
			vs = append(vs, apierr.Violation{Field: fmt.Sprintf("referralIds[%d]", i), Reason: "is not a referral id"})
		case seen[r]:
			vs = append(vs, apierr.Violation{Field: fmt.Sprintf("referralIds[%d]", i), Reason: "repeats an earlier case"})
		}
		seen[r] = true
	}
	if strings.TrimSpace(req.GetAssignee()) == "" {
		vs = append(vs, assigneeRequired)
	}
	return vs
}

func (a *grpcAPI) ReassignCases(ctx context.Context, req *triagev1.ReassignCasesRequest) (*triagev1.ReassignCasesResponse, error) {
	id, err := server.Require(ctx, auth.AssignCases)
	if err != nil {
		return nil, err
	}
	if vs := checkReassign(req); len(vs) > 0 {
		return nil, apierr.Invalid(vs)
	}
	ids := req.GetReferralIds()
	s := a.svc
	m, err := s.assignee(ctx, req.GetAssignee())
	if err != nil {
		return nil, err
	}
	resp := &triagev1.ReassignCasesResponse{}
	for _, r := range ids {
		res := &triagev1.ReassignmentResult{ReferralId: r}
		c, err := s.assign(ctx, id, r, 0, m)
		switch {
		case err == nil:
			res.Case = caseToProto(c, s.now())
			resp.Assigned++
		case apierr.IsInternal(err):
			// Cases assigned before this one stay assigned, each on the trail; the caller
			// retries the rest.
			return nil, fmt.Errorf("reassign case %s to %s: %w", r, m.ClientID, err)
		default:
			st := apierr.Status(err)
			res.ErrorCode, res.Error = rpccode.Code_name[int32(st.Code())], st.Message()
			resp.Refused++
		}
		resp.Results = append(resp.Results, res)
	}
	s.log.Info("cases reassigned", zap.Int("assigned", int(resp.Assigned)), zap.Int("refused", int(resp.Refused)),
		zap.String("assignee", m.ClientID), zap.String("client", id.ClientID))
	return resp, nil
}
