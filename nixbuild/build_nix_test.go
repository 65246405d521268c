package nixbuild

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/homestaker/homestaker/internal/testutil"
	"github.com/homestaker/homestaker/plan"
)

// How these tests run the real Nix offline. The Nix is the one users run:
// Debian trixie's Nix 2.26, which scripts/nix226 installs in a private
// prefix and scripts/test names in $HOMESTAKER_TEST_NIX (Debian 12's own Nix
// 2.8 is only used to check that homestaker refuses it):
//   - as root with the default /nix store and no daemon: Nix builds
//     directly in /nix, so a private store is not needed and the test
//     derivations are tiny;
//   - --option substituters '' so nothing is fetched, --option sandbox
//     false (repeated so a different nix.conf does not matter), and
//     --option build-users-group '': Nix 2.26 run as root refuses to build
//     when the nixbld group of a multi-user install is missing, and this
//     machine has none;
//   - HOME and XDG_CACHE_HOME in a temp dir, so Nix's flake cache stays
//     out of the user's home;
//   - each test flake gets a fresh nonce, so its derivations are built
//     rather than found in the store.
//
// The test flakes' kexecTree/isoImage are builtins.derivation with /bin/sh
// as builder: no nixpkgs, nothing to download.

// offlineNixOptions are the --option pairs of an offline test build.
var offlineNixOptions = [][2]string{{"substituters", ""}, {"sandbox", "false"}, {"build-users-group", ""}}

// nixTestSetup returns the nix binary (Nix ≥ 2.18) and options for an
// offline build, or skips (fails in CI) when that Nix or root is missing.
func nixTestSetup(t *testing.T) (nixPath string, args, env []string) {
	t.Helper()
	nixPath, version := testutil.RequireTestNix(t)
	testutil.RequireRoot(t)
	t.Logf("building with %s (%s)", nixPath, version)
	home := t.TempDir()
	env = append(os.Environ(), "HOME="+home, "XDG_CACHE_HOME="+filepath.Join(home, ".cache"))
	for _, o := range offlineNixOptions {
		args = append(args, "--option", o[0], o[1])
	}
	return nixPath, args, env
}

// testFlake copies testdata/build/<name> to a temp dir with a fresh nonce
// and this machine's system.
func testFlake(t *testing.T, name string) string {
	t.Helper()
	return testutil.CopyFlake(t, filepath.Join("testdata", "build", name))
}

func nixSystem() string { return testutil.NixSystem() }

func TestBuildKexecTreeWithRealNix(t *testing.T) {
	nixPath, args, env := nixTestSetup(t)
	dir := testFlake(t, "kexec")
	target, err := ReadBuildTarget(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	// The model is fed the events as they come, and the derivation counter
	// is checked at every step: it only goes up, and ends at 4 of 4.
	watch := NewNixProgress(0)
	var last NixCounter
	var finished []string
	res, err := Build(context.Background(), BuildOptions{
		Target: target, NixPath: nixPath, NixArgs: args, Env: env,
		Observe: func(ev NixLogEvent, at time.Time) {
			u := watch.Apply(ev, at)
			c := watch.Status().Builds
			if c.Done < last.Done || c.Expected < last.Expected {
				t.Errorf("derivation counter went back: %+v after %+v", c, last)
			}
			last = c
			if u.Finished != nil {
				finished = append(finished, u.Finished.Name)
			}
		},
	})
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	if last.Done != 4 || last.Expected != 4 || res.Status.Builds.Done != 4 {
		t.Errorf("builds ended at %+v (result %+v), want 4 of 4", last, res.Status.Builds)
	}
	if len(finished) != 4 || finished[3] != "kexec-tree" {
		t.Errorf("finished builds %q", finished)
	}
	if !strings.HasSuffix(res.OutPath, "-kexec-tree") || !strings.HasSuffix(res.DrvPath, "-kexec-tree.drv") {
		t.Errorf("out %q drv %q", res.OutPath, res.DrvPath)
	}
	if link, err := os.Readlink(target.OutLink()); err != nil || link != res.OutPath {
		t.Errorf("result link = %q, %v; want %q", link, err, res.OutPath)
	}

	artifacts, err := CollectArtifacts(context.Background(), res.OutPath, target.Format)
	if err != nil {
		t.Fatal(err)
	}
	zeros := func(n int) string {
		sum := sha256.Sum256(make([]byte, n))
		return hex.EncodeToString(sum[:])
	}
	want := map[string]struct {
		role ArtifactRole
		size int64
		sum  string
	}{
		"bzImage":      {RoleKernel, 50000, zeros(50000)},
		"initrd.zst":   {RoleInitrd, 200000, zeros(200000)},
		"kexec-boot":   {RoleKexecScript, -1, ""},
		"netboot.ipxe": {RoleIPXE, -1, ""},
	}
	if len(artifacts) != len(want) {
		t.Fatalf("artifacts %+v, want %d", artifacts, len(want))
	}
	for _, a := range artifacts {
		w, ok := want[a.Name]
		if !ok || a.Role != w.role || (w.size >= 0 && a.Size != w.size) || (w.sum != "" && a.SHA256 != w.sum) {
			t.Errorf("artifact %+v, want %+v", a, w)
		}
		if len(a.SHA256) != 64 {
			t.Errorf("%s: sha256 %q", a.Name, a.SHA256)
		}
	}

	// Nix 2.26 has --print-out-paths (2.8 had not, hence Build's --json):
	// asked again for the same installable, it names the same output
	// without building anything.
	var again strings.Builder
	err = ExecRunner(0)(context.Background(), NixCommand{Path: nixPath, Dir: dir, Env: env,
		Args: append(append([]string{"build", "--extra-experimental-features", "nix-command flakes",
			"--print-out-paths", "--no-link"}, args...), target.Installable()),
		Stdout: &again, Stderr: &strings.Builder{}})
	if err != nil || strings.TrimSpace(again.String()) != res.OutPath {
		t.Errorf("nix build --print-out-paths = %q, %v; want %s", again.String(), err, res.OutPath)
	}

	v, err := QueryNixVersion(context.Background(), ExecRunner(0), nixPath)
	if err != nil {
		t.Fatal(err)
	}
	m := NewBuildManifest(res, artifacts, v.String())
	path := BuildManifestPath(target)
	if err := WriteBuildManifest(path, m); err != nil {
		t.Fatal(err)
	}
	back, err := ReadBuildManifest(path)
	if err != nil {
		t.Fatal(err)
	}
	if back.OutPath != res.OutPath || back.NixVersion != v.String() || back.Host != "node1" || back.Format != plan.FormatKexec || len(back.Artifacts) != 4 {
		t.Errorf("manifest read back as %+v", back)
	}
	if k, ok := back.Artifact(RoleKernel); !ok || k.Size != 50000 {
		t.Errorf("kernel in manifest: %+v", k)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".build-manifest-") {
			t.Errorf("temp file %s left behind", e.Name())
		}
	}
}

func TestBuildFailureWithRealNix(t *testing.T) {
	nixPath, args, env := nixTestSetup(t)
	dir := testFlake(t, "fail")
	target, err := ReadBuildTarget(dir, "node1")
	if err != nil {
		t.Fatal(err)
	}
	_, err = Build(context.Background(), BuildOptions{Target: target, NixPath: nixPath, NixArgs: args, Env: env, NoLink: true})
	var be *BuildError
	if !errors.As(err, &be) {
		t.Fatalf("Build error = %v, want a *BuildError", err)
	}
	if len(be.Failed) != 1 || be.Failed[0].Name != "kexec-tree-broken" {
		t.Fatalf("failed = %+v", be.Failed)
	}
	f := be.Failed[0]
	if len(f.Tail) != 30 || f.Tail[29] != "error: initrd too large" || f.Tail[0] != "log line 17" {
		t.Errorf("tail = %q", f.Tail)
	}
	if !strings.Contains(be.Error(), "kexec-tree-broken failed") {
		t.Errorf("error text %q does not name the derivation", be.Error())
	}
	var out strings.Builder
	WriteBuildFailure(&out, be)
	hint := NixLogCommand(f.Drv)
	if !strings.Contains(out.String(), hint) || !strings.Contains(out.String(), "  | log line 45") {
		t.Errorf("failure report:\n%s", out.String())
	}
	// The hint works: nix log shows the whole log, from the first line.
	var logOut strings.Builder
	err = ExecRunner(0)(context.Background(), NixCommand{Path: nixPath,
		// Offline: nix log would otherwise ask cache.nixos.org first.
		Args: append([]string{"--extra-experimental-features", "nix-command", "log"}, append(args, f.Drv)...), Env: env,
		Stdout: &logOut, Stderr: &strings.Builder{}})
	if err != nil || !strings.Contains(logOut.String(), "log line 1\n") {
		t.Errorf("%s: %v\n%s", hint, err, logOut.String())
	}
}

func TestBuildISOWithRealNix(t *testing.T) {
	nixPath, args, env := nixTestSetup(t)
	dir := testFlake(t, "iso")
	target, err := ReadBuildTarget(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	if target.Format != plan.FormatISO || !strings.HasSuffix(target.Attribute(), ".isoImage") {
		t.Fatalf("target %+v attribute %s", target, target.Attribute())
	}
	res, err := Build(context.Background(), BuildOptions{Target: target, NixPath: nixPath, NixArgs: args, Env: env})
	if err != nil {
		t.Fatal(err)
	}
	artifacts, err := CollectArtifacts(context.Background(), res.OutPath, plan.FormatISO)
	if err != nil {
		t.Fatal(err)
	}
	if len(artifacts) != 1 || artifacts[0].Name != "iso/nixos.iso" || artifacts[0].Size != 300000 {
		t.Errorf("artifacts = %+v", artifacts)
	}
}

func TestQueryNixVersionWithRealNix(t *testing.T) {
	nixPath, version := testutil.RequireTestNix(t)
	v, err := QueryNixVersion(context.Background(), ExecRunner(0), nixPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: %s", nixPath, v.Text)
	if v.Text != version || !strings.HasPrefix(v.Text, "nix (") || !v.AtLeast(MinNixMajor, MinNixMinor) {
		t.Errorf("version %+v, want %q at least %d.%d", v, version, MinNixMajor, MinNixMinor)
	}
}

// TestQueryOldNixVersionWithRealNix asks Debian 12's Nix 2.8 for its
// version: too old, and the refusal says which version it saw.
func TestQueryOldNixVersionWithRealNix(t *testing.T) {
	nixPath, version := testutil.RequireOldNix(t)
	v, err := QueryNixVersion(context.Background(), ExecRunner(0), nixPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: %s", nixPath, v.Text)
	if v.Text != version || v.AtLeast(MinNixMajor, MinNixMinor) {
		t.Errorf("version %+v, want %q older than %d.%d", v, version, MinNixMajor, MinNixMinor)
	}
	if msg := (&OldNixError{Version: v}).Error(); !strings.Contains(msg, "Nix "+v.String()+" is installed") {
		t.Errorf("refusal %q", msg)
	}
}

func TestParseNixVersion(t *testing.T) {
	tests := []struct {
		in      string
		want    string
		atLeast bool
	}{
		{"nix (Nix) 2.8.0\n", "2.8.0", false},
		{"nix (Nix) 2.18.1", "2.18.1", true},
		{"nix (Nix) 2.24.10pre20241001_dirty", "2.24.10", true},
		{"nix (Determinate Nix 3.6.2) 2.29.0", "2.29.0", true},
		{"nix (Lix, like Nix) 2.91.1\nSystem type: x86_64-linux", "2.91.1", true},
		{"nix (Nix) 3.0", "3.0.0", true},
	}
	for _, tt := range tests {
		v, err := ParseNixVersion(tt.in)
		if err != nil || v.String() != tt.want || v.AtLeast(MinNixMajor, MinNixMinor) != tt.atLeast {
			t.Errorf("ParseNixVersion(%q) = %v (%v), want %s at-least-2.18=%v", tt.in, v, err, tt.want, tt.atLeast)
		}
	}
	for _, bad := range []string{"", "nix", "nix (Nix) x.y", "nix (Nix) 2"} {
		if v, err := ParseNixVersion(bad); err == nil {
			t.Errorf("ParseNixVersion(%q) = %v, want an error", bad, v)
		}
	}
	msg := (&OldNixError{Version: NixVersion{Major: 2, Minor: 8}}).Error()
	if !strings.Contains(msg, "2.8.0") || !strings.Contains(msg, "2.18") || !strings.Contains(msg, "homestaker nix install") {
		t.Errorf("old Nix message %q", msg)
	}
}

func TestFindNix(t *testing.T) {
	none := func(string) (string, error) { return "", errors.New("not found") }
	if _, err := FindNix(none, func(string) string { return "/home/x" }); !errors.Is(err, ErrNixNotFound) {
		t.Errorf("FindNix with nothing = %v", err)
	}
	inProfile := func(p string) (string, error) {
		if p == "/home/x/.nix-profile/bin/nix" {
			return p, nil
		}
		return "", errors.New("not found")
	}
	if p, err := FindNix(inProfile, func(string) string { return "/home/x" }); err != nil || p != "/home/x/.nix-profile/bin/nix" {
		t.Errorf("FindNix = %q, %v", p, err)
	}
}

// fakeNix is a CommandRunner that replays a recorded log.
func fakeNix(t *testing.T, logName, stdout string, exit error) CommandRunner {
	return func(ctx context.Context, c NixCommand) error {
		data, err := os.ReadFile(filepath.Join("testdata", "build", logName))
		if err != nil {
			t.Fatal(err)
		}
		c.Stderr.Write(data)
		c.Stdout.Write([]byte(stdout))
		return exit
	}
}

func TestBuildWithReplayedLog(t *testing.T) {
	target := BuildTarget{FlakeDir: "/flake", Host: "node1", Format: plan.FormatKexec}
	var args []string
	run := fakeNix(t, "kexec.log", `[{"drvPath":"/nix/store/a-kexec-tree.drv","outputs":{"out":"/nix/store/b-kexec-tree"}}]`, nil)
	res, err := Build(context.Background(), BuildOptions{Target: target, NixPath: "/bin/nix",
		NixArgs: []string{"--option", "substituters", ""},
		Run: func(ctx context.Context, c NixCommand) error {
			args = c.Args
			return run(ctx, c)
		}})
	if err != nil {
		t.Fatal(err)
	}
	if res.OutPath != "/nix/store/b-kexec-tree" || res.OutLink != "/flake/result-node1" || res.Status.Builds.Done != 4 {
		t.Errorf("result %+v", res)
	}
	got := strings.Join(args, " ")
	want := "build -L --log-format internal-json --extra-experimental-features nix-command flakes --json " +
		"--accept-flake-config --out-link /flake/result-node1 --option substituters  " +
		"/flake#nixosConfigurations.node1.config.system.build.kexecTree"
	if got != want {
		t.Errorf("nix args\n got %s\nwant %s", got, want)
	}
	if !strings.Contains(res.Command, "--option substituters '' /flake#") {
		t.Errorf("command line %s", res.Command)
	}

	// Nix 2.26 adds the build's start and stop time to --json.
	res, err = Build(context.Background(), BuildOptions{Target: target, NixPath: "/bin/nix", NoLink: true,
		Run: fakeNix(t, "nix-2.26/kexec.log", `[{"drvPath":"/nix/store/a-kexec-tree.drv","outputs":{"out":"/nix/store/b-kexec-tree"},"startTime":1796163715,"stopTime":1796163716}]`, nil)})
	if err != nil || res.OutPath != "/nix/store/b-kexec-tree" || res.DrvPath != "/nix/store/a-kexec-tree.drv" || res.Status.Builds.Done != 4 {
		t.Errorf("Nix 2.26 replay: %+v, %v", res, err)
	}

	_, err = Build(context.Background(), BuildOptions{Target: target, NixPath: "/bin/nix",
		Run: fakeNix(t, "kexec.log", "not json", nil)})
	if err == nil || !strings.Contains(err.Error(), "--json output") {
		t.Errorf("bad --json output gave %v", err)
	}
	for _, log := range []string{"fail.log", "nix-2.26/fail.log"} {
		_, err = Build(context.Background(), BuildOptions{Target: target, NixPath: "/bin/nix",
			Run: fakeNix(t, log, "", errors.New("exit status 1"))})
		var be *BuildError
		if !errors.As(err, &be) || len(be.Failed) != 1 {
			t.Errorf("failing build (%s) gave %v", log, err)
		}
	}
}

// TestExecRunnerStopsProcessGroup starts a stand-in for nix that has a
// child and ignores SIGTERM: cancelling must end both, through SIGKILL to
// the group after the grace period.
func TestExecRunnerStopsProcessGroup(t *testing.T) {
	sh := testutil.RequireTool(t, "sh")
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "pids")
	script := `trap '' TERM; sleep 60 & echo $$ $! > ` + pidFile + `; echo started >&2; wait`
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	var stderr syncBuffer
	go func() {
		errc <- ExecRunner(300*time.Millisecond)(ctx, NixCommand{Path: sh, Args: []string{"-c", script},
			Stdout: &stderr, Stderr: &stderr})
	}()
	var pids string
	for i := 0; i < 100 && !strings.Contains(stderr.String(), "started"); i++ {
		time.Sleep(20 * time.Millisecond)
	}
	data, err := os.ReadFile(pidFile)
	if err != nil {
		cancel()
		t.Fatalf("stand-in did not start: %v (%s)", err, stderr.String())
	}
	pids = strings.TrimSpace(string(data))
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("runner returned %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("runner did not return after cancel")
	}
	var leader, child int
	fmt.Sscan(pids, &leader, &child)
	for i := 0; i < 50 && processAlive(child); i++ {
		time.Sleep(20 * time.Millisecond)
	}
	if processAlive(child) {
		_ = syscall.Kill(child, syscall.SIGKILL)
		t.Errorf("child %d of the stopped command still runs", child)
	}
}

// processAlive reports whether pid runs (a zombie waiting for its parent
// does not count).
func processAlive(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the command name in parentheses.
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// syncBuffer is a strings.Builder safe for a writer and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
