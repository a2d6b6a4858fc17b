// Command loadgen measures mash the way scripts/bench needs: a closed loop at fixed
// concurrency for the maximum rate, an open loop at a fixed arrival rate for latency (timed
// from each request's scheduled start, so queueing is counted), and the same client against
// the gRPC health check to measure the transport's own cost. It also prints the pgbench
// script that runs exactly intake's insert, so numerator and denominator share one statement.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/mash-hub/mash/pkg/events"
	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
	intakev1 "github.com/mash-hub/mash/proto/mash/intake/v1"
	"github.com/mash-hub/mash/services/intake"
	"github.com/mash-hub/mash/services/intake/store"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

// result is one run's summary, printed as a JSON line.
type result struct {
	Mode     string  `json:"mode"`
	Requests int     `json:"requests"`
	Errors   int64   `json:"errors"`
	Seconds  float64 `json:"seconds"`
	RPS      float64 `json:"rps"`
	P50ms    float64 `json:"p50_ms"`
	P90ms    float64 `json:"p90_ms"`
	P99ms    float64 `json:"p99_ms"`
	Maxms    float64 `json:"max_ms"`
	// ClientCPUus is this process's CPU time (user and system) per request, in µs: the load
	// generator's own share of the machine, which the bench reports beside the server's.
	ClientCPUus float64 `json:"client_cpu_us"`
}

func run(args []string) error {
	if len(args) == 0 {
		return errors.New("usage: loadgen submit|health|pgbench-script|pipeline|demo-sources [flags]")
	}
	switch args[0] {
	case "pipeline":
		return runPipeline(args[1:])
	case "demo-sources":
		printDemoSources()
		return nil
	}
	fs := flag.NewFlagSet("loadgen "+args[0], flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:9090", "mash gRPC address")
	token := fs.String("token", os.Getenv("MASH_TOKEN"), "referrer bearer credential")
	conc := fs.Int("c", 16, "closed loop: concurrent clients")
	rps := fs.Float64("rps", 0, "open loop: requests per second (0 = closed loop)")
	dur := fs.Duration("d", 20*time.Second, "duration")
	payload := fs.String("payload", "services/intake/testdata/referral.example.json", "referral JSON to send")
	prefix := fs.String("prefix", strconv.FormatInt(time.Now().UnixNano(), 36), "external reference prefix, unique per run")
	conns := fs.Int("conns", 2, "gRPC connections")
	cpuprof := fs.String("cpuprofile", "", "write a CPU profile of the load generator here")
	procs := fs.Int("procs", 1, "OS threads running the load generator's Go code (GOMAXPROCS)")
	varsPath := fs.String("vars", "", "pgbench-script: file to write the script's variables to, as name=value lines for pgbench -D")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *procs < 1 {
		return fmt.Errorf("-procs must be at least 1, not %d", *procs)
	}
	// One thread by default: the client shares the machine with the server it measures. In
	// four side-by-side pairs of closed-loop runs on two cores, one thread used 35-38 µs of
	// CPU per referral against 43-51 µs with two, and intake answered 2-20% more referrals.
	runtime.GOMAXPROCS(*procs)
	sub := &intakev1.ReferralSubmission{}
	raw, err := os.ReadFile(*payload)
	if err != nil {
		return err
	}
	if err := protojson.Unmarshal(raw, sub); err != nil {
		return fmt.Errorf("payload: %w", err)
	}
	if args[0] == "pgbench-script" {
		if *varsPath == "" {
			return errors.New("pgbench-script needs -vars, the file for pgbench's -D values")
		}
		return pgbenchScript(os.Stdout, sub, *varsPath)
	}
	var cs []*grpc.ClientConn
	for range *conns {
		c, err := grpc.NewClient(*addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithInitialWindowSize(1<<20), grpc.WithInitialConnWindowSize(1<<20))
		if err != nil {
			return err
		}
		defer c.Close()
		cs = append(cs, c)
	}
	var call func(ctx context.Context, n int64) error
	switch args[0] {
	case "submit":
		if *token == "" {
			return errors.New("-token or MASH_TOKEN is required")
		}
		// One request message per connection slot, reused: cloning a referral per call would
		// spend the client's share of the two cores on allocation, not on load.
		authMD := metadata.Pairs("authorization", "Bearer "+*token)
		pool := sync.Pool{New: func() any {
			return &intakev1.SubmitReferralRequest{Referral: proto.Clone(sub).(*intakev1.ReferralSubmission)}
		}}
		clients := make([]intakev1.IntakeServiceClient, len(cs))
		for i, c := range cs {
			clients[i] = intakev1.NewIntakeServiceClient(c)
		}
		call = func(ctx context.Context, n int64) error {
			req := pool.Get().(*intakev1.SubmitReferralRequest)
			defer pool.Put(req)
			req.Referral.ExternalReference = *prefix + "-" + strconv.FormatInt(n, 10)
			ctx = metadata.NewOutgoingContext(ctx, authMD)
			_, err := clients[n%int64(len(clients))].SubmitReferral(ctx, req)
			return err
		}
	case "health":
		call = func(ctx context.Context, n int64) error {
			_, err := healthpb.NewHealthClient(cs[n%int64(len(cs))]).Check(ctx, &healthpb.HealthCheckRequest{})
			return err
		}
	default:
		return fmt.Errorf("unknown mode %q", args[0])
	}
	if *cpuprof != "" {
		f, err := os.Create(*cpuprof)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	var res result
	cpu0 := processCPU()
	if *rps > 0 {
		res = openLoop(call, *rps, *dur)
	} else {
		res = closedLoop(call, *conc, *dur)
	}
	if res.Requests > 0 {
		res.ClientCPUus = float64((processCPU() - cpu0).Microseconds()) / float64(res.Requests)
	}
	res.Mode = args[0]
	return json.NewEncoder(os.Stdout).Encode(res)
}

// processCPU is the CPU time this process has used so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func closedLoop(call func(context.Context, int64) error, conc int, dur time.Duration) result {
	var next, errs atomic.Int64
	lat := make([][]time.Duration, conc)
	start := time.Now()
	deadline := start.Add(dur)
	var wg sync.WaitGroup
	for w := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				n := next.Add(1)
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				t0 := time.Now()
				if err := call(ctx, n); err != nil {
					errs.Add(1)
				}
				cancel()
				lat[w] = append(lat[w], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	return summarise(slices.Concat(lat...), errs.Load(), time.Since(start))
}

func openLoop(call func(context.Context, int64) error, rps float64, dur time.Duration) result {
	interval := time.Duration(float64(time.Second) / rps)
	total := int(dur / interval)
	lat := make([]time.Duration, total)
	var errs atomic.Int64
	var wg sync.WaitGroup
	sem := make(chan struct{}, 2000) // bounds goroutines if the server falls far behind
	start := time.Now()
	for i := range total {
		scheduled := start.Add(time.Duration(i) * interval)
		time.Sleep(time.Until(scheduled))
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := call(ctx, int64(i)); err != nil {
				errs.Add(1)
			}
			lat[i] = time.Since(scheduled)
		}()
	}
	wg.Wait()
	return summarise(lat, errs.Load(), time.Since(start))
}

func summarise(lat []time.Duration, errs int64, elapsed time.Duration) result {
	slices.Sort(lat)
	q := func(p float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		return float64(lat[int(p*float64(len(lat)-1))]) / 1e6
	}
	return result{Requests: len(lat), Errors: errs, Seconds: elapsed.Seconds(), RPS: float64(len(lat)) / elapsed.Seconds(),
		P50ms: q(.5), P90ms: q(.9), P99ms: q(.99), Maxms: q(1)}
}

// pgbenchScript writes to w store.InsertSQL with its parameters bound to pgbench variables and
// values of the sizes intake sends: the same statement, the same bytes per row. The three
// byte strings (content hash, submission, event payload) are pgbench variables, written to
// varsPath as name=value lines for pgbench -D, so pgbench sends them with every transaction
// as intake does; baked into the prepared statement as literals they would cross the wire
// once, and the probe would skip a cost intake pays.
func pgbenchScript(w io.Writer, sub *intakev1.ReferralSubmission, varsPath string) error {
	content, err := proto.MarshalOptions{Deterministic: true}.Marshal(sub)
	if err != nil {
		return err
	}
	// The event payload is a real envelope around the referral, so its size is intake's.
	now := time.Now().UTC()
	_, payload, err := events.NewEnvelope(intake.EventReferralReceived, sub.GetPartnership(), uuid.NewString(), 1, now, events.Actor("bench-client", "referrer", "bench-agency"),
		&eventsv1.ReferralReceived{Referral: &intakev1.Referral{
			Id: uuid.NewString(), Reference: "MASH-2026-0000001", Agency: "bench-agency", AgencyKind: "police",
			ExternalReference: sub.GetExternalReference(), Partnership: sub.GetPartnership(),
			ReceivedAt: timestamppb.New(now), DecisionDue: timestamppb.New(now.Add(24 * time.Hour)),
			Status: intakev1.ReferralStatus_RECEIVED, Version: 1, Submission: sub,
		}})
	if err != nil {
		return err
	}
	hash := sha256.Sum256(content)
	hexBytes := func(b []byte) string { return `\x` + hex.EncodeToString(b) }
	vars := fmt.Sprintf("hash=%s\nsubmission=%s\npayload=%s\n", hexBytes(hash[:]), hexBytes(content), hexBytes(payload))
	if err := os.WriteFile(varsPath, []byte(vars), 0o600); err != nil {
		return err
	}
	params := map[string]string{
		"1":  "gen_random_uuid()",
		"2":  "'B-' || :client_id || '-' || :n",
		"3":  "'bench-agency'",
		"4":  "'EXT-' || :client_id || '-' || :n",
		"5":  "'rhondda-cynon-taf'",
		"6":  ":hash::bytea",
		"7":  ":submission::bytea",
		"8":  "now()",
		"9":  "now() + interval '1 day'",
		"10": "'RECEIVED'",
		"11": "1",
		"12": "gen_random_uuid()",
		"13": "'" + intake.EventReferralReceived + "'",
		"14": ":payload::bytea",
		"15": "'police'",
		"16": "NULL", // tracing off, as in production by default
	}
	stmt := regexp.MustCompile(`\$(\d+)`).ReplaceAllStringFunc(store.InsertSQL, func(m string) string { return params[m[1:]] })
	_, err = fmt.Fprintf(w, "\\set n random(1, 9000000000000000)\n%s;\n", regexp.MustCompile(`\s+`).ReplaceAllString(stmt, " "))
	return err
}
