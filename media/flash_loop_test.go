package media

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/homestaker/homestaker/disk"
	"github.com/homestaker/homestaker/internal/testutil"
	"github.com/homestaker/homestaker/report"
	"golang.org/x/sys/unix"
)

// loopStick attaches a loop device to a new file of size bytes filled with
// fill (an old stick's content) and detaches it when the test ends. It
// returns the device and its backing file.
func loopStick(t testing.TB, size int64, fill byte) (string, string) {
	t.Helper()
	testutil.RequireRoot(t)
	backing := filepath.Join(t.TempDir(), "stick.img")
	f, err := os.Create(backing)
	if err != nil {
		t.Fatal(err)
	}
	if fill != 0 {
		chunk := bytes.Repeat([]byte{fill}, 1<<20)
		for off := int64(0); off < size; off += int64(len(chunk)) {
			if _, err := f.WriteAt(chunk[:min(int64(len(chunk)), size-off)], off); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	f.Close()
	dev := testutil.AttachLoop(t, backing)
	return dev, backing
}

func readBacking(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type eventLog struct{ events []report.Event }

func (l *eventLog) Report(e report.Event) { l.events = append(l.events, e) }

func (l *eventLog) text() string {
	var s []string
	for _, e := range l.events {
		s = append(s, e.Message)
	}
	return strings.Join(s, "\n")
}

func TestFlashLoop(t *testing.T) {
	dev, backing := loopStick(t, 64<<20, 0xAA)
	img := randomImage(t, 20<<20+1000) // ends inside a sector
	iso := writeFile(t, "nixos.iso", img)
	log := &eventLog{}
	f := &Flasher{LoopBackingFile: backing, Reporter: log}
	job, err := f.Prepare(iso, dev)
	if err != nil {
		t.Fatal(err)
	}
	res, err := f.Flash(context.Background(), job, FlashOptions{})
	if err != nil {
		t.Fatalf("%v\n%s", err, log.text())
	}
	got := readBacking(t, backing)
	if !bytes.Equal(got[:len(img)], img) {
		t.Fatal("the stick does not hold the image")
	}
	end := roundUp(int64(len(img)), 512)
	if pad := got[len(img):end]; !bytes.Equal(pad, make([]byte, len(pad))) {
		t.Error("the last sector is not padded with zeros")
	}
	if got[end] != 0xAA || got[63<<20-1] != 0xAA {
		t.Error("bytes between the image and the last MiB were written")
	}
	if tail := got[63<<20:]; !bytes.Equal(tail, make([]byte, len(tail))) {
		t.Error("the last MiB (an old backup GPT) was not cleared")
	}
	sum := sha256.Sum256(img)
	if res.SHA256 != hex.EncodeToString(sum[:]) || res.Bytes != int64(len(img)) || !res.Direct {
		t.Errorf("result %+v", res)
	}
	var progress int
	for _, e := range log.events {
		if e.Total == int64(len(img)) {
			progress++
		}
	}
	if progress < 4 || !strings.Contains(log.text(), "holds the image, SHA-256 "+res.SHA256) {
		t.Errorf("%d progress events; report:\n%s", progress, log.text())
	}
}

func TestFlashLoopOnlyWhenBackingFileNamed(t *testing.T) {
	dev, _ := loopStick(t, 8<<20, 0)
	iso := writeFile(t, "nixos.iso", randomImage(t, 1<<20))
	for _, f := range []*Flasher{{}, {LoopBackingFile: iso}} {
		_, err := f.Prepare(iso, dev)
		var refused *disk.RefusedError
		if !errors.As(err, &refused) || !strings.Contains(err.Error(), "not a disk homestaker can use") {
			t.Errorf("loop device with LoopBackingFile %q: %v", f.LoopBackingFile, err)
		}
	}
}

func TestFlashLoopDetectsCorruption(t *testing.T) {
	dev, backing := loopStick(t, 32<<20, 0)
	img := randomImage(t, 10<<20)
	iso := writeFile(t, "nixos.iso", img)
	f := &Flasher{LoopBackingFile: backing}
	// The stick loses a bit after the write, under the loop device.
	f.beforeVerify = func() error {
		b, err := os.OpenFile(backing, os.O_RDWR, 0)
		if err != nil {
			return err
		}
		defer b.Close()
		if _, err := b.WriteAt([]byte{img[7<<20] ^ 0x40}, 7<<20); err != nil {
			return err
		}
		return b.Sync()
	}
	job, err := f.Prepare(iso, dev)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.Flash(context.Background(), job, FlashOptions{})
	var verr *VerifyError
	if !errors.As(err, &verr) || !strings.Contains(err.Error(), "the stick is faulty or was removed; do not boot it") ||
		verr.ImageSHA256 == verr.DeviceSHA256 || verr.Bytes != int64(len(img)) {
		t.Fatalf("corrupted read-back: %v", err)
	}
}

func TestFlashLoopDryRunWritesNothing(t *testing.T) {
	dev, backing := loopStick(t, 16<<20, 0x5A)
	iso := writeFile(t, "nixos.iso", randomImage(t, 3<<20))
	before := sha256File(t, backing)
	f := &Flasher{LoopBackingFile: backing}
	job, err := f.Prepare(iso, dev)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Flash(context.Background(), job, FlashOptions{DryRun: true}); err != nil {
		t.Fatal(err)
	}
	if sha256File(t, backing) != before {
		t.Error("the dry run wrote to the stick")
	}
}

func TestFlashLoopInterrupted(t *testing.T) {
	dev, backing := loopStick(t, 64<<20, 0xAA)
	iso := writeFile(t, "nixos.iso", randomImage(t, 48<<20))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Ctrl-C once the first blocks are on the stick.
	f := &Flasher{LoopBackingFile: backing, BlockSize: 1 << 20, ReportEvery: time.Nanosecond,
		Reporter: report.Func(func(e report.Event) {
			if e.Total > 0 && e.Done >= 3<<20 {
				cancel()
			}
		})}
	job, err := f.Prepare(iso, dev)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.Flash(ctx, job, FlashOptions{})
	var inc *IncompleteError
	if !errors.As(err, &inc) || !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "incomplete and will not boot") {
		t.Fatalf("interrupted flash: %v", err)
	}
	if inc.Written < 3<<20 || inc.Written >= 48<<20 {
		t.Errorf("stopped after %d bytes", inc.Written)
	}
	got := readBacking(t, backing)
	if head := got[:1<<20]; !bytes.Equal(head, make([]byte, len(head))) {
		t.Error("the interrupted stick has something in its first MiB")
	}
}

func TestFlashLoopRefusesBusyOrMounted(t *testing.T) {
	dev, backing := loopStick(t, 32<<20, 0)
	iso := writeFile(t, "nixos.iso", randomImage(t, 1<<20))
	f := &Flasher{LoopBackingFile: backing}
	job, err := f.Prepare(iso, dev)
	if err != nil {
		t.Fatal(err)
	}
	// Another program holds the stick exclusively between Prepare and Flash.
	fd, err := unix.Open(dev, unix.O_RDONLY|unix.O_EXCL, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.Flash(context.Background(), job, FlashOptions{})
	unix.Close(fd)
	var refused *disk.RefusedError
	if !errors.As(err, &refused) || !strings.Contains(err.Error(), "busy") {
		t.Errorf("held device: %v", err)
	}

	testutil.RequireTool(t, "mkfs.ext4")
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", dev).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v: %s", err, out)
	}
	mnt := t.TempDir()
	if out, err := exec.Command("mount", dev, mnt).CombinedOutput(); err != nil {
		testutil.Missing(t, "mounting a loop device: "+string(out))
	}
	defer exec.Command("umount", mnt).Run()
	_, err = f.Prepare(iso, dev)
	if !errors.As(err, &refused) || !strings.Contains(err.Error(), "is mounted at "+mnt) {
		t.Errorf("mounted device, Prepare: %v", err)
	}
	_, err = f.Flash(context.Background(), job, FlashOptions{})
	if !errors.As(err, &refused) || !strings.Contains(err.Error(), "is mounted at "+mnt) {
		t.Errorf("mounted device, Flash re-check: %v", err)
	}
}

// loopStick4K is loopStick with 4096-byte logical sectors, like many SD
// card readers and NVMe drives.
func loopStick4K(t *testing.T, size int64) (string, string) {
	t.Helper()
	testutil.RequireRoot(t)
	backing := filepath.Join(t.TempDir(), "stick.img")
	if err := os.WriteFile(backing, bytes.Repeat([]byte{0xAA}, int(size)), 0o644); err != nil {
		t.Fatal(err)
	}
	dev := testutil.AttachLoop(t, backing, "--sector-size", "4096")
	return dev, backing
}

func TestFlashLoop4KSectors(t *testing.T) {
	dev, backing := loopStick4K(t, 16<<20)
	img := randomImage(t, 5<<20+100)
	iso := writeFile(t, "nixos.iso", img)
	f := &Flasher{LoopBackingFile: backing}
	job, err := f.Prepare(iso, dev)
	if err != nil {
		t.Fatal(err)
	}
	if job.Target.SectorSize != 4096 {
		t.Fatalf("sector size %d", job.Target.SectorSize)
	}
	res, err := f.Flash(context.Background(), job, FlashOptions{})
	if err != nil || !res.Direct {
		t.Fatalf("%+v, %v", res, err)
	}
	got := readBacking(t, backing)
	if !bytes.Equal(got[:len(img)], img) {
		t.Fatal("the stick does not hold the image")
	}
	if pad := got[len(img) : 5<<20+4096]; !bytes.Equal(pad, make([]byte, len(pad))) {
		t.Error("the last 4096-byte sector is not padded with zeros")
	}
}

func TestFlashDeviceFallsBackToBuffered(t *testing.T) {
	// A write that is not whole 4096-byte sectors is refused with O_DIRECT;
	// the device then writes through the page cache instead.
	dev, backing := loopStick4K(t, 4<<20)
	d, err := openFlashDevice(dev, dev)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if !d.direct || d.sector != 4096 || d.size != 4<<20 {
		t.Fatalf("opened %+v", d)
	}
	var note string
	d.onBuffered = func(reason string) { note = reason }
	buf := alignedBuffer(4096, bufferAlign)
	copy(buf, "homestaker")
	if _, err := d.WriteAt(buf[:512], 8192); err != nil {
		t.Fatal(err)
	}
	if d.direct || note == "" {
		t.Errorf("direct %v after an unaligned write, note %q", d.direct, note)
	}
	if err := d.flush(); err != nil {
		t.Fatal(err)
	}
	if got := readBacking(t, backing); string(got[8192:8192+10]) != "homestaker" {
		t.Errorf("buffered write not on the stick: %q", got[8192:8202])
	}
}
