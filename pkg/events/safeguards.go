package events

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"
)

// Safeguards are what every producing service runs beside its relay so that none of its
// events is lost downstream: the reconciler that re-emits an event whose effect is missing,
// and the tracker that marks the events the audit log reports recorded, without which the
// reconciler's audit check would re-emit everything.
type Safeguards struct {
	reconciler *Reconciler
	audited    *Consumer
}

// NewSafeguards builds the safeguards of cfg.Schema's outbox. cfg.Checks are the effects the
// service itself expects of its events (a decision for a referral, say); the audit log's
// check is added here, as every event must reach it. reg and m may be nil.
func NewSafeguards(pool *pgxpool.Pool, js jetstream.JetStream, cfg ReconcilerConfig, log *zap.Logger, reg prometheus.Registerer, m *Metrics) (*Safeguards, error) {
	if cfg.Schema == "" {
		return nil, errors.New("new safeguards: Schema is empty: name the schema that owns the outbox")
	}
	if log == nil {
		log = zap.NewNop()
	}
	cfg.Checks = append(slices.Clip(cfg.Checks), ReconcileCheck{Name: "audit", Query: UnauditedSQL(cfg.Schema)})
	reconciler, err := NewReconciler(pool, js, cfg, log.Named("reconcile"), reg)
	if err != nil {
		return nil, fmt.Errorf("new safeguards %s: %w", cfg.Schema, err)
	}
	audited, err := NewAuditedTracker(pool, js, cfg.Schema, log.Named("audited"), m)
	if err != nil {
		return nil, fmt.Errorf("new safeguards %s: %w", cfg.Schema, err)
	}
	return &Safeguards{reconciler: reconciler, audited: audited}, nil
}

// Run runs the reconciler and the audit tracker until ctx ends.
func (s *Safeguards) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.reconciler.Run(ctx) })
	g.Go(func() error { return s.audited.Run(ctx) })
	return g.Wait()
}
