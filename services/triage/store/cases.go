package store

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// Received is what mash.referral.received tells the case.
type Received struct {
	ReferralID, Partnership, ChildName string
	ChildAgeYears                      int32
	SourceAgency, SourceKind           string
	Concerns                           []string
	ReceivedAt                         time.Time
	// DecisionDue is intake's; the rules' own (from the decision) takes precedence.
	DecisionDue *time.Time
	// ConsentStatus is the family's consent as the referrer reported it.
	ConsentStatus string
	// Reference and ExternalReference are intake's and the sender's references;
	// FamilyGroup the sender's group of siblings reported together (empty: none).
	Reference, ExternalReference, FamilyGroup string
}

// ApplyReceived records a referral's receipt, creating the case or completing one a decision
// event created first. It applies once: a redelivered or re-emitted event changes nothing.
func ApplyReceived(ctx context.Context, tx pgx.Tx, r Received) (bool, error) {
	if err := lockChildOf(ctx, tx, r.ReferralID); err != nil { // a decision may have brought the child first
		return false, fmt.Errorf("apply receipt of referral %s: %w", r.ReferralID, err)
	}
	tag, err := tx.Exec(ctx, `INSERT INTO triage.cases (referral_id, partnership, child_name, child_age_years, source_agency,
			source_kind, concerns, received, received_at, decision_due, consent_status, reference, external_reference, family_group)
		VALUES ($1, $2, $3, $4, $5, $6, $7, true, $8, $9, $10, $11, $12, $13)
		ON CONFLICT (referral_id) DO UPDATE SET partnership = EXCLUDED.partnership, child_name = EXCLUDED.child_name,
			child_age_years = EXCLUDED.child_age_years, source_agency = EXCLUDED.source_agency, source_kind = EXCLUDED.source_kind,
			concerns = EXCLUDED.concerns, received = true, received_at = EXCLUDED.received_at,
			decision_due = coalesce(triage.cases.decision_due, EXCLUDED.decision_due),
			consent_status = CASE WHEN triage.cases.consent_status = '' THEN EXCLUDED.consent_status ELSE triage.cases.consent_status END,
			reference = EXCLUDED.reference, external_reference = EXCLUDED.external_reference, family_group = EXCLUDED.family_group,
			version = triage.cases.version + 1, updated_at = now()
		WHERE NOT triage.cases.received`,
		r.ReferralID, r.Partnership, r.ChildName, r.ChildAgeYears, r.SourceAgency, r.SourceKind, r.Concerns, r.ReceivedAt, r.DecisionDue,
		r.ConsentStatus, r.Reference, r.ExternalReference, r.FamilyGroup)
	if err != nil {
		return false, fmt.Errorf("apply receipt of referral %s: %w", r.ReferralID, err)
	}
	return tag.RowsAffected() == 1, nil
}

// Decision is what a rules decision (any version) tells the case.
type Decision struct {
	ReferralID, Partnership, ChildID, DecisionID string
	Version                                      int64
	Status, Level, RecommendedLevel, RAG         int16
	Pathway                                      string
	Agencies                                     []string
	DecisionDue, RAGDue, RecommendedAt           *time.Time
	// DecidedAt and DecidedBy are the practitioner's review, if any.
	DecidedAt *time.Time
	DecidedBy string
}

// ApplyDecision records a decision unless the case already holds the same or a newer
// version of it, so events applied twice or out of order leave the newest. A decision on a
// closed case updates it but leaves it closed. It returns the case when it changed.
func ApplyDecision(ctx context.Context, tx pgx.Tx, d Decision) (Case, bool, error) {
	if d.ChildID != "" {
		if _, err := tx.Exec(ctx, `SELECT `+childLock(`$1::uuid`), d.ChildID); err != nil {
			return Case{}, false, fmt.Errorf("apply decision v%d of referral %s: %w", d.Version, d.ReferralID, err)
		}
	}
	// The rules' child record is kept as rules_child_id; the case's child is that record
	// followed through practitioners' corrections (a link or unlink of this referral, a
	// merge of its record), so a later decision never undoes a correction.
	c, err := scanCase(tx.QueryRow(ctx, `INSERT INTO triage.cases AS c (referral_id, partnership, child_id, rules_child_id, decision_id,
			decision_version, decision_status, level, recommended_level, rag, pathway, agencies, decision_due, rag_due,
			recommended_at, decided_at, decided_by, state)
		VALUES ($1, $2, triage.resolve_child(nullif($3, '')::uuid), nullif($3, '')::uuid, nullif($4, '')::uuid, $5, $6, $7, $8, $9,
			$10, $11, $12, $13, $14, $15, $16, CASE WHEN $6::smallint = 1 THEN 2 ELSE 3 END)
		ON CONFLICT (referral_id) DO UPDATE SET partnership = EXCLUDED.partnership,
			rules_child_id = coalesce(EXCLUDED.rules_child_id, c.rules_child_id),
			child_id = coalesce(triage.resolve_child(coalesce(c.child_override, EXCLUDED.rules_child_id, c.rules_child_id)), c.child_id),
			decision_id = EXCLUDED.decision_id, decision_version = EXCLUDED.decision_version,
			decision_status = EXCLUDED.decision_status, level = EXCLUDED.level, recommended_level = EXCLUDED.recommended_level,
			rag = EXCLUDED.rag, pathway = EXCLUDED.pathway, agencies = EXCLUDED.agencies,
			decision_due = coalesce(EXCLUDED.decision_due, c.decision_due), rag_due = EXCLUDED.rag_due,
			recommended_at = EXCLUDED.recommended_at, decided_at = EXCLUDED.decided_at, decided_by = EXCLUDED.decided_by,
			state = CASE WHEN c.state = 4 THEN 4 ELSE EXCLUDED.state END, version = c.version + 1, updated_at = now()
		WHERE c.decision_version < EXCLUDED.decision_version
		RETURNING `+caseColumns,
		d.ReferralID, d.Partnership, d.ChildID, d.DecisionID, d.Version, d.Status, d.Level, d.RecommendedLevel, d.RAG, d.Pathway,
		nonNil(d.Agencies), d.DecisionDue, d.RAGDue, d.RecommendedAt, d.DecidedAt, d.DecidedBy))
	switch {
	case err == ErrNotFound: // the case holds this version or a newer one
		return Case{}, false, nil
	case err != nil:
		return Case{}, false, fmt.Errorf("apply decision v%d of referral %s: %w", d.Version, d.ReferralID, err)
	}
	return c, true, nil
}

// childLock is the transaction-scoped advisory lock on one child's cases that the
// re-referral triggers take (migration 0003) before re-linking them; child is a SQL uuid
// expression.
func childLock(child string) string {
	return `pg_advisory_xact_lock(hashtext('mash.triage.child.' || ` + child + `::text))`
}

// lockChildOf takes the child lock of a case, if it has a child, before the case row is
// locked: the triggers take it after the row, so a writer that locked the row first could
// deadlock with one re-linking the same child. Lock order is child, then case.
func lockChildOf(ctx context.Context, tx pgx.Tx, referralID string) error {
	_, err := tx.Exec(ctx, `SELECT `+childLock(`child_id`)+` FROM triage.cases WHERE referral_id = $1 AND child_id IS NOT NULL`, referralID)
	return err
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// Notice is one notification event about a case.
type Notice struct {
	NotificationID, ReferralID, Partnership, Agency, Role, Kind, State string
	At                                                                 time.Time
	SentAt, DeliveredAt, AcknowledgedAt, AckDue                        *time.Time
}

// ApplyNotice folds a notification event into what the case shows of it. Times keep their
// earliest value and the state is the one of the latest event, so any order of arrival
// gives the same row.
func ApplyNotice(ctx context.Context, tx pgx.Tx, n Notice) error {
	if _, err := tx.Exec(ctx, applyNoticeSQL, noticeArgs(n)...); err != nil {
		return fmt.Errorf("apply notification %s of referral %s: %w", n.NotificationID, n.ReferralID, err)
	}
	return nil
}

// QueueNotice queues ApplyNotice's statement on b, to be sent with others in one round trip.
func QueueNotice(b *pgx.Batch, n Notice) {
	b.Queue(applyNoticeSQL, noticeArgs(n)...)
}

func noticeArgs(n Notice) []any {
	return []any{n.NotificationID, n.ReferralID, n.Partnership, n.Agency, n.Kind, n.State, n.At, n.SentAt, n.DeliveredAt, n.AcknowledgedAt, n.AckDue, n.Role}
}

const applyNoticeSQL = `INSERT INTO triage.notices AS n (notification_id, referral_id, partnership, agency, kind, state,
		state_at, sent_at, delivered_at, acknowledged_at, ack_due, role)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
	ON CONFLICT (notification_id) DO UPDATE SET
		role = CASE WHEN EXCLUDED.role <> '' THEN EXCLUDED.role ELSE n.role END,
		state = CASE WHEN EXCLUDED.state_at >= n.state_at THEN EXCLUDED.state ELSE n.state END,
		state_at = greatest(n.state_at, EXCLUDED.state_at),
		agency = CASE WHEN EXCLUDED.agency <> '' THEN EXCLUDED.agency ELSE n.agency END,
		kind = CASE WHEN EXCLUDED.kind <> '' THEN EXCLUDED.kind ELSE n.kind END,
		sent_at = least(n.sent_at, EXCLUDED.sent_at),
		delivered_at = least(n.delivered_at, EXCLUDED.delivered_at),
		acknowledged_at = least(n.acknowledged_at, EXCLUDED.acknowledged_at),
		ack_due = CASE WHEN EXCLUDED.state_at >= n.state_at THEN coalesce(EXCLUDED.ack_due, n.ack_due)
			ELSE coalesce(n.ack_due, EXCLUDED.ack_due) END`

// GetCase returns one case.
func GetCase(ctx context.Context, q Querier, referralID string) (Case, error) {
	if !isUUID(referralID) {
		return Case{}, ErrNotFound
	}
	c, err := scanCase(q.QueryRow(ctx, `SELECT `+caseColumns+` FROM triage.cases WHERE referral_id = $1`, referralID))
	return c, wrap(err, "read case %s", referralID)
}

// LockCase returns one case locked for update until tx ends. Its child is locked first
// (see lockChildOf), as closing the case may re-link the child's other cases.
func LockCase(ctx context.Context, tx pgx.Tx, referralID string) (Case, error) {
	if !isUUID(referralID) {
		return Case{}, ErrNotFound
	}
	if err := lockChildOf(ctx, tx, referralID); err != nil {
		return Case{}, fmt.Errorf("lock case %s: %w", referralID, err)
	}
	c, err := scanCase(tx.QueryRow(ctx, `SELECT `+caseColumns+` FROM triage.cases WHERE referral_id = $1 FOR UPDATE`, referralID))
	return c, wrap(err, "lock case %s", referralID)
}

// SetConsent records the family's consent to sharing and bumps the case's version.
func SetConsent(ctx context.Context, tx pgx.Tx, referralID, status string) (Case, error) {
	c, err := scanCase(tx.QueryRow(ctx, `UPDATE triage.cases SET consent_status = $2, version = version + 1, updated_at = now()
		WHERE referral_id = $1 RETURNING `+caseColumns, referralID, status))
	return c, wrap(err, "set consent on case %s", referralID)
}

// SetSharing records (s.At set) or removes (s.At nil) a manager's authorisation to share the
// case without consent, and bumps the case's version.
func SetSharing(ctx context.Context, tx pgx.Tx, referralID string, s Sharing) (Case, error) {
	c, err := scanCase(tx.QueryRow(ctx, `UPDATE triage.cases SET sharing_basis = nullif($2, ''), sharing_reason = nullif($3, ''),
			sharing_ground = nullif($4, ''), sharing_by = nullif($5, ''), sharing_at = $6, version = version + 1, updated_at = now()
		WHERE referral_id = $1 RETURNING `+caseColumns, referralID, s.Basis, s.Reason, s.Ground, s.By, s.At))
	return c, wrap(err, "set sharing authorisation on case %s", referralID)
}

// SetClaim sets who holds the case (empty: nobody) and until when (nil: until changed, a
// manager's assignment), and bumps its version.
func SetClaim(ctx context.Context, tx pgx.Tx, referralID, assignee string, expires *time.Time) (Case, error) {
	c, err := scanCase(tx.QueryRow(ctx, `UPDATE triage.cases SET assignee = nullif($2, ''), claim_expires_at = $3,
		version = version + 1, updated_at = now() WHERE referral_id = $1 RETURNING `+caseColumns, referralID, assignee, expires))
	return c, wrap(err, "set claim on case %s", referralID)
}

// SetLead records the lead professional of a case and bumps its version.
func SetLead(ctx context.Context, tx pgx.Tx, referralID string, l Lead) (Case, error) {
	c, err := scanCase(tx.QueryRow(ctx, `UPDATE triage.cases SET lead_agency = $2, lead_team = $3, lead_person = $4, lead_scope = $5,
			lead_named_by = $6, lead_named_by_role = $7, lead_named_at = $8, version = version + 1, updated_at = now()
		WHERE referral_id = $1 RETURNING `+caseColumns, referralID, l.Agency, l.Team, l.Person, l.Scope, l.NamedBy, l.NamedByRole, l.NamedAt))
	return c, wrap(err, "set lead professional of case %s", referralID)
}

// CloseCase records the case's outcome and bumps its version; the claim ends with it.
func CloseCase(ctx context.Context, tx pgx.Tx, referralID string, outcome int16, note, by string, at time.Time) (Case, error) {
	c, err := scanCase(tx.QueryRow(ctx, `UPDATE triage.cases SET state = 4, outcome = $2, outcome_note = $3, closed_by = $4,
		closed_at = $5, assignee = NULL, claim_expires_at = NULL, version = version + 1, updated_at = now()
		WHERE referral_id = $1 RETURNING `+caseColumns, referralID, outcome, note, by, at))
	return c, wrap(err, "close case %s", referralID)
}

// ReleaseLapsedClaims frees up to limit claims that lapsed before now, returning the cases
// as they stand after release. Rows another sweeper holds are skipped. A manager's
// assignment (no expiry) never lapses.
func ReleaseLapsedClaims(ctx context.Context, tx pgx.Tx, now time.Time, limit int) ([]Case, []string, error) {
	rows, err := tx.Query(ctx, `WITH lapsed AS (
			SELECT referral_id AS lapsed_id, assignee AS holder FROM triage.cases
			WHERE assignee IS NOT NULL AND claim_expires_at <= $1
			ORDER BY claim_expires_at LIMIT $2 FOR UPDATE SKIP LOCKED)
		UPDATE triage.cases SET assignee = NULL, claim_expires_at = NULL, version = version + 1, updated_at = now()
		FROM lapsed WHERE referral_id = lapsed.lapsed_id
		RETURNING holder, `+caseColumns, now, limit)
	if err != nil {
		return nil, nil, fmt.Errorf("release lapsed claims: %w", err)
	}
	defer rows.Close()
	var cases []Case
	var holders []string
	for rows.Next() {
		var holder string
		var c Case
		err := rows.Scan(append([]any{&holder}, caseTargets(&c)...)...)
		if err != nil {
			return nil, nil, fmt.Errorf("release lapsed claims: %w", err)
		}
		cases, holders = append(cases, c), append(holders, holder)
	}
	return cases, holders, rows.Err()
}

// caseTargets are the scan targets of caseColumns, in order.
func caseTargets(c *Case) []any {
	return []any{&c.ReferralID, &c.Partnership, &c.ChildID, &c.ChildName, &c.ChildAgeYears, &c.SourceAgency,
		&c.SourceKind, &c.Concerns, &c.Received, &c.State, &c.Level, &c.RecommendedLevel, &c.RAG, &c.DecisionStatus, &c.Outcome,
		&c.Pathway, &c.Agencies, &c.DecisionID, &c.DecisionVersion, &c.ReceivedAt, &c.DecisionDue, &c.RAGDue, &c.RecommendedAt,
		&c.DecidedAt, &c.DecidedBy, &c.Assignee, &c.ClaimExpiresAt, &c.OutcomeNote, &c.ClosedAt, &c.ClosedBy, &c.Version, &c.ConsentStatus,
		&c.Sharing.Basis, &c.Sharing.Reason, &c.Sharing.Ground, &c.Sharing.By, &c.Sharing.At,
		&c.Reference, &c.ExternalReference, &c.FamilyGroup,
		&c.Lead.Agency, &c.Lead.Team, &c.Lead.Person, &c.Lead.Scope, &c.Lead.NamedBy, &c.Lead.NamedByRole, &c.Lead.NamedAt}
}

// QueueKey is the queue's sort key of one case: where a page ends. A nil due time is a
// missing one, which sorts last (Postgres 'infinity').
type QueueKey struct {
	RAGDue, DecisionDue *time.Time
	ReferralID          string
}

// KeyOf returns c's position in the queue.
func KeyOf(c Case) QueueKey {
	return QueueKey{RAGDue: c.RAGDue, DecisionDue: c.DecisionDue, ReferralID: c.ReferralID}
}

// sortTime encodes a due time of the sort key, nil as 'infinity'.
func sortTime(t *time.Time) pgtype.Timestamptz {
	if t == nil {
		return pgtype.Timestamptz{InfinityModifier: pgtype.Infinity, Valid: true}
	}
	return pgtype.Timestamptz{Time: *t, Valid: true}
}

// QueueFilter selects cases for the queue.
type QueueFilter struct {
	Partnership string
	// Partnerships, when not nil, limits the cases to those partnerships: the ones the
	// caller serves.
	Partnerships []string
	States       []int16
	RAGs         []int16
	Levels       []int16
	Concern      string
	SourceAgency string
	// Assignee selects cases held by this client (a live claim or an assignment); Unassigned
	// selects cases nobody holds (lapsed claims count as nobody's; assignments never lapse).
	Assignee    string
	Unassigned  bool
	OverdueOnly bool
	Now         time.Time
	Limit       int
	After       *QueueKey
}

// query builds SQL parameters in order.
type query struct {
	where []string
	args  []any
}

func (q *query) arg(v any) string {
	q.args = append(q.args, v)
	return "$" + strconv.Itoa(len(q.args))
}

func (q *query) add(cond string) { q.where = append(q.where, cond) }

func (q *query) sql() string {
	if len(q.where) == 0 {
		return "true"
	}
	return strings.Join(q.where, " AND ")
}

// overdueSQL is Case.Overdue in SQL; now is a parameter placeholder.
func overdueSQL(now string) string {
	return `(state IN (1, 2, 3) AND (queue_rag_due < ` + now + ` OR (state IN (1, 2) AND queue_decision_due < ` + now + `)))`
}

// filters adds every filter but states and the page.
func (f QueueFilter) filters(q *query) {
	if f.Partnership != "" {
		q.add("partnership = " + q.arg(f.Partnership))
	}
	if f.Partnerships != nil {
		q.add("partnership = ANY(" + q.arg(f.Partnerships) + "::text[])")
	}
	if len(f.RAGs) > 0 {
		q.add("rag = ANY(" + q.arg(f.RAGs) + "::smallint[])")
	}
	if len(f.Levels) > 0 {
		q.add("level = ANY(" + q.arg(f.Levels) + "::smallint[])")
	}
	if f.Concern != "" {
		q.add("concerns @> ARRAY[" + q.arg(f.Concern) + "::text]")
	}
	if f.SourceAgency != "" {
		q.add("source_agency = " + q.arg(f.SourceAgency))
	}
	if f.Assignee != "" {
		q.add("assignee = " + q.arg(f.Assignee) + " AND (claim_expires_at IS NULL OR claim_expires_at > " + q.arg(f.Now) + ")")
	}
	if f.Unassigned {
		q.add("(assignee IS NULL OR claim_expires_at <= " + q.arg(f.Now) + ")")
	}
	if f.OverdueOnly {
		q.add(overdueSQL(q.arg(f.Now)))
	}
}

// openOnly reports whether every requested state is an open one, so the partial indexes on
// open cases apply.
func openOnly(states []int16) bool {
	for _, s := range states {
		if s == StateClosed {
			return false
		}
	}
	return true
}

// ListQueue returns a page of cases in queue order: RAG due time, decision due time, then
// referral id, with missing due times last.
func ListQueue(ctx context.Context, q Querier, f QueueFilter) ([]Case, error) {
	var b query
	if openOnly(f.States) {
		// The partial indexes' predicate, verbatim, so the planner proves it.
		b.add("state IN (1, 2, 3)")
	}
	b.add("state = ANY(" + b.arg(f.States) + "::smallint[])")
	f.filters(&b)
	if f.After != nil {
		b.add("(queue_rag_due, queue_decision_due, referral_id) > (" + b.arg(sortTime(f.After.RAGDue)) + "::timestamptz, " +
			b.arg(sortTime(f.After.DecisionDue)) + "::timestamptz, " + b.arg(f.After.ReferralID) + "::uuid)")
	}
	sql := `SELECT ` + caseColumns + ` FROM triage.cases WHERE ` + b.sql() +
		` ORDER BY queue_rag_due, queue_decision_due, referral_id LIMIT ` + strconv.Itoa(f.Limit)
	cs, err := collectCases(q.Query(ctx, sql, b.args...))
	if err != nil {
		return nil, fmt.Errorf("list queue: %w", err)
	}
	return cs, nil
}

// StateCount is how many cases are in one state, and how many of them are overdue.
type StateCount struct {
	State          int16
	Count, Overdue int64
}

// onlyPartnership reports whether f filters by nothing but partnership.
func (f QueueFilter) onlyPartnership() bool {
	return len(f.RAGs) == 0 && len(f.Levels) == 0 && f.Concern == "" && f.SourceAgency == "" && f.Assignee == "" &&
		!f.Unassigned && !f.OverdueOnly
}

// QueueCounts counts cases per state under f's filters (its states and page ignored). Open
// states are counted over the partial index of open cases. Closed cases, which dominate the
// table, are counted only when withClosed asks for them: from the trigger-kept counters when
// the only filter is the partnership, otherwise by a scan (slow by design: a rare view).
func QueueCounts(ctx context.Context, q Querier, f QueueFilter, withClosed bool) ([]StateCount, error) {
	var b query
	now := b.arg(f.Now)
	fromCounters := withClosed && f.onlyPartnership()
	states := "state IN (1, 2, 3)"
	if withClosed && !fromCounters {
		states = "true"
	}
	b.add(states)
	f.filters(&b)
	rows, err := q.Query(ctx, `SELECT state, count(*), count(*) FILTER (WHERE `+overdueSQL(now)+`)
		FROM triage.cases WHERE `+b.sql()+` GROUP BY state ORDER BY state`, b.args...)
	if err != nil {
		return nil, fmt.Errorf("count queue: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (StateCount, error) {
		var c StateCount
		err := r.Scan(&c.State, &c.Count, &c.Overdue)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("count queue: %w", err)
	}
	if fromCounters {
		closed := StateCount{State: StateClosed}
		// The shards of each partnership's closed count (migration 0012), summed.
		if err := q.QueryRow(ctx, `SELECT coalesce(sum(count), 0)::bigint FROM triage.closed_counts
			WHERE ($1 = '' OR partnership = $1) AND ($2::text[] IS NULL OR partnership = ANY($2))`,
			f.Partnership, f.Partnerships).Scan(&closed.Count); err != nil {
			return nil, fmt.Errorf("count closed cases: %w", err)
		}
		out = append(out, closed)
	}
	return out, nil
}

// ChildHistory returns the child's cases received before the referral received at
// receivedAt (nil: every other case), newest first: the history a practitioner weighs is
// what was known when this referral arrived, not what came after it.
func ChildHistory(ctx context.Context, q Querier, childID, excludeReferral string, receivedAt *time.Time, limit int) ([]Case, error) {
	if childID == "" {
		return nil, nil
	}
	cs, err := collectCases(q.Query(ctx, `SELECT `+caseColumns+` FROM triage.cases
		WHERE child_id = $1 AND referral_id <> $2 AND ($3::timestamptz IS NULL OR received_at < $3)
		ORDER BY received_at DESC NULLS LAST LIMIT $4`, childID, excludeReferral, receivedAt, limit))
	return cs, wrap(err, "read history of child %s", childID)
}

// CaseChildren returns the child record of each of referralIDs' cases that has one, by
// referral id: what a list of records kept by referral (information requests,
// disagreements) shows of children, for its access entry.
func CaseChildren(ctx context.Context, q Querier, referralIDs []string) (map[string]string, error) {
	rows, err := q.Query(ctx, `SELECT referral_id::text, child_id::text FROM triage.cases
		WHERE referral_id = ANY($1::uuid[]) AND child_id IS NOT NULL`, referralIDs)
	if err != nil {
		return nil, fmt.Errorf("read the children of %d cases: %w", len(referralIDs), err)
	}
	out := make(map[string]string, len(referralIDs))
	_, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (struct{}, error) {
		var referralID, childID string
		err := r.Scan(&referralID, &childID)
		out[referralID] = childID
		return struct{}{}, err
	})
	if err != nil {
		return nil, fmt.Errorf("read the children of %d cases: %w", len(referralIDs), err)
	}
	return out, nil
}

// FamilyGroup returns the other cases one agency sent in the same family group (siblings
// reported together), oldest first.
func FamilyGroup(ctx context.Context, q Querier, sourceAgency, group, excludeReferral string, limit int) ([]Case, error) {
	if group == "" {
		return nil, nil
	}
	cs, err := collectCases(q.Query(ctx, `SELECT `+caseColumns+` FROM triage.cases
		WHERE source_agency = $1 AND family_group = $2 AND family_group <> '' AND referral_id <> $3
		ORDER BY received_at, referral_id LIMIT $4`, sourceAgency, group, excludeReferral, limit))
	return cs, wrap(err, "read family group of referral %s", excludeReferral)
}

// Notices returns what each agency was told about the case, oldest first.
func Notices(ctx context.Context, q Querier, referralID string) ([]Notice, error) {
	rows, err := q.Query(ctx, `SELECT notification_id::text, referral_id::text, partnership, agency, role, kind, state, state_at,
		sent_at, delivered_at, acknowledged_at, ack_due FROM triage.notices WHERE referral_id = $1
		ORDER BY coalesce(sent_at, state_at), notification_id`, referralID)
	if err != nil {
		return nil, fmt.Errorf("read notices of %s: %w", referralID, err)
	}
	ns, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Notice, error) {
		var n Notice
		err := r.Scan(&n.NotificationID, &n.ReferralID, &n.Partnership, &n.Agency, &n.Role, &n.Kind, &n.State, &n.At,
			&n.SentAt, &n.DeliveredAt, &n.AcknowledgedAt, &n.AckDue)
		return n, err
	})
	return ns, wrap(err, "read notices of %s", referralID)
}
