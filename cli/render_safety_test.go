package cli

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/homestaker/homestaker/internal/testutil"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// homestakerBin builds the real binary once for these tests.
func homestakerBin(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "homestaker-bin-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "homestaker")
		if out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput(); err != nil {
			binErr = err
			binPath = string(out)
		}
	})
	if binErr != nil {
		t.Fatalf("go build: %v\n%s", binErr, binPath)
	}
	return binPath
}

// binCmd is the real homestaker with a private state folder.
func binCmd(t *testing.T, state string, extraEnv []string, args ...string) *exec.Cmd {
	cmd := exec.Command(homestakerBin(t), args...)
	cmd.Env = append(append(os.Environ(), "XDG_STATE_HOME="+state, "NO_COLOR=1", "TERM=dumb"), extraEnv...)
	return cmd
}

// runBin runs the real binary and returns its exit code and output.
func runBin(t *testing.T, state string, extraEnv []string, args ...string) (int, string, string) {
	t.Helper()
	cmd := binCmd(t, state, extraEnv, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, out.String(), errb.String()
}

// folderSums is every entry under dir: files by mode and SHA-256, folders
// by mode.
func folderSums(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		v := info.Mode().String()
		if info.Mode().IsRegular() {
			data, _ := os.ReadFile(p)
			h := sha256.Sum256(data)
			v += " " + hex.EncodeToString(h[:])
		}
		m[rel] = v
		return nil
	})
	return m
}

func sameFolder(t *testing.T, what string, before, after map[string]string) {
	t.Helper()
	for k, v := range before {
		if after[k] != v {
			t.Errorf("%s: %s changed or vanished", what, k)
		}
	}
	for k := range after {
		if _, ok := before[k]; !ok {
			t.Errorf("%s: %s appeared", what, k)
		}
	}
}

const (
	exampleA = "examples/mainnet-erigon-lighthouse.json" // host beta
	exampleB = "examples/rpi4-hoodi-geth-nimbus.json"    // host pi
)

// TestRenderBinaryRefusesFilesItDidNotWrite: a user's own flake.nix and
// modules/base.nix give exit 4 naming both and stay byte for byte; with
// --force they are overwritten; a generated file edited afterwards is
// refused again; install gives the same refusal at its review.
func TestRenderBinaryRefusesFilesItDidNotWrite(t *testing.T) {
	dir := t.TempDir()
	state, out := filepath.Join(dir, "state"), filepath.Join(dir, "flake")
	os.MkdirAll(filepath.Join(out, "modules"), 0o755)
	os.WriteFile(filepath.Join(out, "flake.nix"), []byte("{ outputs = _: { }; } # mine\n"), 0o644)
	os.WriteFile(filepath.Join(out, "modules", "base.nix"), []byte("{ ... }: { } # mine\n"), 0o644)
	before := folderSums(t, out)

	code, stdout, stderr := runBin(t, state, nil, "render", "--answers", exampleA, "--out", out)
	if code != exitRefused {
		t.Fatalf("render over the user's files: exit %d, want %d\n%s%s", code, exitRefused, stdout, stderr)
	}
	for _, want := range []string{"flake.nix and modules/base.nix are not written by homestaker", "--force", "nothing was changed"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	sameFolder(t, "refused render", before, folderSums(t, out))

	// install's review shows the same refusal, before writing anything.
	code, stdout, stderr = runBin(t, state, []string{"HOMESTAKER_SYSTEM_ROOT=" + mustAbs(t, "disk/testdata/server-2nvme"), "HOME=" + dir},
		"install", "--answers", exampleA, "--out", out, "--flake-only")
	if code != exitRefused || !strings.Contains(stdout, "! foreign   flake.nix") || !strings.Contains(stderr, "modules/base.nix") {
		t.Errorf("install over the user's files: exit %d, want %d\n%s%s", code, exitRefused, stdout, stderr)
	}
	sameFolder(t, "refused install", before, folderSums(t, out))

	code, stdout, stderr = runBin(t, state, nil, "render", "--answers", exampleA, "--out", out, "--force")
	if code != exitOK || !strings.Contains(stdout, "! overwrite "+filepath.Join(out, "flake.nix")) {
		t.Fatalf("render --force: exit %d\n%s%s", code, stdout, stderr)
	}
	if got, _ := os.ReadFile(filepath.Join(out, "flake.nix")); strings.Contains(string(got), "# mine") {
		t.Error("--force did not overwrite flake.nix")
	}

	// The user edits a generated file: refused, unchanged.
	def := filepath.Join(out, "hosts", "beta", "default.nix")
	edited := append(mustRead(t, def), "# my change\n"...)
	os.WriteFile(def, edited, 0o644)
	before = folderSums(t, out)
	code, _, stderr = runBin(t, state, nil, "render", "--answers", exampleA, "--out", out)
	if code != exitRefused || !strings.Contains(stderr, "hosts/beta/default.nix was edited since homestaker wrote it") {
		t.Errorf("render over an edited default.nix: exit %d\n%s", code, stderr)
	}
	sameFolder(t, "refused render of an edited file", before, folderSums(t, out))
	// local.nix is the user's: editing it is fine.
	os.WriteFile(def, edited[:len(edited)-len("# my change\n")], 0o644)
	os.WriteFile(filepath.Join(out, "hosts", "beta", "local.nix"), []byte("{ ... }: { }\n"), 0o644)
	if code, _, stderr := runBin(t, state, nil, "render", "--answers", exampleA, "--out", out); code != exitOK {
		t.Errorf("render after an edited local.nix: exit %d\n%s", code, stderr)
	}
}

// TestRenderBinaryRemovesStaleTemporaries: what a killed render left (old
// per-file temporaries, a staging folder) goes on the next run, and the
// generated .gitignore ignores them.
func TestRenderBinaryRemovesStaleTemporaries(t *testing.T) {
	dir := t.TempDir()
	state, out := filepath.Join(dir, "state"), filepath.Join(dir, "flake")
	if code, _, stderr := runBin(t, state, nil, "render", "--answers", exampleA, "--out", out); code != exitOK {
		t.Fatalf("render: exit %d\n%s", code, stderr)
	}
	stale := []string{".flake.nix.tmp-2718281", "modules/.base.nix.tmp-31415", "hosts/beta/.secrets.yaml.tmp-16180", ".homestaker/stage-42/tree/flake.nix"}
	for _, s := range stale {
		p := filepath.Join(out, filepath.FromSlash(s))
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte("half a file"), 0o644)
	}
	if git, err := exec.LookPath("git"); err == nil {
		exec.Command(git, "-C", out, "init", "-q").Run()
		for _, s := range stale {
			if err := exec.Command(git, "-C", out, "check-ignore", "-q", s).Run(); err != nil {
				t.Errorf(".gitignore does not ignore %s", s)
			}
		}
		if exec.Command(git, "-C", out, "check-ignore", "-q", ".homestaker/files.json").Run() == nil {
			t.Error(".gitignore ignores the manifest, which belongs to the flake")
		}
		os.RemoveAll(filepath.Join(out, ".git"))
	}
	code, stdout, stderr := runBin(t, state, nil, "render", "--answers", exampleA, "--out", out)
	if code != exitOK {
		t.Fatalf("render: exit %d\n%s", code, stderr)
	}
	for _, s := range stale {
		if _, err := os.Stat(filepath.Join(out, filepath.FromSlash(s))); !os.IsNotExist(err) {
			t.Errorf("%s is still there", s)
		}
	}
	if !strings.Contains(stdout, "- remove "+filepath.Join(out, ".flake.nix.tmp-2718281")) {
		t.Errorf("the removal is not shown:\n%s", stdout)
	}
	if _, err := os.Stat(filepath.Join(out, ".homestaker", "stage-42")); !os.IsNotExist(err) {
		t.Error("the stale staging folder is still there")
	}
}

// TestRenderBinaryCtrlC sends SIGINT to the real binary while it stages
// (slowed down by the test hook): exit 130 and the folder as it was, both
// for a new flake and for one that gains a second host.
func TestRenderBinaryCtrlC(t *testing.T) {
	for _, start := range []string{"new folder", "second host"} {
		t.Run(start, func(t *testing.T) {
			dir := t.TempDir()
			state, out := filepath.Join(dir, "state"), filepath.Join(dir, "flake")
			if start == "second host" {
				if code, _, stderr := runBin(t, state, nil, "render", "--answers", exampleA, "--out", out); code != exitOK {
					t.Fatalf("render: exit %d\n%s", code, stderr)
				}
			}
			before := folderSums(t, out)
			cmd := binCmd(t, state, []string{renderDelayEnv + "=100ms"}, "render", "--answers", exampleB, "--out", out)
			var errb bytes.Buffer
			cmd.Stderr = &errb
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// Wait until files are being staged, then interrupt.
			deadline := time.Now().Add(20 * time.Second)
			for {
				if m, _ := filepath.Glob(filepath.Join(out, ".homestaker", "stage-*", "tree", "*")); len(m) > 0 {
					break
				}
				if time.Now().After(deadline) {
					cmd.Process.Kill()
					t.Fatalf("the render never started staging: %s", errb.String())
				}
				time.Sleep(20 * time.Millisecond)
			}
			time.Sleep(250 * time.Millisecond)
			cmd.Process.Signal(syscall.SIGINT)
			err := cmd.Wait()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			}
			if code != exitInterrupt || !strings.Contains(errb.String(), "interrupted") {
				t.Errorf("exit %d after SIGINT, want %d\n%s", code, exitInterrupt, errb.String())
			}
			sameFolder(t, "interrupted render", before, folderSums(t, out))
		})
	}
}

// TestRenderBinaryFullDisk renders onto a real, nearly full tmpfs (root):
// ENOSPC in the middle of the render leaves the flake byte-identical.
func TestRenderBinaryFullDisk(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireTool(t, "mount")
	dir := t.TempDir()
	mnt := filepath.Join(dir, "tiny")
	os.Mkdir(mnt, 0o755)
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", mnt).CombinedOutput(); err != nil {
		testutil.Missing(t, "a tmpfs mount: "+strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() { exec.Command("umount", mnt).Run() })
	state, out := filepath.Join(dir, "state"), filepath.Join(mnt, "flake")
	if code, _, stderr := runBin(t, state, nil, "render", "--answers", exampleA, "--out", out); code != exitOK {
		t.Fatalf("render: exit %d\n%s", code, stderr)
	}
	// Fill the filesystem, then free 12 KiB: a few files of the second
	// host fit, the rest hits ENOSPC.
	filler := filepath.Join(mnt, "filler")
	f, _ := os.Create(filler)
	chunk := make([]byte, 4096)
	for {
		if _, err := f.Write(chunk); err != nil {
			break
		}
	}
	f.Close()
	st, _ := os.Stat(filler)
	os.Truncate(filler, st.Size()-12<<10)
	before := folderSums(t, out)
	code, stdout, stderr := runBin(t, state, nil, "render", "--answers", exampleB, "--out", out)
	if code != exitFailure || !strings.Contains(stderr, "no space left on device") {
		t.Fatalf("render onto a full disk: exit %d, want %d\n%s%s", code, exitFailure, stdout, stderr)
	}
	sameFolder(t, "render onto a full disk", before, folderSums(t, out))
	// With room again the same render goes through.
	os.Remove(filler)
	if code, _, stderr := runBin(t, state, nil, "render", "--answers", exampleB, "--out", out); code != exitOK {
		t.Fatalf("render with room: exit %d\n%s", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(out, "hosts", "pi", "homestaker.json")); err != nil {
		t.Error(err)
	}
}

// TestDiskFormatKilledLeavesNoKeyOutside kills `disk format --image` with
// SIGKILL while mkfs runs (a stand-in mkfs that waits): the copy of the host
// key it staged must be in the private folder only — not in the temporary
// folder, not next to the image — and the next format removes it.
func TestDiskFormatKilledLeavesNoKeyOutside(t *testing.T) {
	testutil.RequireTool(t, "mkfs.xfs")
	testutil.RequireTool(t, "mkfs.vfat")
	dir := t.TempDir()
	state, out := filepath.Join(dir, "state"), filepath.Join(dir, "flake")
	tmp, imgDir, shims := filepath.Join(dir, "tmp"), filepath.Join(dir, "images"), filepath.Join(dir, "bin")
	for _, d := range []string{tmp, imgDir, shims} {
		os.Mkdir(d, 0o755)
	}
	// exampleB (pi) is ext4 in place; the ISO example is xfs: take it.
	answers := "examples/hoodi-nethermind-teku-iso.json"
	if code, _, stderr := runBin(t, state, nil, "render", "--answers", answers, "--out", out); code != exitOK {
		t.Fatalf("render: exit %d\n%s", code, stderr)
	}
	private := filepath.Join(state, "homestaker")
	key := mustRead(t, filepath.Join(private, "hosts", "hoodi-box", "ssh_host_ed25519_key"))
	started := filepath.Join(dir, "mkfs-started")
	for _, name := range []string{"mkfs.xfs", "mkfs.ext4", "mkfs.btrfs"} {
		script := "#!/bin/sh\necho $$ > " + started + "\nexec sleep 60\n"
		os.WriteFile(filepath.Join(shims, name), []byte(script), 0o755)
	}
	img := filepath.Join(imgDir, "data.img")
	cmd := binCmd(t, state, []string{"TMPDIR=" + tmp, "PATH=" + shims + ":" + os.Getenv("PATH")},
		"disk", "format", "--answers", answers, "--image", img, "--size", "4G")
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for !exists(started) {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("mkfs never started: %s", errb.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // the pid is written
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	if pid, err := strconv.Atoi(strings.TrimSpace(string(mustRead(t, started)))); err == nil {
		syscall.Kill(pid, syscall.SIGKILL)
	}

	// Where the key is now, other than its own file and the image.
	find := func() (outside, inside []string) {
		for _, root := range []string{tmp, imgDir, os.TempDir(), private} {
			filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
				if err != nil || !info.Mode().IsRegular() || p == img || info.Size() > 64<<20 {
					return nil
				}
				if data, err := os.ReadFile(p); err == nil && bytes.Contains(data, key) {
					if strings.HasPrefix(p, private+string(os.PathSeparator)) {
						inside = append(inside, p)
					} else {
						outside = append(outside, p)
					}
				}
				return nil
			})
		}
		return
	}
	outside, inside := find()
	for _, p := range outside {
		t.Errorf("after kill -9 of disk format, a copy of the host key is outside the private folder: %s", p)
	}
	copies := 0
	for _, p := range inside {
		if strings.Contains(p, "homestaker-disk-") {
			copies++
			if info, _ := os.Stat(filepath.Dir(p)); info.Mode().Perm()&0o077 != 0 {
				t.Errorf("%s is in a folder others can open", p)
			}
		}
	}
	if copies == 0 {
		t.Fatalf("the killed format staged no key copy at all: the kill came too late to test anything (%s)", errb.String())
	}

	// The next format (real mkfs) removes the stale copy.
	code, _, stderr := runBin(t, state, []string{"TMPDIR=" + tmp}, "disk", "format", "--answers", answers, "--image", img, "--yes", "--confirm-device", img)
	if code != exitOK {
		t.Fatalf("disk format again: exit %d\n%s", code, stderr)
	}
	if !strings.Contains(stderr, "removed the stale work folder") {
		t.Errorf("the stale work folder's removal is not reported:\n%s", stderr)
	}
	outside, inside = find()
	for _, p := range append(outside, inside...) {
		if !strings.HasSuffix(p, "ssh_host_ed25519_key") || strings.Contains(p, "homestaker-disk-") {
			t.Errorf("after the next format a host key copy is still at %s", p)
		}
	}
	if info, err := os.Stat(img); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("the image holding the host key is not 0600: %v %v", info.Mode(), err)
	}
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func mustAbs(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
