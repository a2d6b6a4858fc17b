package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/mash-hub/mash/services/notify/directory"
)

// Proposal states.
const (
	ProposalPending  = "PENDING"
	ProposalApproved = "APPROVED"
	ProposalRejected = "REJECTED"
	ProposalExpired  = "EXPIRED"
)

// ErrPendingExists: the agency already has a pending change.
var ErrPendingExists = errors.New("the agency already has a pending change")

// FieldChange is one field of an entry before and after a proposed change.
type FieldChange struct {
	Field  string `json:"field"`
	Before string `json:"before"`
	After  string `json:"after"`
}

// Proposal is a change to where an agency's notifications go, waiting for (or past) a
// second manager's decision.
type Proposal struct {
	ID, Partnership, Agency, State string
	// Proposed is the entry as it will stand; its Secret is never set here.
	Proposed  directory.Agency
	Changes   []FieldChange
	NewAgency bool
	// SealedSecret is a new secret sealed for this proposal (ProposalSecretAAD), or nil.
	SealedSecret                          []byte
	Reason, ProposedBy, ProposedByRole    string
	ProposedFrom                          string
	ProposedAt, ExpiresAt                 time.Time
	DecidedBy, DecidedByRole, DecidedFrom string
	DecidedAt                             *time.Time
	DecisionReason, NoticeID, NoticeState string
}

// RotatesSecret reports whether the proposal gives (or gave) the agency a new secret. The
// sealed secret itself is dropped once the proposal is decided.
func (p Proposal) RotatesSecret() bool {
	return slices.ContainsFunc(p.Changes, func(c FieldChange) bool { return c.Field == "secret" })
}

// ProposalSecretAAD binds a proposal's sealed secret to the proposal.
func ProposalSecretAAD(id string) string { return "notify.directory_proposals/" + id }

// entry is the JSON form of a directory entry in a proposal: every field but the secret.
type entry struct {
	Partnership string   `json:"partnership"`
	ID          string   `json:"id"`
	Name        string   `json:"name"`
	Roles       []string `json:"roles"`
	Channel     string   `json:"channel"`
	URL         string   `json:"url"`
	Email       string   `json:"email"`
	HoursStart  string   `json:"hoursStart"`
	HoursEnd    string   `json:"hoursEnd"`
	OutOfHours  string   `json:"outOfHours"`
	Concurrency int      `json:"concurrency"`
	Schools     []string `json:"schools"`
	NameCy      string   `json:"nameCy,omitempty"`
	Language    string   `json:"language,omitempty"`
}

func entryOf(a directory.Agency) entry {
	return entry{Partnership: a.Partnership, ID: a.ID, Name: a.Name, Roles: a.Roles, Channel: a.Channel, URL: a.URL, Email: a.Email,
		HoursStart: a.HoursStart, HoursEnd: a.HoursEnd, OutOfHours: a.OutOfHours, Concurrency: a.Concurrency, Schools: a.Schools,
		NameCy: a.NameCy, Language: a.Language}
}

func (e entry) agency() directory.Agency {
	return directory.Agency{Partnership: e.Partnership, ID: e.ID, Name: e.Name, Roles: e.Roles, Channel: e.Channel, URL: e.URL, Email: e.Email,
		HoursStart: e.HoursStart, HoursEnd: e.HoursEnd, OutOfHours: e.OutOfHours, Concurrency: e.Concurrency, Schools: e.Schools,
		NameCy: e.NameCy, Language: e.Language}
}

const proposalColumns = `p.id::text, p.partnership, p.agency, p.state, p.proposed, p.changes, p.new_agency, p.secret_sealed, p.reason,
	p.proposed_by, p.proposed_by_role, p.proposed_from, p.proposed_at, p.expires_at, p.decided_by, p.decided_by_role, p.decided_from,
	p.decided_at, p.decision_reason, coalesce(p.notice_id::text, ''), coalesce(n.state, '')`

const proposalFrom = ` FROM notify.directory_proposals p LEFT JOIN notify.contact_notices n ON n.id = p.notice_id`

func scanProposal(r pgx.Row) (Proposal, error) {
	var p Proposal
	var proposed, changes []byte
	err := r.Scan(&p.ID, &p.Partnership, &p.Agency, &p.State, &proposed, &changes, &p.NewAgency, &p.SealedSecret, &p.Reason,
		&p.ProposedBy, &p.ProposedByRole, &p.ProposedFrom, &p.ProposedAt, &p.ExpiresAt, &p.DecidedBy, &p.DecidedByRole, &p.DecidedFrom,
		&p.DecidedAt, &p.DecisionReason, &p.NoticeID, &p.NoticeState)
	if errors.Is(err, pgx.ErrNoRows) {
		return Proposal{}, ErrNotFound
	}
	if err != nil {
		return Proposal{}, err
	}
	var e entry
	if err := json.Unmarshal(proposed, &e); err != nil {
		return Proposal{}, fmt.Errorf("proposal %s: entry: %w", p.ID, err)
	}
	p.Proposed = e.agency()
	if err := json.Unmarshal(changes, &p.Changes); err != nil {
		return Proposal{}, fmt.Errorf("proposal %s: changes: %w", p.ID, err)
	}
	return p, nil
}

// InsertProposal stores a pending proposal. ErrPendingExists when the agency has one.
func InsertProposal(ctx context.Context, tx pgx.Tx, p Proposal) error {
	proposed, err := json.Marshal(entryOf(p.Proposed))
	if err != nil {
		return err
	}
	changes, err := json.Marshal(p.Changes)
	if err != nil {
		return err
	}
	// A savepoint, so losing a race for the agency's one pending change leaves the caller's
	// transaction usable (to read the winner).
	sp, err := tx.Begin(ctx)
	if err != nil {
		return fmt.Errorf("store proposal for %s/%s: %w", p.Partnership, p.Agency, err)
	}
	_, err = sp.Exec(ctx, `INSERT INTO notify.directory_proposals (id, partnership, agency, state, proposed, changes, new_agency,
			secret_sealed, reason, proposed_by, proposed_by_role, proposed_from, proposed_at, expires_at)
		VALUES ($1, $2, $3, 'PENDING', $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
		p.ID, p.Partnership, p.Agency, proposed, changes, p.NewAgency, p.SealedSecret, p.Reason, p.ProposedBy, p.ProposedByRole,
		p.ProposedFrom, p.ProposedAt, p.ExpiresAt)
	if err != nil {
		_ = sp.Rollback(ctx)
		var pg *pgconn.PgError
		if errors.As(err, &pg) && pg.Code == "23505" {
			return ErrPendingExists
		}
		return fmt.Errorf("store proposal for %s/%s: %w", p.Partnership, p.Agency, err)
	}
	if err := sp.Commit(ctx); err != nil {
		return fmt.Errorf("store proposal for %s/%s: %w", p.Partnership, p.Agency, err)
	}
	return nil
}

// PendingProposal reads the agency's pending proposal, if any (ErrNotFound).
func PendingProposal(ctx context.Context, q Querier, partnership, agency string) (Proposal, error) {
	p, err := scanProposal(q.QueryRow(ctx, `SELECT `+proposalColumns+proposalFrom+` WHERE p.partnership = $1 AND p.agency = $2 AND p.state = 'PENDING'`,
		partnership, agency))
	if err != nil && !errors.Is(err, ErrNotFound) {
		return Proposal{}, fmt.Errorf("read pending proposal of %s/%s: %w", partnership, agency, err)
	}
	return p, err
}

// ProposalForUpdate reads a proposal inside tx and locks it.
func ProposalForUpdate(ctx context.Context, tx pgx.Tx, id string) (Proposal, error) {
	p, err := scanProposal(tx.QueryRow(ctx, `SELECT `+proposalColumns+proposalFrom+` WHERE p.id = $1 FOR UPDATE OF p`, id))
	if err != nil && !errors.Is(err, ErrNotFound) {
		return Proposal{}, fmt.Errorf("read proposal %s: %w", id, err)
	}
	return p, err
}

// GetProposal reads a proposal.
func GetProposal(ctx context.Context, q Querier, id string) (Proposal, error) {
	p, err := scanProposal(q.QueryRow(ctx, `SELECT `+proposalColumns+proposalFrom+` WHERE p.id = $1`, id))
	if err != nil && !errors.Is(err, ErrNotFound) {
		return Proposal{}, fmt.Errorf("read proposal %s: %w", id, err)
	}
	return p, err
}

// Decision is the outcome of a proposal: who decided, in what role, from where, and why.
type Decision struct {
	State, By, Role, From, Reason, NoticeID string
	At                                      time.Time
}

// DecideProposal records the decision on a pending proposal; ErrState when it is no longer
// pending. The sealed secret is dropped: once applied it lives (re-sealed) in the agency's
// row, and a refused one must not be kept.
func DecideProposal(ctx context.Context, tx pgx.Tx, id string, d Decision) error {
	var notice any
	if d.NoticeID != "" {
		notice = d.NoticeID
	}
	tag, err := tx.Exec(ctx, `UPDATE notify.directory_proposals SET state = $2, decided_by = $3, decided_by_role = $4, decided_from = $5,
			decision_reason = $6, decided_at = $7, notice_id = $8, secret_sealed = NULL
		WHERE id = $1 AND state = 'PENDING'`, id, d.State, d.By, d.Role, d.From, d.Reason, d.At, notice)
	if err != nil {
		return fmt.Errorf("decide proposal %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return ErrState
	}
	return nil
}

// ExpireProposals marks pending proposals past their expiry and returns them.
func ExpireProposals(ctx context.Context, tx pgx.Tx, now time.Time) ([]Proposal, error) {
	rows, err := tx.Query(ctx, `WITH expired AS (
			UPDATE notify.directory_proposals SET state = 'EXPIRED', decided_at = $1, secret_sealed = NULL, decided_by = 'notify',
				decided_by_role = 'system', decision_reason = 'expired: no manager decided in time'
			WHERE state = 'PENDING' AND expires_at <= $1 RETURNING *)
		SELECT `+proposalColumns+` FROM expired p LEFT JOIN notify.contact_notices n ON n.id = p.notice_id ORDER BY p.proposed_at`, now)
	if err != nil {
		return nil, fmt.Errorf("expire proposals: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Proposal, error) { return scanProposal(r) })
}

// ProposalFilter selects proposals; empty fields match all.
type ProposalFilter struct {
	Partnership, Agency, State string
	Limit                      int
}

// ListProposals lists proposals, newest first.
func ListProposals(ctx context.Context, q Querier, f ProposalFilter) ([]Proposal, error) {
	if f.Limit <= 0 {
		f.Limit = 200
	}
	rows, err := q.Query(ctx, `SELECT `+proposalColumns+proposalFrom+`
		WHERE ($1 = '' OR p.partnership = $1) AND ($2 = '' OR p.agency = $2) AND ($3 = '' OR p.state = $3)
		ORDER BY p.proposed_at DESC LIMIT $4`, f.Partnership, f.Agency, f.State, f.Limit)
	if err != nil {
		return nil, fmt.Errorf("list proposals: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Proposal, error) { return scanProposal(r) })
}
