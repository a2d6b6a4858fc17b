//go:build !failpoint

package failpoint

// Enabled reports whether this binary was built with failpoints.
const Enabled = false

// Inject does nothing in a production build.
func Inject(string) {}

// Armed is always false in a production build.
func Armed(string) bool { return false }

// InjectFor does nothing in a production build.
func InjectFor(string, string) {}
