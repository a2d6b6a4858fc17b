package audit

import (
	"context"
	"crypto/sha256"
	"fmt"
	"slices"
	"strconv"
	"time"
	_ "time/tzdata" // Europe/London for the out-of-hours rule, whatever the host has

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/mash-hub/mash/pkg/apierr"
	"github.com/mash-hub/mash/pkg/auth"
	"github.com/mash-hub/mash/pkg/server"
	auditv1 "github.com/mash-hub/mash/proto/mash/audit/v1"
	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
	"github.com/mash-hub/mash/services/audit/store"
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
	// ReasonIntegrity: the entry does not match its leaf (see AccessRecord.integrity_error).
	ReasonIntegrity = "integrity_error"
	// ReasonOutsidePartnerships: the record belongs to a partnership the reader does not serve.
	ReasonOutsidePartnerships = "outside_partnerships"
	// ReasonNoOpenCase: the referral's case was closed before the read.
	ReasonNoOpenCase = "no_open_case"
	// ReasonBulkReading: the reader read more distinct children in an hour than
	// Config.BulkReadsPerHour.
	ReasonBulkReading = "bulk_reading"
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

// accessToProto serves a checked access entry with what its payload says: the reason and,
// for a list read, the records shown.
func accessToProto(c checked, sealed *eventsv1.RecordAccessed) *auditv1.AccessRecord {
	if c.Problem != "" {
		return &auditv1.AccessRecord{Seq: c.Seq, IntegrityError: c.Problem}
	}
	e := c.Entry
	out := &auditv1.AccessRecord{Seq: e.Seq, OccurredAt: timestamppb.New(e.OccurredAt), Actor: e.Actor, Role: e.ActorRole,
		Agency: e.Agency, What: e.Decision, EventType: e.EventType, ReferralId: e.ReferralID, ChildId: e.ChildID,
		Reason: sealed.GetReason()}
	for _, l := range sealed.GetListed() {
		out.Listed = append(out.Listed, &auditv1.ListedRecord{ReferralId: l.GetReferralId(), ChildId: l.GetChildId()})
	}
	return out
}

// checkAccesses proves access rows against their leaves and reads each proven entry's
// reason from its sealed payload.
func (s *Service) checkAccesses(ctx context.Context, rows []store.Access) ([]checked, []*eventsv1.RecordAccessed, error) {
	c, err := s.newRowChecker(ctx)
	if err != nil {
		return nil, nil, err
	}
	return s.checkAccessesWith(ctx, c, rows)
}

// checkAccessesWith is checkAccesses with a checker the caller reuses for further rows.
func (s *Service) checkAccessesWith(ctx context.Context, c *rowChecker, rows []store.Access) ([]checked, []*eventsv1.RecordAccessed, error) {
	ptrs := make([]*store.Entry, len(rows))
	for i := range rows {
		ptrs[i] = &rows[i].Entry
	}
	cs, err := c.check(ptrs)
	if err != nil {
		return nil, nil, err
	}
	reasons, err := s.accessReasons(ctx, cs)
	if err != nil {
		return nil, nil, err
	}
	return cs, reasons, nil
}

// accessPage proves and converts up to n rows (n+1 were asked for) and returns the next
// token when there are more: the last seq read. Reads of partnerships the caller does not
// serve are left out, so a page may hold fewer than n.
func (s *Service) accessPage(ctx context.Context, id auth.Identity, rows []store.Access, n int) ([]*auditv1.AccessRecord, string, error) {
	next := ""
	if len(rows) > n {
		rows = rows[:n]
		next = strconv.FormatInt(rows[n-1].Seq, 10)
	}
	cs, reasons, err := s.checkAccesses(ctx, rows)
	if err != nil {
		return nil, "", err
	}
	out := make([]*auditv1.AccessRecord, 0, len(cs))
	for i := range cs {
		if visibleTo(id, servedPartnership(cs[i], &rows[i].Entry)) {
			out = append(out, accessToProto(cs[i], reasons[i]))
		}
	}
	return out, next, nil
}

func (a *grpcAPI) WhoAccessed(ctx context.Context, req *auditv1.WhoAccessedRequest) (*auditv1.WhoAccessedResponse, error) {
	// Hub staff may read who accessed one referral (the case page shows it); a child's
	// whole trail is an auditor's. Partnerships are filtered below, for every caller.
	id, err := server.Require(ctx, auth.ReadCaseAccess)
	if err != nil {
		return nil, err
	}
	if req.GetChildId() != "" && !id.Can(auth.ReadAuditTrails) {
		return nil, apierr.PermissionDenied(id.Denial(auth.ReadAuditTrails) + " (by childId; give a referralId)")
	}
	return a.whoAccessed(ctx, id, "WhoAccessed", req)
}

// whoAccessed serves one page of the accesses to a child's or a referral's record to id,
// recording the query (method names it) first.
func (a *grpcAPI) whoAccessed(ctx context.Context, id auth.Identity, method string, req *auditv1.WhoAccessedRequest) (*auditv1.WhoAccessedResponse, error) {
	n, cursor, vs := pageParams(req.GetPageSize(), req.GetPageToken())
	if (req.GetReferralId() == "") == (req.GetChildId() == "") {
		vs = append(vs, apierr.Violation{Field: "childId", Reason: "give exactly one of childId and referralId"})
	}
	if len(vs) > 0 {
		return nil, apierr.Invalid(vs)
	}
	if err := a.svc.recordAccess(ctx, id, describe(method, "child_id", req.GetChildId(), "referral_id", req.GetReferralId(),
		"page_token", req.GetPageToken()), req.GetReferralId(), req.GetChildId()); err != nil {
		return nil, err
	}
	rows, err := store.AccessesOf(ctx, a.svc.pool, req.GetReferralId(), req.GetChildId(), cursor, n+1)
	if err != nil {
		return nil, err
	}
	resp := &auditv1.WhoAccessedResponse{}
	if resp.Accesses, resp.NextPageToken, err = a.svc.accessPage(ctx, id, rows, n); err != nil {
		return nil, err
	}
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
	if resp.Accesses, resp.NextPageToken, err = a.svc.accessPage(ctx, id, rows, n); err != nil {
		return nil, err
	}
	return resp, nil
}

// unusualReasons returns why an access looks unusual, if it does:
//   - its entry does not match its leaf;
//   - it was out of hours;
//   - the reader serves named partnerships (sealed on the access event) and the record's
//     partnership is not one of them; hub staff (practitioners, managers) reading a case of
//     a partnership they serve are involved, whatever stage the case is at;
//   - otherwise, by an agency not involved in a known referral (neither its referrer nor a
//     reviewer of its decision), unless the reader is an auditor (administrators run the
//     system and have no reason to read a child's record, so their reads are never
//     oversight);
//   - the referral's case was closed before the read (no open case);
//   - it took the reader past bulkLimit distinct children in the hour up to it.
func unusualReasons(c checked, a store.Access, sealed *eventsv1.RecordAccessed, bulkLimit int) []string {
	if c.Problem != "" {
		return []string{ReasonIntegrity}
	}
	e := c.Entry
	var rs []string
	if OutOfHours(e.OccurredAt) {
		rs = append(rs, ReasonOutOfHours)
	}
	overseer := e.ActorRole == string(auth.RoleAuditor)
	staff := e.ActorRole == string(auth.RolePractitioner) || e.ActorRole == string(auth.RoleManager)
	serves := sealed.GetReaderPartnerships()
	switch {
	case len(serves) > 0 && e.Partnership != "" && !slices.Contains(serves, auth.AllPartnerships) && !slices.Contains(serves, e.Partnership):
		rs = append(rs, ReasonOutsidePartnerships)
	case len(serves) > 0 && e.Partnership != "" && staff:
		// Hub staff working their own partnership's queue: involved.
	case a.ReferralKnown && !a.Involved && !overseer:
		rs = append(rs, ReasonNotInvolved)
	}
	if a.CaseClosed && !overseer {
		rs = append(rs, ReasonNoOpenCase)
	}
	if bulkLimit > 0 && a.ChildrenLastHour > int64(bulkLimit) {
		rs = append(rs, ReasonBulkReading)
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
		// One checker for the candidates and the entries their flags rest on: one read of
		// the checkpoint and head, and tree hashes fetched once for both.
		c, err := a.svc.newRowChecker(ctx)
		if err != nil {
			return nil, err
		}
		cs, reasons, err := a.svc.checkAccessesWith(ctx, c, rows)
		if err != nil {
			return nil, err
		}
		if err := a.svc.checkSupport(ctx, c, rows, cs); err != nil {
			return nil, err
		}
		for i, r := range rows {
			scanned++
			cursor = r.Seq
			if !visibleTo(id, servedPartnership(cs[i], &r.Entry)) {
				continue
			}
			rs := unusualReasons(cs[i], r, reasons[i], a.svc.cfg.BulkReadsPerHour)
			if len(rs) == 0 {
				continue
			}
			if len(resp.Accesses) == n {
				// One more beyond the page: continue after the last one returned.
				resp.NextPageToken = strconv.FormatInt(lastFlagged, 10)
				return resp, nil
			}
			resp.Accesses = append(resp.Accesses, &auditv1.FlaggedAccess{Access: accessToProto(cs[i], reasons[i]), Reasons: rs})
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

// checkSupport proves the entries each candidate's unusual-access flags were worked out
// from. A flag read from a column that no longer matches its leaf is not served as true:
// the candidate is reported with the altered entry named instead.
func (s *Service) checkSupport(ctx context.Context, c *rowChecker, rows []store.Access, cs []checked) error {
	seen := map[int64]bool{}
	var seqs []int64
	for _, r := range rows {
		for _, q := range r.Support {
			if !seen[q] {
				seen[q] = true
				seqs = append(seqs, q)
			}
		}
	}
	if len(seqs) == 0 {
		return nil
	}
	entries, err := store.EntriesBySeq(ctx, s.pool, seqs)
	if err != nil {
		return err
	}
	ptrs := make([]*store.Entry, len(entries))
	for i := range entries {
		ptrs[i] = &entries[i]
	}
	proven, err := c.check(ptrs)
	if err != nil {
		return err
	}
	problems := map[int64]string{}
	for _, p := range proven {
		if p.Problem != "" {
			problems[p.Seq] = p.Problem
		}
	}
	if len(problems) == 0 {
		return nil
	}
	for i, r := range rows {
		if cs[i].Problem != "" {
			continue
		}
		for _, q := range r.Support {
			if p, ok := problems[q]; ok {
				cs[i] = checked{Seq: r.Seq, Problem: fmt.Sprintf("entry %d: its unusual-access flags rest on an altered entry (%s)", r.Seq, p)}
				break
			}
		}
	}
	return nil
}

// accessReasons reads each proven, unredacted access entry's sealed payload (a
// RecordAccessed: the reason, the records listed), after checking the ciphertext against
// the leaf's digest. Entries without one get nil.
func (s *Service) accessReasons(ctx context.Context, cs []checked) ([]*eventsv1.RecordAccessed, error) {
	out := make([]*eventsv1.RecordAccessed, len(cs))
	var ids []string
	for _, c := range cs {
		if c.Problem == "" && !c.Redacted && c.Entry.PayloadSHA256 != ([32]byte{}) {
			ids = append(ids, c.Entry.EventID)
		}
	}
	if len(ids) == 0 {
		return out, nil
	}
	ps, err := store.Payloads(ctx, s.pool, ids)
	if err != nil {
		return nil, err
	}
	keys := map[string][]byte{}
	for i, c := range cs {
		p, ok := ps[c.Entry.EventID]
		if c.Problem != "" || !ok || p.Destroyed || p.ReferralID != c.Entry.ReferralID || sha256.Sum256(p.Ciphertext) != c.Entry.PayloadSHA256 {
			continue
		}
		key, ok := keys[p.ReferralID]
		if !ok {
			if key, err = unwrapKey(s.cfg.MasterKey, p.Wrapped, p.ReferralID); err != nil {
				cs[i].Problem = fmt.Sprintf("entry %d: its case key does not unwrap with the master key", c.Seq)
				continue
			}
			keys[p.ReferralID] = key
		}
		plain, err := open(key, p.Nonce, p.Ciphertext, c.Entry.EventID)
		if err != nil {
			cs[i].Problem = fmt.Sprintf("entry %d: the payload does not open with its case key", c.Seq)
			continue
		}
		var a anypb.Any
		ev := &eventsv1.RecordAccessed{}
		if proto.Unmarshal(plain, &a) == nil && a.MessageIs(ev) && a.UnmarshalTo(ev) == nil {
			out[i] = ev
		}
	}
	return out, nil
}
