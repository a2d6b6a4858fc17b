package rules_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"

	intakev1 "github.com/mash-hub/mash/proto/mash/intake/v1"
)

// BenchmarkDecisions measures referrals decided per second end to end inside the rules
// service: event consumed, child index, history, pack evaluation, decision and outbox row
// committed, event acknowledged. Run: go test -run '^$' -bench Decisions ./services/rules/
func BenchmarkDecisions(b *testing.B) {
	e := newEnv(b)
	defer func() {
		var dl int
		_ = e.pool.QueryRow(context.Background(), `SELECT count(*) FROM rules.dead_letter`).Scan(&dl)
		b.Logf("dead letters: %d", dl)
	}()
	sub := example(b)
	ids := make([]string, b.N)
	for i := range ids {
		ids[i] = uuid.NewString()
	}
	b.ResetTimer()
	start := time.Now()
	light := lowLevel(b, 19) // SCHOOL_ATTENDANCE: a mix of heavy and light outcomes
	for i, id := range ids {
		s := sub
		if i%2 == 1 {
			s = light
		}
		// Different children: referrals about one child are serialised by the child-index
		// lock, as they must be, which is not the common case.
		s = proto.Clone(s).(*intakev1.ReferralSubmission)
		s.Child.NhsNumber = fmt.Sprintf("9%09d", i)
		s.Child.GivenName = fmt.Sprintf("Child%d", i)
		e.received(b, id, e.now, s)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for {
		var n int
		if err := e.pool.QueryRow(ctx, `SELECT count(*) FROM rules.decisions`).Scan(&n); err != nil {
			b.Fatal(err)
		}
		if n >= b.N {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "decisions/s")
}
