// Command chaosrun proves that mash loses and duplicates nothing under faults. It runs the
// system as separate processes (an external single-node NATS server, intake, rules, notify
// and audit) on a Postgres it may stop, submits referrals at a steady rate while keeping an
// fsync'd ledger of every attempt, applies a seeded schedule of faults, waits for the system
// to quiesce, and classifies every referral in the ledger as Jepsen does: ok, lost,
// duplicated, partial, unexpected or recovered. scripts/chaos sets it up and runs it.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"mash/services/audit"
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

// ---- the system under test ----

type proc struct {
	name string
	args []string
	env  []string
	mu   sync.Mutex
	cmd  *exec.Cmd
	log  *os.File
}

func (p *proc) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	cmd := exec.Command(p.args[0], p.args[1:]...)
	cmd.Env = append(os.Environ(), p.env...)
	cmd.Stdout, cmd.Stderr = p.log, p.log
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	p.cmd = cmd
	go func() { _ = cmd.Wait() }()
	return nil
}

func (p *proc) signal(sig syscall.Signal) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil && p.cmd.Process != nil {
		_ = p.cmd.Process.Signal(sig)
	}
}

type system struct {
	c        config
	nats     []*proc
	services []*proc
	intakes  []string // HTTP addresses
	natsURL  string
	env      []string
}

func (s *system) startAll() error {
	for _, n := range s.nats {
		if err := n.start(); err != nil {
			return err
		}
	}
	if err := waitNATS(s.natsURL, len(s.nats)); err != nil {
		return err
	}
	// The first creates the streams and consumers (R3 placement on a new cluster takes a
	// moment); the rest start once it is ready.
	for i, p := range s.services {
		if err := p.start(); err != nil {
			return err
		}
		if i == 0 {
			if err := waitReady(s.intakes[:1], 60*time.Second); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *system) stopAll() {
	for _, p := range s.services {
		p.signal(syscall.SIGCONT)
		p.signal(syscall.SIGTERM)
	}
	time.Sleep(3 * time.Second)
	for _, p := range s.services {
		p.signal(syscall.SIGKILL)
	}
	for _, n := range s.nats {
		n.signal(syscall.SIGTERM)
	}
}

func (s *system) admin(args ...string) (string, error) {
	cmd := exec.Command(s.c.mash, args...)
	cmd.Env = append(os.Environ(), s.env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("mash %s: %v: %s", strings.Join(args, " "), err, errOut.String())
	}
	return out.String(), nil
}

func (s *system) pgCtl(args ...string) error {
	full := append([]string{filepath.Join(s.c.pgBin, "pg_ctl")}, args...)
	if os.Geteuid() == 0 {
		full = append([]string{"runuser", "-u", "postgres", "--"}, full...)
	}
	out, err := exec.Command(full[0], full[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("pg_ctl %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

// ---- the ledger ----

type entry struct {
	At   time.Time `json:"at"`
	Op   string    `json:"op"` // attempt, ack, unknown
	Key  string    `json:"key"`
	ID   string    `json:"id,omitempty"`
	Note string    `json:"note,omitempty"`
}

type ledger struct {
	mu sync.Mutex
	f  *os.File
}

// write appends and fsyncs, so the ledger survives whatever the run does to the machine.
func (l *ledger) write(e entry) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e.At = time.Now().UTC()
	b, _ := json.Marshal(e)
	_, _ = l.f.Write(append(b, '\n'))
	_ = l.f.Sync()
}

func readLedger(path string) (map[string]*outcome, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]*outcome{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e entry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return nil, err
		}
		o := out[e.Key]
		if o == nil {
			o = &outcome{}
			out[e.Key] = o
		}
		switch e.Op {
		case "ack":
			o.acked, o.id = true, e.ID
		case "unknown":
			o.unknown = true
		}
	}
	return out, sc.Err()
}

type outcome struct {
	acked, unknown bool
	id             string
}

// ---- load ----

// submitter sends referrals with unique external references; an unknown outcome (timeout,
// reset, 5xx) is retried with the same key and body, as a real client does.
func submit(ctx context.Context, s *system, lg *ledger, token string, template map[string]any, key string, rng *rand.Rand) {
	body := cloneWith(template, key)
	lg.write(entry{Op: "attempt", Key: key})
	client := &http.Client{Timeout: 5 * time.Second}
	for attempt := 0; ctx.Err() == nil || attempt < 200; attempt++ {
		addr := s.intakes[rng.IntN(len(s.intakes))]
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/v1/referrals", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 201 || resp.StatusCode == 200 {
				var ack struct {
					ReferralID string `json:"referralId"`
				}
				_ = json.Unmarshal(b, &ack)
				lg.write(entry{Op: "ack", Key: key, ID: ack.ReferralID})
				return
			}
			if resp.StatusCode < 500 && resp.StatusCode != 429 {
				lg.write(entry{Op: "rejected", Key: key, Note: fmt.Sprintf("HTTP %d: %.200s", resp.StatusCode, b)})
				return
			}
			err = fmt.Errorf("HTTP %d", resp.StatusCode)
		}
		lg.write(entry{Op: "unknown", Key: key, Note: err.Error()})
		time.Sleep(500 * time.Millisecond)
		if attempt > 600 {
			return
		}
	}
}

func cloneWith(template map[string]any, key string) []byte {
	m := map[string]any{}
	for k, v := range template {
		m[k] = v
	}
	m["externalReference"] = key
	b, _ := json.Marshal(m)
	return b
}

// ---- faults ----

type fault struct {
	At     time.Time `json:"at"`
	Kind   string    `json:"kind"`
	Target string    `json:"target"`
	Error  string    `json:"error,omitempty"`
}

func (s *system) inject(kind string, rng *rand.Rand) fault {
	f := fault{At: time.Now().UTC(), Kind: kind}
	var err error
	switch kind {
	case "kill-service":
		p := s.services[rng.IntN(len(s.services))]
		f.Target = p.name
		p.signal(syscall.SIGKILL)
		time.Sleep(time.Duration(500+rng.IntN(2500)) * time.Millisecond)
		err = p.start()
	case "kill-broker", "kill-nats-node":
		n := s.nats[rng.IntN(len(s.nats))]
		f.Target = n.name
		n.signal(syscall.SIGKILL)
		time.Sleep(time.Duration(1000+rng.IntN(4000)) * time.Millisecond)
		err = n.start()
	case "postgres-immediate":
		f.Target = "postgres"
		if err = s.pgCtl("stop", "-D", s.c.pgData, "-m", "immediate"); err == nil {
			time.Sleep(time.Duration(1000+rng.IntN(2000)) * time.Millisecond)
			err = s.pgCtl("start", "-D", s.c.pgData, "-w", "-t", "60", "-l", filepath.Join(s.c.pgData, "..", "chaos-postgres.log"))
		}
	case "sigstop-consumer":
		var consumers []*proc
		for _, p := range s.services {
			if strings.HasPrefix(p.name, "rules") || strings.HasPrefix(p.name, "notify") || strings.HasPrefix(p.name, "audit") {
				consumers = append(consumers, p)
			}
		}
		p := consumers[rng.IntN(len(consumers))]
		f.Target = p.name
		p.signal(syscall.SIGSTOP)
		// Past the consumers' AckWait (30 s), so the broker redelivers to the others; the
		// schedule goes on meanwhile.
		time.AfterFunc(35*time.Second, func() { p.signal(syscall.SIGCONT) })
	case "lose-events":
		// The broker acknowledges and then loses events: one producer restarts with the
		// relay.lose failpoint armed for a few seconds (its relay marks events published
		// without sending them), then restarts clean. Only the reconciler can repair this.
		var producers []*proc
		for _, p := range s.services {
			if strings.HasPrefix(p.name, "intake") || strings.HasPrefix(p.name, "rules") {
				producers = append(producers, p)
			}
		}
		p := producers[rng.IntN(len(producers))]
		schema, _, _ := strings.Cut(p.name, "-")
		f.Target = p.name
		p.signal(syscall.SIGKILL)
		time.Sleep(200 * time.Millisecond)
		clean := p.env
		p.env = append(append([]string{}, clean...), "MASH_FAILPOINTS=relay.lose."+schema)
		if err = p.start(); err == nil {
			time.Sleep(time.Duration(2000+rng.IntN(3000)) * time.Millisecond)
			p.signal(syscall.SIGKILL)
			time.Sleep(200 * time.Millisecond)
			p.env = clean
			err = p.start()
		} else {
			p.env = clean
		}
	case "poison":
		f.Target = "mash.referral.received"
		var nc *nats.Conn
		if nc, err = nats.Connect(s.natsURL, nats.Timeout(3*time.Second)); err == nil {
			err = nc.Publish("mash.referral.received", []byte("not an envelope"))
			nc.Close()
		}
	default:
		err = fmt.Errorf("unknown fault %q", kind)
	}
	if err != nil {
		f.Error = err.Error()
	}
	return f
}

// ---- the run ----

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

func newSystem(c config) (*system, error) {
	var urls, routes []string
	for i := range c.natsNodes {
		urls = append(urls, fmt.Sprintf("nats://127.0.0.1:%d", 24222+i))
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", 24232+i))
	}
	s := &system{c: c, natsURL: strings.Join(urls, ",")}
	open := func(name string) *os.File {
		f, _ := os.OpenFile(filepath.Join(c.dir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		return f
	}
	for i := range c.natsNodes {
		name := fmt.Sprintf("nats-%d", i+1)
		if err := os.MkdirAll(filepath.Join(c.dir, name), 0o755); err != nil {
			return nil, err
		}
		abs, _ := filepath.Abs(filepath.Join(c.dir, name, "js"))
		conf := fmt.Sprintf("server_name: n%d\nlisten: 127.0.0.1:%d\njetstream { store_dir: %q, sync_interval: always }\n", i+1, 24222+i, abs)
		if c.natsNodes > 1 {
			conf += fmt.Sprintf("cluster { name: mash, listen: 127.0.0.1:%d, routes: [%s] }\n", 24232+i, strings.Join(routes, ", "))
		}
		path := filepath.Join(c.dir, name, "nats.conf")
		if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
			return nil, err
		}
		s.nats = append(s.nats, &proc{name: name, args: []string{c.natsServer, "-c", path}, log: open(name)})
	}
	dir, _ := filepath.Abs("scripts/demo/directory.yaml")
	s.env = []string{"DATABASE_URL=" + c.dbURL, "NATS_URL=" + s.natsURL, "MASH_NOTIFY_DIRECTORY=" + dir, fmt.Sprintf("MASH_NATS_REPLICAS=%d", c.natsNodes),
		"MASH_RECONCILE_AGE=20s", "MASH_RECONCILE_EVERY=5s", "MASH_MIGRATE_ON_START=false", "MASH_LOG_LEVEL=warn"}
	for i, svc := range []string{"intake", "intake", "rules", "rules", "notify", "audit"} {
		httpAddr := fmt.Sprintf("127.0.0.1:%d", 24301+i)
		p := &proc{name: fmt.Sprintf("%s-%d", svc, i+1), args: []string{c.mash, "serve"}, log: open(fmt.Sprintf("%s-%d", svc, i+1)),
			env: append(append([]string{}, s.env...), "MASH_SERVICES="+svc, "MASH_HTTP_ADDR="+httpAddr, fmt.Sprintf("MASH_GRPC_ADDR=127.0.0.1:%d", 24401+i))}
		s.services = append(s.services, p)
		if svc == "intake" {
			s.intakes = append(s.intakes, httpAddr)
		}
	}
	return s, nil
}

// waitNATS waits until a stream with the run's replicas can be placed.
func waitNATS(url string, replicas int) error {
	nc, err := nats.Connect(url, nats.RetryOnFailedConnect(true), nats.MaxReconnects(-1))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		_, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "CHAOS_READY", Subjects: []string{"chaos.ready"}, Replicas: replicas, Storage: jetstream.MemoryStorage})
		if err == nil {
			err = js.DeleteStream(ctx, "CHAOS_READY")
		}
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("NATS not ready: %w", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func waitReady(addrs []string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for _, a := range addrs {
		for {
			resp, err := http.Get("http://" + a + "/readyz")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					break
				}
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("intake %s not ready", a)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	return nil
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
		(SELECT count(DISTINCT e.event_type) FROM audit.entries e WHERE e.referral_id = r.id::text AND e.event_type IN ('mash.referral.received', 'mash.triage.decided')),
		(SELECT count(*) FROM (SELECT 1 FROM audit.entries e WHERE e.referral_id = r.id::text GROUP BY e.event_id HAVING count(*) > 1) y)
		FROM intake.referrals r WHERE r.agency = 'south-wales-police' GROUP BY r.id, r.external_reference`)
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
