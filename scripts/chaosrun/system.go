package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// proc is one process of the system under test, which faults signal and restart.
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
