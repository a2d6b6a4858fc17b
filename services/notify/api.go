package notify

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/mash-hub/mash/pkg/access"
	"github.com/mash-hub/mash/pkg/apierr"
	"github.com/mash-hub/mash/pkg/auth"
	"github.com/mash-hub/mash/pkg/server"
	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
	notifyv1 "github.com/mash-hub/mash/proto/mash/notify/v1"
	"github.com/mash-hub/mash/services/notify/directory"
	"github.com/mash-hub/mash/services/notify/store"
)

// hubStaff reports whether the caller works in the hub: hub staff see every agency's
// notifications of the partnerships they serve; an agency's own credential, or its staff in
// the console's partner view, sees and acknowledges only its own.
func hubStaff(id auth.Identity) bool { return !id.AgencyScoped() }

type grpcAPI struct {
	notifyv1.UnimplementedNotifyServiceServer
	svc *Service
}

func identity(ctx context.Context) (auth.Identity, error) {
	id, ok := auth.FromContext(ctx)
	if !ok {
		return auth.Identity{}, auth.ErrUnauthenticated
	}
	return id, nil
}

func (a *grpcAPI) ListAgencies(ctx context.Context, req *notifyv1.ListAgenciesRequest) (*notifyv1.ListAgenciesResponse, error) {
	if _, err := server.Require(ctx, auth.ReadDirectory); err != nil {
		return nil, err
	}
	as, err := a.svc.store.Agencies(ctx, req.GetPartnership())
	if err != nil {
		return nil, err
	}
	out := &notifyv1.ListAgenciesResponse{}
	for _, ag := range as {
		out.Agencies = append(out.Agencies, agencyToProto(ag))
	}
	return out, nil
}

// agencyRequestViolations is PutAgency's check of its request, with ag the agency it puts
// (normalised, with its secret's presence).
func agencyRequestViolations(req *notifyv1.PutAgencyRequest, ag directory.Agency) []apierr.Violation {
	var vs []apierr.Violation
	if strings.TrimSpace(req.GetReason()) == "" {
		vs = append(vs, apierr.Violation{Field: "reason", Reason: "is required: the directory's change log says why"})
	}
	for _, pr := range ag.Check() {
		vs = append(vs, apierr.Violation{Field: "agency." + protoField(pr.Field), Reason: pr.Reason})
	}
	return vs
}

// checkPutAgency is PutAgency's check of a request whose body could not be fully read: the
// agency is taken to have a secret, since whether the directory holds one is not the
// body's to say.
func checkPutAgency(req *notifyv1.PutAgencyRequest) []apierr.Violation {
	ag := agencyFromProto(req.GetAgency())
	ag.Normalise()
	ag.Secret = make([]byte, directory.MinSecretBytes)
	return agencyRequestViolations(req, ag)
}

func (a *grpcAPI) PutAgency(ctx context.Context, req *notifyv1.PutAgencyRequest) (*notifyv1.PutAgencyResponse, error) {
	id, err := server.Require(ctx, auth.ChangeDirectory)
	if err != nil {
		return nil, err
	}
	ag := agencyFromProto(req.GetAgency())
	ag.Normalise()
	var secret string
	if req.GetRotateSecret() {
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return nil, err
		}
		secret = hex.EncodeToString(b)
		ag.Secret = []byte(secret)
	} else if existing, err := a.svc.store.Agency(ctx, ag.Partnership, ag.ID); err == nil && existing.HasSecret() {
		// Only its presence matters to the checks below; the secret itself stays sealed.
		ag.Secret = make([]byte, directory.MinSecretBytes)
	}
	if vs := agencyRequestViolations(req, ag); len(vs) > 0 {
		return nil, apierr.Invalid(vs)
	}
	if err := checkDirectoryScope(id, ag.Partnership); err != nil {
		return nil, err
	}
	var newSecret []byte
	if secret != "" {
		newSecret = []byte(secret)
	}
	ag.Secret = nil
	who := proposer{actor: caller(id), from: auth.ClientAddress(ctx)}
	var stored store.StoredAgency
	var existed bool
	var pending *store.Proposal
	err = pgx.BeginFunc(ctx, a.svc.store.Pool(), func(tx pgx.Tx) error {
		if vs := agencyViolations(ctx, tx, withSecretPresence(ag)); len(vs) > 0 {
			return apierr.Invalid(vs)
		}
		var err error
		stored, existed, pending, err = a.svc.changeAgency(ctx, tx, who, ag, newSecret, req.GetReason())
		if errors.Is(err, store.ErrPendingExists) {
			return apierr.FailedPrecondition(fmt.Sprintf("agency %s already has a pending change %s (proposed by %s): approve or reject it first",
				ag.ID, pending.ID, pending.ProposedBy))
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	a.svc.directoryChanged()
	a.svc.relay.Wake()
	out := &notifyv1.PutAgencyResponse{Secret: secret}
	if existed {
		out.Agency = agencyToProto(stored)
	}
	if pending != nil {
		out.PendingChange = changeToProto(*pending)
	}
	return out, nil
}

// withSecretPresence stands in a placeholder secret so Check, which needs one for a
// webhook, passes: presence was checked already and the real one stays out of reach.
func withSecretPresence(a directory.Agency) directory.Agency {
	if a.Channel == directory.ChannelWebhook && len(a.Secret) == 0 {
		a.Secret = make([]byte, directory.MinSecretBytes)
	}
	return a
}

func (a *grpcAPI) ListDirectoryChanges(ctx context.Context, req *notifyv1.ListDirectoryChangesRequest) (*notifyv1.ListDirectoryChangesResponse, error) {
	if _, err := server.Require(ctx, auth.ReadDirectory); err != nil {
		return nil, err
	}
	f := store.ProposalFilter{Partnership: req.GetPartnership(), Agency: req.GetAgencyId()}
	if f.Agency == "-" {
		f.Agency = ""
	}
	if st := req.GetState(); st != notifyv1.DirectoryChangeState_DIRECTORY_CHANGE_STATE_UNSPECIFIED {
		f.State = strings.TrimPrefix(st.String(), "DIRECTORY_CHANGE_")
	}
	ps, err := store.ListProposals(ctx, a.svc.store.Pool(), f)
	if err != nil {
		return nil, err
	}
	out := &notifyv1.ListDirectoryChangesResponse{}
	for _, p := range ps {
		out.Changes = append(out.Changes, changeToProto(p))
	}
	return out, nil
}

// checkChangeID refuses an id that is not a UUID, naming the field.
func checkChangeID(id string) []apierr.Violation {
	if _, err := uuid.Parse(id); err != nil {
		return []apierr.Violation{{Field: "changeId", Reason: "must be a directory change id (UUID)"}}
	}
	return nil
}

// checkApprove is ApproveDirectoryChange's check of its request.
func checkApprove(req *notifyv1.ApproveDirectoryChangeRequest) []apierr.Violation {
	if vs := checkChangeID(req.GetChangeId()); len(vs) > 0 {
		return vs
	}
	if len(req.GetReason()) > 500 {
		return []apierr.Violation{{Field: "reason", Reason: "must be at most 500 characters"}}
	}
	return nil
}

func (a *grpcAPI) ApproveDirectoryChange(ctx context.Context, req *notifyv1.ApproveDirectoryChangeRequest) (*notifyv1.ApproveDirectoryChangeResponse, error) {
	id, err := server.Require(ctx, auth.DecideDirectory)
	if err != nil {
		return nil, err
	}
	if vs := checkApprove(req); len(vs) > 0 {
		return nil, apierr.Invalid(vs)
	}
	p, stored, err := a.svc.ApproveChange(ctx, req.GetChangeId(), req.GetAgencyId(),
		decider{id: id, from: auth.ClientAddress(ctx), reason: strings.TrimSpace(req.GetReason())})
	if err != nil {
		return nil, decisionError(err)
	}
	return &notifyv1.ApproveDirectoryChangeResponse{Change: changeToProto(p), Agency: agencyToProto(stored)}, nil
}

// checkReject is RejectDirectoryChange's check of its request.
func checkReject(req *notifyv1.RejectDirectoryChangeRequest) []apierr.Violation {
	if vs := checkChangeID(req.GetChangeId()); len(vs) > 0 {
		return vs
	}
	if reason := strings.TrimSpace(req.GetReason()); reason == "" || len(reason) > 500 {
		return []apierr.Violation{{Field: "reason", Reason: "is required (at most 500 characters): say why the change is refused"}}
	}
	return nil
}

func (a *grpcAPI) RejectDirectoryChange(ctx context.Context, req *notifyv1.RejectDirectoryChangeRequest) (*notifyv1.RejectDirectoryChangeResponse, error) {
	id, err := server.Require(ctx, auth.ChangeDirectory)
	if err != nil {
		return nil, err
	}
	if vs := checkReject(req); len(vs) > 0 {
		return nil, apierr.Invalid(vs)
	}
	reason := strings.TrimSpace(req.GetReason())
	p, err := a.svc.RejectChange(ctx, req.GetChangeId(), req.GetAgencyId(), decider{id: id, from: auth.ClientAddress(ctx), reason: reason})
	if err != nil {
		return nil, decisionError(err)
	}
	return &notifyv1.RejectDirectoryChangeResponse{Change: changeToProto(p)}, nil
}

// decisionError maps the refusals of a decision on a change.
func decisionError(err error) error {
	switch {
	case errors.Is(err, errOwnChange):
		return apierr.PermissionDenied(err.Error())
	case errors.Is(err, errExpired):
		return apierr.FailedPrecondition(err.Error() + ": propose it again")
	case errors.Is(err, store.ErrState):
		return apierr.FailedPrecondition("the directory change was decided by someone else meanwhile")
	}
	return err
}

func changeToProto(p store.Proposal) *notifyv1.DirectoryChange {
	c := &notifyv1.DirectoryChange{Id: p.ID, Partnership: p.Partnership, AgencyId: p.Agency,
		State:    notifyv1.DirectoryChangeState(notifyv1.DirectoryChangeState_value["DIRECTORY_CHANGE_"+p.State]),
		Proposed: agencyToProto(store.StoredAgency{Agency: p.Proposed}), NewAgency: p.NewAgency, RotatesSecret: p.RotatesSecret(),
		Reason: p.Reason, ProposedBy: p.ProposedBy, ProposedByRole: p.ProposedByRole, ProposedFrom: p.ProposedFrom,
		ProposedAt: timestamppb.New(p.ProposedAt), ExpiresAt: timestamppb.New(p.ExpiresAt), DecidedBy: p.DecidedBy,
		DecidedByRole: p.DecidedByRole, DecidedFrom: p.DecidedFrom, DecidedAt: ts(p.DecidedAt), DecisionReason: p.DecisionReason,
		PreviousContactNoticeId: p.NoticeID, PreviousContactNoticeState: p.NoticeState}
	c.Proposed.UpdatedAt = nil
	for _, f := range p.Changes {
		c.Changes = append(c.Changes, &notifyv1.FieldChange{Field: f.Field, Before: f.Before, After: f.After})
	}
	return c
}

// protoField maps a directory problem's field to the API's name for it.
func protoField(f string) string {
	switch f {
	case "hoursStart":
		return "hours.start"
	case "secret":
		return "rotateSecret"
	}
	return f
}

func (a *grpcAPI) RemoveAgency(ctx context.Context, req *notifyv1.RemoveAgencyRequest) (*notifyv1.RemoveAgencyResponse, error) {
	id, err := server.Require(ctx, auth.ChangeDirectory)
	if err != nil {
		return nil, err
	}
	var vs []apierr.Violation
	if req.GetAgencyId() == "" {
		vs = append(vs, apierr.Violation{Field: "agencyId", Reason: "is required"})
	}
	if req.GetPartnership() == "" {
		vs = append(vs, apierr.Violation{Field: "partnership", Reason: "is required"})
	}
	if strings.TrimSpace(req.GetReason()) == "" {
		vs = append(vs, apierr.Violation{Field: "reason", Reason: "is required: the directory's change log says why"})
	}
	if len(vs) > 0 {
		return nil, apierr.Invalid(vs)
	}
	if err := checkDirectoryScope(id, req.GetPartnership()); err != nil {
		return nil, err
	}
	err = pgx.BeginFunc(ctx, a.svc.store.Pool(), func(tx pgx.Tx) error {
		return store.RemoveAgency(ctx, tx, req.GetPartnership(), req.GetAgencyId(), id.Actor(), req.GetReason())
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, apierr.NotFound(fmt.Sprintf("agency %s is not in partnership %s", req.GetAgencyId(), req.GetPartnership()))
	}
	if err != nil {
		return nil, err
	}
	a.svc.directoryChanged()
	return &notifyv1.RemoveAgencyResponse{}, nil
}

// maxPage bounds a page of notifications.
const maxPage = 200

func (a *grpcAPI) ListNotifications(ctx context.Context, req *notifyv1.ListNotificationsRequest) (*notifyv1.ListNotificationsResponse, error) {
	id, err := server.Require(ctx, auth.ReadNotifications)
	if err != nil {
		return nil, err
	}
	f := store.Filter{ReferralID: req.GetReferralId(), Agency: req.GetAgency(), Overdue: req.GetOverdue(), Now: a.svc.now().UTC()}
	if ps, all := id.PartnershipScope(); !all {
		f.Partnerships = append([]string{}, ps...)
	}
	if !hubStaff(id) {
		// An agency sees only what was sent to it.
		f.Agency = id.Agency
	}
	var vs []apierr.Violation
	if f.ReferralID != "" {
		if _, err := uuid.Parse(f.ReferralID); err != nil {
			vs = append(vs, apierr.Violation{Field: "referralId", Reason: "must be a referral id (UUID)"})
		}
	}
	if st := req.GetState(); st != notifyv1.NotificationState_NOTIFICATION_STATE_UNSPECIFIED {
		f.State = st.String()
	}
	size := int(req.GetPageSize())
	switch {
	case size < 0 || size > maxPage:
		vs = append(vs, apierr.Violation{Field: "pageSize", Reason: fmt.Sprintf("must be between 1 and %d (0 for 50)", maxPage)})
	case size == 0:
		size = 50
	}
	if t := req.GetPageToken(); t != "" {
		if err := decodeToken(t, &f); err != nil {
			vs = append(vs, apierr.Violation{Field: "pageToken", Reason: "is not a token this API returned"})
		}
	}
	if len(vs) > 0 {
		return nil, apierr.Invalid(vs)
	}
	f.Limit = size + 1
	ns, err := a.svc.store.List(ctx, f)
	if err != nil {
		return nil, err
	}
	out := &notifyv1.ListNotificationsResponse{}
	if len(ns) > size {
		ns = ns[:size]
		last := ns[len(ns)-1]
		out.NextPageToken = encodeToken(last)
	}
	if len(ns) > 0 {
		// A page tells what was shared about whom: one access entry per page, naming each
		// referral it shows once (notify holds no child record; the referral names it).
		var listed []access.Listed
		seen := map[string]bool{}
		for _, n := range ns {
			if !seen[n.ReferralID] {
				seen[n.ReferralID] = true
				listed = append(listed, access.Listed{ReferralID: n.ReferralID})
			}
		}
		if err := access.Record(ctx, a.svc.store.Pool(), store.Schema, a.svc.relay.Wake, a.svc.cipher, id, access.Read{Type: eventsv1.SubjectAccessNotification,
			Action: "ListNotifications", Listed: listed}, a.svc.now()); err != nil {
			return nil, err
		}
	}
	for _, n := range ns {
		out.Notifications = append(out.Notifications, notificationToProto(n, nil))
	}
	return out, nil
}

type pageToken struct {
	P  int       `json:"p"`
	C  time.Time `json:"c"`
	ID string    `json:"i"`
}

func encodeToken(n store.Notification) string {
	b, _ := json.Marshal(pageToken{P: n.Priority, C: n.CreatedAt, ID: n.ID})
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeToken(t string, f *store.Filter) error {
	b, err := base64.RawURLEncoding.DecodeString(t)
	if err != nil {
		return err
	}
	var p pageToken
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	if _, err := uuid.Parse(p.ID); err != nil {
		return err
	}
	f.AfterPriority, f.AfterCreated, f.AfterID = p.P, p.C, p.ID
	return nil
}

// visible reads a notification the caller may see: staff those of the partnerships they
// serve, an agency its own.
func (a *grpcAPI) visible(ctx context.Context, id auth.Identity, notificationID string) (store.Notification, error) {
	if _, err := uuid.Parse(notificationID); err != nil {
		return store.Notification{}, apierr.Invalid([]apierr.Violation{{Field: "notificationId", Reason: "must be a notification id (UUID)"}})
	}
	n, err := a.svc.store.Get(ctx, notificationID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && ((!hubStaff(id) && n.Agency != id.Agency) || !id.Serves(n.Partnership))) {
		return store.Notification{}, apierr.NotFound("notification " + notificationID + " not found")
	}
	return n, err
}

func (a *grpcAPI) GetNotification(ctx context.Context, req *notifyv1.GetNotificationRequest) (*notifyv1.GetNotificationResponse, error) {
	id, err := server.Require(ctx, auth.ReadNotifications)
	if err != nil {
		return nil, err
	}
	n, err := a.visible(ctx, id, req.GetNotificationId())
	if err != nil {
		return nil, err
	}
	history, err := a.svc.store.Attempts(ctx, n.ID)
	if err != nil {
		return nil, err
	}
	// The share record says what was shared about the case, and why: its read is traced,
	// committed before it leaves, as a read of the message is.
	if err := access.Record(ctx, a.svc.store.Pool(), store.Schema, a.svc.relay.Wake, a.svc.cipher, id, access.Read{Type: eventsv1.SubjectAccessNotification,
		Action: "GetNotification", Partnership: n.Partnership, ReferralID: n.ReferralID}, a.svc.now()); err != nil {
		return nil, err
	}
	return &notifyv1.GetNotificationResponse{Notification: notificationToProto(n, history)}, nil
}

// caller is the API's caller as an event's actor, in the role they called with.
func caller(id auth.Identity) auth.Actor {
	return auth.Actor{ID: id.Actor(), Role: string(id.Role), Agency: id.Agency}
}

// checkAcknowledge is AcknowledgeNotification's check of its request that needs no
// notification: whether a note is required depends on whose the notification is.
func checkAcknowledge(req *notifyv1.AcknowledgeNotificationRequest) []apierr.Violation {
	if len(strings.TrimSpace(req.GetNote())) > 500 {
		return []apierr.Violation{{Field: "note", Reason: "must be at most 500 characters"}}
	}
	return nil
}

func (a *grpcAPI) AcknowledgeNotification(ctx context.Context, req *notifyv1.AcknowledgeNotificationRequest) (*notifyv1.AcknowledgeNotificationResponse, error) {
	id, err := identity(ctx)
	if err != nil {
		return nil, err
	}
	n, err := a.visible(ctx, id, req.GetNotificationId())
	if err != nil {
		return nil, err
	}
	if vs := checkAcknowledge(req); len(vs) > 0 {
		return nil, apierr.Invalid(vs)
	}
	note := strings.TrimSpace(req.GetNote())
	if n.Agency != id.Agency {
		if !id.Can(auth.AcknowledgeOnBehalf) {
			return nil, apierr.PermissionDenied(fmt.Sprintf("only agency %s (or a manager on its behalf) may acknowledge this notification", n.Agency))
		}
		if note == "" {
			return nil, apierr.Invalid([]apierr.Violation{{Field: "note", Reason: "is required when acknowledging for another agency: say how it acknowledged (e.g. by phone to whom)"}})
		}
	}
	if n.WithdrawnAt != nil {
		return nil, apierr.Conflict("notification " + n.ID + " was withdrawn; there is nothing to acknowledge")
	}
	n, already, err := a.svc.Acknowledge(ctx, n.ID, caller(id), note)
	if err != nil {
		return nil, err
	}
	return &notifyv1.AcknowledgeNotificationResponse{Notification: notificationToProto(n, nil), AlreadyAcknowledged: already}, nil
}

// checkRetry is RetryNotification's check of its request.
func checkRetry(req *notifyv1.RetryNotificationRequest) []apierr.Violation {
	if _, err := uuid.Parse(req.GetNotificationId()); err != nil {
		return []apierr.Violation{{Field: "notificationId", Reason: "must be a notification id (UUID)"}}
	}
	if strings.TrimSpace(req.GetReason()) == "" {
		return []apierr.Violation{{Field: "reason", Reason: "is required: say what was fixed"}}
	}
	return nil
}

func (a *grpcAPI) RetryNotification(ctx context.Context, req *notifyv1.RetryNotificationRequest) (*notifyv1.RetryNotificationResponse, error) {
	id, err := server.Require(ctx, auth.RetryNotifications)
	if err != nil {
		return nil, err
	}
	if vs := checkRetry(req); len(vs) > 0 {
		return nil, apierr.Invalid(vs)
	}
	// Another partnership's notification is not found.
	if _, err := a.visible(ctx, id, req.GetNotificationId()); err != nil {
		return nil, err
	}
	n, err := a.svc.Retry(ctx, req.GetNotificationId(), caller(id), req.GetReason())
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, apierr.NotFound("notification " + req.GetNotificationId() + " not found")
	case errors.Is(err, store.ErrState):
		return nil, apierr.Conflict("notification " + req.GetNotificationId() + " has not failed (or was withdrawn); only failed notifications can be retried")
	case errors.Is(err, errStillUnroutable):
		return nil, apierr.Conflict(err.Error() + ": add the agency to the directory first")
	case err != nil:
		return nil, err
	}
	return &notifyv1.RetryNotificationResponse{Notification: notificationToProto(n, nil)}, nil
}

func agencyFromProto(p *notifyv1.Agency) directory.Agency {
	a := directory.Agency{ID: p.GetId(), Partnership: p.GetPartnership(), Name: p.GetName(), Roles: p.GetRoles(), URL: p.GetUrl(),
		Email: p.GetEmail(), HoursStart: p.GetHours().GetStart(), HoursEnd: p.GetHours().GetEnd(), OutOfHours: p.GetOutOfHours(),
		Concurrency: int(p.GetConcurrency()), Schools: p.GetSchools(), NameCy: p.GetNameCy(), Language: p.GetLanguage()}
	switch p.GetChannel() {
	case notifyv1.ChannelKind_WEBHOOK:
		a.Channel = directory.ChannelWebhook
	case notifyv1.ChannelKind_NATS:
		a.Channel = directory.ChannelNATS
	case notifyv1.ChannelKind_EMAIL:
		a.Channel = directory.ChannelEmail
	}
	return a
}

func agencyToProto(a store.StoredAgency) *notifyv1.Agency {
	p := &notifyv1.Agency{Id: a.ID, Partnership: a.Partnership, Name: a.Name, Roles: a.Roles, Url: a.URL, Email: a.Email,
		OutOfHours: a.OutOfHours, Concurrency: int32(a.Concurrency), Schools: a.Schools, HasSecret: a.HasSecret(),
		UpdatedAt: timestamppb.New(a.UpdatedAt), UpdatedBy: a.UpdatedBy, NameCy: a.NameCy, Language: a.Language}
	if a.HoursStart != "" {
		p.Hours = &notifyv1.WorkingHours{Start: a.HoursStart, End: a.HoursEnd}
	}
	switch a.Channel {
	case directory.ChannelWebhook:
		p.Channel = notifyv1.ChannelKind_WEBHOOK
	case directory.ChannelNATS:
		p.Channel, p.Subject = notifyv1.ChannelKind_NATS, directory.Subject(a.ID)
	case directory.ChannelEmail:
		p.Channel = notifyv1.ChannelKind_EMAIL
	}
	return p
}

func ts(t *time.Time) *timestamppb.Timestamp {
	if t == nil {
		return nil
	}
	return timestamppb.New(*t)
}

func notificationToProto(n store.Notification, history []store.Attempt) *notifyv1.Notification {
	p := &notifyv1.Notification{Id: n.ID, ReferralId: n.ReferralID, Reference: n.Reference, Partnership: n.Partnership, Agency: n.Agency,
		Role: n.Role, Kind: notifyv1.NotificationKind(notifyv1.NotificationKind_value[n.Kind]),
		State: notifyv1.NotificationState(notifyv1.NotificationState_value[n.State]), DecisionId: n.DecisionID, DecisionVersion: n.DecisionVersion,
		Rag: n.RAG, Attempts: int32(n.Attempts), LastError: n.LastError, CreatedAt: timestamppb.New(n.CreatedAt),
		DeliveredAt: ts(n.DeliveredAt), AcknowledgedAt: ts(n.AcknowledgedAt), AcknowledgedBy: n.AcknowledgedBy, AcknowledgementNote: n.AckNote,
		AckDue: ts(n.AckDue), EscalatedAt: ts(n.EscalatedAt), EscalatesNotificationId: n.EscalatesID, RoutedFromAgency: n.RoutedFrom, AuthorisedBy: n.AuthorisedBy,
		WithdrawsNotificationId: n.WithdrawsID, WithdrawnAt: ts(n.WithdrawnAt), Channel: n.Channel,
		Share: &notifyv1.Share{PayloadSha256: n.PayloadSHA256, Fields: n.Fields, Purpose: n.Purpose, LawfulBasis: n.LawfulBasis,
			ConsentStatus: n.ConsentStatus, ConsentReason: n.ConsentReason, ReferrerIdentityWithheld: n.ReferrerWithheld}}
	if n.State == store.StatePending || n.State == store.StateSending {
		p.NextAttemptAt = timestamppb.New(n.NextAttemptAt)
	}
	for _, h := range history {
		p.History = append(p.History, &notifyv1.Attempt{Number: int32(h.Number), At: timestamppb.New(h.At), Result: h.Result, Ok: h.OK})
	}
	return p
}

// checkDirectoryScope refuses a change to the directory of a partnership the caller does
// not serve. The "default" partnership's directory serves every partnership without its
// own, so only a credential serving every partnership may change it.
func checkDirectoryScope(id auth.Identity, partnership string) error {
	if _, all := id.PartnershipScope(); all {
		return nil
	}
	if partnership == DefaultPartnership {
		return apierr.PermissionDenied(fmt.Sprintf("partnership %s: its directory serves every partnership without its own; "+
			"only a credential serving every partnership (*) may change it", partnership))
	}
	if !id.Serves(partnership) {
		return apierr.PermissionDenied(fmt.Sprintf("partnership %s: this credential serves %s, not that partnership",
			partnership, strings.Join(id.Partnerships, ", ")))
	}
	return nil
}
