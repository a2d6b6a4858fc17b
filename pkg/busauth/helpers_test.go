package busauth_test

import (
	"os"
	"slices"
)

func writeFile(path, s string) error { return os.WriteFile(path, []byte(s), 0o600) }

func contains(ss []string, s string) bool { return slices.Contains(ss, s) }
