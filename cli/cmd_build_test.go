package cli

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	tea "charm.land/bubbletea/v2"

	"github.com/homestaker/homestaker/internal/testutil"
	"github.com/homestaker/homestaker/nixbuild"
)

// copyTestFlake copies one of nixbuild/testdata/build's flakes to a temp dir
// with a fresh nonce (see nixbuild/build_nix_test.go for how Nix runs here).
func copyTestFlake(t *testing.T, name string) string {
	t.Helper()
	return testutil.CopyFlake(t, filepath.Join("nixbuild", "testdata", "build", name))
}

func testEnv(vars map[string]string) (*cliEnv, *bytes.Buffer, *bytes.Buffer) {
	var stdout, stderr bytes.Buffer
	return &cliEnv{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr,
		getenv: func(k string) string { return vars[k] }}, &stdout, &stderr
}

// fakeNixRunner answers --version with version and replays logName for a
// build, printing stdout; it records the commands.
func fakeNixRunner(t *testing.T, version, logName, stdout string, buildErr error, calls *[]string) nixbuild.CommandRunner {
	return func(ctx context.Context, c nixbuild.NixCommand) error {
		*calls = append(*calls, strings.Join(c.Args, " "))
		if len(c.Args) == 1 && c.Args[0] == "--version" {
			io.WriteString(c.Stdout, version+"\n")
			return nil
		}
		if c.Args[0] == "eval" {
			io.WriteString(c.Stdout, "/nix/store/x-kexec-tree.drv")
			return nil
		}
		data, err := os.ReadFile(filepath.Join("nixbuild", "testdata", "build", logName))
		if err != nil {
			t.Fatal(err)
		}
		c.Stderr.Write(data)
		io.WriteString(c.Stdout, stdout)
		return buildErr
	}
}

func TestBuildCommandUsage(t *testing.T) {
	for _, args := range [][]string{{}, {"a", "b"}, {"--frobnicate", "a"}, {"a", "--nix-option", "novalue"}} {
		env, _, stderr := testEnv(nil)
		if code := runBuild(context.Background(), env, args); code != exitUsage {
			t.Errorf("build %q: exit %d, want %d (%s)", args, code, exitUsage, stderr)
		}
	}
	env, _, stderr := testEnv(nil)
	if code := runBuild(context.Background(), env, []string{t.TempDir()}); code != exitFailure ||
		!strings.Contains(stderr.String(), "no flake.nix") {
		t.Errorf("empty folder: exit %d: %s", code, stderr)
	}
	// Several hosts and no --host: a wrong argument (README, exit codes).
	two := t.TempDir()
	for _, f := range []string{"flake.nix", "hosts/a/homestaker.json", "hosts/b/homestaker.json"} {
		os.MkdirAll(filepath.Dir(filepath.Join(two, f)), 0o755)
		os.WriteFile(filepath.Join(two, f), []byte("{}"), 0o644)
	}
	for _, run := range []func(context.Context, *cliEnv, []string) int{runBuild, runKexec} {
		env, _, stderr := testEnv(nil)
		if code := run(context.Background(), env, []string{two}); code != exitUsage || !strings.Contains(stderr.String(), "choose one with --host") {
			t.Errorf("several hosts: exit %d, want %d: %s", code, exitUsage, stderr)
		}
	}
}

func TestBuildCommandWithoutNix(t *testing.T) {
	dir := copyTestFlake(t, "kexec")
	env, _, stderr := testEnv(map[string]string{"HOME": t.TempDir()})
	deps := defaultBuildDeps()
	deps.lookPath = func(string) (string, error) { return "", errors.New("no") }
	code := runBuildWith(context.Background(), env, []string{dir}, deps)
	if code != exitFailure || !strings.Contains(stderr.String(), "nix is not installed") ||
		!strings.Contains(stderr.String(), "homestaker nix install") {
		t.Errorf("exit %d: %s", code, stderr)
	}
}

func TestBuildCommandRefusesOldNix(t *testing.T) {
	dir := copyTestFlake(t, "kexec")
	env, _, stderr := testEnv(nil)
	var calls []string
	deps := defaultBuildDeps()
	deps.lookPath = func(string) (string, error) { return "/usr/bin/nix", nil }
	deps.run = fakeNixRunner(t, "nix (Nix) 2.8.0", "kexec.log", "", nil, &calls)
	code := runBuildWith(context.Background(), env, []string{dir}, deps)
	if code != exitFailure || !strings.Contains(stderr.String(), "Nix 2.8.0 is installed, but building a NixOS image needs Nix 2.18") {
		t.Errorf("exit %d: %s", code, stderr)
	}
	if len(calls) != 1 {
		t.Errorf("nix ran %q; only --version should have", calls)
	}
}

// TestBuildCommandProgressView drives the bubbletea view with a log
// recorded from Nix 2.26, as on a terminal.
func TestBuildCommandProgressView(t *testing.T) {
	version, err := os.ReadFile(filepath.Join("nixbuild", "testdata", "build", "nix-2.26", "nix-version.txt"))
	if err != nil {
		t.Fatal(err)
	}
	dir := copyTestFlake(t, "kexec")
	// The replayed build "produces" a tree made here.
	out := t.TempDir()
	for name, content := range map[string]string{"bzImage": "kernel", "initrd.zst": "initrd", "kexec-boot": "#!/bin/sh"} {
		if err := os.WriteFile(filepath.Join(out, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	env, stdout, stderr := testEnv(map[string]string{"TERM": "xterm-256color"})
	var calls []string
	deps := defaultBuildDeps()
	deps.lookPath = func(string) (string, error) { return "/usr/bin/nix", nil }
	deps.run = fakeNixRunner(t, strings.TrimSpace(string(version)), "nix-2.26/kexec.log",
		`[{"drvPath":"/nix/store/x-kexec-tree.drv","outputs":{"out":"`+out+`"},"startTime":1796163715,"stopTime":1796163716}]`, nil, &calls)
	deps.isTerminal = func(io.Writer) bool { return true }
	// A buffer has no size; a terminal would tell.
	deps.viewOptions = []tea.ProgramOption{tea.WithWindowSize(80, 24)}
	code := runBuildWith(context.Background(), env, []string{dir, "--no-link"}, deps)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stderr.String(), "Derivations") || !strings.Contains(stderr.String(), "built") {
		t.Errorf("the progress view did not draw:\n%q", stderr.String())
	}
	if !strings.Contains(stdout.String(), "kernel       bzImage") || !strings.Contains(stdout.String(), "Manifest: ") {
		t.Errorf("summary:\n%s", stdout)
	}
	if build := calls[len(calls)-1]; !strings.Contains(build, "--no-link") {
		t.Errorf("build command %q", build)
	}
}

// withNix returns deps whose nix (found as "nix" on PATH) is nixPath.
func withNix(nixPath string) buildDeps {
	deps := defaultBuildDeps()
	deps.lookPath = func(name string) (string, error) {
		if name == "nix" {
			return nixPath, nil
		}
		return exec.LookPath(name)
	}
	return deps
}

// TestBuildCommandWithRealNix builds the test flakes with the Nix users
// run (Debian trixie's Nix 2.26 from $HOMESTAKER_TEST_NIX; see
// nixbuild/build_nix_test.go for how it runs offline here).
func TestBuildCommandWithRealNix(t *testing.T) {
	nixPath, version := testutil.RequireTestNix(t)
	testutil.RequireRoot(t)
	t.Logf("building with %s (%s)", nixPath, version)
	home := t.TempDir()
	t.Setenv("HOME", home) // nix runs with homestaker's environment
	t.Setenv("XDG_CACHE_HOME", filepath.Join(home, ".cache"))
	offline := []string{"--nix-option", "substituters=", "--nix-option", "sandbox=false", "--nix-option", "build-users-group="}

	dir := copyTestFlake(t, "kexec")
	env, stdout, stderr := testEnv(map[string]string{"HOME": home, "TERM": "dumb"})
	code := runBuildWith(context.Background(), env, append([]string{dir, "--host", "node1"}, offline...), withNix(nixPath))
	if code != exitOK {
		t.Fatalf("exit %d:\n%s", code, stderr)
	}
	for _, want := range []string{"nix-community.cachix.org", "built kexec-tree (", "built 4/4"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if strings.Contains(stderr.String(), "building anyway") {
		t.Errorf("%s was taken for an old Nix:\n%s", version, stderr)
	}
	manifest, err := nixbuild.ReadBuildManifest(filepath.Join(dir, "hosts", "node1", "build-manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(manifest.Artifacts) != 4 || manifest.OutLink != filepath.Join(dir, "result-node1") ||
		!strings.HasSuffix(version, " "+manifest.NixVersion) {
		t.Errorf("manifest %+v (nix %q)", manifest, version)
	}
	for _, a := range manifest.Artifacts {
		if !strings.Contains(stdout.String(), "sha256:"+a.SHA256) {
			t.Errorf("summary lacks %s's checksum:\n%s", a.Name, stdout)
		}
	}

	dir = copyTestFlake(t, "fail")
	env, _, stderr = testEnv(map[string]string{"HOME": home, "NO_COLOR": "1"})
	code = runBuildWith(context.Background(), env, append([]string{dir}, offline...), withNix(nixPath))
	if code != exitFailure {
		t.Fatalf("failing build: exit %d", code)
	}
	for _, want := range []string{"FAILED kexec-tree-broken", "Building kexec-tree-broken failed in installPhase.",
		"Its last 30 log lines:", "  | error: initrd too large", "See the whole log with: nix --extra-experimental-features nix-command log /nix/store/"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "hosts", "node1", "build-manifest.json")); err == nil {
		t.Error("a failed build wrote a manifest")
	}
}

// TestBuildCommandRefusesRealOldNix runs build with Debian 12's Nix 2.8:
// refused before anything is built, with the version it saw and how to get
// a newer Nix.
func TestBuildCommandRefusesRealOldNix(t *testing.T) {
	nixPath, version := testutil.RequireOldNix(t)
	dir := copyTestFlake(t, "kexec")
	home := t.TempDir()
	env, stdout, stderr := testEnv(map[string]string{"HOME": home, "TERM": "dumb"})
	code := runBuildWith(context.Background(), env, []string{dir}, withNix(nixPath))
	v := strings.Fields(version)
	want := "Nix " + v[len(v)-1] + " is installed, but building a NixOS image needs Nix 2.18 or newer"
	if code != exitFailure || !strings.Contains(stderr.String(), want) ||
		!strings.Contains(stderr.String(), "homestaker nix install") {
		t.Errorf("%s: exit %d, stderr:\n%s\nwant %q", version, code, stderr, want)
	}
	if stdout.Len() != 0 {
		t.Errorf("stdout: %s", stdout)
	}
	for _, name := range []string{"result-node1", filepath.Join("hosts", "node1", "build-manifest.json")} {
		if _, err := os.Lstat(filepath.Join(dir, name)); err == nil {
			t.Errorf("the refused build left %s", name)
		}
	}
}
