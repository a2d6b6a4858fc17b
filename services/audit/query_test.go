package audit_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/mod/sumdb/tlog"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/mash-hub/mash/pkg/apierr"
	"github.com/mash-hub/mash/pkg/auth"
	"github.com/mash-hub/mash/pkg/server"
	auditv1 "github.com/mash-hub/mash/proto/mash/audit/v1"
	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
	"github.com/mash-hub/mash/services/audit"
	auditlog "github.com/mash-hub/mash/services/audit/tlog"
)

// as returns a context authenticated as a client of the given role.
func as(role auth.Role) context.Context {
	return auth.WithIdentity(context.Background(), auth.Identity{ClientID: "client-" + string(role), Agency: "hub", Kind: "hub", Role: role,
		Partnerships: []string{auth.AllPartnerships}})
}

var auditor = as(auth.RoleAuditor)

// accessCount counts access entries, pending or sequenced.
func (e *env) accessCount(t testing.TB) int {
	t.Helper()
	var n int
	if err := e.pool.QueryRow(context.Background(), `SELECT (SELECT count(*) FROM audit.pending WHERE event_type = $1)
		+ (SELECT count(*) FROM audit.entries WHERE event_type = $1)`, audit.EventAccessed).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func (e *env) sign(t testing.TB) string {
	t.Helper()
	if _, err := e.svc.SignCheckpoint(context.Background()); err != nil {
		t.Fatal(err)
	}
	var note string
	if err := e.pool.QueryRow(context.Background(), `SELECT note FROM audit.checkpoints ORDER BY tree_size DESC LIMIT 1`).Scan(&note); err != nil {
		t.Fatal(err)
	}
	return note
}

func code(err error) codes.Code { return apierr.Status(err).Code() }

// A trail returns the whole story of a referral in order, then its own access; by child
// it finds the referral through the decisions naming the child; pages join up exactly.
func TestTrailWholeStoryInOrder(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	referralID, envs, _ := story(t, e.now)
	_, others, _ := story(t, e.now)
	e.record(t, append(envs, others...)...)
	e.sequenceAll(t)
	api := e.svc.API()

	got, err := api.GetTrail(auditor, &auditv1.GetTrailRequest{ReferralId: referralID})
	if err != nil {
		t.Fatal(err)
	}
	type row struct{ typ, actor, role, pack, decision string }
	want := []row{
		{"mash.referral.received", "south-wales-police", audit.RoleAgency, "", "received"},
		{"mash.recommendation.made", "rules", audit.RoleSystem, "2026.1", "recommended LEVEL_3A/RAG_AMBER"},
		{"mash.triage.confirmed", "user-17", audit.RolePractitioner, "2026.1", "LEVEL_3A/RAG_AMBER"},
		{"mash.decision.made", "user-18", "manager", "2026.1", "overridden LEVEL_4/RAG_RED from LEVEL_3A/RAG_AMBER"},
	}
	if len(got.GetEntries()) != len(want) || got.GetNextPageToken() != "" {
		t.Fatalf("trail has %d entries (next %q), want %d", len(got.GetEntries()), got.GetNextPageToken(), len(want))
	}
	for i, en := range got.GetEntries() {
		r := row{en.GetEventType(), en.GetActor(), en.GetActorRole(), en.GetPackVersion(), en.GetDecision()}
		if r != want[i] || en.GetEventId() != envs[i].GetEventId() || en.GetRedacted() || en.GetReferralId() != referralID ||
			!en.GetOccurredAt().AsTime().Equal(e.now) || en.GetRecordedAt() == nil {
			t.Errorf("entry %d = %+v, want %+v", i, en, want[i])
		}
		if i > 0 && en.GetSeq() <= got.GetEntries()[i-1].GetSeq() {
			t.Errorf("entries out of seq order")
		}
	}

	// The query itself is in the trail once sequenced, attributed to the caller.
	e.sequenceAll(t)
	got, err = api.GetTrail(auditor, &auditv1.GetTrailRequest{ReferralId: referralID})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(got.GetEntries()); n != 5 {
		t.Fatalf("after the first query was sequenced the trail has %d entries, want 5", n)
	}
	acc := got.GetEntries()[4]
	if acc.GetEventType() != audit.EventAccessed || acc.GetActor() != "client-auditor" || acc.GetActorRole() != "auditor" ||
		acc.GetAgency() != "hub" || !strings.Contains(acc.GetDecision(), "GetTrail") || !strings.Contains(acc.GetDecision(), referralID) {
		t.Errorf("access entry = %+v", acc)
	}

	// By child: the received entry carries no child id but belongs to the child's referral.
	childID := envs[1].GetPayload()
	var decided eventsv1.RecommendationMade
	if err := childID.UnmarshalTo(&decided); err != nil {
		t.Fatal(err)
	}
	byChild, err := api.GetTrail(auditor, &auditv1.GetTrailRequest{ChildId: decided.GetDecision().GetChildId()})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(byChild.GetEntries()); n != 5 || byChild.GetEntries()[0].GetEventType() != "mash.referral.received" {
		t.Fatalf("child trail has %d entries (first %v), want the referral's 5", n, byChild.GetEntries()[0])
	}

	// Pages of 2 join up to the whole trail, each entry once.
	var paged []int64
	token := ""
	for {
		p, err := api.GetTrail(auditor, &auditv1.GetTrailRequest{ReferralId: referralID, PageSize: 2, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		for _, en := range p.GetEntries() {
			paged = append(paged, en.GetSeq())
		}
		if token = p.GetNextPageToken(); token == "" {
			break
		}
	}
	if len(paged) != 5 || paged[0] != got.GetEntries()[0].GetSeq() || paged[4] != got.GetEntries()[4].GetSeq() {
		t.Errorf("paged seqs %v, want those of %d entries", paged, len(got.GetEntries()))
	}

	for _, bad := range []*auditv1.GetTrailRequest{{}, {ReferralId: "a", ChildId: "b"}, {ReferralId: "a", PageSize: 501},
		{ReferralId: "a", PageToken: "x"}} {
		if _, err := api.GetTrail(auditor, bad); code(err) != codes.InvalidArgument {
			t.Errorf("GetTrail(%v) = %v, want InvalidArgument", bad, err)
		}
	}
}

// Search by actor, type and time with cursor paging returns each entry once, in order.
func TestSearchPaging(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var stories [][]*eventsv1.Envelope
	for i := range 3 {
		_, envs, _ := story(t, e.now.Add(time.Duration(i-2)*time.Hour)) // now-2h, now-1h, now
		e.record(t, envs...)
		stories = append(stories, envs)
	}
	insertPending(t, e, 50) // actor "rules", mash.triage.decided, at now
	e.sequenceAll(t)
	api := e.svc.API()

	collect := func(req *auditv1.SearchEntriesRequest) []*auditv1.AuditEntry {
		t.Helper()
		var out []*auditv1.AuditEntry
		for {
			p, err := api.SearchEntries(auditor, req)
			if err != nil {
				t.Fatal(err)
			}
			if len(p.GetEntries()) > int(req.GetPageSize()) {
				t.Fatalf("page of %d, asked for %d", len(p.GetEntries()), req.GetPageSize())
			}
			out = append(out, p.GetEntries()...)
			if p.GetNextPageToken() == "" {
				return out
			}
			req.PageToken = p.GetNextPageToken()
			e.sequenceAll(t) // the log grows between pages (access entries): pages stay stable
		}
	}
	checkOnce := func(name string, got []*auditv1.AuditEntry, n int, ascending bool) {
		t.Helper()
		seen := map[int64]bool{}
		for i, en := range got {
			if seen[en.GetSeq()] {
				t.Errorf("%s: seq %d twice", name, en.GetSeq())
			}
			seen[en.GetSeq()] = true
			if i > 0 && (en.GetSeq() > got[i-1].GetSeq()) != ascending {
				t.Errorf("%s: out of order at %d", name, i)
			}
		}
		if len(got) != n {
			t.Errorf("%s: %d entries, want %d", name, len(got), n)
		}
	}
	byActor := collect(&auditv1.SearchEntriesRequest{Actor: "rules", PageSize: 7})
	checkOnce("actor newest first", byActor, 53, false)
	for _, en := range byActor {
		if en.GetActor() != "rules" {
			t.Errorf("actor filter returned %+v", en)
		}
	}
	checkOnce("actor oldest first", collect(&auditv1.SearchEntriesRequest{Actor: "rules", PageSize: 10, OldestFirst: true}), 53, true)
	overridden := collect(&auditv1.SearchEntriesRequest{EventType: "mash.decision.made", PageSize: 2})
	checkOnce("type", overridden, 3, false)

	// now-90m to now-30m holds the middle story alone.
	inRange := collect(&auditv1.SearchEntriesRequest{From: timestamppb.New(e.now.Add(-90 * time.Minute)),
		To: timestamppb.New(e.now.Add(-30 * time.Minute)), PageSize: 3, OldestFirst: true})
	checkOnce("time range", inRange, 4, true)
	for i, en := range inRange {
		if en.GetEventId() != stories[1][i].GetEventId() {
			t.Errorf("time range entry %d is %s, want %s", i, en.GetEventId(), stories[1][i].GetEventId())
		}
	}
	both := collect(&auditv1.SearchEntriesRequest{Agency: "south-wales-police", PackVersion: "", PageSize: 500})
	checkOnce("agency", both, 3, false)
	if _, err := api.SearchEntries(auditor, &auditv1.SearchEntriesRequest{PageSize: 501}); code(err) != codes.InvalidArgument {
		t.Errorf("page size 501: %v", err)
	}
	if _, err := api.SearchEntries(auditor, &auditv1.SearchEntriesRequest{From: timestamppb.New(e.now), To: timestamppb.New(e.now)}); code(err) != codes.InvalidArgument {
		t.Errorf("empty time range: %v", err)
	}
}

// Inclusion and consistency proofs from the API verify against published checkpoints
// with auditlog alone, and fail when any byte is altered.
func TestProofsVerifyAndFailWhenAltered(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, envs, _ := story(t, e.now)
	e.record(t, envs...)
	e.sequenceAll(t)
	oldNote := e.sign(t)
	_, more, _ := story(t, e.now)
	e.record(t, more...)
	insertPending(t, e, 5)
	e.sequenceAll(t)
	e.sign(t)
	api := e.svc.API()

	cpResp, err := api.GetCheckpoint(auditor, &auditv1.GetCheckpointRequest{})
	if err != nil {
		t.Fatal(err)
	}
	cp, err := auditlog.OpenCheckpoint([]byte(cpResp.GetNote()), e.vkey, origin)
	if err != nil || cp.Size != cpResp.GetTreeSize() || cp.Size != 13 {
		t.Fatalf("checkpoint %+v (%d): %v", cp, cpResp.GetTreeSize(), err)
	}
	oldCP, err := auditlog.OpenCheckpoint([]byte(oldNote), e.vkey, origin)
	if err != nil {
		t.Fatal(err)
	}

	for seq := range cp.Size {
		p, err := api.ProveInclusion(auditor, &auditv1.ProveInclusionRequest{Seq: seq})
		if err != nil {
			t.Fatal(err)
		}
		if p.GetCheckpoint() != cpResp.GetNote() || p.GetTreeSize() != cp.Size {
			t.Fatalf("proof of %d names tree %d", seq, p.GetTreeSize())
		}
		proof, err := auditlog.DecodeProof(p.GetProof())
		if err != nil {
			t.Fatal(err)
		}
		leaf, _ := base64.StdEncoding.DecodeString(p.GetLeaf())
		lh, _ := base64.StdEncoding.DecodeString(p.GetLeafHash())
		if auditlog.LeafHash(leaf) != tlog.Hash(lh) {
			t.Fatalf("leaf hash of %d does not match its leaf", seq)
		}
		if ent, err := auditlog.UnmarshalLeaf(leaf); err != nil || ent.Seq != seq {
			t.Fatalf("leaf %d: %v", seq, err)
		}
		if err := auditlog.VerifyInclusion(proof, cp.Size, seq, cp.Root, auditlog.LeafHash(leaf)); err != nil {
			t.Fatalf("inclusion of %d: %v", seq, err)
		}
		// Every byte of the proof and the leaf matters.
		for i := range len(proof) * 32 {
			bad := append([]tlog.Hash(nil), proof...)
			bad[i/32][i%32] ^= 1
			if auditlog.VerifyInclusion(bad, cp.Size, seq, cp.Root, auditlog.LeafHash(leaf)) == nil {
				t.Fatalf("proof of %d with byte %d flipped verifies", seq, i)
			}
		}
		for i := range leaf {
			bad := append([]byte(nil), leaf...)
			bad[i] ^= 0x80
			if auditlog.VerifyInclusion(proof, cp.Size, seq, cp.Root, auditlog.LeafHash(bad)) == nil {
				t.Fatalf("leaf %d with byte %d flipped verifies", seq, i)
			}
		}
	}
	// Against the older checkpoint too.
	p, err := api.ProveInclusion(auditor, &auditv1.ProveInclusionRequest{Seq: 1, TreeSize: oldCP.Size})
	if err != nil {
		t.Fatal(err)
	}
	proof, _ := auditlog.DecodeProof(p.GetProof())
	leaf, _ := base64.StdEncoding.DecodeString(p.GetLeaf())
	if p.GetCheckpoint() != oldNote || auditlog.VerifyInclusion(proof, oldCP.Size, 1, oldCP.Root, auditlog.LeafHash(leaf)) != nil {
		t.Fatal("inclusion against the older checkpoint does not verify")
	}

	c, err := api.ProveConsistency(auditor, &auditv1.ProveConsistencyRequest{OldSize: oldCP.Size, NewSize: cp.Size})
	if err != nil {
		t.Fatal(err)
	}
	cproof, err := auditlog.DecodeProof(c.GetProof())
	if err != nil {
		t.Fatal(err)
	}
	if err := auditlog.VerifyConsistency(cproof, cp.Size, oldCP.Size, cp.Root, oldCP.Root); err != nil {
		t.Fatalf("consistency: %v", err)
	}
	for i := range len(cproof) * 32 {
		bad := append([]tlog.Hash(nil), cproof...)
		bad[i/32][i%32] ^= 1
		if auditlog.VerifyConsistency(bad, cp.Size, oldCP.Size, cp.Root, oldCP.Root) == nil {
			t.Fatalf("consistency proof with byte %d flipped verifies", i)
		}
	}

	for _, bad := range []*auditv1.ProveInclusionRequest{{Seq: 13, TreeSize: 13}, {Seq: 0, TreeSize: 1000}, {Seq: -1}} {
		if _, err := api.ProveInclusion(auditor, bad); code(err) != codes.InvalidArgument {
			t.Errorf("ProveInclusion(%v) = %v", bad, err)
		}
	}
	for _, bad := range []*auditv1.ProveConsistencyRequest{{OldSize: 0, NewSize: 4}, {OldSize: 5, NewSize: 4}, {OldSize: 1, NewSize: 1000}} {
		if _, err := api.ProveConsistency(auditor, bad); code(err) != codes.InvalidArgument {
			t.Errorf("ProveConsistency(%v) = %v", bad, err)
		}
	}
}

func (e *env) exportLines(t testing.TB, req *auditv1.ExportTrailRequest) []string {
	t.Helper()
	resp, err := e.svc.API().ExportTrail(auditor, req)
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetLines()
}

func joinLines(lines []string) *strings.Reader {
	return strings.NewReader(strings.Join(lines, "\n") + "\n")
}

// An export verifies offline with the public key alone; altering one entry's leaf makes
// VerifyExport name that entry.
func TestExportVerifiesAndNamesAlteredEntry(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	referralID, envs, _ := story(t, e.now)
	_, others, _ := story(t, e.now.Add(time.Hour))
	e.record(t, append(envs, others...)...)
	e.sequenceAll(t)
	e.sign(t)

	lines := e.exportLines(t, &auditv1.ExportTrailRequest{ReferralId: referralID})
	if len(lines) != 4+1+4 {
		t.Fatalf("%d lines, want 4 entries, a checkpoint and 4 proofs:\n%s", len(lines), strings.Join(lines, "\n"))
	}
	rep, err := audit.VerifyExport(joinLines(lines), e.vkey, origin)
	if err != nil || rep.Entries != 4 || rep.FirstBad != -1 || rep.TreeSize != 8 || rep.Redacted != 0 {
		t.Fatalf("VerifyExport = %+v, %v", rep, err)
	}
	// A time range covering the second story only.
	ranged := e.exportLines(t, &auditv1.ExportTrailRequest{From: timestamppb.New(e.now.Add(30 * time.Minute))})
	if rep, err := audit.VerifyExport(joinLines(ranged), e.vkey, origin); err != nil || rep.Entries != 4 {
		t.Fatalf("time-range export: %+v, %v", rep, err)
	}

	// Alter the third entry's leaf (its decision text), keeping it well formed.
	var l struct {
		Type     string `json:"type"`
		Seq      int64  `json:"seq"`
		Leaf     string `json:"leaf"`
		Redacted bool   `json:"redacted,omitempty"`
	}
	if err := json.Unmarshal([]byte(lines[2]), &l); err != nil {
		t.Fatal(err)
	}
	leaf, _ := base64.StdEncoding.DecodeString(l.Leaf)
	i := bytes.Index(leaf, []byte("LEVEL_3A"))
	if i < 0 {
		t.Fatal("decision not found in leaf")
	}
	leaf[i+6] = '4' // LEVEL_4A: still decodes
	if _, err := auditlog.UnmarshalLeaf(leaf); err != nil {
		t.Fatal(err)
	}
	l.Leaf = base64.StdEncoding.EncodeToString(leaf)
	altered := append([]string(nil), lines...)
	b, _ := json.Marshal(l)
	altered[2] = string(b)
	rep, err = audit.VerifyExport(joinLines(altered), e.vkey, origin)
	if !isMismatch(err) || rep.FirstBad != l.Seq || rep.Line != 3 {
		t.Fatalf("altered export: %+v, %v; want entry %d named", rep, err, l.Seq)
	}

	// Another key or origin trusts nothing; structural damage is a bad export.
	_, otherKey, _ := auditlog.GenerateKey(origin)
	if _, err := audit.VerifyExport(joinLines(lines), otherKey, origin); err == nil {
		t.Error("export verified with another key")
	}
	for name, ls := range map[string][]string{
		"no checkpoint": append(append([]string(nil), lines[:4]...), lines[5:]...),
		"no proof":      lines[:8],
		"swapped":       append([]string{lines[1], lines[0]}, lines[2:]...),
	} {
		if _, err := audit.VerifyExport(joinLines(ls), e.vkey, origin); !errors.Is(err, audit.ErrBadExport) {
			t.Errorf("%s: %v, want ErrBadExport", name, err)
		}
	}
}

// A shredded case's entries are reported redacted, in the trail and the export, and the
// export still verifies: redaction is not tampering.
func TestShreddedReportedRedacted(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	referralID, envs, _ := story(t, e.now)
	e.record(t, envs...)
	if err := e.svc.ShredCase(context.Background(), referralID, "dpo-1", "retention expired"); err != nil {
		t.Fatal(err)
	}
	e.sequenceAll(t)
	e.sign(t)
	trail, err := e.svc.API().GetTrail(auditor, &auditv1.GetTrailRequest{ReferralId: referralID})
	if err != nil {
		t.Fatal(err)
	}
	if len(trail.GetEntries()) != 5 {
		t.Fatalf("%d entries, want 4 and the shredding", len(trail.GetEntries()))
	}
	for i, en := range trail.GetEntries() {
		if want := i < 4; en.GetRedacted() != want {
			t.Errorf("entry %d (%s) redacted = %v, want %v", i, en.GetEventType(), en.GetRedacted(), want)
		}
	}
	rep, err := audit.VerifyExport(joinLines(e.exportLines(t, &auditv1.ExportTrailRequest{ReferralId: referralID})), e.vkey, origin)
	if err != nil || rep.Entries != 5 || rep.Redacted != 4 || rep.FirstBad != -1 {
		t.Fatalf("VerifyExport = %+v, %v", rep, err)
	}
}

// Only auditors and admins may query; a refused query reads nothing and records nothing.
func TestNonAuditorsDenied(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	referralID, envs, _ := story(t, e.now)
	e.record(t, envs...)
	e.sequenceAll(t)
	e.sign(t)
	api := e.svc.API()
	calls := map[string]func(context.Context) error{
		"GetTrail": func(ctx context.Context) error {
			_, err := api.GetTrail(ctx, &auditv1.GetTrailRequest{ReferralId: referralID})
			return err
		},
		"SearchEntries": func(ctx context.Context) error {
			_, err := api.SearchEntries(ctx, &auditv1.SearchEntriesRequest{})
			return err
		},
		"GetCheckpoint": func(ctx context.Context) error {
			_, err := api.GetCheckpoint(ctx, &auditv1.GetCheckpointRequest{})
			return err
		},
		"ProveInclusion": func(ctx context.Context) error {
			_, err := api.ProveInclusion(ctx, &auditv1.ProveInclusionRequest{Seq: 0})
			return err
		},
		"ProveConsistency": func(ctx context.Context) error {
			_, err := api.ProveConsistency(ctx, &auditv1.ProveConsistencyRequest{OldSize: 1, NewSize: 4})
			return err
		},
		"ExportTrail": func(ctx context.Context) error {
			_, err := api.ExportTrail(ctx, &auditv1.ExportTrailRequest{ReferralId: referralID})
			return err
		},
	}
	for name, call := range calls {
		denied := []auth.Role{auth.RoleReferrer, auth.RolePractitioner, auth.RoleManager}
		if name != "GetCheckpoint" && name != "ProveConsistency" {
			// Administrators run the system: checkpoints and consistency, never a child's trail.
			denied = append(denied, auth.RoleAdmin)
		}
		for _, role := range denied {
			if err := call(as(role)); code(err) != codes.PermissionDenied {
				t.Errorf("%s as %s: %v, want PermissionDenied", name, role, err)
			}
		}
		if err := call(context.Background()); !errors.Is(err, auth.ErrUnauthenticated) {
			t.Errorf("%s unauthenticated: %v", name, err)
		}
	}
	if n := e.accessCount(t); n != 0 {
		t.Errorf("refused queries recorded %d access entries", n)
	}
	for name, call := range calls {
		if err := call(as(auth.RoleAuditor)); err != nil {
			t.Errorf("%s as auditor: %v", name, err)
		}
	}
}

// Every query adds exactly one access entry, which is sequenced into the tree like any
// event and covered by the next signed checkpoint.
func TestEveryQueryAudited(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	referralID, envs, _ := story(t, e.now)
	e.record(t, envs...)
	e.sequenceAll(t)
	e.sign(t)
	api := e.svc.API()
	steps := []struct {
		what string
		call func() error
	}{
		{"GetTrail", func() error {
			_, err := api.GetTrail(auditor, &auditv1.GetTrailRequest{ReferralId: referralID})
			return err
		}},
		{"SearchEntries", func() error {
			_, err := api.SearchEntries(auditor, &auditv1.SearchEntriesRequest{Actor: "user-17"})
			return err
		}},
		{"GetCheckpoint", func() error { _, err := api.GetCheckpoint(auditor, &auditv1.GetCheckpointRequest{}); return err }},
		{"ProveInclusion", func() error {
			_, err := api.ProveInclusion(auditor, &auditv1.ProveInclusionRequest{Seq: 2})
			return err
		}},
		{"ProveConsistency", func() error {
			_, err := api.ProveConsistency(auditor, &auditv1.ProveConsistencyRequest{OldSize: 2, NewSize: 4})
			return err
		}},
		{"ExportTrail", func() error {
			_, err := api.ExportTrail(auditor, &auditv1.ExportTrailRequest{ReferralId: referralID})
			return err
		}},
	}
	for i, s := range steps {
		if err := s.call(); err != nil {
			t.Fatalf("%s: %v", s.what, err)
		}
		if n := e.accessCount(t); n != i+1 {
			t.Fatalf("after %s: %d access entries, want %d", s.what, n, i+1)
		}
	}
	e.sequenceAll(t)
	e.sign(t)
	rows, err := e.pool.Query(context.Background(), `SELECT actor, actor_role, agency, decision FROM audit.entries
		WHERE event_type = $1 ORDER BY seq`, audit.EventAccessed)
	if err != nil {
		t.Fatal(err)
	}
	i := 0
	for rows.Next() {
		var actor, role, agency, decision string
		if err := rows.Scan(&actor, &role, &agency, &decision); err != nil {
			t.Fatal(err)
		}
		if actor != "client-auditor" || role != "auditor" || agency != "hub" || !strings.HasPrefix(decision, steps[i].what) {
			t.Errorf("access entry %d = %s %s %s %q, want %s", i, actor, role, agency, decision, steps[i].what)
		}
		i++
	}
	if rows.Err() != nil || i != len(steps) {
		t.Fatalf("%d access entries in the tree, want %d (%v)", i, len(steps), rows.Err())
	}
	if rep, err := audit.VerifyDatabase(context.Background(), e.pool, e.vkey, origin); err != nil || rep.Entries != 4+int64(len(steps)) {
		t.Fatalf("VerifyDatabase = %+v, %v", rep, err)
	}
}

type fakeAuthn map[string]auth.Identity

func (f fakeAuthn) Authenticate(_ context.Context, token string) (auth.Identity, error) {
	id, ok := f[token]
	if !ok {
		return auth.Identity{}, auth.ErrUnauthenticated
	}
	return id, nil
}

// Over HTTP, the routes answer JSON, the export streams JSON lines that verify, and
// other roles are refused with 403.
func TestHTTPRoutes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	referralID, envs, _ := story(t, e.now)
	e.record(t, envs...)
	e.sequenceAll(t)
	e.sign(t)
	srv := server.New(server.Config{GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0"}, zapNop(), fakeAuthn{
		"aud": {ClientID: "c-aud", Agency: "hub", Kind: "hub", Role: auth.RoleAuditor, Partnerships: []string{auth.AllPartnerships}},
		"pra": {ClientID: "c-pra", Agency: "hub", Kind: "hub", Role: auth.RolePractitioner, Partnerships: []string{auth.AllPartnerships}},
	}, prometheus.NewRegistry())
	e.svc.Register(srv)
	ls, err := srv.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ls) }()
	t.Cleanup(func() { cancel(); <-done })
	base := "http://" + ls.HTTP.Addr().String()
	get := func(token, path string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, base+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, body
	}
	for _, path := range []string{"/v1/audit/trail?referralId=" + referralID, "/v1/audit/entries?actor=user-17&order=oldest&pageSize=5",
		"/v1/audit/checkpoint", "/v1/audit/proofs/inclusion?seq=1&treeSize=4", "/v1/audit/proofs/consistency?oldSize=2&newSize=4"} {
		resp, body := get("aud", path)
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			t.Errorf("GET %s: %d %s", path, resp.StatusCode, body)
		}
		if resp, _ := get("pra", path); resp.StatusCode != http.StatusForbidden {
			t.Errorf("GET %s as practitioner: %d, want 403", path, resp.StatusCode)
		}
	}
	resp, body := get("aud", "/v1/audit/trail?referralId="+referralID)
	var trail auditv1.GetTrailResponse
	if err := protojson.Unmarshal(body, &trail); err != nil || len(trail.GetEntries()) != 4 {
		t.Errorf("trail over HTTP: %d entries, %v (%s)", len(trail.GetEntries()), err, body)
	}
	resp, body = get("aud", "/v1/audit/export?referralId="+referralID)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("export: %d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	if rep, err := audit.VerifyExport(bytes.NewReader(body), e.vkey, origin); err != nil || rep.Entries != 4 {
		t.Fatalf("HTTP export: %+v, %v", rep, err)
	}
	if resp, _ := get("pra", "/v1/audit/export?referralId="+referralID); resp.StatusCode != http.StatusForbidden {
		t.Errorf("export as practitioner: %d", resp.StatusCode)
	}
	if resp, _ := get("aud", "/v1/audit/export"); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("export without a referral or range: %d", resp.StatusCode)
	}
	if resp, _ := get("aud", "/v1/audit/entries?from=yesterday"); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("bad time: %d", resp.StatusCode)
	}
	// order=oldest|newest stands for oldest_first; any other order is refused by name, with
	// every other parameter that cannot be read.
	seqs := func(path string) []int64 {
		t.Helper()
		resp, body := get("aud", path)
		var page auditv1.SearchEntriesResponse
		if err := protojson.Unmarshal(body, &page); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
		}
		var out []int64
		for _, e := range page.GetEntries() {
			out = append(out, e.GetSeq())
		}
		return out
	}
	oldest, newest := seqs("/v1/audit/entries?order=oldest"), seqs("/v1/audit/entries?order=newest")
	slices.Reverse(newest)
	if len(oldest) < 2 || !slices.IsSorted(oldest) || !slices.Equal(oldest, newest) {
		t.Errorf("order=oldest gave seqs %v, order=newest %v", oldest, newest)
	}
	resp, body = get("aud", "/v1/audit/entries?order=sideways&pageSize=many&actorr=x")
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), `"field":"pageSize"`) ||
		!strings.Contains(string(body), `"field":"order"`) || !strings.Contains(string(body), "must be newest or oldest") {
		t.Errorf("bad order and page size: %d %s", resp.StatusCode, body)
	}
}
