package triage

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"

	"github.com/mash-hub/mash/pkg/access"
	"github.com/mash-hub/mash/pkg/apierr"
	"github.com/mash-hub/mash/pkg/auth"
	"github.com/mash-hub/mash/pkg/server"
	"github.com/mash-hub/mash/pkg/text"
	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
	rulesv1 "github.com/mash-hub/mash/proto/mash/rules/v1"
	triagev1 "github.com/mash-hub/mash/proto/mash/triage/v1"
	"github.com/mash-hub/mash/services/triage/store"
)

// EventChildChanged is a case moved to another child record by a practitioner's or
// manager's correction (a merge, an unmerge, a link or an unlink), with the reason.
const EventChildChanged = eventsv1.SubjectCaseChildChanged

// Search limits.
const (
	defaultSearchSize = 50
	maxSearchSize     = 200
	maxQueryLength    = 200
	maxReasonLength   = 500
)

type recordsAPI struct {
	triagev1.UnimplementedRecordsServiceServer
	svc *Service
}

// reasonOf is the request's reason, else the caller's X-Access-Reason; problems name field.
func reasonOf(ctx context.Context, field, given string) (string, *apierr.Violation) {
	r := strings.TrimSpace(given)
	if r == "" {
		return strings.TrimSpace(server.AccessReason(ctx)), nil
	}
	if p := text.Problem(r, false); p != "" {
		return "", &apierr.Violation{Field: field, Reason: p}
	}
	return text.Truncate(r, maxReasonLength), nil
}

func (a *recordsAPI) Search(ctx context.Context, req *triagev1.SearchRequest) (*triagev1.SearchResponse, error) {
	id, err := server.Require(ctx, auth.SearchRecords)
	if err != nil {
		return nil, err
	}
	var vs []apierr.Violation
	q := strings.TrimSpace(req.GetQ())
	sq := store.SearchQuery{}
	switch {
	case len(q) > maxQueryLength:
		vs = append(vs, apierr.Violation{Field: "q", Reason: fmt.Sprintf("is longer than %d characters", maxQueryLength)})
	case text.Problem(q, false) != "":
		vs = append(vs, apierr.Violation{Field: "q", Reason: text.Problem(q, false)})
	default:
		var p string
		if sq, p = parseQuery(q); p != "" {
			vs = append(vs, apierr.Violation{Field: "q", Reason: p})
		}
	}
	reason, v := reasonOf(ctx, "reason", req.GetReason())
	switch {
	case v != nil:
		vs = append(vs, *v)
	case reason == "":
		vs = append(vs, apierr.Violation{Field: "reason", Reason: "is required: why you are searching (it is kept with the record of the search)"})
	}
	if p := req.GetPartnership(); p != "" && !id.Serves(p) {
		vs = append(vs, apierr.Violation{Field: "partnership", Reason: "is not a partnership you serve"})
	}
	if len(vs) > 0 {
		return nil, apierr.Invalid(vs)
	}
	sq.Partnerships, sq.Partnership = servedPartnerships(id), req.GetPartnership()
	sq.Limit = int(req.GetPageSize())
	if sq.Limit <= 0 {
		sq.Limit = defaultSearchSize
	}
	sq.Limit = min(sq.Limit, maxSearchSize)
	s := a.svc
	pool := s.store.Pool()
	hits, more, err := store.Search(ctx, pool, sq)
	if err != nil {
		return nil, err
	}
	bases := searched(sq)
	// One access entry per search, results or none (the search itself is a look at
	// children's records), naming every referral and child it showed; it commits before
	// the results leave. The action names the keys searched, never their values.
	listed := make([]access.Listed, len(hits))
	for i, h := range hits {
		listed[i] = access.Listed{ReferralID: h.ReferralID, ChildID: h.ChildID}
	}
	if err := access.Record(ctx, pool, store.Schema, s.relay.Wake, s.cipher, id, access.Read{Type: eventsv1.SubjectAccessSearch, Action: searchAction(bases),
		Partnership: sq.Partnership, Listed: listed, Reason: reason}, s.now()); err != nil {
		return nil, err
	}
	resp := &triagev1.SearchResponse{Searched: bases, Truncated: more}
	var childIDs []string
	children := map[string]*triagev1.SearchChild{}
	for _, h := range hits {
		r := hitToProto(h)
		r.MatchedOn = matchedOn(bases, h.Household)
		resp.Referrals = append(resp.Referrals, r)
		if h.ChildID == "" || children[h.ChildID] != nil {
			continue
		}
		// The child's best-ranked referral says what matched.
		c := &triagev1.SearchChild{ChildId: h.ChildID, Name: h.ChildName, DateOfBirth: r.GetDateOfBirth(), Postcode: r.GetPostcode(),
			MatchedOn: r.GetMatchedOn()}
		children[h.ChildID] = c
		childIDs = append(childIDs, h.ChildID)
		resp.Children = append(resp.Children, c)
	}
	if len(childIDs) > 0 {
		sums, err := store.ChildSummaries(ctx, pool, childIDs, sq.Partnerships)
		if err != nil {
			return nil, err
		}
		for _, c := range resp.Children {
			c.ReferralCount, c.LatestReferralId = sums[c.GetChildId()].Referrals, sums[c.GetChildId()].LatestReferralID
		}
	}
	s.log.Info("search", zap.String("client", id.ClientID), zap.String("keys", searchAction(bases)), zap.Int("referrals", len(hits)))
	return resp, nil
}

// matchedOn is what a result matched on: the keys searched, with the name a household
// member's when it was not the child's.
func matchedOn(bases []triagev1.MatchBasis, household bool) []triagev1.MatchBasis {
	if !household {
		return bases
	}
	out := make([]triagev1.MatchBasis, len(bases))
	for i, b := range bases {
		if b == triagev1.MatchBasis_NAME {
			b = triagev1.MatchBasis_HOUSEHOLD
		}
		out[i] = b
	}
	return out
}

// searchAction names a search in the access log by the keys it used.
func searchAction(bases []triagev1.MatchBasis) string {
	names := make([]string, len(bases))
	for i, b := range bases {
		names[i] = strings.ToLower(b.String())
	}
	return "Search by " + strings.Join(names, ", ")
}

func dateString(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.Format(time.DateOnly)
}

func hitToProto(h store.SearchHit) *triagev1.SearchReferral {
	return &triagev1.SearchReferral{ReferralId: h.ReferralID, Reference: h.Reference, ExternalReference: h.ExternalReference,
		Partnership: h.Partnership, ChildId: h.ChildID, ChildName: h.ChildName, DateOfBirth: dateString(h.DateOfBirth),
		Postcode: displayPostcode(h.Postcode), State: triagev1.CaseState(h.State), Level: rulesv1.Level(h.Level),
		ReceivedAt: ts(h.ReceivedAt), Score: h.Score, SourceAgency: h.SourceAgency}
}

func childNotFound(childID string) error {
	return apierr.NotFound("no child record " + childID + " in the partnerships you serve")
}

// visibleChild checks that the caller may read (whole: every case of) a child record. A
// record with no case in the caller's partnerships is as unknown as a missing one.
func (s *Service) visibleChild(ctx context.Context, q store.Querier, id auth.Identity, childID string, whole bool) error {
	if !isUUIDString(childID) {
		return invalid("childId", "is required: a child record's id (a UUID)")
	}
	ps, err := store.ChildPartnerships(ctx, q, childID)
	if err != nil {
		return err
	}
	seen := 0
	for _, p := range ps {
		if id.Serves(p) {
			seen++
		}
	}
	switch {
	case seen == 0:
		return childNotFound(childID)
	case whole && seen < len(ps):
		return apierr.FailedPrecondition("child record " + childID + " has referrals in partnerships you do not serve: ask a colleague who serves them all")
	}
	return nil
}

func (a *recordsAPI) GetChild(ctx context.Context, req *triagev1.GetChildRequest) (*triagev1.GetChildResponse, error) {
	id, err := server.Require(ctx, auth.ReadCases)
	if err != nil {
		return nil, err
	}
	s := a.svc
	pool := s.store.Pool()
	childID := req.GetChildId()
	reason, v := reasonOf(ctx, "reason", req.GetReason())
	if v != nil {
		return nil, apierr.Invalid([]apierr.Violation{*v})
	}
	resp := &triagev1.GetChildResponse{ChildId: childID}
	// A record merged away has no cases of its own: it is shown as the record it now is.
	if isUUIDString(childID) {
		into, err := store.MergedInto(ctx, pool, childID)
		if err != nil {
			return nil, err
		}
		resp.MergedInto = into
	}
	if resp.GetMergedInto() == "" {
		if err := s.visibleChild(ctx, pool, id, childID, false); err != nil {
			return nil, err
		}
	} else if err := s.visibleChild(ctx, pool, id, resp.GetMergedInto(), false); err != nil {
		return nil, err
	}
	served := servedPartnerships(id)
	referrals, _, err := store.ChildReferrals(ctx, pool, childID, served)
	if err != nil {
		return nil, err
	}
	matches, err := store.PossibleMatches(ctx, pool, childID, served)
	if err != nil {
		return nil, err
	}
	listed := make([]access.Listed, 0, len(referrals)+len(matches))
	for _, r := range referrals {
		listed = append(listed, access.Listed{ReferralID: r.ReferralID, ChildID: childID})
		resp.Referrals = append(resp.Referrals, hitToProto(r))
	}
	for _, m := range matches {
		listed = append(listed, access.Listed{ChildID: m.ChildID})
		resp.PossibleMatches = append(resp.PossibleMatches, &triagev1.PossibleMatch{ChildId: m.ChildID, Name: m.ChildName,
			DateOfBirth: dateString(m.DateOfBirth), Postcode: displayPostcode(m.Postcode), ReferralCount: m.Referrals, Basis: matchBasis(m)})
	}
	if err := access.Record(ctx, pool, store.Schema, s.relay.Wake, s.cipher, id, access.Read{Type: eventsv1.SubjectAccessChild, Action: "GetChild",
		ChildID: childID, Listed: listed, Reason: reason}, s.now()); err != nil {
		return nil, err
	}
	corrections, err := store.Corrections(ctx, pool, childID)
	if err != nil {
		return nil, err
	}
	for _, c := range corrections {
		resp.Corrections = append(resp.Corrections, correctionToProto(c))
	}
	return resp, nil
}

// matchBasis says, in words, what a possible match shares with the record and where it
// differs: never enough to link without a person's judgement.
func matchBasis(m store.PossibleMatch) string {
	if m.SamePostcode {
		// Same name, date of birth and postcode, yet not linked: one side's NHS number
		// differs, or several records matched.
		return "same name, date of birth and postcode, but a different NHS number or several candidate records"
	}
	if m.Postcode == "" {
		return "same name and date of birth, no postcode recorded"
	}
	return "same name and date of birth, different postcode"
}

func correctionToProto(c store.Correction) *triagev1.ChildCorrection {
	p := &triagev1.ChildCorrection{Id: c.ID, Kind: c.Kind, FromChildId: c.FromChild, ToChildId: c.ToChild, ReferralId: c.ReferralID,
		Reason: c.Reason, Actor: c.Actor, At: ts(&c.At), UndoneBy: c.UndoneBy, UndoReason: c.UndoReason}
	if c.UndoneAt != nil {
		p.UndoneAt = ts(c.UndoneAt)
	}
	return p
}

// correctionReason checks a correction's reason, which is required.
func correctionReason(r string) error {
	r = strings.TrimSpace(r)
	switch {
	case r == "":
		return invalid("reason", "is required: why the records are (or are not) the same child")
	case text.Problem(r, true) != "":
		return invalid("reason", text.Problem(r, true))
	case len(r) > 2000:
		return invalid("reason", "is longer than 2000 characters")
	}
	return nil
}

// emitMoved writes a case event for each case a correction moved, carrying the correction
// (the rules' child index follows merges by it).
func (s *Service) emitMoved(ctx context.Context, tx pgx.Tx, moved []store.Case, id auth.Identity, why string, corr store.Correction) error {
	for _, c := range moved {
		if err := s.emitChildChanged(ctx, tx, c, staff(id), why, corr); err != nil {
			return err
		}
	}
	return nil
}

// emitChildChanged writes mash.case.child_changed for c, moved by correction corr.
func (s *Service) emitChildChanged(ctx context.Context, tx pgx.Tx, c store.Case, by auth.Actor, why string, corr store.Correction) error {
	return s.emit(ctx, tx, by, EventChildChanged, c.Partnership, c.ReferralID, c.Version,
		&eventsv1.CaseChanged{Case: caseToProto(c, s.now()), Actor: by.ID, ActorRole: by.Role, Reason: why, Correction: correctionToProto(corr)})
}

func correctionError(err error) error {
	switch {
	case errors.Is(err, store.ErrMergedAway):
		return apierr.FailedPrecondition(err.Error() + ": correct the record it now is")
	case errors.Is(err, store.ErrAlreadyUndone):
		return apierr.FailedPrecondition("that merge was already undone")
	}
	return err
}

// checkMerge is MergeChildren's check of its request.
func checkMerge(req *triagev1.MergeChildrenRequest) []apierr.Violation {
	if err := correctionReason(req.GetReason()); err != nil {
		return violationsOf(err)
	}
	if !isUUIDString(req.GetIntoChildId()) {
		return []apierr.Violation{{Field: "intoChildId", Reason: "is required: the child record that remains (a UUID)"}}
	}
	if req.GetIntoChildId() == req.GetChildId() {
		return []apierr.Violation{{Field: "intoChildId", Reason: "is the record being merged: name another record"}}
	}
	return nil
}

func (a *recordsAPI) MergeChildren(ctx context.Context, req *triagev1.MergeChildrenRequest) (*triagev1.MergeChildrenResponse, error) {
	id, err := server.Require(ctx, auth.CorrectChildRecords)
	if err != nil {
		return nil, err
	}
	if vs := checkMerge(req); len(vs) > 0 {
		return nil, apierr.Invalid(vs)
	}
	s := a.svc
	m := store.Correction{ID: uuid.Must(uuid.NewV7()).String(), Kind: store.CorrectionMerge, FromChild: req.GetChildId(),
		ToChild: req.GetIntoChildId(), Reason: strings.TrimSpace(req.GetReason()), Actor: id.Actor(), ActorRole: string(id.Role), At: s.now().UTC()}
	var moved []store.Case
	err = s.store.InTx(ctx, func(tx pgx.Tx) error {
		for _, c := range []string{m.FromChild, m.ToChild} {
			if err := s.visibleChild(ctx, tx, id, c, true); err != nil {
				return err
			}
		}
		var err error
		if moved, err = store.MergeChildren(ctx, tx, m); err != nil {
			return correctionError(err)
		}
		return s.emitMoved(ctx, tx, moved, id, fmt.Sprintf("merged child record %s into %s: %s", m.FromChild, m.ToChild, m.Reason), m)
	})
	if err != nil {
		return nil, err
	}
	s.relay.Wake()
	s.log.Info("child records merged", zap.String("merge_id", m.ID), zap.String("from", m.FromChild), zap.String("into", m.ToChild),
		zap.Int("referrals", len(moved)), zap.String("client", id.ClientID))
	return &triagev1.MergeChildrenResponse{Merge: correctionToProto(m), ReferralIds: referralIDs(moved)}, nil
}

func referralIDs(cs []store.Case) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.ReferralID
	}
	return out
}

// checkUnmerge is UnmergeChildren's check of its request.
func checkUnmerge(req *triagev1.UnmergeChildrenRequest) []apierr.Violation {
	if err := correctionReason(req.GetReason()); err != nil {
		return violationsOf(err)
	}
	if !isUUIDString(req.GetMergeId()) {
		return []apierr.Violation{{Field: "mergeId", Reason: "is required: the merge's id, from the child record's corrections"}}
	}
	return nil
}

func (a *recordsAPI) UnmergeChildren(ctx context.Context, req *triagev1.UnmergeChildrenRequest) (*triagev1.UnmergeChildrenResponse, error) {
	id, err := server.Require(ctx, auth.CorrectChildRecords)
	if err != nil {
		return nil, err
	}
	if vs := checkUnmerge(req); len(vs) > 0 {
		return nil, apierr.Invalid(vs)
	}
	s := a.svc
	var m store.Correction
	var moved []store.Case
	err = s.store.InTx(ctx, func(tx pgx.Tx) error {
		var err error
		if m, err = store.LockMerge(ctx, tx, req.GetMergeId()); err != nil {
			return notFoundAs(err, apierr.NotFound("no merge "+req.GetMergeId()))
		}
		if err := s.visibleChild(ctx, tx, id, m.ToChild, true); err != nil {
			return err
		}
		if m, moved, err = store.UnmergeChildren(ctx, tx, m.ID, id.Actor(), strings.TrimSpace(req.GetReason()), s.now().UTC()); err != nil {
			return correctionError(err)
		}
		return s.emitMoved(ctx, tx, moved, id, fmt.Sprintf("undid the merge of child record %s into %s: %s", m.FromChild, m.ToChild, m.UndoReason), m)
	})
	if err != nil {
		return nil, err
	}
	s.relay.Wake()
	s.log.Info("child records unmerged", zap.String("merge_id", m.ID), zap.Int("referrals", len(moved)), zap.String("client", id.ClientID))
	return &triagev1.UnmergeChildrenResponse{Merge: correctionToProto(m), ReferralIds: referralIDs(moved)}, nil
}

// checkRelink is the check of a link's or an unlink's referral and reason.
func checkRelink(referralID, reason string) []apierr.Violation {
	if err := correctionReason(reason); err != nil {
		return violationsOf(err)
	}
	if !isUUIDString(referralID) {
		return []apierr.Violation{{Field: "referralId", Reason: "is required: a referral id (a UUID)"}}
	}
	return nil
}

// checkLink is LinkReferral's check of its request.
func checkLink(req *triagev1.LinkReferralRequest) []apierr.Violation {
	if !isUUIDString(req.GetChildId()) {
		return []apierr.Violation{{Field: "childId", Reason: "is required: the child record to link the referral to (a UUID)"}}
	}
	return checkRelink(req.GetReferralId(), req.GetReason())
}

// checkUnlink is UnlinkReferral's check of its request.
func checkUnlink(req *triagev1.UnlinkReferralRequest) []apierr.Violation {
	return checkRelink(req.GetReferralId(), req.GetReason())
}

// relink moves one case to another child record (toChild "" makes a new record); its
// caller has checked the request (checkLink, checkUnlink).
func (s *Service) relink(ctx context.Context, id auth.Identity, referralID, toChild, reason, kind string) (store.Case, error) {
	var out store.Case
	err := s.store.InTx(ctx, func(tx pgx.Tx) error {
		c, err := store.GetCase(ctx, tx, referralID)
		if err == nil && !id.Serves(c.Partnership) {
			err = store.ErrNotFound
		}
		if err != nil {
			return notFoundAs(err, caseNotFound(referralID))
		}
		if c.ChildID == "" {
			return apierr.FailedPrecondition("referral " + referralID + " has no child record yet (it gets one with the rules' recommendation)")
		}
		l := store.Correction{ID: uuid.Must(uuid.NewV7()).String(), Kind: kind, ReferralID: referralID, FromChild: c.ChildID,
			ToChild: toChild, Reason: strings.TrimSpace(reason), Actor: id.Actor(), ActorRole: string(id.Role), At: s.now().UTC()}
		var why string
		switch kind {
		case store.CorrectionLink:
			if c.ChildID == toChild {
				return apierr.FailedPrecondition("referral " + referralID + " is already on child record " + toChild)
			}
			into, err := store.MergedInto(ctx, tx, toChild)
			if err != nil {
				return err
			}
			if into != "" {
				return apierr.FailedPrecondition("child record " + toChild + " was merged into " + into + ": link to that record")
			}
			if err := s.visibleChild(ctx, tx, id, toChild, false); err != nil {
				return err
			}
			why = fmt.Sprintf("linked to child record %s (was %s): %s", toChild, c.ChildID, l.Reason)
		default:
			_, all, err := store.ChildReferrals(ctx, tx, c.ChildID, nil)
			if err != nil {
				return err
			}
			if all < 2 {
				return apierr.FailedPrecondition("referral " + referralID + " is the only referral on its child record: there is nothing to unlink it from")
			}
			l.ToChild = uuid.Must(uuid.NewV7()).String()
			why = fmt.Sprintf("unlinked from child record %s onto a new record %s: %s", c.ChildID, l.ToChild, l.Reason)
		}
		if out, err = store.SetChildOverride(ctx, tx, l); err != nil {
			return err
		}
		return s.emitChildChanged(ctx, tx, out, staff(id), why, l)
	})
	if err != nil {
		return store.Case{}, err
	}
	s.relay.Wake()
	s.log.Info("referral "+strings.ToLower(kind)+"ed", zap.String("referral_id", referralID), zap.String("child_id", out.ChildID),
		zap.String("client", id.ClientID))
	return out, nil
}

func (a *recordsAPI) LinkReferral(ctx context.Context, req *triagev1.LinkReferralRequest) (*triagev1.LinkReferralResponse, error) {
	id, err := server.Require(ctx, auth.CorrectChildRecords)
	if err != nil {
		return nil, err
	}
	if vs := checkLink(req); len(vs) > 0 {
		return nil, apierr.Invalid(vs)
	}
	c, err := a.svc.relink(ctx, id, req.GetReferralId(), req.GetChildId(), req.GetReason(), store.CorrectionLink)
	if err != nil {
		return nil, err
	}
	return &triagev1.LinkReferralResponse{Case: caseToProto(c, a.svc.now())}, nil
}

func (a *recordsAPI) UnlinkReferral(ctx context.Context, req *triagev1.UnlinkReferralRequest) (*triagev1.UnlinkReferralResponse, error) {
	id, err := server.Require(ctx, auth.CorrectChildRecords)
	if err != nil {
		return nil, err
	}
	if vs := checkUnlink(req); len(vs) > 0 {
		return nil, apierr.Invalid(vs)
	}
	c, err := a.svc.relink(ctx, id, req.GetReferralId(), "", req.GetReason(), store.CorrectionUnlink)
	if err != nil {
		return nil, err
	}
	return &triagev1.UnlinkReferralResponse{Case: caseToProto(c, a.svc.now())}, nil
}
