package rules_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

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
	"github.com/mash-hub/mash/pkg/db"
	"github.com/mash-hub/mash/pkg/db/dbtest"
	"github.com/mash-hub/mash/pkg/events"
	"github.com/mash-hub/mash/pkg/events/eventstest"
	"github.com/mash-hub/mash/pkg/server"
	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
	intakev1 "github.com/mash-hub/mash/proto/mash/intake/v1"
	rulesv1 "github.com/mash-hub/mash/proto/mash/rules/v1"
	"github.com/mash-hub/mash/services/rules"
	"github.com/mash-hub/mash/services/rules/packs"
	"github.com/mash-hub/mash/services/rules/store"
)

func migrationsKey(t testing.TB) string {
	t.Helper()
	am, err := auth.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	rm, err := store.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	return "rules_" + db.Checksum(append(append(am, rm...), db.Migration{Name: "default-pack", SQL: string(packs.Default())}))
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
	return rules.Migrate(ctx, pool)
}

// env is a running rules service fed by events published straight to its embedded
// JetStream, as intake's relay would.
type env struct {
	pool    *pgxpool.Pool
	js      jetstream.JetStream
	auth    *auth.Store
	httpURL string
	client  rulesv1.RulesServiceClient
	now     time.Time
}

func newEnv(t testing.TB) *env {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pool := dbtest.NewPool(t, migrationsKey(t), migrateAll)
	js := eventstest.JetStream(t, "rules-test")
	cal, err := calendar.New(calendar.Config{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	reg := prometheus.NewRegistry()
	svc, err := rules.New(rules.Deps{Pool: pool, JS: js, Calendar: cal, Log: zap.NewNop(), Events: events.NewMetrics(reg), Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	authStore := auth.NewStore(pool)
	srv := server.New(server.Config{GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0"}, zap.NewNop(), authStore, reg)
	svc.Register(srv)
	ls, err := srv.Listen()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{}, 2)
	go func() { _ = srv.Serve(ctx, ls); done <- struct{}{} }()
	go func() { _ = svc.Run(ctx); done <- struct{}{} }()
	conn, err := grpc.NewClient(ls.GRPC.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(); cancel(); <-done; <-done })
	return &env{pool: pool, js: js, auth: authStore, httpURL: "http://" + ls.HTTP.Addr().String(),
		client: rulesv1.NewRulesServiceClient(conn), now: now}
}

func (e *env) token(t *testing.T, role auth.Role) context.Context {
	t.Helper()
	_, token, err := e.auth.Create(context.Background(), "rct-mash", "hub", role, "test", auth.AllPartnerships)
	if err != nil {
		t.Fatal(err)
	}
	return metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+token)
}

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

// lowLevel is a referral that on its own is a low-level concern: school attendance, from a
// school, about the example child.
func lowLevel(t testing.TB, category intakev1.ConcernCategory) *intakev1.ReferralSubmission {
	sub := example(t)
	sub.RiskIndicators = &intakev1.RiskIndicators{}
	sub.Concerns = []*intakev1.Concern{{Category: category, Summary: "Synthetic low-level concern.",
		ObservedAt: timestamppb.New(time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC))}}
	return sub
}

// received publishes mash.referral.received for sub as intake would and returns the
// referral id and the envelope.
func (e *env) received(t testing.TB, id string, receivedAt time.Time, sub *intakev1.ReferralSubmission) *eventsv1.Envelope {
	t.Helper()
	ref := &intakev1.Referral{Id: id, Reference: "MASH-TEST-" + id[:8], Agency: "south-wales-police", AgencyKind: "police",
		ExternalReference: sub.GetExternalReference(), Partnership: sub.GetPartnership(), ReceivedAt: timestamppb.New(receivedAt),
		Status: intakev1.ReferralStatus_RECEIVED, DecisionDue: timestamppb.New(receivedAt.Add(24 * time.Hour)), Version: 1, Submission: sub}
	env, raw, err := events.NewEnvelope("mash.referral.received", ref.GetPartnership(), id, 1, receivedAt, events.System("test"), &eventsv1.ReferralReceived{Referral: ref})
	if err != nil {
		t.Fatal(err)
	}
	e.publish(t, env.GetEventId(), raw)
	return env
}

func (e *env) publish(t testing.TB, msgID string, raw []byte) {
	t.Helper()
	if _, err := e.js.PublishMsg(context.Background(), &nats.Msg{Subject: "mash.referral.received", Data: raw}, jetstream.WithMsgID(msgID)); err != nil {
		t.Fatal(err)
	}
}

// decided publishes the decision as triage would (mash.decision.made), as of version of d
// with status and current outcome, and waits for rules to serve that version.
func (e *env) decided(t *testing.T, ctx context.Context, d *rulesv1.Decision, status rulesv1.DecisionStatus, current *rulesv1.Outcome, by string) *rulesv1.Decision {
	t.Helper()
	next := proto.Clone(d).(*rulesv1.Decision)
	next.Version, next.Status, next.ReviewedBy, next.ReviewedByRole = d.GetVersion()+1, status, by, "practitioner"
	next.ReviewedAt, next.ReviewReason = timestamppb.New(e.now), "decided in triage"
	if current != nil {
		next.Current = current
	}
	_, raw, err := events.NewEnvelope(rules.EventDecisionMade, d.GetPartnership(), d.GetReferralId(), next.GetVersion()+1, e.now, events.System("test"),
		&eventsv1.DecisionMade{Decision: next, Previous: d.GetCurrent()})

	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.js.Publish(context.Background(), rules.EventDecisionMade, raw); err != nil {
		t.Fatal(err)
	}
	// Once the decisions consumer has taken everything published, the decision is recorded
	// or never will be.
	eventstest.Drained(t, e.js, "rules-decisions")
	// The consumer's counts can lag the stream by a moment after a publish, so the recorded
	// version is also waited for, within a bound.
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := e.decision(t, ctx, d.GetReferralId())
		if got.GetVersion() >= next.GetVersion() {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("rules did not record decision v%d of %s (has v%d)", next.GetVersion(), d.GetReferralId(), got.GetVersion())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// decision waits for the referral's decision.
func (e *env) decision(t *testing.T, ctx context.Context, referralID string) *rulesv1.Decision {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := e.client.GetDecision(ctx, &rulesv1.GetDecisionRequest{ReferralId: referralID})
		if err == nil {
			return resp.GetDecision()
		}
		if time.Now().After(deadline) {
			t.Fatalf("no decision for %s: %v", referralID, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// events returns the messages on subject, once the stream holds at least want of them.
func (e *env) events(t *testing.T, subject string, want int) []*jetstream.RawStreamMsg {
	t.Helper()
	return eventstest.Messages(t, e.js, subject, want)
}

func decode[T proto.Message](t *testing.T, raw []byte, payload T) (*eventsv1.Envelope, T) {
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

func httpDo(t *testing.T, method, url, token, contentType, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// dropTestsMentioning removes the pack test cases whose text mentions word.
func dropTestsMentioning(t *testing.T, src, word string) string {
	t.Helper()
	i := strings.Index(src, "\ntests:")
	if i < 0 {
		t.Fatal("pack has no tests section")
	}
	head, tests := src[:i+len("\ntests:")], src[i+len("\ntests:"):]
	parts := strings.Split(tests, "\n  - name:")
	out := parts[0]
	for _, p := range parts[1:] {
		if !strings.Contains(p, word) {
			out += "\n  - name:" + p
		}
	}
	return head + out
}
