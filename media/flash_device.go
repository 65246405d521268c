package media

import (
	"errors"
	"fmt"
	"os"

	"github.com/homestaker/homestaker/disk"
	"golang.org/x/sys/unix"
)

// flashDevice is a block device opened exclusively for a flash. It writes
// with O_DIRECT when the device accepts it, so the image does not fill the
// page cache and the write speed shown is the device's own.
type flashDevice struct {
	f    *os.File
	path string
	// direct is true while the file is in O_DIRECT mode.
	direct bool
	// sector is the logical sector size: the unit of O_DIRECT offsets and lengths.
	sector int
	// size is the device's size in bytes, as the kernel reports it now.
	size int64
	// onBuffered is called once when the device refuses direct I/O and
	// writing falls back to the page cache.
	onBuffered func(reason string)
}

// openFlashDevice opens path read-write with O_EXCL, which the kernel refuses
// (EBUSY) while the disk or a partition is mounted, swap, or held by RAID,
// LVM, device-mapper or another exclusive opener.
func openFlashDevice(path, shown string) (*flashDevice, error) {
	flags := unix.O_RDWR | unix.O_EXCL | unix.O_CLOEXEC
	direct := true
	fd, err := unix.Open(path, flags|unix.O_DIRECT, 0)
	if errors.Is(err, unix.EINVAL) {
		direct = false
		fd, err = unix.Open(path, flags, 0)
	}
	if errors.Is(err, unix.EBUSY) {
		return nil, &disk.RefusedError{Target: shown, Reason: "it is busy: the kernel reports it or a partition as mounted or held; unmount it first"}
	}
	if err != nil {
		return nil, fmt.Errorf("open %s for writing: %w", shown, err)
	}
	f := os.NewFile(uintptr(fd), path)
	d := &flashDevice{f: f, path: shown, direct: direct}
	if err := d.probe(); err != nil {
		f.Close()
		return nil, err
	}
	return d, nil
}

// probe reads the device's kind, size and logical sector size from the kernel.
func (d *flashDevice) probe() error {
	var st unix.Stat_t
	if err := unix.Fstat(int(d.f.Fd()), &st); err != nil {
		return fmt.Errorf("stat %s: %w", d.path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFBLK {
		return &disk.RefusedError{Target: d.path, Reason: "it is not a block device"}
	}
	size, err := unix.IoctlGetUint64(int(d.f.Fd()), unix.BLKGETSIZE64)
	if err != nil {
		return fmt.Errorf("ioctl(%s, BLKGETSIZE64): %w", d.path, err)
	}
	sector, err := unix.IoctlGetInt(int(d.f.Fd()), unix.BLKSSZGET)
	if err != nil {
		return fmt.Errorf("ioctl(%s, BLKSSZGET): %w", d.path, err)
	}
	if sector < 512 || sector > flashHead || sector&(sector-1) != 0 {
		return fmt.Errorf("%s reports a logical sector size of %d bytes, which homestaker cannot write", d.path, sector)
	}
	d.size, d.sector = int64(size), sector
	return nil
}

// WriteAt writes p at off. When the device refuses an O_DIRECT write
// (EINVAL), it leaves direct mode and writes through the page cache.
func (d *flashDevice) WriteAt(p []byte, off int64) (int, error) {
	n, err := d.f.WriteAt(p, off)
	if d.direct && errors.Is(err, unix.EINVAL) {
		if berr := d.buffered(); berr != nil {
			return n, fmt.Errorf("%w (and leaving direct I/O failed: %v)", err, berr)
		}
		if d.onBuffered != nil {
			d.onBuffered(err.Error())
		}
		var m int
		m, err = d.f.WriteAt(p[n:], off+int64(n))
		n += m
	}
	return n, err
}

// ReadAt reads the device; in direct mode offsets and lengths are whole sectors.
func (d *flashDevice) ReadAt(p []byte, off int64) (int, error) {
	n, err := d.f.ReadAt(p, off)
	if d.direct && errors.Is(err, unix.EINVAL) {
		if berr := d.buffered(); berr != nil {
			return n, err
		}
		var m int
		m, err = d.f.ReadAt(p[n:], off+int64(n))
		n += m
	}
	return n, err
}

func (d *flashDevice) buffered() error {
	fd := int(d.f.Fd())
	fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err != nil {
		return err
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFL, fl&^unix.O_DIRECT); err != nil {
		return err
	}
	d.direct = false
	return nil
}

// flush makes the written image durable: fsync waits for the device's
// write cache too.
func (d *flashDevice) flush() error {
	if err := d.f.Sync(); err != nil {
		return fmt.Errorf("flush %s: %w", d.path, err)
	}
	return nil
}

// dropCache empties the kernel's cache of the device (BLKFLSBUF), so the
// read-back comes from the stick even where direct I/O is off.
func (d *flashDevice) dropCache() error {
	fd := int(d.f.Fd())
	err := unix.IoctlSetInt(fd, unix.BLKFLSBUF, 0)
	if err == nil {
		return nil
	}
	// Without CAP_SYS_ADMIN, ask the kernel to drop the clean pages instead.
	if ferr := unix.Fadvise(fd, 0, 0, unix.FADV_DONTNEED); ferr != nil {
		return fmt.Errorf("drop the cached pages of %s: ioctl(BLKFLSBUF): %v; fadvise: %w", d.path, err, ferr)
	}
	return nil
}

// rereadPartitions asks the kernel to read the new partition table
// (BLKRRPART), so the stick's partitions show without replugging it.
// EINVAL means the device has no partition scanning (a loop device).
func (d *flashDevice) rereadPartitions() error {
	err := unix.IoctlSetInt(int(d.f.Fd()), unix.BLKRRPART, 0)
	if err == nil || errors.Is(err, unix.EINVAL) {
		return nil
	}
	return fmt.Errorf("ioctl(%s, BLKRRPART): %w", d.path, err)
}

func (d *flashDevice) Close() error { return d.f.Close() }

// checkNotBusy opens the device read-only with O_EXCL and closes it again:
// a dry run learns what the real run would, without writing.
func checkNotBusy(path, shown string) error {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_EXCL|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.EBUSY) {
		return &disk.RefusedError{Target: shown, Reason: "it is busy: the kernel reports it or a partition as mounted or held; unmount it first"}
	}
	if err != nil {
		return fmt.Errorf("open %s: %w", shown, err)
	}
	return unix.Close(fd)
}
