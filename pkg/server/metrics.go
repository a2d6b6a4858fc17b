package server

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the request metrics shared by the gRPC and HTTP transports.
type Metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

// NewMetrics registers the request metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mash_requests_total",
			Help: "API requests by transport, method and result code.",
		}, []string{"transport", "method", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "mash_request_seconds",
			Help: "API request latency by transport and method.",
			// Acknowledgements are expected in single milliseconds; the tail matters most.
			Buckets: []float64{.0005, .001, .002, .004, .006, .008, .010, .015, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"transport", "method"}),
	}
	reg.MustRegister(m.requests, m.latency)
	return m
}

func (m *Metrics) observe(transport, method, code string, seconds float64) {
	if m == nil {
		return
	}
	m.requests.WithLabelValues(transport, method, code).Inc()
	m.latency.WithLabelValues(transport, method).Observe(seconds)
}
