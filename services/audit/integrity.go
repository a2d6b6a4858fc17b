package audit

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/mash-hub/mash/services/audit/store"
	auditlog "github.com/mash-hub/mash/services/audit/tlog"
)

// The columns of audit.entries are indexes for finding entries; the leaf is what the log
// committed to. Everything served comes from a leaf proven in the tree (and from payloads
// whose digest that leaf commits to), and every column is compared with it: a column
// altered in the database is reported as an integrity error, never served as true.

// columnMismatches names the columns of r that differ from le, the entry its leaf encodes.
func columnMismatches(r *store.Entry, le auditlog.Entry) []string {
	var bad []string
	check := func(name string, ok bool) {
		if !ok {
			bad = append(bad, name)
		}
	}
	check("seq", r.Seq == le.Seq)
	check("event_id", r.EventID == le.EventID)
	check("event_type", r.EventType == le.EventType)
	check("occurred_at", sameInstant(r.OccurredAt, le.OccurredAt))
	check("recorded_at", sameInstant(r.RecordedAt, le.RecordedAt))
	check("partnership", r.Partnership == le.Partnership)
	check("referral_id", r.ReferralID == le.ReferralID)
	check("child_id", r.ChildID == le.ChildID)
	check("actor", r.Actor == le.Actor)
	check("actor_role", r.ActorRole == le.ActorRole)
	check("agency", r.Agency == le.Agency)
	check("pack_version", r.PackVersion == le.PackVersion)
	check("decision", r.Decision == le.Decision)
	check("payload_sha256", r.PayloadSHA256 == le.PayloadSHA256)
	return bad
}

// sameInstant compares a timestamptz column (microseconds) with a leaf time (nanoseconds).
func sameInstant(col, leaf time.Time) bool {
	return col.Equal(leaf.Truncate(time.Microsecond))
}

// payloadState says whether the entry's payload is redacted, or what is wrong with what is
// stored of it. destroyed reports whether the case key of a referral is destroyed (ok false
// when it has none); it is asked only when the payload row is missing.
func payloadState(r *store.Entry, le auditlog.Entry, destroyed func(referralID string) (bool, bool)) (redacted bool, problem string) {
	if le.PayloadSHA256 == ([32]byte{}) {
		if r.HasPayload {
			return false, "a payload is stored for this event but its leaf commits to none"
		}
		return false, ""
	}
	if !r.HasPayload {
		if d, ok := destroyed(le.ReferralID); ok && d {
			return true, ""
		}
		return false, "the payload the leaf commits to is missing, and the case key of its referral is not destroyed"
	}
	switch {
	case r.KeyReferral == nil:
		return false, "the payload's case key is missing"
	case *r.KeyReferral != le.ReferralID:
		return false, fmt.Sprintf("the payload is sealed with the case key of referral %q, but the leaf's referral is %q", *r.KeyReferral, le.ReferralID)
	case r.CipherSHA256 != le.PayloadSHA256:
		return false, fmt.Sprintf("the stored payload hashes to %x but the leaf commits to %x", r.CipherSHA256, le.PayloadSHA256)
	}
	return r.KeyDestroyed, ""
}

// checked is one entry as it may be served.
type checked struct {
	Seq      int64
	Entry    auditlog.Entry // the leaf's fields; zero unless Problem is empty
	Redacted bool
	Problem  string // empty when proven and every column matches
}

// rowChecker proves the rows of one response: each leaf's inclusion in the tree under the
// latest signed checkpoint (opened with the public key derived from the signing key) or,
// for entries newer than it, under the head; then every column and the payload against
// the leaf. Hashes are read in one batch for the whole response.
type rowChecker struct {
	svc      *Service
	ctx      context.Context
	cp       auditlog.Checkpoint
	noCP     bool // no checkpoint signed yet: every entry is proven against the head
	cpErr    error
	head     store.Head
	hashes   *cachedHashes
	keyState map[string]bool
}

func (s *Service) newRowChecker(ctx context.Context) (*rowChecker, error) {
	c := &rowChecker{svc: s, ctx: ctx, hashes: &cachedHashes{r: store.TreeHashes{Ctx: ctx, Pool: s.pool}, m: map[int64]tlog.Hash{}}}
	last, err := store.LatestCheckpoint(ctx, s.pool)
	switch {
	case errors.Is(err, store.ErrNotFound):
		c.noCP = true
	case err != nil:
		return nil, err
	default:
		c.cp, c.cpErr = auditlog.OpenCheckpoint([]byte(last.Note), s.vkey, s.cfg.Origin)
		if c.cpErr == nil && c.cp.Size != last.TreeSize {
			c.cpErr = fmt.Errorf("the checkpoint row says %d entries but its signed text says %d", last.TreeSize, c.cp.Size)
		}
	}
	if c.head, err = store.ReadHead(ctx, s.pool); err != nil {
		return nil, err
	}
	return c, nil
}

// treeFor returns the tree a leaf at seq is proven in: the signed checkpoint's when it
// covers seq, else the head's (the database's own word, until the next checkpoint).
func (c *rowChecker) treeFor(seq int64) (size int64, root tlog.Hash, problem string) {
	switch {
	case c.cpErr != nil:
		return 0, tlog.Hash{}, "the latest checkpoint does not verify: " + c.cpErr.Error()
	case !c.noCP && seq < c.cp.Size:
		return c.cp.Size, c.cp.Root, ""
	case seq < c.head.TreeSize:
		return c.head.TreeSize, tlog.Hash(c.head.Root), ""
	default:
		return 0, tlog.Hash{}, fmt.Sprintf("entry %d is beyond the log's head of %d entries", seq, c.head.TreeSize)
	}
}

// check proves rows and returns them as they may be served, in the same order.
func (c *rowChecker) check(rows []*store.Entry) ([]checked, error) {
	// Gather every hash the proofs need in one query: a first pass records the indexes.
	rec := &recordingHashes{}
	for _, r := range rows {
		if size, _, p := c.treeFor(r.Seq); p == "" && r.Seq >= 0 {
			_, _ = tlog.ProveRecord(size, r.Seq, rec)
		}
	}
	if err := c.hashes.prefetch(rec.idx); err != nil {
		return nil, err
	}
	var missing []string
	for _, r := range rows {
		if !r.HasPayload {
			if le, err := auditlog.UnmarshalLeaf(r.Leaf); err == nil && le.PayloadSHA256 != ([32]byte{}) {
				missing = append(missing, le.ReferralID)
			}
		}
	}
	if len(missing) > 0 {
		var err error
		if c.keyState, err = store.CaseKeyStates(c.ctx, c.svc.pool, missing); err != nil {
			return nil, err
		}
	}
	out := make([]checked, len(rows))
	for i, r := range rows {
		out[i] = c.one(r)
	}
	return out, nil
}

func (c *rowChecker) one(r *store.Entry) checked {
	fail := func(format string, args ...any) checked {
		return checked{Seq: r.Seq, Problem: fmt.Sprintf("entry %d: ", r.Seq) + fmt.Sprintf(format, args...)}
	}
	le, err := auditlog.UnmarshalLeaf(r.Leaf)
	if err != nil {
		return fail("the stored leaf does not decode: %v", err)
	}
	size, root, p := c.treeFor(r.Seq)
	if p != "" {
		return fail("%s", p)
	}
	proof, err := tlog.ProveRecord(size, r.Seq, c.hashes)
	if err != nil {
		return fail("no inclusion proof: %v", err)
	}
	if err := auditlog.VerifyInclusion(proof, size, r.Seq, root, auditlog.LeafHash(r.Leaf)); err != nil {
		return fail("the stored leaf is not the one in the tree of %d entries", size)
	}
	if bad := columnMismatches(r, le); len(bad) > 0 {
		return fail("stored %s differ from what the leaf commits to", strings.Join(bad, ", "))
	}
	redacted, problem := payloadState(r, le, func(ref string) (bool, bool) { d, ok := c.keyState[ref]; return d, ok })
	if problem != "" {
		return fail("%s", problem)
	}
	return checked{Seq: r.Seq, Entry: le, Redacted: redacted}
}

// recordingHashes is a tlog.HashReader that only records what is asked of it.
type recordingHashes struct{ idx []int64 }

func (r *recordingHashes) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	r.idx = append(r.idx, indexes...)
	return make([]tlog.Hash, len(indexes)), nil
}
