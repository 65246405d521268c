package cli

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/homestaker/homestaker/boot"
	"github.com/homestaker/homestaker/netstate"
	"github.com/homestaker/homestaker/nixbuild"
	"github.com/homestaker/homestaker/plan"
)

const kexecTestHostKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIrAWAe8Eu8oR0nqj8sN7aHINtNpPHK2dZ4dS1IZqosR"

type recordingSys struct {
	err     error
	cmdline string
}

func (s *recordingSys) KexecFileLoad(_, _ int, cmdline string, _ int) error {
	s.cmdline = cmdline
	return s.err
}
func (s *recordingSys) Sync()            {}
func (s *recordingSys) Reboot(int) error { return errors.New("not in a test") }

// kexecTestEnv is a machine that can kexec (a fake root), an image and a
// fake syscall layer.
type kexecTestEnv struct {
	root, kernel, initrd, answers string
	sys                           *recordingSys
	jumps                         []time.Duration
	euid                          int
}

func newKexecTestEnv(t *testing.T) *kexecTestEnv {
	t.Helper()
	e := &kexecTestEnv{root: t.TempDir(), sys: &recordingSys{}}
	for rel, data := range map[string]string{
		"proc/sys/kernel/kexec_load_disabled": "0\n",
		"sys/kernel/security/lockdown":        "[none] integrity confidentiality\n",
		"proc/meminfo":                        "MemAvailable: 8388608 kB\n",
		"proc/self/mountinfo":                 "1 0 0:2 / / rw - rootfs rootfs rw\n",
		"proc/swaps":                          "Filename Type Size Used Priority\n",
		"sys/block/nvme1n1/size":              "1000215216\n",
		"sys/block/nvme1n1/dev":               "259:4\n",
	} {
		p := filepath.Join(e.root, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte(data), 0o644)
	}
	os.MkdirAll(filepath.Join(e.root, "dev/disk/by-id"), 0o755)
	os.WriteFile(filepath.Join(e.root, "dev/nvme1n1"), nil, 0o644)
	os.Symlink("../../nvme1n1", filepath.Join(e.root, "dev/disk/by-id/nvme-DATA"))

	dir := t.TempDir()
	e.kernel = filepath.Join(dir, "bzImage")
	k := make([]byte, 0x1000)
	copy(k[0x202:], "HdrS")
	binary.LittleEndian.PutUint16(k[0x206:], 0x020f)
	binary.LittleEndian.PutUint16(k[0x236:], 3)
	os.WriteFile(e.kernel, k, 0o644)
	var cpio bytes.Buffer
	boot.WriteCarryArchive(&cpio, []boot.CarryFile{{Path: "init", Data: []byte("#!/bin/sh\n")}}, time.Unix(0, 0))
	e.initrd = filepath.Join(dir, "initrd")
	os.WriteFile(e.initrd, cpio.Bytes(), 0o644)
	e.answers = filepath.Join(dir, "homestaker.json")
	os.WriteFile(e.answers, []byte(`{"version":1,"host":{"name":"node","arch":"x86_64","format":"kexec"},
"ethereum":{"network":"hoodi","execution":"geth","consensus":"lighthouse","validator":{"enable":false},"mevBoost":{"enable":false}},
"disk":{"device":"/dev/disk/by-id/nvme-DATA","filesystem":"ext4"},
"ssh":{"authorizedKeys":["`+kexecTestHostKey+` staker@laptop"],"hostKey":"`+kexecTestHostKey+`"}}`), 0o644)
	return e
}

func (e *kexecTestEnv) run(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	t.Setenv("TMPDIR", t.TempDir()) // dry runs leave their initrd copy there
	var out, errb bytes.Buffer
	env := &cliEnv{stdin: strings.NewReader(stdin), stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
	deps := kexecDeps{
		kexec: &boot.Kexec{
			Root:    e.root,
			Sys:     e.sys,
			Euid:    func() int { return e.euid },
			Machine: func() (string, error) { return "x86_64", nil },
			InRAM:   func(string) (bool, error) { return false, nil },
			ReadNetwork: func(context.Context) (netstate.State, error) {
				return netstate.State{Interfaces: []netstate.Interface{{Name: "eth0", MAC: "90:1b:0e:00:00:01", Up: true,
					Addresses: []netstate.Address{{Address: "203.0.113.10/32"}}}}}, nil
			},
		},
		startJump: func(d time.Duration) (string, error) {
			e.jumps = append(e.jumps, d)
			return "/tmp/jump.log", nil
		},
	}
	code := runKexecWith(context.Background(), env, args, deps)
	return code, out.String(), errb.String()
}

func TestKexecUsage(t *testing.T) {
	e := newKexecTestEnv(t)
	for _, args := range [][]string{
		{},
		{"a", "b"},
		{"flake", "--kernel", "k"},
		{"--kernel", "k", "--initrd", "i"},
		{"--kernel", "k", "--initrd", "i", "--cmdline", "c", "--host", "x"},
		{"--kernel", "k", "--initrd", "i", "--cmdline", "c", "--delay", "2h"},
		{"--no-such-flag"},
	} {
		if code, _, stderr := e.run(t, "", args...); code != exitUsage || stderr == "" {
			t.Errorf("%q: exit %d, stderr %q", args, code, stderr)
		}
	}
	if code, _, _ := runCLI(t, "kexec", "--help"); code != exitOK {
		t.Errorf("--help: exit %d", code)
	}
}

func TestKexecDryRunAndLoad(t *testing.T) {
	e := newKexecTestEnv(t)
	base := []string{"--kernel", e.kernel, "--initrd", e.initrd, "--cmdline", "init=/nix/store/x/init", "--answers", e.answers}

	code, stdout, stderr := e.run(t, "", append(base, "--dry-run")...)
	if code != exitOK {
		t.Fatalf("dry run: exit %d\n%s\n%s", code, stdout, stderr)
	}
	for _, want := range []string{"[ok] ssh key", "[ok] data disk: /dev/disk/by-id/nvme-DATA", netstate.CarryPath, boot.KnownHostsPath, "ssh root@203.0.113.10", "Dry run: nothing was loaded"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("dry run output lacks %q:\n%s", want, stdout)
		}
	}
	if e.sys.cmdline != "" || len(e.jumps) != 0 {
		t.Error("a dry run loaded or jumped")
	}
	for _, line := range strings.Split(stdout, "\n") {
		// Only a path on its own line may be wider (the test's temp
		// folders are long).
		if len(line) > 80 && !strings.HasPrefix(line, "  /") {
			t.Errorf("wider than 80 columns: %q", line)
		}
	}

	// Without --yes and without a typed yes, nothing is loaded.
	if code, _, stderr := e.run(t, "no\n", base...); code != exitRefused || e.sys.cmdline != "" || !strings.Contains(stderr, "not confirmed") {
		t.Errorf("unconfirmed: exit %d, %q", code, stderr)
	}
	code, stdout, stderr = e.run(t, "yes\n", base...)
	if code != exitOK || e.sys.cmdline != "init=/nix/store/x/init" || len(e.jumps) != 1 || e.jumps[0] != 3*time.Second {
		t.Fatalf("load: exit %d, cmdline %q, jumps %v\n%s\n%s", code, e.sys.cmdline, e.jumps, stdout, stderr)
	}
	if !strings.Contains(stdout, "Loaded the node's kernel with kexec_file_load") || !strings.Contains(stdout, "SHA256:") {
		t.Errorf("load output:\n%s", stdout)
	}

	// The kernel refuses: the errno's meaning reaches the user.
	e.sys.err = unix.EKEYREJECTED
	code, _, stderr = e.run(t, "", append(base, "--yes")...)
	if code != exitFailure || !strings.Contains(stderr, "Disable Secure Boot") {
		t.Errorf("rejected key: exit %d, %q", code, stderr)
	}
}

func TestKexecRefuses(t *testing.T) {
	e := newKexecTestEnv(t)
	os.WriteFile(filepath.Join(e.root, "sys/kernel/security/lockdown"), []byte("none [integrity] confidentiality\n"), 0o644)
	e.euid = 1000
	code, stdout, stderr := e.run(t, "", "--kernel", e.kernel, "--initrd", e.initrd, "--cmdline", "init=/x/init", "--dry-run")
	if code != exitRefused || !strings.Contains(stderr, "refused (root, secure boot)") || !strings.Contains(stdout, "Disable Secure Boot") {
		t.Errorf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	// Answers with problems stop before any check.
	bad := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(bad, []byte(`{"version":1,"host":{"name":"Bad_Name"}}`), 0o644)
	if code, _, _ := e.run(t, "", "--kernel", e.kernel, "--initrd", e.initrd, "--cmdline", "c", "--answers", bad); code != exitInvalid {
		t.Errorf("bad answers: exit %d", code)
	}
}

// TestKexecFromFlake boots a host from a flake folder through its build
// manifest and kexec-boot script.
func TestKexecFromFlake(t *testing.T) {
	e := newKexecTestEnv(t)
	flake := t.TempDir()
	tree := t.TempDir()
	os.MkdirAll(filepath.Join(flake, "hosts", "node"), 0o755)
	os.WriteFile(filepath.Join(flake, "flake.nix"), []byte("{}\n"), 0o644)
	data, _ := os.ReadFile(e.answers)
	os.WriteFile(filepath.Join(flake, "hosts", "node", "homestaker.json"), data, 0o644)
	os.WriteFile(filepath.Join(flake, "hosts", "node", "known_hosts"), []byte("node "+kexecTestHostKey+"\n"), 0o644)
	for name, src := range map[string]string{"bzImage": e.kernel, "initrd.zst": e.initrd} {
		b, _ := os.ReadFile(src)
		os.WriteFile(filepath.Join(tree, name), b, 0o644)
	}
	os.WriteFile(filepath.Join(tree, "kexec-boot"), []byte("#!/usr/bin/env bash\nkexec --load ${SCRIPT_DIR}/bzImage \\\n  --initrd=${SCRIPT_DIR}/initrd.zst \\\n  --command-line \"init=/nix/store/abc-nixos-system-node/init loglevel=4\"\nkexec -e\n"), 0o755)
	arts, err := nixbuild.CollectArtifacts(context.Background(), tree, plan.FormatKexec)
	if err != nil {
		t.Fatal(err)
	}
	target := nixbuild.BuildTarget{FlakeDir: flake, Host: "node", Format: plan.FormatKexec}
	nixbuild.WriteBuildManifest(nixbuild.BuildManifestPath(target), nixbuild.NewBuildManifest(nixbuild.BuildResult{Target: target, OutPath: tree, Finished: time.Now()}, arts, "2.24.0"))

	code, stdout, stderr := e.run(t, "", flake, "--yes", "--delay", "5s")
	if code != exitOK || e.sys.cmdline != "init=/nix/store/abc-nixos-system-node/init loglevel=4" || len(e.jumps) != 1 || e.jumps[0] != 5*time.Second {
		t.Fatalf("exit %d, cmdline %q, jumps %v\n%s\n%s", code, e.sys.cmdline, e.jumps, stdout, stderr)
	}
	if !strings.Contains(stdout, "Booting host node") || !strings.Contains(stdout, "[ok] data disk") {
		t.Errorf("output:\n%s", stdout)
	}
	// Not built: say how to build.
	os.Remove(nixbuild.BuildManifestPath(target))
	if code, _, stderr := e.run(t, "", flake, "--dry-run"); code != exitFailure || !strings.Contains(stderr, "homestaker build") {
		t.Errorf("not built: exit %d %q", code, stderr)
	}
}
