package cli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/homestaker/homestaker/internal/testutil"
	"github.com/homestaker/homestaker/nixbuild"
)

// copySystemRoot copies a recorded machine (disk/testdata/<name>) to a temp
// dir, symbolic links as links, so a test may write its "disks".
func copySystemRoot(t *testing.T, name string) string {
	t.Helper()
	dst := t.TempDir()
	testutil.CopyTree(t, filepath.Join("disk", "testdata", name), dst)
	return dst
}

// firstMiB is the size and a checksum of the first MiB of a file.
func firstMiB(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	h := sha256.New()
	if _, err := io.Copy(h, io.LimitReader(f, 1<<20)); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%d %x", st.Size(), h.Sum(nil))
}

// nix28EvalError is what Debian's Nix 2.8 printed for a configuration that
// uses an option ethereum.nix does not have (nixbuild/testdata/eval/throw).
const nix28EvalError = "warning: the group 'nixbld' specified in 'build-users-group' does not exist\n" +
	"error: The option `services.ethereum.lighthouse-beacon' does not exist. Definition values:\n" +
	"       - In `/nix/store/x-source/hosts/node1/default.nix'\n" +
	"(use '--show-trace' to show detailed location information)\n"

// fakeInstall is a copy of the recorded server whose free NVMe disk is a
// file holding old data, with nix faked: evaluate answers the nix eval, the
// build is replayed.
type fakeInstall struct {
	t        *testing.T
	vars     map[string]string
	deps     buildDeps
	answers  string
	device   string
	home     string
	diskFile string
	calls    []string
}

func newFakeInstall(t *testing.T, evaluate func(c nixbuild.NixCommand) error) *fakeInstall {
	t.Helper()
	root := copySystemRoot(t, "server-2nvme")
	f := &fakeInstall{t: t, diskFile: filepath.Join(root, "dev", "nvme1n1"), home: t.TempDir(),
		device: "/dev/disk/by-id/nvme-SAMSUNG_MZQL23T8HCLS-00A07_S64HNE0R600002"}
	if err := os.WriteFile(f.diskFile, bytes.Repeat([]byte("old chain data "), 1<<16), 0o644); err != nil {
		t.Fatal(err)
	}
	f.answers = writeAnswers(t, f.device)
	tree := fakeKexecTree(t)
	f.deps = defaultBuildDeps()
	f.deps.lookPath = func(string) (string, error) { return "/usr/bin/nix", nil }
	f.deps.run = func(ctx context.Context, c nixbuild.NixCommand) error {
		f.calls = append(f.calls, c.Args[0])
		switch c.Args[0] {
		case "--version":
			io.WriteString(c.Stdout, "nix (Nix) 2.26.3\n")
			return nil
		case "eval":
			return evaluate(c)
		case "build":
			data, err := os.ReadFile(filepath.Join("nixbuild", "testdata", "build", "kexec.log"))
			if err != nil {
				t.Fatal(err)
			}
			c.Stderr.Write(data)
			io.WriteString(c.Stdout, `[{"drvPath":"/nix/store/x-kexec-tree.drv","outputs":{"out":"`+tree+`"}}]`)
			return nil
		}
		t.Errorf("unexpected nix %q", c.Args)
		return errors.New("unexpected")
	}
	f.vars = map[string]string{"HOME": f.home, "XDG_STATE_HOME": filepath.Join(f.home, "state"), systemRootEnv: root, "TERM": "dumb"}
	return f
}

// run runs homestaker with args and stdin in the fake machine.
func (f *fakeInstall) run(stdin string, args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	env := &cliEnv{stdin: strings.NewReader(stdin), stdout: &out, stderr: &errb, getenv: func(k string) string { return f.vars[k] }, build: &f.deps}
	code = run(context.Background(), env, args)
	return code, out.String(), errb.String()
}

// install runs install --answers --yes --confirm-device.
func (f *fakeInstall) install() (int, string, string) {
	return f.run("", "install", "--answers", f.answers, "--out", filepath.Join(f.home, "flake"), "--yes", "--confirm-device", f.device)
}

// installWithFakeNix runs install --answers --yes --confirm-device in a
// fakeInstall.
func installWithFakeNix(t *testing.T, evaluate func(c nixbuild.NixCommand) error) (code int, stdout, stderr string, calls []string, diskFile string) {
	t.Helper()
	f := newFakeInstall(t, evaluate)
	code, stdout, stderr = f.install()
	return code, stdout, stderr, f.calls, f.diskFile
}

// TestPlainHomestakerOffersToResume: after an install stopped (here: Nix
// refused the configuration), a plain homestaker shows how it ended and
// offers to resume it; resumed, it asks for the disk again (it was not
// erased yet) and goes on from the journal's own request.
func TestPlainHomestakerOffersToResume(t *testing.T) {
	refuse := true
	f := newFakeInstall(t, func(c nixbuild.NixCommand) error {
		if refuse {
			io.WriteString(c.Stderr, nix28EvalError)
			return errors.New("exit status 1")
		}
		io.WriteString(c.Stdout, "/nix/store/x-kexec-tree.drv")
		return nil
	})
	if code, _, stderr := f.install(); code != exitFailure {
		t.Fatalf("install: exit %d, want the evaluation's failure\n%s", code, stderr)
	}
	refuse = false
	// "2": start the wizard instead; its input then ends at once.
	code, stdout, _ := f.run("2\n")
	if !strings.Contains(stdout, "The last apply (install of node1, started ") || !strings.Contains(stdout, "  failed   evaluate ") || code == exitOK {
		t.Errorf("the stopped apply was not shown, or the wizard did not start: exit %d\n%s", code, stdout)
	}
	if firstMiB(t, f.diskFile) != firstMiB(t, writeOldData(t)) {
		t.Fatal("the data disk changed without a resume")
	}
	// A wrong disk name stops it.
	if code, _, stderr := f.run("1\n/dev/nvme0n1\n"); code != exitRefused || !strings.Contains(stderr, "nothing was changed") {
		t.Errorf("a wrong disk name: exit %d\n%s", code, stderr)
	}
	f.calls = nil
	code, stdout, stderr := f.run("1\n" + f.device + "\n")
	for _, want := range []string{"[1/6] Keys and flake of node1", "[2/6] Evaluate the configuration of node1", "[4/6] Erase and format the data disk", "write the GPT to /dev/nvme1n1"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("the resumed apply lacks %q: exit %d\n%s\n%s", want, code, stdout, stderr)
		}
	}
	if got := strings.Join(f.calls, " "); got != "--version eval build" {
		t.Errorf("nix ran %q in the resumed apply", got)
	}
	if firstMiB(t, f.diskFile) == firstMiB(t, writeOldData(t)) {
		t.Error("the resumed apply did not reach the disk")
	}
}

// TestInstallStopsWhenEvaluationFails: the evaluation runs before the data
// disk is touched; when Nix refuses the configuration, install prints the
// evaluator's message, builds nothing and leaves the disk as it was.
func TestInstallStopsWhenEvaluationFails(t *testing.T) {
	code, stdout, stderr, calls, diskFile := installWithFakeNix(t, func(c nixbuild.NixCommand) error {
		io.WriteString(c.Stderr, nix28EvalError)
		return errors.New("exit status 1")
	})
	if code != exitFailure {
		t.Errorf("exit %d, want %d\n%s\n%s", code, exitFailure, stdout, stderr)
	}
	for _, want := range []string{
		"the configuration of host node1 does not evaluate; nothing was built:\n  error: The option `services.ethereum.lighthouse-beacon' does not exist. Definition values:\n  - In `/nix/store/x-source/hosts/node1/default.nix'\n",
		"the data disk /dev/disk/by-id/nvme-SAMSUNG_MZQL23T8HCLS-00A07_S64HNE0R600002 was not touched",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if strings.Contains(stderr, "build-users-group") || strings.Contains(stderr, "use '--show-trace'") {
		t.Errorf("nix's warnings or hint were not trimmed:\n%s", stderr)
	}
	if strings.Contains(stdout, "[4/5] Erase and format") || strings.Join(calls, " ") != "--version eval" {
		t.Errorf("went on after the evaluation failed: nix ran %q\n%s", calls, stdout)
	}
	want := firstMiB(t, writeOldData(t))
	if got := firstMiB(t, diskFile); got != want {
		t.Errorf("the data disk changed: %s, was %s", got, want)
	}
}

// writeOldData writes, in a temp file, what installWithFakeNix puts on the
// disk, to compare with.
func writeOldData(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "old")
	if err := os.WriteFile(p, bytes.Repeat([]byte("old chain data "), 1<<16), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestInstallGoesOnWhenEvaluationPasses: with an evaluation that passes,
// install builds, then goes on to the data disk (a file here, so the
// kernel's re-read of its partition table fails after the GPT is written).
func TestInstallGoesOnWhenEvaluationPasses(t *testing.T) {
	code, stdout, stderr, calls, diskFile := installWithFakeNix(t, func(c nixbuild.NixCommand) error {
		io.WriteString(c.Stdout, "/nix/store/x-kexec-tree.drv")
		return nil
	})
	if got := strings.Join(calls, " "); got != "--version eval build" {
		t.Errorf("nix ran %q, want the evaluation, then the build", got)
	}
	i, j := strings.Index(stdout, "[3/6] Build the kexec tree"), strings.Index(stdout, "[4/6] Erase and format the data disk")
	if i < 0 || j < i {
		t.Fatalf("exit %d: the steps did not run in order:\n%s\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "write the GPT to /dev/nvme1n1") {
		t.Errorf("the disk was not written:\n%s\n%s", stdout, stderr)
	}
	if firstMiB(t, diskFile) == firstMiB(t, writeOldData(t)) {
		t.Errorf("the data disk is unchanged after the disk step")
	}
}

// TestResumeRefusesAnotherDiskUnderTheConfirmedName: the answers name the
// data disk by its kernel name. The install stops before the disk step;
// before it is resumed, another disk comes to answer to that name (the
// machine restarted and numbered its disks anew). The plain homestaker's
// resume asks for the name again, and the user types the same name; the
// disk step must still refuse, since the disk is not the one confirmed at
// the review (by-id name, size), and write nothing.
func TestResumeRefusesAnotherDiskUnderTheConfirmedName(t *testing.T) {
	refuse := true
	f := newFakeInstall(t, func(c nixbuild.NixCommand) error {
		if refuse {
			io.WriteString(c.Stderr, nix28EvalError)
			return errors.New("exit status 1")
		}
		io.WriteString(c.Stdout, "/nix/store/x-kexec-tree.drv")
		return nil
	})
	f.device = "/dev/nvme1n1"
	f.answers = writeAnswers(t, f.device)
	if code, _, stderr := f.install(); code != exitFailure {
		t.Fatalf("install: exit %d, want the evaluation's failure\n%s", code, stderr)
	}
	refuse = false
	root := f.vars[systemRootEnv]
	byID := filepath.Join(root, "dev", "disk", "by-id")
	entries, _ := os.ReadDir(byID)
	for _, e := range entries {
		if link, _ := os.Readlink(filepath.Join(byID, e.Name())); link == "../../nvme1n1" {
			os.Remove(filepath.Join(byID, e.Name()))
		}
	}
	if err := os.Symlink("../../nvme1n1", filepath.Join(byID, "nvme-WDC_BACKUP_DISK_SERIAL9")); err != nil {
		t.Fatal(err)
	}
	before := firstMiB(t, f.diskFile)
	code, stdout, stderr := f.run("1\n" + f.device + "\n")
	if code != exitRefused || !strings.Contains(stderr, "is not the disk confirmed at the review") {
		t.Errorf("resume with another disk at %s: exit %d, want %d and the refusal\n%s\n%s", f.device, code, exitRefused, stdout, stderr)
	}
	if firstMiB(t, f.diskFile) != before {
		t.Error("the resumed apply wrote a disk that was not the one confirmed")
	}
}
