package cli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/homestaker/homestaker/boot"
	"github.com/homestaker/homestaker/internal/testutil"
	"github.com/homestaker/homestaker/nixbuild"
	"github.com/homestaker/homestaker/secrets"
)

// reconfHome is a home folder with a flake rendered from an answers file
// whose admin recipient is an identity the test holds.
type reconfHome struct {
	home, flake, private string
	admin                *age.X25519Identity
	root                 string // HOMESTAKER_SYSTEM_ROOT
	deps                 *buildDeps
	kexec                *kexecDeps
}

func (h *reconfHome) run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	return h.runInput(t, "", args...)
}

func (h *reconfHome) runInput(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	vars := map[string]string{"HOME": h.home, "XDG_STATE_HOME": filepath.Join(h.home, "state"), systemRootEnv: h.root, "TERM": "dumb"}
	env := &cliEnv{stdin: strings.NewReader(stdin), stdout: &out, stderr: &errb, getenv: func(k string) string { return vars[k] }, build: h.deps, kexec: h.kexec}
	code := run(context.Background(), env, args)
	return code, out.String(), errb.String()
}

// editAnswers reads an answers file as a map, lets edit change it and
// writes it to dir/name.
func editAnswers(t *testing.T, src, dst string, edit func(m map[string]any)) string {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	out, _ := json.MarshalIndent(m, "", "  ")
	if err := os.WriteFile(dst, out, 0o600); err != nil {
		t.Fatal(err)
	}
	return dst
}

func section(m map[string]any, keys ...string) map[string]any {
	for _, k := range keys {
		m = m[k].(map[string]any)
	}
	return m
}

// newReconfHome renders examples/mainnet-erigon-lighthouse.json (with the
// test's admin identity) on the recorded 2-NVMe server.
func newReconfHome(t *testing.T) *reconfHome {
	t.Helper()
	h := &reconfHome{home: t.TempDir()}
	h.root, _ = filepath.Abs("disk/testdata/server-2nvme")
	h.flake = filepath.Join(h.home, "flake")
	h.private = filepath.Join(h.home, "state", "homestaker")
	var err error
	if h.admin, err = age.GenerateX25519Identity(); err != nil {
		t.Fatal(err)
	}
	answers := editAnswers(t, "examples/mainnet-erigon-lighthouse.json", filepath.Join(t.TempDir(), "beta.json"), func(m map[string]any) {
		section(m, "secrets")["adminRecipients"] = []string{h.admin.Recipient().String()}
	})
	if code, _, stderr := h.run(t, "render", "--answers", answers, "--out", h.flake); code != exitOK {
		t.Fatalf("render: exit %d\n%s", code, stderr)
	}
	return h
}

// treeSums is a checksum of every file under each folder (path, mode,
// content), to prove that nothing was written.
func treeSums(t *testing.T, dirs ...string) string {
	t.Helper()
	var lines []string
	for _, dir := range dirs {
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				t.Fatal(err)
			}
			info, _ := d.Info()
			line := fmt.Sprintf("%s %v", p, info.Mode())
			if !d.IsDir() {
				data, _ := os.ReadFile(p)
				line += fmt.Sprintf(" %x", sha256.Sum256(data))
			}
			lines = append(lines, line)
			return nil
		})
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// sopsValues decrypts a secrets file with the real sops and the admin
// identity.
func sopsValues(t *testing.T, sops, file string, id *age.X25519Identity) map[string]string {
	t.Helper()
	cmd := exec.Command(sops, "-d", "--output-type", "json", file)
	cmd.Env = append(os.Environ(), "SOPS_AGE_KEY="+id.String())
	plain, err := cmd.Output()
	if err != nil {
		t.Fatalf("sops -d %s: %v", file, err)
	}
	var m map[string]string
	if err := json.Unmarshal(plain, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestReconfigureHeadless changes the graffiti and the execution client:
// the review names both answers and shows the changed lines of default.nix;
// --dry-run writes nothing; --flake-only writes the flake and keeps the host
// key byte for byte and every secret (the real sops decrypts the same
// values).
func TestReconfigureHeadless(t *testing.T) {
	sops := testutil.RequireTool(t, "sops")
	h := newReconfHome(t)
	secretsFile := filepath.Join(h.flake, "hosts", "beta", "secrets.yaml")
	before := sopsValues(t, sops, secretsFile, h.admin)
	if before["jwt"] == "" {
		t.Fatalf("no JWT in the rendered secrets: %v", keysOf(before))
	}
	hostKey, _ := os.ReadFile(filepath.Join(secrets.HostKeyDir(h.private, "beta"), "ssh_host_ed25519_key"))
	if len(hostKey) == 0 {
		t.Fatal("no host key in the private folder")
	}
	answers := editAnswers(t, filepath.Join(h.flake, "hosts", "beta", "homestaker.json"), filepath.Join(t.TempDir(), "new.json"), func(m map[string]any) {
		section(m, "ethereum", "validator")["graffiti"] = "reconfigured by homestaker"
		section(m, "ethereum")["execution"] = "geth"
	})

	sums := treeSums(t, h.home)
	code, stdout, stderr := h.run(t, "reconfigure", h.flake, "--answers", answers, "--dry-run")
	if code != exitOK {
		t.Fatalf("--dry-run: exit %d\n%s\n%s", code, stdout, stderr)
	}
	for _, want := range []string{
		"Execution client: erigon → geth",
		`Graffiti: "homestaker on NixOS" → "reconfigured by homestaker"`,
		"~ hosts/beta/default.nix",
		"--- a/hosts/beta/default.nix",
		"-  services.ethereum.erigon.mainnet = {",
		"+  services.ethereum.geth.mainnet = {",
		`-      graffiti = "\"homestaker on NixOS\"";`,
		`+      graffiti = "\"reconfigured by homestaker\"";`,
		"= hosts/beta/secrets.yaml (unchanged: every secret and recipient kept)",
		"keeps its layout and data (not formatted again)",
		"`homestaker kexec " + h.flake + " --host beta`",
		"dry run: nothing was changed",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("the review lacks %q:\n%s", want, stdout)
		}
	}
	if strings.Contains(stdout, "ENC[") || strings.Contains(stdout, "sops:") {
		t.Errorf("the review shows secrets.yaml's content:\n%s", stdout)
	}
	if got := treeSums(t, h.home); got != sums {
		t.Errorf("--dry-run changed files:\n%s", lineDiff(sums, got))
	}

	code, stdout, stderr = h.run(t, "reconfigure", h.flake, "--answers", answers, "--flake-only")
	if code != exitOK {
		t.Fatalf("--flake-only: exit %d\n%s\n%s", code, stdout, stderr)
	}
	def, _ := os.ReadFile(filepath.Join(h.flake, "hosts", "beta", "default.nix"))
	if !strings.Contains(string(def), "services.ethereum.geth.mainnet") || !strings.Contains(string(def), "reconfigured by homestaker") {
		t.Errorf("default.nix was not rewritten:\n%s", def)
	}
	after := sopsValues(t, sops, secretsFile, h.admin)
	if fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("the secrets changed: before %v, after %v", keysOf(before), keysOf(after))
	}
	if k, _ := os.ReadFile(filepath.Join(secrets.HostKeyDir(h.private, "beta"), "ssh_host_ed25519_key")); !bytes.Equal(k, hostKey) {
		t.Error("the host key file changed")
	}
	// Applied again with the same answers: nothing left to change.
	_, stdout, _ = h.run(t, "reconfigure", h.flake, "--answers", answers, "--dry-run")
	if !strings.Contains(stdout, "Answers: none changed") || !strings.Contains(stdout, "no file changes") {
		t.Errorf("a second review still shows changes:\n%s", stdout)
	}
}

func keysOf(m map[string]string) []string {
	var k []string
	for n := range m {
		k = append(k, n)
	}
	sort.Strings(k)
	return k
}

func lineDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	seen := map[string]bool{}
	for _, l := range al {
		seen[l] = true
	}
	var out []string
	for _, l := range bl {
		if !seen[l] {
			out = append(out, "+ "+l)
		}
	}
	return strings.Join(out, "\n")
}

// TestReconfigureRefusesDiskChange: a new filesystem (or device) without
// --format-disk is refused at the review (exit 4) with how to re-format,
// and nothing is written.
func TestReconfigureRefusesDiskChange(t *testing.T) {
	h := newReconfHome(t)
	sums := treeSums(t, h.home)
	for field, value := range map[string]string{"filesystem": "xfs", "device": "/dev/disk/by-id/nvme-SAMSUNG_MZQL23T8HCLS-00A07_S64HNE0R600002"} {
		answers := editAnswers(t, filepath.Join(h.flake, "hosts", "beta", "homestaker.json"), filepath.Join(t.TempDir(), "new.json"), func(m map[string]any) {
			section(m, "disk")[field] = value
		})
		for _, extra := range [][]string{nil, {"--flake-only"}, {"--yes"}} {
			args := append([]string{"reconfigure", h.flake, "--answers", answers}, extra...)
			code, stdout, stderr := h.run(t, args...)
			if code != exitRefused {
				t.Errorf("%s changed, %v: exit %d, want %d\n%s\n%s", field, extra, code, exitRefused, stdout, stderr)
			}
			for _, want := range []string{"the data disk keeps its layout", "--format-disk --yes --confirm-device"} {
				if !strings.Contains(stderr, want) {
					t.Errorf("%s changed: stderr lacks %q:\n%s", field, want, stderr)
				}
			}
		}
	}
	if got := treeSums(t, h.home); got != sums {
		t.Errorf("a refused reconfigure changed files:\n%s", lineDiff(sums, got))
	}
}

// TestReconfigureHosts: one host needs no --host; several need it (exit 2,
// naming them); an unknown host is named.
func TestReconfigureHosts(t *testing.T) {
	h := newReconfHome(t)
	if code, _, stderr := h.run(t, "reconfigure", h.flake, "--host", "nope", "--dry-run", "--answers", "x.json"); code != exitUsage || !strings.Contains(stderr, `no host "nope" (hosts: beta)`) {
		t.Errorf("unknown host: exit %d: %s", code, stderr)
	}
	second := editAnswers(t, filepath.Join(h.flake, "hosts", "beta", "homestaker.json"), filepath.Join(t.TempDir(), "gamma.json"), func(m map[string]any) {
		section(m, "host")["name"] = "gamma"
		delete(section(m, "ssh"), "hostKey")
	})
	if code, _, stderr := h.run(t, "render", "--answers", second, "--out", h.flake); code != exitOK {
		t.Fatalf("render gamma: %s", stderr)
	}
	code, _, stderr := h.run(t, "reconfigure", h.flake)
	if code != exitUsage || !strings.Contains(stderr, "several hosts (beta, gamma): choose one with --host NAME") {
		t.Errorf("several hosts: exit %d: %s", code, stderr)
	}
	// A private folder without the host key: refused, not a new key.
	code, _, stderr = h.run(t, "reconfigure", h.flake, "--host", "gamma", "--private", t.TempDir(), "--answers", second, "--dry-run")
	if code != exitRefused || !strings.Contains(stderr, "never makes a new one") {
		t.Errorf("no host key: exit %d: %s", code, stderr)
	}
}

// TestReconfigureRebuildsWithoutTouchingTheDisk: --yes rebuilds (the
// evaluation and the build through a faked nix) and never writes the data
// disk, here a file holding old data on a copy of the recorded server; the
// node is not this machine, so the command that boots it is printed. On a
// machine that is the node (NixOS named beta) the review boots it by kexec.
func TestReconfigureRebuildsWithoutTouchingTheDisk(t *testing.T) {
	h := &reconfHome{home: t.TempDir()}
	h.root = copySystemRoot(t, "server-2nvme")
	diskFile := filepath.Join(h.root, "dev", "nvme1n1")
	if err := os.WriteFile(diskFile, bytes.Repeat([]byte("old chain data "), 1<<16), 0o644); err != nil {
		t.Fatal(err)
	}
	const device = "/dev/disk/by-id/nvme-SAMSUNG_MZQL23T8HCLS-00A07_S64HNE0R600002"
	h.flake = filepath.Join(h.home, "flake")
	if code, _, stderr := h.run(t, "render", "--answers", writeAnswers(t, device), "--out", h.flake); code != exitOK {
		t.Fatalf("render: %s", stderr)
	}
	var calls []string
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
			io.WriteString(c.Stdout, "/nix/store/x-kexec-tree.drv")
			return nil
		case "build":
			io.WriteString(c.Stdout, `[{"drvPath":"/nix/store/x-kexec-tree.drv","outputs":{"out":"`+tree+`"}}]`)
			return nil
		}
		return errors.New("unexpected nix " + c.Args[0])
	}
	h.deps = &deps
	answers := editAnswers(t, filepath.Join(h.flake, "hosts", "node1", "homestaker.json"), filepath.Join(t.TempDir(), "new.json"), func(m map[string]any) {
		section(m, "ethereum", "validator")["graffiti"] = "rebuilt"
	})
	code, stdout, stderr := h.run(t, "reconfigure", h.flake, "--answers", answers)
	if code != exitRefused || !strings.Contains(stderr, "applying needs --yes") {
		t.Errorf("without --yes: exit %d: %s", code, stderr)
	}
	calls = nil
	code, stdout, stderr = h.run(t, "reconfigure", h.flake, "--answers", answers, "--yes")
	if code != exitOK {
		t.Fatalf("--yes: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if got := strings.Join(calls, " "); got != "--version eval build" {
		t.Errorf("nix ran %q, want the evaluation, then the build", got)
	}
	if strings.Contains(stdout, "Erase") || strings.Contains(stdout, "write the GPT") {
		t.Errorf("the disk step ran:\n%s", stdout)
	}
	// The data disk is here and free (a rescue system), so the rebuild
	// switches its boot entry; this one was never formatted by homestaker
	// and is left alone, with the reason.
	if !strings.Contains(stdout, "[4/4] Write the boot entry") || !strings.Contains(stdout, "no boot entry written: it has no readable GPT") {
		t.Errorf("the boot entry step did not run or did not say why it wrote nothing:\n%s", stdout)
	}
	if !strings.Contains(stdout, "[3/4] Build") || !strings.Contains(stdout, "`homestaker kexec "+h.flake+" --host node1`") {
		t.Errorf("stdout:\n%s", stdout)
	}
	if firstMiB(t, diskFile) != firstMiB(t, writeOldData(t)) {
		t.Error("the data disk was written")
	}

	// Re-formatting only when asked, and named.
	if code, _, stderr := h.run(t, "reconfigure", h.flake, "--answers", answers, "--format-disk", "--yes"); code != exitUsage {
		t.Errorf("--format-disk --yes without --confirm-device: exit %d: %s", code, stderr)
	}
	if code, _, stderr := h.run(t, "reconfigure", h.flake, "--answers", answers, "--format-disk", "--yes", "--confirm-device", "/dev/nvme0n1"); code != exitRefused || !strings.Contains(stderr, "does not name the disk") {
		t.Errorf("--confirm-device naming another disk: exit %d: %s", code, stderr)
	}
	if firstMiB(t, diskFile) != firstMiB(t, writeOldData(t)) {
		t.Error("the data disk was written by a refused re-format")
	}
	calls = nil
	_, stdout, stderr = h.run(t, "reconfigure", h.flake, "--answers", answers, "--format-disk", "--yes", "--confirm-device", device)
	if i, j := strings.Index(stdout, "[3/5] Build"), strings.Index(stdout, "[4/5] Erase and format the data disk"); i < 0 || j < i {
		t.Errorf("--format-disk: the disk step did not follow the build:\n%s\n%s", stdout, stderr)
	}
	if firstMiB(t, diskFile) == firstMiB(t, writeOldData(t)) {
		t.Error("--format-disk did not write the disk")
	}

	// The node itself: NixOS, host name node1.
	os.MkdirAll(filepath.Join(h.root, "etc"), 0o755)
	os.WriteFile(filepath.Join(h.root, "etc", "os-release"), []byte("NAME=NixOS\nID=nixos\n"), 0o644)
	os.MkdirAll(filepath.Join(h.root, "proc", "sys", "kernel"), 0o755)
	os.WriteFile(filepath.Join(h.root, "proc", "sys", "kernel", "hostname"), []byte("node1\n"), 0o644)
	answers = editAnswers(t, answers, answers, func(m map[string]any) { section(m, "ethereum", "validator")["graffiti"] = "again" })
	code, stdout, _ = h.run(t, "reconfigure", h.flake, "--answers", answers, "--dry-run")
	if code != exitOK || !strings.Contains(stdout, "this machine is the node (NixOS, host name node1): after the build, kexec into the new image") {
		t.Errorf("on the node: exit %d\n%s", code, stdout)
	}

	// The node runs the data disk: its data partition at /var/lib, its
	// boot partition at /boot (vfat, disko's mount). The rebuild switches
	// the boot entry through /boot, then kexecs: here the kexec step stops
	// at its checks (stand-in kernel and initrd, not root) and never jumps.
	os.MkdirAll(filepath.Join(h.root, "sys", "firmware", "efi"), 0o755)
	for n, dev := range map[string]string{"2": "259:6", "3": "259:7"} {
		part := filepath.Join(h.root, "sys", "block", "nvme1n1", "nvme1n1p"+n)
		os.MkdirAll(part, 0o755)
		os.WriteFile(filepath.Join(part, "partition"), []byte(n+"\n"), 0o644)
		os.WriteFile(filepath.Join(part, "dev"), []byte(dev+"\n"), 0o644)
	}
	mi, _ := os.OpenFile(filepath.Join(h.root, "proc", "self", "mountinfo"), os.O_APPEND|os.O_WRONLY, 0)
	io.WriteString(mi, "50 22 259:7 / /var/lib rw,relatime shared:40 - ext4 /dev/nvme1n1p3 rw\n"+
		"51 22 259:6 / /boot rw,relatime shared:41 - vfat /dev/nvme1n1p2 rw,fmask=0022,dmask=0022\n")
	mi.Close()
	espDir := filepath.Join(h.root, "boot")
	os.MkdirAll(espDir, 0o755)
	tree = nodeKexecTree(t)
	h.kexec = &kexecDeps{
		kexec: &boot.Kexec{Root: h.root, Euid: func() int { return 1000 }},
		startJump: func(time.Duration) (string, error) {
			t.Error("the test jumped")
			return "", errors.New("no jump in a test")
		},
	}
	code, stdout, stderr = h.run(t, "reconfigure", h.flake, "--answers", answers, "--yes")
	for _, want := range []string{"[4/5] Write the boot entry", "the boot partition is mounted at " + espDir, "written through the mounted filesystem", "[5/5] "} {
		if !strings.Contains(stdout, want) {
			t.Errorf("on the node the rebuild's output lacks %q:\n%s\n%s", want, stdout, stderr)
		}
	}
	if code == exitOK || !strings.Contains(stderr, "homestaker reconfigure: kexec: ") {
		t.Errorf("the kexec step did not stop at its checks: exit %d\n%s", code, stderr)
	}
	entry, err := os.ReadFile(filepath.Join(espDir, "loader", "entries", "homestaker-0001.conf"))
	if err != nil || !strings.Contains(string(entry), "options init="+filepath.Join(tree, "system")+"/init") {
		t.Errorf("the entry in the node's /boot: %v\n%s", err, entry)
	}
	if _, err := os.Stat(filepath.Join(espDir, "EFI", "BOOT", "BOOTX64.EFI")); err != nil {
		t.Errorf("systemd-boot is not in the node's /boot: %v", err)
	}
}

// nodeKexecTree is a kexec tree as the build leaves it for a node: its
// kexec-boot script names the system's init, and the system carries the
// boot loader of the boot entry (a stand-in for systemd-boot).
func nodeKexecTree(t *testing.T) string {
	t.Helper()
	out := t.TempDir()
	system := filepath.Join(out, "system")
	os.MkdirAll(filepath.Join(system, "etc", "homestaker", "boot-loader"), 0o755)
	for name, content := range map[string]string{
		"bzImage":     "kernel of the node",
		"initrd.zst":  "initrd of the node",
		"kexec-boot":  "#!/usr/bin/env bash\nkexec --load ./bzImage --initrd=./initrd.zst \\\n  --command-line \"init=" + system + "/init loglevel=4\"\nkexec -e\n",
		"system/init": "#!/bin/sh\n",
		"system/etc/homestaker/boot-loader/systemd-bootx64.efi": "MZ stand-in for systemd-boot",
	} {
		if err := os.WriteFile(filepath.Join(out, name), []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// TestReconfigureValidatorClientMovesTheSlashingHistory: changing the
// validator client of a validator with keys needs the history exported
// from the old client. Without one, or with the one secrets.yaml already
// holds (from before the old client signed), reconfigure refuses; with a
// fresh export it replaces the history in secrets.yaml and keeps every
// other secret (the real sops decrypts them to the same values).
func TestReconfigureValidatorClientMovesTheSlashingHistory(t *testing.T) {
	sops := testutil.RequireTool(t, "sops")
	dir := t.TempDir()
	answers, keysDir := keysAnswers(t, dir)
	h := &reconfHome{home: filepath.Join(dir, "home")}
	h.root, _ = filepath.Abs("disk/testdata/server-2nvme")
	h.flake = filepath.Join(h.home, "flake")
	h.private = filepath.Join(h.home, "state", "homestaker")
	var err error
	if h.admin, err = age.GenerateX25519Identity(); err != nil {
		t.Fatal(err)
	}
	answers = editAnswers(t, answers, answers, func(m map[string]any) {
		section(m, "secrets")["adminRecipients"] = []string{h.admin.Recipient().String()}
		host := section(m, "host")
		host["arch"], host["board"], host["format"] = "x86_64", "generic", "kexec"
		section(m, "ethereum")["consensus"] = "lighthouse"
	})
	if code, _, stderr := h.run(t, "render", "--answers", answers, "--out", h.flake); code != exitOK {
		t.Fatalf("render: exit %d\n%s", code, stderr)
	}
	secretsFile := filepath.Join(h.flake, "hosts", "pi", "secrets.yaml")
	before := sopsValues(t, sops, secretsFile, h.admin)
	sums := treeSums(t, h.home)
	current := filepath.Join(h.flake, "hosts", "pi", "homestaker.json")

	noHistory := editAnswers(t, current, filepath.Join(dir, "no-history.json"), func(m map[string]any) {
		section(m, "ethereum")["consensus"] = "nimbus"
		delete(section(m, "ethereum", "validator"), "slashingProtection")
	})
	code, stdout, stderr := h.run(t, "reconfigure", h.flake, "--answers", noHistory, "--flake-only")
	if code != exitRefused || !strings.Contains(stderr, "no slashing-protection history is named") || !strings.Contains(stdout, "homestaker-export-slashing-protection") {
		t.Errorf("no history: exit %d\n%s\n%s", code, stdout, stderr)
	}
	stale := editAnswers(t, current, filepath.Join(dir, "stale.json"), func(m map[string]any) {
		section(m, "ethereum")["consensus"] = "nimbus"
	})
	code, _, stderr = h.run(t, "reconfigure", h.flake, "--answers", stale, "--flake-only")
	if code != exitRefused || !strings.Contains(stderr, "is the slashing-protection history secrets.yaml already holds") {
		t.Errorf("the old history: exit %d\n%s", code, stderr)
	}
	// Prysm cannot import a history before its keys sign: two steps.
	toPrysm := editAnswers(t, current, filepath.Join(dir, "prysm.json"), func(m map[string]any) {
		section(m, "ethereum")["consensus"] = "prysm"
		delete(section(m, "ethereum", "validator"), "slashingProtection")
	})
	code, _, stderr = h.run(t, "reconfigure", h.flake, "--answers", toPrysm, "--flake-only")
	if code != exitRefused || !strings.Contains(stderr, "move in two steps") {
		t.Errorf("to prysm with keys: exit %d\n%s", code, stderr)
	}
	if got := treeSums(t, h.home); got != sums {
		t.Errorf("a refused reconfigure changed files:\n%s", lineDiff(sums, got))
	}

	// The export from the old client (lighthouse) has signed more since.
	old, _ := os.ReadFile(filepath.Join(keysDir, "slashing-protection.json"))
	fresh := filepath.Join(dir, "exported.json")
	os.WriteFile(fresh, bytes.Replace(old, []byte(`"slot": "100"`), []byte(`"slot": "4242"`), 1), 0o600)
	moved := editAnswers(t, current, filepath.Join(dir, "moved.json"), func(m map[string]any) {
		section(m, "ethereum")["consensus"] = "nimbus"
		section(m, "ethereum", "validator")["slashingProtection"] = fresh
	})
	code, stdout, stderr = h.run(t, "reconfigure", h.flake, "--answers", moved, "--flake-only")
	if code != exitOK {
		t.Fatalf("with a fresh export: exit %d\n%s\n%s", code, stdout, stderr)
	}
	for _, want := range []string{"Consensus (and validator) client: lighthouse → nimbus", "~ hosts/pi/secrets.yaml (re-encrypted: replaces the slashing-protection history; every existing secret kept)", "[1/2] Hand the slashing-protection history to nimbus's validator"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("the review lacks %q:\n%s", want, stdout)
		}
	}
	after := sopsValues(t, sops, secretsFile, h.admin)
	if after["validator-slashing-protection"] != strings.Replace(string(old), `"slot": "100"`, `"slot": "4242"`, 1) {
		t.Error("secrets.yaml does not hold the fresh export")
	}
	for k, v := range before {
		if k != "validator-slashing-protection" && after[k] != v {
			t.Errorf("secret %s changed", k)
		}
	}
}

// TestReconfigureLinePrompts: without a terminal the prefilled questions
// come as line prompts; Enter keeps each answer, one is changed, and the
// review's first choice writes the flake only.
func TestReconfigureLinePrompts(t *testing.T) {
	h := newReconfHome(t)
	answersPath := filepath.Join(h.flake, "hosts", "beta", "homestaker.json")
	oldData, _ := os.ReadFile(answersPath)
	// hardware, name, timezone, network, execution, consensus, validator,
	// fee recipient: kept; the graffiti: changed; the rest: kept.
	script := strings.Repeat("\n", 8) + "typed on a line\n" + strings.Repeat("\n", 30)
	code, stdout, stderr := h.runInput(t, script, "reconfigure", h.flake)
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	for _, want := range []string{"[beta]:", "== Review ==", `Graffiti: "homestaker on NixOS" → "typed on a line"`, "1. Write the flake and answers only"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	data, _ := os.ReadFile(answersPath)
	want := strings.Replace(string(oldData), `"graffiti": "homestaker on NixOS"`, `"graffiti": "typed on a line"`, 1)
	if string(data) != want {
		t.Errorf("answers after the line prompts:\n%s\nwant:\n%s", data, want)
	}
}

// TestReconfigureWizardDryRunWritesNothing: `reconfigure DIR --dry-run`
// without --answers runs the prefilled wizard; the review is the end of
// it, whatever is chosen there.
func TestReconfigureWizardDryRunWritesNothing(t *testing.T) {
	h := newReconfHome(t)
	answersPath := filepath.Join(h.flake, "hosts", "beta", "homestaker.json")
	oldData, _ := os.ReadFile(answersPath)
	script := strings.Repeat("\n", 8) + "typed on a line\n" + strings.Repeat("\n", 30)
	code, stdout, stderr := h.runInput(t, script, "reconfigure", h.flake, "--dry-run")
	if code != exitOK || !strings.Contains(stdout, "== Review ==") || !strings.Contains(stdout, "dry run: nothing was changed") {
		t.Errorf("reconfigure --dry-run (wizard): exit %d\n%s\n%s", code, stdout, stderr)
	}
	if data, _ := os.ReadFile(answersPath); string(data) != string(oldData) {
		t.Errorf("reconfigure --dry-run (wizard) rewrote the answers:\n%s", data)
	}
}
