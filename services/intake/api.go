package intake

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/mash-hub/mash/pkg/access"
	"github.com/mash-hub/mash/pkg/apierr"
	"github.com/mash-hub/mash/pkg/auth"
	"github.com/mash-hub/mash/pkg/referral"
	"github.com/mash-hub/mash/pkg/server"
	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
	intakev1 "github.com/mash-hub/mash/proto/mash/intake/v1"
	"github.com/mash-hub/mash/services/intake/store"
)

// grpcAPI is the thin gRPC face of the service; HTTP calls the same methods.
type grpcAPI struct {
	intakev1.UnimplementedIntakeServiceServer
	svc *Service
}

func caller(ctx context.Context) (auth.Identity, error) {
	id, ok := auth.FromContext(ctx)
	if !ok {
		return auth.Identity{}, auth.ErrUnauthenticated
	}
	return id, nil
}

func (a *grpcAPI) SubmitReferral(ctx context.Context, req *intakev1.SubmitReferralRequest) (*intakev1.SubmitReferralResponse, error) {
	id, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if !id.Can(auth.SubmitReferrals) {
		return nil, apierr.PermissionDenied(id.Denial(auth.SubmitReferrals))
	}
	if req.GetReferral() == nil {
		return nil, apierr.Invalid([]apierr.Violation{{Field: "referral", Reason: "is required"}})
	}
	if p := req.GetReferral().GetPartnership(); p != "" && !id.Serves(p) {
		return nil, apierr.PermissionDenied(fmt.Sprintf("partnership %q: this credential serves %s, not that partnership", p, strings.Join(id.Partnerships, ", ")))
	}
	if size := proto.Size(req.GetReferral()); size > referral.MaxBodyBytes {
		return nil, apierr.Invalid([]apierr.Violation{{Field: "referral", Reason: fmt.Sprintf("is %d bytes; at most %d are accepted", size, referral.MaxBodyBytes)}})
	}
	if vs := referral.Validate(req.GetReferral(), a.svc.now()); len(vs) > 0 {
		return nil, invalid(vs)
	}
	ack, err := a.svc.submit(ctx, id, req.GetReferral())
	if err != nil {
		return nil, err
	}
	return &intakev1.SubmitReferralResponse{Acknowledgement: ackToProto(ack)}, nil
}

func invalid(vs []referral.Violation) error {
	return apierr.Invalid(apiViolations(vs))
}

func apiViolations(vs []referral.Violation) []apierr.Violation {
	out := make([]apierr.Violation, len(vs))
	for i, v := range vs {
		out[i] = apierr.Violation{Field: v.Field, Reason: v.Reason}
	}
	return out
}

func conflictError(agency, externalRef, existingID string) error {
	return apierr.AlreadyExists(fmt.Sprintf(
		"externalReference %q was already used by agency %s for a referral with different content (referral %s); "+
			"send a new externalReference for a new referral, or the identical content to retry", externalRef, agency, existingID))
}

// visibleAgency is the agency filter for reads: referrers and partner staff see their own
// agency's referrals, hub staff see all.
func visibleAgency(id auth.Identity) string {
	if id.AgencyScoped() {
		return id.Agency
	}
	return ""
}

func (a *grpcAPI) GetReferral(ctx context.Context, req *intakev1.GetReferralRequest) (*intakev1.GetReferralResponse, error) {
	id, err := server.Require(ctx, auth.ReadReferrals)
	if err != nil {
		return nil, err
	}
	if req.GetId() == "" {
		return nil, apierr.Invalid([]apierr.Violation{{Field: "id", Reason: "is required"}})
	}
	r, err := a.svc.store.Get(ctx, req.GetId(), visibleAgency(id))
	if err == nil && !id.Serves(r.Partnership) {
		// Another partnership's referral is as unknown to this caller as a missing one.
		err = store.ErrNotFound
	}
	if errors.Is(err, store.ErrNotFound) {
		return nil, apierr.NotFound("no referral " + req.GetId() + " visible to this credential")
	}
	if err != nil {
		return nil, err
	}
	// The trace of this read commits before the referral leaves the service.
	if err := access.Record(ctx, a.svc.pool, store.Schema, a.svc.relay.Wake, a.svc.cipher, id, access.Read{Type: eventsv1.SubjectAccessReferral, Action: "GetReferral",
		Partnership: r.Partnership, ReferralID: r.ID}, a.svc.now()); err != nil {
		return nil, err
	}
	sub := &intakev1.ReferralSubmission{}
	if err := proto.Unmarshal(r.Submission, sub); err != nil {
		return nil, fmt.Errorf("decode stored referral %s: %w", r.ID, err)
	}
	return &intakev1.GetReferralResponse{Referral: toProto(r, sub)}, nil
}

const (
	defaultPageSize = 50
	maxPageSize     = 200
)

func (a *grpcAPI) ListReferrals(ctx context.Context, req *intakev1.ListReferralsRequest) (*intakev1.ListReferralsResponse, error) {
	id, err := server.Require(ctx, auth.ReadReferrals)
	if err != nil {
		return nil, err
	}
	var vs []apierr.Violation
	size := int(req.GetPageSize())
	switch {
	case size == 0:
		size = defaultPageSize
	case size < 0 || size > maxPageSize:
		vs = append(vs, apierr.Violation{Field: "pageSize", Reason: fmt.Sprintf("must be between 1 and %d", maxPageSize)})
	}
	cursor, err := store.DecodeCursor(req.GetPageToken())
	if err != nil {
		vs = append(vs, apierr.Violation{Field: "pageToken", Reason: "is not a token from an earlier page of this listing"})
	}
	if len(vs) > 0 {
		return nil, apierr.Invalid(vs)
	}
	f := store.Filter{Agency: visibleAgency(id), Partnership: req.GetPartnership()}
	if ps, all := id.PartnershipScope(); !all {
		f.Partnerships = append([]string{}, ps...)
	}
	rows, err := a.svc.store.List(ctx, f, cursor, size+1)
	if err != nil {
		return nil, err
	}
	resp := &intakev1.ListReferralsResponse{}
	if len(rows) > size {
		rows = rows[:size]
		last := rows[len(rows)-1]
		resp.NextPageToken = store.EncodeCursor(store.Cursor{ReceivedAt: last.ReceivedAt, ID: last.ID})
	}
	for _, r := range rows {
		p := toProto(r, nil)
		resp.Referrals = append(resp.Referrals, &intakev1.ReferralSummary{
			Id: p.Id, Reference: p.Reference, Agency: p.Agency, ExternalReference: p.ExternalReference,
			Partnership: p.Partnership, ReceivedAt: p.ReceivedAt, Status: p.Status, DecisionDue: p.DecisionDue, Version: p.Version,
		})
	}
	return resp, nil
}
