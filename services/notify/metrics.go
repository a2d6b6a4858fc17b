package notify

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mash-hub/mash/services/notify/store"
)

type metrics struct {
	created         *prometheus.CounterVec
	attempts        *prometheus.CounterVec
	attemptSeconds  *prometheus.HistogramVec
	deliveryLatency *prometheus.HistogramVec
	ackLatency      *prometheus.HistogramVec
	escalations     prometheus.Counter
	ackRejected     prometheus.Counter
	answers         prometheus.Counter
	answerRejected  prometheus.Counter
}

// newMetrics registers notify's metrics with reg; the backlog gauges are counted at scrape
// time through scrape.
func newMetrics(reg prometheus.Registerer, scrape *pgxpool.Pool, now func() time.Time) *metrics {
	m := &metrics{
		created: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mash_notify_notifications_created_total",
			Help: "Notifications created, by kind."}, []string{"kind"}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mash_notify_attempts_total",
			Help: "Delivery attempts by channel and result (ok, retry, permanent; not_attempted: no free slot at the agency within the lease, or its event could not be sealed)."}, []string{"channel", "result"}),
		attemptSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "mash_notify_attempt_seconds",
			Help: "Time one delivery attempt took, by channel.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 15)}, []string{"channel"}),
		deliveryLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "mash_notify_delivery_latency_seconds",
			Help: "Time from a notification's creation to its delivery, by kind.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 22)}, []string{"kind"}),
		ackLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "mash_notify_acknowledgement_seconds",
			Help: "Time from delivery to the agency's acknowledgement, by RAG.", Buckets: prometheus.ExponentialBuckets(1, 2, 20)}, []string{"rag"}),
		escalations: prometheus.NewCounter(prometheus.CounterOpts{Name: "mash_notify_escalations_total",
			Help: "Notifications escalated to a duty manager for want of an acknowledgement."}),
		ackRejected: prometheus.NewCounter(prometheus.CounterOpts{Name: "mash_notify_bus_acks_rejected_total",
			Help: "Acknowledgements on the bus that named no notification of the publishing agency."}),
		answers: prometheus.NewCounter(prometheus.CounterOpts{Name: "mash_notify_bus_answers_total",
			Help: "Answers to information requests received on the bus and handed to triage."}),
		answerRejected: prometheus.NewCounter(prometheus.CounterOpts{Name: "mash_notify_bus_answers_rejected_total",
			Help: "Answers on the bus dropped as malformed, too long, or naming no request sent to the publishing agency."}),
	}
	if reg == nil {
		return m
	}
	// A second instance in one process (tests) keeps its collectors unregistered.
	for _, c := range []prometheus.Collector{m.created, m.attempts, m.attemptSeconds, m.deliveryLatency, m.ackLatency, m.escalations, m.ackRejected, m.answers, m.answerRejected} {
		_ = reg.Register(c)
	}
	_ = reg.Register(&backlogCollector{pool: scrape, now: now})
	return m
}

// backlogCollector reads the backlog when scraped, so the gauges are true whichever process
// (or replica) did the work.
type backlogCollector struct {
	pool *pgxpool.Pool
	now  func() time.Time
}

var (
	backlogDesc = prometheus.NewDesc("mash_notify_backlog", "Notifications waiting for delivery.", nil, nil)
	failedDesc  = prometheus.NewDesc("mash_notify_dead_letters", "Failed notifications in the dead-letter list (not withdrawn).", nil, nil)
	overdueDesc = prometheus.NewDesc("mash_notify_overdue_acknowledgements", "Notifications whose acknowledgement is overdue.", nil, nil)
)

func (c *backlogCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- backlogDesc
	ch <- failedDesc
	ch <- overdueDesc
}

func (c *backlogCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	pending, failed, overdue, err := store.Backlog(ctx, c.pool, c.now())
	if err != nil {
		ch <- prometheus.NewInvalidMetric(backlogDesc, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(backlogDesc, prometheus.GaugeValue, float64(pending))
	ch <- prometheus.MustNewConstMetric(failedDesc, prometheus.GaugeValue, float64(failed))
	ch <- prometheus.MustNewConstMetric(overdueDesc, prometheus.GaugeValue, float64(overdue))
}
