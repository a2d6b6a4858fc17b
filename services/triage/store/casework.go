package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// StrategyDiscussion is a recorded multi-agency strategy discussion.
type StrategyDiscussion struct {
	ID, ReferralID      string
	HeldAt, RecordedAt  time.Time
	Participants        []string
	Outcome, RecordedBy string
	Section47           bool
}

// InsertStrategyDiscussion stores a discussion within tx.
func InsertStrategyDiscussion(ctx context.Context, tx pgx.Tx, d StrategyDiscussion) error {
	_, err := tx.Exec(ctx, `INSERT INTO triage.strategy_discussions (id, referral_id, held_at, participants, outcome, section_47,
		recorded_by, recorded_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		d.ID, d.ReferralID, d.HeldAt, nonNil(d.Participants), d.Outcome, d.Section47, d.RecordedBy, d.RecordedAt)
	return wrap(err, "store strategy discussion on %s", d.ReferralID)
}

// StrategyDiscussions returns a case's discussions, oldest first.
func StrategyDiscussions(ctx context.Context, q Querier, referralID string) ([]StrategyDiscussion, error) {
	rows, err := q.Query(ctx, `SELECT id::text, referral_id::text, held_at, recorded_at, participants, outcome, recorded_by, section_47
		FROM triage.strategy_discussions WHERE referral_id = $1 ORDER BY held_at, id`, referralID)
	if err != nil {
		return nil, fmt.Errorf("read strategy discussions of %s: %w", referralID, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (StrategyDiscussion, error) {
		var d StrategyDiscussion
		err := r.Scan(&d.ID, &d.ReferralID, &d.HeldAt, &d.RecordedAt, &d.Participants, &d.Outcome, &d.RecordedBy, &d.Section47)
		return d, err
	})
	return out, wrap(err, "read strategy discussions of %s", referralID)
}

// InformationRequest is one "MASH research" question to an agency.
type InformationRequest struct {
	ID, ReferralID, Partnership, Agency, Question string
	Due, RequestedAt                              time.Time
	State                                         int16
	Answer, RequestedBy, AnsweredBy               string
	AnsweredAt                                    *time.Time
}

const infoColumns = `id::text, referral_id::text, partnership, agency, question, due, requested_at, state, answer, requested_by,
	answered_by, answered_at`

func scanInfo(row pgx.Row) (InformationRequest, error) {
	var r InformationRequest
	err := row.Scan(&r.ID, &r.ReferralID, &r.Partnership, &r.Agency, &r.Question, &r.Due, &r.RequestedAt, &r.State, &r.Answer,
		&r.RequestedBy, &r.AnsweredBy, &r.AnsweredAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return r, ErrNotFound
	}
	return r, err
}

// InsertInformationRequest stores a request within tx.
func InsertInformationRequest(ctx context.Context, tx pgx.Tx, r InformationRequest) error {
	_, err := tx.Exec(ctx, `INSERT INTO triage.information_requests (id, referral_id, partnership, agency, question, due, state,
		requested_by, requested_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		r.ID, r.ReferralID, r.Partnership, r.Agency, r.Question, r.Due, r.State, r.RequestedBy, r.RequestedAt)
	return wrap(err, "store information request on %s", r.ReferralID)
}

// LockInformationRequest returns a request locked until tx ends.
func LockInformationRequest(ctx context.Context, tx pgx.Tx, id string) (InformationRequest, error) {
	if !isUUID(id) {
		return InformationRequest{}, ErrNotFound
	}
	r, err := scanInfo(tx.QueryRow(ctx, `SELECT `+infoColumns+` FROM triage.information_requests WHERE id = $1 FOR UPDATE`, id))
	return r, wrap(err, "lock information request %s", id)
}

// AnswerInformationRequest records an answer within tx.
func AnswerInformationRequest(ctx context.Context, tx pgx.Tx, id, answer, by string, at time.Time) (InformationRequest, error) {
	r, err := scanInfo(tx.QueryRow(ctx, `UPDATE triage.information_requests SET state = 2, answer = $2, answered_by = $3,
		answered_at = $4 WHERE id = $1 RETURNING `+infoColumns, id, answer, by, at))
	return r, wrap(err, "answer information request %s", id)
}

// InfoFilter selects information requests; they are listed by due time.
type InfoFilter struct {
	ReferralID, Agency string
	// Partnerships, when not nil, limits the requests to those partnerships.
	Partnerships []string
	OpenOnly     bool
	Limit        int
	AfterDue     *time.Time
	AfterID      string
}

// ListInformationRequests returns a page of requests, nearest due first.
func ListInformationRequests(ctx context.Context, q Querier, f InfoFilter) ([]InformationRequest, error) {
	var b query
	if f.ReferralID != "" {
		if !isUUID(f.ReferralID) {
			return nil, nil
		}
		b.add("referral_id = " + b.arg(f.ReferralID) + "::uuid")
	}
	if f.Agency != "" {
		b.add("agency = " + b.arg(f.Agency))
	}
	if f.Partnerships != nil {
		b.add("partnership = ANY(" + b.arg(f.Partnerships) + "::text[])")
	}
	if f.OpenOnly {
		b.add("state = 1")
	}
	if f.AfterDue != nil {
		b.add("(due, id) > (" + b.arg(*f.AfterDue) + "::timestamptz, " + b.arg(f.AfterID) + "::uuid)")
	}
	rows, err := q.Query(ctx, `SELECT `+infoColumns+` FROM triage.information_requests WHERE `+b.sql()+
		` ORDER BY due, id LIMIT `+strconv.Itoa(f.Limit), b.args...)
	if err != nil {
		return nil, fmt.Errorf("list information requests: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (InformationRequest, error) { return scanInfo(r) })
	return out, wrap(err, "list information requests")
}

// Disagreement is a professional disagreement with a decision.
type Disagreement struct {
	ID, ReferralID, Partnership, RaisedByAgency, RaisedBy, Reason string
	Stage                                                         int16
	StageDue, RaisedAt                                            time.Time
	Resolved                                                      bool
	Resolution                                                    string
	ResolvedAt                                                    *time.Time
	Version                                                       int64
	Steps                                                         []Step
}

// Step is one stage of a disagreement.
type Step struct {
	Stage          int16
	StartedAt, Due time.Time
	EndedAt        *time.Time
	Outcome, Actor string
}

const disagreementColumns = `id::text, referral_id::text, partnership, raised_by_agency, raised_by, reason, stage, stage_due,
	raised_at, resolved, resolution, resolved_at, version`

func scanDisagreement(row pgx.Row) (Disagreement, error) {
	var d Disagreement
	err := row.Scan(&d.ID, &d.ReferralID, &d.Partnership, &d.RaisedByAgency, &d.RaisedBy, &d.Reason, &d.Stage, &d.StageDue,
		&d.RaisedAt, &d.Resolved, &d.Resolution, &d.ResolvedAt, &d.Version)
	if errors.Is(err, pgx.ErrNoRows) {
		return d, ErrNotFound
	}
	return d, err
}

// InsertDisagreement stores a new disagreement and its first step within tx.
func InsertDisagreement(ctx context.Context, tx pgx.Tx, d Disagreement) error {
	if _, err := tx.Exec(ctx, `INSERT INTO triage.disagreements (id, referral_id, partnership, raised_by_agency, raised_by,
		reason, stage, stage_due, raised_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		d.ID, d.ReferralID, d.Partnership, d.RaisedByAgency, d.RaisedBy, d.Reason, d.Stage, d.StageDue, d.RaisedAt); err != nil {
		return fmt.Errorf("store disagreement on %s: %w", d.ReferralID, err)
	}
	return insertStep(ctx, tx, d.ID, Step{Stage: d.Stage, StartedAt: d.RaisedAt, Due: d.StageDue})
}

func insertStep(ctx context.Context, tx pgx.Tx, id string, s Step) error {
	_, err := tx.Exec(ctx, `INSERT INTO triage.disagreement_steps (disagreement_id, stage, started_at, due) VALUES ($1, $2, $3, $4)`,
		id, s.Stage, s.StartedAt, s.Due)
	return wrap(err, "start stage %d of disagreement %s", s.Stage, id)
}

// LockDisagreement returns a disagreement locked until tx ends, without its steps: every
// change goes through EndStage, which returns them as they stand after.
func LockDisagreement(ctx context.Context, tx pgx.Tx, id string) (Disagreement, error) {
	if !isUUID(id) {
		return Disagreement{}, ErrNotFound
	}
	d, err := scanDisagreement(tx.QueryRow(ctx, `SELECT `+disagreementColumns+` FROM triage.disagreements WHERE id = $1 FOR UPDATE`, id))
	if err != nil {
		return d, wrap(err, "lock disagreement %s", id)
	}
	return d, nil
}

// EndStage closes the current stage with its outcome, and starts next (unless next is 0,
// which resolves the disagreement with resolution). It returns the disagreement as it
// stands after.
func EndStage(ctx context.Context, tx pgx.Tx, d Disagreement, outcome, actor string, at time.Time, next int16, nextDue time.Time, resolution string) (Disagreement, error) {
	if _, err := tx.Exec(ctx, `UPDATE triage.disagreement_steps SET ended_at = $3, outcome = $4, actor = $5
		WHERE disagreement_id = $1 AND stage = $2`, d.ID, d.Stage, at, outcome, actor); err != nil {
		return d, fmt.Errorf("end stage %d of disagreement %s: %w", d.Stage, d.ID, err)
	}
	var row pgx.Row
	if next == 0 {
		row = tx.QueryRow(ctx, `UPDATE triage.disagreements SET resolved = true, resolution = $2, resolved_at = $3,
			version = version + 1 WHERE id = $1 RETURNING `+disagreementColumns, d.ID, resolution, at)
	} else {
		if err := insertStep(ctx, tx, d.ID, Step{Stage: next, StartedAt: at, Due: nextDue}); err != nil {
			return d, err
		}
		row = tx.QueryRow(ctx, `UPDATE triage.disagreements SET stage = $2, stage_due = $3, version = version + 1
			WHERE id = $1 RETURNING `+disagreementColumns, d.ID, next, nextDue)
	}
	out, err := scanDisagreement(row)
	if err != nil {
		return d, wrap(err, "update disagreement %s", d.ID)
	}
	return out, loadSteps(ctx, tx, []*Disagreement{&out})
}

// OverdueDisagreements returns the ids of open disagreements whose stage is past its due
// time and can still escalate, oldest due first.
func OverdueDisagreements(ctx context.Context, q Querier, now time.Time, limit int) ([]string, error) {
	rows, err := q.Query(ctx, `SELECT id::text FROM triage.disagreements WHERE NOT resolved AND stage_due < $1 AND stage < $2
		ORDER BY stage_due LIMIT $3`, now, StagePartnership, limit)
	if err != nil {
		return nil, fmt.Errorf("find overdue disagreements: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	return ids, wrap(err, "find overdue disagreements")
}

// DisagreementFilter selects disagreements: open ones first, nearest deadline first.
type DisagreementFilter struct {
	Partnership, ReferralID, RaisedByAgency string
	// Partnerships, when not nil, limits the disagreements to those partnerships.
	Partnerships []string
	OpenOnly     bool
	Limit        int
	After        *DisagreementKey
}

// DisagreementKey is where a page of disagreements ends.
type DisagreementKey struct {
	Resolved bool
	StageDue time.Time
	ID       string
}

// ListDisagreements returns a page of disagreements with their steps.
func ListDisagreements(ctx context.Context, q Querier, f DisagreementFilter) ([]Disagreement, error) {
	var b query
	if f.Partnership != "" {
		b.add("partnership = " + b.arg(f.Partnership))
	}
	if f.Partnerships != nil {
		b.add("partnership = ANY(" + b.arg(f.Partnerships) + "::text[])")
	}
	if f.ReferralID != "" {
		if !isUUID(f.ReferralID) {
			return nil, nil
		}
		b.add("referral_id = " + b.arg(f.ReferralID) + "::uuid")
	}
	if f.RaisedByAgency != "" {
		b.add("raised_by_agency = " + b.arg(f.RaisedByAgency))
	}
	if f.OpenOnly {
		b.add("NOT resolved")
	}
	if f.After != nil {
		b.add("(resolved, stage_due, id) > (" + b.arg(f.After.Resolved) + "::boolean, " + b.arg(f.After.StageDue) +
			"::timestamptz, " + b.arg(f.After.ID) + "::uuid)")
	}
	rows, err := q.Query(ctx, `SELECT `+disagreementColumns+` FROM triage.disagreements WHERE `+b.sql()+
		` ORDER BY resolved, stage_due, id LIMIT `+strconv.Itoa(f.Limit), b.args...)
	if err != nil {
		return nil, fmt.Errorf("list disagreements: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Disagreement, error) { return scanDisagreement(r) })
	if err != nil {
		return nil, fmt.Errorf("list disagreements: %w", err)
	}
	ptrs := make([]*Disagreement, len(out))
	for i := range out {
		ptrs[i] = &out[i]
	}
	return out, loadSteps(ctx, q, ptrs)
}

func loadSteps(ctx context.Context, q Querier, ds []*Disagreement) error {
	if len(ds) == 0 {
		return nil
	}
	ids := make([]string, len(ds))
	byID := make(map[string]*Disagreement, len(ds))
	for i, d := range ds {
		ids[i], byID[d.ID] = d.ID, d
		d.Steps = nil
	}
	rows, err := q.Query(ctx, `SELECT disagreement_id::text, stage, started_at, due, ended_at, outcome, actor
		FROM triage.disagreement_steps WHERE disagreement_id = ANY($1::uuid[]) ORDER BY disagreement_id, stage`, ids)
	if err != nil {
		return fmt.Errorf("read disagreement steps: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var s Step
		if err := rows.Scan(&id, &s.Stage, &s.StartedAt, &s.Due, &s.EndedAt, &s.Outcome, &s.Actor); err != nil {
			return fmt.Errorf("read disagreement steps: %w", err)
		}
		byID[id].Steps = append(byID[id].Steps, s)
	}
	return rows.Err()
}

// AgencyNotified reports whether agency was sent any notification about the referral: a
// partner agency that was told of a decision may disagree with it.
func AgencyNotified(ctx context.Context, q Querier, referralID, agency string) (bool, error) {
	var ok bool
	err := q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM triage.notices WHERE referral_id = $1 AND agency = $2)`, referralID, agency).Scan(&ok)
	return ok, wrap(err, "check notices of %s", referralID)
}
