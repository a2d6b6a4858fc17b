package triage_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/grpc/metadata"

	"github.com/mash-hub/mash/pkg/auth"
	"github.com/mash-hub/mash/pkg/db"
	"github.com/mash-hub/mash/pkg/db/dbtest"
	triagev1 "github.com/mash-hub/mash/proto/mash/triage/v1"
	"github.com/mash-hub/mash/services/triage"
	"github.com/mash-hub/mash/services/triage/store"
)

// searchBenchChildren is the number of children in the search benchmark's read model; each
// has one to three referrals.
const searchBenchChildren = 100_000

// searchBenchLoader names the loader's version in the database's name (bump it when the
// loader changes what it writes).
const searchBenchLoader = "1"

var (
	benchGiven  = []string{"Siân", "Dylan", "Megan", "Rhys", "Ffion", "Tomos", "Cerys", "Osian", "Elin", "Gethin", "Lowri", "Iwan", "Nia", "Llŷr", "Catrin", "Owain", "Amelia", "Oliver", "Isla", "Noah", "Freya", "Harry", "Ava", "Jack", "Mia", "Leo", "Evie", "Alfie", "Ruby", "Theo"}
	benchFamily = []string{"Jones", "Williams", "Davies", "Evans", "Thomas", "Roberts", "Hughes", "Lewis", "Morgan", "Griffiths", "Price", "Johnson", "Phillips", "Rees", "Owen", "ap Dafydd", "Pritchard", "Llewellyn", "Powell", "Jenkins", "Howells", "Bowen", "Parry", "Watkins", "Vaughan", "Smith", "Taylor", "Brown", "Wilson", "Walker"}
)

// searchBenchPool opens the search benchmark's database, kept between runs and loaded once.
func searchBenchPool(b *testing.B) *pgxpool.Pool {
	b.Helper()
	ctx := context.Background()
	migs, err := store.Migrations()
	if err != nil {
		b.Fatal(err)
	}
	am, err := auth.Migrations()
	if err != nil {
		b.Fatal(err)
	}
	name := "mash_bench_search_" + db.Checksum(append(am, migs...))[:12] + "_l" + searchBenchLoader
	admin, err := pgx.Connect(ctx, dbtest.AdminURL())
	if err != nil {
		b.Fatal(err)
	}
	var exists bool
	if err := admin.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		b.Fatal(err)
	}
	if !exists {
		if _, err := admin.Exec(ctx, `CREATE DATABASE `+pgx.Identifier{name}.Sanitize()); err != nil {
			b.Fatal(err)
		}
	}
	admin.Close(ctx)
	u, err := url.Parse(dbtest.AdminURL())
	if err != nil {
		b.Fatal(err)
	}
	u.Path = "/" + name
	pool, err := db.Open(ctx, u.String())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	if err := auth.Migrate(ctx, pool); err != nil {
		b.Fatal(err)
	}
	if err := triage.Migrate(ctx, pool); err != nil {
		b.Fatal(err)
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(DISTINCT child_id) FROM triage.cases`).Scan(&n); err != nil {
		b.Fatal(err)
	}
	if n != searchBenchChildren {
		loadSearchBench(b, pool)
	}
	return pool
}

// loadSearchBench writes the children and their referrals straight into the read model,
// with search keys made by the service's own folding (through a received event's fields).
func loadSearchBench(b *testing.B, pool *pgxpool.Pool) {
	b.Helper()
	ctx := context.Background()
	began := time.Now()
	if _, err := pool.Exec(ctx, `TRUNCATE triage.cases, triage.closed_counts CASCADE`); err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	type row struct {
		id, child  pgtype.UUID
		p, name    string
		keys       store.SearchKeys
		receivedAt time.Time
	}
	var rows []row
	seq := 0
	for range searchBenchChildren {
		child := pgtype.UUID{Bytes: uuid.New(), Valid: true}
		given, family := benchGiven[rng.IntN(len(benchGiven))], benchFamily[rng.IntN(len(benchFamily))]
		dob := time.Date(2008+rng.IntN(18), time.Month(1+rng.IntN(12)), 1+rng.IntN(28), 0, 0, 0, 0, time.UTC)
		nhs := ""
		if rng.IntN(2) == 0 {
			nhs = fmt.Sprintf("%010d", rng.Int64N(10_000_000_000))
		}
		postcode := fmt.Sprintf("CF%d %d%c%c", 10+rng.IntN(40), rng.IntN(10), 'A'+rng.IntN(26), 'A'+rng.IntN(26))
		p := benchPartnerships[rng.IntN(len(benchPartnerships))]
		for range 1 + rng.IntN(3) {
			seq++
			id := uuid.New()
			k := triage.SearchKeysFor(id.String(), p, given, family, dob.Format(time.DateOnly), nhs, postcode,
				fmt.Sprintf("MASH-2026-%07d", seq), fmt.Sprintf("SWP-%07d", seq))
			at := benchNow.Add(-time.Duration(rng.IntN(2*365*24)) * time.Hour)
			k.ReceivedAt = &at
			rows = append(rows, row{id: pgtype.UUID{Bytes: id, Valid: true}, child: child, p: p, name: given + " " + family, keys: k,
				receivedAt: at})
		}
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, `ALTER TABLE triage.cases DISABLE TRIGGER cases_link_insert, DISABLE TRIGGER cases_link_update`); err != nil {
		b.Fatal(err)
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"triage", "cases"}, []string{"referral_id", "partnership", "child_id", "rules_child_id",
		"child_name", "received", "state", "received_at"}, pgx.CopyFromSlice(len(rows), func(i int) ([]any, error) {
		r := rows[i]
		return []any{r.id, r.p, r.child, r.child, r.name, true, int16(store.StateClosed), r.receivedAt}, nil
	})); err != nil {
		b.Fatal(err)
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"triage", "search_keys"}, []string{"referral_id", "partnership", "name_key", "person_key",
		"date_of_birth", "nhs_number", "postcode", "reference", "external_reference", "received_at"}, pgx.CopyFromSlice(len(rows), func(i int) ([]any, error) {
		k := rows[i].keys
		return []any{rows[i].id, k.Partnership, k.NameKey, k.PersonKey, k.DateOfBirth, k.NHSNumber, k.Postcode, k.Reference, k.ExternalReference, k.ReceivedAt}, nil
	})); err != nil {
		b.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `SELECT triage.relink_all()`); err != nil {
		b.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `ALTER TABLE triage.cases ENABLE TRIGGER cases_link_insert, ENABLE TRIGGER cases_link_update`); err != nil {
		b.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		b.Fatal(err)
	}
	for _, t := range []string{"triage.cases", "triage.search_keys"} {
		if _, err := pool.Exec(ctx, `VACUUM (ANALYZE) `+t); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("loaded %d children (%d referrals) in %s", searchBenchChildren, len(rows), time.Since(began).Round(time.Second))
}

// BenchmarkSearch measures a search through the service's API (the query, the children's
// referral counts and the access entry it commits) over 100,000 children in six
// partnerships, as a practitioner serving two of them and as one serving all.
// Run: go test -run '^$' -bench Search -benchtime 200x ./services/triage/
func BenchmarkSearch(b *testing.B) {
	pool := searchBenchPool(b)
	api := benchService(b, pool).Records()
	two := auth.WithIdentity(context.Background(), auth.Identity{ClientID: "prac07", Agency: "rct-mash", Kind: "hub",
		Role: auth.RolePractitioner, Partnerships: []string{"rhondda-cynon-taf", "cardiff"}})
	all := auth.WithIdentity(context.Background(), auth.Identity{ClientID: "prac08", Agency: "rct-mash", Kind: "hub",
		Role: auth.RolePractitioner, Partnerships: []string{auth.AllPartnerships}})
	var ref, nhs, postcode, dob string
	if err := pool.QueryRow(context.Background(), `SELECT reference, nhs_number, postcode, date_of_birth::text FROM triage.search_keys
		WHERE partnership = 'cardiff' AND nhs_number <> '' LIMIT 1`).Scan(&ref, &nhs, &postcode, &dob); err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		ctx  context.Context
		q    string
	}{
		{"name_exact", two, "Siân Jones"},
		{"name_misspelt", two, "sian jonson"},
		{"surname_misspelt_all", all, "Pritchird"},
		{"given_only_all", all, "llyr"},
		{"name_and_dob", two, "Megan Price " + dob},
		{"dob_all", all, dob},
		{"nhs_number", two, nhs},
		{"postcode", two, postcode},
		{"mash_reference", two, ref},
		{"external_reference_all", all, "swp-0000042"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			ctx := metadata.NewIncomingContext(bc.ctx, metadata.Pairs())
			for b.Loop() {
				if _, err := api.Search(ctx, &triagev1.SearchRequest{Q: bc.q, Reason: "benchmark"}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
