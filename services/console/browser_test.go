package console

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/mash-hub/mash/services/console/browsertest"
)

// TestBrowser walks the console in headless Chromium against in-memory services. The lead's
// end-to-end run calls browsertest.Run against the whole mash binary instead.
func TestBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test in -short mode")
	}
	if browsertest.ExecPath() == "" {
		t.Skip("no Chromium")
	}
	e := newEnv(t)
	dir := os.Getenv("MASH_BROWSER_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(t.TempDir(), "screens")
	}
	browsertest.Run(t, e.srv.URL, "manager1", testPassword, dir)
	for _, n := range []string{"signin", "queue", "case", "dashboard", "notifications", "disagreements", "packs"} {
		if st, err := os.Stat(filepath.Join(dir, n+".png")); err != nil || st.Size() < 1000 {
			t.Errorf("screenshot %s missing or empty: %v", n, err)
		}
	}
}
