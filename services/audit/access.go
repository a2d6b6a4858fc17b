package audit

import (
	"context"
	"fmt"
	"strconv"
	"time"
	_ "time/tzdata" // Europe/London for the out-of-hours rule, whatever the host has

	"google.golang.org/protobuf/types/known/timestamppb"

	"mash/pkg/apierr"
	"mash/pkg/auth"
	"mash/pkg/server"
	auditv1 "mash/proto/mash/audit/v1"
	"mash/services/audit/store"
)

// Working hours for UnusualAccess, a first cut to be tuned with the partnerships: an
// access is out of hours unless it occurred on a weekday (Monday to Friday) between
// WorkdayStartHour:00 inclusive and WorkdayEndHour:00 exclusive, London time. Bank
// holidays are not considered yet.
const (
	WorkdayStartHour = 8
	WorkdayEndHour   = 18
	WorkTimeZone     = "Europe/London"
)

// Reasons an access is reported by UnusualAccess.
const (
	ReasonOutOfHours  = "out_of_hours"
	ReasonNotInvolved = "not_involved"
)

// DefaultUnusualWindow is UnusualAccess's range when none is given: the days up to now.
const DefaultUnusualWindow = 7 * 24 * time.Hour

// unusualScanBatch and unusualScanMax bound the work of one UnusualAccess page: entries
// are examined in batches, and a page that has examined unusualScanMax entries stops
// there, returning fewer items than asked and a token to continue from.
const (
	unusualScanBatch = 500
	unusualScanMax   = 5000
)

var workZone = func() *time.Location {
	loc, err := time.LoadLocation(WorkTimeZone)
	if err != nil {
		panic(fmt.Sprintf("audit: load %s: %v", WorkTimeZone, err))
	}
	return loc
}()

// OutOfHours reports whether t is outside working hours (see WorkdayStartHour).
func OutOfHours(t time.Time) bool {
	l := t.In(workZone)
	if wd := l.Weekday(); wd == time.Saturday || wd == time.Sunday {
		return true
	}
	return l.Hour() < WorkdayStartHour || l.Hour() >= WorkdayEndHour
}

func accessToProto(a store.Access) *auditv1.AccessRecord {
	return &auditv1.AccessRecord{Seq: a.Seq, OccurredAt: timestamppb.New(a.OccurredAt), Actor: a.Actor, Role: a.ActorRole,
		Agency: a.Agency, What: a.Decision, EventType: a.EventType, ReferralId: a.ReferralID, ChildId: a.ChildID}
}

// accessPage converts up to n rows (n+1 were asked for) and returns the next token when
// there are more: the last seq read. Reads of partnerships the caller does not serve are
// left out, so a page may hold fewer than n.
func accessPage(id auth.Identity, rows []store.Access, n int) ([]*auditv1.AccessRecord, string) {
	next := ""
	if len(rows) > n {
		rows = rows[:n]
		next = strconv.FormatInt(rows[n-1].Seq, 10)
	}
	out := make([]*auditv1.AccessRecord, 0, len(rows))
	for _, r := range rows {
		if visibleTo(id, r.Partnership) {
			out = append(out, accessToProto(r))
		}
	}
	return out, next
}

func (a *grpcAPI) WhoAccessed(ctx context.Context, req *auditv1.WhoAccessedRequest) (*auditv1.WhoAccessedResponse, error) {
	id, err := server.Require(ctx, auth.ReadAuditTrails)
	if err != nil {
		return nil, err
	}
	n, cursor, vs := pageParams(req.GetPageSize(), req.GetPageToken())
	if (req.GetReferralId() == "") == (req.GetChildId() == "") {
		vs = append(vs, apierr.Violation{Field: "child_id", Reason: "give exactly one of child_id and referral_id"})
	}
	if len(vs) > 0 {
		return nil, apierr.Invalid(vs)
	}
	if err := a.svc.recordAccess(ctx, id, describe("WhoAccessed", "child_id", req.GetChildId(), "referral_id", req.GetReferralId(),
		"page_token", req.GetPageToken()), req.GetReferralId(), req.GetChildId()); err != nil {
		return nil, err
	}
	rows, err := store.AccessesOf(ctx, a.svc.pool, req.GetReferralId(), req.GetChildId(), cursor, n+1)
	if err != nil {
		return nil, err
	}
	resp := &auditv1.WhoAccessedResponse{}
	resp.Accesses, resp.NextPageToken = accessPage(id, rows, n)
	return resp, nil
}

func (a *grpcAPI) UserActivity(ctx context.Context, req *auditv1.UserActivityRequest) (*auditv1.UserActivityResponse, error) {
	id, err := server.Require(ctx, auth.ReadAuditTrails)
	if err != nil {
		return nil, err
	}
	n, cursor, vs := pageParams(req.GetPageSize(), req.GetPageToken())
	from, to, tvs := timeRange(req.GetFrom(), req.GetTo())
	vs = append(vs, tvs...)
	if req.GetActor() == "" {
		vs = append(vs, apierr.Violation{Field: "actor", Reason: "is required: the client id whose reads to list"})
	}
	if len(vs) > 0 {
		return nil, apierr.Invalid(vs)
	}
	if err := a.svc.recordAccess(ctx, id, describe("UserActivity", "actor", req.GetActor(), "from", tsString(req.GetFrom()),
		"to", tsString(req.GetTo()), "page_token", req.GetPageToken()), "", ""); err != nil {
		return nil, err
	}
	rows, err := store.ActivityOf(ctx, a.svc.pool, req.GetActor(), from, to, cursor, n+1)
	if err != nil {
		return nil, err
	}
	resp := &auditv1.UserActivityResponse{}
	resp.Accesses, resp.NextPageToken = accessPage(id, rows, n)
	return resp, nil
}

// unusualReasons returns why an access looks unusual, if it does: out of hours, or read by
// an agency not involved in a known referral by someone who is not an auditor.
// Administrators run the system and have no reason to read a child's record, so a read in
// that role is never taken for oversight.
func unusualReasons(a store.Access) []string {
	var rs []string
	if OutOfHours(a.OccurredAt) {
		rs = append(rs, ReasonOutOfHours)
	}
	overseer := a.ActorRole == string(auth.RoleAuditor)
	if a.ReferralKnown && !a.Involved && !overseer {
		rs = append(rs, ReasonNotInvolved)
	}
	return rs
}

func (a *grpcAPI) UnusualAccess(ctx context.Context, req *auditv1.UnusualAccessRequest) (*auditv1.UnusualAccessResponse, error) {
	id, err := server.Require(ctx, auth.ReadAuditTrails)
	if err != nil {
		return nil, err
	}
	n, cursor, vs := pageParams(req.GetPageSize(), req.GetPageToken())
	fromP, toP, tvs := timeRange(req.GetFrom(), req.GetTo())
	if vs = append(vs, tvs...); len(vs) > 0 {
		return nil, apierr.Invalid(vs)
	}
	to := a.svc.now()
	if toP != nil {
		to = *toP
	}
	from := to.Add(-DefaultUnusualWindow)
	if fromP != nil {
		from = *fromP
	}
	if !from.Before(to) {
		return nil, apierr.Invalid([]apierr.Violation{{Field: "from", Reason: "must be before to (which defaults to now)"}})
	}
	if err := a.svc.recordAccess(ctx, id, describe("UnusualAccess", "from", tsString(timestamppb.New(from)),
		"to", tsString(timestamppb.New(to)), "page_token", req.GetPageToken()), "", ""); err != nil {
		return nil, err
	}
	resp := &auditv1.UnusualAccessResponse{}
	var lastFlagged int64 = -1
	scanned := 0
	for scanned < unusualScanMax {
		rows, err := store.UnusualCandidates(ctx, a.svc.pool, from, to, cursor, unusualScanBatch)
		if err != nil {
			return nil, err
		}
		for _, r := range rows {
			scanned++
			cursor = r.Seq
			if !visibleTo(id, r.Partnership) {
				continue
			}
			rs := unusualReasons(r)
			if len(rs) == 0 {
				continue
			}
			if len(resp.Accesses) == n {
				// One more beyond the page: continue after the last one returned.
				resp.NextPageToken = strconv.FormatInt(lastFlagged, 10)
				return resp, nil
			}
			resp.Accesses = append(resp.Accesses, &auditv1.FlaggedAccess{Access: accessToProto(r), Reasons: rs})
			lastFlagged = r.Seq
		}
		if len(rows) < unusualScanBatch {
			return resp, nil // the range is exhausted
		}
	}
	// Examined as many entries as a page may: continue after the last one examined.
	resp.NextPageToken = strconv.FormatInt(cursor, 10)
	return resp, nil
}
