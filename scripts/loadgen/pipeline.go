package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	intakev1 "github.com/mash-hub/mash/proto/mash/intake/v1"
	triagev1 "github.com/mash-hub/mash/proto/mash/triage/v1"
)

// pipelineResult is one pipeline phase's summary, printed as a JSON line: what a referral
// costs from the referrer's request to the last audit entry, hop by hop.
type pipelineResult struct {
	Mode string `json:"mode"`
	// Rate is the arrival rate asked for (0 for a burst); Achieved what was submitted per second.
	Rate       float64 `json:"rate"`
	Achieved   float64 `json:"achieved"`
	Referrals  int     `json:"referrals"`
	Repeats    int     `json:"repeats"`
	Errors     int64   `json:"errors"`
	LoadSecs   float64 `json:"load_seconds"`
	DrainSecs  float64 `json:"drain_seconds"`
	Complete   int     `json:"complete"`
	Incomplete string  `json:"incomplete,omitempty"`
	// Hops: p50 and p99 in milliseconds of each hop's own time, and end to end from receipt.
	Hops map[string]quantiles `json:"hops"`
	// History, in a history phase: how many earlier referrals the one child had; its
	// referrals' hops and the new children's, apart.
	History      int                  `json:"history,omitempty"`
	HistoryHops  map[string]quantiles `json:"history_hops,omitempty"`
	NewChildHops map[string]quantiles `json:"new_child_hops,omitempty"`
	// Backlogs: each stage's backlog (referrals or events between two hops) at the middle and
	// at the end of the load, and its growth per second over the second half: flat is near 0.
	Backlogs map[string]backlog `json:"backlogs"`
	// Per referral, over the whole phase: Postgres transactions committed (reads too: every
	// poll of every relay, consumer and of the bench's practitioner counts), rows written and
	// WAL written (the server's, so other databases' writes count too).
	CommitsPerReferral  float64 `json:"commits_per_referral"`
	WALKiBPerReferral   float64 `json:"wal_kib_per_referral"`
	InsertsPerReferral  float64 `json:"inserts_per_referral"`
	UpdatesPerReferral  float64 `json:"updates_per_referral"`
	PeakRSSMiB          float64 `json:"peak_rss_mib"`
	AckP50ms            float64 `json:"ack_p50_ms"`
	AckP99ms            float64 `json:"ack_p99_ms"`
	DeliveriesToReceive int64   `json:"deliveries"`
}

type quantiles struct {
	N     int     `json:"n"`
	P50ms float64 `json:"p50_ms"`
	P99ms float64 `json:"p99_ms"`
}

type backlog struct {
	Mid       int64   `json:"mid"`
	End       int64   `json:"end"`
	PerSecond float64 `json:"growth_per_s"`
}

// runPipeline drives every service at once as a hub would see it: referrals at a fixed
// arrival rate (or all at once), a practitioner confirming each recommendation as it reaches
// the queue, agencies' endpoints answering 2xx; then it reads each hop's time from the
// services' own tables, so the load generator's clock never enters a figure but the
// acknowledgement's.
func runPipeline(args []string) error {
	fs := flag.NewFlagSet("loadgen pipeline", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:9090", "mash gRPC address")
	token := fs.String("token", os.Getenv("MASH_TOKEN"), "referrer bearer credential")
	deciderToken := fs.String("decider-token", os.Getenv("MASH_DECIDER_TOKEN"), "practitioner bearer credential (every partnership)")
	dbURL := fs.String("db", os.Getenv("DATABASE_URL"), "the bench database, read for each hop's time")
	rps := fs.Float64("rps", 50, "arrival rate, referrals per second")
	dur := fs.Duration("d", 25*time.Second, "how long referrals arrive")
	burst := fs.Int("burst", 0, "submit this many referrals at once instead of an arrival rate")
	repeatShare := fs.Float64("repeat-share", 0.1, "share of referrals about a child referred earlier in the run")
	payload := fs.String("payload", "services/intake/testdata/referral.example.json", "referral JSON to send")
	prefix := fs.String("prefix", strconv.FormatInt(time.Now().UnixNano(), 36), "external reference prefix, unique per run")
	hookAddr := fs.String("hook-addr", "127.0.0.1:28099", "where the agencies' webhook receiver listens")
	mashPID := fs.Int("mash-pid", 0, "mash's process id, for its peak memory")
	drainTimeout := fs.Duration("drain-timeout", 5*time.Minute, "longest wait for every referral to be decided, told and audited")
	deciders := fs.Int("deciders", 8, "practitioners deciding in parallel")
	history := fs.Int("history", 0, "refer one child this many times first, then alternate the phase's referrals between that child and new ones, and report each group's hops")
	firstChild := fs.Int("first-child", 0, "serial of the phase's first new child, so that phases do not share children")
	metricsURL := fs.String("metrics", "http://127.0.0.1:8080/metrics", "mash's Prometheus endpoint, read for the audit consumer's lag")
	mix := fs.String("mix", "example", "what is referred: example (-payload every time, from -token's agency) or demo (the demo's scenarios in their weights, each from its own agency)")
	sourceTokens := fs.String("source-tokens", "", "with -mix demo: a file of \"agency token\" lines, a referrer's credential for each agency \"loadgen demo-sources\" lists")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case *token == "" || *deciderToken == "":
		return errors.New("-token (referrer) and -decider-token (practitioner) are required")
	case *dbURL == "":
		return errors.New("-db or DATABASE_URL is required")
	case *burst == 0 && *rps <= 0:
		return errors.New("-rps must be positive, or give -burst")
	case *history < 0 || *firstChild < 0:
		return errors.New("-history and -first-child must not be negative")
	case *repeatShare < 0 || *repeatShare > 1:
		return fmt.Errorf("-repeat-share %v: must be between 0 and 1", *repeatShare)
	case *mix != "example" && *mix != "demo":
		return fmt.Errorf("-mix %q: use example or demo", *mix)
	case *mix == "demo" && *sourceTokens == "":
		return errors.New("-mix demo needs -source-tokens")
	case *mix == "demo" && *history > 0:
		return errors.New("-history refers the example's child; use it with -mix example")
	}
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, *dbURL)
	if err != nil {
		return fmt.Errorf("-db: %w", err)
	}
	defer pool.Close()
	raw, err := os.ReadFile(*payload)
	if err != nil {
		return err
	}
	base := &intakev1.ReferralSubmission{}
	if err := protojson.Unmarshal(raw, base); err != nil {
		return fmt.Errorf("payload: %w", err)
	}
	// Consent given, so each decision is shared at once: a held case would wait for a
	// manager, which is a person's time, not the pipeline's.
	base.Consent = &intakev1.Consent{Status: intakev1.ConsentStatus_GIVEN}

	var delivered atomic.Int64
	hook := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		delivered.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}), ReadHeaderTimeout: 5 * time.Second}
	ln, err := net.Listen("tcp", *hookAddr)
	if err != nil {
		return fmt.Errorf("-hook-addr: %w", err)
	}
	go func() { _ = hook.Serve(ln) }()
	defer hook.Close()

	conn, err := grpc.NewClient(*addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	intake := intakev1.NewIntakeServiceClient(conn)
	triage := triagev1.NewTriageServiceClient(conn)

	before, err := pgCounters(ctx, pool)
	if err != nil {
		return err
	}
	queued := newQueuedTimes()
	jobs := make(chan job, 4096)
	tr := newTracker(pool, *metricsURL, queued, jobs)
	if _, _, err := tr.eventBacklogs(ctx); err != nil {
		return err
	}
	stopTrack := make(chan struct{})
	trackDone := make(chan error, 1)
	go func() { trackDone <- tr.run(ctx, stopTrack) }()
	decided := decide(ctx, triage, *deciderToken, *deciders, jobs)
	sampler := newBacklogSampler(tr)
	stopSample := sampler.start(ctx)

	children := newChildren(*repeatShare, *firstChild)
	authMD := metadata.Pairs("authorization", "Bearer "+*token)
	var errs atomic.Int64
	var ackMu sync.Mutex
	var acks []time.Duration
	// The child with a long history: one identity, outside the serials new children take.
	var historyChild *intakev1.Child
	historyIDs := map[string]bool{}
	if *history > 0 {
		historyChild = &intakev1.Child{}
		newChildren(0, 990000).fill(historyChild)
	}
	total := *burst
	if total == 0 {
		total = int(dur.Seconds() * *rps)
	}
	var mixed []sourced
	agencyMD := map[string]metadata.MD{}
	if *mix == "demo" {
		tokens, err := readSourceTokens(*sourceTokens)
		if err != nil {
			return err
		}
		for agency, token := range tokens {
			agencyMD[agency] = metadata.Pairs("authorization", "Bearer "+token)
		}
		if mixed, err = demoMix(total); err != nil {
			return err
		}
		for _, m := range mixed {
			if agencyMD[m.agency] == nil {
				return fmt.Errorf("-source-tokens has no credential for %s", m.agency)
			}
		}
	}
	submit := func(ref string, scheduled time.Time, child *intakev1.Child, i int) {
		// The demo's referrals as the demo makes them, their consent included: whether the
		// family consented decides what may be shared before a manager authorises it.
		referral, md := base, authMD
		if mixed != nil {
			m := mixed[i%len(mixed)]
			referral, md = m.sub, agencyMD[m.agency]
		}
		req := &intakev1.SubmitReferralRequest{Referral: proto.Clone(referral).(*intakev1.ReferralSubmission)}
		req.Referral.ExternalReference = ref
		switch c := req.Referral.GetChild(); {
		case child != nil:
			c.GivenName, c.FamilyName, c.DateOfBirth, c.NhsNumber = child.GivenName, child.FamilyName, child.DateOfBirth, child.NhsNumber
		case mixed != nil:
			children.fillKeepingAge(c)
		default:
			children.fill(c)
		}
		cctx, cancel := context.WithTimeout(metadata.NewOutgoingContext(ctx, md), 30*time.Second)
		defer cancel()
		resp, err := intake.SubmitReferral(cctx, req)
		if err != nil {
			if errs.Add(1) <= 3 {
				fmt.Fprintf(os.Stderr, "loadgen pipeline: submit: %v\n", err)
			}
			return
		}
		tr.received(resp.GetAcknowledgement().GetReferralId())
		ackMu.Lock()
		acks = append(acks, time.Since(scheduled))
		if child != nil && child == historyChild {
			historyIDs[resp.GetAcknowledgement().GetReferralId()] = true
		}
		ackMu.Unlock()
	}
	if *history > 0 {
		// The history first, at a pace the pipeline keeps up with, decided and told before
		// the phase's clock starts. Its references fall outside the phase's prefix.
		for i := range *history {
			submit(*prefix+"seed-"+strconv.Itoa(i), time.Now(), historyChild, i)
			time.Sleep(20 * time.Millisecond)
		}
		for seeded := time.Now(); ; time.Sleep(100 * time.Millisecond) {
			rec, queue, dec, tell, _ := tr.stageCounts()
			if rec+queue+dec+tell == 0 {
				break
			}
			if time.Since(seeded) > *drainTimeout {
				return fmt.Errorf("the child's %d earlier referrals were not all decided within %s", *history, *drainTimeout)
			}
		}
		ackMu.Lock()
		acks, historyIDs = acks[:0], map[string]bool{}
		ackMu.Unlock()
		errs.Store(0)
	}
	start := time.Now()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 512)
	for i := range total {
		scheduled := start
		if *burst == 0 {
			scheduled = start.Add(time.Duration(float64(i) / *rps * float64(time.Second)))
			time.Sleep(time.Until(scheduled))
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			var child *intakev1.Child
			if historyChild != nil && i%2 == 0 {
				child = historyChild
			}
			submit(*prefix+"-"+strconv.Itoa(i), scheduled, child, i)
		}()
	}
	wg.Wait()
	loadSecs := time.Since(start).Seconds()
	sampler.markEnd()

	// Drained: every referral accepted in this phase recommended, on the queue, decided, every
	// agency told, and the audit log caught up with every event published.
	accepted := total - int(errs.Load())
	drainStart := time.Now()
	var incomplete string
	for {
		select {
		case err := <-trackDone:
			return err
		default:
		}
		incomplete, err = pipelineIncomplete(ctx, tr)
		if err != nil {
			return err
		}
		if incomplete == "" || time.Since(drainStart) > *drainTimeout {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	drainSecs := time.Since(drainStart).Seconds()
	close(stopTrack)
	if err := <-trackDone; err != nil {
		return err
	}
	close(jobs)
	decided()
	stopSample()
	after, err := pgCounters(ctx, pool)
	if err != nil {
		return err
	}

	res := pipelineResult{Mode: "pipeline", Rate: *rps, Referrals: accepted, Repeats: children.repeats(), Errors: errs.Load(),
		LoadSecs: loadSecs, DrainSecs: drainSecs, Incomplete: incomplete, DeliveriesToReceive: delivered.Load()}
	if *burst > 0 {
		res.Mode, res.Rate = "burst", 0
	}
	res.Achieved = float64(accepted) / loadSecs
	if res.Hops, res.Complete, err = hopTimes(ctx, pool, *prefix, queued, nil); err != nil {
		return err
	}
	if *history > 0 {
		res.Mode, res.History = "history", *history
		inHistory := func(id string) bool { return historyIDs[id] }
		if res.HistoryHops, _, err = hopTimes(ctx, pool, *prefix, queued, inHistory); err != nil {
			return err
		}
		if res.NewChildHops, _, err = hopTimes(ctx, pool, *prefix, queued, func(id string) bool { return !historyIDs[id] }); err != nil {
			return err
		}
	}
	res.Backlogs = sampler.summary()
	if accepted > 0 {
		res.CommitsPerReferral = float64(after.commits-before.commits) / float64(accepted)
		res.InsertsPerReferral = float64(after.inserts-before.inserts) / float64(accepted)
		res.UpdatesPerReferral = float64(after.updates-before.updates) / float64(accepted)
		res.WALKiBPerReferral = float64(after.walBytes-before.walBytes) / 1024 / float64(accepted)
	}
	slices.Sort(acks)
	res.AckP50ms, res.AckP99ms = quantileMS(acks, .5), quantileMS(acks, .99)
	if *mashPID > 0 {
		res.PeakRSSMiB = peakRSSMiB(*mashPID)
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}

// queuedTimes holds when each case reached the queue, as triage recorded it (the case row's
// updated_at when first seen awaiting a decision, before the practitioner's claim changes it).
type queuedTimes struct {
	mu sync.Mutex
	at map[string]time.Time
}

func newQueuedTimes() *queuedTimes { return &queuedTimes{at: map[string]time.Time{}} }

func (q *queuedTimes) first(id string, t time.Time) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if _, ok := q.at[id]; ok {
		return false
	}
	q.at[id] = t
	return true
}

func (q *queuedTimes) get(id string) (time.Time, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	t, ok := q.at[id]
	return t, ok
}

// pipelineIncomplete says which stage still holds work, or "" when every referral of the
// phase is through every hop and every event published is on the audit log.
func pipelineIncomplete(ctx context.Context, tr *tracker) (string, error) {
	rec, queue, decide, tell, _ := tr.stageCounts()
	switch {
	case rec > 0:
		return fmt.Sprintf("%d not yet recommended", rec), nil
	case queue > 0:
		return fmt.Sprintf("%d not yet on the queue", queue), nil
	case decide > 0:
		return fmt.Sprintf("%d not yet decided", decide), nil
	case tell > 0:
		return fmt.Sprintf("%d with agencies not yet told", tell), nil
	}
	unpublished, unaudited, err := tr.eventBacklogs(ctx)
	switch {
	case err != nil:
		return "", err
	case unpublished > 0:
		return fmt.Sprintf("%d events not yet published", unpublished), nil
	case unaudited > 0:
		return fmt.Sprintf("%d events not yet audited", unaudited), nil
	}
	return "", nil
}

// hopTimes reads each referral's time at every hop and summarises each hop.
// Only referrals for which include is true count, when include is set.
func hopTimes(ctx context.Context, pool *pgxpool.Pool, prefix string, queued *queuedTimes, include func(id string) bool) (map[string]quantiles, int, error) {
	rows, err := pool.Query(ctx, `
		SELECT r.id::text, r.received_at, d.decided_at, c.decided_at,
			(SELECT max(n.delivered_at) FROM notify.notifications n WHERE n.referral_id = r.id AND n.decision_id IS NOT NULL),
			(SELECT max(a.recorded_at) FROM audit.entries a WHERE a.referral_id = r.id::text)
		FROM intake.referrals r
		LEFT JOIN rules.decisions d ON d.referral_id = r.id
		LEFT JOIN triage.cases c ON c.referral_id = r.id
		WHERE r.external_reference LIKE $1 || '-%'`, prefix)
	if err != nil {
		return nil, 0, fmt.Errorf("reading hop times: %w", err)
	}
	defer rows.Close()
	hops := map[string][]time.Duration{}
	add := func(name string, from, to *time.Time) {
		if from != nil && to != nil {
			hops[name] = append(hops[name], to.Sub(*from))
		}
	}
	complete := 0
	for rows.Next() {
		var id string
		var received time.Time
		var recommended, decided, told, audited *time.Time
		if err := rows.Scan(&id, &received, &recommended, &decided, &told, &audited); err != nil {
			return nil, 0, err
		}
		if include != nil && !include(id) {
			continue
		}
		var onQueue *time.Time
		if t, ok := queued.get(id); ok {
			onQueue = &t
		}
		add("1 received -> recommended", &received, recommended)
		add("2 recommended -> on the queue", recommended, onQueue)
		add("3 on the queue -> decided (bench practitioner)", onQueue, decided)
		add("4 decided -> every agency told", decided, told)
		add("5 last agency told -> last audit entry", told, audited)
		add("received -> on the queue", &received, onQueue)
		add("received -> last audit entry", &received, audited)
		if told != nil && audited != nil {
			complete++
		}
	}
	if err := rows.Err(); err != nil {
		return nil, 0, err
	}
	out := map[string]quantiles{}
	for name, ds := range hops {
		slices.Sort(ds)
		out[name] = quantiles{N: len(ds), P50ms: quantileMS(ds, .5), P99ms: quantileMS(ds, .99)}
	}
	return out, complete, nil
}

func quantileMS(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	return float64(sorted[int(p*float64(len(sorted)-1))]) / 1e6
}

// backlogSampler reads, once a second, how much work sits between each pair of hops.
type backlogSampler struct {
	tr      *tracker
	mu      sync.Mutex
	samples []backlogSample
	endIdx  int
}

type backlogSample struct {
	at     time.Time
	counts map[string]int64
}

func newBacklogSampler(tr *tracker) *backlogSampler {
	return &backlogSampler{tr: tr, endIdx: -1}
}

// backlogNames: referrals received but not recommended; recommended but not on the queue;
// decided but with agencies not yet told; events waiting in an outbox; events published but
// not yet on the audit log. Referrals waiting for the bench's own practitioners are not a
// backlog of the pipeline's.
var backlogNames = []string{"rules (not yet recommended)", "triage (not yet queued)", "notify (agencies not yet told)", "relays (unpublished events)", "audit (events not yet on the log)"}

func (s *backlogSampler) start(ctx context.Context) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			rec, queue, _, tell, _ := s.tr.stageCounts()
			unpublished, unaudited, err := s.tr.eventBacklogs(ctx)
			if err != nil {
				fmt.Fprintf(os.Stderr, "loadgen pipeline: backlog sample: %v\n", err)
				continue
			}
			v := []int64{int64(rec), int64(queue), int64(tell), unpublished, unaudited}
			m := map[string]int64{}
			for i, n := range backlogNames {
				m[n] = v[i]
			}
			s.mu.Lock()
			s.samples = append(s.samples, backlogSample{at: time.Now(), counts: m})
			s.mu.Unlock()
		}
	}()
	return func() { close(done); <-finished }
}

// markEnd notes that the load stopped: growth is judged over the load's second half only.
func (s *backlogSampler) markEnd() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.endIdx = len(s.samples) - 1
}

func (s *backlogSampler) summary() map[string]backlog {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]backlog{}
	end := s.endIdx
	if end < 1 {
		return out
	}
	mid := end / 2
	half := s.samples[mid : end+1]
	for _, n := range backlogNames {
		out[n] = backlog{Mid: s.samples[mid].counts[n], End: s.samples[end].counts[n], PerSecond: growthPerSecond(half, n)}
	}
	return out
}

// growthPerSecond is a backlog's trend over the samples: the median of the slopes between
// every pair of them (Theil-Sen). The relays and the audit log work in batches, so a backlog
// read once a second jumps by hundreds between neighbouring samples; the difference of the
// first and last judged a steady phase as growing whenever the last caught a batch waiting,
// and a least-squares line is pulled almost as far by that one sample.
func growthPerSecond(samples []backlogSample, name string) float64 {
	var slopes []float64
	for i := range samples {
		for j := i + 1; j < len(samples); j++ {
			dt := samples[j].at.Sub(samples[i].at).Seconds()
			if dt <= 0 {
				continue
			}
			slopes = append(slopes, float64(samples[j].counts[name]-samples[i].counts[name])/dt)
		}
	}
	if len(slopes) == 0 {
		return 0
	}
	slices.Sort(slopes)
	if n := len(slopes); n%2 == 0 {
		return (slopes[n/2-1] + slopes[n/2]) / 2
	}
	return slopes[len(slopes)/2]
}

type counters struct{ commits, inserts, updates, walBytes int64 }

func pgCounters(ctx context.Context, pool *pgxpool.Pool) (counters, error) {
	var c counters
	// The statistics collector reports with a delay; a snapshot forces nothing, so each
	// phase is long enough for the delay (about a second) not to matter.
	err := pool.QueryRow(ctx, `SELECT (SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()),
		(SELECT coalesce(sum(n_tup_ins), 0)::bigint FROM pg_stat_user_tables),
		(SELECT coalesce(sum(n_tup_upd), 0)::bigint FROM pg_stat_user_tables),
		pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint`).Scan(&c.commits, &c.inserts, &c.updates, &c.walBytes)
	if err != nil {
		return c, fmt.Errorf("reading Postgres counters: %w", err)
	}
	return c, nil
}

// peakRSSMiB is the process's high-water resident set (VmHWM), in MiB.
func peakRSSMiB(pid int) float64 {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}
