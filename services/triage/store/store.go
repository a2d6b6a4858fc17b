// Package store holds all of the triage service's SQL. The service owns the Postgres schema
// "triage": the casework read model (cases, notices) built from other services' events, and
// the casework the hub records itself (claims, strategy discussions, information requests,
// disagreements).
package store

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mash-hub/mash/pkg/db"
	"github.com/mash-hub/mash/pkg/events"
)

// Schema is the Postgres schema the triage service owns.
const Schema = "triage"

//go:embed migrations/*.sql
var migrationFS embed.FS

// Migrations returns the triage service's migrations, outbox and consumer tables included.
func Migrations() ([]db.Migration, error) {
	migs, err := db.LoadMigrations(migrationFS, "migrations")
	if err != nil {
		return nil, err
	}
	// LZ4 for the large values written at every referral, each case's decision (db.PreferLZ4 says why).
	lz4 := db.Migration{Version: 17, Name: "0017_lz4.sql", SQL: db.PreferLZ4("triage.cases", "decision")}
	return append(append(migs, lz4), events.Migrations(Schema)...), nil
}

// ErrNotFound means the row does not exist.
var ErrNotFound = errors.New("not found")

// Store runs the triage service's queries.
type Store struct {
	pool *pgxpool.Pool
}

// New returns a Store over pool.
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// Pool is the pool the store uses, for transactions that span store calls.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Querier is a pool or a transaction.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// InTx runs fn in one transaction, again when Postgres ends it as a deadlock victim
// (db.InTx). Two writers of one child's cases can deadlock: the consumer's batch holds rows
// it projected and waits for the child's lock in the re-referral trigger, while a
// practitioner's claim holds that lock and waits for one of those rows. The consumer retries
// by redelivery; a practitioner should not see the deadlock at all.
func (s *Store) InTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return db.InTx(ctx, s.pool, fn)
}

// Enum numbers the store compares in SQL; they are the protobuf enum numbers.
const (
	StateAwaitingRules    int16 = 1
	StateAwaitingDecision int16 = 2
	StateDecided          int16 = 3
	StateClosed           int16 = 4

	InfoRequested int16 = 1
	InfoAnswered  int16 = 2

	StagePractitioner int16 = 1
	StagePartnership  int16 = 4

	OutcomeNoFurtherAction int16 = 1
)

// Case is one referral as the hub works it.
type Case struct {
	ReferralID, Partnership, ChildID, ChildName string
	ChildAgeYears                               int32
	SourceAgency, SourceKind                    string
	Concerns                                    []string
	Received                                    bool
	State, Level, RecommendedLevel, RAG         int16
	DecisionStatus, Outcome                     int16
	Pathway                                     string
	Agencies                                    []string
	DecisionID                                  string
	DecisionVersion                             int64
	ReceivedAt, DecisionDue, RAGDue             *time.Time
	RecommendedAt, DecidedAt                    *time.Time
	DecidedBy                                   string
	// Assignee is empty when nobody holds the case; a lapsed claim is reported by the
	// queries as it is stored, and callers treat it as free (ClaimLive). A practitioner's
	// own claim has ClaimExpiresAt; a manager's assignment has none: it holds until it is
	// changed (Assigned).
	Assignee       string
	ClaimExpiresAt *time.Time
	OutcomeNote    string
	ClosedAt       *time.Time
	ClosedBy       string
	Version        int64
	// ConsentStatus is the family's consent to sharing (GIVEN, REFUSED, NOT_SOUGHT,
	// WITHDRAWN); Sharing a manager's authorisation to share without it (SharingAt nil:
	// none stands).
	ConsentStatus string
	Sharing       Sharing
	// Reference is the MASH reference people quote; ExternalReference the referring
	// system's own; FamilyGroup the group of siblings the referral was sent with.
	Reference, ExternalReference, FamilyGroup string
	// Lead is the lead professional named after the decision (NamedAt nil: none yet).
	Lead Lead
}

// Lead is the lead professional of a case: an agency, a team and a person, for the child
// (ScopeChild) or the whole family group (ScopeFamilyGroup).
type Lead struct {
	Agency, Team, Person string
	Scope                int16
	NamedBy, NamedByRole string
	NamedAt              *time.Time
}

// Lead professional scopes: the protobuf enum numbers.
const (
	ScopeChild       int16 = 1
	ScopeFamilyGroup int16 = 2
)

// Sharing is a manager's authorisation to share a case without the family's consent.
type Sharing struct {
	Basis, Reason, Ground, By string
	At                        *time.Time
}

// ClaimLive reports whether someone holds the case at now: by an assignment, or by a claim
// that has not lapsed.
func (c Case) ClaimLive(now time.Time) bool {
	return c.Assignee != "" && (c.ClaimExpiresAt == nil || c.ClaimExpiresAt.After(now))
}

// Assigned reports whether a manager assigned the case to its holder: an assignment never
// lapses.
func (c Case) Assigned() bool { return c.Assignee != "" && c.ClaimExpiresAt == nil }

// Overdue reports whether the case is past a due time that still applies: the decision due
// time until a person decides, the RAG due time until the case closes.
func (c Case) Overdue(now time.Time) bool {
	if c.State == StateClosed {
		return false
	}
	if c.RAGDue != nil && c.RAGDue.Before(now) {
		return true
	}
	return c.State != StateDecided && c.DecisionDue != nil && c.DecisionDue.Before(now)
}

const caseColumns = `referral_id::text, partnership, coalesce(child_id::text, ''), child_name, child_age_years, source_agency,
	source_kind, concerns, received, state, level, recommended_level, rag, decision_status, outcome, pathway, agencies,
	coalesce(decision_id::text, ''), decision_version, received_at, decision_due, rag_due, recommended_at, decided_at,
	decided_by, coalesce(assignee, ''), claim_expires_at, outcome_note, closed_at, closed_by, version, consent_status,
	coalesce(sharing_basis, ''), coalesce(sharing_reason, ''), coalesce(sharing_ground, ''), coalesce(sharing_by, ''), sharing_at,
	reference, external_reference, family_group,
	lead_agency, lead_team, lead_person, lead_scope, lead_named_by, lead_named_by_role, lead_named_at`

func scanCase(row pgx.Row) (Case, error) {
	var c Case
	err := row.Scan(caseTargets(&c)...)
	if errors.Is(err, pgx.ErrNoRows) {
		return Case{}, ErrNotFound
	}
	return c, err
}

func collectCases(rows pgx.Rows, err error) ([]Case, error) {
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Case, error) { return scanCase(r) })
}

// isUUID reports whether s can be compared with a uuid column; anything else matches no row.
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, r := range s {
		switch i {
		case 8, 13, 18, 23:
			if r != '-' {
				return false
			}
		default:
			if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f' || r >= 'A' && r <= 'F') {
				return false
			}
		}
	}
	return true
}

// wrap adds what was being done to an error, keeping ErrNotFound recognisable.
func wrap(err error, format string, args ...any) error {
	if err == nil || errors.Is(err, ErrNotFound) {
		return err
	}
	return fmt.Errorf(format+": %w", append(args, err)...)
}
