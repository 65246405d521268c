package media

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/homestaker/homestaker/disk"
)

// Flash writes job's image to its target, then reads it back and compares.
//
// Right before opening the device it re-checks the image (still the same
// size) and the target (disk.CheckIn: the same by-id name, size and sector
// size, not in use), and it opens the device with O_EXCL, which the kernel
// refuses while anything holds it. It clears the device's first MiB and its
// last MiB beyond the image, writes the image from its second MiB on and its
// first MiB last, flushes, drops the device's cache and compares the SHA-256
// of the image with that of the device's first ImageBytes bytes.
//
// A dry run does the checks, reports what it would write and writes nothing.
// Errors: *BadImageError and *disk.RefusedError when nothing was written,
// *IncompleteError when the write stopped part-way (ctx cancelled, or the
// device failed), *VerifyError when the device does not read back as the image.
func (f *Flasher) Flash(ctx context.Context, job FlashJob, o FlashOptions) (FlashResult, error) {
	block, err := f.blockSize()
	if err != nil {
		return FlashResult{}, err
	}
	f.say(fmt.Sprintf("re-check %s (%s) and %s", job.Device, describe(job.Target, job.Device), job.Image))
	st, err := checkImage(job.Image)
	if err != nil {
		return FlashResult{}, err
	}
	if st.Size() != job.ImageBytes {
		return FlashResult{}, &BadImageError{Path: job.Image, Reason: fmt.Sprintf(
			"changed since it was checked (%d bytes, was %d): make sure it is complete and run flash again", st.Size(), job.ImageBytes)}
	}
	devs, err := f.devices()
	if err != nil {
		return FlashResult{}, err
	}
	if _, err := disk.CheckIn(devs, job.Target); err != nil {
		return FlashResult{}, err
	}
	path := f.devicePath(job.Target)
	what := fmt.Sprintf("%s (%s) to %s in %s blocks, its first MiB last", job.Image, byteText(job.ImageBytes), job.Device, byteText(int64(block)))
	if o.DryRun {
		if err := checkNotBusy(path, job.Device); err != nil {
			return FlashResult{}, err
		}
		f.say(fmt.Sprintf("would clear the first MiB of %s and its last MiB beyond the image", job.Device))
		f.say("would write " + what)
		f.say(fmt.Sprintf("would flush %s, drop its cache, read %s back and compare its SHA-256 with the image's", job.Device, byteText(job.ImageBytes)))
		return FlashResult{Bytes: job.ImageBytes}, nil
	}
	if err := ctx.Err(); err != nil {
		return FlashResult{}, err
	}

	src, err := os.Open(job.Image)
	if err != nil {
		return FlashResult{}, &BadImageError{Path: job.Image, Reason: fmt.Sprintf("cannot be read: %v", err)}
	}
	defer src.Close()
	dev, err := openFlashDevice(path, job.Device)
	if err != nil {
		return FlashResult{}, err
	}
	defer dev.Close()
	if dev.size != int64(job.Target.SizeBytes) {
		return FlashResult{}, &disk.RefusedError{Target: job.Device, Reason: fmt.Sprintf(
			"the kernel reports %d bytes for it and it was checked at %d: another disk may have taken its place", dev.size, job.Target.SizeBytes)}
	}
	buffered := func(reason string) {
		f.say(fmt.Sprintf("note: %s does not take direct I/O (%s): writing through the page cache, flushed before the read-back", job.Device, reason))
	}
	if !dev.direct {
		buffered("open with O_DIRECT was refused")
	}
	dev.onBuffered = buffered
	align := max(bufferAlign, dev.sector)
	s := &stream{bufs: [2][]byte{alignedBuffer(block, align), alignedBuffer(block, align)}, sector: int64(dev.sector)}

	f.say("write " + what)
	res := FlashResult{Bytes: job.ImageBytes}
	start := f.now()
	s.progress = f.meter("writing "+job.Device, job.ImageBytes).update
	written, err := s.write(ctx, src, job.ImageBytes, dev, dev.size)
	if err == nil {
		err = dev.flush()
	}
	if err != nil {
		return res, &IncompleteError{Device: job.Device, Written: written, Total: job.ImageBytes, Err: err}
	}
	res.Write = f.now().Sub(start)
	res.Direct = dev.direct
	mode := "direct I/O"
	if !dev.direct {
		mode = "through the page cache"
	}
	f.say(fmt.Sprintf("wrote %s to %s in %s (%s, %s)", byteText(written), job.Device, res.Write.Round(ms), rateText(float64(written)/res.Write.Seconds()), mode))

	if f.beforeVerify != nil {
		if err := f.beforeVerify(); err != nil {
			return res, err
		}
	}
	if err := dev.dropCache(); err != nil {
		return res, &VerifyError{Device: job.Device, Err: err}
	}
	start = f.now()
	s.progress = f.meter("verifying "+job.Device, job.ImageBytes).update
	sums, err := s.verify(ctx, src, dev, job.ImageBytes)
	res.Verify = f.now().Sub(start)
	if ctx.Err() != nil {
		return res, fmt.Errorf("stopped while reading %s back: the image was written but not verified; run flash again before booting it: %w", job.Device, ctx.Err())
	}
	if err := imageUnchanged(job.Image, st); err != nil {
		return res, err
	}
	if err != nil {
		if ie := (*imageReadError)(nil); errors.As(err, &ie) {
			return res, err
		}
		return res, &VerifyError{Device: job.Device, Err: err}
	}
	if sums.Image != sums.Device {
		return res, &VerifyError{Device: job.Device, Bytes: job.ImageBytes, ImageSHA256: sums.Image, DeviceSHA256: sums.Device}
	}
	res.SHA256 = sums.Image
	if err := dev.rereadPartitions(); err != nil {
		f.say(fmt.Sprintf("note: the kernel did not re-read the new partition table (%v): unplug and replug the stick to see its partitions", err))
	}
	f.say(fmt.Sprintf("verified in %s (%s): %s holds the image, SHA-256 %s",
		res.Verify.Round(ms), rateText(float64(job.ImageBytes)/res.Verify.Seconds()), job.Device, sums.Image))
	return res, nil
}

// ms rounds the durations shown to people.
const ms = time.Millisecond

// imageUnchanged refuses an image that changed while it was flashed: the
// read-back compares against the file as it is now.
func imageUnchanged(path string, before os.FileInfo) error {
	now, err := os.Stat(path)
	if err != nil {
		return &BadImageError{Path: path, Reason: fmt.Sprintf("went away while it was flashed (%v): run flash again", err)}
	}
	if now.Size() != before.Size() || !now.ModTime().Equal(before.ModTime()) {
		return &BadImageError{Path: path, Reason: "changed while it was flashed: wait until whatever writes it is done, then run flash again"}
	}
	return nil
}
