package main

import (
	"fmt"
	"net/url"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// What one mash pod may open on Postgres, as services/mash opens it: a work pool of four
// connections per core the process may use (GOMAXPROCS, which Go takes from the container's
// CPU limit, rounded up), at least 16, unless DATABASE_URL sets pool_max_conns; one
// connection for readiness and metrics; and four for case keys.
// pkg/db sizes the pools with the same numbers (a test there keeps them the same).
const (
	minWorkConns     = 16
	workConnsPerCore = 4
	probeConns       = 1
	keyConns         = 4
	sideConns        = probeConns + keyConns
	// reservedConns are kept from max_connections for others: the superuser's reserve
	// (superuser_reserved_connections, 3 by default) and the operator's and monitoring's.
	reservedConns = 13
	// defaultMaxConnections is Postgres's own default.
	defaultMaxConnections = 100
)

// checkConnectionBudget checks that every mash pod (each Deployment's replicas and each
// Job's pod) opening all it may still fits the Cluster's max_connections: otherwise, under
// load, pods are refused connections with "too many clients".
func (r *Report) checkConnectionBudget(workloads []workload, clusters []*Doc) {
	if len(clusters) != 1 {
		return // which cluster the pods use is not known; nothing to weigh them against
	}
	cl := clusters[0]
	maxConns := defaultMaxConnections
	if v, ok := cl.Obj.(*CNPGCluster).Spec.PostgresConfiguration.Parameters["max_connections"]; ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			r.problem(cl, "spec.postgresql.parameters.max_connections", "%q: must be a positive whole number", v)
			return
		}
		maxConns = n
	}
	total := 0
	for _, w := range workloads {
		perPod, err := podConnections(w.tmpl)
		if err != nil {
			r.problem(w.doc, w.base+".spec.containers[0]", "%v", err)
			continue
		}
		pods := 1
		if dep, ok := w.doc.Obj.(*appsv1.Deployment); ok && dep.Spec.Replicas != nil {
			pods = int(*dep.Spec.Replicas)
		}
		total += pods * perPod
	}
	if total > maxConns-reservedConns {
		r.problem(cl, "spec.postgresql.parameters.max_connections", "is %d: mash's pods may open %d connections "+
			"(each up to %d work connections or four per CPU of its limit, and %d more for readiness and case keys), "+
			"and %d are kept for the superuser and the operator; raise it or set pool_max_conns", maxConns, total, minWorkConns, sideConns, reservedConns)
	}
}

// podConnections is the most connections a mash pod of tmpl may open.
func podConnections(tmpl *corev1.PodTemplateSpec) (int, error) {
	if len(tmpl.Spec.Containers) == 0 {
		return 0, fmt.Errorf("no container")
	}
	c := tmpl.Spec.Containers[0]
	for _, e := range c.Env {
		if e.Name != "DATABASE_URL" || e.Value == "" {
			continue
		}
		if u, err := url.Parse(e.Value); err == nil {
			if v := u.Query().Get("pool_max_conns"); v != "" {
				n, err := strconv.Atoi(v)
				if err != nil || n < 1 {
					return 0, fmt.Errorf("DATABASE_URL's pool_max_conns %q: must be a positive whole number", v)
				}
				return n + sideConns, nil
			}
		}
	}
	limit, ok := c.Resources.Limits[corev1.ResourceCPU]
	if !ok {
		return 0, fmt.Errorf("resources.limits.cpu: required, or pool_max_conns in DATABASE_URL: without either the pool is sized by the node's CPU count")
	}
	cores := int((limit.MilliValue() + 999) / 1000)
	return max(minWorkConns, workConnsPerCore*cores) + sideConns, nil
}
