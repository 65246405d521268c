package boot

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/homestaker/homestaker/internal/testutil"
	"github.com/homestaker/homestaker/netstate"
	"github.com/homestaker/homestaker/plan"
)

// copyTree copies a recorded machine (files, folders and links).
func copyTree(t *testing.T, src, dst string) { testutil.CopyTree(t, src, dst) }

const testNodeKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIrAWAe8Eu8oR0nqj8sN7aHINtNpPHK2dZ4dS1IZqosR"

// kexecFixture is a Hetzner-like rescue machine (from disk/testdata) that
// can kexec: 8 GiB available, kexec enabled, no lockdown, x86_64, root,
// a static address with an on-link gateway.
type kexecFixture struct {
	root string
	k    *Kexec
	req  KexecRequest
	p    plan.Plan
}

func newKexecFixture(t *testing.T) *kexecFixture {
	t.Helper()
	f := &kexecFixture{root: filepath.Join(t.TempDir(), "root")}
	copyTree(t, "../disk/testdata/rescue", f.root)
	f.write("proc/sys/kernel/kexec_load_disabled", "0\n")
	f.write("sys/kernel/kexec_loaded", "0\n")
	f.write("sys/kernel/security/lockdown", "[none] integrity confidentiality\n")
	f.write("proc/meminfo", "MemTotal:       65000000 kB\nMemFree:        60000000 kB\nMemAvailable:    8388608 kB\nSwapTotal:      99999999 kB\n")
	dir := t.TempDir()
	kernel := filepath.Join(dir, "bzImage")
	os.WriteFile(kernel, fakeBzImage(0x020f, xlfKernel64|xlfAbove4G, 40<<20), 0o644)
	var initrd bytes.Buffer
	WriteCarryArchive(&initrd, []CarryFile{{Path: "init", Data: make([]byte, 1<<20)}}, zeroTime)
	initrdPath := filepath.Join(dir, "initrd")
	os.WriteFile(initrdPath, initrd.Bytes(), 0o644)
	f.p = plan.Plan{
		Host: plan.Host{Name: "node"},
		Disk: plan.Disk{Device: "/dev/disk/by-id/nvme-SAMSUNG_MZVL21T0HCLR-00B00_S676NF0R500002"},
		SSH:  plan.SSH{AuthorizedKeys: []string{testNodeKey + " staker@laptop"}},
	}
	f.req = KexecRequest{
		Image:      KexecImage{Kernel: kernel, Initrd: initrdPath, Cmdline: "init=/nix/store/x/init"},
		Plan:       &f.p,
		PlanSource: "homestaker.json",
		KnownHosts: "node " + testNodeKey,
		TempDir:    t.TempDir(),
	}
	f.k = &Kexec{
		Root:    f.root,
		Euid:    func() int { return 0 },
		Machine: func() (string, error) { return "x86_64", nil },
		InRAM:   func(string) (bool, error) { return true, nil },
		ReadNetwork: func(context.Context) (netstate.State, error) {
			return netstate.State{
				Interfaces: []netstate.Interface{
					{Name: "lo", Up: true, Addresses: []netstate.Address{{Address: "127.0.0.1/8"}}},
					{Name: "eth0", MAC: "90:1b:0e:00:00:01", Up: true, Addresses: []netstate.Address{
						{Address: "203.0.113.10/32"}, {Address: "2001:db8::2/64"}, {Address: "fe80::1/64"}}},
				},
				Routes: []netstate.Route{
					{Interface: "eth0", Destination: "default", Gateway: "172.31.1.1", OnLink: true, Family: "inet"},
					{Interface: "eth0", Destination: "2001:db8::/64", Protocol: "kernel", Family: "inet6"},
				},
			}, nil
		},
		Now: func() time.Time { return time.Unix(1700000000, 0) },
	}
	return f
}

func (f *kexecFixture) write(rel, data string) {
	p := filepath.Join(f.root, rel)
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		panic(err)
	}
}

func checkNamed(p Preflight, name string) Check {
	for _, c := range p.Checks {
		if c.Name == name {
			return c
		}
	}
	return Check{Name: name, Status: -1}
}

func TestPreflightPasses(t *testing.T) {
	f := newKexecFixture(t)
	pre, err := f.k.Preflight(context.Background(), f.req)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	WriteChecks(&out, pre.Checks)
	if !pre.OK() {
		t.Fatalf("refused:\n%s", out.String())
	}
	for _, line := range strings.Split(out.String(), "\n") {
		if len(line) > 80 {
			t.Errorf("line wider than 80 columns: %q", line)
		}
	}
	for _, name := range []string{"root", "kexec", "secure boot", "architecture", "initrd size", "memory", "ssh key", "data disk", "network"} {
		if c := checkNamed(pre, name); c.Status != CheckOK {
			t.Errorf("%s: %+v", name, c)
		}
	}
	if got := CarriedAddresses(pre.Carried); strings.Join(got, " ") != "203.0.113.10 2001:db8::2" {
		t.Errorf("carried addresses %v", got)
	}
	// Without answers, the SSH key and data disk are not checked.
	f.req.Plan = nil
	pre, _ = f.k.Preflight(context.Background(), f.req)
	if !pre.OK() || checkNamed(pre, "ssh key").Status != CheckNotChecked || checkNamed(pre, "data disk").Status != CheckNotChecked {
		t.Errorf("without answers: %+v", pre.Checks)
	}
}

// TestPreflightRefusals changes one thing at a time and expects exactly
// that check to refuse, with its reason.
func TestPreflightRefusals(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(f *kexecFixture)
		check  string
		want   string
	}{
		{"not root", func(f *kexecFixture) { f.k.Euid = func() int { return 1000 } }, "root", "not running as root"},
		{"kexec disabled", func(f *kexecFixture) { f.write("proc/sys/kernel/kexec_load_disabled", "1\n") }, "kexec", "kexec_load_disabled = 1"},
		{"no kexec", func(f *kexecFixture) {
			os.Remove(filepath.Join(f.root, "proc/sys/kernel/kexec_load_disabled"))
			os.Remove(filepath.Join(f.root, "sys/kernel/kexec_loaded"))
		}, "kexec", "no kexec support"},
		{"lockdown integrity", func(f *kexecFixture) { f.write("sys/kernel/security/lockdown", "none [integrity] confidentiality\n") }, "secure boot", "locked down (integrity)"},
		{"lockdown confidentiality", func(f *kexecFixture) {
			f.write("sys/kernel/security/lockdown", "none integrity [confidentiality]\n")
		}, "secure boot", "locked down (confidentiality)"},
		{"arm64 image", func(f *kexecFixture) { os.WriteFile(f.req.Image.Kernel, fakeArm64Image(1<<20), 0o644) }, "architecture", "aarch64 kernel"},
		{"arm64 machine", func(f *kexecFixture) { f.k.Machine = func() (string, error) { return "aarch64", nil } }, "architecture", "this machine is aarch64"},
		{"not a kernel", func(f *kexecFixture) { os.WriteFile(f.req.Image.Kernel, []byte("#!/bin/sh\n"), 0o644) }, "architecture", "neither an x86 bzImage"},
		{"32-bit kernel", func(f *kexecFixture) { os.WriteFile(f.req.Image.Kernel, fakeBzImage(0x020f, 0, 1<<20), 0o644) }, "architecture", "i386 kernel"},
		{"little RAM", func(f *kexecFixture) {
			f.write("proc/meminfo", "MemTotal: 65000000 kB\nMemAvailable: 300000 kB\nSwapFree: 99999999 kB\n")
		}, "memory", "not enough free RAM: 293 MiB available"},
		{"huge initrd", func(f *kexecFixture) { f.req.Image.Initrd = hugeInitrd(t, t.TempDir(), 5<<29) }, "initrd size", "at most 2 GiB"},
		{"no ssh key", func(f *kexecFixture) { f.p.SSH.AuthorizedKeys = []string{"not a key"} }, "ssh key", "no valid SSH key"},
		{"data disk missing", func(f *kexecFixture) { f.p.Disk.Device = "/dev/disk/by-id/nvme-OTHER" }, "data disk", "not here"},
		{"data disk in a RAID", func(f *kexecFixture) { f.p.Disk.Device = "/dev/disk/by-id/ata-ST4000NM0245-1Z2107_ZC1ABCDE" }, "data disk", "held by md127"},
		{"data disk mounted", func(f *kexecFixture) {
			f.write("proc/self/mountinfo", "1 0 0:2 / / rw - rootfs rootfs rw\n40 1 259:5 / /mnt rw - ext4 /dev/nvme1n1 rw\n")
		}, "data disk", "mounted at /mnt"},
		{"no address", func(f *kexecFixture) {
			f.k.ReadNetwork = func(context.Context) (netstate.State, error) {
				return netstate.State{Interfaces: []netstate.Interface{{Name: "eth0", MAC: "90:1b:0e:00:00:01"}}}, nil
			}
		}, "network", "no interface has an address"},
		{"no ip tool", func(f *kexecFixture) {
			f.k.ReadNetwork = func(context.Context) (netstate.State, error) {
				return netstate.State{}, errors.New("exec: \"ip\": not found")
			}
		}, "network", "cannot record the network"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newKexecFixture(t)
			tc.change(f)
			pre, err := f.k.Preflight(context.Background(), f.req)
			if err != nil {
				t.Fatal(err)
			}
			refused := pre.Refused()
			if len(refused) != 1 || refused[0].Name != tc.check || !strings.Contains(refused[0].Detail, tc.want) || refused[0].Fix == "" {
				t.Errorf("refused %+v; want only %s with %q and a fix", refused, tc.check, tc.want)
			}
		})
	}
}

func TestPreflightRAMCountsTheCopyInRAM(t *testing.T) {
	f := newKexecFixture(t)
	f.write("proc/meminfo", "MemAvailable: 1000000 kB\n")
	onDisk, inRAM := *f.k, *f.k
	onDisk.InRAM = func(string) (bool, error) { return false, nil }
	a, _ := onDisk.Preflight(context.Background(), f.req)
	b, _ := inRAM.Preflight(context.Background(), f.req)
	ca, cb := checkNamed(a, "memory"), checkNamed(b, "memory")
	if strings.Contains(ca.Detail, "in RAM") || !strings.Contains(cb.Detail, "(in RAM) 1.0 MiB") {
		t.Errorf("on disk: %s\nin RAM: %s", ca.Detail, cb.Detail)
	}
	f.write("proc/meminfo", "MemTotal: 1000 kB\n")
	if _, err := f.k.Preflight(context.Background(), f.req); err == nil || !strings.Contains(err.Error(), "MemAvailable") {
		t.Errorf("meminfo without MemAvailable: %v", err)
	}
}

// fakeSyscalls records calls and fails kexec_file_load with err.
type fakeSyscalls struct {
	err   error
	calls []string
}

func (f *fakeSyscalls) KexecFileLoad(kernelFd, initrdFd int, cmdline string, flags int) error {
	f.calls = append(f.calls, "kexec_file_load "+cmdline)
	return f.err
}
func (f *fakeSyscalls) Sync() { f.calls = append(f.calls, "sync") }
func (f *fakeSyscalls) Reboot(cmd int) error {
	if cmd == unix.LINUX_REBOOT_CMD_KEXEC {
		f.calls = append(f.calls, "reboot kexec")
	}
	return errors.New("still here")
}

func TestLoadErrors(t *testing.T) {
	f := newKexecFixture(t)
	noTools := func(string) (string, error) { return "", errors.New("not found") }
	for _, tc := range []struct {
		errno unix.Errno
		want  string
	}{
		{unix.EPERM, "locked down"},
		{unix.EKEYREJECTED, "signed kernel"},
		{unix.EBADMSG, "signed kernel"},
		{unix.ENOSYS, "no kexec_file_load"},
		{unix.EOPNOTSUPP, "no kexec_file_load"},
		{unix.ENOEXEC, "wrong format or architecture"},
		{unix.ENOMEM, "out of memory"},
		{unix.EFBIG, "2 GiB"},
	} {
		sys := &fakeSyscalls{err: tc.errno}
		k := &Kexec{Sys: sys, LookPath: noTools}
		_, err := k.Load(context.Background(), f.req.Image)
		var le *LoadError
		if !errors.As(err, &le) || !errors.Is(err, tc.errno) || !strings.Contains(le.Meaning, tc.want) || le.Fix == "" ||
			!strings.HasPrefix(le.Call, "kexec_file_load(kernel="+f.req.Image.Kernel) {
			t.Errorf("%v: %#v", tc.errno, err)
		}
	}
	// Without kexec_file_load, kexec-tools' kexec_load does the work.
	var ran []string
	k := &Kexec{
		Sys:      &fakeSyscalls{err: unix.ENOSYS},
		LookPath: func(string) (string, error) { return "/usr/sbin/kexec", nil },
		Run: runnerFunc(func(ctx context.Context, argv []string) ([]byte, error) {
			ran = argv
			return nil, nil
		}),
	}
	method, err := k.Load(context.Background(), f.req.Image)
	want := "/usr/sbin/kexec -c -l " + f.req.Image.Kernel + " --initrd=" + f.req.Image.Initrd + " --command-line=init=/nix/store/x/init"
	if err != nil || method != "kexec_load (kexec-tools)" || strings.Join(ran, " ") != want {
		t.Errorf("fallback: %q %v, ran %q", method, err, ran)
	}
	// Success loads once, with the command line.
	sys := &fakeSyscalls{}
	if m, err := (&Kexec{Sys: sys}).Load(context.Background(), f.req.Image); err != nil || m != "kexec_file_load" || len(sys.calls) != 1 {
		t.Errorf("load: %q %v %v", m, err, sys.calls)
	}
}

func TestJumpSyncsThenReboots(t *testing.T) {
	sys := &fakeSyscalls{}
	var slept time.Duration
	k := &Kexec{Sys: sys, Sleep: func(_ context.Context, d time.Duration) error { slept = d; return nil }}
	err := k.Jump(context.Background(), 3*time.Second)
	if slept != 3*time.Second || strings.Join(sys.calls, ",") != "sync,reboot kexec" || err == nil || !strings.Contains(err.Error(), "kexec -e") {
		t.Errorf("slept %s, calls %v, err %v", slept, sys.calls, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	sys.calls = nil
	if err := (&Kexec{Sys: sys}).Jump(ctx, time.Hour); !errors.Is(err, context.Canceled) || len(sys.calls) != 0 {
		t.Errorf("cancelled jump: %v %v", err, sys.calls)
	}
}

func TestPrepareCarryAndReconnect(t *testing.T) {
	f := newKexecFixture(t)
	pre, err := f.k.Preflight(context.Background(), f.req)
	if err != nil {
		t.Fatal(err)
	}
	carry, err := f.k.PrepareCarry(f.req, pre)
	if err != nil {
		t.Fatal(err)
	}
	est, err := EstimateInitrd(carry.Initrd)
	if err != nil || est.Unpacked != pre.Initrd.Unpacked+uint64(len(carry.Files[0].Data)+len(carry.Files[1].Data)) {
		t.Errorf("the copy does not hold the initrd and the archive: %+v %v", est, err)
	}
	if carry.Files[0].Path != netstate.CarryPath || !bytes.Contains(carry.Files[0].Data, []byte(`"203.0.113.10/32"`)) ||
		bytes.Contains(carry.Files[0].Data, []byte("fe80::1")) || string(carry.Files[1].Data) != "node "+testNodeKey+"\n" {
		t.Errorf("files: %s", carry.Files)
	}
	var out bytes.Buffer
	WriteReconnect(&out, pre.Carried, f.req.KnownHosts)
	for _, want := range []string{"ssh root@203.0.113.10", "SHA256:", "ssh-keygen -R 203.0.113.10"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("reconnect text lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	WriteReconnect(&out, pre.Carried, "")
	if !strings.Contains(out.String(), "not known here") {
		t.Errorf("unknown host key:\n%s", out.String())
	}
}

// runnerFunc is a Runner from a function.
type runnerFunc func(ctx context.Context, argv []string) ([]byte, error)

func (f runnerFunc) Run(ctx context.Context, argv []string) ([]byte, error) { return f(ctx, argv) }
