// Package store holds all of the notify service's SQL. The service owns the Postgres schema
// "notify": the agency directory and its change log, what it knows of referrals and their
// decisions, notifications with their share records, and every delivery attempt.
package store

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mash-hub/mash/pkg/db"
	"github.com/mash-hub/mash/pkg/events"
	"github.com/mash-hub/mash/services/notify/directory"
	"github.com/mash-hub/mash/services/notify/seal"
)

// Schema is the Postgres schema the notify service owns.
const Schema = "notify"

//go:embed migrations/*.sql
var migrationFS embed.FS

// Migrations returns the notify service's migrations, outbox and consumer tables included.
func Migrations() ([]db.Migration, error) {
	migs, err := db.LoadMigrations(migrationFS, "migrations")
	if err != nil {
		return nil, err
	}
	// LZ4 for the large values written at every referral, each message and decision (db.PreferLZ4 says why).
	lz4 := db.Migration{Version: 11, Name: "0011_lz4.sql", SQL: db.PreferLZ4("notify.notifications", "payload") + db.PreferLZ4("notify.decisions", "decision")}
	return append(append(migs, lz4), events.Migrations(Schema)...), nil
}

// Errors callers turn into API errors.
var (
	ErrNotFound = errors.New("not found")
	// ErrState: the notification is not in a state that allows the change.
	ErrState = errors.New("not allowed in the notification's state")
)

// Querier is the pool or a transaction.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Store runs the notify service's queries.
type Store struct {
	pool *pgxpool.Pool
}

// New returns a Store over pool.
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// Pool is the store's pool, for transactions that span store calls.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// ---- directory ----

// PutPartnership creates or replaces a partnership's settings and records the change.
func PutPartnership(ctx context.Context, tx pgx.Tx, p directory.Partnership, by, reason string) error {
	closures, err := directory.ParseClosures(p.SchoolDay.Closures)
	if err != nil {
		return fmt.Errorf("partnership %s: %w", p.ID, err)
	}
	dates := make([]time.Time, len(closures))
	for i, d := range closures {
		dates[i] = time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, time.UTC)
	}
	before, err := partnershipJSON(ctx, tx, p.ID)
	if err != nil {
		return err
	}
	deadlines, err := json.Marshal(nonNilDeadlines(p.AckDeadlines))
	if err != nil {
		return fmt.Errorf("store partnership %s: encode ack deadlines: %w", p.ID, err)
	}
	_, err = tx.Exec(ctx, `INSERT INTO notify.partnerships (id, lawful_basis, duty_manager, console_url, school_day_start,
			school_day_end, school_closures, red_ack_minutes, updated_by, updated_at, ack_deadlines)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, now(), $10)
		ON CONFLICT (id) DO UPDATE SET lawful_basis = $2, duty_manager = $3, console_url = $4, school_day_start = $5,
			school_day_end = $6, school_closures = $7, red_ack_minutes = $8, updated_by = $9, updated_at = now(), ack_deadlines = $10`,
		p.ID, p.LawfulBasis, p.DutyManager, p.ConsoleURL, p.SchoolDay.Start, p.SchoolDay.End, dates, p.RedAckMinutes, by, deadlines)
	if err != nil {
		return fmt.Errorf("store partnership %s: %w", p.ID, err)
	}
	after, err := partnershipJSON(ctx, tx, p.ID)
	if err != nil {
		return err
	}
	if string(before) == string(after) {
		return nil
	}
	return recordChange(ctx, tx, p.ID, "", "partnership", before, after, reason, by)
}

func nonNilDeadlines(ds []directory.AckDeadline) []directory.AckDeadline {
	if ds == nil {
		return []directory.AckDeadline{}
	}
	return ds
}

func partnershipJSON(ctx context.Context, tx pgx.Tx, id string) ([]byte, error) {
	var b []byte
	err := tx.QueryRow(ctx, `SELECT to_jsonb(p) - 'updated_at' - 'updated_by' FROM notify.partnerships p WHERE id = $1`, id).Scan(&b)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read partnership %s: %w", id, err)
	}
	return b, nil
}

// Partnership reads a partnership's settings.
func Partnership(ctx context.Context, q Querier, id string) (directory.Partnership, error) {
	return partnershipFrom(ctx, q.QueryRow, id, "")
}

// PartnershipForUpdate reads and locks a partnership's settings inside tx, so a change made
// from them does not lose a concurrent one.
func PartnershipForUpdate(ctx context.Context, tx pgx.Tx, id string) (directory.Partnership, error) {
	return partnershipFrom(ctx, tx.QueryRow, id, " FOR UPDATE")
}

// Partnership reads a partnership's settings through the pool.
func (s *Store) Partnership(ctx context.Context, id string) (directory.Partnership, error) {
	return partnershipFrom(ctx, s.pool.QueryRow, id, "")
}

func partnershipFrom(ctx context.Context, qr func(context.Context, string, ...any) pgx.Row, id, lock string) (directory.Partnership, error) {
	var p directory.Partnership
	var dates []time.Time
	var deadlines []byte
	err := qr(ctx, `SELECT id, lawful_basis, duty_manager, console_url, school_day_start, school_day_end, school_closures, red_ack_minutes,
			ack_deadlines
		FROM notify.partnerships WHERE id = $1`+lock, id).Scan(&p.ID, &p.LawfulBasis, &p.DutyManager, &p.ConsoleURL,
		&p.SchoolDay.Start, &p.SchoolDay.End, &dates, &p.RedAckMinutes, &deadlines)
	if err == nil && len(deadlines) > 0 {
		if jerr := json.Unmarshal(deadlines, &p.AckDeadlines); jerr != nil {
			return directory.Partnership{}, fmt.Errorf("read partnership %s: ack deadlines: %w", id, jerr)
		}
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return directory.Partnership{}, ErrNotFound
	}
	if err != nil {
		return directory.Partnership{}, fmt.Errorf("read partnership %s: %w", id, err)
	}
	for _, d := range dates {
		p.SchoolDay.Closures = append(p.SchoolDay.Closures, d.Format(time.DateOnly))
	}
	return p, nil
}

const agencyColumns = `partnership, id, name, roles, channel, url, email, secret_sealed, hours_start, hours_end, out_of_hours,
	concurrency, schools, updated_at, updated_by, name_cy, language`

// StoredAgency is a directory entry with its bookkeeping. Secret is opened from the sealed
// column only where a box was given (delivery needs it; listings do not).
type StoredAgency struct {
	directory.Agency
	// SealedSecret is the secret as stored: sealed by the key-encryption key.
	SealedSecret []byte
	UpdatedAt    time.Time
	UpdatedBy    string
}

// HasSecret reports whether the agency has a webhook secret.
func (a StoredAgency) HasSecret() bool { return len(a.SealedSecret) > 0 || len(a.Secret) > 0 }

// SecretAAD binds a sealed agency secret to its row, so it opens nowhere else.
func SecretAAD(partnership, id string) string { return "notify.agencies/" + partnership + "/" + id }

func scanAgency(r pgx.Row) (StoredAgency, error) {
	var a StoredAgency
	err := r.Scan(&a.Partnership, &a.ID, &a.Name, &a.Roles, &a.Channel, &a.URL, &a.Email, &a.SealedSecret, &a.HoursStart,
		&a.HoursEnd, &a.OutOfHours, &a.Concurrency, &a.Schools, &a.UpdatedAt, &a.UpdatedBy, &a.NameCy, &a.Language)
	if errors.Is(err, pgx.ErrNoRows) {
		return StoredAgency{}, ErrNotFound
	}
	return a, err
}

// open fills a.Secret from its sealed form when box is given.
func open(box *seal.Box, a StoredAgency) (StoredAgency, error) {
	if box == nil || len(a.SealedSecret) == 0 {
		return a, nil
	}
	secret, err := box.Open(a.SealedSecret, SecretAAD(a.Partnership, a.ID))
	if err != nil {
		return StoredAgency{}, fmt.Errorf("secret of agency %s/%s: %w", a.Partnership, a.ID, err)
	}
	a.Secret = secret
	return a, nil
}

// agencyRecord is what the change log keeps of an agency: everything but the secret.
func agencyRecord(a directory.Agency, hasSecret bool) []byte {
	b, _ := json.Marshal(map[string]any{"name": a.Name, "roles": a.Roles, "channel": a.Channel, "url": a.URL, "email": a.Email,
		"hoursStart": a.HoursStart, "hoursEnd": a.HoursEnd, "outOfHours": a.OutOfHours, "concurrency": a.Concurrency,
		"schools": a.Schools, "hasSecret": hasSecret, "nameCy": a.NameCy, "language": a.Language})
	return b
}

// language is how an agency's language is stored: English when none is given.
func language(l string) string {
	if l == "" {
		return directory.LanguageEnglish
	}
	return l
}

// AgencyForUpdate reads an agency inside tx, locking its row, with its secret opened.
func AgencyForUpdate(ctx context.Context, tx pgx.Tx, box *seal.Box, partnership, id string) (StoredAgency, error) {
	a, err := scanAgency(tx.QueryRow(ctx, `SELECT `+agencyColumns+` FROM notify.agencies WHERE partnership = $1 AND id = $2 FOR UPDATE`, partnership, id))
	if errors.Is(err, ErrNotFound) {
		return StoredAgency{}, ErrNotFound
	}
	if err != nil {
		return StoredAgency{}, fmt.Errorf("read agency %s/%s: %w", partnership, id, err)
	}
	return open(box, a)
}

// PutAgency creates or replaces an agency, keeping its secret when a is given none, and
// records the change. The secret is stored sealed by box. It returns the stored entry.
func PutAgency(ctx context.Context, tx pgx.Tx, box *seal.Box, a directory.Agency, by, reason string) (StoredAgency, error) {
	old, err := AgencyForUpdate(ctx, tx, box, a.Partnership, a.ID)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return StoredAgency{}, err
	}
	existed := err == nil
	if len(a.Secret) == 0 && existed {
		a.Secret = old.Secret
	}
	if a.Schools == nil {
		a.Schools = []string{}
	}
	sealed := old.SealedSecret
	secretChanged := existed && string(old.Secret) != string(a.Secret)
	if !existed || secretChanged {
		if sealed, err = box.Seal(a.Secret, SecretAAD(a.Partnership, a.ID)); err != nil {
			return StoredAgency{}, fmt.Errorf("store agency %s: %w", a.ID, err)
		}
	}
	stored, err := scanAgency(tx.QueryRow(ctx, `INSERT INTO notify.agencies (`+agencyColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, now(), $14, $15, $16)
		ON CONFLICT (partnership, id) DO UPDATE SET name = $3, roles = $4, channel = $5, url = $6, email = $7, secret_sealed = $8,
			secret = NULL, hours_start = $9, hours_end = $10, out_of_hours = $11, concurrency = $12, schools = $13, updated_at = now(), updated_by = $14,
			name_cy = $15, language = $16
		RETURNING `+agencyColumns, a.Partnership, a.ID, a.Name, a.Roles, a.Channel, a.URL, a.Email, sealed, a.HoursStart,
		a.HoursEnd, a.OutOfHours, a.Concurrency, a.Schools, by, a.NameCy, language(a.Language)))
	if err != nil {
		return StoredAgency{}, fmt.Errorf("store agency %s: %w", a.ID, err)
	}
	stored.Secret = a.Secret
	var before []byte
	if existed {
		before = agencyRecord(old.Agency, old.HasSecret())
	}
	after := agencyRecord(stored.Agency, stored.HasSecret())
	switch {
	case existed && string(before) == string(after) && !secretChanged:
		return stored, nil
	case secretChanged && string(before) == string(after):
		return stored, recordChange(ctx, tx, a.Partnership, a.ID, "rotate_secret", nil, nil, reason, by)
	}
	return stored, recordChange(ctx, tx, a.Partnership, a.ID, "put", before, after, reason, by)
}

// SealClearSecrets moves every webhook secret still in clear (written before secrets were
// sealed) into the sealed column, and returns how many it moved. It is safe to run from
// every replica at every start: rows are locked, and a moved row is not seen again.
func SealClearSecrets(ctx context.Context, pool *pgxpool.Pool, box *seal.Box) (int, error) {
	n := 0
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT partnership, id, secret FROM notify.agencies WHERE secret IS NOT NULL FOR UPDATE`)
		if err != nil {
			return fmt.Errorf("read clear secrets: %w", err)
		}
		type clear struct {
			partnership, id string
			secret          []byte
		}
		cs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (clear, error) {
			var c clear
			return c, r.Scan(&c.partnership, &c.id, &c.secret)
		})
		if err != nil {
			return fmt.Errorf("read clear secrets: %w", err)
		}
		for _, c := range cs {
			sealed, err := box.Seal(c.secret, SecretAAD(c.partnership, c.id))
			if err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `UPDATE notify.agencies SET secret_sealed = $3, secret = NULL WHERE partnership = $1 AND id = $2`,
				c.partnership, c.id, sealed); err != nil {
				return fmt.Errorf("seal secret of %s/%s: %w", c.partnership, c.id, err)
			}
		}
		n = len(cs)
		return nil
	})
	return n, err
}

// RemoveAgency deletes an agency and records what it was.
func RemoveAgency(ctx context.Context, tx pgx.Tx, partnership, id, by, reason string) error {
	old, err := scanAgency(tx.QueryRow(ctx, `DELETE FROM notify.agencies WHERE partnership = $1 AND id = $2 RETURNING `+agencyColumns, partnership, id))
	if errors.Is(err, ErrNotFound) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("remove agency %s: %w", id, err)
	}
	return recordChange(ctx, tx, partnership, id, "remove", agencyRecord(old.Agency, old.HasSecret()), nil, reason, by)
}

func recordChange(ctx context.Context, tx pgx.Tx, partnership, agency, change string, before, after []byte, reason, by string) error {
	_, err := tx.Exec(ctx, `INSERT INTO notify.directory_changes (partnership, agency, change, before, after, reason, changed_by)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, partnership, agency, change, before, after, reason, by)
	if err != nil {
		return fmt.Errorf("record directory change for %s/%s: %w", partnership, agency, err)
	}
	return nil
}

// DirectoryChange is one entry of the directory's change log.
type DirectoryChange struct {
	Partnership, Agency, Change, Reason, ChangedBy string
	Before, After                                  []byte
	ChangedAt                                      time.Time
}

// DirectoryChanges lists a partnership's changes, oldest first.
func (s *Store) DirectoryChanges(ctx context.Context, partnership string) ([]DirectoryChange, error) {
	rows, err := s.pool.Query(ctx, `SELECT partnership, agency, change, reason, changed_by, coalesce(before::text, ''),
		coalesce(after::text, ''), changed_at FROM notify.directory_changes WHERE partnership = $1 ORDER BY id`, partnership)
	if err != nil {
		return nil, fmt.Errorf("list directory changes of %s: %w", partnership, err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (DirectoryChange, error) {
		var c DirectoryChange
		var before, after string
		err := r.Scan(&c.Partnership, &c.Agency, &c.Change, &c.Reason, &c.ChangedBy, &before, &after, &c.ChangedAt)
		c.Before, c.After = []byte(before), []byte(after)
		return c, err
	})
}

// Agencies lists a partnership's agencies ("" for all), by id, secrets left sealed: a
// listing never needs them.
func (s *Store) Agencies(ctx context.Context, partnership string) ([]StoredAgency, error) {
	return agencies(ctx, s.pool.Query, nil, partnership)
}

// AgenciesIn is Agencies through q (the pool, or the caller's transaction), with secrets
// opened by box (nil leaves them sealed).
func AgenciesIn(ctx context.Context, q Querier, box *seal.Box, partnership string) ([]StoredAgency, error) {
	return agencies(ctx, q.Query, box, partnership)
}

func agencies(ctx context.Context, q func(context.Context, string, ...any) (pgx.Rows, error), box *seal.Box, partnership string) ([]StoredAgency, error) {
	rows, err := q(ctx, `SELECT `+agencyColumns+` FROM notify.agencies WHERE $1 = '' OR partnership = $1 ORDER BY partnership, id`, partnership)
	if err != nil {
		return nil, fmt.Errorf("list agencies of %q: %w", partnership, err)
	}
	as, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (StoredAgency, error) { return scanAgency(r) })
	if err != nil {
		return nil, fmt.Errorf("list agencies of %q: %w", partnership, err)
	}
	for i := range as {
		if as[i], err = open(box, as[i]); err != nil {
			return nil, err
		}
	}
	return as, nil
}

// Agency reads one agency, its secret left sealed.
func (s *Store) Agency(ctx context.Context, partnership, id string) (StoredAgency, error) {
	a, err := scanAgency(s.pool.QueryRow(ctx, `SELECT `+agencyColumns+` FROM notify.agencies WHERE partnership = $1 AND id = $2`, partnership, id))
	if err != nil && !errors.Is(err, ErrNotFound) {
		return StoredAgency{}, fmt.Errorf("read agency %s/%s: %w", partnership, id, err)
	}
	return a, err
}

// ---- referrals and decisions ----

// Referral is what notify keeps of a referral.
type Referral struct {
	ID, Reference, Partnership, Agency, AgencyKind string
	ReceivedAt                                     time.Time
	// Proto is the intakev1.Referral bytes as the event carried them.
	Proto []byte
}

// InsertReferral stores a referral once; a repeat is ignored.
func InsertReferral(ctx context.Context, tx pgx.Tx, r Referral) error {
	_, err := tx.Exec(ctx, `INSERT INTO notify.referrals (id, reference, partnership, agency, agency_kind, received_at, referral)
		VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING`,
		r.ID, r.Reference, r.Partnership, r.Agency, r.AgencyKind, r.ReceivedAt, r.Proto)
	if err != nil {
		return fmt.Errorf("store referral %s: %w", r.ID, err)
	}
	return nil
}

// ReferralIn reads a referral inside tx.
func ReferralIn(ctx context.Context, tx pgx.Tx, id string) (Referral, error) {
	var r Referral
	err := tx.QueryRow(ctx, `SELECT id::text, reference, partnership, agency, agency_kind, received_at, referral
		FROM notify.referrals WHERE id = $1`, id).Scan(&r.ID, &r.Reference, &r.Partnership, &r.Agency, &r.AgencyKind, &r.ReceivedAt, &r.Proto)
	if errors.Is(err, pgx.ErrNoRows) {
		return Referral{}, ErrNotFound
	}
	if err != nil {
		return Referral{}, fmt.Errorf("read referral %s: %w", id, err)
	}
	return r, nil
}

// AppliedDecision is the newest decision version notify has acted on for a referral.
type AppliedDecision struct {
	DecisionID string
	Version    int64
	Agencies   []string
	Level, RAG string
	// Status is the decision's status (RECOMMENDED, CONFIRMED, OVERRIDDEN); empty for
	// decisions applied before it was kept.
	Status string
	// Decision is the decision itself (rulesv1.Decision); nil for those applied before it
	// was kept.
	Decision []byte
}

// Sharing is what a referral may share: the family's consent and a manager's authorisation
// to share without it (AuthorisedBy empty: none stands).
type Sharing struct {
	ConsentStatus, AuthorisedBy, LawfulBasis, Reason string
	Generation                                       int64
}

// InsertSharing records a referral's consent as referred, unless its position is known.
func InsertSharing(ctx context.Context, tx pgx.Tx, referralID, consent string) error {
	if _, err := tx.Exec(ctx, `INSERT INTO notify.sharing (referral_id, consent_status) VALUES ($1, $2)
		ON CONFLICT (referral_id) DO NOTHING`, referralID, consent); err != nil {
		return fmt.Errorf("record consent of %s: %w", referralID, err)
	}
	return nil
}

// SharingOf reads a referral's sharing position within tx; found is false when notify has
// none (a referral from before positions were kept shares as it always did).
func SharingOf(ctx context.Context, q Querier, referralID string) (Sharing, bool, error) {
	var s Sharing
	err := q.QueryRow(ctx, `SELECT consent_status, authorised_by, lawful_basis, reason, generation FROM notify.sharing WHERE referral_id = $1`,
		referralID).Scan(&s.ConsentStatus, &s.AuthorisedBy, &s.LawfulBasis, &s.Reason, &s.Generation)
	if errors.Is(err, pgx.ErrNoRows) {
		return s, false, nil
	}
	if err != nil {
		return s, false, fmt.Errorf("read sharing position of %s: %w", referralID, err)
	}
	return s, true, nil
}

// SetSharing stores a referral's new sharing position and returns its generation.
func SetSharing(ctx context.Context, tx pgx.Tx, referralID string, s Sharing) (int64, error) {
	var gen int64
	err := tx.QueryRow(ctx, `INSERT INTO notify.sharing (referral_id, consent_status, authorised_by, lawful_basis, reason, generation)
		VALUES ($1, $2, $3, $4, $5, 1)
		ON CONFLICT (referral_id) DO UPDATE SET consent_status = $2, authorised_by = $3, lawful_basis = $4, reason = $5,
			generation = notify.sharing.generation + 1, updated_at = now()
		RETURNING generation`, referralID, s.ConsentStatus, s.AuthorisedBy, s.LawfulBasis, s.Reason).Scan(&gen)
	if err != nil {
		return 0, fmt.Errorf("store sharing position of %s: %w", referralID, err)
	}
	return gen, nil
}

// QueueSetApplied queues, on b, the record of the decision version acted on.
func QueueSetApplied(b *pgx.Batch, referralID string, a AppliedDecision) {
	b.Queue(setAppliedSQL, referralID, a.DecisionID, a.Version, a.Agencies, a.Level, a.RAG, a.Status, a.Decision)
}

const setAppliedSQL = `INSERT INTO notify.decisions (referral_id, decision_id, version, agencies, level, rag, status, decision)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
	ON CONFLICT (referral_id) DO UPDATE SET decision_id = $2, version = $3, agencies = $4, level = $5, rag = $6, status = $7,
		decision = $8`

// AgencyAnywhere finds an agency by id in any partnership (a police force serves several),
// preferring the lowest partnership id for a stable answer; its secret is opened by box.
func AgencyAnywhere(ctx context.Context, q Querier, box *seal.Box, id string) (StoredAgency, error) {
	a, err := scanAgency(q.QueryRow(ctx, `SELECT `+agencyColumns+` FROM notify.agencies WHERE id = $1 ORDER BY partnership LIMIT 1`, id))
	if errors.Is(err, ErrNotFound) {
		return StoredAgency{}, ErrNotFound
	}
	if err != nil {
		return StoredAgency{}, fmt.Errorf("read agency %s: %w", id, err)
	}
	return open(box, a)
}

// AppliedDecisionOf reads the decision notify last applied for a referral; found is false
// when none was.
func AppliedDecisionOf(ctx context.Context, q Querier, referralID string) (a AppliedDecision, found bool, err error) {
	err = q.QueryRow(ctx, `SELECT decision_id::text, version, agencies, level, rag, status, decision FROM notify.decisions WHERE referral_id = $1`,
		referralID).Scan(&a.DecisionID, &a.Version, &a.Agencies, &a.Level, &a.RAG, &a.Status, &a.Decision)
	switch {
	case err == nil:
		return a, true, nil
	case errors.Is(err, pgx.ErrNoRows):
		return AppliedDecision{}, false, nil
	}
	return AppliedDecision{}, false, fmt.Errorf("read applied decision of %s: %w", referralID, err)
}
