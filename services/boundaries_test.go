// Package services holds the test that keeps the services apart: each depends only on pkg/
// and the generated proto/ code, never on another service, so any one can be changed,
// deployed or split out without the others.
package services

import (
	"bufio"
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/mash-hub/mash/"

// composer is the binary that wires every service together; it alone may import them all.
const composer = "github.com/mash-hub/mash/services/mash"

// TestNoServiceImportsAnother reads with go list the transitive dependencies (.Deps) of
// every package under services/, pkg/ and proto/ and fails for each service package that
// depends on another service's package, for each pkg/ package that depends on any service,
// and for each proto/ package that depends on anything of this module outside proto/ (an
// integrator importing the generated clients gets no service code). Tests may start other
// services to test against them; the code that ships may not.
func TestNoServiceImportsAnother(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Deps}} {{.}}{{end}}`,
		module+"services/...", module+"pkg/...", module+"proto/...").Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr(err))
	}
	checked := 0
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		pkg := fields[0]
		checked++
		for _, dep := range fields[1:] {
			if bad := violation(pkg, dep); bad != "" {
				t.Errorf("%s depends on %s: %s", pkg, dep, bad)
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if checked < 20 {
		t.Fatalf("go list listed only %d packages; the check would prove nothing", checked)
	}
}

// violation says why pkg may not depend on dep, or "" when it may.
func violation(pkg, dep string) string {
	if strings.HasPrefix(pkg, module+"proto/") && strings.HasPrefix(dep, module) && !strings.HasPrefix(dep, module+"proto/") {
		return "the contracts' generated code imports only other contracts"
	}
	depSvc, ok := service(dep)
	if !ok {
		return ""
	}
	if strings.HasPrefix(pkg, module+"pkg/") {
		return "pkg/ is plumbing shared by services and imports none of them"
	}
	svc, ok := service(pkg)
	if !ok || pkg == composer || strings.HasPrefix(pkg, composer+"/") || svc == depSvc {
		return ""
	}
	return "a service imports only pkg/ and proto/, never another service (move what both need to pkg/)"
}

// service names the service a package belongs to ("intake" for github.com/mash-hub/mash/services/intake/store).
func service(pkg string) (string, bool) {
	rest, ok := strings.CutPrefix(pkg, module+"services/")
	if !ok {
		return "", false
	}
	name, _, _ := strings.Cut(rest, "/")
	return name, name != ""
}

func stderr(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return string(ee.Stderr)
	}
	return ""
}
