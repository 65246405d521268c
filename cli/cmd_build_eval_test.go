package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/homestaker/homestaker/internal/testutil"
)

// copyEvalFlake copies one of nixbuild/testdata/eval's offline flakes to a
// temp dir with a fresh nonce.
func copyEvalFlake(t *testing.T, name string) string {
	t.Helper()
	return testutil.CopyFlake(t, filepath.Join("nixbuild", "testdata", "eval", name))
}

// TestBuildEvaluatesFirstWithRealNix: build evaluates the host before it
// builds; a configuration that throws stops with the evaluator's message
// and nothing built, one that evaluates is built.
func TestBuildEvaluatesFirstWithRealNix(t *testing.T) {
	nixPath, _ := testutil.RequireTestNix(t)
	testutil.RequireRoot(t)
	home := t.TempDir()
	t.Setenv("HOME", home) // nix runs with homestaker's environment
	t.Setenv("XDG_CACHE_HOME", filepath.Join(home, ".cache"))
	deps := defaultBuildDeps()
	deps.lookPath = func(string) (string, error) { return nixPath, nil }
	offline := []string{"--plain", "--allow-old-nix", "--nix-option", "substituters=", "--nix-option", "sandbox=false",
		// Debian's nix-bin without nix-setup-systemd has no nixbld group.
		"--nix-option", "build-users-group="}

	for name, want := range map[string]string{
		"throw":   "  error: The option `services.ethereum.lighthouse-beacon' does not exist. Definition values:\n  - In `/nix/store/x-source/hosts/node1/default.nix'\n",
		"missing": "  error: attribute 'toplevel' missing\n",
	} {
		dir := copyEvalFlake(t, name)
		env, stdout, stderr := testEnv(map[string]string{"HOME": home, "TERM": "dumb"})
		code := runBuildWith(context.Background(), env, append([]string{dir}, offline...), deps)
		if code != exitFailure {
			t.Errorf("%s: exit %d, want %d:\n%s", name, code, exitFailure, stderr)
		}
		for _, w := range []string{"the configuration of host node1 does not evaluate; nothing was built:\n" + want, "See the whole trace with: " + nixPath + " eval --show-trace --raw"} {
			if !strings.Contains(stderr.String(), w) {
				t.Errorf("%s: stderr lacks %q:\n%s", name, w, stderr)
			}
		}
		if s := stderr.String(); strings.Contains(s, "\x1b") || strings.Contains(s, "Build the kexec tree") || strings.Contains(s, "use '--show-trace'") {
			t.Errorf("%s: colours, a started build or nix's hint in:\n%s", name, s)
		}
		if _, err := os.Lstat(filepath.Join(dir, "result-node1")); err == nil || stdout.Len() > 0 {
			t.Errorf("%s: something was built: %s", name, stdout)
		}
	}

	dir := copyEvalFlake(t, "ok")
	env, stdout, stderr := testEnv(map[string]string{"HOME": home, "TERM": "dumb"})
	if code := runBuildWith(context.Background(), env, append([]string{dir}, offline...), deps); code != exitFailure && code != exitOK {
		t.Fatalf("ok flake: exit %d:\n%s", code, stderr)
	}
	// It evaluated and went on to build; its trivial tree is not a kexec
	// tree, so collecting the artifacts may refuse it afterwards.
	if !strings.Contains(stderr.String(), "Build the kexec tree of node1") || strings.Contains(stderr.String(), "does not evaluate") {
		t.Errorf("ok flake did not go on to the build:\n%s\n%s", stderr, stdout)
	}
	if _, err := os.Lstat(filepath.Join(dir, "result-node1")); err != nil {
		t.Errorf("ok flake: no result link: %v\n%s", err, stderr)
	}
}
