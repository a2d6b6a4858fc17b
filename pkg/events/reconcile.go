package events

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// ReconcileCheck names one downstream effect a service expects for its events, and finds
// the events whose effect is missing.
type ReconcileCheck struct {
	// Name is the effect, e.g. "decision" or "notification"; it labels the gauge.
	Name string
	// Query selects, for the cutoff $1 (events older than it count), the outbox rows whose
	// effect is missing, as (id, event_id, subject, payload, reconciles), oldest first. Only
	// published rows: unpublished ones are still the relay's job.
	Query string
}

// ReconcilerConfig configures a Reconciler.
type ReconcilerConfig struct {
	// Schema owns the outbox. Required.
	Schema string
	Checks []ReconcileCheck
	// Age is how long an effect may take before its event is re-emitted. Default 10m.
	Age time.Duration
	// Every is how often the checks run. Default 1m.
	Every time.Duration
	// Limit bounds the events re-emitted per check and pass. Default 500.
	Limit int
}

// Reconciler defaults.
const (
	DefaultReconcileAge   = 10 * time.Minute
	DefaultReconcileEvery = time.Minute
)

// Reconciler is the third layer of the delivery design: it finds events whose downstream
// effect never appeared (the broker lost them after acknowledging, say) and re-emits the
// original envelope, unchanged, so every consumer's inbox absorbs it if the effect was only
// slow. Each re-emission gets its own message id (event id + ".reconcile.N"), because the
// stream may still remember the original id and would drop it as a duplicate; replicas
// racing on the same row publish the same N and the stream keeps one.
type Reconciler struct {
	pool    *pgxpool.Pool
	js      jetstream.JetStream
	cfg     ReconcilerConfig
	log     *zap.Logger
	missing *prometheus.GaugeVec
	now     func() time.Time
}

// NewReconciler builds a reconciler; reg may be nil.
func NewReconciler(pool *pgxpool.Pool, js jetstream.JetStream, cfg ReconcilerConfig, log *zap.Logger, reg prometheus.Registerer) (*Reconciler, error) {
	if cfg.Schema == "" || len(cfg.Checks) == 0 {
		return nil, errors.New("reconciler: Schema and Checks are required")
	}
	if cfg.Age == 0 {
		cfg.Age = DefaultReconcileAge
	}
	if cfg.Every == 0 {
		cfg.Every = DefaultReconcileEvery
	}
	if cfg.Limit == 0 {
		cfg.Limit = 500
	}
	r := &Reconciler{pool: pool, js: js, cfg: cfg, log: log, now: time.Now,
		missing: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "mash_reconcile_missing_effects",
			Help: "Events older than the reconcile age whose downstream effect is missing, at the last pass, by service schema and effect."},
			[]string{"schema", "effect"})}
	if reg != nil {
		if err := reg.Register(r.missing); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				r.missing = are.ExistingCollector.(*prometheus.GaugeVec)
			}
		}
	}
	return r, nil
}

// Run reconciles every cfg.Every until ctx ends.
func (r *Reconciler) Run(ctx context.Context) error {
	t := time.NewTicker(r.cfg.Every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if _, err := r.Once(ctx); err != nil && ctx.Err() == nil {
			r.log.Error("reconcile", zap.Error(err))
		}
	}
}

type staleRow struct {
	id         int64
	eventID    string
	subject    string
	payload    []byte
	reconciles int
}

// Once runs every check and re-emits what is missing; it returns the count found per effect.
func (r *Reconciler) Once(ctx context.Context) (map[string]int, error) {
	found := map[string]int{}
	cutoff := r.now().Add(-r.cfg.Age)
	for _, c := range r.cfg.Checks {
		rows, err := r.pool.Query(ctx, c.Query+` LIMIT `+strconv.Itoa(r.cfg.Limit), cutoff)
		if err != nil {
			return found, fmt.Errorf("reconcile %s.%s: %w", r.cfg.Schema, c.Name, err)
		}
		stale, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (staleRow, error) {
			var s staleRow
			err := row.Scan(&s.id, &s.eventID, &s.subject, &s.payload, &s.reconciles)
			return s, err
		})
		if err != nil {
			return found, fmt.Errorf("reconcile %s.%s: %w", r.cfg.Schema, c.Name, err)
		}
		found[c.Name] = len(stale)
		r.missing.WithLabelValues(r.cfg.Schema, c.Name).Set(float64(len(stale)))
		for _, s := range stale {
			if err := r.reemit(ctx, c.Name, s); err != nil {
				return found, err
			}
		}
	}
	return found, nil
}

// reemit publishes the original envelope again and counts the re-emission on its row. An
// event re-emitted less than one pass ago is left to arrive.
func (r *Reconciler) reemit(ctx context.Context, effect string, s staleRow) error {
	n := s.reconciles + 1
	tag, err := r.pool.Exec(ctx, `UPDATE `+pgx.Identifier{r.cfg.Schema}.Sanitize()+`.outbox SET reconciles = $2, reconciled_at = now()
		WHERE id = $1 AND reconciles = $3 AND (reconciled_at IS NULL OR reconciled_at < now() - $4 * interval '1 second')`,
		s.id, n, s.reconciles, r.cfg.Every.Seconds())
	if err != nil {
		return fmt.Errorf("reconcile event %s: %w", s.eventID, err)
	}
	if tag.RowsAffected() == 0 {
		return nil // another replica took it, or it was re-emitted moments ago
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	msgID := s.eventID + ".reconcile." + strconv.Itoa(n)
	if _, err := r.js.PublishMsg(pctx, &nats.Msg{Subject: s.subject, Data: s.payload}, jetstream.WithMsgID(msgID)); err != nil {
		return fmt.Errorf("re-emit event %s: %w", s.eventID, err)
	}
	r.log.Warn("re-emitted an event whose effect is missing", zap.String("event_id", s.eventID), zap.String("subject", s.subject),
		zap.String("missing", effect), zap.Int("reconciles", n))
	return nil
}
