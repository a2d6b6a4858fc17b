package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// tracker follows each referral of a phase through the pipeline's stages by primary key:
// recommended (rules.decisions), on the queue (triage.cases awaiting a decision), decided,
// and every agency told (notify.notifications). It asks only about referrals still at a
// stage, at most trackChunk of them a stage per poll, so what it costs the database does not
// grow with the tables or the phase: an earlier version counted whole tables every second and
// every 100 ms, and spent more of Postgres's CPU than the pipeline it was measuring.
type tracker struct {
	pool       *pgxpool.Pool
	metricsURL string
	queued     *queuedTimes
	jobs       chan<- job

	mu sync.Mutex
	// Referrals waiting at each stage, in arrival order.
	awaitRecommended, awaitQueued, awaitDecided, awaitTold []string
	done                                                   int
	// decisionNoticed: referrals whose decision notify has turned into notifications.
	// Only the polling goroutine uses it.
	decisionNoticed map[string]bool
	// polls counts the polling goroutine's rounds.
	polls int
}

// job is a case on the queue for the bench's practitioners to claim and decide.
type job struct {
	id      string
	version int64
}

const (
	trackChunk    = 2000
	trackInterval = 50 * time.Millisecond
	// laterStagesEvery spaces out the polls of the stages after the practitioner's decision.
	// Their hops are timed from the services' own tables, so the cadence only delays when the
	// tracker counts a referral done, while at every tick the scan of notifications still to
	// be delivered cost Postgres a fifth of its time at 50/s and slowed what it measured.
	laterStagesEvery = 10
)

func newTracker(pool *pgxpool.Pool, metricsURL string, queued *queuedTimes, jobs chan<- job) *tracker {
	return &tracker{pool: pool, metricsURL: metricsURL, queued: queued, jobs: jobs, decisionNoticed: map[string]bool{}}
}

// received adds a referral intake acknowledged.
func (t *tracker) received(id string) {
	t.mu.Lock()
	t.awaitRecommended = append(t.awaitRecommended, id)
	t.mu.Unlock()
}

// run polls until stop closes.
func (t *tracker) run(ctx context.Context, stop <-chan struct{}) error {
	tick := time.NewTicker(trackInterval)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return nil
		case <-tick.C:
		}
		if err := t.poll(ctx); err != nil {
			return err
		}
	}
}

// head returns up to trackChunk ids from the front of a stage.
func (t *tracker) head(stage *[]string) []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]string(nil), (*stage)[:min(len(*stage), trackChunk)]...)
}

// advance removes moved from stage and appends them to next (nil: the referral is done).
func (t *tracker) advance(stage, next *[]string, moved map[string]bool) {
	if len(moved) == 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	kept := (*stage)[:0]
	for _, id := range *stage {
		if moved[id] {
			if next != nil {
				*next = append(*next, id)
			} else {
				t.done++
			}
			continue
		}
		kept = append(kept, id)
	}
	*stage = kept
}

func (t *tracker) poll(ctx context.Context) error {
	t.polls++
	if ids := t.head(&t.awaitRecommended); len(ids) > 0 {
		moved, err := t.ids(ctx, `SELECT referral_id::text FROM rules.decisions WHERE referral_id = ANY($1::uuid[])`, ids)
		if err != nil {
			return fmt.Errorf("reading recommendations: %w", err)
		}
		t.advance(&t.awaitRecommended, &t.awaitQueued, moved)
	}
	if ids := t.head(&t.awaitQueued); len(ids) > 0 {
		rows, err := t.pool.Query(ctx, `SELECT referral_id::text, version, updated_at, assignee IS NULL AND decided_at IS NULL
			FROM triage.cases WHERE referral_id = ANY($1::uuid[]) AND state >= 2`, ids)
		if err != nil {
			return fmt.Errorf("reading the queue: %w", err)
		}
		moved := map[string]bool{}
		var ready []job
		for rows.Next() {
			var j job
			var at time.Time
			var open bool
			if err := rows.Scan(&j.id, &j.version, &at, &open); err != nil {
				rows.Close()
				return err
			}
			moved[j.id] = true
			if t.queued.first(j.id, at) && open {
				ready = append(ready, j)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("reading the queue: %w", err)
		}
		t.advance(&t.awaitQueued, &t.awaitDecided, moved)
		for _, j := range ready {
			select {
			case t.jobs <- j:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	if t.polls%laterStagesEvery != 0 {
		return nil
	}
	if ids := t.head(&t.awaitDecided); len(ids) > 0 {
		moved, err := t.ids(ctx, `SELECT referral_id::text FROM triage.cases WHERE referral_id = ANY($1::uuid[]) AND decided_at IS NOT NULL`, ids)
		if err != nil {
			return fmt.Errorf("reading decisions: %w", err)
		}
		t.advance(&t.awaitDecided, &t.awaitTold, moved)
	}
	if ids := t.head(&t.awaitTold); len(ids) > 0 {
		// Told: notify holds the decision's notifications (it writes them all in one
		// transaction; each referral is looked up once) and none is still to be delivered
		// (read over the partial index of notifications due, so it costs what the
		// backlog holds).
		var unknown []string
		for _, id := range ids {
			if !t.decisionNoticed[id] {
				unknown = append(unknown, id)
			}
		}
		if len(unknown) > 0 {
			found, err := t.ids(ctx, `SELECT DISTINCT referral_id::text FROM notify.notifications
				WHERE referral_id = ANY($1::uuid[]) AND decision_id IS NOT NULL`, unknown)
			if err != nil {
				return fmt.Errorf("reading notifications: %w", err)
			}
			for id := range found {
				t.decisionNoticed[id] = true
			}
		}
		undelivered, err := t.ids(ctx, `SELECT DISTINCT referral_id::text FROM notify.notifications WHERE state IN ('PENDING', 'SENDING')`, nil)
		if err != nil {
			return fmt.Errorf("reading deliveries: %w", err)
		}
		moved := map[string]bool{}
		for _, id := range ids {
			if t.decisionNoticed[id] && !undelivered[id] {
				moved[id] = true
				delete(t.decisionNoticed, id)
			}
		}
		t.advance(&t.awaitTold, nil, moved)
	}
	return nil
}

// ids runs sql, with ids as its one argument when there are any, and returns the ids it selects.
func (t *tracker) ids(ctx context.Context, sql string, ids []string) (map[string]bool, error) {
	var args []any
	if ids != nil {
		args = append(args, ids)
	}
	rows, err := t.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out[id] = true
	}
	return out, rows.Err()
}

// stageCounts is how many referrals wait at each stage.
func (t *tracker) stageCounts() (recommend, queue, decide, tell, done int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.awaitRecommended), len(t.awaitQueued), len(t.awaitDecided), len(t.awaitTold), t.done
}

// eventBacklogs reads the events not yet published by any relay (each outbox's partial index
// of unpublished rows, so the count is of the backlog only) and the events the audit log does
// not yet hold: its consumer's lag on mash's /metrics, as an operator's Prometheus reads it,
// plus entries consumed and waiting for the sequencer.
func (t *tracker) eventBacklogs(ctx context.Context) (unpublished, unaudited int64, err error) {
	err = t.pool.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM intake.outbox WHERE published_at IS NULL) + (SELECT count(*) FROM rules.outbox WHERE published_at IS NULL)
		+ (SELECT count(*) FROM triage.outbox WHERE published_at IS NULL) + (SELECT count(*) FROM notify.outbox WHERE published_at IS NULL)
		+ (SELECT count(*) FROM audit.outbox WHERE published_at IS NULL),
		(SELECT count(*) FROM audit.pending)`).Scan(&unpublished, &unaudited)
	if err != nil {
		return 0, 0, fmt.Errorf("reading outboxes: %w", err)
	}
	lag, err := consumerLag(ctx, t.metricsURL, "audit")
	if err != nil {
		return 0, 0, err
	}
	return unpublished, unaudited + lag, nil
}

// consumerLag reads mash_consumer_lag{consumer=durable} from a Prometheus text exposition.
func consumerLag(ctx context.Context, url, durable string) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("reading %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("reading %s: %s", url, resp.Status)
	}
	want := `mash_consumer_lag{consumer="` + durable + `"} `
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), want); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				return 0, fmt.Errorf("%s: %q: %w", url, sc.Text(), err)
			}
			return int64(f), nil
		}
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("reading %s: %w", url, err)
	}
	return 0, fmt.Errorf("%s has no %s", url, strings.TrimSpace(want))
}
