package cli

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/homestaker/homestaker/disk"
	"github.com/homestaker/homestaker/internal/testutil"
	"github.com/homestaker/homestaker/plan"
	"github.com/homestaker/homestaker/secrets"
)

// renderExample renders examples/<name> into a temp flake with a temp state
// folder (XDG_STATE_HOME, so the private folder is render's default) and
// returns the flake folder, the environment and the private folder.
func renderExample(t *testing.T, name string) (flake string, vars map[string]string, private string) {
	t.Helper()
	state := t.TempDir()
	flake = filepath.Join(t.TempDir(), "flake")
	vars = map[string]string{"XDG_STATE_HOME": state, "HOME": t.TempDir()}
	env, _, stderr := testEnv(vars)
	if code := run(context.Background(), env, []string{"render", "--answers", filepath.Join("examples", name), "--out", flake}); code != exitOK {
		t.Fatalf("render %s: exit %d: %s", name, code, stderr)
	}
	return flake, vars, filepath.Join(state, "homestaker")
}

// keyInImage reads the host key file back from the ext4 filesystem of an
// image that disk format wrote for p, with debugfs (no root, no mount).
func keyInImage(t *testing.T, p plan.Plan, img string, rel string) []byte {
	t.Helper()
	debugfs := testutil.RequireTool(t, "debugfs")
	st, err := os.Stat(img)
	if err != nil {
		t.Fatal(err)
	}
	layout, err := disk.New(p)
	if err != nil {
		t.Fatal(err)
	}
	placed, err := layout.Place(uint64(st.Size()), 512)
	if err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	cmd := exec.Command(debugfs, "-R", "cat /"+rel, img+"?offset="+strconv.FormatUint(placed.Data().StartBytes, 10))
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("debugfs: %v: %s", err, errOut.String())
	}
	return out.Bytes()
}

// TestDiskFormatPutsRenderedHostKey follows the printed steps: render, then
// `disk format --answers FILE` (here onto an image) without --host-key. The
// key on the data disk must be the one render made, which the secrets are
// encrypted to — for the flake's answers (with ssh.hostKey) and for the
// user's own answers file (without it), as the README prints it.
func TestDiskFormatPutsRenderedHostKey(t *testing.T) {
	testutil.RequireTool(t, "mkfs.ext4")
	flake, vars, private := renderExample(t, "mainnet-erigon-lighthouse.json")
	want, err := os.ReadFile(secrets.HostKeyPath(private, "beta"))
	if err != nil {
		t.Fatalf("render made no host key: %v", err)
	}
	wantPub, _ := os.ReadFile(secrets.HostKeyPath(private, "beta") + ".pub")
	for _, answers := range []string{filepath.Join(flake, "hosts", "beta", "homestaker.json"), filepath.Join("examples", "mainnet-erigon-lighthouse.json")} {
		img := filepath.Join(t.TempDir(), "data.img")
		code, _, errOut := runDiskCLIEnv(t, vars, "", "format", "--answers", answers, "--image", img, "--size", "4G")
		if code != exitOK {
			t.Fatalf("disk format --answers %s: exit %d: %s", answers, code, errOut)
		}
		p, _, err := readAnswers(answers)
		if err != nil {
			t.Fatal(err)
		}
		if got := keyInImage(t, p, img, disk.SSHHostKeyPath); !bytes.Equal(got, want) {
			t.Errorf("--answers %s: the key on the data disk is not the rendered one (%d bytes, want %d)", answers, len(got), len(want))
		}
		if got := keyInImage(t, p, img, disk.SSHHostKeyPath+".pub"); !bytes.Equal(got, wantPub) {
			t.Errorf("--answers %s: public key on the data disk %q, want %q", answers, got, wantPub)
		}
		if leaks := secrets.ScanBytes("stderr", []byte(errOut)); len(leaks) > 0 {
			t.Errorf("disk format printed key material:\n%s", errOut)
		}
	}
}

// TestDiskFormatRefusesWithoutHostKey: without the rendered key, or with a
// key other than the answers' ssh.hostKey, nothing is written and the
// message names the key file and what to do.
func TestDiskFormatRefusesWithoutHostKey(t *testing.T) {
	flake, vars, private := renderExample(t, "mainnet-erigon-lighthouse.json")
	answers := filepath.Join(flake, "hosts", "beta", "homestaker.json")

	// Another state folder: no key there.
	empty := map[string]string{"XDG_STATE_HOME": t.TempDir()}
	img := filepath.Join(t.TempDir(), "data.img")
	code, _, errOut := runDiskCLIEnv(t, empty, "", "format", "--answers", answers, "--image", img, "--size", "4G")
	missing := secrets.HostKeyPath(filepath.Join(empty["XDG_STATE_HOME"], "homestaker"), "beta")
	if code != exitRefused {
		t.Errorf("no key: exit %d, want %d: %s", code, exitRefused, errOut)
	}
	for _, want := range []string{missing + ") does not exist", "homestaker render --answers " + answers, "--private DIR", "--host-key FILE"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("no key: message lacks %q:\n%s", want, errOut)
		}
	}
	if _, err := os.Stat(img); err == nil {
		t.Error("the image was created although the key is missing")
	}
	// The dry run refuses the same way.
	if code, _, errOut := runDiskCLIEnv(t, empty, "", "format", "--answers", answers, "--image", img, "--size", "4G", "--dry-run"); code != exitRefused {
		t.Errorf("no key, dry run: exit %d: %s", code, errOut)
	}
	// --private names the folder render used; --host-key a missing file.
	if code, _, errOut := runDiskCLIEnv(t, empty, "", "format", "--answers", answers, "--private", private, "--image", img, "--size", "4G", "--dry-run"); code != exitOK {
		t.Errorf("--private: exit %d: %s", code, errOut)
	}
	nowhere := filepath.Join(t.TempDir(), "key")
	if code, _, errOut := runDiskCLIEnv(t, vars, "", "format", "--answers", answers, "--host-key", nowhere, "--image", img, "--size", "4G"); code != exitRefused || !strings.Contains(errOut, "host key file "+nowhere+" does not exist") {
		t.Errorf("missing --host-key: exit %d: %s", code, errOut)
	}

	// Another host's key is not the answers' ssh.hostKey.
	other, _, err := secrets.EnsureHostKey(t.TempDir(), "beta")
	if err != nil {
		t.Fatal(err)
	}
	p, _, _ := readAnswers(answers)
	code, _, errOut = runDiskCLIEnv(t, vars, "", "format", "--answers", answers, "--host-key", other.PrivatePath, "--image", img, "--size", "4G")
	if code != exitRefused {
		t.Errorf("other key: exit %d: %s", code, errOut)
	}
	for _, want := range []string{p.SSH.HostKey, other.PublicKey, other.PrivatePath, "ssh.hostKey"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("other key: message lacks %q:\n%s", want, errOut)
		}
	}
	if _, err := os.Stat(img); err == nil {
		t.Error("the image was created with the wrong key")
	}
	if leaks := secrets.ScanBytes("stderr", []byte(errOut)); len(leaks) > 0 {
		t.Errorf("printed key material:\n%s", errOut)
	}
}

// TestPrintedNextStepsWork takes the "Next:" line that install --flake-only
// prints and runs its disk format and build commands as printed (the disk
// onto an image file, nix faked), in order.
func TestPrintedNextStepsWork(t *testing.T) {
	testutil.RequireTool(t, "mkfs.ext4")
	home := t.TempDir()
	private := filepath.Join(t.TempDir(), "keys") // not the default: the line must name it
	out := filepath.Join(home, "flake")
	code, stdout, stderr := runInstallCLI(t, home, "", "install", "--answers", "examples/mainnet-erigon-lighthouse.json", "--out", out, "--private", private, "--flake-only")
	if code != exitOK {
		t.Fatalf("install --flake-only: exit %d\n%s\n%s", code, stdout, stderr)
	}
	cmds := regexp.MustCompile("`homestaker ([^`]*)`").FindAllStringSubmatch(stdout[strings.Index(stdout, "Next:"):], -1)
	if len(cmds) != 2 {
		t.Fatalf("Next: line has %d commands:\n%s", len(cmds), stdout)
	}
	diskArgs := strings.Fields(cmds[0][1])
	if diskArgs[0] != "disk" || !strings.Contains(cmds[0][1], "--private "+private) {
		t.Fatalf("disk command %q", cmds[0][1])
	}
	img := filepath.Join(t.TempDir(), "data.img")
	vars := map[string]string{"HOME": home}
	code, _, errOut := runDiskCLIEnv(t, vars, "", append(diskArgs[1:], "--image", img, "--size", "4G")...)
	if code != exitOK {
		t.Fatalf("%s --image: exit %d: %s", cmds[0][1], code, errOut)
	}
	p, _, _ := readAnswers(filepath.Join(out, "hosts", "beta", "homestaker.json"))
	want, _ := os.ReadFile(secrets.HostKeyPath(private, "beta"))
	if got := keyInImage(t, p, img, disk.SSHHostKeyPath); len(want) == 0 || !bytes.Equal(got, want) {
		t.Errorf("the key on the data disk is not the rendered one")
	}

	buildArgs := strings.Fields(cmds[1][1])
	if buildArgs[0] != "build" {
		t.Fatalf("build command %q", cmds[1][1])
	}
	env, _, errb := testEnv(vars)
	var calls []string
	deps := defaultBuildDeps()
	deps.lookPath = func(string) (string, error) { return "/usr/bin/nix", nil }
	deps.run = fakeNixRunner(t, "nix (Nix) 2.24.9", "kexec.log", `[{"drvPath":"/nix/store/x-kexec-tree.drv","outputs":{"out":"`+fakeKexecTree(t)+`"}}]`, nil, &calls)
	if code := runBuildWith(context.Background(), env, append(buildArgs[1:], "--plain", "--no-link"), deps); code != exitOK {
		t.Fatalf("%s: exit %d: %s", cmds[1][1], code, errb)
	}
}

// fakeKexecTree is a folder shaped like a built kexec tree.
func fakeKexecTree(t *testing.T) string {
	t.Helper()
	out := t.TempDir()
	for name, content := range map[string]string{"bzImage": "kernel", "initrd.zst": "initrd", "kexec-boot": "#!/bin/sh"} {
		if err := os.WriteFile(filepath.Join(out, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// TestREADMECommandsHaveTheirFlags checks that every homestaker command the
// README prints (in `code` or in a sh block) names a subcommand whose flags
// include every --flag it uses.
func TestREADMECommandsHaveTheirFlags(t *testing.T) {
	data, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, m := range regexp.MustCompile("`(homestaker(?: [^`]*)?)`").FindAllStringSubmatch(string(data), -1) {
		lines = append(lines, m[1])
	}
	for _, block := range regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllStringSubmatch(string(data), -1) {
		for _, m := range regexp.MustCompile(`(?m)^(homestaker [^#\n]*)`).FindAllStringSubmatch(block[1], -1) {
			lines = append(lines, m[1])
		}
	}
	checked := 0
	for _, line := range lines {
		words := strings.Fields(line)[1:]
		if len(words) == 0 {
			continue
		}
		sub := words[:1]
		if (words[0] == "disk" || words[0] == "boot" || words[0] == "image") && len(words) > 1 && !strings.HasPrefix(words[1], "-") {
			sub = words[:2]
		}
		env, stdout, stderr := testEnv(nil)
		if code := run(context.Background(), env, append(append([]string(nil), sub...), "--help")); code != exitOK {
			t.Errorf("README's %q: homestaker %s --help: exit %d: %s", line, strings.Join(sub, " "), code, stderr)
			continue
		}
		help := stdout.String() + stderr.String()
		for _, w := range words {
			if name, ok := strings.CutPrefix(w, "--"); ok {
				if !regexp.MustCompile(`(?m)^\s+-` + regexp.QuoteMeta(name) + `\b`).MatchString(help) {
					t.Errorf("README's %q: homestaker %s has no flag --%s:\n%s", line, strings.Join(sub, " "), name, help)
				}
				checked++
			}
		}
	}
	if checked < 8 {
		t.Errorf("only %d flags checked in %d README commands", checked, len(lines))
	}
}
