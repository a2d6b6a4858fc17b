package main_test

import (
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mash-hub/mash/pkg/testport"
)

// topologies are the two shapes the end-to-end tests run against: every service in one
// process with an embedded NATS server, and one process per service (two intakes, two rules
// consumers) on a 3-node NATS cluster with R3 streams, behind a front that routes by path
// as an ingress would.
var topologies = []string{"single", "split"}

// forEachTopology runs test once per topology, each on a system of its own.
func forEachTopology(t *testing.T, test func(t *testing.T, s *system)) {
	for _, topo := range topologies {
		t.Run(topo, func(t *testing.T) {
			t.Parallel()
			s := newSystem(t)
			s.topology = topo
			test(t, s)
		})
	}
}

// routes sends each API to the service that owns it.
var routes = []struct{ prefix, service string }{
	{"/v1/referrals", "intake"},
	{"/v1/rules", "rules"}, {"/v1/packs", "rules"}, {"/v1/decisions", "rules"},
	{"/v1/agencies", "notify"}, {"/v1/notifications", "notify"},
	{"/v1/audit", "audit"},
	{"/v1/queue", "triage"}, {"/v1/cases", "triage"}, {"/v1/information-requests", "triage"},
	{"/v1/disagreements", "triage"}, {"/v1/dashboard", "triage"},
}

// startSplit runs the split topology and serves its front on s.httpAddr.
func (s *system) startSplit(t *testing.T, extraEnv ...string) *process {
	t.Helper()
	nodes := startNATSCluster(t, 3)
	env := append([]string{"NATS_URL=" + clusterURL(nodes), "MASH_NATS_REPLICAS=3"}, extraEnv...)
	backends := map[string][]*url.URL{}
	var first *process
	// Peers are reached over gRPC at the first process of each service, as a Kubernetes
	// Service would send them to one of its pods.
	peerAddrs := map[string]string{}
	for _, svc := range []string{"intake", "intake", "rules", "rules", "notify", "audit", "triage"} {
		p := &system{dbURL: s.dbURL, dataDir: t.TempDir(), httpAddr: testport.Addr(t), grpcAddr: testport.Addr(t), nats: testport.Addr(t)}
		var peers []string
		for name, addr := range peerAddrs {
			peers = append(peers, name+"="+addr)
		}
		proc := p.startSingle(t, append(env, "MASH_SERVICES="+svc, "MASH_PEERS="+strings.Join(peers, ","))...)
		if first == nil {
			first = proc
		}
		if _, ok := peerAddrs[svc]; !ok {
			peerAddrs[svc] = p.grpcAddr
		}
		backends[svc] = append(backends[svc], &url.URL{Scheme: "http", Host: p.httpAddr})
	}
	var next atomic.Int64
	var mu sync.Mutex
	proxies := map[string]*httputil.ReverseProxy{}
	front := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/readyz" || r.URL.Path == "/healthz" {
			for svc, us := range backends {
				for _, u := range us {
					resp, err := http.Get(u.String() + r.URL.Path)
					if err != nil || resp.StatusCode != 200 {
						http.Error(w, svc+" not ready", http.StatusServiceUnavailable)
						return
					}
					resp.Body.Close()
				}
			}
			w.WriteHeader(http.StatusOK)
			return
		}
		for _, rt := range routes {
			if strings.HasPrefix(r.URL.Path, rt.prefix) {
				us := backends[rt.service]
				u := us[int(next.Add(1))%len(us)]
				mu.Lock()
				p, ok := proxies[u.Host]
				if !ok {
					p = httputil.NewSingleHostReverseProxy(u)
					proxies[u.Host] = p
				}
				mu.Unlock()
				p.ServeHTTP(w, r)
				return
			}
		}
		http.NotFound(w, r)
	})
	srv := &http.Server{Addr: s.httpAddr, Handler: front, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.ListenAndServe() }()
	t.Cleanup(func() { _ = srv.Close() })
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + s.httpAddr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return first
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("split topology not ready after 60 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
}
