package events

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func TestMetricsRegisterTwiceShares(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m1 := NewMetrics(reg)
	m2 := NewMetrics(reg)
	m1.addPublished("s", 1)
	m2.addPublished("s", 2)
	m1.consumedOne("c", resultOK, time.Millisecond)
	if got := metricValue(t, m1.published.WithLabelValues("s")); got != 3 {
		t.Errorf("published_total = %v, want 3 (both handles on one counter)", got)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, f := range families {
		names[f.GetName()] = true
	}
	for _, want := range []string{"mash_outbox_published_total", "mash_events_consumed_total", "mash_event_handle_seconds"} {
		if !names[want] {
			t.Errorf("%s not gathered; have %v", want, names)
		}
	}
}

func TestNilMetricsIsSafe(t *testing.T) {
	t.Parallel()
	var m *Metrics
	m.setBacklog("s", 1)
	m.addPublished("s", 1)
	m.addPublishErrors("s", 1)
	m.consumedOne("c", resultOK, time.Second)
	m.trackDeadLetters(nil, "s")
}
