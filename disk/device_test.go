package disk

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/homestaker/homestaker/plan"
	"github.com/homestaker/homestaker/report"
)

// TestDeviceRefusals proves that Device refuses each unsafe target before it
// writes anything: the runner must never be called.
func TestDeviceRefusals(t *testing.T) {
	sysServer, server := discover(t, "server-2nvme")
	sysRescue, rescue := discover(t, "rescue")
	sysRPi, rpi := discover(t, "rpi4")
	free := server["nvme1n1"]
	moved := free
	moved.ByID = "/dev/disk/by-id/nvme-OTHER_DISK"
	grown := free
	grown.SizeBytes += 1 << 30
	gone := free
	gone.Name, gone.Path = "nvme7n1", "/dev/nvme7n1"
	cases := []struct {
		name string
		sys  System
		dev  BlockDevice
		want string
	}{
		{"root, boot and swap", sysServer, server["nvme0n1"], "holds / (the running system)"},
		{"swap", sysServer, server["nvme0n1"], "in use as swap"},
		{"mounted", sysRPi, rpi["mmcblk0"], "mmcblk0p1 is mounted at /boot/firmware"},
		{"raid member", sysRescue, rescue["sda"], "sda1 is held by md127"},
		{"by-id changed", sysServer, moved, "by-id name changed"},
		{"size changed", sysServer, grown, "size changed"},
		{"gone", sysServer, gone, "it is gone"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l, err := New(testPlan(plan.Ext4))
			if err != nil {
				t.Fatal(err)
			}
			if l, err = l.Place(c.dev.SizeBytes, c.dev.SectorSize); err != nil {
				t.Fatal(err)
			}
			var events []string
			f := Formatter{System: c.sys, Runner: failRunner{t}, Reporter: report.Func(func(e report.Event) { events = append(events, e.Message) })}
			err = f.Device(context.Background(), l, c.dev, Options{})
			var refused *RefusedError
			if !errors.As(err, &refused) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want a refusal mentioning %q", err, c.want)
			}
			for _, e := range events {
				if strings.Contains(e, "GPT") || strings.Contains(e, "clear") {
					t.Errorf("reported a write step before refusing: %q", e)
				}
			}
		})
	}
}

func TestDeviceDryRun(t *testing.T) {
	sys, devs := discover(t, "rescue")
	d := devs["nvme1n1"]
	l, err := New(testPlan(plan.Btrfs))
	if err != nil {
		t.Fatal(err)
	}
	if l, err = l.Place(d.SizeBytes, d.SectorSize); err != nil {
		t.Fatal(err)
	}
	before := sha(t, sys.path(d.Path))
	var cmds []string
	f := Formatter{System: sys, Runner: failRunner{t}, Reporter: report.Func(func(e report.Event) {
		if e.Command != nil {
			cmds = append(cmds, strings.Join(e.Command, " "))
		}
	})}
	if err := f.Device(context.Background(), l, d, Options{DryRun: true}); err != nil {
		t.Fatal(err)
	}
	if sha(t, sys.path(d.Path)) != before {
		t.Error("dry run changed the device")
	}
	all := strings.Join(cmds, "\n")
	for _, want := range []string{"mkfs.btrfs -f -L homestaker", "nvme1n1p3", "mkfs.vfat -F 32 -n HSBOOT -s 8 testdata/rescue/dev/nvme1n1p2", "btrfs subvolume create", "umount"} {
		if !strings.Contains(all, want) {
			t.Errorf("dry run commands lack %q:\n%s", want, all)
		}
	}
}

func TestPartitionName(t *testing.T) {
	for disk, want := range map[string]string{"sda": "sda2", "nvme0n1": "nvme0n1p2", "mmcblk0": "mmcblk0p2", "vda": "vda2"} {
		if got := partitionName(disk, 2); got != want {
			t.Errorf("partitionName(%s) = %s, want %s", disk, got, want)
		}
	}
}
