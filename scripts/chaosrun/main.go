// Command chaosrun proves that mash loses and duplicates nothing under faults. It runs the
// system as separate processes (an external single-node NATS server, intake, rules, notify
// and audit) on a Postgres it may stop, submits referrals at a steady rate while keeping an
// fsync'd ledger of every attempt, applies a seeded schedule of faults, waits for the system
// to quiesce, and classifies every referral in the ledger as Jepsen does: ok, lost,
// duplicated, partial, unexpected or recovered. scripts/chaos sets it up and runs it.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mash-hub/mash/services/audit"
)

type config struct {
	duration, faultEvery, quiesce time.Duration
	seed                          uint64
	rate                          float64
	dir, mash, natsServer         string
	pgData, pgBin, dbURL          string
	report                        string
	faults                        []string
	natsNodes                     int
}

func main() {
	var c config
	var faults string
	flag.DurationVar(&c.duration, "duration", 2*time.Minute, "how long to submit referrals and inject faults")
	flag.DurationVar(&c.faultEvery, "fault-every", 15*time.Second, "mean time between faults")
	flag.DurationVar(&c.quiesce, "quiesce", 10*time.Minute, "how long to wait for the system to settle after the faults")
	flag.Uint64Var(&c.seed, "seed", uint64(time.Now().UnixNano()), "seed of the fault schedule (logged; rerun with it to repeat)")
	flag.Float64Var(&c.rate, "rate", 3, "referrals submitted per second (each makes about ten notifications with the demo directory)")
	flag.StringVar(&c.dir, "dir", ".local/chaos", "working directory for data, logs, the ledger and the report")
	flag.StringVar(&c.mash, "mash", "bin/mash", "the mash binary")
	flag.StringVar(&c.natsServer, "nats-server", "bin/nats-server", "the nats-server binary")
	flag.StringVar(&c.pgData, "pg-data", os.Getenv("PG_DATA_DIR"), "data directory of the Postgres cluster the run may stop (pg_ctl -D)")
	flag.StringVar(&c.pgBin, "pg-bin", os.Getenv("PG_BIN"), "PostgreSQL bin directory (pg_ctl)")
	flag.StringVar(&c.dbURL, "database-url", os.Getenv("DATABASE_URL"), "the run's database (dropped and created)")
	flag.IntVar(&c.natsNodes, "nats", 1, "NATS servers: 1 (single node; kill-broker kills it) or 3 (a cluster with R3 streams; kill-nats-node kills one)")
	flag.StringVar(&faults, "faults", "kill-service,kill-broker,postgres-immediate,sigstop-consumer,poison,lose-events", "fault kinds to apply")
	flag.Parse()
	c.faults = strings.Split(faults, ",")
	if c.natsNodes == 3 {
		// In a cluster one node at a time is lost; the whole broker going is the single-node case.
		for i, f := range c.faults {
			if f == "kill-broker" {
				c.faults[i] = "kill-nats-node"
			}
		}
	} else if c.natsNodes != 1 {
		fmt.Fprintln(os.Stderr, "chaos: -nats must be 1 or 3")
		os.Exit(2)
	}
	c.report = filepath.Join(c.dir, "report.json")
	if err := run(c); err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		os.Exit(1)
	}
}

func run(c config) error {
	if c.pgData == "" || c.pgBin == "" || c.dbURL == "" {
		return errors.New("needs -pg-data, -pg-bin and -database-url of a Postgres cluster it may stop (scripts/chaos provides one)")
	}
	if err := os.RemoveAll(c.dir); err != nil {
		return err
	}
	if err := os.MkdirAll(c.dir, 0o755); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "chaos: seed %d, %s at %.0f referrals/s, a fault every ~%s (%s)\n", c.seed, c.duration, c.rate, c.faultEvery, strings.Join(c.faults, ", "))
	s, err := newSystem(c)
	if err != nil {
		return err
	}
	if _, err := s.admin("migrate"); err != nil {
		return err
	}
	if err := s.startAll(); err != nil {
		return err
	}
	defer s.stopAll()
	token, err := s.admin("clients", "create", "--agency", "south-wales-police", "--kind", "police", "--role", "referrer")
	if err != nil {
		return err
	}
	token = strings.TrimSpace(token)
	if err := waitReady(s.intakes, 60*time.Second); err != nil {
		return err
	}
	tb, err := os.ReadFile("services/intake/testdata/referral.example.json")
	if err != nil {
		return err
	}
	template := map[string]any{}
	if err := json.Unmarshal(tb, &template); err != nil {
		return err
	}
	lf, err := os.OpenFile(filepath.Join(c.dir, "ledger.jsonl"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	lg := &ledger{f: lf}

	ctx, cancel := context.WithTimeout(context.Background(), c.duration)
	defer cancel()
	var wg sync.WaitGroup
	// Faults, on their own seeded schedule.
	var schedule []fault
	var schedMu sync.Mutex
	faultRng := rand.New(rand.NewPCG(c.seed+1, c.seed))
	var checkpoints [][]byte
	pool, err := pgxpool.New(context.Background(), c.dbURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	wg.Go(func() {
		// Every kind in turn, in a seeded order reshuffled each round, so even a short run
		// applies each class.
		var cycle []string
		for ctx.Err() == nil {
			wait := time.Duration(float64(c.faultEvery) * (0.5 + faultRng.Float64()))
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			if len(cycle) == 0 {
				cycle = append(cycle, c.faults...)
				faultRng.Shuffle(len(cycle), func(i, j int) { cycle[i], cycle[j] = cycle[j], cycle[i] })
			}
			kind := cycle[0]
			cycle = cycle[1:]
			f := s.inject(kind, faultRng)
			fmt.Fprintf(os.Stderr, "chaos: %s fault %s on %s %s\n", f.At.Format(time.TimeOnly), f.Kind, f.Target, f.Error)
			schedMu.Lock()
			schedule = append(schedule, f)
			schedMu.Unlock()
			// Keep the latest signed checkpoint, as an auditor would; every one must be a
			// prefix of the final log.
			if note, err := audit.LatestCheckpoint(ctx, pool); err == nil {
				checkpoints = append(checkpoints, note)
			}
		}
	})
	// Load, open loop.
	start := time.Now()
	n := 0
	interval := time.Duration(float64(time.Second) / c.rate)
	loadRng := rand.New(rand.NewPCG(c.seed+2, c.seed))
	for ctx.Err() == nil {
		key := fmt.Sprintf("CHAOS-%d-%06d", c.seed%100000, n)
		n++
		r := rand.New(rand.NewPCG(loadRng.Uint64(), 1))
		wg.Go(func() { submit(ctx, s, lg, token, template, key, r) })
		time.Sleep(time.Until(start.Add(time.Duration(n) * interval)))
	}
	wg.Wait()
	elapsed := time.Since(start)
	fmt.Fprintf(os.Stderr, "chaos: load and faults over after %s; %d referrals submitted; waiting for quiescence\n", elapsed.Round(time.Second), n)
	// Anything stopped continues; anything killed is running again.
	for _, p := range s.services {
		p.signal(syscall.SIGCONT)
	}
	if err := quiesce(pool, s.natsURL, c.quiesce); err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
	}
	led, err := readLedger(filepath.Join(c.dir, "ledger.jsonl"))
	if err != nil {
		return err
	}
	rep := report{Seed: c.seed, Duration: elapsed.Round(time.Second).String(), Submitted: n, Schedule: schedule, Faults: map[string]int{}}
	for _, f := range schedule {
		rep.Faults[f.Kind]++
	}
	acked := 0
	for _, o := range led {
		if o.acked {
			acked++
		}
	}
	rep.PerSecond = float64(acked) / elapsed.Seconds()
	if rep.Classes, rep.Examples, err = classify(pool, led); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "chaos: classes %v; verifying the audit log\n", rep.Classes)
	if out, err := s.admin("audit", "verify"); err != nil {
		rep.AuditVerify = "FAILED: " + err.Error()
	} else {
		rep.AuditVerify = strings.TrimSpace(out)
	}
	rep.Checkpoints = "all consistent"
	for i, cp := range checkpoints {
		if _, err := audit.VerifyConsistencyWith(context.Background(), pool, os.Getenv("MASH_AUDIT_VERIFY_KEY"), audit.DefaultOrigin, cp); err != nil {
			rep.Checkpoints = fmt.Sprintf("checkpoint %d NOT consistent with the final log: %v", i, err)
			break
		}
	}
	rep.Checkpoints = fmt.Sprintf("%d kept during the run: %s", len(checkpoints), rep.Checkpoints)
	b, _ := json.MarshalIndent(rep, "", "  ")
	if err := os.WriteFile(c.report, b, 0o644); err != nil {
		return err
	}
	printTable(rep)
	bad := rep.Classes["lost"] + rep.Classes["duplicated"] + rep.Classes["partial"] + rep.Classes["unexpected"]
	if bad > 0 || strings.HasPrefix(rep.AuditVerify, "FAILED") || strings.Contains(rep.Checkpoints, "NOT") {
		return fmt.Errorf("%d referrals lost, duplicated, partial or unexpected; audit: %s; checkpoints: %s (report %s)", bad, rep.AuditVerify, rep.Checkpoints, c.report)
	}
	return nil
}
