package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mash-hub/mash/pkg/testport"
)

var (
	natsServerOnce sync.Once
	natsServerBin  string
	natsServerErr  error
)

// natsServer builds the nats-server this module already depends on (the same version mash
// embeds), once per test run.
func natsServer(t *testing.T) string {
	t.Helper()
	natsServerOnce.Do(func() {
		dir, err := os.MkdirTemp("", "nats-server-bin")
		if err != nil {
			natsServerErr = err
			return
		}
		natsServerBin = filepath.Join(dir, "nats-server")
		out, err := exec.Command("go", "build", "-o", natsServerBin, "github.com/nats-io/nats-server/v2").CombinedOutput()
		if err != nil {
			natsServerErr = fmt.Errorf("build nats-server: %v\n%s", err, out)
		}
	})
	if natsServerErr != nil {
		t.Fatal(natsServerErr)
	}
	return natsServerBin
}

// natsNode is one server of a loopback cluster.
type natsNode struct {
	name, client string
	cmd          *exec.Cmd
	exited       chan struct{}
}

// clusterSlots bounds the NATS clusters running at once in this test binary: on a 2-core
// machine, more than two (each with its mash processes) starve each other's elections.
var clusterSlots = make(chan struct{}, 2)

// startNATSCluster runs n nats-server processes clustered on loopback, with JetStream on
// file storage and an fsync after every write, as deploy/nats configures a real cluster.
func startNATSCluster(t *testing.T, n int) []*natsNode {
	t.Helper()
	clusterSlots <- struct{}{}
	t.Cleanup(func() { <-clusterSlots })
	bin := natsServer(t)
	clients, routes := make([]string, n), make([]string, n)
	for i := range n {
		clients[i], routes[i] = testport.Addr(t), testport.Addr(t)
	}
	var nodes []*natsNode
	for i := range n {
		dir := t.TempDir()
		var rs []string
		for _, r := range routes {
			rs = append(rs, "nats://"+r)
		}
		conf := fmt.Sprintf(`server_name: n%d
listen: %s
jetstream { store_dir: %q, sync_interval: always }
cluster { name: mash, listen: %s, routes: [%s] }
`, i+1, clients[i], filepath.Join(dir, "js"), routes[i], strings.Join(rs, ", "))
		path := filepath.Join(dir, "nats.conf")
		if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		node := &natsNode{name: fmt.Sprintf("n%d", i+1), client: clients[i], cmd: exec.Command(bin, "-c", path), exited: make(chan struct{})}
		log, err := os.Create(filepath.Join(dir, "nats.log"))
		if err != nil {
			t.Fatal(err)
		}
		node.cmd.Stdout, node.cmd.Stderr = log, log
		if err := node.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { _ = node.cmd.Wait(); close(node.exited) }()
		t.Cleanup(func() { node.kill(); log.Close() })
		nodes = append(nodes, node)
	}
	// Ready when an R3 stream can be placed: every peer is up and JetStream has a leader.
	nc, js := connectCluster(t, nodes)
	defer nc.Close()
	deadline := time.Now().Add(120 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		_, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "READY", Subjects: []string{"ready.>"}, Replicas: 3, Storage: jetstream.MemoryStorage})
		if err == nil {
			err = js.DeleteStream(ctx, "READY")
		}
		cancel()
		if err == nil {
			return nodes
		}
		if time.Now().After(deadline) {
			t.Fatalf("NATS cluster not ready: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (n *natsNode) kill() {
	select {
	case <-n.exited:
		return
	default:
	}
	_ = n.cmd.Process.Signal(syscall.SIGKILL)
	<-n.exited
}

func clusterURL(nodes []*natsNode) string {
	var us []string
	for _, n := range nodes {
		us = append(us, "nats://"+n.client)
	}
	return strings.Join(us, ",")
}

func connectCluster(t *testing.T, nodes []*natsNode) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(clusterURL(nodes), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond), nats.RetryOnFailedConnect(true))
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// The scale-out topology: a 3-node NATS cluster with R3 streams and one process per service
// (two intakes and two rules consumers sharing the work). The stream's leader is killed with
// SIGKILL mid-load; every referral is still decided exactly once and audited once, and the
// test reports how long events stalled around the kill.
func TestClusterTopologySurvivesLeaderLoss(t *testing.T) {
	t.Parallel()
	nodes := startNATSCluster(t, 3)
	base := newSystem(t)
	env := []string{"NATS_URL=" + clusterURL(nodes), "MASH_NATS_REPLICAS=3"}
	var intakes []*system
	for _, svc := range []string{"intake", "intake", "rules", "rules", "notify", "audit"} {
		p := &system{dbURL: base.dbURL, dataDir: t.TempDir(), httpAddr: testport.Addr(t), grpcAddr: testport.Addr(t), nats: testport.Addr(t)}
		p.startSingle(t, append(env, "MASH_SERVICES="+svc)...)
		if svc == "intake" {
			intakes = append(intakes, p)
		}
	}
	token := base.credential(t, "south-wales-police")
	nc, js := connectCluster(t, nodes)
	defer nc.Close()

	const total, killAt = 120, 40
	sub := map[string]time.Time{}
	var killed time.Time
	template := map[string]any{}
	if err := json.Unmarshal(example(t), &template); err != nil {
		t.Fatal(err)
	}
	for i := range total {
		if i == killAt {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			info, err := mustStream(ctx, t, js).Info(ctx)
			cancel()
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range nodes {
				if n.name == info.Cluster.Leader {
					n.kill()
					killed = time.Now()
					t.Logf("killed stream leader %s after %d referrals", n.name, i)
				}
			}
			if killed.IsZero() {
				t.Fatalf("stream leader %q is none of the nodes", info.Cluster.Leader)
			}
		}
		template["externalReference"] = fmt.Sprintf("SWP-CLUSTER-%04d", i)
		body, _ := json.Marshal(template)
		start := time.Now()
		code, resp, err := intakes[i%2].submit(token, body)
		if err != nil || code != 201 {
			t.Fatalf("referral %d via intake %d: %d %s %v", i, i%2, code, resp, err)
		}
		var ack struct {
			ReferralID string `json:"referralId"`
		}
		_ = json.Unmarshal([]byte(resp), &ack)
		sub[ack.ReferralID] = start
		time.Sleep(25 * time.Millisecond)
	}

	pool, err := pgxpool.New(context.Background(), base.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	deadline := time.Now().Add(90 * time.Second)
	for {
		var decisions, decided, audited int
		if err := pool.QueryRow(context.Background(), `SELECT (SELECT count(*) FROM rules.decisions),
			(SELECT count(*) FROM intake.referrals WHERE status = 'DECIDED'),
			(SELECT count(*) FROM audit.entries WHERE event_type IN ('mash.referral.received', 'mash.recommendation.made'))`).
			Scan(&decisions, &decided, &audited); err != nil {
			t.Fatal(err)
		}
		if decisions == total && decided == total && audited == 2*total {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the leader's loss: %d decisions, %d decided in intake, %d audit entries of %d referrals", decisions, decided, audited, total)
		}
		time.Sleep(200 * time.Millisecond)
	}
	var twice int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM (SELECT event_id FROM audit.entries GROUP BY event_id HAVING count(*) > 1) d`).Scan(&twice); err != nil || twice != 0 {
		t.Fatalf("%d events audited twice (%v)", twice, err)
	}
	// How long events stalled: the slowest submission-to-decision time of referrals sent
	// after the kill, against the slowest before it.
	rows, err := pool.Query(context.Background(), `SELECT referral_id::text, decided_at FROM rules.decisions`)
	if err != nil {
		t.Fatal(err)
	}
	var before, after []time.Duration
	for rows.Next() {
		var id string
		var at time.Time
		if err := rows.Scan(&id, &at); err != nil {
			t.Fatal(err)
		}
		d := at.Sub(sub[id])
		if sub[id].Before(killed) {
			before = append(before, d)
		} else {
			after = append(after, d)
		}
	}
	slices.Sort(before)
	slices.Sort(after)
	t.Logf("submission to decision before the kill: median %s, max %s; after it: median %s, max %s (the stall of leader election and reconnection)",
		before[len(before)/2], before[len(before)-1], after[len(after)/2], after[len(after)-1])
}

func mustStream(ctx context.Context, t *testing.T, js jetstream.JetStream) jetstream.Stream {
	t.Helper()
	s, err := js.Stream(ctx, "MASH")
	if err != nil {
		t.Fatal(err)
	}
	return s
}
