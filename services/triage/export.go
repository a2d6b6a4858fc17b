package triage

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/mash-hub/mash/pkg/access"
	"github.com/mash-hub/mash/pkg/apierr"
	"github.com/mash-hub/mash/pkg/auth"
	"github.com/mash-hub/mash/pkg/peers"
	"github.com/mash-hub/mash/pkg/server"
	"github.com/mash-hub/mash/pkg/text"
	auditv1 "github.com/mash-hub/mash/proto/mash/audit/v1"
	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
	intakev1 "github.com/mash-hub/mash/proto/mash/intake/v1"
	notifyv1 "github.com/mash-hub/mash/proto/mash/notify/v1"
	rulesv1 "github.com/mash-hub/mash/proto/mash/rules/v1"
	triagev1 "github.com/mash-hub/mash/proto/mash/triage/v1"
	"github.com/mash-hub/mash/services/triage/store"
)

// ExportFormat names the subject access document's format; a change that is not only an
// addition of fields gets a new version.
const ExportFormat = "mash.subject-access/v1"

// exportListLimit bounds the casework lists of one referral in an export: far above any
// real case, so nothing is cut short in practice, and still bounded.
const exportListLimit = 10000

// exportPage is the page size the export asks its peers for.
const exportPage = 500

// checkExport is ExportCase's check of its request.
func checkExport(req *triagev1.ExportCaseRequest) []apierr.Violation {
	reason := req.GetReason()
	switch {
	case strings.TrimSpace(reason) == "":
		return []apierr.Violation{{Field: "reason", Reason: "is required: why the child's record is exported (the subject access request's reference)"}}
	case len(reason) > server.MaxAccessReason:
		return []apierr.Violation{{Field: "reason", Reason: fmt.Sprintf("is longer than %d bytes", server.MaxAccessReason)}}
	}
	if p := text.Problem(reason, false); p != "" {
		return []apierr.Violation{{Field: "reason", Reason: p}}
	}
	if req.GetReferralId() == "" {
		return []apierr.Violation{{Field: "referralId", Reason: "is required"}}
	}
	return nil
}

// ExportCase gathers everything held about the referral's child for a subject access
// request. Triage holds the casework and, through the child index's child id on each
// case, which referrals are the child's; the rest it asks of the services that hold it
// (intake, rules, notify, audit), over their gRPC APIs as the caller and with the caller's
// reason, so each of them authorises and records its own part of the export. The export
// is all or nothing: a service that does not answer fails it rather than leaving a gap the
// reader could not see; a record a service no longer holds (erased) is named in omissions.
func (a *grpcAPI) ExportCase(ctx context.Context, req *triagev1.ExportCaseRequest) (*triagev1.ExportCaseResponse, error) {
	id, err := server.Require(ctx, auth.ExportSubjectAccess)
	if err != nil {
		return nil, err
	}
	if vs := checkExport(req); len(vs) > 0 {
		return nil, apierr.Invalid(vs)
	}
	reason := req.GetReason()
	s := a.svc
	pool := s.store.Pool()
	c, err := store.GetCase(ctx, pool, req.GetReferralId())
	if err == nil && !id.Serves(c.Partnership) {
		err = store.ErrNotFound // another partnership's case is as unknown as a missing one
	}
	if err != nil {
		return nil, notFoundAs(err, caseNotFound(req.GetReferralId()))
	}

	// The child's referrals, by the child index; before the rules have matched the child,
	// only the one asked for.
	cases := []store.Case{c}
	var omissions []string
	if c.ChildID != "" {
		all, err := store.ChildCases(ctx, pool, c.ChildID)
		if err != nil {
			return nil, err
		}
		cases = cases[:0]
		unserved := 0
		for _, x := range all {
			if id.Serves(x.Partnership) {
				cases = append(cases, x)
			} else {
				unserved++
			}
		}
		if unserved > 0 {
			omissions = append(omissions, fmt.Sprintf("%d referral(s) of the child held for partnerships this credential does not serve: "+
				"a manager of those partnerships must export them", unserved))
		}
	}
	listed := make([]access.Listed, len(cases))
	for i, x := range cases {
		listed[i] = access.Listed{ReferralID: x.ReferralID, ChildID: x.ChildID}
	}
	// The export's own trace, with who and why, commits before anything is gathered.
	if err := access.Record(ctx, pool, store.Schema, s.relay.Wake, s.cipher, id, access.Read{Type: eventsv1.SubjectAccessExport, Action: "ExportCase",
		Partnership: c.Partnership, ReferralID: c.ReferralID, ChildID: c.ChildID, Listed: listed, Reason: reason}, s.now()); err != nil {
		return nil, err
	}

	// Every peer read carries the caller's credential and the export's reason.
	pctx := metadata.AppendToOutgoingContext(peers.AsCaller(ctx), server.AccessReasonHeader+"-bin", reason)
	g, err := s.exportPeers()
	if err != nil {
		return nil, err
	}
	now := s.now()
	out := &triagev1.ExportCaseResponse{Format: ExportFormat, ExportedAt: timestamppb.New(now.UTC()), ExportedBy: id.ClientID,
		ExportedByRole: string(id.Role), Reason: reason, ReferralId: c.ReferralID, ChildId: c.ChildID}
	for _, x := range cases {
		sr, missing, err := s.exportReferral(ctx, pctx, g, x)
		if err != nil {
			return nil, err
		}
		out.Referrals = append(out.Referrals, sr)
		omissions = append(omissions, missing...)
	}
	if out.Accesses, err = g.accesses(pctx, c); err != nil {
		return nil, err
	}
	out.Omissions = omissions
	return out, nil
}

// exportClients are the peers an export reads.
type exportClients struct {
	intake intakev1.IntakeServiceClient
	rules  rulesv1.RulesServiceClient
	notify notifyv1.NotifyServiceClient
	audit  auditv1.AuditServiceClient
}

func (s *Service) exportPeers() (exportClients, error) {
	var g exportClients
	for _, name := range []string{"intake", "rules", "notify", "audit"} {
		conn, err := s.peers.Conn(name)
		if err != nil {
			return g, fmt.Errorf("export: %w", err)
		}
		switch name {
		case "intake":
			g.intake = intakev1.NewIntakeServiceClient(conn)
		case "rules":
			g.rules = rulesv1.NewRulesServiceClient(conn)
		case "notify":
			g.notify = notifyv1.NewNotifyServiceClient(conn)
		case "audit":
			g.audit = auditv1.NewAuditServiceClient(conn)
		}
	}
	return g, nil
}

// exportReferral gathers one referral: triage's casework from its own store, the rest from
// the peers. It returns what could not be had because the peer holds no such record.
func (s *Service) exportReferral(ctx, pctx context.Context, g exportClients, c store.Case) (*triagev1.SubjectReferral, []string, error) {
	pool := s.store.Pool()
	now := s.now()
	sr := &triagev1.SubjectReferral{ReferralId: c.ReferralID, Case: caseToProto(c, now)}
	var omissions []string
	discussions, err := store.StrategyDiscussions(ctx, pool, c.ReferralID)
	if err != nil {
		return nil, nil, err
	}
	for _, d := range discussions {
		sr.StrategyDiscussions = append(sr.StrategyDiscussions, strategyToProto(d))
	}
	requests, err := store.ListInformationRequests(ctx, pool, store.InfoFilter{ReferralID: c.ReferralID, Limit: exportListLimit})
	if err != nil {
		return nil, nil, err
	}
	for _, r := range requests {
		sr.InformationRequests = append(sr.InformationRequests, infoToProto(r, now))
	}
	disagreements, err := store.ListDisagreements(ctx, pool, store.DisagreementFilter{ReferralID: c.ReferralID, Limit: exportListLimit})
	if err != nil {
		return nil, nil, err
	}
	for _, d := range disagreements {
		sr.Disagreements = append(sr.Disagreements, disagreementToProto(d))
	}
	if sr.QualityReviews, err = caseReviews(ctx, pool, c.ReferralID, exportListLimit); err != nil {
		return nil, nil, err
	}
	holds, err := store.Holds(ctx, pool, c.ReferralID)
	if err != nil {
		return nil, nil, err
	}
	for _, h := range holds {
		sr.LegalHolds = append(sr.LegalHolds, holdToProto(h))
	}

	ref, err := g.intake.GetReferral(pctx, &intakev1.GetReferralRequest{Id: c.ReferralID})
	switch {
	case status.Code(err) == codes.NotFound:
		omissions = append(omissions, "referral "+c.ReferralID+": intake holds no referral (erased)")
	case err != nil:
		return nil, nil, exportPeerError("intake", err)
	default:
		sr.Referral = ref.GetReferral()
	}
	if c.DecisionVersion > 0 || c.RecommendedAt != nil {
		dec, err := g.rules.GetDecision(pctx, &rulesv1.GetDecisionRequest{ReferralId: c.ReferralID})
		switch {
		case status.Code(err) == codes.NotFound:
			omissions = append(omissions, "referral "+c.ReferralID+": the rules service holds no recommendation or decision")
		case err != nil:
			return nil, nil, exportPeerError("rules", err)
		default:
			sr.Decision = dec.GetDecision()
		}
	}
	if sr.Notifications, err = g.notifications(pctx, c.ReferralID); err != nil {
		return nil, nil, err
	}
	if sr.Trail, err = g.trail(pctx, c.ReferralID); err != nil {
		return nil, nil, err
	}
	return sr, omissions, nil
}

// notifications lists every notification of the referral, each read in full (with its
// delivery attempts, which say when it was sent).
func (g exportClients) notifications(ctx context.Context, referralID string) ([]*notifyv1.Notification, error) {
	var out []*notifyv1.Notification
	token := ""
	for {
		page, err := g.notify.ListNotifications(ctx, &notifyv1.ListNotificationsRequest{ReferralId: referralID, PageSize: 200, PageToken: token})
		if err != nil {
			return nil, exportPeerError("notify", err)
		}
		for _, n := range page.GetNotifications() {
			full, err := g.notify.GetNotification(ctx, &notifyv1.GetNotificationRequest{NotificationId: n.GetId()})
			if err != nil {
				return nil, exportPeerError("notify", err)
			}
			out = append(out, full.GetNotification())
		}
		if token = page.GetNextPageToken(); token == "" {
			break
		}
	}
	// Oldest first, as a reader follows the case.
	sortNotifications(out)
	return out, nil
}

// trail reads the referral's whole audit trail, page by page, in seq order.
func (g exportClients) trail(ctx context.Context, referralID string) ([]*auditv1.AuditEntry, error) {
	var out []*auditv1.AuditEntry
	token := ""
	for {
		page, err := g.audit.GetSubjectTrail(ctx, &auditv1.GetSubjectTrailRequest{ReferralId: referralID, PageSize: exportPage, PageToken: token})
		if err != nil {
			return nil, exportPeerError("audit", err)
		}
		out = append(out, page.GetEntries()...)
		if token = page.GetNextPageToken(); token == "" {
			return out, nil
		}
	}
}

// accesses reads who read the child's record (or, before the child is matched, the
// referral's), newest first.
func (g exportClients) accesses(ctx context.Context, c store.Case) ([]*auditv1.AccessRecord, error) {
	req := &auditv1.GetSubjectAccessesRequest{ChildId: c.ChildID, PageSize: exportPage}
	if c.ChildID == "" {
		req.ChildId, req.ReferralId = "", c.ReferralID
	}
	var out []*auditv1.AccessRecord
	for {
		page, err := g.audit.GetSubjectAccesses(ctx, req)
		if err != nil {
			return nil, exportPeerError("audit", err)
		}
		out = append(out, page.GetAccesses()...)
		if req.PageToken = page.GetNextPageToken(); req.PageToken == "" {
			return out, nil
		}
	}
}

// exportPeerError says which service failed the export. A service that did not answer is
// worth a retry; any other refusal passes through with its code.
func exportPeerError(peer string, err error) error {
	st, ok := status.FromError(err)
	if ok && (st.Code() == codes.Unavailable || st.Code() == codes.DeadlineExceeded) {
		return status.Error(codes.Unavailable, fmt.Sprintf("the %s service did not answer; no export was made, retry shortly", peer))
	}
	if ok {
		return status.Error(st.Code(), fmt.Sprintf("the %s service refused part of the export: %s", peer, st.Message()))
	}
	return fmt.Errorf("export: call %s: %w", peer, err)
}

func sortNotifications(ns []*notifyv1.Notification) {
	slices.SortStableFunc(ns, func(a, b *notifyv1.Notification) int {
		if c := a.GetCreatedAt().AsTime().Compare(b.GetCreatedAt().AsTime()); c != 0 {
			return c
		}
		return strings.Compare(a.GetId(), b.GetId())
	})
}
