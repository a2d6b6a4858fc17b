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
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/mash-hub/mash/pkg/auth"
	"github.com/mash-hub/mash/pkg/calendar"
	"github.com/mash-hub/mash/pkg/db"
	"github.com/mash-hub/mash/pkg/db/dbtest"
	"github.com/mash-hub/mash/pkg/events"
	"github.com/mash-hub/mash/pkg/events/eventstest"
	"github.com/mash-hub/mash/pkg/peers"
	rulesv1 "github.com/mash-hub/mash/proto/mash/rules/v1"
	triagev1 "github.com/mash-hub/mash/proto/mash/triage/v1"
	"github.com/mash-hub/mash/services/triage"
	"github.com/mash-hub/mash/services/triage/store"
)

// benchCases is the size of the benchmark's read model.
const benchCases = 1_000_000

// benchNow is the benchmark's clock: the open cases were received in the days before it.
var benchNow = time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)

var benchPartnerships = []string{"rhondda-cynon-taf", "cardiff", "swansea", "newport", "powys", "wrexham"}

var benchConcerns = []string{"PHYSICAL_ABUSE", "SEXUAL_ABUSE", "EMOTIONAL_ABUSE", "NEGLECT", "DOMESTIC_ABUSE",
	"PARENTAL_SUBSTANCE_MISUSE", "PARENTAL_MENTAL_ILL_HEALTH", "CHILD_CRIMINAL_EXPLOITATION", "MISSING_EPISODE",
	"SELF_HARM_SUICIDAL_IDEATION", "SCHOOL_ATTENDANCE", "BEHAVIOUR", "HOUSING_HOMELESSNESS", "ONLINE_HARM"}

// benchLoader names the loader's version in the benchmark database's name: bump it whenever
// loadBench changes what it writes, so a database loaded by an older loader is not reused.
const benchLoader = "2"

// benchPool opens the benchmark database, kept between runs (named by the migrations and
// the loader's version, so a schema or loader change starts afresh) and loaded once: 1,000,000 cases over two years, almost all
// closed, a few thousand open, in six partnerships of different sizes.
func benchPool(b *testing.B) *pgxpool.Pool {
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
	name := "mash_bench_triage_" + db.Checksum(append(am, migs...))[:12] + "_l" + benchLoader
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
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM triage.cases`).Scan(&n); err != nil {
		b.Fatal(err)
	}
	if n != benchCases {
		loadBench(b, pool)
	}
	return pool
}

func loadBench(b *testing.B, pool *pgxpool.Pool) {
	b.Helper()
	ctx := context.Background()
	began := time.Now()
	if _, err := pool.Exec(ctx, `TRUNCATE triage.cases, triage.notices, triage.closed_counts CASCADE`); err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	const (
		open     = 3000
		children = 650_000
		twoYears = 2 * 365 * 24 * time.Hour
	)
	childIDs := make([]pgtype.UUID, children)
	for i := range childIDs {
		childIDs[i] = pgtype.UUID{Bytes: uuid.New(), Valid: true}
	}
	ts := func(t time.Time) pgtype.Timestamptz { return pgtype.Timestamptz{Time: t, Valid: true} }
	noTime := pgtype.Timestamptz{}
	i := 0
	cols := []string{"referral_id", "partnership", "child_id", "child_name", "child_age_years", "source_agency", "source_kind",
		"concerns", "received", "state", "level", "recommended_level", "rag", "pathway", "agencies", "decision_status",
		"decision_version", "received_at", "decision_due", "rag_due", "recommended_at", "decided_at", "decided_by", "assignee",
		"claim_expires_at", "outcome", "outcome_note", "closed_at", "closed_by", "version"}
	// One transaction: the re-referral triggers (a probe per row) are off for the copy and
	// the facts are computed in one pass after it, as the migration's backfill does.
	tx, err := pool.Begin(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `ALTER TABLE triage.cases DISABLE TRIGGER cases_link_insert, DISABLE TRIGGER cases_link_update`); err != nil {
		b.Fatal(err)
	}
	n, err := tx.CopyFrom(ctx, pgx.Identifier{"triage", "cases"}, cols, pgx.CopyFromFunc(func() ([]any, error) {
		if i == benchCases {
			return nil, nil
		}
		i++
		// Partnership sizes 6:4:3:2:1:1 or so.
		p := benchPartnerships[min(int(rng.ExpFloat64()*1.3), len(benchPartnerships)-1)]
		var state int16 = store.StateClosed
		received := benchNow.Add(-time.Duration(rng.Int64N(int64(twoYears))))
		if i <= open {
			state = []int16{store.StateAwaitingRules, store.StateAwaitingDecision, store.StateAwaitingDecision, store.StateDecided}[rng.IntN(4)]
			received = benchNow.Add(-time.Duration(rng.Int64N(int64(72 * time.Hour))))
		}
		rag := []int16{2, 2, 3, 3, 3, 4, 1}[rng.IntN(7)]
		level := int16(1 + rng.IntN(5))
		rec := level
		if rng.IntN(8) == 0 {
			rec = int16(1 + rng.IntN(5))
		}
		ragWindow := map[int16]time.Duration{1: 24 * time.Hour, 2: 72 * time.Hour, 3: 24 * time.Hour, 4: 4 * time.Hour}[rag]
		decisionDue, ragDue, recAt := ts(received.Add(24*time.Hour)), ts(received.Add(ragWindow)), ts(received.Add(time.Second))
		decidedAt, closedAt, decidedBy, closedBy := noTime, noTime, "", ""
		var status, outcome int16 = 1, 0
		version := int64(2)
		if state == store.StateAwaitingRules {
			rag, level, rec, ragDue, recAt, status, version = 0, 0, 0, noTime, noTime, 0, 1
		}
		if state == store.StateDecided || state == store.StateClosed {
			status = int16(2 + rng.IntN(2))
			decidedAt, decidedBy = ts(received.Add(time.Duration(rng.Int64N(int64(30*time.Hour))))), "client:bench (hub, practitioner)"
			version = 3
		}
		if state == store.StateClosed {
			outcome = int16(1 + rng.IntN(8))
			closedAt, closedBy = ts(decidedAt.Time.Add(time.Duration(rng.Int64N(int64(72*time.Hour))))), "client:bench (hub, practitioner)"
			version = 4
		}
		concerns := []string{benchConcerns[rng.IntN(len(benchConcerns))]}
		if rng.IntN(3) == 0 {
			concerns = append(concerns, benchConcerns[rng.IntN(len(benchConcerns))])
		}
		var assignee any
		claimExpires := noTime
		if state != store.StateClosed && rng.IntN(5) == 0 {
			assignee, claimExpires = fmt.Sprintf("prac%02d", rng.IntN(40)), ts(benchNow.Add(time.Duration(rng.IntN(60)-20)*time.Minute))
		}
		agency := fmt.Sprintf("agency-%02d", rng.IntN(20))
		return []any{pgtype.UUID{Bytes: uuid.New(), Valid: true}, p, childIDs[rng.IntN(children)], "Synthetic Child", int32(rng.IntN(18)),
			agency, "police", concerns, true, state, level, rec, rag, "triage", []string{"childrens_social_care"}, status,
			int64(1 + rng.IntN(2)), ts(received), decisionDue, ragDue, recAt, decidedAt, decidedBy, assignee, claimExpires, outcome, "",
			closedAt, closedBy, version}, nil
	}))
	if err != nil {
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
	// Notifications for the last 90 days' cases, a third of them Encompass.
	if _, err := pool.Exec(ctx, `INSERT INTO triage.notices (notification_id, referral_id, partnership, agency, kind, state,
			state_at, sent_at, acknowledged_at, ack_due)
		SELECT gen_random_uuid(), referral_id, partnership, source_agency,
			CASE WHEN random() < 0.33 THEN 'ENCOMPASS' ELSE 'ACTION' END, 'ACKNOWLEDGED', received_at, received_at + interval '5 minutes',
			received_at + random() * interval '20 hours', received_at + interval '16 hours'
		FROM triage.cases WHERE received_at > $1`, benchNow.Add(-90*24*time.Hour)); err != nil {
		b.Fatal(err)
	}
	// VACUUM as autovacuum would have long since done in service: the visibility map lets
	// the dashboard's range be an index-only scan.
	if _, err := pool.Exec(ctx, `VACUUM (ANALYZE) triage.cases`); err != nil {
		b.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `VACUUM (ANALYZE) triage.notices`); err != nil {
		b.Fatal(err)
	}
	b.Logf("loaded %d cases in %s", n, time.Since(began).Round(time.Second))
}

// benchService is a triage service over the benchmark database; only its API is used.
func benchService(b *testing.B, pool *pgxpool.Pool) *triage.Service {
	b.Helper()
	js := eventstest.JetStream(b, "triage-bench")
	cal, err := calendar.New(calendar.Config{})
	if err != nil {
		b.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	svc, err := triage.New(triage.Deps{Pool: pool, JS: js, Calendar: cal, Log: zap.NewNop(), Events: events.NewMetrics(reg),
		Registry: reg, Now: func() time.Time { return benchNow }, Peers: peers.NewBook("127.0.0.1:1", nil)})
	if err != nil {
		b.Fatal(err)
	}
	return svc
}

// BenchmarkQueueFirstPage measures the first page of the queue (50 cases and the counts per
// state) through the service's API with 1,000,000 cases in the read model. Target: < 20 ms.
// Run: go test -run '^$' -bench 'QueueFirstPage|Dashboard' -benchtime 200x ./services/triage/
func BenchmarkQueueFirstPage(b *testing.B) {
	pool := benchPool(b)
	api := benchService(b, pool).API()
	ctx := auth.WithIdentity(context.Background(), auth.Identity{ClientID: "prac07", Agency: "rct-mash", Kind: "hub", Role: auth.RolePractitioner})
	for _, bc := range []struct {
		name string
		req  *triagev1.ListQueueRequest
	}{
		{"default", &triagev1.ListQueueRequest{}},
		{"partnership", &triagev1.ListQueueRequest{Partnership: "cardiff"}},
		{"red", &triagev1.ListQueueRequest{Rags: []rulesv1.Rag{rulesv1.Rag_RAG_RED}}},
		{"concern", &triagev1.ListQueueRequest{Partnership: "rhondda-cynon-taf", Concern: "NEGLECT"}},
		{"overdue", &triagev1.ListQueueRequest{OverdueOnly: true}},
		{"unassigned", &triagev1.ListQueueRequest{Assignee: "none", Partnership: "swansea"}},
		{"mine", &triagev1.ListQueueRequest{Assignee: "me", States: []triagev1.CaseState{triagev1.CaseState_AWAITING_DECISION, triagev1.CaseState_DECIDED}}},
		{"decided", &triagev1.ListQueueRequest{States: []triagev1.CaseState{triagev1.CaseState_DECIDED}}},
		// Closed cases are the whole table: listed in order, and counted.
		{"closed_partnership", &triagev1.ListQueueRequest{Partnership: "powys", States: []triagev1.CaseState{triagev1.CaseState_CLOSED}}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				resp, err := api.ListQueue(ctx, bc.req)
				if err != nil {
					b.Fatal(err)
				}
				if len(resp.GetCounts()) == 0 {
					b.Fatal("no counts")
				}
			}
		})
	}
}

// BenchmarkDashboard measures the management information over the last 90 days (about
// 123,000 referrals) with 1,000,000 cases in the read model.
func BenchmarkDashboard(b *testing.B) {
	pool := benchPool(b)
	api := benchService(b, pool).API()
	ctx := auth.WithIdentity(context.Background(), auth.Identity{ClientID: "mgr", Agency: "rct-mash", Kind: "hub", Role: auth.RoleManager})
	from, to := timestamppb.New(benchNow.Add(-90*24*time.Hour)), timestamppb.New(benchNow)
	for _, bc := range []struct {
		name string
		req  *triagev1.GetDashboardRequest
	}{
		{"all_90d", &triagev1.GetDashboardRequest{From: from, To: to}},
		{"partnership_90d", &triagev1.GetDashboardRequest{Partnership: "cardiff", From: from, To: to}},
		{"partnership_7d", &triagev1.GetDashboardRequest{Partnership: "cardiff", From: timestamppb.New(benchNow.Add(-7 * 24 * time.Hour)), To: to}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := api.GetDashboard(ctx, bc.req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
