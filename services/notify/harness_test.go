package notify_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
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
	"github.com/mash-hub/mash/pkg/server"
	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
	intakev1 "github.com/mash-hub/mash/proto/mash/intake/v1"
	notifyv1 "github.com/mash-hub/mash/proto/mash/notify/v1"
	rulesv1 "github.com/mash-hub/mash/proto/mash/rules/v1"
	"github.com/mash-hub/mash/services/notify"
	"github.com/mash-hub/mash/services/notify/channel"
	"github.com/mash-hub/mash/services/notify/directory"
	"github.com/mash-hub/mash/services/notify/seal"
	"github.com/mash-hub/mash/services/notify/store"
)

func migrationsKey(t testing.TB) string {
	t.Helper()
	am, err := auth.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	nm, err := store.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	return "notify_" + db.Checksum(slices.Concat(am, nm, casekeys.Migrations()))
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
	if err := casekeys.Migrate(ctx, pool); err != nil {
		return err
	}
	return notify.Migrate(ctx, pool)
}

// clock is real time plus an offset tests move forward, so retries with short backoff run
// by themselves while escalation deadlines are reached without sleeping.
type clock struct{ offset atomic.Int64 }

func (c *clock) Now() time.Time { return time.Now().Add(time.Duration(c.offset.Load())) }

// testStart is a Wednesday morning in term time, inside every agency's hours.
var testStart = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

func clockAt(t time.Time) *clock {
	c := &clock{}
	c.offset.Store(int64(time.Until(t)))
	return c
}

func (e *env) clockOffset() time.Duration { return time.Duration(e.clock.offset.Load()) }

func (c *clock) Advance(d time.Duration) { c.offset.Add(int64(d)) }

// receiver is an agency's webhook endpoint. It verifies every signature and records each
// delivery; respond decides the status of each call (nil: 200).
type receiver struct {
	t       testing.TB
	secret  string
	srv     *httptest.Server
	mu      sync.Mutex
	got     []delivery
	calls   atomic.Int64
	respond func(call int64) (status int, delay time.Duration)
}

type delivery struct {
	key  string
	kind string
	at   time.Time
	msg  *notifyv1.AgencyMessage
	body string
}

func newReceiver(t testing.TB) *receiver {
	r := &receiver{t: t, secret: strings.Repeat("ab", 24) + uuid.NewString()[:8]}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	n := r.calls.Add(1)
	if r.respond != nil {
		status, delay := r.respond(n)
		if delay > 0 {
			select {
			case <-time.After(delay):
			case <-req.Context().Done():
				return
			}
		}
		if status != 200 {
			w.WriteHeader(status)
			return
		}
	}
	body, _ := io.ReadAll(req.Body)
	if err := channel.VerifySignature([]byte(r.secret), req.Header.Get(channel.HeaderTimestamp), req.Header.Get(channel.HeaderSignature),
		body, time.Now(), channel.DefaultTolerance); err != nil {
		r.t.Errorf("signature: %v", err)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var m notifyv1.AgencyMessage
	if err := protojson.Unmarshal(body, &m); err != nil {
		r.t.Errorf("body: %v", err)
	}
	r.mu.Lock()
	r.got = append(r.got, delivery{key: req.Header.Get(channel.HeaderIdempotencyKey), kind: req.Header.Get(channel.HeaderKind), at: time.Now(), msg: &m, body: string(body)})
	r.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

func (r *receiver) deliveries() []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

// ofKind returns the deliveries of a message kind.
func (r *receiver) ofKind(kind notifyv1.NotificationKind) []delivery {
	var out []delivery
	for _, d := range r.deliveries() {
		if d.msg.GetKind() == kind {
			out = append(out, d)
		}
	}
	return out
}

// agencies of the test partnership, one receiver each.
type agencies struct {
	police, social, duty, school, ooh *receiver
}

const partnership = "rhondda-cynon-taf"

// env is a running notify service fed by events published straight to its JetStream, as the
// intake and rules relays would.
type env struct {
	t       testing.TB
	pool    *pgxpool.Pool
	js      jetstream.JetStream
	auth    *auth.Store
	svc     *notify.Service
	clock   *clock
	httpURL string
	// grpcAddr is the running instance's gRPC listener.
	grpcAddr string
	client   notifyv1.NotifyServiceClient
	ag       agencies
	stop     func()
	cfg      notify.DeliveryConfig
	async    bool // publish without waiting for the broker's ack (benchmarks)
	// key seals webhook secrets; the same across restarts, as in a deployment.
	key []byte
	// cipher seals events' personal data under case keys; nil (in the clear) unless a test
	// is about sealing.
	cipher events.PayloadCipher
}

type envOption func(*notify.DeliveryConfig)

func newEnv(t testing.TB, opts ...envOption) *env {
	t.Helper()
	pool := dbtest.NewPool(t, migrationsKey(t), migrateAll)
	js := eventstest.JetStream(t, "notify-test")
	e := &env{t: t, pool: pool, js: js, auth: auth.NewStore(pool), clock: clockAt(testStart),
		cfg: notify.DeliveryConfig{BaseBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond, SendTimeout: 2 * time.Second,
			Poll: 20 * time.Millisecond, EscalationEvery: time.Hour, MaxAttempts: 5}}
	for _, o := range opts {
		o(&e.cfg)
	}
	var err error
	if e.key, err = seal.NewKey(); err != nil {
		t.Fatal(err)
	}
	e.ag = agencies{police: newReceiver(t), social: newReceiver(t), duty: newReceiver(t), school: newReceiver(t), ooh: newReceiver(t)}
	e.start()
	e.loadDirectory(t)
	return e
}

// start runs a service instance (a fresh process, as far as the database and broker can tell).
func (e *env) start() {
	t := e.t
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cal, err := calendar.New(calendar.Config{})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	svc, err := notify.New(notify.Deps{Pool: e.pool, JS: e.js, Calendar: cal, Log: zap.NewNop(), Events: events.NewMetrics(reg), Registry: reg,
		Delivery: e.cfg, Now: e.clock.Now, SecretKey: e.key, Cipher: e.cipher})
	if err != nil {
		t.Fatal(err)
	}
	srv := server.New(server.Config{GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0"}, zap.NewNop(), e.auth, reg)
	svc.Register(srv)
	ls, err := srv.Listen()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{}, 2)
	go func() { _ = srv.Serve(ctx, ls); done <- struct{}{} }()
	go func() {
		if err := svc.Run(ctx); err != nil {
			t.Errorf("notify run: %v", err)
		}
		done <- struct{}{}
	}()
	conn, err := grpc.NewClient(ls.GRPC.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	e.stop = func() { once.Do(func() { conn.Close(); cancel(); <-done; <-done }) }
	t.Cleanup(e.stop)
	e.svc, e.httpURL, e.client = svc, "http://"+ls.HTTP.Addr().String(), notifyv1.NewNotifyServiceClient(conn)
	e.grpcAddr = ls.GRPC.Addr().String()
}

func (e *env) restart() {
	e.stop()
	e.start()
}

func (e *env) loadDirectory(t testing.TB) {
	t.Helper()
	e.load(t, e.directoryFile())
}

// load replaces the test partnership's directory with f.
func (e *env) load(t testing.TB, f directory.File) {
	t.Helper()
	for i := range f.Partnerships {
		f.Partnerships[i].Normalise()
	}
	for i := range f.Agencies {
		f.Agencies[i].Normalise()
	}
	if err := e.svc.LoadDirectory(context.Background(), f, "test"); err != nil {
		t.Fatal(err)
	}
}

// directoryFile is the test partnership's directory: one receiver per agency.
func (e *env) directoryFile() directory.File {
	return directory.File{
		Partnerships: []directory.Partnership{{ID: partnership, DutyManager: "rct-duty-manager", ConsoleURL: "https://mash.example.test",
			SchoolDay: directory.SchoolDay{Closures: []string{"2026-12-21..2027-01-01"}}}},
		Agencies: []directory.Agency{
			{ID: "south-wales-police", Partnership: partnership, Name: "South Wales Police PPU", Roles: []string{"police"}, Channel: "webhook", URL: e.ag.police.srv.URL, Secret: []byte(e.ag.police.secret)},
			{ID: "rct-csc", Partnership: partnership, Name: "RCT Children's Services duty team", Roles: []string{"childrens_social_care"}, Channel: "webhook",
				URL: e.ag.social.srv.URL, Secret: []byte(e.ag.social.secret), HoursStart: "09:00", HoursEnd: "17:00", OutOfHours: "rct-edt"},
			{ID: "rct-edt", Partnership: partnership, Name: "Emergency Duty Team", Roles: []string{"emergency_duty"}, Channel: "webhook", URL: e.ag.ooh.srv.URL, Secret: []byte(e.ag.ooh.secret)},
			{ID: "rct-duty-manager", Partnership: partnership, Name: "MASH duty manager", Roles: []string{"duty_manager"}, Channel: "webhook", URL: e.ag.duty.srv.URL, Secret: []byte(e.ag.duty.secret)},
			{ID: "example-primary-dsl", Partnership: partnership, Name: "Example Primary DSL", Roles: []string{"school_dsl"}, Channel: "webhook",
				URL: e.ag.school.srv.URL, Secret: []byte(e.ag.school.secret), Schools: []string{"Example Primary School"}},
		},
	}
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

// referral publishes mash.referral.received for the example referral (from police, about a
// school-age child, domestic abuse) and returns it.
func (e *env) referral(t testing.TB, mutate ...func(*intakev1.Referral)) *intakev1.Referral {
	t.Helper()
	id := uuid.NewString()
	now := e.clock.Now()
	ref := &intakev1.Referral{Id: id, Reference: "MASH-2026-" + id[:7], Agency: "south-wales-police", AgencyKind: "police",
		ExternalReference: "SWP-" + id[:8], Partnership: partnership, ReceivedAt: timestamppb.New(now),
		Status: intakev1.ReferralStatus_RECEIVED, Version: 1, Submission: example(t)}
	// The family agreed to sharing unless a test says otherwise: consent is a gate, tested
	// on its own (sharing_test.go).
	ref.Submission.Consent = &intakev1.Consent{Status: intakev1.ConsentStatus_GIVEN}
	for _, m := range mutate {
		m(ref)
	}
	e.publish(t, "mash.referral.received", ref.GetId(), 1, &eventsv1.ReferralReceived{Referral: ref})
	return ref
}

// What a test publishes with decide: the rules' recommendation, or a practitioner's
// decision (mash.decision.made) confirming or overriding it.
const (
	recommended = "recommended"
	confirmed   = "confirmed"
	overridden  = "overridden"
)

// decide publishes a recommendation or decision event (what is one of the kinds above) for
// ref with the outcome given.
func (e *env) decide(t testing.TB, what string, ref *intakev1.Referral, decisionID string, version int64, level rulesv1.Level, rag rulesv1.Rag, roles ...string) *eventsv1.Envelope {
	t.Helper()
	d := &rulesv1.Decision{Id: decisionID, ReferralId: ref.GetId(), Partnership: partnership, Version: version,
		Status: rulesv1.DecisionStatus_RECOMMENDED, DecidedAt: timestamppb.New(e.clock.Now()),
		Current: &rulesv1.Outcome{Level: level, Rag: rag, Pathway: "strategy_discussion", Agencies: roles, Reason: "synthetic test decision",
			ReasonCy: "penderfyniad prawf synthetig",
			Fired:    []*rulesv1.FiredRule{{Id: "test-rule"}}}}
	d.Recommended = d.Current
	switch what {
	case recommended:
		return e.publish(t, "mash.recommendation.made", ref.GetId(), version+1, &eventsv1.RecommendationMade{Decision: d})
	case confirmed:
		d.Status, d.ReviewedBy, d.ReviewedByRole = rulesv1.DecisionStatus_CONFIRMED, "user:p1", "practitioner"
	case overridden:
		d.Status, d.ReviewedBy, d.ReviewedByRole = rulesv1.DecisionStatus_OVERRIDDEN, "user:p1", "practitioner"
		d.ReviewReason = "practitioner override in test"
	default:
		t.Fatalf("decide: %q is not recommended, confirmed or overridden", what)
	}
	d.ReviewedAt = timestamppb.New(e.clock.Now())
	return e.publish(t, "mash.decision.made", ref.GetId(), version+1, &eventsv1.DecisionMade{Decision: d})
}

func (e *env) publish(t testing.TB, subject, referralID string, version int64, payload proto.Message) *eventsv1.Envelope {
	t.Helper()
	env, raw, err := events.NewEnvelope(subject, partnership, referralID, version, e.clock.Now(), events.System("test"), payload)
	if err != nil {
		t.Fatal(err)
	}
	if e.async {
		// Open loop: the generator never waits for the broker, as upstream services don't.
		if _, err := e.js.PublishMsgAsync(&nats.Msg{Subject: subject, Data: raw}, jetstream.WithMsgID(env.GetEventId())); err != nil {
			t.Fatal(err)
		}
		return env
	}
	e.publishRaw(t, subject, env.GetEventId(), raw)
	return env
}

func (e *env) publishRaw(t testing.TB, subject, msgID string, raw []byte) {
	t.Helper()
	if _, err := e.js.PublishMsg(context.Background(), &nats.Msg{Subject: subject, Data: raw}, jetstream.WithMsgID(msgID)); err != nil {
		t.Fatal(err)
	}
}

// notifications lists a referral's notifications once cond holds for them (or fails).
func (e *env) waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// rows reads a referral's notifications straight from the store.
func (e *env) rows(t testing.TB, referralID string) []store.Notification {
	t.Helper()
	ns, err := store.New(e.pool).List(context.Background(), store.Filter{ReferralID: referralID, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return ns
}

// settled waits until none of a referral's notifications is pending or sending.
func (e *env) settled(t testing.TB, referralID string, atLeast int) []store.Notification {
	t.Helper()
	var ns []store.Notification
	e.waitFor(t, fmt.Sprintf("%d settled notifications of %s", atLeast, referralID), func() bool {
		ns = e.rows(t, referralID)
		if len(ns) < atLeast {
			return false
		}
		for _, n := range ns {
			if n.State == store.StatePending || n.State == store.StateSending {
				return false
			}
		}
		return true
	})
	return ns
}

func (e *env) token(t testing.TB, agency string, role auth.Role) string {
	t.Helper()
	_, token, err := e.auth.Create(context.Background(), agency, "hub", role, "test", auth.AllPartnerships)
	if err != nil {
		t.Fatal(err)
	}
	return token
}

func bearer(token string) context.Context {
	return metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+token)
}

func httpDo(t testing.TB, method, url, token, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// streamEvents counts the events of subject in the stream about a referral.
func (e *env) streamEvents(t testing.TB, subject string) []*eventsv1.Envelope {
	t.Helper()
	ctx := context.Background()
	stream, err := e.js.Stream(ctx, events.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []*eventsv1.Envelope
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := stream.GetMsg(ctx, seq)
		if err != nil || m.Subject != subject {
			continue
		}
		var env eventsv1.Envelope
		if err := proto.Unmarshal(m.Data, &env); err != nil {
			t.Fatal(err)
		}
		out = append(out, &env)
	}
	return out
}

func protoMarshalOpts(m proto.Message) ([]byte, error) {
	return proto.MarshalOptions{Deterministic: true}.Marshal(m)
}

// approve has a second manager approve a pending directory change.
func (e *env) approve(t testing.TB, changeID string) *notifyv1.ApproveDirectoryChangeResponse {
	t.Helper()
	resp, err := e.client.ApproveDirectoryChange(bearer(e.token(t, "rct-mash", auth.RoleManager)),
		&notifyv1.ApproveDirectoryChangeRequest{ChangeId: changeID, Reason: "checked with the team"})
	if err != nil {
		t.Fatalf("approve %s: %v", changeID, err)
	}
	return resp
}

// approvePending has a second manager approve every pending directory change.
func (e *env) approvePending(t testing.TB) {
	t.Helper()
	list, err := e.client.ListDirectoryChanges(bearer(e.token(t, "rct-mash", auth.RoleManager)),
		&notifyv1.ListDirectoryChangesRequest{State: notifyv1.DirectoryChangeState_DIRECTORY_CHANGE_PENDING})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range list.GetChanges() {
		e.approve(t, c.GetId())
	}
}

// drained waits until the durable consumer has taken and settled everything published: after
// it, an effect that has not appeared never will.
func (e *env) drained(t testing.TB, durable string) {
	t.Helper()
	eventstest.Drained(t, e.js, durable)
}

// outboxRelayed waits until notify's relay has published every event its outbox holds, so the
// stream shows all of them.
func (e *env) outboxRelayed(t testing.TB) {
	t.Helper()
	e.waitFor(t, "notify's outbox to be relayed", func() bool {
		var n int
		err := e.pool.QueryRow(context.Background(), `SELECT count(*) FROM notify.outbox WHERE published_at IS NULL`).Scan(&n)
		return err == nil && n == 0
	})
}
