package cli

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// runInstallCLI runs homestaker with a home folder and the recorded server.
func runInstallCLI(t *testing.T, home, stdin string, args ...string) (int, string, string) {
	t.Helper()
	root, _ := filepath.Abs("disk/testdata/server-2nvme")
	var out, errb bytes.Buffer
	env := &cliEnv{stdin: strings.NewReader(stdin), stdout: &out, stderr: &errb, getenv: func(k string) string {
		switch k {
		case "HOME":
			return home
		case systemRootEnv:
			return root
		case "TERM":
			return "dumb"
		}
		return ""
	}}
	code := run(context.Background(), env, args)
	return code, out.String(), errb.String()
}

func TestInstallAnswersDryRunChangesNothing(t *testing.T) {
	home := t.TempDir()
	out := filepath.Join(home, "flake")
	code, stdout, stderr := runInstallCLI(t, home, "", "install", "--answers", "examples/mainnet-erigon-lighthouse.json", "--out", out, "--dry-run")
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	for _, want := range []string{"beta: x86_64 on mainnet, erigon + lighthouse", "+ create    flake.nix", "not on this machine", "dry run: nothing was changed"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("dry run does not show %q:\n%s", want, stdout)
		}
	}
	if entries, _ := os.ReadDir(home); len(entries) != 0 {
		t.Errorf("--dry-run wrote %d entries in HOME", len(entries))
	}
}

func TestInstallAnswersFlakeOnlyAndRefusals(t *testing.T) {
	home := t.TempDir()
	out := filepath.Join(home, "flake")
	if code, _, stderr := runInstallCLI(t, home, "", "install", "--answers", "examples/mainnet-erigon-lighthouse.json", "--yes"); code != exitUsage {
		t.Errorf("--yes without --confirm-device: exit %d: %s", code, stderr)
	}
	code, stdout, stderr := runInstallCLI(t, home, "", "install", "--answers", "examples/mainnet-erigon-lighthouse.json", "--out", out, "--flake-only")
	if code != exitOK {
		t.Fatalf("--flake-only: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if _, err := os.Stat(filepath.Join(out, "hosts", "beta", "homestaker.json")); err != nil {
		t.Errorf("no answers file: %v", err)
	}
}

// TestWizardLinesWithoutTTY runs the bare command with piped answers (as
// `ssh host homestaker` without -t does) and gets a flake.
func TestWizardLinesWithoutTTY(t *testing.T) {
	home := t.TempDir()
	script := strings.Join([]string{"", "1", "gamma", "UTC", "2", "1", "1", "y", e2eFee, "", "", "", "", "", "", "", "1", "1", "1", e2eKey, "", "1", "1", filepath.Join(home, "flake"), "1"}, "\n") + "\n"
	code, stdout, stderr := runInstallCLI(t, home, script)
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "== Review ==") {
		t.Errorf("no review:\n%s", stdout)
	}
	if _, err := os.Stat(filepath.Join(home, "flake", "hosts", "gamma", "homestaker.json")); err != nil {
		t.Errorf("no answers file: %v\n%s", err, stdout)
	}
	// The input ending early is an error that writes nothing.
	home2 := t.TempDir()
	code, _, stderr = runInstallCLI(t, home2, "\n1\n")
	if code != exitUsage || !strings.Contains(stderr, "input ended") || !strings.Contains(stderr, "--answers FILE") {
		t.Errorf("short input: exit %d: %s", code, stderr)
	}
	if entries, _ := os.ReadDir(home2); len(entries) != 0 {
		t.Errorf("short input wrote files")
	}
}

// TestWizardHangupKeepsDraft drops the terminal mid-wizard (SIGHUP), then
// starts again and resumes.
func TestWizardHangupKeepsDraft(t *testing.T) {
	bin := buildBinary(t)
	home := t.TempDir()
	s := startWizard(t, bin, home)
	s.answer("Node name", "C-u")
	s.typeText("hupnode")
	s.waitFor("> hupnode")
	if err := exec.Command("tmux", "kill-session", "-t", s.name).Run(); err != nil {
		t.Fatal(err)
	}
	draftPath := filepath.Join(home, ".local", "state", "homestaker", "draft.json")
	var data []byte
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if data, _ = os.ReadFile(draftPath); len(data) > 0 {
			break
		}
	}
	if !strings.Contains(string(data), `"hostName": "hupnode"`) {
		t.Fatalf("draft after SIGHUP: %q", data)
	}
	if st, err := os.Stat(draftPath); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("draft mode: %v %v", st.Mode(), err)
	}
	root, _ := filepath.Abs("disk/testdata/server-2nvme")
	s2 := startTmux(t, []string{"HOME=" + home, "HOMESTAKER_SYSTEM_ROOT=" + root}, bin)
	s2.answer("Resume where you left off", "Enter")
	s2.answer("What will the node run on?", "Enter")
	s2.waitFor("> hupnode")
}

// TestWizardDryRunWritesNothing: `homestaker install --dry-run` without
// --answers runs the wizard; its review is the end of it. Choosing to
// write the flake (or to apply) at the review must not write anything.
func TestWizardDryRunWritesNothing(t *testing.T) {
	home := t.TempDir()
	script := strings.Join([]string{"", "1", "gamma", "UTC", "2", "1", "1", "y", e2eFee, "", "", "", "", "", "", "", "1", "1", "1", e2eKey, "", "1", "1", filepath.Join(home, "flake"), "1"}, "\n") + "\n"
	code, stdout, stderr := runInstallCLI(t, home, script, "install", "--dry-run")
	if code != exitOK || !strings.Contains(stdout, "== Review ==") || !strings.Contains(stdout, "dry run: nothing was changed") {
		t.Errorf("install --dry-run (wizard): exit %d\n%s\n%s", code, stdout, stderr)
	}
	var written []string
	filepath.WalkDir(home, func(p string, d os.DirEntry, err error) error {
		if err == nil && p != home {
			written = append(written, p)
		}
		return nil
	})
	if len(written) != 0 {
		t.Errorf("install --dry-run (wizard) wrote %v", written)
	}
}
