package detect

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/homestaker/homestaker/disk"
	"github.com/homestaker/homestaker/netstate"
)

// recorded is one of the recorded machines: its system root under
// disk/testdata and its iproute2 dumps under netstate/testdata.
func recorded(name string) Sources {
	return Sources{
		System:  disk.System{Root: filepath.Join("..", "disk", "testdata", name)},
		Network: netstate.Dir(filepath.Join("..", "netstate", "testdata", name)),
	}
}

func detectRecorded(t *testing.T, name string) Machine {
	t.Helper()
	m, err := Detect(context.Background(), recorded(name))
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Warnings) != 0 {
		t.Errorf("%s: warnings %q", name, m.Warnings)
	}
	return m
}

func diskNamed(m Machine, name string) *disk.BlockDevice {
	for i := range m.Disks {
		if m.Disks[i].Name == name {
			return &m.Disks[i]
		}
	}
	return nil
}

func TestServer2NVMe(t *testing.T) {
	m := detectRecorded(t, "server-2nvme")
	if m.Arch != ArchX86_64 || m.Board != BoardGeneric || m.BoardModel != "" || m.CPUs != 16 || m.MemoryBytes != 65656212*1024 {
		t.Errorf("machine: %s %s %q %d CPUs %d bytes", m.Arch, m.Board, m.BoardModel, m.CPUs, m.MemoryBytes)
	}
	if len(m.Disks) != 2 {
		t.Fatalf("disks (zram, sr0, loop left out): %+v", m.Disks)
	}
	root := diskNamed(m, "nvme0n1")
	if root == nil || !root.InUse || !strings.Contains(root.InUseReason, "nvme0n1p2 holds / (the running system)") ||
		!strings.Contains(root.InUseReason, "nvme0n1p3 is in use as swap") {
		t.Errorf("nvme0n1: %+v", root)
	}
	if free := diskNamed(m, "nvme1n1"); free == nil || free.InUse || free.ByID == "" {
		t.Errorf("nvme1n1 must be free: %+v", free)
	}
	var names []string
	for _, i := range m.Interfaces {
		names = append(names, i.Name)
	}
	if strings.Join(names, " ") != "lo enp5s0 docker0 veth3f1c2ab" {
		t.Errorf("interfaces: %v", names)
	}
	if len(m.Routes) != 9 {
		t.Errorf("routes: %d", len(m.Routes))
	}
}

func TestRPi4(t *testing.T) {
	m := detectRecorded(t, "rpi4")
	if m.Arch != ArchAarch64 || m.Board != BoardRPi4 || m.BoardModel != "Raspberry Pi 4 Model B Rev 1.4" || m.CPUs != 4 || m.MemoryBytes != 7997576*1024 {
		t.Errorf("machine: %s %s %q %d CPUs %d bytes", m.Arch, m.Board, m.BoardModel, m.CPUs, m.MemoryBytes)
	}
	sd, ssd := diskNamed(m, "mmcblk0"), diskNamed(m, "sda")
	if sd == nil || !sd.InUse || !strings.Contains(sd.InUseReason, "mmcblk0p2 holds /") || !strings.Contains(sd.InUseReason, "/boot/firmware") {
		t.Errorf("SD card: %+v", sd)
	}
	if ssd == nil || ssd.InUse {
		t.Errorf("USB SSD must be free: %+v", ssd)
	}
	if len(m.Disks) != 2 {
		t.Errorf("ram0 must be left out: %+v", m.Disks)
	}
	if len(m.Interfaces) != 3 || m.Interfaces[1].Name != "eth0" || !m.Interfaces[1].DHCP4 {
		t.Errorf("interfaces: %+v", m.Interfaces)
	}
}

func TestRescue(t *testing.T) {
	m := detectRecorded(t, "rescue")
	if m.Arch != ArchX86_64 || m.Board != BoardGeneric || m.CPUs != 12 || m.MemoryBytes != 65614860*1024 {
		t.Errorf("machine: %s %s %d CPUs %d bytes", m.Arch, m.Board, m.CPUs, m.MemoryBytes)
	}
	hdd := diskNamed(m, "sda")
	if hdd == nil || !hdd.Rotational || !hdd.InUse || !strings.Contains(hdd.InUseReason, "held by md127") {
		t.Errorf("sda: %+v", hdd)
	}
	for _, n := range []string{"nvme0n1", "nvme1n1"} {
		if d := diskNamed(m, n); d == nil || d.InUse {
			t.Errorf("%s must be free in the rescue system: %+v", n, d)
		}
	}
	var onlink bool
	for _, r := range m.Routes {
		onlink = onlink || (r.Destination == "default" && r.Gateway == "172.31.1.1" && r.OnLink)
	}
	if !onlink {
		t.Errorf("on-link default route missing: %+v", m.Routes)
	}
}

func TestWarningsInsteadOfFailure(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "proc/sys/kernel"), 0o755)
	os.WriteFile(filepath.Join(root, "proc/sys/kernel/arch"), []byte("armv7l\n"), 0o644)
	os.WriteFile(filepath.Join(root, "proc/meminfo"), []byte("MemTotal: lots\n"), 0o644)
	m, err := Detect(context.Background(), Sources{System: disk.System{Root: root}, Network: netstate.Dir(t.TempDir())})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"architecture armv7l: homestaker builds nodes for x86_64 and aarch64",
		"memory: " + filepath.Join(root, "proc/meminfo") + ": MemTotal line",
		"CPUs: open " + filepath.Join(root, "sys/devices/system/cpu/online"),
		"disks: list block devices",
		"network: read network interfaces: recorded ip -details -json addr show",
	}
	if len(m.Warnings) != len(want) {
		t.Fatalf("warnings: %q", m.Warnings)
	}
	for i, w := range want {
		if !strings.HasPrefix(m.Warnings[i], w) {
			t.Errorf("warning %d = %q, want prefix %q", i, m.Warnings[i], w)
		}
	}
	if m.Arch != "armv7l" || m.Disks == nil || m.Interfaces == nil || m.Routes == nil {
		t.Errorf("%+v", m)
	}

	if m, err := Detect(context.Background(), Sources{System: disk.System{Root: root}}); err != nil || m.Warnings[len(m.Warnings)-1] != "network: not read" {
		t.Errorf("no network source: %v %q", err, m.Warnings)
	}
	if _, err := Detect(context.Background(), Sources{System: disk.System{Root: filepath.Join(root, "nowhere")}}); err == nil || !strings.Contains(err.Error(), "no /proc") {
		t.Errorf("not a root: %v", err)
	}
}

// TestLive detects the machine the tests run on.
func TestLive(t *testing.T) {
	m, err := Detect(context.Background(), Sources{System: disk.System{Root: "/"}})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"amd64": ArchX86_64, "arm64": ArchAarch64}[runtime.GOARCH]
	if want != "" && m.Arch != want {
		t.Errorf("arch %q on GOARCH %s", m.Arch, runtime.GOARCH)
	}
	if m.MemoryBytes == 0 || m.CPUs == 0 {
		t.Errorf("memory %d, CPUs %d: %q", m.MemoryBytes, m.CPUs, m.Warnings)
	}
}

func TestParsers(t *testing.T) {
	for in, want := range map[string]int{"0": 1, "0-3": 4, "0-3,6,8-11\n": 9} {
		if got, err := ParseCPUList(in); err != nil || got != want {
			t.Errorf("ParseCPUList(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "a", "3-1", "0-", "-1", "0,,1"} {
		if _, err := ParseCPUList(bad); err == nil {
			t.Errorf("ParseCPUList(%q) accepted", bad)
		}
	}
	if n, err := ParseMemTotal(strings.NewReader("MemFree: 1 kB\nMemTotal:  8 kB\n"), "m"); err != nil || n != 8192 {
		t.Errorf("ParseMemTotal: %d %v", n, err)
	}
	if _, err := ParseMemTotal(strings.NewReader("MemFree: 1 kB\n"), "m"); err == nil || !strings.Contains(err.Error(), "m has no MemTotal") {
		t.Errorf("no MemTotal: %v", err)
	}
}

func FuzzParseCPUList(f *testing.F) {
	for _, s := range []string{"0-3", "0-3,6,8-11", "7"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseCPUList(s)
		if err == nil && n <= 0 {
			t.Fatalf("%q: %d CPUs without an error", s, n)
		}
	})
}
