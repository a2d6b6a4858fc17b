package db

import (
	"go/ast"
	"go/parser"
	"go/token"
	"strconv"
	"testing"
)

// deploy/check weighs each pod's connections against the cluster's max_connections with its
// own copy of the pools' sizes (it is a module of its own); they must be these.
func TestDeployCheckWeighsThePoolsAsTheyAre(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "../../deploy/check/budget.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	ast.Inspect(f, func(n ast.Node) bool {
		if v, ok := n.(*ast.ValueSpec); ok && len(v.Values) == 1 {
			if lit, ok := v.Values[0].(*ast.BasicLit); ok && lit.Kind == token.INT {
				n, _ := strconv.Atoi(lit.Value)
				got[v.Names[0].Name] = n
			}
		}
		return true
	})
	for name, want := range map[string]int{"minWorkConns": minWorkConns, "workConnsPerCore": workConnsPerCore,
		"probeConns": probeConns, "keyConns": keyConns} {
		if g, ok := got[name]; !ok || g != want {
			t.Errorf("deploy/check/budget.go: %s = %d (found: %v), pkg/db uses %d", name, g, ok, want)
		}
	}
}
