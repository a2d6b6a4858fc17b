package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// eventsImport is the package whose NewConsumer and Router the test follows.
const eventsImport = "github.com/mash-hub/mash/pkg/events"

// TestConsumersUseTheRouter scans every service's Go code (outside tests, with go/ast) for
// events.NewConsumer and fails for each whose handler is not a router's Handle: a variable
// set from events.NewRouter() or from a function of the package that returns an
// *events.Router, or such a call itself. A consumer then registers typed handlers with
// events.On and events.OnType, checked against the catalogue when it is built, and cannot
// switch on subject strings or unpack payloads by hand.
func TestConsumersUseTheRouter(t *testing.T) {
	root := filepath.Join("..")
	pkgs := map[string][]*ast.File{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || name == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		f, err := parser.ParseFile(fset, path, src, 0)
		if err != nil {
			return err
		}
		pkgs[filepath.Dir(path)] = append(pkgs[filepath.Dir(path)], f)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	consumers := 0
	for dir, files := range pkgs {
		routerFuncs := routerFuncs(files)
		for _, f := range files {
			ev := eventsName(f)
			if ev == "" {
				continue
			}
			for _, decl := range f.Decls {
				fn, ok := decl.(*ast.FuncDecl)
				if !ok || fn.Body == nil {
					continue
				}
				ast.Inspect(fn.Body, func(n ast.Node) bool {
					call, ok := n.(*ast.CallExpr)
					if !ok || !isPkgFunc(call.Fun, ev, "NewConsumer") {
						return true
					}
					consumers++
					where := fset.Position(call.Pos()).String()
					if len(call.Args) < 5 {
						t.Errorf("%s: events.NewConsumer with %d arguments", where, len(call.Args))
						return true
					}
					if !fromRouter(call.Args[4], fn.Body, ev, routerFuncs) {
						t.Errorf("%s: the handler of this consumer is not a router's Handle: register typed handlers "+
							"with events.On or events.OnType on an events.NewRouter() and pass its Handle (package %s)", where, dir)
					}
					return true
				})
			}
		}
	}
	// rules has four consumers; intake, triage, notify and audit one each.
	if consumers < 8 {
		t.Fatalf("found only %d calls of events.NewConsumer in services/; the scan missed them", consumers)
	}
}

// fromRouter reports whether h is X.Handle with X a router: a call of a router function, or
// a variable that body sets from one.
func fromRouter(h ast.Expr, body *ast.BlockStmt, ev string, funcs map[string]bool) bool {
	sel, ok := h.(*ast.SelectorExpr)
	if !ok || sel.Sel.Name != "Handle" {
		return false
	}
	switch x := sel.X.(type) {
	case *ast.CallExpr:
		return routerCall(x, 0, 1, ev, funcs)
	case *ast.Ident:
		found := false
		ast.Inspect(body, func(n ast.Node) bool {
			as, ok := n.(*ast.AssignStmt)
			if !ok || found {
				return !found
			}
			for i, lhs := range as.Lhs {
				id, ok := lhs.(*ast.Ident)
				if !ok || id.Name != x.Name {
					continue
				}
				switch {
				case len(as.Rhs) == len(as.Lhs):
					if c, ok := as.Rhs[i].(*ast.CallExpr); ok && routerCall(c, 0, 1, ev, funcs) {
						found = true
					}
				case len(as.Rhs) == 1:
					if c, ok := as.Rhs[0].(*ast.CallExpr); ok && routerCall(c, i, len(as.Lhs), ev, funcs) {
						found = true
					}
				}
			}
			return !found
		})
		return found
	}
	return false
}

// routerCall reports whether c is events.NewRouter() or a call of a package function whose
// result i (of n) is an *events.Router.
func routerCall(c *ast.CallExpr, i, n int, ev string, funcs map[string]bool) bool {
	if isPkgFunc(c.Fun, ev, "NewRouter") {
		return i == 0 && n == 1
	}
	var name string
	switch f := c.Fun.(type) {
	case *ast.Ident:
		name = f.Name
	case *ast.SelectorExpr: // a method, s.handlers()
		name = f.Sel.Name
	default:
		return false
	}
	return funcs[name+"#"+strconv.Itoa(i)+"/"+strconv.Itoa(n)]
}

// routerFuncs are the package's functions and methods by name#result/results for each
// result that is an *events.Router.
func routerFuncs(files []*ast.File) map[string]bool {
	out := map[string]bool{}
	for _, f := range files {
		ev := eventsName(f)
		if ev == "" {
			continue
		}
		for _, decl := range f.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if !ok || fn.Type.Results == nil {
				continue
			}
			var results []ast.Expr
			for _, r := range fn.Type.Results.List {
				for range max(1, len(r.Names)) {
					results = append(results, r.Type)
				}
			}
			for i, r := range results {
				if star, ok := r.(*ast.StarExpr); ok && isPkgFunc(star.X, ev, "Router") {
					out[fn.Name.Name+"#"+strconv.Itoa(i)+"/"+strconv.Itoa(len(results))] = true
				}
			}
		}
	}
	return out
}

// eventsName is the name f imports pkg/events under, or "" when it does not.
func eventsName(f *ast.File) string {
	for _, imp := range f.Imports {
		if p, _ := strconv.Unquote(imp.Path.Value); p == eventsImport {
			if imp.Name != nil {
				return imp.Name.Name
			}
			return "events"
		}
	}
	return ""
}

// isPkgFunc reports whether e is pkg.name.
func isPkgFunc(e ast.Expr, pkg, name string) bool {
	sel, ok := e.(*ast.SelectorExpr)
	if !ok || sel.Sel.Name != name {
		return false
	}
	id, ok := sel.X.(*ast.Ident)
	return ok && id.Name == pkg
}
