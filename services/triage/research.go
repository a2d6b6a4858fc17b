package triage

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"

	"github.com/mash-hub/mash/pkg/access"
	"github.com/mash-hub/mash/pkg/apierr"
	"github.com/mash-hub/mash/pkg/auth"
	"github.com/mash-hub/mash/pkg/calendar"
	"github.com/mash-hub/mash/pkg/server"
	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
	triagev1 "github.com/mash-hub/mash/proto/mash/triage/v1"
	"github.com/mash-hub/mash/services/triage/store"
)

// endOfNextWorkingDay is the default deadline of an information request: the close of the
// first working day after today, so an agency always has at least one full working day.
func endOfNextWorkingDay(cal *calendar.Calendar, now time.Time) time.Time {
	local := now.In(cal.Location())
	tomorrow := time.Date(local.Year(), local.Month(), local.Day()+1, 0, 0, 0, 0, cal.Location())
	start := cal.NextWorkingDayStart(tomorrow)
	// A full working day from its start ends at that day's close.
	return cal.AddWorkingHours(start, cal.WorkingDayLength()).UTC()
}

func infoNotFound(id string) error {
	return apierr.NotFound("no information request " + id)
}

// checkRequestInformation is RequestInformation's check of its request.
func (s *Service) checkRequestInformation(req *triagev1.RequestInformationRequest) []apierr.Violation {
	var vs []apierr.Violation
	if req.GetReferralId() == "" {
		vs = append(vs, apierr.Violation{Field: "referralId", Reason: "is required"})
	}
	if err := auth.ValidateClient(req.GetAgency(), "hub", auth.RoleReferrer); err != nil {
		vs = append(vs, apierr.Violation{Field: "agency", Reason: "must be the agency's slug, as its credential names it (e.g. south-wales-police)"})
	}
	if strings.TrimSpace(req.GetQuestion()) == "" {
		vs = append(vs, apierr.Violation{Field: "question", Reason: "is required: what the hub needs to know"})
	}
	if req.GetDue() != nil && !req.GetDue().AsTime().After(s.now()) {
		vs = append(vs, apierr.Violation{Field: "due", Reason: "is not in the future; leave it empty for the end of the next working day"})
	}
	return vs
}

func (a *grpcAPI) RequestInformation(ctx context.Context, req *triagev1.RequestInformationRequest) (*triagev1.RequestInformationResponse, error) {
	id, err := server.Require(ctx, auth.RequestInformation)
	if err != nil {
		return nil, err
	}
	s := a.svc
	now := s.now().UTC()
	if vs := s.checkRequestInformation(req); len(vs) > 0 {
		return nil, apierr.Invalid(vs)
	}
	due := endOfNextWorkingDay(s.calendar, now)
	if req.GetDue() != nil {
		due = req.GetDue().AsTime().UTC()
	}
	r := store.InformationRequest{ID: uuid.Must(uuid.NewV7()).String(), ReferralID: req.GetReferralId(), Agency: req.GetAgency(),
		Question: req.GetQuestion(), Due: due, State: store.InfoRequested, RequestedBy: id.Actor(), RequestedAt: now}
	err = s.store.InTx(ctx, func(tx pgx.Tx) error {
		c, err := store.LockCase(ctx, tx, req.GetReferralId())
		if err == nil && !id.Serves(c.Partnership) {
			err = store.ErrNotFound
		}
		if err != nil {
			return notFoundAs(err, caseNotFound(req.GetReferralId()))
		}
		if c.State == store.StateClosed {
			return caseClosed(c)
		}
		r.Partnership = c.Partnership
		if err := store.InsertInformationRequest(ctx, tx, r); err != nil {
			return err
		}
		return s.emit(ctx, tx, staff(id), EventResearchRequested, r.Partnership, r.ReferralID, c.Version,
			infoChanged(infoToProto(r, now), staff(id)))
	})
	if err != nil {
		return nil, err
	}
	s.relay.Wake()
	s.log.Info("information requested", zap.String("referral_id", r.ReferralID), zap.String("request_id", r.ID), zap.String("agency", r.Agency))
	return &triagev1.RequestInformationResponse{Request: infoToProto(r, now)}, nil
}

type infoToken struct {
	Due time.Time `json:"d"`
	ID  string    `json:"i"`
}

func (k *infoToken) rowID() string { return k.ID }

func (a *grpcAPI) ListInformationRequests(ctx context.Context, req *triagev1.ListInformationRequestsRequest) (*triagev1.ListInformationRequestsResponse, error) {
	id, err := server.Require(ctx, auth.ReadInformation)
	if err != nil {
		return nil, err
	}
	f := store.InfoFilter{ReferralID: req.GetReferralId(), Agency: req.GetAgency(), Partnerships: servedPartnerships(id),
		OpenOnly: req.GetOpenOnly(), Limit: pageSize(req.GetPageSize())}
	if !hubStaff(id) {
		if f.Agency != "" && f.Agency != id.Agency {
			return &triagev1.ListInformationRequestsResponse{}, nil // another agency's requests are not visible
		}
		f.Agency = id.Agency
	}
	if tok := req.GetPageToken(); tok != "" {
		var k infoToken
		if !decodeToken(tok, &k) {
			return nil, apierr.Invalid([]apierr.Violation{badToken})
		}
		f.AfterDue, f.AfterID = &k.Due, k.ID
	}
	rs, err := store.ListInformationRequests(ctx, a.svc.store.Pool(), f)
	if err != nil {
		return nil, err
	}
	now := a.svc.now()
	if len(rs) > 0 {
		// One access entry per page, naming the referral and child of every request it shows.
		refs := make([]string, len(rs))
		for i, r := range rs {
			refs[i] = r.ReferralID
		}
		listed, err := listedCases(ctx, a.svc.store.Pool(), refs)
		if err != nil {
			return nil, err
		}
		if err := access.Record(ctx, a.svc.store.Pool(), store.Schema, a.svc.relay.Wake, a.svc.cipher, id, access.Read{Type: eventsv1.SubjectAccessInformationRequests,
			Action: "ListInformationRequests", Listed: listed}, now); err != nil {
			return nil, err
		}
	}
	resp := &triagev1.ListInformationRequestsResponse{}
	for _, r := range rs {
		resp.Requests = append(resp.Requests, infoToProto(r, now))
	}
	if len(rs) == f.Limit {
		last := rs[len(rs)-1]
		resp.NextPageToken = encodeToken(infoToken{Due: last.Due, ID: last.ID})
	}
	return resp, nil
}

// checkAnswer is AnswerInformationRequest's check of its request.
func checkAnswer(req *triagev1.AnswerInformationRequestRequest) []apierr.Violation {
	if req.GetRequestId() == "" {
		return []apierr.Violation{{Field: "requestId", Reason: "is required"}}
	}
	if strings.TrimSpace(req.GetAnswer()) == "" {
		return []apierr.Violation{{Field: "answer", Reason: "is required: what your agency knows (\"nothing known\" is an answer)"}}
	}
	return nil
}

func (a *grpcAPI) AnswerInformationRequest(ctx context.Context, req *triagev1.AnswerInformationRequestRequest) (*triagev1.AnswerInformationRequestResponse, error) {
	id, err := server.Require(ctx, auth.AnswerInformation)
	if err != nil {
		return nil, err
	}
	if vs := checkAnswer(req); len(vs) > 0 {
		return nil, apierr.Invalid(vs)
	}
	s := a.svc
	now := s.now().UTC()
	var out store.InformationRequest
	err = s.store.InTx(ctx, func(tx pgx.Tx) error {
		r, err := store.LockInformationRequest(ctx, tx, req.GetRequestId())
		if err != nil {
			return notFoundAs(err, infoNotFound(req.GetRequestId()))
		}
		// An agency sees only what was asked of it; another's request does not exist for it.
		if (!hubStaff(id) && r.Agency != id.Agency) || !id.Serves(r.Partnership) {
			return infoNotFound(req.GetRequestId())
		}
		if r.State == store.InfoAnswered {
			return apierr.FailedPrecondition(fmt.Sprintf("information request %s was answered at %s by %s",
				r.ID, r.AnsweredAt.UTC().Format(time.RFC3339), r.AnsweredBy))
		}
		out, err = s.answerIn(ctx, tx, r.ID, req.GetAnswer(), id.Actor(), staff(id), now)
		return err
	})
	if err != nil {
		return nil, err
	}
	s.relay.Wake()
	return &triagev1.AnswerInformationRequestResponse{Request: infoToProto(out, now)}, nil
}

// answerIn records answer to request id within tx, as answeredBy, and emits
// mash.research.answered naming by: the one path for answers given through the API and on
// an agency's own channel.
func (s *Service) answerIn(ctx context.Context, tx pgx.Tx, id, answer, answeredBy string, by auth.Actor, now time.Time) (store.InformationRequest, error) {
	out, err := store.AnswerInformationRequest(ctx, tx, id, answer, answeredBy, now)
	if err != nil {
		return store.InformationRequest{}, err
	}
	return out, s.emit(ctx, tx, by, EventResearchAnswered, out.Partnership, out.ReferralID, 0, infoChanged(infoToProto(out, now), by))
}

// infoChanged is the event of an information request changed by by.
func infoChanged(r *triagev1.InformationRequest, by auth.Actor) *eventsv1.InformationRequestChanged {
	return &eventsv1.InformationRequestChanged{Request: r, Actor: by.ID, ActorRole: by.Role}
}
