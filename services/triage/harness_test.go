package triage_test

import (
	"context"
	"crypto/rand"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/mash-hub/mash/pkg/auth"
	"github.com/mash-hub/mash/pkg/calendar"
	"github.com/mash-hub/mash/pkg/casekeys"
	"github.com/mash-hub/mash/pkg/db"
	"github.com/mash-hub/mash/pkg/db/dbtest"
	"github.com/mash-hub/mash/pkg/events"
	"github.com/mash-hub/mash/pkg/events/eventstest"
	"github.com/mash-hub/mash/pkg/peers"
	"github.com/mash-hub/mash/pkg/server"
	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
	intakev1 "github.com/mash-hub/mash/proto/mash/intake/v1"
	rulesv1 "github.com/mash-hub/mash/proto/mash/rules/v1"
	triagev1 "github.com/mash-hub/mash/proto/mash/triage/v1"
	"github.com/mash-hub/mash/services/rules"
	"github.com/mash-hub/mash/services/rules/packs"
	rulesstore "github.com/mash-hub/mash/services/rules/store"
	"github.com/mash-hub/mash/services/triage"
	"github.com/mash-hub/mash/services/triage/store"
)

func migrationsKey(t testing.TB) string {
	t.Helper()
	am, err := auth.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	rm, err := rulesstore.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	tm, err := store.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	all := append(append(append(append(am, rm...), tm...), casekeys.Migrations()...), db.Migration{Name: "default-pack", SQL: string(packs.Default())})
	return "triage_" + db.Checksum(all)
}

func migrateAll(ctx context.Context, url string) error {
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := auth.Migrate(ctx, pool); err != nil {
		return err
	}
	if err := rules.Migrate(ctx, pool); err != nil {
		return err
	}
	if err := casekeys.Migrate(ctx, pool); err != nil {
		return err
	}
	return triage.Migrate(ctx, pool)
}

// clock is the injected time of both services; tests move it instead of sleeping.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// env is a running triage service, with the rules service in the same server so DecideCase
// reaches it over gRPC through a peer book, fed by events published straight to an embedded
// JetStream.
type env struct {
	pool    *pgxpool.Pool
	js      jetstream.JetStream
	auth    *auth.Store
	svc     *triage.Service
	cal     *calendar.Calendar
	clock   *clock
	httpURL string
	client  triagev1.TriageServiceClient
	rules   rulesv1.RulesServiceClient
	conn    *grpc.ClientConn
	// keys holds the case keys when the env runs with caseKeys.
	keys *casekeys.Store
}

type envOptions struct {
	// runRules runs the rules service's consumer, so received referrals are decided by the
	// default pack. Without it, tests publish the decisions they want.
	runRules bool
	// caseKeys seals the services' event payloads under case keys (env.keys), as mash serve
	// does with MASH_CASE_KEK.
	caseKeys bool
	// qaPercent is the share of decided cases sampled for quality review (0: the default).
	qaPercent int
}

// start is Thursday 26 November 2026, 10:00 UTC (GMT): a working day.
var start = time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)

func newEnv(t testing.TB, opts envOptions) *env {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pool := dbtest.NewPool(t, migrationsKey(t), migrateAll)
	js := eventstest.JetStream(t, "triage-test")
	cal, err := calendar.New(calendar.Config{})
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{t: start}
	reg := prometheus.NewRegistry()
	metrics := events.NewMetrics(reg)
	authStore := auth.NewStore(pool)
	srv := server.New(server.Config{GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0"}, zap.NewNop(), authStore, reg)
	ls, err := srv.Listen()
	if err != nil {
		t.Fatal(err)
	}
	book := peers.NewBook(ls.GRPC.Addr().String(), nil)
	t.Cleanup(func() { _ = book.Close() })
	var keys *casekeys.Store
	var cipher events.PayloadCipher
	if opts.caseKeys {
		kek := make([]byte, casekeys.KEKSize)
		if _, err := rand.Read(kek); err != nil {
			t.Fatal(err)
		}
		w, err := casekeys.NewLocalWrapper(kek)
		if err != nil {
			t.Fatal(err)
		}
		if keys, err = casekeys.New(pool, w, casekeys.Options{}); err != nil {
			t.Fatal(err)
		}
		cipher = keys
	}
	rulesSvc, err := rules.New(rules.Deps{Pool: pool, JS: js, Calendar: cal, Log: zap.NewNop(), Events: metrics, Now: clk.Now,
		Registry: prometheus.NewRegistry(), Cipher: cipher})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := triage.New(triage.Deps{Pool: pool, JS: js, Calendar: cal, Log: zap.NewNop(), Events: metrics, Now: clk.Now,
		Registry: prometheus.NewRegistry(), Peers: book, SweepEvery: time.Hour, Cipher: cipher, QualitySamplePercent: opts.qaPercent})
	if err != nil {
		t.Fatal(err)
	}
	rulesSvc.Register(srv)
	svc.Register(srv)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = srv.Serve(ctx, ls) }()
	go func() { defer wg.Done(); _ = svc.Run(ctx) }()
	if opts.runRules {
		wg.Add(1)
		go func() { defer wg.Done(); _ = rulesSvc.Run(ctx) }()
	}
	conn, err := grpc.NewClient(ls.GRPC.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(); cancel(); wg.Wait() })
	return &env{pool: pool, js: js, auth: authStore, svc: svc, cal: cal, clock: clk, keys: keys, httpURL: "http://" + ls.HTTP.Addr().String(),
		client: triagev1.NewTriageServiceClient(conn), rules: rulesv1.NewRulesServiceClient(conn), conn: conn}
}

// caller is a credential: a context for gRPC calls, the token for HTTP, and the client id.
type caller struct {
	ctx   context.Context
	token string
	id    string
}

func (e *env) caller(t testing.TB, role auth.Role, agency string) caller {
	t.Helper()
	kind := "hub"
	if role == auth.RoleReferrer {
		kind = "police"
	}
	var partnerships []string
	if auth.HubRole(role) {
		partnerships = []string{auth.AllPartnerships}
	}
	c, token, err := e.auth.Create(context.Background(), agency, kind, role, "test", partnerships...)
	if err != nil {
		t.Fatal(err)
	}
	return caller{ctx: metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+token), token: token, id: c.ClientID}
}

func (e *env) staff(t testing.TB, role auth.Role) caller { return e.caller(t, role, "rct-mash") }

// publish puts an event on the stream as its producer's relay would.
func (e *env) publish(t testing.TB, msgID, subject string, raw []byte) {
	t.Helper()
	if _, err := e.js.PublishMsg(context.Background(), &nats.Msg{Subject: subject, Data: raw}, jetstream.WithMsgID(msgID)); err != nil {
		t.Fatal(err)
	}
}

// event builds and publishes an event; it returns the envelope bytes for redelivery.
func (e *env) event(t testing.TB, subject, partnership, referralID string, version int64, at time.Time, payload proto.Message) (string, []byte) {
	t.Helper()
	ev, raw, err := events.NewEnvelope(subject, partnership, referralID, version, at, events.System("test"), payload)
	if err != nil {
		t.Fatal(err)
	}
	e.publish(t, ev.GetEventId(), subject, raw)
	return ev.GetEventId(), raw
}

// referral describes a synthetic referral.
type referral struct {
	id, partnership, agency string
	concerns                []intakev1.ConcernCategory
	receivedAt              time.Time
	nhs                     string
}

func (r referral) proto() *intakev1.Referral {
	sub := &intakev1.ReferralSubmission{ExternalReference: "ext-" + r.id[:8], Partnership: r.partnership,
		Child: &intakev1.Child{GivenName: "Test", FamilyName: "Child", DateOfBirth: "2016-03-01", NhsNumber: r.nhs}}
	for _, c := range r.concerns {
		sub.Concerns = append(sub.Concerns, &intakev1.Concern{Category: c, Summary: "Synthetic.", ObservedAt: timestamppb.New(r.receivedAt.Add(-time.Hour))})
	}
	return &intakev1.Referral{Id: r.id, Reference: "MASH-TEST-" + r.id[:8], Agency: r.agency, AgencyKind: "police",
		Partnership: r.partnership, ReceivedAt: timestamppb.New(r.receivedAt), Status: intakev1.ReferralStatus_RECEIVED,
		DecisionDue: timestamppb.New(r.receivedAt.Add(24 * time.Hour)), Version: 1, Submission: sub}
}

func (e *env) received(t testing.TB, r referral) {
	t.Helper()
	e.event(t, "mash.referral.received", r.partnership, r.id, 1, r.receivedAt, &eventsv1.ReferralReceived{Referral: r.proto()})
}

// decision builds a rules decision for tests that publish decisions themselves.
func decision(referralID, partnership string, version int64, status rulesv1.DecisionStatus, level rulesv1.Level, rag rulesv1.Rag,
	decisionDue, ragDue time.Time) *rulesv1.Decision {
	d := &rulesv1.Decision{Id: uuid.NewSHA1(uuid.NameSpaceOID, []byte(referralID)).String(), ReferralId: referralID, Partnership: partnership,
		Recommended: &rulesv1.Outcome{Level: level, Rag: rag, Pathway: "triage", Agencies: []string{"childrens_social_care"}},
		Current:     &rulesv1.Outcome{Level: level, Rag: rag, Pathway: "triage", Agencies: []string{"childrens_social_care"}},
		Status:      status, DecidedAt: timestamppb.New(start), DecisionDue: timestamppb.New(decisionDue),
		ResponseDue: timestamppb.New(ragDue), ChildId: uuid.NewSHA1(uuid.NameSpaceURL, []byte(referralID)).String(), Version: version}
	if status != rulesv1.DecisionStatus_RECOMMENDED {
		d.ReviewedBy, d.ReviewedAt = "client:test (rct-mash, practitioner)", timestamppb.New(start)
	}
	return d
}

func (e *env) decided(t testing.TB, d *rulesv1.Decision) (string, []byte) {
	t.Helper()
	switch d.GetStatus() {
	case rulesv1.DecisionStatus_CONFIRMED, rulesv1.DecisionStatus_OVERRIDDEN:
		return e.event(t, triage.EventDecisionMade, d.GetPartnership(), d.GetReferralId(), d.GetVersion()+1, start, &eventsv1.DecisionMade{Decision: d})
	}
	return e.event(t, rules.EventRecommended, d.GetPartnership(), d.GetReferralId(), d.GetVersion()+1, start, &eventsv1.RecommendationMade{Decision: d})
}

// eventually polls cond until it holds or fails the test after 15 s.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// row reads a case straight from the read model.
func (e *env) row(t testing.TB, referralID string) (store.Case, bool) {
	t.Helper()
	c, err := store.GetCase(context.Background(), e.pool, referralID)
	if err == store.ErrNotFound {
		return c, false
	}
	if err != nil {
		t.Fatal(err)
	}
	return c, true
}

// waitCase waits until the case satisfies cond.
func (e *env) waitCase(t testing.TB, referralID string, cond func(store.Case) bool) store.Case {
	t.Helper()
	var c store.Case
	eventually(t, "case "+referralID, func() bool {
		var ok bool
		c, ok = e.row(t, referralID)
		return ok && cond(c)
	})
	return c
}

// streamEvents returns the messages on subject, once the stream holds at least want of them.
func (e *env) streamEvents(t testing.TB, subject string, want int) []*jetstream.RawStreamMsg {
	t.Helper()
	return eventstest.Messages(t, e.js, subject, want)
}

func decode[T proto.Message](t testing.TB, raw []byte, payload T) (*eventsv1.Envelope, T) {
	t.Helper()
	var env eventsv1.Envelope
	if err := proto.Unmarshal(raw, &env); err != nil {
		t.Fatal(err)
	}
	if err := env.GetPayload().UnmarshalTo(payload); err != nil {
		t.Fatal(err)
	}
	return &env, payload
}

func httpDo(t testing.TB, method, url, token, body string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// example is intake's shared example referral: level 4, Red under the default pack.
func example(t testing.TB) *intakev1.ReferralSubmission {
	t.Helper()
	b, err := os.ReadFile("../intake/testdata/referral.example.json")
	if err != nil {
		t.Fatal(err)
	}
	sub := &intakev1.ReferralSubmission{}
	if err := protojson.Unmarshal(b, sub); err != nil {
		t.Fatal(err)
	}
	return sub
}

// receivedSubmission publishes mash.referral.received for a full submission (for the rules
// service to decide).
func (e *env) receivedSubmission(t testing.TB, id, agency string, receivedAt time.Time, sub *intakev1.ReferralSubmission) {
	t.Helper()
	ref := &intakev1.Referral{Id: id, Reference: "MASH-TEST-" + id[:8], Agency: agency, AgencyKind: "police",
		ExternalReference: sub.GetExternalReference(), Partnership: sub.GetPartnership(), ReceivedAt: timestamppb.New(receivedAt),
		Status: intakev1.ReferralStatus_RECEIVED, DecisionDue: timestamppb.New(receivedAt.Add(24 * time.Hour)), Version: 1, Submission: sub}
	e.event(t, "mash.referral.received", ref.GetPartnership(), id, 1, receivedAt, &eventsv1.ReferralReceived{Referral: ref})
}

// fromJSON decodes an HTTP/JSON response after checking it succeeded. (protojson output is
// deliberately unstable in its spacing, so tests parse it rather than match text.)
func fromJSON[T proto.Message](t testing.TB, code int, body string, m T) T {
	t.Helper()
	if code != http.StatusOK {
		t.Fatalf("HTTP %d: %s", code, body)
	}
	if err := protojson.Unmarshal([]byte(body), m); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	return m
}

// drained waits until the triage consumer has nothing pending or unacknowledged.
func (e *env) drained(t testing.TB) {
	t.Helper()
	for _, durable := range []string{"triage", "triage-notices"} {
		eventually(t, "the "+durable+" consumer to drain", func() bool {
			c, err := e.js.Consumer(context.Background(), events.StreamName, durable)
			if err != nil {
				return false
			}
			info, err := c.Info(context.Background())
			return err == nil && info.NumPending == 0 && info.NumAckPending == 0
		})
	}
}

// checkCounters fails the test if the trigger-kept closed-case counters disagree with the
// cases, for any partnership.
func (e *env) checkCounters(t testing.TB) {
	t.Helper()
	var diff int
	if err := e.pool.QueryRow(context.Background(), `SELECT count(*)
			FROM (SELECT partnership, count(*) FILTER (WHERE state = 4) AS n FROM triage.cases GROUP BY 1) c
			FULL JOIN (SELECT partnership, sum(count) AS n FROM triage.closed_counts GROUP BY 1) s USING (partnership)
			WHERE coalesce(c.n, 0) <> coalesce(s.n, 0)`).Scan(&diff); err != nil {
		t.Fatal(err)
	}
	if diff != 0 {
		t.Fatalf("closed-case counters disagree with the cases for %d partnerships", diff)
	}
}
