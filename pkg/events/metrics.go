package events

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the Prometheus metrics of relays and consumers. The binary creates one with
// NewMetrics and passes it to every Relay and Consumer; a nil *Metrics records nothing.
type Metrics struct {
	backlog       *prometheus.GaugeVec
	published     *prometheus.CounterVec
	publishErrors *prometheus.CounterVec
	consumed      *prometheus.CounterVec
	handleSeconds *prometheus.HistogramVec
	deadLetters   *deadLetterCollector
	lag           *lagCollector
}

// Results counted by mash_events_consumed_total.
const (
	resultOK         = "ok"
	resultDuplicate  = "duplicate"
	resultRetry      = "retry"
	resultDeadLetter = "dead_letter"
	resultSkipped    = "skipped"
	resultErased     = "erased"
)

// NewMetrics creates the metrics and registers them with reg (nil: not registered). Calling
// it again with the same registry returns metrics bound to the already registered ones.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		backlog: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "mash_outbox_backlog",
			Help: "Outbox rows not yet published, as seen by the relay's last idle round.",
		}, []string{"schema"}),
		published: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mash_outbox_published_total",
			Help: "Outbox rows published and marked (JetStream duplicates included).",
		}, []string{"schema"}),
		publishErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mash_outbox_publish_errors_total",
			Help: "Outbox rows whose publish got no ack in a round; they are retried.",
		}, []string{"schema"}),
		consumed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mash_events_consumed_total",
			Help: "Event deliveries handled, by consumer and result (ok, duplicate, retry, dead_letter).",
		}, []string{"consumer", "result"}),
		handleSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "mash_event_handle_seconds",
			Help:    "Time to handle one delivery, from receipt to ack, nak or term.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"consumer"}),
		deadLetters: &deadLetterCollector{
			desc: prometheus.NewDesc("mash_dead_letters",
				"Dead letters not yet replayed, per schema (queried at scrape time).",
				[]string{"schema"}, nil),
			sources: map[string]*pgxpool.Pool{},
		},
		lag: &lagCollector{
			desc: prometheus.NewDesc("mash_consumer_lag",
				"Events a consumer has not yet acknowledged: waiting for delivery plus delivered and unacknowledged "+
					"(JetStream NumPending + NumAckPending), read from the broker at scrape time.",
				[]string{"consumer"}, nil),
			sources: map[string]lagSource{},
		},
	}
	if reg == nil {
		return m
	}
	m.backlog = register(reg, m.backlog)
	m.published = register(reg, m.published)
	m.publishErrors = register(reg, m.publishErrors)
	m.consumed = register(reg, m.consumed)
	m.handleSeconds = register(reg, m.handleSeconds)
	m.deadLetters = register(reg, m.deadLetters)
	m.lag = register(reg, m.lag)
	return m
}

// register registers c, or adopts the collector already registered under its name.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	err := reg.Register(c)
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing
		}
	}
	return c
}

func (m *Metrics) setBacklog(schema string, n int64) {
	if m != nil {
		m.backlog.WithLabelValues(schema).Set(float64(n))
	}
}

func (m *Metrics) addPublished(schema string, n int) {
	if m != nil && n > 0 {
		m.published.WithLabelValues(schema).Add(float64(n))
	}
}

func (m *Metrics) addPublishErrors(schema string, n int) {
	if m != nil && n > 0 {
		m.publishErrors.WithLabelValues(schema).Add(float64(n))
	}
}

func (m *Metrics) consumedOne(consumer, result string, took time.Duration) {
	if m != nil {
		m.consumed.WithLabelValues(consumer, result).Inc()
		m.handleSeconds.WithLabelValues(consumer).Observe(took.Seconds())
	}
}

// trackDeadLetters makes mash_dead_letters report schema's dead_letter table.
func (m *Metrics) trackDeadLetters(pool *pgxpool.Pool, schema string) {
	if m != nil {
		m.deadLetters.add(pool, schema)
	}
}

// ScrapeOver has the scrape-time counts of tables reached through the work pool read through
// scrape instead: the readiness connection of the same login (db.OpenProbe). Under load
// every work connection may be taken, and the gauges would then be missing just when a
// backlog or dead letters matter most.
func (m *Metrics) ScrapeOver(work, scrape *pgxpool.Pool) {
	if m != nil && work != nil && scrape != nil {
		m.deadLetters.scrapeOver(work, scrape)
	}
}

// trackLag makes mash_consumer_lag report the durable consumer of stream.
func (m *Metrics) trackLag(js jetstream.JetStream, stream, durable string) {
	if m != nil {
		m.lag.add(js, stream, durable)
	}
}

// lagSource is where one consumer's lag is read.
type lagSource struct {
	js     jetstream.JetStream
	stream string
}

// lagCollector reads each consumer's lag from the broker at scrape time, so it is right
// whichever process (or replica) is consuming, and while no handler finishes at all.
type lagCollector struct {
	desc    *prometheus.Desc
	mu      sync.Mutex
	sources map[string]lagSource // by durable
}

func (c *lagCollector) add(js jetstream.JetStream, stream, durable string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sources[durable] = lagSource{js: js, stream: stream}
}

// Describe implements prometheus.Collector.
func (c *lagCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect implements prometheus.Collector. A consumer the broker cannot describe (not yet
// created, broker unreachable) is left out of the scrape rather than reported as zero.
func (c *lagCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	sources := make(map[string]lagSource, len(c.sources))
	for d, s := range c.sources {
		sources[d] = s
	}
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for durable, s := range sources {
		lag, err := consumerLag(ctx, s.js, s.stream, durable)
		if err != nil {
			continue
		}
		if m, err := prometheus.NewConstMetric(c.desc, prometheus.GaugeValue, float64(lag), durable); err == nil {
			ch <- m
		}
	}
}

// consumerLag is the durable consumer's NumPending + NumAckPending.
func consumerLag(ctx context.Context, js jetstream.JetStream, stream, durable string) (uint64, error) {
	cons, err := js.Consumer(ctx, stream, durable)
	if err != nil {
		return 0, fmt.Errorf("consumer %s on %s: %w", durable, stream, err)
	}
	info := cons.CachedInfo() // js.Consumer has just fetched it
	return info.NumPending + uint64(info.NumAckPending), nil
}

// deadLetterCollector counts un-replayed dead letters at scrape time, so the gauge is right
// after a replay from another process (the admin command) too.
type deadLetterCollector struct {
	desc    *prometheus.Desc
	mu      sync.Mutex
	sources map[string]*pgxpool.Pool // by schema
	// over maps a work pool to the pool its counts are read through at scrape time.
	over map[*pgxpool.Pool]*pgxpool.Pool
}

func (c *deadLetterCollector) scrapeOver(work, scrape *pgxpool.Pool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.over == nil {
		c.over = map[*pgxpool.Pool]*pgxpool.Pool{}
	}
	c.over[work] = scrape
}

func (c *deadLetterCollector) add(pool *pgxpool.Pool, schema string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sources[schema] = pool
}

// Describe implements prometheus.Collector.
func (c *deadLetterCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect implements prometheus.Collector. A schema whose count cannot be read is left out
// of the scrape rather than reported as zero.
func (c *deadLetterCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	sources := make(map[string]*pgxpool.Pool, len(c.sources))
	for s, p := range c.sources {
		if scrape, ok := c.over[p]; ok {
			p = scrape
		}
		sources[s] = p
	}
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for schema, pool := range sources {
		var n int64
		err := pool.QueryRow(ctx, `SELECT count(*) FROM `+pgx.Identifier{schema}.Sanitize()+`.dead_letter WHERE replayed_at IS NULL`).Scan(&n)
		if err != nil {
			continue
		}
		if m, err := prometheus.NewConstMetric(c.desc, prometheus.GaugeValue, float64(n), schema); err == nil {
			ch <- m
		}
	}
}
