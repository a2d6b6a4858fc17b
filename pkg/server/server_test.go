package server

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	"github.com/mash-hub/mash/pkg/auth"
)

type fixedAuth struct{}

func (fixedAuth) Authenticate(_ context.Context, token string) (auth.Identity, error) {
	if token == "good" {
		return auth.Identity{ClientID: "c1", Agency: "a1", Role: auth.RoleReferrer}, nil
	}
	return auth.Identity{}, auth.ErrUnauthenticated
}

func start(t *testing.T, ready error) (*Server, Listeners) {
	t.Helper()
	s := New(Config{GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0"}, zap.NewNop(), fixedAuth{}, prometheus.NewRegistry())
	s.AddCheck(Check{Name: "dep", Check: func(context.Context) error { return ready }})
	s.HandleAPI("GET /v1/whoami", func(w http.ResponseWriter, r *http.Request) {
		id, _ := auth.FromContext(r.Context())
		_, _ = io.WriteString(w, id.Agency+" "+RequestID(r.Context()))
	})
	s.HandleAPI("GET /v1/panic", func(http.ResponseWriter, *http.Request) { panic("boom") })
	return s, serve(t, s)
}

// serve listens on s's loopback addresses and serves until the test ends.
func serve(t *testing.T, s *Server) Listeners {
	t.Helper()
	ls, err := s.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Serve(ctx, ls) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return ls
}

func get(t *testing.T, url string, header ...string) (int, string, http.Header) {
	t.Helper()
	return send(t, http.MethodGet, url, "", header...)
}

// send makes one request with body and header's name, value pairs, and returns the status,
// the body read in full, and the response's header.
func send(t *testing.T, method, url, body string, header ...string) (int, string, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func TestHTTPAuthRequestIDAndProbes(t *testing.T) {
	t.Parallel()
	_, ls := start(t, nil)
	base := "http://" + ls.HTTP.Addr().String()
	if code, _, _ := get(t, base+"/v1/whoami"); code != 401 {
		t.Fatalf("no credential: %d", code)
	}
	code, body, h := get(t, base+"/v1/whoami", "Authorization", "Bearer good", RequestIDHeader, "req-42")
	if code != 200 || body != "a1 req-42" || h.Get(RequestIDHeader) != "req-42" {
		t.Fatalf("whoami: %d %q %v", code, body, h)
	}
	if code, body, _ := get(t, base+"/v1/panic", "Authorization", "Bearer good"); code != 500 || !strings.Contains(body, "INTERNAL") {
		t.Fatalf("panic: %d %s", code, body)
	}
	for _, p := range []string{"/healthz", "/readyz"} {
		if code, _, _ := get(t, base+p); code != 200 {
			t.Fatalf("%s: %d", p, code)
		}
	}
	if _, body, _ := get(t, base+"/metrics"); !strings.Contains(body, `mash_requests_total{code="401",method="GET /v1/whoami",transport="http"} 1`) {
		t.Fatalf("metrics lack the 401: %s", body)
	}
}

func TestReadyzFailsWhenADependencyIsDown(t *testing.T) {
	t.Parallel()
	_, ls := start(t, errors.New("down"))
	code, body, _ := get(t, "http://"+ls.HTTP.Addr().String()+"/readyz")
	if code != 503 || !strings.Contains(body, "dep: not ready") {
		t.Fatalf("readyz: %d %s", code, body)
	}
}

func TestGRPCHealthAndReflectionNeedNoCredential(t *testing.T) {
	t.Parallel()
	_, ls := start(t, nil)
	conn, err := grpc.NewClient(ls.GRPC.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	resp, err := healthpb.NewHealthClient(conn).Check(context.Background(), &healthpb.HealthCheckRequest{})
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health: %v %v", resp, err)
	}
	stream, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	r, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range r.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	if !strings.Contains(strings.Join(names, ","), "grpc.health.v1.Health") {
		t.Fatalf("reflection lists %v", names)
	}
}

func TestGRPCHealthAnswersPerServiceAndFollowsTheReadinessChecks(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var depErr error
	s := New(Config{GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0"}, zap.NewNop(), fixedAuth{}, prometheus.NewRegistry())
	s.AddCheck(Check{Name: "postgres", Check: func(context.Context) error {
		mu.Lock()
		defer mu.Unlock()
		return depErr
	}})
	// A mash service registers its gRPC API; health answers for both names.
	s.RegisterAs("intake", func(s *Server) {
		s.GRPC().RegisterService(&grpc.ServiceDesc{ServiceName: "mash.intake.v1.IntakeService", HandlerType: (*any)(nil)}, struct{}{})
	})
	ls := serve(t, s)
	conn, err := grpc.NewClient(ls.GRPC.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := healthpb.NewHealthClient(conn)
	const service = "mash.intake.v1.IntakeService"
	statusOf := func(name string) healthpb.HealthCheckResponse_ServingStatus {
		t.Helper()
		resp, err := client.Check(context.Background(), &healthpb.HealthCheckRequest{Service: name})
		if err != nil {
			t.Fatalf("health of %q: %v", name, err)
		}
		return resp.GetStatus()
	}
	for _, name := range []string{"", service, "intake", "grpc.reflection.v1.ServerReflection"} {
		if got := statusOf(name); got != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("health of %q with its dependencies up: %v", name, got)
		}
	}
	if _, err := client.Check(context.Background(), &healthpb.HealthCheckRequest{Service: "mash.nothing.v1.Nowhere"}); status.Code(err) != codes.NotFound {
		t.Fatalf("health of an unknown service: %v, want NotFound", err)
	}

	mu.Lock()
	depErr = errors.New("connection refused")
	mu.Unlock()
	s.health.refresh(context.Background(), true) // the next probe may fall in the same second
	for _, name := range []string{"", service, "intake"} {
		if got := statusOf(name); got != healthpb.HealthCheckResponse_NOT_SERVING {
			t.Fatalf("health of %q with Postgres down: %v, want NOT_SERVING", name, got)
		}
	}
	list, err := client.List(context.Background(), &healthpb.HealthListRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if st := list.GetStatuses()[service].GetStatus(); st != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("List: %s is %v, want NOT_SERVING: %v", service, st, list)
	}
}

// failingCollector reports one figure and fails to read another, as a backlog gauge does
// when its count times out.
type failingCollector struct{ ok, failed *prometheus.Desc }

func (c failingCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.ok; ch <- c.failed }

func (c failingCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(c.ok, prometheus.GaugeValue, 7)
	ch <- prometheus.NewInvalidMetric(c.failed, errors.New("count backlog: context deadline exceeded"))
}

// A figure that cannot be read is left out of the scrape; the scrape itself still succeeds
// with everything else.
func TestMetricsServeWhatTheyCanWhenACollectorFails(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(failingCollector{
		ok:     prometheus.NewDesc("test_readable", "A figure that reads.", nil, nil),
		failed: prometheus.NewDesc("test_backlog", "A figure whose count fails.", nil, nil),
	})
	s := New(Config{GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0"}, zap.NewNop(), fixedAuth{}, reg)
	ls := serve(t, s)
	code, body, _ := get(t, "http://"+ls.HTTP.Addr().String()+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics answered %d with one collector failing, want 200: %s", code, body)
	}
	if !strings.Contains(body, "test_readable 7") {
		t.Errorf("/metrics lacks the figure that could be read: %s", body)
	}
	if strings.Contains(body, "test_backlog ") {
		t.Errorf("/metrics reports the figure that could not be read: %s", body)
	}
}

// A readiness check that hangs is reported alone: the checks run side by side, so the one
// after it is not starved of time and reported not ready too.
func TestAHangingReadinessCheckDoesNotFailTheOthers(t *testing.T) {
	t.Parallel()
	s := New(Config{GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0"}, zap.NewNop(), fixedAuth{}, prometheus.NewRegistry())
	s.AddCheck(Check{Name: "postgres", Check: func(ctx context.Context) error {
		<-ctx.Done()
		return ctx.Err()
	}})
	s.AddCheck(Check{Name: "nats", Check: func(ctx context.Context) error { return ctx.Err() }})
	ls := serve(t, s)
	code, body, _ := get(t, "http://"+ls.HTTP.Addr().String()+"/readyz")
	if code != http.StatusServiceUnavailable || body != "postgres: not ready\nnats: ok\n" {
		t.Errorf("readyz with postgres hanging: %d %q", code, body)
	}
}
