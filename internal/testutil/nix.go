package testutil

import (
	"os"
	"os/exec"
	"testing"
)

// TestNixEnv names the nix binary the tests run (for example a Nix 2.26
// installed into a private prefix); unset, nix is found on PATH.
const TestNixEnv = "HOMESTAKER_TEST_NIX"

// RequireNix returns the nix binary tests run: $HOMESTAKER_TEST_NIX, or nix
// on PATH. It skips the test without one, and fails it in CI.
func RequireNix(t testing.TB) string {
	t.Helper()
	if p := os.Getenv(TestNixEnv); p != "" {
		if _, err := exec.LookPath(p); err != nil {
			t.Fatalf("%s=%s is not an executable: %v", TestNixEnv, p, err)
		}
		return p
	}
	return RequireTool(t, "nix")
}
