package failpoint

import (
	"os"
	"os/exec"
	"testing"
)

// TestInject runs this test binary again with a point armed and checks how it ends: with the
// failpoint tag it exits with ExitCode at the point; without, the point is inert.
func TestInject(t *testing.T) {
	if os.Getenv("FAILPOINT_CHILD") == "1" {
		Inject("test.point")
		os.Exit(0)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestInject$")
	cmd.Env = append(os.Environ(), "FAILPOINT_CHILD=1", EnvVar+"=other, test.point")
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	want := 0
	if Enabled {
		want = ExitCode
	}
	if code != want {
		t.Fatalf("child exited with %d, want %d (Enabled=%v)", code, want, Enabled)
	}
}
