package rules

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/mash-hub/mash/pkg/access"
	"github.com/mash-hub/mash/pkg/adminact"
	"github.com/mash-hub/mash/pkg/apierr"
	"github.com/mash-hub/mash/pkg/auth"
	"github.com/mash-hub/mash/pkg/referral"
	"github.com/mash-hub/mash/pkg/server"
	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
	rulesv1 "github.com/mash-hub/mash/proto/mash/rules/v1"
	"github.com/mash-hub/mash/services/rules/pack"
	"github.com/mash-hub/mash/services/rules/store"
)

type grpcAPI struct {
	rulesv1.UnimplementedRulesServiceServer
	svc *Service
}

func (a *grpcAPI) EvaluateReferral(ctx context.Context, req *rulesv1.EvaluateReferralRequest) (*rulesv1.EvaluateReferralResponse, error) {
	if _, err := server.Require(ctx, auth.EvaluateReferrals); err != nil {
		return nil, err
	}
	now := a.svc.now()
	if vs := a.checkEvaluate(req); len(vs) > 0 {
		return nil, apierr.Invalid(vs)
	}
	var compiled *pack.Compiled
	if src := req.GetPackSource(); src != "" {
		c, err := loadPack(src)
		if err != nil {
			return nil, err
		}
		compiled = c
	} else {
		_, c, err := a.svc.activePack(ctx, a.svc.store.Pool(), req.GetReferral().GetPartnership())
		if err != nil {
			return nil, err
		}
		compiled = c
	}
	// A dry run has no child-index history: it shows what the rules make of this referral
	// alone.
	facts := pack.FactsFrom(req.GetReferral(), req.GetReferrerKind(), pack.History{}, now)
	factsJSON, err := json.Marshal(facts.Record())
	if err != nil {
		return nil, err
	}
	return &rulesv1.EvaluateReferralResponse{Outcome: outcomeToProto(compiled.Evaluate(facts)), PackVersion: compiled.Version,
		FactsJson: string(factsJSON)}, nil
}

// checkEvaluate is EvaluateReferral's check of its request: the contract's rules for the
// referral, named under "referral".
func (a *grpcAPI) checkEvaluate(req *rulesv1.EvaluateReferralRequest) []apierr.Violation {
	if req.GetReferral() == nil {
		return []apierr.Violation{{Field: "referral", Reason: "is required"}}
	}
	vs := referral.Validate(req.GetReferral(), a.svc.now())
	out := make([]apierr.Violation, len(vs))
	for i, v := range vs {
		out[i] = apierr.Violation{Field: "referral." + v.Field, Reason: v.Reason}
	}
	return out
}

// loadPack compiles a pack and runs its tests, turning problems into field violations.
func loadPack(src string) (*pack.Compiled, error) {
	c, vs := compilePack(src)
	if len(vs) > 0 {
		return nil, apierr.Invalid(vs)
	}
	return c, nil
}

// compilePack compiles a pack and runs its tests: the pack, or its problems as violations
// of "source".
func compilePack(src string) (*pack.Compiled, []apierr.Violation) {
	c, problems := pack.Load([]byte(src))
	if len(problems) == 0 {
		return c, nil
	}
	vs := make([]apierr.Violation, 0, len(problems))
	for _, p := range problems {
		vs = append(vs, apierr.Violation{Field: "source", Reason: p.String()})
	}
	return nil, vs
}

// checkUpload is UploadPack's check of its request: the pack compiles and passes its tests.
func checkUpload(req *rulesv1.UploadPackRequest) []apierr.Violation {
	_, vs := compilePack(req.GetSource())
	return vs
}

func (a *grpcAPI) ValidatePack(ctx context.Context, req *rulesv1.ValidatePackRequest) (*rulesv1.ValidatePackResponse, error) {
	if _, err := server.Require(ctx, auth.ValidatePacks); err != nil {
		return nil, err
	}
	resp := &rulesv1.ValidatePackResponse{}
	parsed, err := pack.Parse([]byte(req.GetSource()))
	if err != nil {
		resp.Problems = append(resp.Problems, &rulesv1.PackProblem{Where: "source", Problem: err.Error()})
		return resp, nil
	}
	c, problems := pack.Compile(parsed)
	for _, p := range problems {
		resp.Problems = append(resp.Problems, &rulesv1.PackProblem{Where: problemWhere(p), Problem: p.String()})
	}
	if c != nil && len(problems) == 0 {
		failures := c.RunTests()
		resp.TestsRun = int32(len(parsed.Tests))
		for _, f := range failures {
			resp.TestFailures = append(resp.TestFailures, &rulesv1.PackTestFailure{Test: f.Test, Failure: f.String()})
		}
	}
	resp.Valid = len(resp.Problems) == 0 && len(resp.TestFailures) == 0 && resp.TestsRun > 0
	return resp, nil
}

func packToProto(p store.Pack, withSource bool) *rulesv1.Pack {
	out := &rulesv1.Pack{Id: p.ID, Partnership: p.Partnership, Version: p.Version, Description: p.Description, Sha256: p.SHA256,
		UploadedBy: p.UploadedBy, UploadedAt: timestamppb.New(p.UploadedAt), Active: p.Active, ActivatedBy: p.ActivatedBy,
		ActivationReason: p.ActivationReason}
	if p.ActivatedAt != nil {
		out.ActivatedAt = timestamppb.New(*p.ActivatedAt)
	}
	if withSource {
		out.Source = p.Source
	}
	return out
}

func (a *grpcAPI) UploadPack(ctx context.Context, req *rulesv1.UploadPackRequest) (*rulesv1.UploadPackResponse, error) {
	id, err := server.Require(ctx, auth.ManagePacks)
	if err != nil {
		return nil, err
	}
	c, vs := compilePack(req.GetSource())
	if len(vs) > 0 {
		return nil, apierr.Invalid(vs)
	}
	if err := checkPackScope(id, c.Partnership); err != nil {
		return nil, err
	}
	p, err := a.svc.store.InsertPack(ctx, newPack(c.Partnership, c, []byte(req.GetSource()), id.Actor()), func(tx pgx.Tx, p store.Pack) error {
		return adminact.Insert(ctx, tx, store.Schema, adminact.Act{Subject: eventsv1.SubjectAdminPack, Verb: "upload", Target: p.ID + " version " + p.Version,
			Partnership: p.Partnership, Detail: "sha256 " + p.SHA256}.By(ctx, id), a.svc.now())
	})
	if err == nil {
		a.svc.relay.Wake()
	}
	if errors.Is(err, store.ErrPackExists) {
		return nil, apierr.AlreadyExists(fmt.Sprintf("partnership %s already has a pack version %s; give the new pack a new version", c.Partnership, c.Version))
	}
	if err != nil {
		return nil, err
	}
	return &rulesv1.UploadPackResponse{Pack: packToProto(p, false)}, nil
}

func (a *grpcAPI) ActivatePack(ctx context.Context, req *rulesv1.ActivatePackRequest) (*rulesv1.ActivatePackResponse, error) {
	id, err := server.Require(ctx, auth.ManagePacks)
	if err != nil {
		return nil, err
	}
	if vs := checkActivate(req); len(vs) > 0 {
		return nil, apierr.Invalid(vs)
	}
	p, err := a.svc.store.Activate(ctx, req.GetPackId(), id.Actor(), req.GetReason(), func(tx pgx.Tx, p store.Pack) error {
		if err := checkPackScope(id, p.Partnership); err != nil {
			return err
		}
		return adminact.Insert(ctx, tx, store.Schema, adminact.Act{Subject: eventsv1.SubjectAdminPack, Verb: "activate", Target: p.ID + " version " + p.Version,
			Partnership: p.Partnership, Reason: req.GetReason()}.By(ctx, id), a.svc.now())
	})
	if err == nil {
		a.svc.relay.Wake()
	}
	if errors.Is(err, store.ErrNotFound) {
		return nil, apierr.NotFound("no pack " + req.GetPackId())
	}
	if err != nil {
		return nil, err
	}
	return &rulesv1.ActivatePackResponse{Pack: packToProto(p, false)}, nil
}

// checkActivate is ActivatePack's check of its request.
func checkActivate(req *rulesv1.ActivatePackRequest) []apierr.Violation {
	var vs []apierr.Violation
	if strings.TrimSpace(req.GetReason()) == "" {
		vs = append(vs, apierr.Violation{Field: "reason", Reason: "is required: say why this pack goes live"})
	}
	if req.GetPackId() == "" {
		vs = append(vs, apierr.Violation{Field: "packId", Reason: "is required"})
	}
	return vs
}

func (a *grpcAPI) ListPacks(ctx context.Context, req *rulesv1.ListPacksRequest) (*rulesv1.ListPacksResponse, error) {
	if _, err := server.Require(ctx, auth.ReadPacks); err != nil {
		return nil, err
	}
	partnership := req.GetPartnership()
	if partnership == "" {
		partnership = DefaultPartnership
	}
	ps, err := a.svc.store.ListPacks(ctx, partnership)
	if err != nil {
		return nil, err
	}
	resp := &rulesv1.ListPacksResponse{}
	for _, p := range ps {
		resp.Packs = append(resp.Packs, packToProto(p, req.GetIncludeSource()))
	}
	return resp, nil
}

func (a *grpcAPI) GetDecision(ctx context.Context, req *rulesv1.GetDecisionRequest) (*rulesv1.GetDecisionResponse, error) {
	id, err := server.Require(ctx, auth.ReadDecisions)
	if err != nil {
		return nil, err
	}
	d, err := a.getDecision(ctx, id, req.GetReferralId())
	if err != nil {
		return nil, err
	}
	// The trace of this read commits before the decision (and the facts in it) leaves.
	if err := access.Record(ctx, a.svc.store.Pool(), store.Schema, a.svc.relay.Wake, a.svc.cipher, id, access.Read{Type: eventsv1.SubjectAccessDecision,
		Action: "GetDecision", Partnership: d.Partnership, ReferralID: d.ReferralID, ChildID: d.ChildID}, a.svc.now()); err != nil {
		return nil, err
	}
	dp, err := decisionToProto(d)
	if err != nil {
		return nil, err
	}
	return &rulesv1.GetDecisionResponse{Decision: dp}, nil
}

// getDecision returns the decision on referralID if the caller serves its partnership;
// another partnership's is as unknown to the caller as a missing one.
func (a *grpcAPI) getDecision(ctx context.Context, id auth.Identity, referralID string) (store.Decision, error) {
	if referralID == "" {
		return store.Decision{}, apierr.Invalid([]apierr.Violation{{Field: "referralId", Reason: "is required"}})
	}
	if _, err := uuid.Parse(referralID); err != nil {
		return store.Decision{}, apierr.NotFound("no decision for referral " + referralID)
	}
	d, err := a.svc.store.GetDecision(ctx, referralID)
	if err == nil && !id.Serves(d.Partnership) {
		err = store.ErrNotFound
	}
	if errors.Is(err, store.ErrNotFound) {
		return store.Decision{}, apierr.NotFound("no decision for referral " + referralID + " (yet: decisions follow receipt within seconds)")
	}
	return d, err
}

// errDecideInTriage refuses the old public routes: a decision is made only where the claim
// and the version are checked, so no one decides a case a colleague is working.
func errDecideInTriage(referralID string) error {
	if referralID == "" {
		referralID = "{referralId}"
	}
	return apierr.FailedPrecondition(fmt.Sprintf("decisions are no longer made here: claim the case (POST /v1/cases/%s/claim) "+
		"and decide it in triage (POST /v1/cases/%s/decide, or mash.triage.v1.TriageService/DecideCase)", referralID, referralID))
}

// ConfirmDecision is refused: see errDecideInTriage.
func (a *grpcAPI) ConfirmDecision(ctx context.Context, req *rulesv1.ConfirmDecisionRequest) (*rulesv1.ConfirmDecisionResponse, error) {
	if _, err := server.Require(ctx, auth.DecideCases); err != nil {
		return nil, err
	}
	return nil, errDecideInTriage(req.GetReferralId())
}

// OverrideDecision is refused: see errDecideInTriage.
func (a *grpcAPI) OverrideDecision(ctx context.Context, req *rulesv1.OverrideDecisionRequest) (*rulesv1.OverrideDecisionResponse, error) {
	if _, err := server.Require(ctx, auth.DecideCases); err != nil {
		return nil, err
	}
	return nil, errDecideInTriage(req.GetReferralId())
}

func problemWhere(p pack.Problem) string {
	switch {
	case p.Rule != "":
		return "rule " + p.Rule
	case p.Test != "":
		return "test " + p.Test
	case p.Field != "":
		return p.Field
	}
	return "pack"
}

// checkPackScope refuses a manager a pack of a partnership they do not serve. The default
// pack decides for every partnership without its own, so only a manager serving every
// partnership may change it.
func checkPackScope(id auth.Identity, partnership string) error {
	if _, all := id.PartnershipScope(); all {
		return nil
	}
	if partnership == DefaultPartnership {
		return apierr.PermissionDenied(fmt.Sprintf("partnership %s: the default pack decides for every partnership without its own; "+
			"only a credential serving every partnership (*) may change or replay it", DefaultPartnership))
	}
	if !id.Serves(partnership) {
		return apierr.PermissionDenied(fmt.Sprintf("partnership %s: this credential serves %s, not that partnership",
			partnership, strings.Join(id.Partnerships, ", ")))
	}
	return nil
}
