package main_test

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/mash-hub/mash/services/console"
)

// The console's sign-in settings are checked at start, before any connection (nothing
// listens on the database's port 1, so a later check would name postgres instead): insecure
// cookies only on a loopback listener, the hashing pool's bounds, and single sign-on only
// with a role map.
func TestConsoleSignInSettingsCheckedAtStart(t *testing.T) {
	t.Parallel()
	s := &system{dbURL: "postgres://postgres@127.0.0.1:1/none", dataDir: t.TempDir(), httpAddr: "127.0.0.1:0", grpcAddr: "127.0.0.1:0", nats: "127.0.0.1:0"}
	oidc := []string{console.EnvOIDCIssuer + "=https://idp.example", console.EnvOIDCClientID + "=mash", console.EnvOIDCSecret + "=s",
		console.EnvOIDCRedirect + "=https://hub.example/console/oidc/callback"}
	for _, tc := range []struct {
		env  []string
		want string
	}{
		{[]string{console.EnvInsecureCookies + "=true", "MASH_HTTP_ADDR=0.0.0.0:8080"}, console.EnvInsecureCookies},
		{[]string{console.EnvInsecureCookies + "=true", "MASH_HTTP_ADDR=:8080"}, console.EnvInsecureCookies},
		{[]string{console.EnvHashConcurrency + "=0"}, console.EnvHashConcurrency},
		{[]string{console.EnvHashConcurrency + "=500"}, console.EnvHashConcurrency},
		{[]string{console.EnvHashQueue + "=lots"}, console.EnvHashQueue},
		{[]string{console.EnvHashWait + "=soon"}, console.EnvHashWait},
		{[]string{console.EnvSignInUserLimit + "=0"}, console.EnvSignInUserLimit},
		{oidc, console.EnvOIDCRoleMap},
		// Allowed: the check passes and start-up goes on to fail at the database.
		{[]string{console.EnvInsecureCookies + "=true", "MASH_HTTP_ADDR=127.0.0.1:0"}, "postgres"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		cmd := exec.CommandContext(ctx, mashBinary, "serve", "--services", "console")
		cmd.Env = s.env(tc.env...)
		out, err := cmd.CombinedOutput()
		cancel()
		if err == nil || !strings.Contains(string(out), tc.want) || (tc.want != "postgres" && strings.Contains(string(out), "postgres")) {
			t.Errorf("mash serve with %v: %v, output %q; want a failure naming %s", tc.env, err, out, tc.want)
		}
	}
}
