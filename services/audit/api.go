package audit

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"golang.org/x/mod/sumdb/tlog"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/mash-hub/mash/pkg/apierr"
	"github.com/mash-hub/mash/pkg/auth"
	"github.com/mash-hub/mash/pkg/server"
	auditv1 "github.com/mash-hub/mash/proto/mash/audit/v1"
	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
	"github.com/mash-hub/mash/services/audit/store"
	auditlog "github.com/mash-hub/mash/services/audit/tlog"
)

// EventAccessed is the event type of the entry recording a query of the audit API.
const EventAccessed = eventsv1.SubjectAuditAccessed

// Page sizes of GetTrail and SearchEntries.
const (
	DefaultPageSize = 100
	MaxPageSize     = 500
)

// MaxGRPCExport is the most entries ExportTrail returns over gRPC, which answers in one
// message; the HTTP export streams and has no limit.
const MaxGRPCExport = 5000

type grpcAPI struct {
	auditv1.UnimplementedAuditServiceServer
	svc *Service
}

// recordAccess appends an access entry for a query: actor the caller's client id, with its
// role and agency, the referral or child asked about, and what was asked in the decision
// field. It goes through the same pending-entry path as the consumer's events, so the
// sequencer puts it in the tree and the next checkpoint signs it.
//
// It runs in a transaction of its own, committed before the query reads anything: the
// queries only read, so there is no other write to share a transaction with, and a read
// that returns data always has its trace committed first. If the trace cannot be written
// the query fails (no read without a trace); a query that fails after its trace was
// written leaves an entry for an attempt, which is the truthful side to err on.
func (s *Service) recordAccess(ctx context.Context, id auth.Identity, what, referralID, childID string) error {
	now := s.now().UTC()
	p := store.Pending{
		EventID: uuid.Must(uuid.NewV7()).String(), EventType: EventAccessed, OccurredAt: now, ReceivedAt: now,
		ReferralID: clip(referralID), ChildID: clip(childID), Actor: clip(id.ClientID), ActorRole: clip(string(id.Role)),
		Agency: clip(id.Agency), Decision: clip(what),
	}
	// The reason may name people, so it is sealed like any event's payload (a
	// RecordAccessed), under the case key of the referral asked about.
	payload, err := anypb.New(&eventsv1.RecordAccessed{ClientId: id.ClientID, Role: string(id.Role), Agency: id.Agency,
		Action: what, ReferralId: referralID, ChildId: childID, Reason: server.AccessReason(ctx), ReaderPartnerships: id.Partnerships})
	if err != nil {
		return fmt.Errorf("record access: %w", err)
	}
	plain, err := proto.MarshalOptions{Deterministic: true}.Marshal(payload)
	if err != nil {
		return fmt.Errorf("record access: %w", err)
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error { return s.insertSealed(ctx, tx, p, plain) })
	if err != nil {
		return fmt.Errorf("record access: %w", err)
	}
	s.seq.Wake()
	return nil
}

// clip makes s a valid leaf field: valid UTF-8 of at most auditlog.MaxFieldSize bytes.
func clip(s string) string {
	s = strings.ToValidUTF8(s, "?")
	for len(s) > auditlog.MaxFieldSize {
		_, n := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-n]
	}
	return s
}

// describe renders a query for the access entry: method and its non-empty parameters.
func describe(method string, kv ...string) string {
	var b strings.Builder
	b.WriteString(method)
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			b.WriteString(" " + kv[i] + "=" + strconv.Quote(kv[i+1]))
		}
	}
	return b.String()
}

func tsString(t *timestamppb.Timestamp) string {
	if t == nil {
		return ""
	}
	return t.AsTime().UTC().Format(time.RFC3339Nano)
}

func pageParams(size int32, token string) (int, int64, []apierr.Violation) {
	var vs []apierr.Violation
	n := int(size)
	switch {
	case n == 0:
		n = DefaultPageSize
	case n < 0 || n > MaxPageSize:
		vs = append(vs, apierr.Violation{Field: "pageSize", Reason: fmt.Sprintf("must be between 1 and %d", MaxPageSize)})
	}
	cursor := int64(-1)
	if token != "" {
		c, err := strconv.ParseInt(token, 10, 64)
		if err != nil || c < 0 {
			vs = append(vs, apierr.Violation{Field: "pageToken", Reason: "is not a token this API returned"})
		}
		cursor = c
	}
	return n, cursor, vs
}

func timeRange(from, to *timestamppb.Timestamp) (*time.Time, *time.Time, []apierr.Violation) {
	var f, t *time.Time
	var vs []apierr.Violation
	if from != nil {
		if err := from.CheckValid(); err != nil {
			vs = append(vs, apierr.Violation{Field: "from", Reason: "is not a valid time"})
		}
		x := from.AsTime()
		f = &x
	}
	if to != nil {
		if err := to.CheckValid(); err != nil {
			vs = append(vs, apierr.Violation{Field: "to", Reason: "is not a valid time"})
		}
		x := to.AsTime()
		t = &x
	}
	if f != nil && t != nil && !f.Before(*t) {
		vs = append(vs, apierr.Violation{Field: "to", Reason: "must be after from"})
	}
	return f, t, vs
}

// entryToProto serves a checked entry: the leaf's fields when it is proven, only its seq
// and what is wrong when it is not.
func entryToProto(c checked) *auditv1.AuditEntry {
	if c.Problem != "" {
		return &auditv1.AuditEntry{Seq: c.Seq, IntegrityError: c.Problem}
	}
	e := c.Entry
	return &auditv1.AuditEntry{Seq: e.Seq, EventId: e.EventID, EventType: e.EventType, OccurredAt: timestamppb.New(e.OccurredAt),
		RecordedAt: timestamppb.New(e.RecordedAt), Partnership: e.Partnership, ReferralId: e.ReferralID, ChildId: e.ChildID,
		Actor: e.Actor, ActorRole: e.ActorRole, Agency: e.Agency, PackVersion: e.PackVersion, Decision: e.Decision,
		Redacted: c.Redacted}
}

func (a *grpcAPI) GetTrail(ctx context.Context, req *auditv1.GetTrailRequest) (*auditv1.GetTrailResponse, error) {
	id, err := server.Require(ctx, auth.ReadAuditTrails)
	if err != nil {
		return nil, err
	}
	return a.trail(ctx, id, "GetTrail", req)
}

// trail serves one page of a referral's or a child's trail to id, recording the query
// (method names it) first.
func (a *grpcAPI) trail(ctx context.Context, id auth.Identity, method string, req *auditv1.GetTrailRequest) (*auditv1.GetTrailResponse, error) {
	n, cursor, vs := pageParams(req.GetPageSize(), req.GetPageToken())
	if (req.GetReferralId() == "") == (req.GetChildId() == "") {
		vs = append(vs, apierr.Violation{Field: "referralId", Reason: "give exactly one of referralId and childId"})
	}
	if len(vs) > 0 {
		return nil, apierr.Invalid(vs)
	}
	if err := a.svc.recordAccess(ctx, id, describe(method, "referral_id", req.GetReferralId(), "child_id", req.GetChildId(),
		"page_token", req.GetPageToken()), req.GetReferralId(), req.GetChildId()); err != nil {
		return nil, err
	}
	rows, err := store.Trail(ctx, a.svc.pool, req.GetReferralId(), req.GetChildId(), cursor, n+1)
	if err != nil {
		return nil, err
	}
	resp := &auditv1.GetTrailResponse{}
	resp.Entries, resp.NextPageToken, err = a.svc.page(ctx, id, rows, n)
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// page proves and converts up to n rows (n+1 were asked for) and returns the next token
// when there are more: the last seq read. Entries of partnerships the caller does not
// serve are left out (by the leaf's partnership once proven), so a page may hold fewer
// than n.
func (s *Service) page(ctx context.Context, id auth.Identity, rows []store.Entry, n int) ([]*auditv1.AuditEntry, string, error) {
	next := ""
	if len(rows) > n {
		rows = rows[:n]
		next = strconv.FormatInt(rows[n-1].Seq, 10)
	}
	c, err := s.newRowChecker(ctx)
	if err != nil {
		return nil, "", err
	}
	ptrs := make([]*store.Entry, len(rows))
	for i := range rows {
		ptrs[i] = &rows[i]
	}
	cs, err := c.check(ptrs)
	if err != nil {
		return nil, "", err
	}
	out := make([]*auditv1.AuditEntry, 0, len(cs))
	for i, x := range cs {
		if visibleTo(id, servedPartnership(x, &rows[i])) {
			out = append(out, entryToProto(x))
		}
	}
	return out, next, nil
}

// servedPartnership is the partnership an entry is shown under: its proven leaf's, or for
// an entry that does not match its leaf (and serves no values), its column's.
func servedPartnership(c checked, r *store.Entry) string {
	if c.Problem != "" {
		return r.Partnership
	}
	return c.Entry.Partnership
}

// visibleTo reports whether an entry of partnership may be shown to id: auditors see the
// partnerships they serve, and the entries that belong to none.
func visibleTo(id auth.Identity, partnership string) bool {
	return partnership == "" || id.Serves(partnership)
}

// servedOnly is a query's partnership limit for id: nil when id is not limited.
func servedOnly(id auth.Identity) []string {
	if ps, all := id.PartnershipScope(); !all {
		return append([]string{}, ps...)
	}
	return nil
}

func (a *grpcAPI) SearchEntries(ctx context.Context, req *auditv1.SearchEntriesRequest) (*auditv1.SearchEntriesResponse, error) {
	id, err := server.Require(ctx, auth.ReadAuditTrails)
	if err != nil {
		return nil, err
	}
	n, cursor, vs := pageParams(req.GetPageSize(), req.GetPageToken())
	from, to, tvs := timeRange(req.GetFrom(), req.GetTo())
	if vs = append(vs, tvs...); len(vs) > 0 {
		return nil, apierr.Invalid(vs)
	}
	order := "newest"
	if req.GetOldestFirst() {
		order = "oldest"
	}
	what := describe("SearchEntries", "actor", req.GetActor(), "agency", req.GetAgency(), "event_type", req.GetEventType(),
		"partnership", req.GetPartnership(), "pack_version", req.GetPackVersion(), "from", tsString(req.GetFrom()),
		"to", tsString(req.GetTo()), "order", order, "page_token", req.GetPageToken())
	if err := a.svc.recordAccess(ctx, id, what, "", ""); err != nil {
		return nil, err
	}
	rows, err := store.Search(ctx, a.svc.pool, store.Filter{Actor: req.GetActor(), Agency: req.GetAgency(),
		EventType: req.GetEventType(), Partnership: req.GetPartnership(), Partnerships: servedOnly(id), PackVersion: req.GetPackVersion(),
		From: from, To: to, Cursor: cursor, OldestFirst: req.GetOldestFirst(), Limit: n + 1})
	if err != nil {
		return nil, err
	}
	resp := &auditv1.SearchEntriesResponse{}
	resp.Entries, resp.NextPageToken, err = a.svc.page(ctx, id, rows, n)
	if err != nil {
		return nil, err
	}
	return resp, nil
}

func (a *grpcAPI) GetCheckpoint(ctx context.Context, _ *auditv1.GetCheckpointRequest) (*auditv1.GetCheckpointResponse, error) {
	id, err := server.Require(ctx, auth.ReadAuditCheckpoints)
	if err != nil {
		return nil, err
	}
	if err := a.svc.recordAccess(ctx, id, "GetCheckpoint", "", ""); err != nil {
		return nil, err
	}
	c, err := store.LatestCheckpoint(ctx, a.svc.pool)
	if errors.Is(err, store.ErrNotFound) {
		return nil, apierr.NotFound("no checkpoint has been signed yet")
	}
	if err != nil {
		return nil, err
	}
	return &auditv1.GetCheckpointResponse{Note: c.Note, TreeSize: c.TreeSize, CreatedAt: timestamppb.New(c.CreatedAt)}, nil
}

func (a *grpcAPI) ProveInclusion(ctx context.Context, req *auditv1.ProveInclusionRequest) (*auditv1.ProveInclusionResponse, error) {
	id, err := server.Require(ctx, auth.ReadAuditTrails)
	if err != nil {
		return nil, err
	}
	if req.GetSeq() < 0 || req.GetTreeSize() < 0 {
		return nil, apierr.Invalid([]apierr.Violation{{Field: "seq", Reason: "seq and treeSize must not be negative"}})
	}
	if err := a.svc.recordAccess(ctx, id, describe("ProveInclusion", "seq", strconv.FormatInt(req.GetSeq(), 10),
		"tree_size", strconv.FormatInt(req.GetTreeSize(), 10)), "", ""); err != nil {
		return nil, err
	}
	size := req.GetTreeSize()
	if size == 0 {
		c, err := store.LatestCheckpoint(ctx, a.svc.pool)
		if errors.Is(err, store.ErrNotFound) {
			return nil, apierr.NotFound("no checkpoint has been signed yet")
		}
		if err != nil {
			return nil, err
		}
		size = c.TreeSize
	}
	head, err := store.ReadHead(ctx, a.svc.pool)
	if err != nil {
		return nil, err
	}
	if size > head.TreeSize || req.GetSeq() >= size {
		return nil, apierr.Invalid([]apierr.Violation{{Field: "treeSize",
			Reason: fmt.Sprintf("need seq < treeSize <= %d (the log's size)", head.TreeSize)}})
	}
	leaf, err := store.Leaf(ctx, a.svc.pool, req.GetSeq())
	if err != nil {
		return nil, err
	}
	proof, err := auditlog.InclusionProof(store.TreeHashes{Ctx: ctx, Pool: a.svc.pool}, size, req.GetSeq())
	if err != nil {
		return nil, err
	}
	lh := auditlog.LeafHash(leaf)
	resp := &auditv1.ProveInclusionResponse{Seq: req.GetSeq(), TreeSize: size, Proof: auditlog.EncodeProof(proof),
		Leaf: b64(leaf), LeafHash: b64(lh[:])}
	if c, err := store.CheckpointOfSize(ctx, a.svc.pool, size); err == nil {
		resp.Checkpoint = c.Note
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	return resp, nil
}

func (a *grpcAPI) ProveConsistency(ctx context.Context, req *auditv1.ProveConsistencyRequest) (*auditv1.ProveConsistencyResponse, error) {
	id, err := server.Require(ctx, auth.ReadAuditCheckpoints)
	if err != nil {
		return nil, err
	}
	if req.GetOldSize() < 1 || req.GetOldSize() > req.GetNewSize() {
		return nil, apierr.Invalid([]apierr.Violation{{Field: "oldSize", Reason: "need 1 <= oldSize <= newSize"}})
	}
	if err := a.svc.recordAccess(ctx, id, describe("ProveConsistency", "old_size", strconv.FormatInt(req.GetOldSize(), 10),
		"new_size", strconv.FormatInt(req.GetNewSize(), 10)), "", ""); err != nil {
		return nil, err
	}
	head, err := store.ReadHead(ctx, a.svc.pool)
	if err != nil {
		return nil, err
	}
	if req.GetNewSize() > head.TreeSize {
		return nil, apierr.Invalid([]apierr.Violation{{Field: "newSize", Reason: fmt.Sprintf("the log has %d entries", head.TreeSize)}})
	}
	proof, err := auditlog.ConsistencyProof(store.TreeHashes{Ctx: ctx, Pool: a.svc.pool}, req.GetNewSize(), req.GetOldSize())
	if err != nil {
		return nil, err
	}
	return &auditv1.ProveConsistencyResponse{OldSize: req.GetOldSize(), NewSize: req.GetNewSize(), Proof: auditlog.EncodeProof(proof)}, nil
}

func (a *grpcAPI) ExportTrail(ctx context.Context, req *auditv1.ExportTrailRequest) (*auditv1.ExportTrailResponse, error) {
	resp := &auditv1.ExportTrailResponse{}
	err := a.svc.export(ctx, req, MaxGRPCExport, func(line []byte) error {
		resp.Lines = append(resp.Lines, string(line))
		return nil
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// export authorizes, records the access, and emits the export's lines (see export.go)
// for the entries of req covered by the latest checkpoint. limit > 0 caps the entries.
// Nothing is emitted before every check that can fail with a status has passed, except
// reading rows and proofs.
func (s *Service) export(ctx context.Context, req *auditv1.ExportTrailRequest, limit int, emit func([]byte) error) error {
	id, err := server.Require(ctx, auth.ReadAuditTrails)
	if err != nil {
		return err
	}
	from, to, vs := timeRange(req.GetFrom(), req.GetTo())
	if req.GetReferralId() == "" && from == nil && to == nil {
		vs = append(vs, apierr.Violation{Field: "referralId", Reason: "give a referral id or a time range"})
	}
	if len(vs) > 0 {
		return apierr.Invalid(vs)
	}
	if err := s.recordAccess(ctx, id, describe("ExportTrail", "referral_id", req.GetReferralId(), "from", tsString(req.GetFrom()),
		"to", tsString(req.GetTo())), req.GetReferralId(), ""); err != nil {
		return err
	}
	cp, err := store.LatestCheckpoint(ctx, s.pool)
	if errors.Is(err, store.ErrNotFound) {
		return apierr.NotFound("no checkpoint has been signed yet: nothing can be exported with a proof")
	}
	if err != nil {
		return err
	}
	// Rows are gathered first so a too-large gRPC export, or one holding an entry that
	// does not match its leaf, fails before any line is sent. Rows are proven in chunks.
	var lines [][]byte
	var seqs []int64
	checker, err := s.newRowChecker(ctx)
	if err != nil {
		return err
	}
	var chunk []*store.Entry
	flush := func() error {
		cs, err := checker.check(chunk)
		if err != nil {
			return err
		}
		for i, c := range cs {
			if c.Problem != "" {
				return apierr.FailedPrecondition("the export is refused: " + c.Problem + " (run mash audit verify)")
			}
			if !visibleTo(id, c.Entry.Partnership) {
				continue
			}
			seqs = append(seqs, c.Seq)
			lines = append(lines, entryLine(c.Seq, chunk[i].Leaf, c.Redacted))
		}
		chunk = chunk[:0]
		return nil
	}
	err = store.ExportRange(ctx, s.pool, req.GetReferralId(), from, to, cp.TreeSize, func(e store.Entry) error {
		if !visibleTo(id, e.Partnership) {
			return nil // another partnership's: each exported entry carries its own proof
		}
		if limit > 0 && len(seqs)+len(chunk) >= limit {
			return errTooLarge
		}
		e.Leaf = append([]byte(nil), e.Leaf...)
		chunk = append(chunk, &e)
		if len(chunk) == 1000 {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if errors.Is(err, errTooLarge) {
		return apierr.Invalid([]apierr.Violation{{Field: "referralId",
			Reason: fmt.Sprintf("more than %d entries: narrow the range or use GET /v1/audit/export, which streams", limit)}})
	}
	if err != nil {
		return err
	}
	for _, l := range lines {
		if err := emit(l); err != nil {
			return err
		}
	}
	if err := emit(checkpointLine(cp.Note)); err != nil {
		return err
	}
	hashes := &cachedHashes{r: store.TreeHashes{Ctx: ctx, Pool: s.pool}, m: map[int64]tlog.Hash{}}
	for _, seq := range seqs {
		proof, err := auditlog.InclusionProof(hashes, cp.TreeSize, seq)
		if err != nil {
			return err
		}
		if err := emit(proofLine(seq, proof)); err != nil {
			return err
		}
	}
	return nil
}

var errTooLarge = errors.New("export too large")

// cachedHashes memoizes stored hashes across the proofs of one export; neighbouring
// entries share most of their paths.
type cachedHashes struct {
	r tlog.HashReader
	m map[int64]tlog.Hash
}

// prefetch reads the stored hashes at indexes in one query, keeping those that exist; a
// missing one is left for ReadHashes to report to the proof that needs it.
func (c *cachedHashes) prefetch(indexes []int64) error {
	var want []int64
	for _, x := range indexes {
		if _, ok := c.m[x]; !ok {
			want = append(want, x)
		}
	}
	if len(want) == 0 {
		return nil
	}
	th, ok := c.r.(store.TreeHashes)
	if !ok {
		return nil
	}
	got, err := store.ReadHashesPresent(th.Ctx, th.Pool, want)
	if err != nil {
		return err
	}
	for x, h := range got {
		c.m[x] = h
	}
	return nil
}

func (c *cachedHashes) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	if len(c.m) > 1<<20 {
		clear(c.m)
	}
	var missing []int64
	for _, x := range indexes {
		if _, ok := c.m[x]; !ok {
			missing = append(missing, x)
		}
	}
	if len(missing) > 0 {
		hs, err := c.r.ReadHashes(missing)
		if err != nil {
			return nil, err
		}
		for i, x := range missing {
			c.m[x] = hs[i]
		}
	}
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		out[i] = c.m[x]
	}
	return out, nil
}
