package boot

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/diskfs/go-diskfs/partition/gpt"
	"github.com/homestaker/homestaker/disk"
	"golang.org/x/sys/unix"
)

// Target is a data disk (or its image) as its partition table describes it:
// where the EFI system partition and the BIOS boot partition lie.
type Target struct {
	// Path is the whole disk or the image file.
	Path string
	// Device is true for a block device, false for an image file.
	Device     bool
	SectorSize uint64
	// ESP and BIOSBoot are the partitions, by their homestaker labels;
	// BIOSBoot.Number is 0 when the disk has none.
	ESP, BIOSBoot Part
}

// Part is one partition: its 1-based number and its place in bytes.
type Part struct {
	Number            int
	StartBytes, Bytes uint64
}

// refused says why a disk gets no boot entry; nothing was written.
func refused(target, format string, a ...any) error {
	return &disk.RefusedError{Target: target, Reason: fmt.Sprintf(format, a...)}
}

// ReadTarget reads the partition table of the disk or image at path and
// finds homestaker's EFI system partition (disk.BootPartLabel) and BIOS
// boot partition (disk.BIOSPartLabel). A disk without the EFI system
// partition is refused with the reason.
func ReadTarget(path string) (Target, error) {
	f, err := os.Open(path)
	if err != nil {
		return Target{}, fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return Target{}, fmt.Errorf("stat %s: %w", path, err)
	}
	t := Target{Path: path}
	switch {
	case st.Mode()&os.ModeDevice != 0 && st.Mode()&os.ModeCharDevice == 0:
		t.Device = true
		ss, err := unix.IoctlGetInt(int(f.Fd()), unix.BLKSSZGET)
		if err != nil {
			return Target{}, fmt.Errorf("sector size of %s: %w", path, err)
		}
		t.SectorSize = uint64(ss)
	case st.Mode().IsRegular():
	default:
		return Target{}, fmt.Errorf("%s is neither a block device nor an image file", path)
	}
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return Target{}, fmt.Errorf("size of %s: %w", path, err)
	}
	var table *gpt.Table
	sizes := []uint64{t.SectorSize}
	if !t.Device {
		sizes = []uint64{512, 4096} // an image does not say; the GPT header's place does
	}
	for _, ss := range sizes {
		if tb, err := gpt.Read(f, int(ss), int(ss)); err == nil && !tb.RecoveredFromBackup {
			table, t.SectorSize = tb, ss
			break
		}
	}
	if table == nil {
		return Target{}, refused(path, "it has no readable GPT: format it with homestaker disk format first")
	}
	if err := table.Verify(f, uint64(size)); err != nil {
		return Target{}, refused(path, "its GPT is damaged: %v", err)
	}
	for i, p := range table.Partitions {
		if p == nil || p.Type == gpt.Unused || p.Type == "" {
			continue
		}
		part := Part{Number: i + 1, StartBytes: p.Start * t.SectorSize, Bytes: (p.End - p.Start + 1) * t.SectorSize}
		switch {
		case p.Name == disk.BootPartLabel && strings.EqualFold(string(p.Type), disk.TypeEFISystem):
			t.ESP = part
		case p.Name == disk.BIOSPartLabel && strings.EqualFold(string(p.Type), disk.TypeBIOSBoot):
			t.BIOSBoot = part
		}
	}
	if t.ESP.Number == 0 {
		return Target{}, refused(path, "its partition table has no EFI system partition labelled %s, so it cannot hold a boot entry; "+
			"it was formatted by another tool or an older homestaker: homestaker disk format gives it one (and erases it)", disk.BootPartLabel)
	}
	return t, nil
}

// checkPartitionsFree refuses a block device whose EFI system partition or
// BIOS boot partition is mounted or held: homestaker writes the FAT
// filesystem itself, which would corrupt one the kernel has mounted. The
// data partition may stay mounted (on the node it is), since nothing on it
// is touched. With espMounted the EFI system partition is written through
// its mount (Options.ESPDir), and only the BIOS boot partition must be free.
// sysRoot is "" for the running system.
func checkPartitionsFree(sysRoot string, t Target, espMounted bool) error {
	real, err := filepath.EvalSymlinks(t.Path)
	if err != nil {
		return fmt.Errorf("resolve %s: %w", t.Path, err)
	}
	name := filepath.Base(real)
	for _, p := range []Part{t.ESP, t.BIOSBoot} {
		if p.Number == 0 || espMounted && p == t.ESP {
			continue
		}
		part, err := partitionDevice(sysRoot, name, p.Number)
		if err != nil {
			return refused(t.Path, "%v", err)
		}
		fd, err := unix.Open(filepath.Join(sysRoot+"/", "dev", part), unix.O_RDONLY|unix.O_EXCL|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.EBUSY) {
			return refused(t.Path, "its partition %s is mounted or held by another program; unmount it first (on the node: umount /boot)", part)
		}
		if err != nil {
			return fmt.Errorf("open /dev/%s: %w", part, err)
		}
		unix.Close(fd)
	}
	return nil
}

// partitionDevice is the kernel's name of partition n of disk name, read
// from sysfs (nvme0n1 → nvme0n1p2, sda → sda2).
func partitionDevice(sysRoot, name string, n int) (string, error) {
	dir := filepath.Join(sysRoot+"/", "sys/block", name)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", fmt.Errorf("the kernel shows no block device %s: %w", name, err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name(), "partition"))
		if err == nil && strings.TrimSpace(string(b)) == strconv.Itoa(n) {
			return e.Name(), nil
		}
	}
	return "", fmt.Errorf("the kernel shows no partition %d of %s (run partprobe, or reboot, after formatting)", n, name)
}
