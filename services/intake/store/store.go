// Package store holds all of intake's SQL. Intake owns the Postgres schema "intake":
// referrals and the outbox the relay publishes from.
package store

import (
	"context"
	"embed"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mash-hub/mash/pkg/db"
	"github.com/mash-hub/mash/pkg/events"
	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
)

// Schema is the Postgres schema intake owns.
const Schema = "intake"

//go:embed migrations/*.sql
var migrationFS embed.FS

// Migrations returns intake's migrations, the outbox included.
func Migrations() ([]db.Migration, error) {
	migs, err := db.LoadMigrations(migrationFS, "migrations")
	if err != nil {
		return nil, err
	}
	return append(migs, events.Migrations(Schema)...), nil
}

// Referral is an accepted referral as stored.
type Referral struct {
	ID                string
	Reference         string
	Agency            string
	AgencyKind        string
	ExternalReference string
	Partnership       string
	ContentHash       []byte
	Submission        []byte
	ReceivedAt        time.Time
	DecisionDue       time.Time
	Status            string
	Version           int64
}

// Event is the outbox row written with a referral.
type Event struct {
	ID      string
	Subject string
	Payload []byte
}

// Store runs intake's queries.
type Store struct {
	pool *pgxpool.Pool

	refMu   sync.Mutex
	refNext int64
	refEnd  int64
}

// New returns a Store over pool.
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// ErrNotFound means no such referral.
var ErrNotFound = errors.New("referral not found")

// NextReference returns a fresh human-readable reference for a referral received at t.
func (s *Store) NextReference(ctx context.Context, t time.Time) (string, error) {
	s.refMu.Lock()
	defer s.refMu.Unlock()
	if s.refNext == 0 || s.refNext >= s.refEnd {
		var start int64
		if err := s.pool.QueryRow(ctx, `SELECT nextval('intake.reference_block')`).Scan(&start); err != nil {
			return "", fmt.Errorf("allocate reference block: %w", err)
		}
		s.refNext, s.refEnd = start, start+100
	}
	n := s.refNext
	s.refNext++
	return fmt.Sprintf("MASH-%d-%07d", t.Year(), n), nil
}

// InsertSQL is intake's whole write for one referral: the referral and its outbox row in
// one statement, hence one round trip and one atomic commit. A conflicting key inserts
// neither. scripts/bench runs exactly this statement through pgbench as the denominator.
const InsertSQL = `WITH referral AS (
	INSERT INTO intake.referrals (id, reference, agency, external_reference, partnership,
		content_hash, submission, received_at, decision_due, status, version, agency_kind)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $15)
	ON CONFLICT (agency, external_reference) DO NOTHING
	RETURNING id
), outbox AS (
	INSERT INTO intake.outbox (event_id, subject, payload, referral_id, trace_context)
	SELECT $12, $13, $14, id::text, $16 FROM referral
)
SELECT count(*) FROM referral`

// UndecidedSQL is the reconciler's check for intake: referrals accepted before the cutoff
// $1 that no decision has reached, with their original received event.
const UndecidedSQL = `SELECT o.id, o.event_id::text, o.subject, o.payload, o.reconciles
	FROM intake.referrals r
	JOIN intake.outbox o ON o.referral_id = r.id::text AND o.subject = '` + eventsv1.SubjectReferralReceived + `'
	WHERE r.status = 'RECEIVED' AND r.received_at < $1 AND o.published_at IS NOT NULL
	ORDER BY r.received_at`

// Insert stores r and its event unless (agency, external reference) is taken. It returns
// created=false and the stored referral when it is.
func (s *Store) Insert(ctx context.Context, r Referral, ev Event) (created bool, existing Referral, err error) {
	var n int
	err = s.pool.QueryRow(ctx, InsertSQL, r.ID, r.Reference, r.Agency, r.ExternalReference, r.Partnership,
		r.ContentHash, r.Submission, r.ReceivedAt, r.DecisionDue, r.Status, r.Version,
		ev.ID, ev.Subject, ev.Payload, r.AgencyKind, events.TraceContext(ctx)).Scan(&n)
	if err != nil {
		return false, Referral{}, fmt.Errorf("store referral %s: %w", r.ID, err)
	}
	if n == 1 {
		return true, r, nil
	}
	// The key exists and its transaction has committed (ON CONFLICT waited for it), so this
	// read sees it.
	existing, err = s.byKey(ctx, r.Agency, r.ExternalReference)
	if err != nil {
		return false, Referral{}, fmt.Errorf("read referral for %s/%s: %w", r.Agency, r.ExternalReference, err)
	}
	return false, existing, nil
}

const columns = `id::text, reference, agency, agency_kind, external_reference, partnership, content_hash, submission,
	received_at, decision_due, status, version`

func scan(row pgx.Row) (Referral, error) {
	var r Referral
	err := row.Scan(&r.ID, &r.Reference, &r.Agency, &r.AgencyKind, &r.ExternalReference, &r.Partnership, &r.ContentHash,
		&r.Submission, &r.ReceivedAt, &r.DecisionDue, &r.Status, &r.Version)
	if errors.Is(err, pgx.ErrNoRows) {
		return Referral{}, ErrNotFound
	}
	return r, err
}

func (s *Store) byKey(ctx context.Context, agency, externalRef string) (Referral, error) {
	return scan(s.pool.QueryRow(ctx, `SELECT `+columns+` FROM intake.referrals
		WHERE agency = $1 AND external_reference = $2`, agency, externalRef))
}

// Get returns one referral. agency, when not empty, restricts the look-up to that agency's
// referrals, so another agency's id is simply not found.
func (s *Store) Get(ctx context.Context, id, agency string) (Referral, error) {
	if _, err := uuid.Parse(id); err != nil {
		return Referral{}, ErrNotFound
	}
	// An erased referral keeps its row (ids and times) but has nothing left to show.
	r, err := scan(s.pool.QueryRow(ctx, `SELECT `+columns+` FROM intake.referrals
		WHERE id = $1 AND ($2 = '' OR agency = $2) AND status <> '`+StatusErased+`'`, id, agency))
	if err != nil && !errors.Is(err, ErrNotFound) {
		return Referral{}, fmt.Errorf("read referral %s: %w", id, err)
	}
	return r, err
}

// Filter narrows a listing.
type Filter struct {
	Agency      string // only this agency's referrals, if set
	Partnership string // only this partnership's, if set
	// Partnerships, when not nil, limits the listing to those partnerships: the ones the
	// caller serves.
	Partnerships []string
}

// Cursor is the position after the last row of a page.
type Cursor struct {
	ReceivedAt time.Time
	ID         string
}

// EncodeCursor makes an opaque page token.
func EncodeCursor(c Cursor) string {
	id, err := uuid.Parse(c.ID)
	if err != nil {
		return ""
	}
	b := make([]byte, 8, 24)
	binary.BigEndian.PutUint64(b, uint64(c.ReceivedAt.UnixMicro()))
	b = append(b, id[:]...)
	return base64.RawURLEncoding.EncodeToString(b)
}

// ErrBadCursor means a page token was not one we issued.
var ErrBadCursor = errors.New("page token is not valid")

// DecodeCursor reads a page token; "" is the first page.
func DecodeCursor(s string) (*Cursor, error) {
	if s == "" {
		return nil, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) != 24 {
		return nil, ErrBadCursor
	}
	id, err := uuid.FromBytes(b[8:])
	if err != nil {
		return nil, ErrBadCursor
	}
	return &Cursor{ReceivedAt: time.UnixMicro(int64(binary.BigEndian.Uint64(b[:8]))).UTC(), ID: id.String()}, nil
}

// List returns up to limit referrals after cursor, newest first, without their submissions.
func (s *Store) List(ctx context.Context, f Filter, after *Cursor, limit int) ([]Referral, error) {
	var afterAt *time.Time
	var afterID *string
	if after != nil {
		afterAt, afterID = &after.ReceivedAt, &after.ID
	}
	rows, err := s.pool.Query(ctx, `SELECT id::text, reference, agency, external_reference, partnership,
			received_at, decision_due, status, version
		FROM intake.referrals
		WHERE ($1 = '' OR agency = $1) AND ($2 = '' OR partnership = $2)
		  AND ($6::text[] IS NULL OR partnership = ANY($6))
		  AND ($3::timestamptz IS NULL OR (received_at, id) < ($3, $4::uuid))
		ORDER BY received_at DESC, id DESC
		LIMIT $5`, f.Agency, f.Partnership, afterAt, afterID, limit, f.Partnerships)
	if err != nil {
		return nil, fmt.Errorf("list referrals: %w", err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (Referral, error) {
		var r Referral
		err := row.Scan(&r.ID, &r.Reference, &r.Agency, &r.ExternalReference, &r.Partnership,
			&r.ReceivedAt, &r.DecisionDue, &r.Status, &r.Version)
		return r, err
	})
}

// MarkDecided records that the threshold rules decided a referral, once: a redelivered or
// older event changes nothing. version is the referral's version after the decision.
func MarkDecided(ctx context.Context, tx pgx.Tx, referralID string, version int64) error {
	_, err := tx.Exec(ctx, `UPDATE intake.referrals SET status = 'DECIDED', version = greatest(version, $2)
		WHERE id = $1 AND status = 'RECEIVED'`, referralID, version)
	if err != nil {
		return fmt.Errorf("mark referral %s decided: %w", referralID, err)
	}
	return nil
}

// StatusErased is the status of a referral whose case was erased: its submission is gone.
const StatusErased = "ERASED"

// EraseReferral blanks, within tx, the submission intake keeps of referralID (every piece
// of personal data it holds); the row keeps its ids, references, agency and times, and the
// content hash, so a retry of the same submission is still recognised. Erasing it again
// changes nothing.
func EraseReferral(ctx context.Context, tx pgx.Tx, referralID string) error {
	if _, err := uuid.Parse(referralID); err != nil {
		return nil // not a referral intake could hold
	}
	if _, err := tx.Exec(ctx, `UPDATE intake.referrals SET submission = '', status = $2 WHERE id = $1`, referralID, StatusErased); err != nil {
		return fmt.Errorf("erase referral %s: %w", referralID, err)
	}
	return nil
}
