package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/homestaker/homestaker/detect"
)

// runDetectCLI runs `homestaker detect` on a recorded machine: its system
// root under disk/testdata and its ip dumps under netstate/testdata.
func runDetectCLI(t *testing.T, machine string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	env := &cliEnv{stdin: strings.NewReader(""), stdout: &out, stderr: &errOut, getenv: func(k string) string {
		switch k {
		case systemRootEnv:
			return filepath.Join("disk", "testdata", machine)
		case networkDumpsEnv:
			return filepath.Join("netstate", "testdata", machine)
		}
		return ""
	}}
	code := run(context.Background(), env, append([]string{"detect"}, args...))
	return code, out.String(), errOut.String()
}

func TestDetectJSON(t *testing.T) {
	type disk struct{ name, reason string } // reason "" = free
	for _, c := range []struct {
		machine, arch, board string
		memory               uint64
		cpus                 int
		disks                []disk
		interfaces           []string
	}{
		{"server-2nvme", "x86_64", "generic", 65656212 * 1024, 16,
			[]disk{{"nvme0n1", "nvme0n1p2 holds / (the running system)"}, {"nvme1n1", ""}},
			[]string{"lo", "enp5s0", "docker0", "veth3f1c2ab"}},
		{"rpi4", "aarch64", "rpi4", 7997576 * 1024, 4,
			[]disk{{"mmcblk0", "mmcblk0p1 is mounted at /boot/firmware"}, {"sda", ""}},
			[]string{"lo", "eth0", "wlan0"}},
		{"rescue", "x86_64", "generic", 65614860 * 1024, 12,
			[]disk{{"nvme0n1", ""}, {"nvme1n1", ""}, {"sda", "sda1 is held by md127"}},
			[]string{"lo", "eth0", "eth1"}},
	} {
		t.Run(c.machine, func(t *testing.T) {
			code, out, errOut := runDetectCLI(t, c.machine, "--json")
			if code != exitOK {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			var m detect.Machine
			dec := json.NewDecoder(strings.NewReader(out))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&m); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			if m.Arch != c.arch || m.Board != c.board || m.MemoryBytes != c.memory || m.CPUs != c.cpus || len(m.Warnings) != 0 {
				t.Errorf("got %s %s %d bytes %d CPUs, warnings %q", m.Arch, m.Board, m.MemoryBytes, m.CPUs, m.Warnings)
			}
			if len(m.Disks) != len(c.disks) {
				t.Fatalf("disks: %+v", m.Disks)
			}
			for i, d := range c.disks {
				got := m.Disks[i]
				if got.Name != d.name || got.InUse != (d.reason != "") || !strings.Contains(got.InUseReason, d.reason) {
					t.Errorf("disk %d: %+v, want %s in use for %q", i, got, d.name, d.reason)
				}
			}
			var names []string
			for _, i := range m.Interfaces {
				names = append(names, i.Name)
			}
			if strings.Join(names, " ") != strings.Join(c.interfaces, " ") {
				t.Errorf("interfaces %v, want %v", names, c.interfaces)
			}
			for _, key := range []string{`"arch"`, `"board"`, `"memoryBytes"`, `"cpus"`, `"disks"`, `"interfaces"`, `"routes"`, `"inUseReason"`, `"warnings": []`} {
				if !strings.Contains(out, key) {
					t.Errorf("JSON lacks %s", key)
				}
			}
		})
	}
}

func TestDetectHuman(t *testing.T) {
	want := map[string][]string{
		"server-2nvme": {"architecture  x86_64", "memory        62.6 GiB", "CPUs          16",
			"in use: nvme0n1p1 is mounted at /boot/efi", "enp5s0       a8:a1:59:12:34:56  up    kept across a kexec",
			"docker0      02:42:5c:8e:1f:0a  up    bridge, not carried", "192.168.1.50/24 dynamic (DHCP)",
			"inet   via 192.168.1.1 on enp5s0 (from DHCP, metric 100)"},
		"rpi4": {"architecture  aarch64", "board         rpi4 (Raspberry Pi 4 Model B Rev 1.4)", "memory        7.6 GiB",
			"/dev/sda          1.0 TB  Extreme 55AE (hdd)\n      free\n"},
		"rescue": {"203.0.113.10/32 static", "2a01:4f8:10a:3c8e::2/64 static",
			"inet   via 172.31.1.1 on eth0 (on-link, set by hand or script)",
			"inet6  via fe80::1 on eth0 (set by hand or script, metric 1024)",
			"in use: sda1 is held by md127 (RAID, LVM or device-mapper)"},
	}
	for machine, lines := range want {
		code, out, errOut := runDetectCLI(t, machine)
		if code != exitOK || errOut != "" {
			t.Fatalf("%s: exit %d: %s", machine, code, errOut)
		}
		for _, l := range lines {
			if !strings.Contains(out, l) {
				t.Errorf("%s: output lacks %q:\n%s", machine, l, out)
			}
		}
		for _, l := range strings.Split(out, "\n") {
			if utf8.RuneCountInString(l) > outputWidth {
				t.Errorf("%s: line wider than %d columns: %q", machine, outputWidth, l)
			}
		}
	}
}

func TestDetectWarningsAndErrors(t *testing.T) {
	var out, errOut bytes.Buffer
	root := t.TempDir()
	env := &cliEnv{stdin: strings.NewReader(""), stdout: &out, stderr: &errOut, getenv: func(k string) string {
		switch k {
		case systemRootEnv:
			return filepath.Join("disk", "testdata", "rpi4")
		case networkDumpsEnv:
			return root // no recorded dumps
		}
		return ""
	}}
	if code := run(context.Background(), env, []string{"detect"}); code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if !strings.Contains(errOut.String(), "homestaker detect: warning: network: read network interfaces") ||
		!strings.Contains(out.String(), "no interfaces read") {
		t.Errorf("stdout:\n%s\nstderr:\n%s", out.String(), errOut.String())
	}
	if code, _, _ := runDetectCLI(t, "rpi4", "--bogus"); code != exitUsage {
		t.Errorf("bad flag: exit %d", code)
	}
	if code, _, _ := runDetectCLI(t, "rpi4", "extra"); code != exitUsage {
		t.Errorf("extra argument: exit %d", code)
	}
	if code, _, errOut := runDetectCLI(t, "no-such-machine"); code != exitFailure || !strings.Contains(errOut, "not a Linux system root") {
		t.Errorf("missing root: exit %d: %s", code, errOut)
	}
}

func TestWrapKeepsWidth(t *testing.T) {
	var b bytes.Buffer
	long := strings.Repeat("x", 100)
	text := "short " + long + " tail words that go on and on and on and on and on and on and on"
	wrap(&b, "  ", "    ", text)
	for _, l := range strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n") {
		if utf8.RuneCountInString(l) > outputWidth {
			t.Errorf("line too wide: %q", l)
		}
	}
	if got := strings.ReplaceAll(strings.ReplaceAll(b.String(), "\n", ""), " ", ""); got != strings.ReplaceAll(text, " ", "") {
		t.Errorf("wrap lost text: %q", b.String())
	}
}
