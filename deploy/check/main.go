// Command check validates mash's deployment files offline: every YAML document under
// deploy/kubernetes and deploy/postgres is decoded strictly (an unknown or duplicated field
// is an error) into the real Kubernetes API types, the kustomization is built with
// kustomize's own library, the NATS Helm values are checked against the chart keys they
// use, and the result is held to mash's deployment policy (probes, resources, security
// context, secrets by reference, a Service and a PodDisruptionBudget for every Deployment,
// R3 JetStream with sync always, synchronous Postgres replication).
//
//	go run . ../            # the deploy directory (run.sh passes it)
//
// It prints one line per validated document, then each problem naming the file, the
// document, the object and the field, and a summary; it exits 1 when there are problems.
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) != 2 || os.Args[1] == "-h" || os.Args[1] == "--help" {
		fmt.Fprintln(os.Stderr, "usage: check <deploy dir>")
		os.Exit(2)
	}
	rep, err := Check(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "check:", err)
		os.Exit(2)
	}
	rep.Print(os.Stdout)
	if len(rep.Problems) > 0 {
		os.Exit(1)
	}
}
