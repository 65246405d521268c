// Package testutil holds the helpers homestaker's tests share: finding the
// real tools that judge our output, and deciding whether a missing
// prerequisite is a skip (a developer's laptop) or a failure (CI).
package testutil

import (
	"os"
	"os/exec"
	"testing"
)

// InCI reports whether the tests run in CI, where a missing prerequisite is a
// failure rather than a skip.
func InCI() bool {
	v := os.Getenv("CI")
	return v == "true" || v == "1"
}

// Missing skips the test with reason, or fails it when running in CI.
func Missing(t testing.TB, reason string) {
	t.Helper()
	if InCI() {
		t.Fatalf("prerequisite missing in CI: %s (run ./scripts/test, which installs it)", reason)
	}
	t.Skipf("skipping: %s (./scripts/test installs it)", reason)
}

// RequireTool returns the path of the named executable, or skips/fails the
// test when it is not installed.
func RequireTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Missing(t, name+" is not installed")
	}
	return p
}

// RequireRoot skips/fails the test when not running as root.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		Missing(t, "the test needs root")
	}
}
