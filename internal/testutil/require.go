// Package testutil holds the helpers homestaker's tests share: finding the
// real tools that judge our output, and deciding whether a missing
// prerequisite is a skip (a developer's laptop) or a failure (CI).
package testutil

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
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

// TestNixEnv names the nix binary the build tests run. scripts/test sets it
// to Debian trixie's Nix 2.26, installed by scripts/nix226 in a private
// prefix: Debian 12's own Nix 2.8 is too old to be what users run.
const TestNixEnv = "HOMESTAKER_TEST_NIX"

// MinNixMajor and MinNixMinor are the oldest Nix homestaker builds with
// (image.MinNixMajor/MinNixMinor; repeated here, where image cannot be
// imported).
const (
	MinNixMajor = 2
	MinNixMinor = 18
)

// RequireTestNix returns the nix of $HOMESTAKER_TEST_NIX and the first line
// of its --version ("nix (Nix) 2.26.3"). It skips the test (fails it in
// CI) when the variable is unset or names no working nix, and fails it when
// that nix is older than 2.18.
func RequireTestNix(t testing.TB) (path, version string) {
	t.Helper()
	path = os.Getenv(TestNixEnv)
	if path == "" {
		Missing(t, "$"+TestNixEnv+" names no Nix ≥ 2.18 (scripts/nix226 installs Debian trixie's Nix 2.26 and prints its path)")
	}
	version, major, minor, err := nixVersion(path)
	if err != nil {
		Missing(t, "$"+TestNixEnv+"="+path+": "+err.Error())
	}
	if major < MinNixMajor || major == MinNixMajor && minor < MinNixMinor {
		t.Fatalf("$%s=%s is %s; the build tests need Nix %d.%d or newer", TestNixEnv, path, version, MinNixMajor, MinNixMinor)
	}
	return path, version
}

// RequireOldNix returns the nix on PATH when it is older than 2.18 — Debian
// 12's Nix 2.8, which scripts/test installs — for the tests of the "too old"
// refusal; it skips (fails in CI) otherwise.
func RequireOldNix(t testing.TB) (path, version string) {
	t.Helper()
	path = RequireTool(t, "nix")
	version, major, minor, err := nixVersion(path)
	if err != nil {
		Missing(t, path+": "+err.Error())
	}
	if major > MinNixMajor || major == MinNixMajor && minor >= MinNixMinor {
		Missing(t, "the nix on PATH ("+path+") is "+version+", not older than 2.18 like Debian 12's nix-bin")
	}
	return path, version
}

// nixVersion runs nix --version and reads major and minor from its last
// word ("nix (Nix) 2.26.3").
func nixVersion(path string) (line string, major, minor int, err error) {
	out, err := exec.Command(path, "--version").Output()
	if err != nil {
		return "", 0, 0, fmt.Errorf("%s --version: %w", path, err)
	}
	line, _, _ = strings.Cut(strings.TrimSpace(string(out)), "\n")
	fields := strings.Fields(line)
	if len(fields) == 0 {
		return line, 0, 0, fmt.Errorf("%s --version printed nothing", path)
	}
	if _, err := fmt.Sscanf(fields[len(fields)-1], "%d.%d", &major, &minor); err != nil {
		return line, 0, 0, fmt.Errorf("%s --version printed %q", path, line)
	}
	return line, major, minor, nil
}
