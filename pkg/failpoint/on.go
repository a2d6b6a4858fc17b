//go:build failpoint

package failpoint

import (
	"os"
	"strings"
)

// Enabled reports whether this binary was built with failpoints.
const Enabled = true

var armed = parse(os.Getenv(EnvVar))

func parse(s string) map[string]bool {
	m := map[string]bool{}
	for _, name := range strings.Split(s, ",") {
		if name = strings.TrimSpace(name); name != "" {
			m[name] = true
		}
	}
	return m
}

// Inject exits the process immediately when name is armed.
func Inject(name string) {
	if armed[name] {
		os.Stderr.WriteString("failpoint: " + name + "\n")
		os.Exit(ExitCode)
	}
}

// Armed reports whether name is armed, for failpoints that misbehave rather than exit (a
// broker that acknowledges and then loses a message, say).
func Armed(name string) bool { return armed[name] }

// InjectFor is Inject for a point that many parts of a process pass (every relay, every
// consumer): it exits when name is armed, or name@scope for this part alone, so a crash test
// can kill the process in one service's relay without the others reaching it first.
func InjectFor(name, scope string) {
	if armed[name+"@"+scope] {
		Inject(name + "@" + scope)
		return
	}
	Inject(name)
}
