package cli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/homestaker/homestaker/nixbuild"
)

// copySystemRoot copies a recorded machine (disk/testdata/<name>) to a temp
// dir, symbolic links as links, so a test may write its "disks".
func copySystemRoot(t *testing.T, name string) string {
	t.Helper()
	src := filepath.Join("disk", "testdata", name)
	dst := t.TempDir()
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		to := filepath.Join(dst, rel)
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			link, err := os.Readlink(path)
			if err != nil {
				return err
			}
			return os.Symlink(link, to)
		case d.IsDir():
			return os.MkdirAll(to, 0o755)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(to, data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
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

// installWithFakeNix runs install --answers --yes --confirm-device on a copy
// of the recorded server whose free NVMe disk is a file holding old data,
// with nix faked by evaluate (the nix eval) and a replayed build.
func installWithFakeNix(t *testing.T, evaluate func(c nixbuild.NixCommand) error) (code int, stdout, stderr string, calls []string, diskFile string) {
	t.Helper()
	root := copySystemRoot(t, "server-2nvme")
	diskFile = filepath.Join(root, "dev", "nvme1n1")
	if err := os.WriteFile(diskFile, bytes.Repeat([]byte("old chain data "), 1<<16), 0o644); err != nil {
		t.Fatal(err)
	}
	const device = "/dev/disk/by-id/nvme-SAMSUNG_MZQL23T8HCLS-00A07_S64HNE0R600002"
	answers := writeAnswers(t, device)
	home := t.TempDir()
	tree := fakeKexecTree(t)
	deps := defaultBuildDeps()
	deps.lookPath = func(string) (string, error) { return "/usr/bin/nix", nil }
	deps.run = func(ctx context.Context, c nixbuild.NixCommand) error {
		calls = append(calls, c.Args[0])
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
	var out, errb bytes.Buffer
	vars := map[string]string{"HOME": home, "XDG_STATE_HOME": filepath.Join(home, "state"), systemRootEnv: root, "TERM": "dumb"}
	env := &cliEnv{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(k string) string { return vars[k] }, build: &deps}
	code = run(context.Background(), env, []string{"install", "--answers", answers, "--out", filepath.Join(home, "flake"), "--yes", "--confirm-device", device})
	return code, out.String(), errb.String(), calls, diskFile
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
