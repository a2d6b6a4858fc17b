package store

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// DashboardQuery selects the management information: referrals received in [From, To) of a
// partnership (empty: all), as at Now, with ISO weeks counted in Location (UTC if nil).
type DashboardQuery struct {
	Partnership string
	// Partnerships, when Partnership is empty and this is not nil, limits the figures to
	// those partnerships (the ones the caller serves).
	Partnerships []string
	From, To     time.Time
	Now          time.Time
	Location     *time.Location
}

// Tally is a labelled count; Key is the label as stored (an enum number as text for levels
// and RAG, which the service names).
type Tally struct {
	Key   string
	Count int64
}

// LevelOutcome counts closed cases of one level by outcome.
type LevelOutcome struct {
	Level, Outcome int16
	Count          int64
}

// Turnaround is how quickly one agency responds.
type Turnaround struct {
	Agency         string
	Count          int64
	MedianMinutes  float64
	OnTime, Judged int64
}

// Dashboard is the raw management information; the service turns counts into percentages.
type Dashboard struct {
	Referrals, HumanDecided, DecidedOnTime int64
	MedianMinutesToDecision                float64
	RAGJudged, WithinRAG                   int64
	StepUps, StepDowns                     int64
	ReReferrals, ReReferralsAfterNFA       int64
	DisagreementsRaised                    int64
	DisagreementsResolved                  int64
	EncompassCount, EncompassOnTime        int64
	EncompassJudged                        int64
	BySource, RAGs, Weeks                  []Tally
	Outcomes                               []LevelOutcome
	Acks, InfoRequests                     []Turnaround
	// LeadAgencies are the cases received in the window with a lead professional named, by
	// the lead agency; LeadNamed their sum.
	LeadAgencies []Tally
	LeadNamed    int64
}

// inWindow selects the cases of the dashboard; $1 the partnerships, $2 from, $3 to. Every
// column the figures read is in the cases_dashboard index, so each partnership's range is an
// index-only scan.
const inWindow = `FROM triage.cases WHERE partnership = ANY($1::text[]) AND received_at >= $2 AND received_at < $3`

// allPartnerships lists the partnerships that have cases, a skip through the partnership
// index (one descent per partnership), for the dashboard of every partnership.
const allPartnerships = `WITH RECURSIVE p AS (
		(SELECT partnership FROM triage.cases ORDER BY partnership LIMIT 1)
		UNION ALL
		SELECT (SELECT c.partnership FROM triage.cases c WHERE c.partnership > p.partnership ORDER BY c.partnership LIMIT 1)
		FROM p WHERE p.partnership IS NOT NULL)
	SELECT coalesce(array_agg(partnership), '{}') FROM p WHERE partnership IS NOT NULL`

// humanDecided: a practitioner confirmed or overrode the rules (CONFIRMED 2, OVERRIDDEN 3).
const humanDecided = `decision_status IN (2, 3) AND decided_at IS NOT NULL`

// Dashboard computes every figure by SQL over the read model. Definitions:
//   - decided on time: a human decision at or before the decision due time, among human
//     decisions; the median is received to decided, in minutes;
//   - within RAG time: decided by the RAG due time, among cases with one that are decided or
//     whose RAG due time has passed (an undecided overdue case counts against the hub);
//   - re-referral: the child had another referral received in the 12 months before; after
//     NFA: the most recent such referral closed NO_FURTHER_ACTION or ADVICE_AND_SIGNPOSTING
//     (as it stands now). Both facts are kept on the case as it changes (migration 0003), so
//     the dashboard reads them instead of searching each child's history;
//   - step-up/down: the human decision's level above/below the rules' recommendation;
//   - acknowledgements, Encompass: notifications sent (or, if never sent, failed) in the
//     window that expect an acknowledgement; on time = acknowledged by ack_due, among those
//     acknowledged or past due (a pending one in time is not judged yet). Encompass counts
//     acknowledgement, not delivery: only the school's acknowledgement shows its
//     safeguarding lead was told before the school day, which is the statutory duty;
//   - information requests: requested in the window; on time = answered by the due time,
//     among those answered or past due;
//   - disagreements: raised, and resolved, in the window.
//
// The figures come from four independent parts, each one pass over its range. They describe
// one moment and agree with each other: the parts run in read-only repeatable-read
// transactions sharing one snapshot (exported by the first, imported by the others). The
// parts other than the first run on connections of their own while the pool has them idle,
// so the two heavy passes (summary, tallies) and the notifications overlap on separate
// cores; a part no other connection has taken up when the first transaction is done with its
// own work runs there, so the dashboard never waits for a connection it does not hold.
//
// JIT compilation is off (it costs more than it saves on these short aggregate queries:
// measured about 170 ms a query at 1,000,000 cases), and work_mem is enough for the medians
// of a 90-day range to sort in memory.
func (s *Store) Dashboard(ctx context.Context, d DashboardQuery) (Dashboard, error) {
	var out Dashboard
	bounds := weekBounds(d)
	partnerships := d.Partnerships
	if d.Partnership != "" {
		partnerships = []string{d.Partnership}
	}
	// $1 of every query: nil for every partnership.
	args := []any{partnerships, d.From, d.To, d.Now}
	helped := []*dashboardPart{
		{name: "tallies", run: func(ctx context.Context, q Querier) error { return readTallies(ctx, q, partnerships, d, bounds, &out) }},
		{name: "notifications", run: func(ctx context.Context, q Querier) error { return readNotices(ctx, q, args, &out) }},
	}
	err := pgx.BeginTxFunc(ctx, s.pool, dashboardTx, func(tx pgx.Tx) error {
		var snapshot string
		if err := tx.QueryRow(ctx, `SELECT pg_export_snapshot()`).Scan(&snapshot); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, dashboardSettings); err != nil {
			return err
		}
		if partnerships == nil {
			if err := tx.QueryRow(ctx, allPartnerships).Scan(&partnerships); err != nil {
				return fmt.Errorf("dashboard partnerships: %w", err)
			}
		}
		var helpers sync.WaitGroup
		defer helpers.Wait() // after cancel, below: a helper still waiting for a connection gives up
		hctx, cancel := context.WithCancel(ctx)
		defer cancel()
		for _, p := range helped {
			p.done = make(chan error, 1)
			helpers.Add(1)
			go func() {
				defer helpers.Done()
				p.help(hctx, ctx, s.pool, snapshot)
			}()
		}
		if err := readSummary(ctx, tx, []any{partnerships, d.From, d.To, d.Now}, &out); err != nil {
			return err
		}
		if err := readCasework(ctx, tx, args, &out); err != nil {
			return err
		}
		cancel() // stop waiting for connections: what no helper has taken up runs here
		var firstErr error
		for _, p := range helped {
			err := p.finish(ctx, tx)
			if err != nil && firstErr == nil {
				firstErr = fmt.Errorf("dashboard %s: %w", p.name, err)
			}
		}
		return firstErr
	})
	if err != nil {
		return Dashboard{}, fmt.Errorf("read dashboard: %w", err)
	}
	return out, nil
}

var dashboardTx = pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}

const dashboardSettings = `SET LOCAL jit = off; SET LOCAL work_mem = '64MB'`

// dashboardPart is a part of the dashboard another connection may run. Whoever claims it
// first runs it: a helper once it holds a connection, or the first transaction when it has
// finished its own parts.
type dashboardPart struct {
	name    string
	run     func(ctx context.Context, q Querier) error
	claimed atomic.Bool
	done    chan error // the helper's result, once it has claimed the part
}

// help runs the part (in ctx) on a connection of its own in the exported snapshot, unless
// waiting ends (wait) before a connection is free or the part was claimed already.
func (p *dashboardPart) help(wait, ctx context.Context, pool *pgxpool.Pool, snapshot string) {
	conn, err := pool.Acquire(wait)
	if err != nil {
		return
	}
	defer conn.Release()
	if !p.claimed.CompareAndSwap(false, true) {
		return
	}
	p.done <- pgx.BeginTxFunc(ctx, conn, dashboardTx, func(tx pgx.Tx) error {
		// A snapshot id is hex digits and dashes; it is not a parameter in this statement.
		if _, err := tx.Exec(ctx, `SET TRANSACTION SNAPSHOT '`+strings.Trim(snapshot, "'")+`'; `+dashboardSettings); err != nil {
			return err
		}
		return p.run(ctx, tx)
	})
}

// finish waits for the helper that claimed the part, or runs it on tx.
func (p *dashboardPart) finish(ctx context.Context, tx pgx.Tx) error {
	if p.claimed.CompareAndSwap(false, true) {
		return p.run(ctx, tx)
	}
	select {
	case err := <-p.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// weekBounds are the starts (Monday 00:00 in d.Location) of the ISO weeks that [From, To)
// touches, for width_bucket: counting by week is then a comparison, not a time zone
// conversion, per case.
func weekBounds(d DashboardQuery) []time.Time {
	loc := d.Location
	if loc == nil {
		loc = time.UTC
	}
	from := d.From.In(loc)
	monday := time.Date(from.Year(), from.Month(), from.Day()-(int(from.Weekday())+6)%7, 0, 0, 0, 0, loc)
	var bounds []time.Time
	for w := monday; w.Before(d.To); w = time.Date(w.Year(), w.Month(), w.Day()+7, 0, 0, 0, 0, loc) {
		bounds = append(bounds, w)
	}
	return bounds
}

// readSummary reads the figures over every case in the range, in one pass.
func readSummary(ctx context.Context, q Querier, args []any, out *Dashboard) error {
	err := q.QueryRow(ctx, `SELECT count(*),
			count(*) FILTER (WHERE `+humanDecided+`),
			count(*) FILTER (WHERE `+humanDecided+` AND decided_at <= decision_due),
			coalesce(percentile_cont(0.5) WITHIN GROUP (ORDER BY date_part('epoch', decided_at - received_at) / 60)
				FILTER (WHERE `+humanDecided+`), 0),
			count(*) FILTER (WHERE rag_due IS NOT NULL AND ((`+humanDecided+`) OR rag_due < $4)),
			count(*) FILTER (WHERE rag_due IS NOT NULL AND `+humanDecided+` AND decided_at <= rag_due),
			count(*) FILTER (WHERE `+humanDecided+` AND recommended_level > 0 AND level > recommended_level),
			count(*) FILTER (WHERE `+humanDecided+` AND recommended_level > 0 AND level < recommended_level),
			count(rereferral_of), count(*) FILTER (WHERE rereferral_after_nfa)
		`+inWindow, args...).Scan(&out.Referrals, &out.HumanDecided, &out.DecidedOnTime, &out.MedianMinutesToDecision,
		&out.RAGJudged, &out.WithinRAG, &out.StepUps, &out.StepDowns, &out.ReReferrals, &out.ReReferralsAfterNFA)
	if err != nil {
		return fmt.Errorf("dashboard summary: %w", err)
	}
	return nil
}

// readTallies reads every tally in one pass over the range: by source, by RAG, by ISO week,
// and closed cases by level and outcome (GROUPING tells the sets apart; 1 bits are the
// columns a row is not grouped by). Every set is hashed: no aggregate here needs sorted
// input.
func readTallies(ctx context.Context, q Querier, partnerships []string, d DashboardQuery, bounds []time.Time, out *Dashboard) error {
	rows, err := q.Query(ctx, `SELECT GROUPING(source_agency, rag, week, level, outcome), coalesce(source_agency, ''), coalesce(rag, 0),
			coalesce(week, 0), coalesce(level, 0), coalesce(outcome, 0), count(*), count(*) FILTER (WHERE state = 4)
		FROM (SELECT source_agency, rag, width_bucket(received_at, $4::timestamptz[]) AS week, level, outcome, state
			`+inWindow+`) x
		GROUP BY GROUPING SETS ((source_agency), (rag), (week), (level, outcome))`, partnerships, d.From, d.To, bounds)
	if err != nil {
		return fmt.Errorf("dashboard tallies: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var set, week int32
		var source string
		var rag, level, outcome int16
		var n, closed int64
		if err := rows.Scan(&set, &source, &rag, &week, &level, &outcome, &n, &closed); err != nil {
			return fmt.Errorf("dashboard tallies: %w", err)
		}
		switch set {
		case 0b01111:
			out.BySource = append(out.BySource, Tally{Key: source, Count: n})
		case 0b10111:
			if rag > 0 {
				out.RAGs = append(out.RAGs, Tally{Key: strconv.Itoa(int(rag)), Count: n})
			}
		case 0b11011:
			if week < 1 || int(week) > len(bounds) {
				return fmt.Errorf("dashboard tallies: week bucket %d outside %d weeks", week, len(bounds))
			}
			y, w := bounds[week-1].ISOWeek()
			out.Weeks = append(out.Weeks, Tally{Key: fmt.Sprintf("%04d-W%02d", y, w), Count: n})
		case 0b11100:
			if closed > 0 {
				out.Outcomes = append(out.Outcomes, LevelOutcome{Level: level, Outcome: outcome, Count: closed})
			}
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("dashboard tallies: %w", err)
	}
	sort.Slice(out.BySource, func(i, j int) bool {
		a, b := out.BySource[i], out.BySource[j]
		return a.Count > b.Count || a.Count == b.Count && a.Key < b.Key
	})
	sort.Slice(out.RAGs, func(i, j int) bool { return out.RAGs[i].Key > out.RAGs[j].Key })
	sort.Slice(out.Weeks, func(i, j int) bool { return out.Weeks[i].Key < out.Weeks[j].Key })
	sort.Slice(out.Outcomes, func(i, j int) bool {
		a, b := out.Outcomes[i], out.Outcomes[j]
		return a.Level < b.Level || a.Level == b.Level && a.Outcome < b.Outcome
	})
	return nil
}

// readNotices reads the acknowledgements by agency (of notifications that expect one) and
// Encompass in one pass over the range's notifications. Agencies are grouped byte-wise
// (COLLATE "C": the same groups, a cheaper sort) and listed in the database's order.
func readNotices(ctx context.Context, q Querier, args []any, out *Dashboard) error {
	const judged = `(acknowledged_at IS NOT NULL OR ack_due IS NULL OR ack_due < $4)`
	rows, err := q.Query(ctx, `SELECT agency, acks, median, on_time, judged, encompass, encompass_on_time, encompass_judged FROM (
			SELECT agency COLLATE "C" AS agency, count(*) FILTER (WHERE ack_due IS NOT NULL) AS acks,
				coalesce(percentile_cont(0.5) WITHIN GROUP (ORDER BY date_part('epoch', acknowledged_at - sent_at) / 60)
					FILTER (WHERE ack_due IS NOT NULL AND acknowledged_at IS NOT NULL AND sent_at IS NOT NULL), 0) AS median,
				count(*) FILTER (WHERE ack_due IS NOT NULL AND acknowledged_at <= ack_due) AS on_time,
				count(*) FILTER (WHERE ack_due IS NOT NULL AND `+judged+`) AS judged,
				count(*) FILTER (WHERE kind = 'ENCOMPASS') AS encompass,
				count(*) FILTER (WHERE kind = 'ENCOMPASS' AND acknowledged_at <= ack_due) AS encompass_on_time,
				count(*) FILTER (WHERE kind = 'ENCOMPASS' AND `+judged+`) AS encompass_judged
			FROM triage.notices
			WHERE coalesce(sent_at, state_at) >= $2 AND coalesce(sent_at, state_at) < $3 AND ($1::text[] IS NULL OR partnership = ANY($1::text[]))
			GROUP BY 1) a
		ORDER BY agency COLLATE "default"`, args...)
	if err != nil {
		return fmt.Errorf("dashboard notifications: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var t Turnaround
		var encompass, encompassOnTime, encompassJudged int64
		if err := rows.Scan(&t.Agency, &t.Count, &t.MedianMinutes, &t.OnTime, &t.Judged, &encompass, &encompassOnTime, &encompassJudged); err != nil {
			return fmt.Errorf("dashboard notifications: %w", err)
		}
		if t.Count > 0 {
			out.Acks = append(out.Acks, t)
		}
		out.EncompassCount += encompass
		out.EncompassOnTime += encompassOnTime
		out.EncompassJudged += encompassJudged
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("dashboard notifications: %w", err)
	}
	return nil
}

// readCasework reads the hub's own casework in the range: information requests and
// disagreements (small tables, over their own indexes).
func readCasework(ctx context.Context, q Querier, args []any, out *Dashboard) error {
	var err error
	if out.InfoRequests, err = turnarounds(ctx, q, `SELECT agency, count(*),
			coalesce(percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM answered_at - requested_at) / 60)
				FILTER (WHERE answered_at IS NOT NULL), 0),
			count(*) FILTER (WHERE answered_at <= due), count(*) FILTER (WHERE answered_at IS NOT NULL OR due < $4)
		FROM triage.information_requests WHERE requested_at >= $2 AND requested_at < $3 AND ($1::text[] IS NULL OR partnership = ANY($1::text[]))
		GROUP BY agency ORDER BY agency`, args); err != nil {
		return err
	}
	if err := q.QueryRow(ctx, `SELECT count(*) FILTER (WHERE raised_at >= $2 AND raised_at < $3),
			count(*) FILTER (WHERE resolved_at >= $2 AND resolved_at < $3)
		FROM triage.disagreements WHERE ($1::text[] IS NULL OR partnership = ANY($1::text[])) AND (raised_at >= $2 AND raised_at < $3 OR resolved_at >= $2 AND resolved_at < $3)`,
		args[:3]...).Scan(&out.DisagreementsRaised, &out.DisagreementsResolved); err != nil {
		return fmt.Errorf("dashboard disagreements: %w", err)
	}
	// Few cases have a lead professional: the partial index on them holds the range.
	rows, err := q.Query(ctx, `SELECT lead_agency, count(*) FROM triage.cases
		WHERE lead_named_at IS NOT NULL AND received_at >= $2 AND received_at < $3 AND ($1::text[] IS NULL OR partnership = ANY($1::text[]))
		GROUP BY lead_agency ORDER BY count(*) DESC, lead_agency`, args[:3]...)
	if err != nil {
		return fmt.Errorf("dashboard lead professionals: %w", err)
	}
	out.LeadAgencies, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (Tally, error) {
		var t Tally
		err := r.Scan(&t.Key, &t.Count)
		return t, err
	})
	if err != nil {
		return fmt.Errorf("dashboard lead professionals: %w", err)
	}
	for _, t := range out.LeadAgencies {
		out.LeadNamed += t.Count
	}
	return nil
}

func turnarounds(ctx context.Context, q Querier, sql string, args []any) ([]Turnaround, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("dashboard turnaround: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Turnaround, error) {
		var x Turnaround
		err := r.Scan(&x.Agency, &x.Count, &x.MedianMinutes, &x.OnTime, &x.Judged)
		return x, err
	})
	if err != nil {
		return nil, fmt.Errorf("dashboard turnaround: %w", err)
	}
	return out, nil
}
