package main_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/nats-io/nats.go"

	"github.com/mash-hub/mash/pkg/auth"
	"github.com/mash-hub/mash/pkg/busauth"
	"github.com/mash-hub/mash/pkg/db"
	"github.com/mash-hub/mash/pkg/db/dbtest"
	"github.com/mash-hub/mash/pkg/testport"
	"github.com/mash-hub/mash/services/audit"
	auditstore "github.com/mash-hub/mash/services/audit/store"
	"github.com/mash-hub/mash/services/console"
	consolestore "github.com/mash-hub/mash/services/console/store"
	"github.com/mash-hub/mash/services/intake"
	"github.com/mash-hub/mash/services/intake/store"
	"github.com/mash-hub/mash/services/notify"
	notifystore "github.com/mash-hub/mash/services/notify/store"
	"github.com/mash-hub/mash/services/rules"
	"github.com/mash-hub/mash/services/rules/packs"
	rulesstore "github.com/mash-hub/mash/services/rules/store"
	"github.com/mash-hub/mash/services/triage"
	triagestore "github.com/mash-hub/mash/services/triage/store"
)

// mashBinary is built once per test run, with the failpoint tag when the tests have it.
var mashBinary string

// auditEnv holds audit keys made for this test run, as mash audit keygen prints them.
var auditEnv []string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "mash-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	mashBinary = filepath.Join(dir, "mash")
	args := []string{"build", "-o", mashBinary}
	if buildTags != "" {
		args = append(args, "-tags", buildTags)
	}
	cmd := exec.Command("go", append(args, ".")...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build mash:", err)
		os.Exit(1)
	}
	keys, err := exec.Command(mashBinary, "audit", "keygen").Output()
	if err != nil {
		fmt.Fprintln(os.Stderr, "mash audit keygen:", err)
		os.Exit(1)
	}
	// Checkpoints often enough for a test to see one.
	auditEnv = append(strings.Fields(string(keys)), "MASH_AUDIT_CHECKPOINT_INTERVAL=100ms")
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func migrationsKey(t testing.TB) string {
	t.Helper()
	am, err := auth.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	im, err := store.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	rm, err := rulesstore.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	aum, err := auditstore.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	nm, err := notifystore.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	tm, err := triagestore.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	cm, err := consolestore.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	bm, err := busauth.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	aum = append(append(append(append(aum, nm...), tm...), cm...), bm...)
	// The default pack is installed by migration too.
	pack := db.Migration{Name: "default-pack", SQL: string(packs.Default())}
	return "mash_" + db.Checksum(append(append(append(append(am, im...), rm...), aum...), pack))
}

func migrated(ctx context.Context, url string) error {
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := auth.Migrate(ctx, pool); err != nil {
		return err
	}
	if err := busauth.Migrate(ctx, pool); err != nil {
		return err
	}
	if err := intake.Migrate(ctx, pool); err != nil {
		return err
	}
	if err := rules.Migrate(ctx, pool); err != nil {
		return err
	}
	if err := notify.Migrate(ctx, pool); err != nil {
		return err
	}
	if err := triage.Migrate(ctx, pool); err != nil {
		return err
	}
	if err := console.Migrate(ctx, pool); err != nil {
		return err
	}
	return audit.Migrate(ctx, pool)
}

// system is the configuration of one mash process under test; it outlives restarts.
type system struct {
	dbURL, dataDir           string
	httpAddr, grpcAddr, nats string
	// topology is "single" (the default: one process, embedded NATS) or "split" (see
	// topology_test.go).
	topology string
	// cliEnv is added to the environment of admin commands (an operator's NATS user).
	cliEnv []string
}

func newSystem(t *testing.T) *system {
	t.Helper()
	return &system{
		dbURL:    dbtest.NewURL(t, migrationsKey(t), migrated),
		dataDir:  t.TempDir(),
		httpAddr: testport.Addr(t), grpcAddr: testport.Addr(t), nats: testport.Addr(t),
	}
}

// processPoolSize bounds each mash process's Postgres connections in these tests. The split
// topology alone runs seven processes, beside other tests' processes and other packages'
// tests, against a server that may allow only 100 connections; at the default pool size
// (16 on two cores) they could take them all, and a test would fail with "too many clients".
const processPoolSize = 6

func (s *system) env(extra ...string) []string {
	sep := "?"
	if strings.Contains(s.dbURL, "?") {
		sep = "&"
	}
	return append(append(os.Environ(),
		"DATABASE_URL="+s.dbURL+sep+"pool_max_conns="+strconv.Itoa(processPoolSize), "MASH_DATA_DIR="+s.dataDir, "MASH_HTTP_ADDR="+s.httpAddr,
		"MASH_GRPC_ADDR="+s.grpcAddr, "MASH_NATS_LISTEN="+s.nats, "NATS_URL=", "MASH_FAILPOINTS="), append(auditEnv, extra...)...)
}

// process is a running mash serve.
type process struct {
	cmd    *exec.Cmd
	out    *syncBuffer
	exited chan struct{}
	err    error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
	// written is closed, and replaced, on every write, so a reader can wait for output.
	written chan struct{}
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.written != nil {
		close(s.written)
		s.written = nil
	}
	return s.b.Write(p)
}

// waitFor waits until the output contains want, or fails the test after timeout.
func (s *syncBuffer) waitFor(t *testing.T, want string, timeout time.Duration) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		s.mu.Lock()
		if strings.Contains(s.b.String(), want) {
			s.mu.Unlock()
			return
		}
		if s.written == nil {
			s.written = make(chan struct{})
		}
		written := s.written
		s.mu.Unlock()
		select {
		case <-written:
		case <-deadline:
			t.Fatalf("output never contained %s:\n%s", want, s.String())
		}
	}
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// start runs the system in its topology and waits until it is ready.
func (s *system) start(t *testing.T, extraEnv ...string) *process {
	t.Helper()
	if s.topology == "split" {
		return s.startSplit(t, extraEnv...)
	}
	return s.startSingle(t, extraEnv...)
}

// startSingle runs mash serve and waits until it is ready.
func (s *system) startSingle(t *testing.T, extraEnv ...string) *process {
	t.Helper()
	p := &process{cmd: exec.Command(mashBinary, "serve"), out: &syncBuffer{}, exited: make(chan struct{})}
	p.cmd.Env = s.env(extraEnv...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() { p.stop(t) })
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + s.httpAddr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		select {
		case <-p.exited:
			t.Fatalf("mash exited before it was ready: %v\n%s", p.err, p.out)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("mash not ready after 60 s:\n%s", p.out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop sends SIGTERM and waits for a graceful exit.
func (p *process) stop(t *testing.T) {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
		t.Errorf("mash did not stop within 30 s of SIGINT:\n%s", p.out)
	}
}

// exitCode waits for the process to end by itself.
func (p *process) exitCode(t *testing.T) int {
	t.Helper()
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("mash still running:\n%s", p.out)
	}
	if ee, ok := p.err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return 0
}

// run runs a mash admin command to completion.
func (s *system) run(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, mashBinary, args...)
	cmd.Env = s.env(s.cliEnv...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return o.String(), e.String(), code
}

// credential creates a referrer client through the CLI, as an operator would.
func (s *system) credential(t *testing.T, agency string) string {
	t.Helper()
	out, errOut, code := s.run(t, "clients", "create", "--agency", agency, "--kind", "police", "--role", "referrer")
	if code != 0 {
		t.Fatalf("clients create: %d %s", code, errOut)
	}
	return strings.TrimSpace(out)
}

func (s *system) submit(token string, body []byte) (int, string, error) {
	req, err := http.NewRequest(http.MethodPost, "http://"+s.httpAddr+"/v1/referrals", bytes.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

func example(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile("../intake/testdata/referral.example.json")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// busOperator creates an operator's NATS user through the CLI, as an operator would, gives it
// to later admin commands (NATS_USER, NATS_PASSWORD) and connects to the running system's
// embedded server as it.
func (s *system) busOperator(t *testing.T) *nats.Conn {
	t.Helper()
	name := "tester" + strconv.Itoa(len(s.cliEnv))
	out, errOut, code := s.run(t, "bus", "users", "create", "--operator", name)
	if code != 0 {
		t.Fatalf("bus users create: %d %s", code, errOut)
	}
	user, password := busauth.UserName(busauth.KindOperator, name), strings.TrimSpace(out)
	s.cliEnv = append(s.cliEnv, "NATS_USER="+user, "NATS_PASSWORD="+password)
	// A generous timeout: the server checks a bcrypt hash, and tests share two cores.
	nc, err := nats.Connect("nats://"+s.nats, append(busauth.User{Name: user, Password: password}.Options(), nats.Timeout(20*time.Second))...)
	if err != nil {
		t.Fatalf("connect as operator: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// pool connects to the system's database for the test's own reads and writes; it is closed
// when the test ends.
func (s *system) pool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), s.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}
