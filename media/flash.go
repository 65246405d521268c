package media

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/homestaker/homestaker/disk"
	"github.com/homestaker/homestaker/report"
)

// FlashStep is the step name of every event the Flasher reports.
const FlashStep = "flash"

// DefaultFlashBlockSize is the size of each read and write of a flash: large
// enough that a USB stick sees long sequential writes, small enough that the
// two buffers of a flash stay a few MiB.
const DefaultFlashBlockSize = 4 << 20

// flashHead is how much of the image is written last. It holds the MBR, the
// primary GPT and the ISO's system area, so a stick whose write stopped
// part-way shows no partition table and no boot code.
const flashHead = 1 << 20

// Flasher writes a boot image (a copy-to-RAM ISO or an SD-card image) to a
// whole disk such as a USB stick, then reads it back and compares. It holds
// the same safety rules as disk formatting: a disk in use is never written,
// and the target is re-checked right before it is opened.
type Flasher struct {
	// System is where the target disk is looked up and re-checked.
	System disk.System
	// Reporter receives the steps and the byte progress of a flash.
	Reporter report.Reporter
	// LoopBackingFile, when set, also allows the loop devices backed by this
	// file as targets (see disk.LoopDevices). Loop devices are otherwise
	// never offered: tests and bench/flash.sh set this to flash a loop
	// device standing in for a USB stick.
	LoopBackingFile string
	// BlockSize is the size of each read and write, a multiple of 1 MiB
	// (DefaultFlashBlockSize when 0).
	BlockSize int
	// Now is the clock of the progress reports (time.Now when nil).
	Now func() time.Time
	// ReportEvery is the least time between two progress events (250 ms
	// when 0), so a terminal or the wizard redraws a few times a second.
	ReportEvery time.Duration

	// beforeVerify runs after the write is flushed and before the
	// read-back; tests use it to damage the device.
	beforeVerify func() error
}

// FlashJob is an image and the disk it goes to, as checked by Prepare.
type FlashJob struct {
	// Image is the path of the image file.
	Image string
	// ImageBytes is the size of the image file.
	ImageBytes int64
	// Device is the path the user named (/dev/sdb, /dev/disk/by-id/…).
	Device string
	// Target is the whole disk Device names, as it was when checked.
	Target disk.BlockDevice
}

// FlashOptions are the per-run choices of a flash.
type FlashOptions struct {
	// DryRun does every check, reports what would be written and writes nothing.
	DryRun bool
}

// FlashResult says what a flash wrote and how fast.
type FlashResult struct {
	// Bytes is the number of image bytes written and verified.
	Bytes int64
	// Direct is false when the device refused direct I/O and the image went
	// through the page cache (flushed before the read-back).
	Direct bool
	// Write is the time from opening the device to the end of the flush;
	// Verify the time of the read-back and comparison.
	Write, Verify time.Duration
	// SHA256 is the hex digest of the image, and of the device's first Bytes bytes.
	SHA256 string
}

// BadImageError says why an image file cannot be flashed. Nothing was written.
type BadImageError struct {
	Path   string
	Reason string
}

func (e *BadImageError) Error() string {
	return fmt.Sprintf("image %s %s", e.Path, e.Reason)
}

// IncompleteError says that a write stopped part-way, because it was
// interrupted (Err wraps context.Canceled) or the device failed. The
// device's first MiB is cleared, so it boots nothing.
type IncompleteError struct {
	Device  string
	Written int64
	Total   int64
	Err     error
}

func (e *IncompleteError) Error() string {
	why := fmt.Sprintf("failed after writing %s of %s (%v)", byteText(e.Written), byteText(e.Total), e.Err)
	if errors.Is(e.Err, context.Canceled) {
		why = fmt.Sprintf("interrupted after writing %s of %s", byteText(e.Written), byteText(e.Total))
	}
	return fmt.Sprintf("%s: %s is incomplete and will not boot; run flash again", why, e.Device)
}

func (e *IncompleteError) Unwrap() error { return e.Err }

// VerifyError says that the device does not read back as the image: either
// the digests differ or reading the device failed (Err).
type VerifyError struct {
	Device       string
	Bytes        int64
	ImageSHA256  string
	DeviceSHA256 string
	Err          error
}

func (e *VerifyError) Error() string {
	const advice = "the stick is faulty or was removed; do not boot it"
	if e.Err != nil {
		return fmt.Sprintf("read back %s: %v: %s", e.Device, e.Err, advice)
	}
	return fmt.Sprintf("%s does not hold the image: its first %d bytes have SHA-256 %s, the image has %s: %s",
		e.Device, e.Bytes, e.DeviceSHA256, e.ImageSHA256, advice)
}

func (e *VerifyError) Unwrap() error { return e.Err }

// Prepare checks that image can be flashed to device and returns the job:
// the image is a non-empty regular file that is not compressed, and device
// names a whole disk that is not in use and holds at least the image. It
// returns a *BadImageError or a *disk.RefusedError for what it refuses, and
// changes nothing.
func (f *Flasher) Prepare(image, device string) (FlashJob, error) {
	st, err := checkImage(image)
	if err != nil {
		return FlashJob{}, err
	}
	devs, err := f.devices()
	if err != nil {
		return FlashJob{}, err
	}
	target, err := disk.Lookup(f.System, devs, device)
	if err != nil {
		return FlashJob{}, &disk.RefusedError{Target: device, Reason: err.Error()}
	}
	if target.InUse {
		return FlashJob{}, &disk.RefusedError{Target: device, Reason: target.InUseReason}
	}
	if target.SizeBytes < uint64(st.Size()) {
		return FlashJob{}, &disk.RefusedError{Target: device, Reason: fmt.Sprintf(
			"it holds %d bytes (%s) and the image %s has %d bytes (%s): use a larger stick or card",
			target.SizeBytes, byteText(int64(target.SizeBytes)), image, st.Size(), byteText(st.Size()))}
	}
	return FlashJob{Image: image, ImageBytes: st.Size(), Device: device, Target: target}, nil
}

// devices lists the disks a flash may target: Discover's, plus the loop
// devices backed by LoopBackingFile.
func (f *Flasher) devices() ([]disk.BlockDevice, error) {
	devs, err := disk.Discover(f.System)
	if err != nil {
		return nil, err
	}
	if f.LoopBackingFile != "" {
		loops, err := disk.LoopDevices(f.System, f.LoopBackingFile)
		if err != nil {
			return nil, err
		}
		devs = append(devs, loops...)
	}
	return devs, nil
}

// devicePath is where the target's device node is under System.
func (f *Flasher) devicePath(d disk.BlockDevice) string {
	root := f.System.Root
	if root == "" {
		root = "/"
	}
	return filepath.Join(root, d.Path)
}

func (f *Flasher) say(msg string) {
	f.reporter().Report(report.Event{Step: FlashStep, Message: msg})
}

func (f *Flasher) reporter() report.Reporter {
	if f.Reporter == nil {
		return report.Discard
	}
	return f.Reporter
}

func (f *Flasher) now() time.Time {
	if f.Now == nil {
		return time.Now()
	}
	return f.Now()
}

func (f *Flasher) blockSize() (int, error) {
	if f.BlockSize == 0 {
		return DefaultFlashBlockSize, nil
	}
	if f.BlockSize < flashHead || f.BlockSize%flashHead != 0 {
		return 0, fmt.Errorf("flash block size %d is not a positive multiple of 1 MiB", f.BlockSize)
	}
	return f.BlockSize, nil
}

// describe names a disk for the user: path, by-id, model and size, leaving
// out the name the user gave (named).
func describe(d disk.BlockDevice, named string) string {
	var parts []string
	for _, p := range []string{d.Path, d.ByID} {
		if p != "" && p != named {
			parts = append(parts, p)
		}
	}
	if d.Model != "" {
		parts = append(parts, d.Model)
	}
	parts = append(parts, byteText(int64(d.SizeBytes)))
	return strings.Join(parts, ", ")
}

// byteText is a size for people: 1.2 GiB, 512.0 MiB, 300 bytes.
func byteText(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}
