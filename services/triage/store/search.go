package store

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// SearchKeys is what one referral can be found by, already normalised (the service folds
// names and postcodes; the store compares them).
type SearchKeys struct {
	ReferralID, Partnership string
	NameKey, PersonKey      string
	DateOfBirth             *time.Time
	NHSNumber, Postcode     string
	Reference               string
	ExternalReference       string
	ReceivedAt              *time.Time
	// Household holds the folded names of the household's members (a parent, a sibling).
	Household []string
}

// PutSearchKeys records a referral's search keys in tx (the transaction that projects the
// referral onto its case); a replayed event writes the same keys again.
func PutSearchKeys(ctx context.Context, tx pgx.Tx, k SearchKeys) error {
	_, err := tx.Exec(ctx, `INSERT INTO triage.search_keys (referral_id, partnership, name_key, person_key, date_of_birth,
			nhs_number, postcode, reference, external_reference, received_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
		ON CONFLICT (referral_id) DO UPDATE SET partnership = EXCLUDED.partnership, name_key = EXCLUDED.name_key,
			person_key = EXCLUDED.person_key, date_of_birth = EXCLUDED.date_of_birth, nhs_number = EXCLUDED.nhs_number,
			postcode = EXCLUDED.postcode, reference = EXCLUDED.reference, external_reference = EXCLUDED.external_reference,
			received_at = EXCLUDED.received_at`,
		k.ReferralID, k.Partnership, k.NameKey, k.PersonKey, k.DateOfBirth, k.NHSNumber, k.Postcode, k.Reference, k.ExternalReference,
		k.ReceivedAt)
	if err != nil {
		return fmt.Errorf("search keys of referral %s: %w", k.ReferralID, err)
	}
	// The members are written whole each time, so a replay leaves exactly the event's.
	if _, err := tx.Exec(ctx, `DELETE FROM triage.search_household WHERE referral_id = $1`, k.ReferralID); err != nil {
		return fmt.Errorf("household search keys of referral %s: %w", k.ReferralID, err)
	}
	if len(k.Household) > 0 {
		if _, err := tx.Exec(ctx, `INSERT INTO triage.search_household (referral_id, member, name_key)
			SELECT $1, m.n, m.name FROM unnest($2::text[]) WITH ORDINALITY AS m(name, n)`, k.ReferralID, k.Household); err != nil {
			return fmt.Errorf("household search keys of referral %s: %w", k.ReferralID, err)
		}
	}
	return nil
}

// SearchQuery is a parsed search: every key set must match.
type SearchQuery struct {
	// Name holds folded words; each must be like a word of the child's name.
	Name              []string
	DateOfBirth       *time.Time
	NHSNumber         string
	Postcode          string
	Reference         string
	ExternalReference string
	// Partnerships limits the search (nil: every partnership); Partnership narrows it to one.
	Partnerships []string
	Partnership  string
	Limit        int
}

// NameSimilarity is how like a word of the child's name each searched word must be
// (pg_trgm word similarity): 0.45 lets one letter added, dropped or changed in a
// surname through ("jonson" is 0.5 of "johnson").
const NameSimilarity = 0.45

// SearchHit is one referral found.
type SearchHit struct {
	ReferralID, Partnership, ChildID, ChildName string
	DateOfBirth                                 *time.Time
	Postcode, Reference, ExternalReference      string
	State, Level                                int16
	ReceivedAt                                  *time.Time
	SourceAgency                                string
	Score                                       float64
	// Household is true when the name searched was a household member's, not the child's.
	Household bool
}

const hitColumns = `k.referral_id::text, c.partnership, coalesce(c.child_id::text, ''), c.child_name, k.date_of_birth, k.postcode,
	k.reference, k.external_reference, c.state, c.level, c.received_at, c.source_agency`

func scanHit(r pgx.Row, withScore bool) (SearchHit, error) {
	var h SearchHit
	targets := []any{&h.ReferralID, &h.Partnership, &h.ChildID, &h.ChildName, &h.DateOfBirth, &h.Postcode, &h.Reference,
		&h.ExternalReference, &h.State, &h.Level, &h.ReceivedAt, &h.SourceAgency}
	if withScore {
		targets = append(targets, &h.Score, &h.Household)
	}
	err := r.Scan(targets...)
	return h, err
}

// Search finds the referrals matching q, best first, then newest: at most q.Limit, and
// whether more matched.
func Search(ctx context.Context, pool *pgxpool.Pool, q SearchQuery) ([]SearchHit, bool, error) {
	var sq query
	if q.DateOfBirth != nil {
		sq.add(`k.date_of_birth = ` + sq.arg(*q.DateOfBirth) + `::date`)
	}
	if q.NHSNumber != "" {
		sq.add(`k.nhs_number = ` + sq.arg(q.NHSNumber))
	}
	if q.Postcode != "" {
		sq.add(`k.postcode = ` + sq.arg(q.Postcode))
	}
	if q.Reference != "" {
		sq.add(`k.reference = ` + sq.arg(q.Reference))
	}
	if q.ExternalReference != "" {
		sq.add(`k.external_reference = ` + sq.arg(q.ExternalReference))
	}
	if q.Partnerships != nil {
		sq.add(`k.partnership = ANY(` + sq.arg(q.Partnerships) + `::text[])`)
	}
	if q.Partnership != "" {
		sq.add(`k.partnership = ` + sq.arg(q.Partnership))
	}
	rest := sq.sql()
	matches := `SELECT k.referral_id, 1.0::float8 AS score, false AS household, k.received_at FROM triage.search_keys k WHERE ` + rest
	if len(q.Name) > 0 {
		words := make([]string, len(q.Name))
		for i, w := range q.Name {
			words[i] = sq.arg(w)
		}
		// Every searched word must be like a word of one name: the child's, or one household
		// member's (a parent's name finds the child's referrals). <% is word similarity
		// above pg_trgm.word_similarity_threshold, served by each table's trigram index.
		// pg_trgm lives in the triage schema (migration 0011), so its operator and functions
		// are named with it.
		name := func(col string) (cond, score string) {
			var conds, parts []string
			for _, a := range words {
				conds = append(conds, a+` OPERATOR(triage.<%) `+col)
				parts = append(parts, `triage.word_similarity(`+a+`, `+col+`)`)
			}
			return strings.Join(conds, " AND "), `((` + strings.Join(parts, " + ") + `) / ` + strconv.Itoa(len(parts)) + `)::float8`
		}
		childCond, childScore := name("k.name_key")
		memberCond, memberScore := name("h.name_key")
		// A household match ranks below a child's name matched as well: the searcher most
		// likely typed the child's name.
		matches = `SELECT k.referral_id, ` + childScore + ` AS score, false AS household, k.received_at
				FROM triage.search_keys k WHERE ` + childCond + ` AND ` + rest + `
			UNION ALL
			SELECT k.referral_id, ` + memberScore + ` * 0.9 AS score, true AS household, k.received_at
				FROM triage.search_household h JOIN triage.search_keys k ON k.referral_id = h.referral_id
				WHERE ` + memberCond + ` AND ` + rest
	}
	// Matches are ranked on the keys alone, and only the page's rows join their cases: a
	// common surname matches thousands of referrals (6,600 of 200,000 in the benchmark),
	// and visiting each case cost seven times the search itself. A referral found by the
	// child's name and by a member's counts once, as a match of the child's name.
	stmt := `SELECT ` + hitColumns + `, top.score, top.household FROM (
			SELECT m.referral_id, max(m.score) AS score, bool_and(m.household) AS household, max(m.received_at) AS received_at
			FROM (` + matches + `) m GROUP BY m.referral_id
			ORDER BY score DESC, received_at DESC NULLS LAST, m.referral_id DESC LIMIT ` + sq.arg(q.Limit+1) + `) top
		JOIN triage.search_keys k USING (referral_id) JOIN triage.cases c USING (referral_id)
		ORDER BY top.score DESC, top.received_at DESC NULLS LAST, k.referral_id DESC`
	var hits []SearchHit
	err := pgx.BeginTxFunc(ctx, pool, pgx.TxOptions{AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT set_config('pg_trgm.word_similarity_threshold', $1, true)`,
			strconv.FormatFloat(NameSimilarity, 'f', -1, 64)); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, stmt, sq.args...)
		if err != nil {
			return err
		}
		hits, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (SearchHit, error) { return scanHit(r, true) })
		return err
	})
	if err != nil {
		return nil, false, fmt.Errorf("search: %w", err)
	}
	more := len(hits) > q.Limit
	if more {
		hits = hits[:q.Limit]
	}
	return hits, more, nil
}

// ChildSummary is a child record as the caller's partnerships see it.
type ChildSummary struct {
	ChildID          string
	Referrals        int32
	LatestReferralID string
}

// ChildSummaries counts the referrals of each child in partnerships (nil: every one).
func ChildSummaries(ctx context.Context, q Querier, childIDs, partnerships []string) (map[string]ChildSummary, error) {
	rows, err := q.Query(ctx, `SELECT child_id::text, count(*)::int, (array_agg(referral_id::text ORDER BY received_at DESC NULLS LAST))[1]
		FROM triage.cases WHERE child_id = ANY($1::uuid[]) AND ($2::text[] IS NULL OR partnership = ANY($2))
		GROUP BY child_id`, childIDs, partnerships)
	if err != nil {
		return nil, fmt.Errorf("child summaries: %w", err)
	}
	out := map[string]ChildSummary{}
	_, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (struct{}, error) {
		var s ChildSummary
		err := r.Scan(&s.ChildID, &s.Referrals, &s.LatestReferralID)
		out[s.ChildID] = s
		return struct{}{}, err
	})
	if err != nil {
		return nil, fmt.Errorf("child summaries: %w", err)
	}
	return out, nil
}

// ChildReferrals lists a child record's referrals, newest first, with their search keys.
// partnerships limits them (nil: every one); all reports how many there are in any.
func ChildReferrals(ctx context.Context, q Querier, childID string, partnerships []string) (shown []SearchHit, all int, err error) {
	if err := q.QueryRow(ctx, `SELECT count(*) FROM triage.cases WHERE child_id = $1`, childID).Scan(&all); err != nil {
		return nil, 0, fmt.Errorf("referrals of child %s: %w", childID, err)
	}
	rows, err := q.Query(ctx, `SELECT `+hitColumns+` FROM triage.cases c JOIN triage.search_keys k USING (referral_id)
		WHERE c.child_id = $1 AND ($2::text[] IS NULL OR c.partnership = ANY($2))
		ORDER BY c.received_at DESC NULLS LAST, c.referral_id DESC`, childID, partnerships)
	if err != nil {
		return nil, 0, fmt.Errorf("referrals of child %s: %w", childID, err)
	}
	shown, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (SearchHit, error) { return scanHit(r, false) })
	if err != nil {
		return nil, 0, fmt.Errorf("referrals of child %s: %w", childID, err)
	}
	return shown, all, nil
}

// PossibleMatch is another child record sharing a name and date of birth with one of a
// child's referrals.
type PossibleMatch struct {
	ChildID, ChildName   string
	DateOfBirth          *time.Time
	Postcode             string
	Referrals            int32
	SamePostcode, HasNHS bool
}

// PossibleMatches finds other child records, in partnerships (nil: every one), with a
// referral of the same folded given and family names and date of birth as one of
// childID's referrals. Records a practitioner has already separated from this one (an
// undone merge, either way) are not offered again.
func PossibleMatches(ctx context.Context, q Querier, childID string, partnerships []string) ([]PossibleMatch, error) {
	rows, err := q.Query(ctx, `WITH mine AS (
			SELECT DISTINCT k.person_key, k.date_of_birth, k.postcode FROM triage.cases c JOIN triage.search_keys k USING (referral_id)
			WHERE c.child_id = $1 AND k.person_key <> '' AND k.date_of_birth IS NOT NULL),
		theirs AS (
			SELECT c.child_id, c.child_name, k.date_of_birth, k.postcode, k.nhs_number <> '' AS has_nhs,
				EXISTS (SELECT 1 FROM mine m WHERE m.person_key = k.person_key AND m.date_of_birth = k.date_of_birth
					AND m.postcode = k.postcode AND k.postcode <> '') AS same_postcode, c.received_at
			FROM mine m JOIN triage.search_keys k ON k.person_key = m.person_key AND k.date_of_birth = m.date_of_birth
			JOIN triage.cases c ON c.referral_id = k.referral_id
			WHERE c.child_id IS NOT NULL AND c.child_id <> $1 AND ($2::text[] IS NULL OR c.partnership = ANY($2))
				AND NOT EXISTS (SELECT 1 FROM triage.child_merges x WHERE x.undone_at IS NOT NULL
					AND ((x.from_child = c.child_id AND x.into_child = $1) OR (x.from_child = $1 AND x.into_child = c.child_id))))
		SELECT child_id::text, (array_agg(child_name ORDER BY received_at DESC NULLS LAST))[1],
			(array_agg(date_of_birth ORDER BY received_at DESC NULLS LAST))[1],
			(array_agg(postcode ORDER BY received_at DESC NULLS LAST))[1], count(*)::int, bool_or(same_postcode), bool_or(has_nhs)
		FROM theirs GROUP BY child_id ORDER BY child_id LIMIT 20`, childID, partnerships)
	if err != nil {
		return nil, fmt.Errorf("possible matches of child %s: %w", childID, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (PossibleMatch, error) {
		var m PossibleMatch
		err := r.Scan(&m.ChildID, &m.ChildName, &m.DateOfBirth, &m.Postcode, &m.Referrals, &m.SamePostcode, &m.HasNHS)
		return m, err
	})
	if err != nil {
		return nil, fmt.Errorf("possible matches of child %s: %w", childID, err)
	}
	return out, nil
}
