package disk

import (
	"encoding/json"
	"sort"
	"strings"
	"testing"
)

func discover(t *testing.T, machine string) (System, map[string]BlockDevice) {
	t.Helper()
	sys := System{Root: "testdata/" + machine}
	devs, err := Discover(sys)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]BlockDevice{}
	var names []string
	for _, d := range devs {
		m[d.Name] = d
		names = append(names, d.Name)
	}
	t.Logf("%s: %s", machine, strings.Join(names, " "))
	return sys, m
}

func TestDiscoverServer(t *testing.T) {
	sys, devs := discover(t, "server-2nvme")
	if len(devs) != 2 {
		t.Fatalf("want nvme0n1 and nvme1n1 only (loop, zram, sr left out), got %v", devs)
	}
	root := devs["nvme0n1"]
	for _, want := range []string{"nvme0n1p2 holds /", "nvme0n1p1 is mounted at /boot/efi", "nvme0n1p3 is in use as swap"} {
		if !root.InUse || !strings.Contains(root.InUseReason, want) {
			t.Errorf("nvme0n1 reason %q lacks %q", root.InUseReason, want)
		}
	}
	data := devs["nvme1n1"]
	if data.InUse || data.SectorSize != 4096 || data.SizeBytes != 7501476528*512 ||
		data.ByID != "/dev/disk/by-id/nvme-SAMSUNG_MZQL23T8HCLS-00A07_S64HNE0R600002" ||
		data.Model != "SAMSUNG MZQL23T8HCLS-00A07" || data.Rotational || data.Removable {
		t.Errorf("nvme1n1: %+v", data)
	}
	got, err := Lookup(sys, []BlockDevice{root, data}, data.ByID)
	if err != nil || got.Name != "nvme1n1" {
		t.Errorf("Lookup by-id: %v %v", got.Name, err)
	}
	if _, err := Lookup(sys, []BlockDevice{root, data}, "/dev/disk/by-id/nvme-SAMSUNG_MZQL23T8HCLS-00A07_S64HNE0R600001-part1"); err == nil || !strings.Contains(err.Error(), "whole disk") {
		t.Errorf("Lookup of a partition: %v", err)
	}
	if _, err := Lookup(sys, []BlockDevice{root, data}, "/dev/loop0"); err == nil {
		t.Error("Lookup of loop0 succeeded")
	}
	if _, err := Lookup(sys, []BlockDevice{root, data}, "/dev/sdz"); err == nil || !strings.Contains(err.Error(), "no such device") {
		t.Errorf("Lookup of a missing disk: %v", err)
	}
}

func TestDiscoverRPi4(t *testing.T) {
	_, devs := discover(t, "rpi4")
	sd, ssd := devs["mmcblk0"], devs["sda"]
	if !sd.InUse || !strings.Contains(sd.InUseReason, "mmcblk0p2 holds /") || sd.Model != "SN64G" {
		t.Errorf("mmcblk0: %+v", sd)
	}
	if ssd.InUse || !ssd.Rotational || ssd.ByID != "/dev/disk/by-id/usb-SanDisk_Extreme_55AE_323130363734393030303030-0:0" {
		t.Errorf("sda: %+v", ssd)
	}
	if _, ok := devs["ram0"]; ok {
		t.Error("ram0 listed")
	}
}

func TestDiscoverRescue(t *testing.T) {
	_, devs := discover(t, "rescue")
	if len(devs) != 3 {
		t.Fatalf("want nvme0n1 nvme1n1 sda, got %d", len(devs))
	}
	if devs["nvme0n1"].InUse || devs["nvme1n1"].InUse {
		t.Errorf("rescue NVMe disks are free: %+v", devs)
	}
	if sda := devs["sda"]; !sda.InUse || !strings.Contains(sda.InUseReason, "sda1 is held by md127") {
		t.Errorf("sda: %+v", sda)
	}
}

func TestBlockDeviceJSON(t *testing.T) {
	_, devs := discover(t, "rpi4")
	b, err := json.Marshal(devs["sda"])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	want := "byId inUse inUseReason model name path removable rotational sizeBytes"
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if got := strings.Join(keys, " "); got != want {
		t.Errorf("JSON keys %q, want %q", got, want)
	}
}

func TestParseMountInfo(t *testing.T) {
	ms, err := ParseMountInfo(strings.NewReader(
		"36 35 98:0 /mnt1 /mnt/my\\040disk rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n\n" +
			"37 35 0:5 / /dev rw - devtmpfs udev rw\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 2 || ms[0].MountPoint != "/mnt/my disk" || ms[0].MajorMinor != "98:0" || ms[0].FSType != "ext3" || ms[0].Source != "/dev/root" {
		t.Errorf("%+v", ms)
	}
	if _, err := ParseMountInfo(strings.NewReader("garbage line\n")); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("garbage: %v", err)
	}
}

func FuzzParseMountInfo(f *testing.F) {
	f.Add("22 1 259:2 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p2 rw\n")
	f.Add("31 1 0:30 / /root/my\\040notes rw - tmpfs tmpfs rw\n")
	f.Add("1 2 3:4 a b c - \\")
	f.Fuzz(func(t *testing.T, s string) {
		ms, err := ParseMountInfo(strings.NewReader(s))
		if err == nil {
			for _, m := range ms {
				if !strings.Contains(m.MajorMinor, ":") {
					t.Errorf("accepted %q without a device number", m.MajorMinor)
				}
			}
		}
	})
}

func FuzzParseSwaps(f *testing.F) {
	f.Add("Filename\tType\tSize\tUsed\tPriority\n/dev/sda3 partition 8388604 0 -2\n")
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = ParseSwaps(strings.NewReader(s))
	})
}
