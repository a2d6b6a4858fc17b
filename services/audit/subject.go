package audit

import (
	"context"

	"github.com/mash-hub/mash/pkg/apierr"
	"github.com/mash-hub/mash/pkg/auth"
	"github.com/mash-hub/mash/pkg/server"
	auditv1 "github.com/mash-hub/mash/proto/mash/audit/v1"
)

// A subject access export (triage's ExportCase, made by a manager) needs the child's trail
// and who read the child's record. Managers do not audit: these two methods serve the same
// pages as GetTrail and WhoAccessed to holders of auth.ExportSubjectAccess, and only with a
// reason, which the access entry of each query keeps.

// subjectCaller authorises a subject access query: the permission, then the reason.
func subjectCaller(ctx context.Context) (auth.Identity, error) {
	id, err := server.Require(ctx, auth.ExportSubjectAccess)
	if err != nil {
		return id, err
	}
	if server.AccessReason(ctx) == "" {
		return id, apierr.Invalid([]apierr.Violation{{Field: server.AccessReasonHeader,
			Reason: "is required: why the child's record is exported (the subject access request's reference)"}})
	}
	return id, nil
}

func (a *grpcAPI) GetSubjectTrail(ctx context.Context, req *auditv1.GetSubjectTrailRequest) (*auditv1.GetSubjectTrailResponse, error) {
	id, err := subjectCaller(ctx)
	if err != nil {
		return nil, err
	}
	resp, err := a.trail(ctx, id, "GetSubjectTrail", &auditv1.GetTrailRequest{ReferralId: req.GetReferralId(), ChildId: req.GetChildId(),
		PageSize: req.GetPageSize(), PageToken: req.GetPageToken()})
	if err != nil {
		return nil, err
	}
	return &auditv1.GetSubjectTrailResponse{Entries: resp.GetEntries(), NextPageToken: resp.GetNextPageToken()}, nil
}

func (a *grpcAPI) GetSubjectAccesses(ctx context.Context, req *auditv1.GetSubjectAccessesRequest) (*auditv1.GetSubjectAccessesResponse, error) {
	id, err := subjectCaller(ctx)
	if err != nil {
		return nil, err
	}
	resp, err := a.whoAccessed(ctx, id, "GetSubjectAccesses", &auditv1.WhoAccessedRequest{ChildId: req.GetChildId(), ReferralId: req.GetReferralId(),
		PageSize: req.GetPageSize(), PageToken: req.GetPageToken()})
	if err != nil {
		return nil, err
	}
	return &auditv1.GetSubjectAccessesResponse{Accesses: resp.GetAccesses(), NextPageToken: resp.GetNextPageToken()}, nil
}
