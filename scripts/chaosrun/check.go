package main

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
)

type report struct {
	Seed        uint64              `json:"seed"`
	Duration    string              `json:"duration"`
	Submitted   int                 `json:"submitted"`
	PerSecond   float64             `json:"acknowledgedPerSecond"`
	Classes     map[string]int      `json:"classes"`
	Faults      map[string]int      `json:"faultsByKind"`
	Schedule    []fault             `json:"schedule"`
	AuditVerify string              `json:"auditVerify"`
	Checkpoints string              `json:"checkpointsConsistent"`
	Examples    map[string][]string `json:"examples,omitempty"`
}

// quiesce waits until outboxes are empty, every durable consumer has nothing pending or
// unacknowledged, nothing waits for delivery and the audit log has integrated everything,
// three times in a row a reconcile interval apart (so the reconcilers ran twice meanwhile).
func quiesce(pool *pgxpool.Pool, natsURL string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	calm := 0
	nc, err := nats.Connect(natsURL, nats.RetryOnFailedConnect(true), nats.MaxReconnects(-1))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	for {
		var pending int
		consumers, cerr := consumersPending(js)
		err := pool.QueryRow(context.Background(), `SELECT
			(SELECT count(*) FROM intake.outbox WHERE published_at IS NULL) + (SELECT count(*) FROM rules.outbox WHERE published_at IS NULL)
			+ (SELECT count(*) FROM notify.outbox WHERE published_at IS NULL) + (SELECT count(*) FROM audit.pending)
			+ (SELECT count(*) FROM notify.notifications WHERE state IN ('PENDING', 'SENDING'))
			+ (SELECT count(*) FROM intake.referrals WHERE status = 'RECEIVED')`).Scan(&pending)
		if err == nil && cerr == nil && pending == 0 && consumers == 0 {
			if calm++; calm >= 3 {
				return nil
			}
		} else {
			calm = 0
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not quiescent after %s (%d items in the database and %d in consumers still moving; %v %v)", limit, pending, consumers, err, cerr)
		}
		time.Sleep(5 * time.Second)
	}
}

// consumersPending sums what every durable consumer of the stream still has to do.
func consumersPending(js jetstream.JetStream) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, "MASH")
	if err != nil {
		return 0, err
	}
	n := 0
	l := st.ListConsumers(ctx)
	for info := range l.Info() {
		n += int(info.NumPending) + info.NumAckPending
	}
	return n, l.Err()
}

// classify checks every referral in the ledger against the database.
func classify(pool *pgxpool.Pool, led map[string]*outcome) (map[string]int, map[string][]string, error) {
	ctx := context.Background()
	type facts struct {
		referrals, decisions, notifications, dupNotifications, audited, dupAudited int
	}
	rows, err := pool.Query(ctx, `SELECT r.external_reference,
		count(DISTINCT r.id),
		(SELECT count(*) FROM rules.decisions d WHERE d.referral_id = r.id),
		(SELECT count(*) FROM notify.notifications n WHERE n.referral_id = r.id),
		(SELECT count(*) FROM (SELECT 1 FROM notify.notifications n WHERE n.referral_id = r.id AND n.state IN ('DELIVERED', 'ACKNOWLEDGED')
			GROUP BY n.agency, n.kind, n.decision_version, n.role HAVING count(*) > 1) x),
		(SELECT count(DISTINCT e.event_type) FROM audit.entries e WHERE e.referral_id = r.id::text AND e.event_type IN ($1, $2)),
		(SELECT count(*) FROM (SELECT 1 FROM audit.entries e WHERE e.referral_id = r.id::text GROUP BY e.event_id HAVING count(*) > 1) y)
		FROM intake.referrals r WHERE r.agency = 'south-wales-police' GROUP BY r.id, r.external_reference`,
		eventsv1.SubjectReferralReceived, eventsv1.SubjectRecommendationMade)
	if err != nil {
		return nil, nil, fmt.Errorf("classify: %w", err)
	}
	found := map[string]facts{}
	for rows.Next() {
		var key string
		var f facts
		if err := rows.Scan(&key, &f.referrals, &f.decisions, &f.notifications, &f.dupNotifications, &f.audited, &f.dupAudited); err != nil {
			return nil, nil, err
		}
		g := found[key]
		g.referrals += f.referrals
		g.decisions += f.decisions
		g.notifications += f.notifications
		g.dupNotifications += f.dupNotifications
		g.audited = f.audited
		g.dupAudited += f.dupAudited
		found[key] = g
	}
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	classes := map[string]int{"ok": 0, "lost": 0, "duplicated": 0, "partial": 0, "unexpected": 0, "recovered": 0, "not-accepted": 0}
	examples := map[string][]string{}
	note := func(class, key string) {
		classes[class]++
		if class != "ok" && class != "recovered" && len(examples[class]) < 10 {
			examples[class] = append(examples[class], key)
		}
	}
	for key, o := range led {
		f, present := found[key]
		complete := present && f.decisions >= 1 && f.notifications >= 1 && f.audited == 2
		switch {
		case present && (f.referrals > 1 || f.decisions > 1 || f.dupNotifications > 0 || f.dupAudited > 0):
			note("duplicated", key)
		case o.acked && !complete:
			note("lost", key)
		case o.acked:
			note("ok", key)
		case present && complete:
			note("recovered", key)
		case present:
			note("partial", key)
		default:
			note("not-accepted", key)
		}
	}
	for key := range found {
		if _, ok := led[key]; !ok && strings.HasPrefix(key, "CHAOS-") {
			note("unexpected", key)
		}
	}
	return classes, examples, nil
}

func printTable(r report) {
	fmt.Printf("\nchaos report (seed %d, %s, %d referrals submitted, %.1f acknowledged/s)\n", r.Seed, r.Duration, r.Submitted, r.PerSecond)
	var kinds []string
	for k := range r.Faults {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	fmt.Println("faults applied:")
	for _, k := range kinds {
		fmt.Printf("  %-20s %d\n", k, r.Faults[k])
	}
	fmt.Println("referrals by class:")
	for _, k := range []string{"ok", "recovered", "lost", "duplicated", "partial", "unexpected", "not-accepted"} {
		fmt.Printf("  %-20s %d\n", k, r.Classes[k])
	}
	fmt.Printf("audit verify:          %s\ncheckpoints:           %s\n", r.AuditVerify, r.Checkpoints)
}
