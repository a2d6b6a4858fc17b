package intake_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/mash-hub/mash/pkg/auth"
	"github.com/mash-hub/mash/pkg/calendar"
	"github.com/mash-hub/mash/pkg/db"
	"github.com/mash-hub/mash/pkg/db/dbtest"
	"github.com/mash-hub/mash/pkg/events"
	"github.com/mash-hub/mash/pkg/events/eventstest"
	"github.com/mash-hub/mash/pkg/server"
	intakev1 "github.com/mash-hub/mash/proto/mash/intake/v1"
	"github.com/mash-hub/mash/services/intake"
	"github.com/mash-hub/mash/services/intake/store"
)

// migrationsKey names the template database: it changes whenever a migration does.
func migrationsKey(t testing.TB) string {
	t.Helper()
	am, err := auth.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	im, err := store.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	return "intake_" + db.Checksum(append(am, im...))
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
	return intake.Migrate(ctx, pool)
}

// env is a running intake service on loopback ports, against its own database and an
// embedded JetStream server.
type env struct {
	pool     *pgxpool.Pool
	js       jetstream.JetStream
	auth     *auth.Store
	httpURL  string
	grpcConn *grpc.ClientConn
	client   intakev1.IntakeServiceClient
	now      time.Time
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pool := dbtest.NewPool(t, migrationsKey(t), migrateAll)
	js := eventstest.JetStream(t, "intake-test")
	cal, err := calendar.New(calendar.Config{})
	if err != nil {
		t.Fatal(err)
	}
	// A fixed clock: Thursday 26 November 2026, 12:00 UTC, so deadlines are exact.
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	reg := prometheus.NewRegistry()
	svc, err := intake.New(intake.Deps{Pool: pool, JS: js, Calendar: cal, Log: zap.NewNop(), Events: events.NewMetrics(reg),
		Now: func() time.Time { return now }})
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
	t.Cleanup(func() {
		conn.Close()
		cancel()
		<-done
		<-done
	})
	return &env{pool: pool, js: js, auth: authStore, httpURL: "http://" + ls.HTTP.Addr().String(), grpcConn: conn,
		client: intakev1.NewIntakeServiceClient(conn), now: now}
}

// credential creates a client and returns its bearer token.
func (e *env) credential(t *testing.T, agency, kind string, role auth.Role) string {
	t.Helper()
	var partnerships []string
	if auth.HubRole(role) {
		partnerships = []string{auth.AllPartnerships}
	}
	_, token, err := e.auth.Create(context.Background(), agency, kind, role, "test", partnerships...)
	if err != nil {
		t.Fatal(err)
	}
	return token
}

func withToken(ctx context.Context, token string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
}

// exampleJSON is the published example referral, read from ../shared beside the repository
// when present (the contract itself), else from the copy the run script sends.
func exampleJSON(t testing.TB) []byte {
	t.Helper()
	for _, p := range []string{"../../../shared/api/referral.example.json", "testdata/referral.example.json"} {
		if b, err := os.ReadFile(filepath.FromSlash(p)); err == nil {
			return b
		}
	}
	t.Fatal("referral.example.json not found")
	return nil
}

func (e *env) post(t *testing.T, token, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.httpURL+"/v1/referrals", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	return do(t, req)
}

func (e *env) get(t *testing.T, token, path string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.httpURL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return do(t, req)
}

func do(t *testing.T, req *http.Request) (int, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// dbtestEmpty returns a database with nothing in it.
func dbtestEmpty(t *testing.T) string {
	t.Helper()
	return dbtest.NewURL(t, "empty", func(context.Context, string) error { return nil })
}
