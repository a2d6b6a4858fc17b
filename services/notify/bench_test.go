package notify_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	intakev1 "github.com/mash-hub/mash/proto/mash/intake/v1"
	rulesv1 "github.com/mash-hub/mash/proto/mash/rules/v1"
	"github.com/mash-hub/mash/services/notify"
)

// latencyReceiver answers 200 at once and records, per referral, when each notification
// arrived, without verifying (the signing cost is on the sender, which is what is measured).
type latencyReceiver struct {
	mu      sync.Mutex
	arrived map[string][]time.Time
}

func (l *latencyReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body struct {
		ReferralID string `json:"referralId"`
		Kind       string `json:"kind"`
	}
	_ = json.NewDecoder(r.Body).Decode(&body)
	l.mu.Lock()
	l.arrived[body.ReferralID+"/"+body.Kind] = append(l.arrived[body.ReferralID+"/"+body.Kind], time.Now())
	l.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

// BenchmarkDecisionToDelivery publishes decisions open loop at a fixed rate (each makes two
// notifications: the action to children's social care and the outcome to the referrer) and
// reports notifications delivered per second and the p50/p99 time from the decision event's
// publication to its arrival at the receiver. BENCH_NOTIFY_RATE sets notifications per second
// (default 500) and BENCH_NOTIFY_SECONDS the length (default 10). Run:
//
//	go test -run '^$' -bench DecisionToDelivery -benchtime 1x ./services/notify/
func BenchmarkDecisionToDelivery(b *testing.B) {
	rate, seconds := envInt("BENCH_NOTIFY_RATE", 500), envInt("BENCH_NOTIFY_SECONDS", 10)
	e := newEnv(b, func(c *notify.DeliveryConfig) { c.Poll = time.Second; c.EscalationEvery = time.Hour })
	recv := &latencyReceiver{arrived: map[string][]time.Time{}}
	srv := httptest.NewServer(recv)
	b.Cleanup(srv.Close)
	// Point both agencies at the measuring receiver.
	for _, a := range []struct{ id, role string }{{"rct-csc", "childrens_social_care"}, {"south-wales-police", "police"}} {
		if _, err := e.pool.Exec(context.Background(), `UPDATE notify.agencies SET url = $1, hours_start = '', hours_end = '', concurrency = 16 WHERE id = $2`, srv.URL, a.id); err != nil {
			b.Fatal(err)
		}
	}
	decisions := rate * seconds / 2
	refs := make([]*intakev1.Referral, decisions)
	for i := range refs {
		refs[i] = e.referral(b, func(r *intakev1.Referral) { r.AgencyKind = "health" })
	}
	e.waitFor(b, "receipts delivered", func() bool {
		recv.mu.Lock()
		defer recv.mu.Unlock()
		return len(recv.arrived) >= decisions
	})
	b.ResetTimer()
	e.async = true
	published := make([]time.Time, decisions)
	start := time.Now()
	interval := time.Second / time.Duration(rate/2)
	for i, ref := range refs {
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d)
		}
		published[i] = time.Now()
		e.decide(b, confirmed, ref, uuid.NewString(), 1, rulesv1.Level_LEVEL_4, rulesv1.Rag_RAG_AMBER, "childrens_social_care")
	}
	select {
	case <-e.js.PublishAsyncComplete():
	case <-time.After(30 * time.Second):
		b.Fatal("decisions not acknowledged by the broker")
	}
	e.waitFor(b, "every notification delivered", func() bool {
		recv.mu.Lock()
		defer recv.mu.Unlock()
		return len(recv.arrived) >= 3*decisions
	})
	b.StopTimer()
	var lat []time.Duration
	var last time.Time
	recv.mu.Lock()
	for i, ref := range refs {
		for _, kind := range []string{"ACTION", "OUTCOME"} {
			ts := recv.arrived[ref.GetId()+"/"+kind]
			if len(ts) != 1 {
				b.Fatalf("referral %s: %d %s deliveries", ref.GetId(), len(ts), kind)
			}
			lat = append(lat, ts[0].Sub(published[i]))
			if ts[0].After(last) {
				last = ts[0]
			}
		}
	}
	recv.mu.Unlock()
	slices.Sort(lat)
	pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(float64(len(lat))/last.Sub(start).Seconds(), "notifications/s")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
	b.ReportMetric(float64(rate), "target/s")
	// Where the time went: the consumer (event published → notification row committed) and
	// delivery (row committed → delivered recorded).
	pub := map[string]time.Time{}
	for i, ref := range refs {
		pub[ref.GetId()] = published[i]
	}
	rows, err := e.pool.Query(context.Background(), `SELECT referral_id::text, created_at, delivered_at FROM notify.notifications
		WHERE kind IN ('ACTION', 'OUTCOME') AND delivered_at IS NOT NULL`)
	if err != nil {
		b.Fatal(err)
	}
	var consume, deliver []time.Duration
	for rows.Next() {
		var id string
		var created, delivered time.Time
		if err := rows.Scan(&id, &created, &delivered); err != nil {
			b.Fatal(err)
		}
		if p, ok := pub[id]; ok {
			// The service's clock runs at an offset from the wall clock; remove it.
			consume = append(consume, created.Sub(p)-e.clockOffset())
			deliver = append(deliver, delivered.Sub(created))
		}
	}
	for name, d := range map[string][]time.Duration{"consume-p99-ms": consume, "deliver-p99-ms": deliver} {
		slices.Sort(d)
		if len(d) > 0 {
			b.ReportMetric(float64(d[int(0.99*float64(len(d)-1))].Microseconds())/1000, name)
		}
	}
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}
