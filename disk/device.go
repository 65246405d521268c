package disk

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"context"

	"github.com/homestaker/homestaker/plan"
	"golang.org/x/sys/unix"
)

// wipeBytes is how much is zeroed at the start and end of the disk and of
// each new partition: it covers the GPT, MBR, LVM, mdraid (0.90 to 1.2),
// ext4, xfs and btrfs primary superblocks.
const wipeBytes = 1 << 20

// Check refuses a disk that must not be written: it returns a *RefusedError
// when want is in use, or when the disk found now under the same name is
// missing or differs from want in by-id name, size or sector size. It
// changes nothing.
func Check(sys System, want BlockDevice) (BlockDevice, error) {
	devs, err := Discover(sys)
	if err != nil {
		return BlockDevice{}, err
	}
	return CheckIn(devs, want)
}

// CheckIn is Check against devs, a fresh listing of the block devices (from
// Discover, or LoopDevices for a loop device named by its backing file).
func CheckIn(devs []BlockDevice, want BlockDevice) (BlockDevice, error) {
	var cur *BlockDevice
	for i := range devs {
		if devs[i].Name == want.Name {
			cur = &devs[i]
		}
	}
	refuse := func(format string, a ...any) (BlockDevice, error) {
		return BlockDevice{}, &RefusedError{Target: want.Path, Reason: fmt.Sprintf(format, a...)}
	}
	switch {
	case cur == nil:
		return refuse("it is gone (no %s among the block devices)", want.Name)
	case cur.ByID != want.ByID:
		return refuse("its by-id name changed from %q to %q: another disk took its place", want.ByID, cur.ByID)
	case cur.SizeBytes != want.SizeBytes || cur.SectorSize != want.SectorSize:
		return refuse("its size changed from %d to %d bytes (%d-byte sectors, was %d)", want.SizeBytes, cur.SizeBytes, cur.SectorSize, want.SectorSize)
	case cur.InUse:
		return refuse("%s", cur.InUseReason)
	}
	return *cur, nil
}

// checkNotBusy opens the disk exclusively, read-only: the kernel refuses
// that while anything (a mount, swap, LVM, RAID, another program's exclusive
// open) holds the disk or a partition.
func checkNotBusy(sys System, d BlockDevice) error {
	fd, err := unix.Open(sys.path(d.Path), unix.O_RDONLY|unix.O_EXCL|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.EBUSY) {
		return &RefusedError{Target: d.Path, Reason: "it is busy: the kernel reports it or a partition as held by another user"}
	}
	if err != nil {
		return fmt.Errorf("open %s: %w", d.Path, err)
	}
	return unix.Close(fd)
}

// Device writes l to the block device want, which the user confirmed. Right
// before writing it re-checks want (Check) and that the disk is not busy;
// then it clears old signatures, writes and verifies the GPT, waits for the
// kernel to show the partitions, and creates the filesystems with their
// folders and the host key. A dry run does the checks and reports the rest.
func (f *Formatter) Device(ctx context.Context, l Layout, want BlockDevice, o Options) error {
	j := f.job(ctx, o)
	if err := l.Validate(); err != nil {
		return fmt.Errorf("disk %s: %w", want.Path, err)
	}
	if l.SizeBytes != want.SizeBytes || l.SectorSize != want.SectorSize {
		return fmt.Errorf("disk %s has %d bytes in %d-byte sectors, the layout is for %d in %d-byte sectors",
			want.Path, want.SizeBytes, want.SectorSize, l.SizeBytes, l.SectorSize)
	}
	if o.HostKeyFile != "" {
		if err := checkHostKey(o.HostKeyFile); err != nil {
			return err
		}
	}
	j.say(fmt.Sprintf("re-check %s (%s)", want.Path, strings.TrimPrefix(want.ByID+", ", ", ")+humanBytes(want.SizeBytes)))
	if _, err := Check(f.System, want); err != nil {
		return err
	}
	if err := checkNotBusy(f.System, want); err != nil {
		return err
	}
	dev := f.System.path(want.Path)
	j.say("partition table:\n" + l.String())
	if err := j.do("clear old signatures at the start and end of "+want.Path+" and of each new partition",
		func() error { return wipe(dev, l) }); err != nil {
		return err
	}
	if err := j.do("write the GPT to "+want.Path, func() error { return writeGPT(dev, l) }); err != nil {
		return err
	}
	if err := j.do("read the GPT back from "+want.Path+" and check it", func() error { return verifyGPT(dev, l) }); err != nil {
		return err
	}
	parts := make([]string, len(l.Partitions))
	for i := range l.Partitions {
		parts[i] = partitionName(want.Name, i+1)
	}
	if err := j.do("have the kernel re-read the partition table and wait for "+fmt.Sprint(parts),
		func() error { return f.rereadAndWait(ctx, dev, want.Name, parts) }); err != nil {
		return err
	}
	work, cleanup, err := j.workDir()
	if err != nil {
		return err
	}
	defer cleanup()
	for i, p := range l.Partitions {
		target := "/dev/" + parts[i]
		if err := j.makeDeviceFS(f.System.path(target), i+1, p, l.SectorSize, work, o.HostKeyFile); err != nil {
			return fmt.Errorf("format %s as %s: %w", target, p.Filesystem.Type, err)
		}
	}
	j.say(fmt.Sprintf("%s is ready: %s", want.Path, describeFS(l)))
	return nil
}

// PartitionDevice is the device of partition n of the disk with the kernel
// name diskName: /dev/nvme0n1p3, /dev/sda3.
func PartitionDevice(diskName string, n int) string { return "/dev/" + partitionName(diskName, n) }

// partitionName is the kernel's name for partition n of disk: a "p" goes
// between names ending in a digit and the number (nvme0n1p1, mmcblk0p1, sda1).
func partitionName(disk string, n int) string {
	if c := disk[len(disk)-1]; c >= '0' && c <= '9' {
		return disk + "p" + strconv.Itoa(n)
	}
	return disk + strconv.Itoa(n)
}

// wipe zeroes wipeBytes at the start and end of the disk and of each of l's
// partitions, through the whole-disk device, and flushes it.
func wipe(dev string, l Layout) error {
	f, err := os.OpenFile(dev, os.O_WRONLY|unix.O_EXCL, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", dev, err)
	}
	defer f.Close()
	zero := make([]byte, wipeBytes)
	ranges := [][2]uint64{{0, wipeBytes}, {l.SizeBytes - wipeBytes, l.SizeBytes}}
	for _, p := range l.Partitions {
		ranges = append(ranges, [2]uint64{p.StartBytes, p.StartBytes + wipeBytes}, [2]uint64{p.EndBytes() - wipeBytes, p.EndBytes()})
	}
	for _, r := range ranges {
		if _, err := f.WriteAt(zero[:r[1]-r[0]], int64(r[0])); err != nil {
			return fmt.Errorf("zero bytes %d–%d of %s: %w", r[0], r[1], dev, err)
		}
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("flush %s: %w", dev, err)
	}
	return f.Close()
}

// rereadAndWait asks the kernel to re-read the partition table (BLKRRPART,
// retried while a udev probe holds the disk) and waits until every partition
// shows in sysfs and /dev.
func (f *Formatter) rereadAndWait(ctx context.Context, dev, disk string, parts []string) error {
	settle := f.Settle
	if settle == 0 {
		settle = 15 * time.Second
	}
	deadline := time.Now().Add(settle)
	for {
		err := blkrrpart(dev)
		if err == nil {
			break
		}
		if !errors.Is(err, unix.EBUSY) || time.Now().After(deadline) {
			return fmt.Errorf("re-read the partition table of %s: %w", dev, err)
		}
		if err := sleep(ctx, 200*time.Millisecond); err != nil {
			return err
		}
	}
	for _, p := range parts {
		for {
			_, errSys := os.Stat(f.System.path(filepath.Join("/sys/block", disk, p, "partition")))
			_, errDev := os.Stat(f.System.path("/dev/" + p))
			if errSys == nil && errDev == nil {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("the kernel shows no /dev/%s %s after re-reading %s's partition table", p, settle, dev)
			}
			if err := sleep(ctx, 100*time.Millisecond); err != nil {
				return err
			}
		}
	}
	return nil
}

func blkrrpart(dev string) error {
	fd, err := unix.Open(dev, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.IoctlSetInt(fd, unix.BLKRRPART, 0)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// makeDeviceFS creates partition n's filesystem on the partition device
// target, with its folders and the host key.
func (j *job) makeDeviceFS(target string, n int, p Partition, sectorSize uint64, work, hostKey string) error {
	fsys := p.Filesystem
	switch fsys.Type {
	case "":
		return nil // the BIOS boot partition: zeroed by wipe, filled by a boot loader install
	case VFAT:
		return j.run(append(append([]string{"mkfs.vfat"}, mkfsLabelArgs(fsys)...), "-s", fatClusterSectors(sectorSize), target)...)
	}
	stageDir, err := j.stageFor(work, n, p, hostKey)
	if err != nil {
		return err
	}
	switch fsys.Type {
	case plan.Ext4:
		return j.run("mkfs.ext4", "-F", "-L", fsys.Label, "-d", stageDir, target)
	case plan.XFS:
		return j.mkfsXFS(target, fsys, stageDir, work, n, "")
	case plan.Btrfs:
		if err := j.run("mkfs.btrfs", "-f", "-L", fsys.Label, target); err != nil {
			return err
		}
		return j.populateByMount([]string{"-t", "btrfs", target}, fsys, stageDir, work, n)
	}
	return fmt.Errorf("unknown filesystem %q", fsys.Type)
}
