package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Notification states.
const (
	StatePending      = "PENDING"
	StateSending      = "SENDING"
	StateDelivered    = "DELIVERED"
	StateAcknowledged = "ACKNOWLEDGED"
	StateFailed       = "FAILED"
)

// Notification is one message to one agency about one referral, with its share record and
// delivery state.
type Notification struct {
	ID, DedupeKey, ReferralID, Reference, Partnership, Agency, Role, Kind, Channel string
	DecisionID                                                                     string
	DecisionVersion                                                                int64
	RAG                                                                            string
	// Priority orders delivery: 0 Red, 1 Amber, 2 Green and the rest.
	Priority                             int
	Payload                              []byte
	PayloadSHA256                        string
	Fields                               []string
	Purpose, LawfulBasis                 string
	ConsentStatus, ConsentReason         string
	ReferrerWithheld                     bool
	State                                string
	Attempts, RetryBase                  int
	NextAttemptAt                        time.Time
	LastError                            string
	CreatedAt                            time.Time
	DeliveredAt, AcknowledgedAt          *time.Time
	AcknowledgedBy, AckNote              string
	AckDue, EscalatedAt, WithdrawnAt     *time.Time
	EscalatesID, RoutedFrom, WithdrawsID string
	// AuthorisedBy names who authorised sharing without consent; empty when on consent.
	AuthorisedBy string
}

const notificationColumns = `id::text, dedupe_key, referral_id::text, reference, partnership, agency, role, kind, channel,
	coalesce(decision_id::text, ''), decision_version, rag, priority, payload, payload_sha256, fields, purpose, lawful_basis,
	consent_status, consent_reason, referrer_withheld, state, attempts, retry_base, next_attempt_at, last_error, created_at, delivered_at,
	acknowledged_at, acknowledged_by, ack_note, ack_due, escalated_at, withdrawn_at, coalesce(escalates_id::text, ''),
	routed_from, coalesce(withdraws_id::text, ''), authorised_by`

func scanNotification(r pgx.Row) (Notification, error) {
	var n Notification
	err := r.Scan(&n.ID, &n.DedupeKey, &n.ReferralID, &n.Reference, &n.Partnership, &n.Agency, &n.Role, &n.Kind, &n.Channel,
		&n.DecisionID, &n.DecisionVersion, &n.RAG, &n.Priority, &n.Payload, &n.PayloadSHA256, &n.Fields, &n.Purpose,
		&n.LawfulBasis, &n.ConsentStatus, &n.ConsentReason, &n.ReferrerWithheld, &n.State, &n.Attempts, &n.RetryBase, &n.NextAttemptAt,
		&n.LastError, &n.CreatedAt, &n.DeliveredAt, &n.AcknowledgedAt, &n.AcknowledgedBy, &n.AckNote, &n.AckDue,
		&n.EscalatedAt, &n.WithdrawnAt, &n.EscalatesID, &n.RoutedFrom, &n.WithdrawsID, &n.AuthorisedBy)
	if errors.Is(err, pgx.ErrNoRows) {
		return Notification{}, ErrNotFound
	}
	return n, err
}

func nullUUID(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// QueueInsertNotification queues the insert of n on b (a repeat of its dedupe key is
// ignored).
func QueueInsertNotification(b *pgx.Batch, n Notification) {
	b.Queue(insertNotificationSQL, insertNotificationArgs(n)...)
}

// QueueMarkWithdrawn queues MarkWithdrawn on b.
func QueueMarkWithdrawn(b *pgx.Batch, id string, at time.Time) {
	b.Queue(markWithdrawnSQL, id, at)
}

// InsertNotification stores n unless a notification with its dedupe key exists; inserted
// says which. The payload is stored exactly as it will be sent.
func InsertNotification(ctx context.Context, tx pgx.Tx, n Notification) (bool, error) {
	tag, err := tx.Exec(ctx, insertNotificationSQL, insertNotificationArgs(n)...)
	if err != nil {
		return false, fmt.Errorf("store notification %s for %s: %w", n.DedupeKey, n.ReferralID, err)
	}
	return tag.RowsAffected() == 1, nil
}

const insertNotificationSQL = `INSERT INTO notify.notifications (id, dedupe_key, referral_id, reference, partnership, agency, role,
			kind, channel, decision_id, decision_version, rag, priority, payload, payload_sha256, fields, purpose, lawful_basis,
			consent_status, consent_reason, referrer_withheld, state, next_attempt_at, created_at, ack_due, escalates_id,
			routed_from, withdraws_id, last_error, authorised_by)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24,
			$25, $26, $27, $28, $29, $30)
		ON CONFLICT (dedupe_key) DO NOTHING`

func insertNotificationArgs(n Notification) []any {
	return []any{n.ID, n.DedupeKey, n.ReferralID, n.Reference, n.Partnership, n.Agency, n.Role, n.Kind, n.Channel, nullUUID(n.DecisionID),
		n.DecisionVersion, n.RAG, n.Priority, n.Payload, n.PayloadSHA256, n.Fields, n.Purpose, n.LawfulBasis, n.ConsentStatus,
		n.ConsentReason, n.ReferrerWithheld, n.State, n.NextAttemptAt, n.CreatedAt, n.AckDue, nullUUID(n.EscalatesID),
		n.RoutedFrom, nullUUID(n.WithdrawsID), n.LastError, n.AuthorisedBy}
}

const markWithdrawnSQL = `UPDATE notify.notifications SET withdrawn_at = $2,
		state = CASE WHEN state = 'PENDING' THEN 'FAILED' ELSE state END,
		last_error = CASE WHEN state = 'PENDING' THEN 'withdrawn before delivery' ELSE last_error END
	WHERE id = $1 AND withdrawn_at IS NULL`

// MarkWithdrawn records that an override withdrew notification id; an undelivered one is
// not sent at all.
func MarkWithdrawn(ctx context.Context, tx pgx.Tx, id string, at time.Time) error {
	_, err := tx.Exec(ctx, markWithdrawnSQL, id, at)
	if err != nil {
		return fmt.Errorf("withdraw notification %s: %w", id, err)
	}
	return nil
}

// claimSQL leases due notifications, most urgent first, leaving out the agencies given ($4,
// $5): those with no free sending slot, whose backlog would otherwise fill the claim.
const claimSQL = `UPDATE notify.notifications n SET state = 'SENDING', lease_until = $2, attempts = n.attempts + 1
	FROM (SELECT id AS due_id FROM notify.notifications
		WHERE state IN ('PENDING', 'SENDING') AND next_attempt_at <= $1 AND (state = 'PENDING' OR lease_until < $1)
			AND (partnership, agency) NOT IN (SELECT * FROM unnest($4::text[], $5::text[]))
		ORDER BY priority, next_attempt_at LIMIT $3 FOR UPDATE SKIP LOCKED) due
	WHERE n.id = due.due_id
	RETURNING ` + notificationColumns

// Claim leases up to limit notifications due at now for delivery, most urgent first: pending
// ones, and sending ones whose lease ran out (their sender died), except those of the agencies
// skipped (partnership and agency ids, pairwise). Each claim counts an attempt. Rows locked
// by another sender are skipped.
func Claim(ctx context.Context, tx pgx.Tx, now time.Time, lease time.Duration, limit int, skipPartnerships, skipAgencies []string) ([]Notification, error) {
	if len(skipPartnerships) != len(skipAgencies) {
		return nil, fmt.Errorf("claim notifications: %d partnerships for %d agencies to skip", len(skipPartnerships), len(skipAgencies))
	}
	rows, err := tx.Query(ctx, claimSQL, now, now.Add(lease), limit, skipPartnerships, skipAgencies)
	if err != nil {
		return nil, fmt.Errorf("claim notifications: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Notification, error) { return scanNotification(r) })
}

// Unclaim gives back notifications claimed in tx that will not be attempted: pending again,
// due as they were, with the claim's attempt uncounted.
func Unclaim(ctx context.Context, tx pgx.Tx, ids []string) error {
	if _, err := tx.Exec(ctx, `UPDATE notify.notifications SET state = 'PENDING', lease_until = NULL, attempts = attempts - 1
		WHERE id = ANY($1::uuid[]) AND state = 'SENDING'`, ids); err != nil {
		return fmt.Errorf("give back %d claimed notifications: %w", len(ids), err)
	}
	return nil
}

// SetAside gives back notifications claimed in tx whose attempt cannot start, each due
// again at its time in due with its reason as the last error: pending, with the claim's
// attempt uncounted, so that the attempt that does start is the first and is announced.
func SetAside(ctx context.Context, tx pgx.Tx, ids []string, due []time.Time, reasons []string) error {
	if len(ids) != len(due) || len(ids) != len(reasons) {
		return fmt.Errorf("set aside notifications: %d ids, %d due times and %d reasons", len(ids), len(due), len(reasons))
	}
	if _, err := tx.Exec(ctx, `UPDATE notify.notifications n SET state = 'PENDING', lease_until = NULL, attempts = n.attempts - 1,
			next_attempt_at = a.due, last_error = a.reason
		FROM unnest($1::uuid[], $2::timestamptz[], $3::text[]) AS a(id, due, reason)
		WHERE n.id = a.id AND n.state = 'SENDING'`, ids, due, reasons); err != nil {
		return fmt.Errorf("set aside %d claimed notifications: %w", len(ids), err)
	}
	return nil
}

// Result is the outcome of one delivery attempt.
type Result struct {
	OK     bool
	Detail string
	// Final: no more attempts (delivered, permanent failure or attempts exhausted).
	Final bool
	// Retry is when to try again when not OK and not Final.
	Retry time.Time
}

// Recorded is one attempt result to store, with the event that announces it (none for a
// failure that will be retried).
type Recorded struct {
	N      Notification
	At     time.Time
	Result Result
	// EventID, Subject and Event are the outbox row; Subject "" writes none.
	EventID, Subject string
	Event            []byte
}

// recordSQL stores one attempt in one statement, so many fit in one round trip: it moves the
// notification on only if this sender still holds it (state SENDING at this attempt count;
// a sender whose lease ran out finds the row claimed again and records nothing), and adds
// the attempt and its event only then. It returns 1 when recorded.
const recordSQL = `WITH upd AS (
	UPDATE notify.notifications SET
		state = CASE WHEN $3 THEN (CASE WHEN acknowledged_at IS NULL THEN 'DELIVERED' ELSE 'ACKNOWLEDGED' END)
			WHEN $4 THEN 'FAILED' ELSE 'PENDING' END,
		delivered_at = CASE WHEN $3 THEN $5 ELSE delivered_at END,
		lease_until = NULL,
		last_error = CASE WHEN $3 THEN '' ELSE $6 END,
		next_attempt_at = CASE WHEN $3 OR $4 THEN next_attempt_at ELSE $7 END
	WHERE id = $1 AND state = 'SENDING' AND attempts = $2
	RETURNING id),
att AS (
	INSERT INTO notify.attempts (notification_id, number, at, ok, result)
	SELECT id, $2, $5, $3, $6 FROM upd ON CONFLICT DO NOTHING),
ob AS (
	INSERT INTO notify.outbox (event_id, subject, payload)
	SELECT $8, $9, $10 FROM upd WHERE $9 <> '')
SELECT count(*) FROM upd`

// RecordAttempts stores attempt results in one transaction and one round trip, and says
// which were recorded (false: the row was no longer that sender's).
func RecordAttempts(ctx context.Context, tx pgx.Tx, rs []Recorded) ([]bool, error) {
	b := &pgx.Batch{}
	for _, r := range rs {
		var eventID any
		if r.Subject != "" {
			eventID = r.EventID
		}
		b.Queue(recordSQL, r.N.ID, r.N.Attempts, r.Result.OK, r.Result.Final && !r.Result.OK, r.At, r.Result.Detail,
			r.Result.Retry, eventID, r.Subject, r.Event)
	}
	br := tx.SendBatch(ctx, b)
	out := make([]bool, len(rs))
	for i, r := range rs {
		var n int
		if err := br.QueryRow().Scan(&n); err != nil {
			br.Close()
			return nil, fmt.Errorf("record attempt %d of notification %s: %w", r.N.Attempts, r.N.ID, err)
		}
		out[i] = n == 1
	}
	if err := br.Close(); err != nil {
		return nil, fmt.Errorf("record attempts: %w", err)
	}
	return out, nil
}

// Attempt is one recorded delivery attempt.
type Attempt struct {
	Number int
	At     time.Time
	OK     bool
	Result string
}

// Attempts lists a notification's attempts in order.
func (s *Store) Attempts(ctx context.Context, id string) ([]Attempt, error) {
	rows, err := s.pool.Query(ctx, `SELECT number, at, ok, result FROM notify.attempts WHERE notification_id = $1 ORDER BY number`, id)
	if err != nil {
		return nil, fmt.Errorf("list attempts of %s: %w", id, err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Attempt, error) {
		var a Attempt
		err := r.Scan(&a.Number, &a.At, &a.OK, &a.Result)
		return a, err
	})
}

// DueEscalations locks up to limit notifications whose acknowledgement is overdue at now
// and that have not been escalated, acknowledged or withdrawn.
func DueEscalations(ctx context.Context, tx pgx.Tx, now time.Time, limit int, skip []string) ([]Notification, error) {
	rows, err := tx.Query(ctx, `SELECT `+notificationColumns+` FROM notify.notifications
		WHERE ack_due IS NOT NULL AND acknowledged_at IS NULL AND escalated_at IS NULL AND withdrawn_at IS NULL AND ack_due <= $1
			AND id <> ALL($3::uuid[])
		ORDER BY ack_due LIMIT $2 FOR UPDATE SKIP LOCKED`, now, limit, skip)
	if err != nil {
		return nil, fmt.Errorf("find overdue acknowledgements: %w", err)
	}
	due, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Notification, error) { return scanNotification(r) })
	if err != nil || len(due) >= limit {
		return due, err
	}
	// An information request acknowledged on receipt but not answered by its deadline is
	// overdue too: the agency was asked for an answer, not a receipt.
	rows, err = tx.Query(ctx, `SELECT `+notificationColumns+` FROM notify.notifications
		WHERE kind = 'INFORMATION_REQUEST' AND ack_due IS NOT NULL AND answered_at IS NULL AND acknowledged_at IS NOT NULL
		AND escalated_at IS NULL AND withdrawn_at IS NULL AND ack_due <= $1 AND id <> ALL($3::uuid[])
		ORDER BY ack_due LIMIT $2 FOR UPDATE SKIP LOCKED`, now, limit-len(due), skip)
	if err != nil {
		return nil, fmt.Errorf("find unanswered information requests: %w", err)
	}
	unanswered, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Notification, error) { return scanNotification(r) })
	return append(due, unanswered...), err
}

// UnacknowledgedOfDecision returns, locked, the action notifications of one decision version
// of a referral still awaiting acknowledgement and not yet escalated or withdrawn (those
// another sweep holds are skipped: it escalates them).
func UnacknowledgedOfDecision(ctx context.Context, tx pgx.Tx, referralID, decisionID string, version int64) ([]Notification, error) {
	rows, err := tx.Query(ctx, `SELECT `+notificationColumns+` FROM notify.notifications
		WHERE referral_id = $1 AND decision_id = $2 AND decision_version = $3 AND kind = 'ACTION' AND ack_due IS NOT NULL
		AND acknowledged_at IS NULL AND escalated_at IS NULL AND withdrawn_at IS NULL
		ORDER BY ack_due, agency FOR UPDATE SKIP LOCKED`, referralID, decisionID, version)
	if err != nil {
		return nil, fmt.Errorf("find unacknowledged notifications of decision %s: %w", decisionID, err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Notification, error) { return scanNotification(r) })
}

// MarkAnswered records that the information request behind notification id was answered;
// the first answer stands.
func MarkAnswered(ctx context.Context, tx pgx.Tx, id string, at time.Time) error {
	if _, err := tx.Exec(ctx, `UPDATE notify.notifications SET answered_at = $2 WHERE id = $1 AND answered_at IS NULL`, id, at); err != nil {
		return fmt.Errorf("mark notification %s answered: %w", id, err)
	}
	return nil
}

// MarkEscalated records that notification id was escalated at.
func MarkEscalated(ctx context.Context, tx pgx.Tx, id string, at time.Time) error {
	if _, err := tx.Exec(ctx, `UPDATE notify.notifications SET escalated_at = $2 WHERE id = $1`, id, at); err != nil {
		return fmt.Errorf("mark notification %s escalated: %w", id, err)
	}
	return nil
}

// Acknowledge records an acknowledgement; already is true when one was recorded before (the
// first stands).
func Acknowledge(ctx context.Context, tx pgx.Tx, id string, at time.Time, by, note string) (n Notification, already bool, err error) {
	n, err = scanNotification(tx.QueryRow(ctx, `SELECT `+notificationColumns+` FROM notify.notifications WHERE id = $1 FOR UPDATE`, id))
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return n, false, ErrNotFound
		}
		return n, false, fmt.Errorf("read notification %s: %w", id, err)
	}
	if n.AcknowledgedAt != nil {
		return n, true, nil
	}
	n, err = scanNotification(tx.QueryRow(ctx, `UPDATE notify.notifications SET acknowledged_at = $2, acknowledged_by = $3, ack_note = $4,
			state = CASE WHEN state = 'DELIVERED' THEN 'ACKNOWLEDGED' ELSE state END
		WHERE id = $1 RETURNING `+notificationColumns, id, at, by, note))
	if err != nil {
		return n, false, fmt.Errorf("acknowledge notification %s: %w", id, err)
	}
	return n, false, nil
}

// Retry puts a failed notification back for delivery now, with a fresh attempt budget
// (attempt numbers go on, so the history keeps every attempt).
func Retry(ctx context.Context, tx pgx.Tx, id string, now time.Time) (Notification, error) {
	n, err := scanNotification(tx.QueryRow(ctx, `UPDATE notify.notifications SET state = 'PENDING', retry_base = attempts, next_attempt_at = $2,
			last_error = 'retried: ' || last_error
		WHERE id = $1 AND state = 'FAILED' AND withdrawn_at IS NULL RETURNING `+notificationColumns, id, now))
	if errors.Is(err, ErrNotFound) {
		if _, gerr := scanNotification(tx.QueryRow(ctx, `SELECT `+notificationColumns+` FROM notify.notifications WHERE id = $1`, id)); gerr == nil {
			return Notification{}, ErrState
		}
		return Notification{}, ErrNotFound
	}
	if err != nil {
		return Notification{}, fmt.Errorf("retry notification %s: %w", id, err)
	}
	return n, nil
}

// Get reads one notification.
func (s *Store) Get(ctx context.Context, id string) (Notification, error) {
	n, err := scanNotification(s.pool.QueryRow(ctx, `SELECT `+notificationColumns+` FROM notify.notifications WHERE id = $1`, id))
	if err != nil && !errors.Is(err, ErrNotFound) {
		return Notification{}, fmt.Errorf("read notification %s: %w", id, err)
	}
	return n, err
}

// Filter selects notifications to list.
type Filter struct {
	ReferralID, Agency, State string
	// Partnerships, when not nil, limits the list to those partnerships.
	Partnerships []string
	Overdue      bool
	Now          time.Time
	// After is the keyset cursor: (priority, created_at, id) of the last row of the previous page.
	AfterPriority int
	AfterCreated  time.Time
	AfterID       string
	Limit         int
}

// List returns notifications matching f, most urgent first, then oldest.
func (s *Store) List(ctx context.Context, f Filter) ([]Notification, error) {
	where := []string{"true"}
	args := []any{}
	arg := func(v any) string { args = append(args, v); return fmt.Sprintf("$%d", len(args)) }
	if f.ReferralID != "" {
		where = append(where, "referral_id = "+arg(f.ReferralID))
	}
	if f.Agency != "" {
		where = append(where, "agency = "+arg(f.Agency))
	}
	if f.State != "" {
		where = append(where, "state = "+arg(f.State))
	}
	if f.Partnerships != nil {
		where = append(where, "partnership = ANY("+arg(f.Partnerships)+"::text[])")
	}
	if f.Overdue {
		where = append(where, "ack_due <= "+arg(f.Now)+" AND acknowledged_at IS NULL AND withdrawn_at IS NULL")
	}
	if f.AfterID != "" {
		where = append(where, fmt.Sprintf("(priority, created_at, id) > (%s, %s, %s)", arg(f.AfterPriority), arg(f.AfterCreated), arg(f.AfterID)))
	}
	q := `SELECT ` + notificationColumns + ` FROM notify.notifications WHERE ` + strings.Join(where, " AND ") +
		` ORDER BY priority, created_at, id LIMIT ` + arg(f.Limit)
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list notifications: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Notification, error) { return scanNotification(r) })
}

// Backlog counts, through q, notifications waiting for delivery, failed, and with an overdue
// acknowledgement at now, for the metrics.
func Backlog(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, now time.Time) (pending, failed, overdue int64, err error) {
	// Three counts, each over its own partial index (notifications_due, notifications_failed,
	// notifications_overdue): as one scan with an OR the planner read the whole table.
	err = q.QueryRow(ctx, `SELECT
			(SELECT count(*) FROM notify.notifications WHERE state IN ('PENDING', 'SENDING')),
			(SELECT count(*) FROM notify.notifications WHERE state = 'FAILED' AND withdrawn_at IS NULL),
			(SELECT count(*) FROM notify.notifications
				WHERE ack_due <= $1 AND ack_due IS NOT NULL AND acknowledged_at IS NULL AND withdrawn_at IS NULL)`, now).
		Scan(&pending, &failed, &overdue)
	if err != nil {
		err = fmt.Errorf("count notification backlog: %w", err)
	}
	return
}

// GetIn reads one notification inside tx, locking it.
func GetIn(ctx context.Context, tx pgx.Tx, id string) (Notification, error) {
	n, err := scanNotification(tx.QueryRow(ctx, `SELECT `+notificationColumns+` FROM notify.notifications WHERE id = $1 FOR UPDATE`, id))
	if err != nil && !errors.Is(err, ErrNotFound) {
		return Notification{}, fmt.Errorf("read notification %s: %w", id, err)
	}
	return n, err
}

// DecisionState is what handling a decision event reads about its referral.
type DecisionState struct {
	Applied      AppliedDecision
	AppliedFound bool
	Referral     Referral
	// ReferralFound is false when the decision overtook its referral.
	ReferralFound bool
	Active        []Notification
}

// ReadDecisionState locks the referral's notifications against concurrent decision events
// and reads the applied decision, the referral and the active action notifications, all in
// one round trip.
func ReadDecisionState(ctx context.Context, tx pgx.Tx, referralID string) (DecisionState, error) {
	var st DecisionState
	b := &pgx.Batch{}
	b.Queue(`SELECT pg_advisory_xact_lock(hashtext('mash.notify.' || $1))`, referralID)
	b.Queue(`SELECT decision_id::text, version, agencies, level, rag, status, decision FROM notify.decisions WHERE referral_id = $1`, referralID)
	b.Queue(`SELECT id::text, reference, partnership, agency, agency_kind, received_at, referral FROM notify.referrals WHERE id = $1`, referralID)
	b.Queue(`SELECT `+notificationColumns+` FROM notify.notifications
		WHERE referral_id = $1 AND kind = 'ACTION' AND withdrawn_at IS NULL ORDER BY agency, created_at`, referralID)
	br := tx.SendBatch(ctx, b)
	defer br.Close()
	if _, err := br.Exec(); err != nil {
		return st, fmt.Errorf("lock referral %s: %w", referralID, err)
	}
	a := &st.Applied
	err := br.QueryRow().Scan(&a.DecisionID, &a.Version, &a.Agencies, &a.Level, &a.RAG, &a.Status, &a.Decision)
	switch {
	case err == nil:
		st.AppliedFound = true
	case !errors.Is(err, pgx.ErrNoRows):
		return st, fmt.Errorf("read applied decision of %s: %w", referralID, err)
	}
	r := &st.Referral
	err = br.QueryRow().Scan(&r.ID, &r.Reference, &r.Partnership, &r.Agency, &r.AgencyKind, &r.ReceivedAt, &r.Proto)
	switch {
	case err == nil:
		st.ReferralFound = true
	case !errors.Is(err, pgx.ErrNoRows):
		return st, fmt.Errorf("read referral %s: %w", referralID, err)
	}
	rows, err := br.Query()
	if err != nil {
		return st, fmt.Errorf("list action notifications of %s: %w", referralID, err)
	}
	if st.Active, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (Notification, error) { return scanNotification(r) }); err != nil {
		return st, fmt.Errorf("list action notifications of %s: %w", referralID, err)
	}
	return st, br.Close()
}

// ResearchKey is the dedupe key of the notification of information request id.
func ResearchKey(requestID string) string { return "research:" + requestID }

// ResearchNotifications returns the INFORMATION_REQUEST notifications of a request addressed
// to agency: the original, or the copy a retry re-addressed to it from an unroutable one.
func ResearchNotifications(ctx context.Context, q Querier, requestID, agency string) ([]Notification, error) {
	keys := []string{ResearchKey(requestID), ResearchKey(requestID) + ":unroutable:to:" + agency}
	rows, err := q.Query(ctx, `SELECT `+notificationColumns+` FROM notify.notifications
		WHERE dedupe_key = ANY($1) AND agency = $2 AND kind = 'INFORMATION_REQUEST' ORDER BY created_at`, keys, agency)
	if err != nil {
		return nil, fmt.Errorf("read notifications of information request %s: %w", requestID, err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Notification, error) { return scanNotification(r) })
}

// ResearchRequested reports whether notify has recorded information request id at all, to
// any agency (or as unroutable).
func ResearchRequested(ctx context.Context, q Querier, requestID string) (bool, error) {
	var found bool
	err := q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM notify.notifications WHERE dedupe_key = ANY($1))`,
		[]string{ResearchKey(requestID), ResearchKey(requestID) + ":unroutable"}).Scan(&found)
	if err != nil {
		return false, fmt.Errorf("find information request %s: %w", requestID, err)
	}
	return found, nil
}

// EncompassOf returns, locked, a referral's Operation Encompass notices not withdrawn, so a
// decision can fold one not yet sent into its message to the same school. The lock waits
// for a sender's claim to commit, so a notice read as unsent here is not being sent.
func EncompassOf(ctx context.Context, tx pgx.Tx, referralID string) ([]Notification, error) {
	rows, err := tx.Query(ctx, `SELECT `+notificationColumns+` FROM notify.notifications
		WHERE referral_id = $1 AND kind = 'ENCOMPASS' AND withdrawn_at IS NULL ORDER BY agency FOR UPDATE`, referralID)
	if err != nil {
		return nil, fmt.Errorf("list Encompass notices of %s: %w", referralID, err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Notification, error) { return scanNotification(r) })
}

// QueueMarkMerged queues marking notification id as merged into notification into: it is
// never sent (into carries its content) and awaits no acknowledgement of its own.
func QueueMarkMerged(b *pgx.Batch, id, into string, at time.Time) {
	b.Queue(`UPDATE notify.notifications SET withdrawn_at = $2, ack_due = NULL,
			state = CASE WHEN state = 'PENDING' THEN 'FAILED' ELSE state END,
			last_error = CASE WHEN state = 'PENDING' THEN 'merged into notification ' || $3 || ': one message per agency per decision' ELSE last_error END
		WHERE id = $1 AND withdrawn_at IS NULL`, id, at, into)
}

// OpenEncompassOf returns, locked, a referral's Encompass notices still awaiting
// acknowledgement and not yet escalated or withdrawn (those another sweep holds are skipped).
func OpenEncompassOf(ctx context.Context, tx pgx.Tx, referralID string) ([]Notification, error) {
	rows, err := tx.Query(ctx, `SELECT `+notificationColumns+` FROM notify.notifications
		WHERE referral_id = $1 AND kind = 'ENCOMPASS' AND ack_due IS NOT NULL
		AND acknowledged_at IS NULL AND escalated_at IS NULL AND withdrawn_at IS NULL
		ORDER BY ack_due, agency FOR UPDATE SKIP LOCKED`, referralID)
	if err != nil {
		return nil, fmt.Errorf("find unacknowledged Encompass notices of %s: %w", referralID, err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Notification, error) { return scanNotification(r) })
}

// LatestOpenAction returns the newest action notification of a referral still awaiting
// acknowledgement and not escalated or withdrawn; found is false when there is none.
func LatestOpenAction(ctx context.Context, q Querier, referralID string) (n Notification, found bool, err error) {
	n, err = scanNotification(q.QueryRow(ctx, `SELECT `+notificationColumns+` FROM notify.notifications
		WHERE referral_id = $1 AND kind = 'ACTION' AND ack_due IS NOT NULL
		AND acknowledged_at IS NULL AND escalated_at IS NULL AND withdrawn_at IS NULL
		ORDER BY decision_version DESC, ack_due LIMIT 1`, referralID))
	switch {
	case err == nil:
		return n, true, nil
	case errors.Is(err, ErrNotFound):
		return Notification{}, false, nil
	}
	return Notification{}, false, fmt.Errorf("find open action notification of %s: %w", referralID, err)
}

// EraseCase blanks, within tx, what notify keeps of referralID's case. The referral as
// intake accepted it is deleted; the decision as last acted on is dropped; every
// notification's body, acknowledgement note and consent reason are blanked, and one not yet
// delivered is cancelled for good (FAILED, withdrawn, so neither the worker nor a retry
// sends it); the reason for sharing without consent is blanked. Ids, agencies, kinds,
// states, digests and times stay: the record of what was shared with whom and when.
// Erasing it again changes nothing.
func EraseCase(ctx context.Context, tx pgx.Tx, referralID string, now time.Time) error {
	if _, err := uuid.Parse(referralID); err != nil {
		return nil // not a referral notify could hold
	}
	stmts := []string{
		`DELETE FROM notify.referrals WHERE id = $1`,
		`UPDATE notify.decisions SET decision = NULL WHERE referral_id = $1`,
		`UPDATE notify.sharing SET reason = '' WHERE referral_id = $1`,
		`UPDATE notify.notifications SET payload = '', ack_note = '', consent_reason = '',
			state = CASE WHEN state IN ('PENDING', 'SENDING') THEN 'FAILED' ELSE state END,
			last_error = CASE WHEN state IN ('PENDING', 'SENDING') THEN 'cancelled: the case was erased' ELSE last_error END,
			lease_until = NULL, withdrawn_at = coalesce(withdrawn_at, $2)
		WHERE referral_id = $1`,
	}
	for i, q := range stmts {
		args := []any{referralID}
		if i == 3 {
			args = append(args, now)
		}
		if _, err := tx.Exec(ctx, q, args...); err != nil {
			return fmt.Errorf("erase case %s: %w", referralID, err)
		}
	}
	return nil
}

// AgencyMessage is one message notify sent on an agency's NATS subject: where it rests.
type AgencyMessage struct {
	Stream string
	Seq    uint64
}

// RecordAgencyMessage stores where the message of notification (about referralID) rests on
// the bus, as of at (the service's clock; PruneAgencyRecords compares with it). A message
// stored twice (a re-send the stream recognised) is recorded once.
func RecordAgencyMessage(ctx context.Context, tx pgx.Tx, notificationID, referralID string, m AgencyMessage, at time.Time) error {
	if _, err := tx.Exec(ctx, `INSERT INTO notify.agency_messages (stream, seq, referral_id, notification_id, sent_at) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT DO NOTHING`, m.Stream, int64(m.Seq), referralID, notificationID, at); err != nil {
		return fmt.Errorf("record agency message %s seq %d of notification %s: %w", m.Stream, m.Seq, notificationID, err)
	}
	return nil
}

// AgencyMessages lists where the messages sent on agencies' NATS subjects about referralID
// rest, oldest first.
func AgencyMessages(ctx context.Context, tx pgx.Tx, referralID string) ([]AgencyMessage, error) {
	if _, err := uuid.Parse(referralID); err != nil {
		return nil, nil // not a referral notify could hold
	}
	rows, err := tx.Query(ctx, `SELECT stream, seq FROM notify.agency_messages WHERE referral_id = $1 ORDER BY stream, seq`, referralID)
	if err != nil {
		return nil, fmt.Errorf("list agency messages of %s: %w", referralID, err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (AgencyMessage, error) {
		var m AgencyMessage
		var seq int64
		err := r.Scan(&m.Stream, &seq)
		m.Seq = uint64(seq)
		return m, err
	})
}

// ForgetAgencyMessages deletes the records of referralID's agency messages, once they are
// deleted from the bus.
func ForgetAgencyMessages(ctx context.Context, tx pgx.Tx, referralID string) error {
	if _, err := uuid.Parse(referralID); err != nil {
		return nil
	}
	if _, err := tx.Exec(ctx, `DELETE FROM notify.agency_messages WHERE referral_id = $1`, referralID); err != nil {
		return fmt.Errorf("forget agency messages of %s: %w", referralID, err)
	}
	return nil
}
