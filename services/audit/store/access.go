package store

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
)

// accessArea is the prefix of the services' reads (eventsv1.SubjectAccessReferral,
// SubjectAccessCase, ...): mash.access.
var accessArea = eventsv1.SubjectAccessReferral[:strings.LastIndexByte(eventsv1.SubjectAccessReferral, '.')+1]

// accessOf is the predicate of an access entry of audit.entries aliased alias: reads
// published by the services (mash.access.*) and queries of the audit API
// (eventsv1.SubjectAuditAccessed). The subjects come from the catalogue but are spelt into
// the SQL, not passed as parameters: it is the predicate of the partial indexes of
// 2002_access_indexes.sql, and the planner can use those only for a predicate it can prove
// from the query's text (a generic plan would not know a parameter's value).
func accessOf(alias string) string {
	return `(` + alias + `.event_type LIKE '` + accessArea + `%' OR ` + alias + `.event_type = '` + eventsv1.SubjectAuditAccessed + `')`
}

// accessCond selects access entries of audit.entries e.
var accessCond = accessOf("e")

// Access is an access entry as the access queries read it.
type Access struct {
	Entry
	// Set by UnusualCandidates only: the referral has a mash.referral.received entry, and
	// the reader is involved in it (see UnusualCandidates).
	ReferralKnown, Involved bool
	// Set by UnusualCandidates only: the referral's case was closed before the read, and
	// how many distinct children (or referrals, where no child is known) the reader read
	// in the hour up to and including it.
	CaseClosed       bool
	ChildrenLastHour int64
	// Set by UnusualCandidates only: the seqs of the other entries the flags above were
	// worked out from. Their columns are what the query read, so the report proves them
	// against their leaves before it trusts the flags.
	Support []int64
}

func scanAccess(rows pgx.Rows, extra bool) ([]Access, error) {
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Access, error) {
		var a Access
		dst, finish := entryDest(&a.Entry)
		if extra {
			dst = append(dst, &a.ReferralKnown, &a.Involved, &a.CaseClosed, &a.ChildrenLastHour, &a.Support)
		}
		err := r.Scan(dst...)
		finish()
		return a, err
	})
}

// cursorCond adds "seq < before" when before >= 0 (newest-first paging).
func cursorCond(args *[]any, before int64) string {
	if before < 0 {
		return ""
	}
	*args = append(*args, before)
	return ` AND e.seq < $` + strconv.Itoa(len(*args))
}

// AccessesOf returns up to limit access entries about a referral, or with childID about
// the child or any referral of the child (found as Trail finds them), with seq < before
// (before < 0: from the newest), newest first.
func AccessesOf(ctx context.Context, pool *pgxpool.Pool, referralID, childID string, before int64, limit int) ([]Access, error) {
	var q string
	var args []any
	if referralID != "" {
		args = []any{referralID}
		q = `SELECT ` + entryColumns + entryJoins + ` WHERE e.referral_id = $1 AND ` + accessCond
	} else {
		args = []any{childID}
		// Two index range reads (by child, by each of the child's referrals) merged by seq.
		q = `SELECT ` + entryColumns + entryJoins + ` WHERE ` + accessCond + ` AND (e.child_id = $1 OR e.referral_id IN
			(SELECT DISTINCT c.referral_id FROM audit.entries c WHERE c.child_id = $1 AND c.child_id <> '' AND c.referral_id <> ''))`
	}
	q += cursorCond(&args, before)
	args = append(args, limit)
	q += ` ORDER BY e.seq DESC LIMIT $` + strconv.Itoa(len(args))
	rows, err := pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("read accesses: %w", err)
	}
	out, err := scanAccess(rows, false)
	if err != nil {
		return nil, fmt.Errorf("read accesses: %w", err)
	}
	return out, nil
}

// ActivityOf returns up to limit access entries by actor with occurred_at in [from, to)
// (nil: open) and seq < before (before < 0: from the newest), newest first.
func ActivityOf(ctx context.Context, pool *pgxpool.Pool, actor string, from, to *time.Time, before int64, limit int) ([]Access, error) {
	args := []any{actor}
	q := `SELECT ` + entryColumns + entryJoins + ` WHERE e.actor = $1 AND ` + accessCond
	if from != nil {
		args = append(args, *from)
		q += ` AND e.occurred_at >= $` + strconv.Itoa(len(args))
	}
	if to != nil {
		args = append(args, *to)
		q += ` AND e.occurred_at < $` + strconv.Itoa(len(args))
	}
	q += cursorCond(&args, before)
	args = append(args, limit)
	q += ` ORDER BY e.seq DESC LIMIT $` + strconv.Itoa(len(args))
	rows, err := pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("read activity: %w", err)
	}
	out, err := scanAccess(rows, false)
	if err != nil {
		return nil, fmt.Errorf("read activity: %w", err)
	}
	return out, nil
}

// decisionTypes are the entries that name who decided a referral; supportTypes every
// entry of a referral the unusual-access flags are read from.
const (
	decisionTypes = `'` + eventsv1.SubjectDecisionMade + `', '` + eventsv1.SubjectTriageConfirmed + `', '` + eventsv1.SubjectTriageOverridden + `'`
	supportTypes  = decisionTypes + `, '` + eventsv1.SubjectReferralReceived + `', '` + eventsv1.SubjectCaseClosed + `'`
)

var (
	// otherReferralCond selects the entries (o) that tie the read's child to another of the
	// child's referrals before the read: the decisions and casework that carry the child.
	otherReferralCond = `o.child_id = e.child_id AND o.referral_id <> '' AND o.referral_id <> e.referral_id
			AND o.seq < e.seq AND NOT ` + accessOf("o")
	// bulkCond selects the reader's reads (b) of a child or referral in the hour up to
	// and including the read e.
	bulkCond = accessOf("b") + `
			AND (b.child_id <> '' OR b.referral_id <> '') AND b.seq <= e.seq
			AND b.occurred_at > e.occurred_at - interval '1 hour' AND b.occurred_at <= e.occurred_at`
)

// UnusualCandidates returns up to limit access entries with occurred_at in [from, to) and
// seq < before (before < 0: from the newest), newest first, each with ReferralKnown (its
// referral has a mash.referral.received entry) and Involved: the reader's agency is the
// referring agency, or the reader decided (confirmed or overrode) the referral's
// decision, or the reader's agency is a decider's. Decision events do not carry the
// reviewer's agency, so a reviewer's agency is the one on the reviewer's own entries (the
// agency their credential reads with) or on the decision entry if it has one.
//
// CaseClosed is judged for the child: the read referral's case was closed before the read,
// and no other referral of the same child (as the trail knew it then) was still open, so
// reading a closed referral for the history of a child with an open case is not flagged.
// Support lists every entry whose columns these flags were read from.
func UnusualCandidates(ctx context.Context, pool *pgxpool.Pool, from, to time.Time, before int64, limit int) ([]Access, error) {
	args := []any{from, to}
	q := `SELECT ` + entryColumns + `,
		EXISTS (SELECT 1 FROM audit.entries r WHERE r.referral_id = e.referral_id AND e.referral_id <> ''
			AND r.event_type = '` + eventsv1.SubjectReferralReceived + `'),
		e.agency <> '' AND (
			EXISTS (SELECT 1 FROM audit.entries r WHERE r.referral_id = e.referral_id
				AND r.event_type = '` + eventsv1.SubjectReferralReceived + `' AND r.agency = e.agency)
			OR EXISTS (SELECT 1 FROM audit.entries d WHERE d.referral_id = e.referral_id
				AND d.event_type IN (` + decisionTypes + `)
				AND (d.actor = e.actor OR d.agency = e.agency OR EXISTS (SELECT 1 FROM audit.entries x
					WHERE x.actor = d.actor AND x.agency = e.agency
					AND ` + accessOf("x") + `)))),
		e.referral_id <> '' AND EXISTS (SELECT 1 FROM audit.entries c WHERE c.referral_id = e.referral_id
			AND c.event_type = '` + eventsv1.SubjectCaseClosed + `' AND c.seq < e.seq)
		AND NOT (e.child_id <> '' AND EXISTS (SELECT 1 FROM audit.entries o WHERE ` + otherReferralCond + `
			AND NOT EXISTS (SELECT 1 FROM audit.entries oc WHERE oc.referral_id = o.referral_id
				AND oc.event_type = '` + eventsv1.SubjectCaseClosed + `' AND oc.seq < e.seq))),
		(SELECT count(DISTINCT coalesce(nullif(b.child_id, ''), b.referral_id)) FROM audit.entries b
			WHERE b.actor = e.actor AND ` + bulkCond + `),
		ARRAY(SELECT s.seq FROM audit.entries s WHERE e.referral_id <> '' AND s.referral_id = e.referral_id
				AND s.event_type IN (` + supportTypes + `)
			UNION SELECT x.seq FROM audit.entries d, LATERAL (SELECT x.seq FROM audit.entries x
				WHERE x.actor = d.actor AND x.agency = e.agency AND e.agency <> ''
				AND ` + accessOf("x") + ` LIMIT 1) x
				WHERE e.referral_id <> '' AND d.referral_id = e.referral_id AND d.event_type IN (` + decisionTypes + `)
			UNION SELECT min(o.seq) FROM audit.entries o WHERE e.child_id <> '' AND ` + otherReferralCond + `
				GROUP BY o.referral_id
			UNION SELECT oc.seq FROM audit.entries oc WHERE oc.event_type = '` + eventsv1.SubjectCaseClosed + `' AND oc.seq < e.seq
				AND oc.referral_id IN (SELECT o.referral_id FROM audit.entries o WHERE e.child_id <> '' AND ` + otherReferralCond + `)
			UNION SELECT b.seq FROM audit.entries b WHERE b.actor = e.actor AND b.seq <> e.seq AND ` + bulkCond + `)
		` + entryJoins + ` WHERE ` + accessCond + ` AND e.occurred_at >= $1 AND e.occurred_at < $2`
	q += cursorCond(&args, before)
	args = append(args, limit)
	q += ` ORDER BY e.seq DESC LIMIT $` + strconv.Itoa(len(args))
	rows, err := pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("read unusual access candidates: %w", err)
	}
	out, err := scanAccess(rows, true)
	if err != nil {
		return nil, fmt.Errorf("read unusual access candidates: %w", err)
	}
	return out, nil
}
