package server

import (
	"context"
	"sync"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// healthRefreshInterval is how often Watch streams see the readiness checks re-run. Check and
// List run them on the call itself, so a probe never reads a stale answer.
const healthRefreshInterval = 5 * time.Second

// healthFreshFor lets a burst of probes share one run of the checks.
const healthFreshFor = time.Second

// healthService answers gRPC health for the whole process (the empty name) and for every
// service registered on it, by its gRPC name (mash.intake.v1.IntakeService) and by the mash
// service that registered it (intake), with the same readiness checks as /readyz: a process
// whose Postgres or NATS is gone is NOT_SERVING for every service it runs. grpc's own health
// server keeps the statuses and the Watch streams; this refreshes them from the checks.
type healthService struct {
	*health.Server
	s *Server

	mu      sync.Mutex
	checked time.Time
}

func newHealthService(s *Server) *healthService {
	return &healthService{Server: health.NewServer(), s: s}
}

// Check re-runs the readiness checks (unless they ran within the last second) and answers for
// the named service; an unknown name is NOT_FOUND, as the health protocol says.
func (h *healthService) Check(ctx context.Context, req *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	h.refresh(ctx, false)
	return h.Server.Check(ctx, req)
}

// List answers every service's status after re-running the checks.
func (h *healthService) List(ctx context.Context, req *healthpb.HealthListRequest) (*healthpb.HealthListResponse, error) {
	h.refresh(ctx, false)
	return h.Server.List(ctx, req)
}

// refresh runs the readiness checks and sets every service's status from them.
func (h *healthService) refresh(ctx context.Context, force bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !force && time.Since(h.checked) < healthFreshFor {
		return
	}
	status := healthpb.HealthCheckResponse_SERVING
	checks, errs := h.s.runChecks(ctx)
	for i, err := range errs {
		if err != nil {
			h.s.log.Warn("health check failed", zap.String("check", checks[i].Name), zap.Error(err))
			status = healthpb.HealthCheckResponse_NOT_SERVING
		}
	}
	h.Server.SetServingStatus("", status)
	for name := range h.s.grpc.GetServiceInfo() {
		h.Server.SetServingStatus(name, status)
	}
	// mash's own service names too (intake, rules, ...), for probes that name the service
	// rather than its gRPC API.
	for _, name := range h.s.owners() {
		h.Server.SetServingStatus(name, status)
	}
	h.checked = time.Now()
}

// watch keeps the statuses Watch streams see current until ctx ends.
func (h *healthService) watch(ctx context.Context) {
	t := time.NewTicker(healthRefreshInterval)
	defer t.Stop()
	for {
		h.refresh(ctx, true)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
