package media

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/homestaker/homestaker/disk"
	"github.com/homestaker/homestaker/report"
)

// memDevice is a disk in memory that records every write, in order.
type memDevice struct {
	data    []byte
	writes  []span
	sector  int64
	onWrite func(n int, off int64) // after the n-th write (1-based)
}

func newMemDevice(size int64, fill byte) *memDevice {
	return &memDevice{data: bytes.Repeat([]byte{fill}, int(size)), sector: 512}
}

func (d *memDevice) WriteAt(p []byte, off int64) (int, error) {
	if off%d.sector != 0 || int64(len(p))%d.sector != 0 {
		return 0, errors.New("unaligned write (O_DIRECT would refuse it)")
	}
	if off+int64(len(p)) > int64(len(d.data)) {
		return 0, errors.New("write past the end of the device")
	}
	copy(d.data[off:], p)
	d.writes = append(d.writes, span{off, int64(len(p))})
	if d.onWrite != nil {
		d.onWrite(len(d.writes), off)
	}
	return len(p), nil
}

func (d *memDevice) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(d.data)) {
		return 0, io.EOF
	}
	n := copy(p, d.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func randomImage(t testing.TB, size int) []byte {
	t.Helper()
	b := make([]byte, size)
	r := rand.NewChaCha8([32]byte{7})
	r.Read(b)
	return b
}

func testStream(block int, sector int64) *stream {
	return &stream{bufs: [2][]byte{alignedBuffer(block, bufferAlign), alignedBuffer(block, bufferAlign)}, sector: sector}
}

func TestStreamWritesFirstMiBLast(t *testing.T) {
	const block = 4 << 20
	img := randomImage(t, 9<<20+1234) // a partial last block and sector
	dev := newMemDevice(16<<20, 0xAA)
	s := testStream(block, 512)
	var seen []int64
	s.progress = func(done int64) { seen = append(seen, done) }
	n, err := s.write(context.Background(), bytes.NewReader(img), int64(len(img)), dev, int64(len(dev.data)))
	if err != nil || n != int64(len(img)) {
		t.Fatalf("write: %d bytes, %v", n, err)
	}
	want := []span{
		{0, 1 << 20},                  // clear the first MiB
		{15 << 20, 1 << 20},           // clear the last MiB (beyond the image)
		{1 << 20, block},              // then the image from its second MiB
		{5 << 20, block},              //
		{9 << 20, roundUp(1234, 512)}, // its last partial sector, zero-padded
		{0, 1 << 20},                  // and its first MiB last
	}
	if len(dev.writes) != len(want) {
		t.Fatalf("writes %v, want %v", dev.writes, want)
	}
	for i := range want {
		if dev.writes[i] != want[i] {
			t.Errorf("write %d at %v, want %v (all: %v)", i, dev.writes[i], want[i], dev.writes)
		}
	}
	if !bytes.Equal(dev.data[:len(img)], img) {
		t.Error("the device does not hold the image")
	}
	pad := dev.data[len(img):roundUp(int64(len(img)), 512)]
	if !bytes.Equal(pad, make([]byte, len(pad))) {
		t.Error("the last sector is not padded with zeros")
	}
	if untouched := dev.data[roundUp(int64(len(img)), 512) : 15<<20]; untouched[0] != 0xAA || untouched[len(untouched)-1] != 0xAA {
		t.Error("bytes between the image and the last MiB were written")
	}
	if tail := dev.data[15<<20:]; !bytes.Equal(tail, make([]byte, len(tail))) {
		t.Error("the last MiB was not cleared")
	}
	if seen[len(seen)-1] != int64(len(img)) {
		t.Errorf("progress ended at %d", seen[len(seen)-1])
	}
}

func TestStreamSmallImageAndFullDevice(t *testing.T) {
	// An image smaller than a MiB is all head; an image filling the
	// device leaves no tail to clear.
	for _, c := range []struct{ img, dev int }{{1000, 4 << 20}, {3 << 20, 3 << 20}} {
		img := randomImage(t, c.img)
		dev := newMemDevice(int64(c.dev), 0xAA)
		if _, err := testStream(1<<20, 4096).write(context.Background(), bytes.NewReader(img), int64(len(img)), dev, int64(c.dev)); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(dev.data[:len(img)], img) {
			t.Errorf("%d-byte image on %d-byte device: content differs", c.img, c.dev)
		}
		if last := dev.writes[len(dev.writes)-1]; last.Off != 0 {
			t.Errorf("%d-byte image: last write at %v, want the head", c.img, last)
		}
	}
}

func TestStreamStopsOnCancel(t *testing.T) {
	img := randomImage(t, 12<<20)
	dev := newMemDevice(16<<20, 0xAA)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dev.onWrite = func(n int, off int64) {
		if n == 4 { // the clears, then two body blocks
			cancel()
		}
	}
	n, err := testStream(1<<20, 512).write(ctx, bytes.NewReader(img), int64(len(img)), dev, int64(len(dev.data)))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
	if n != 2<<20 || len(dev.writes) != 4 {
		t.Errorf("wrote %d image bytes in %d writes after the cancel, want 2 MiB in 4", n, len(dev.writes))
	}
	if head := dev.data[:1<<20]; !bytes.Equal(head, make([]byte, len(head))) {
		t.Error("an interrupted write left something in the first MiB")
	}
}

// failingReader fails or ends early at a byte offset.
type failingReader struct {
	r   io.ReaderAt
	at  int64
	err error
}

func (f failingReader) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > f.at {
		n, _ := f.r.ReadAt(p[:max(f.at-off, 0)], off)
		return n, f.err
	}
	return f.r.ReadAt(p, off)
}

func TestStreamImageShrinks(t *testing.T) {
	img := randomImage(t, 8<<20)
	dev := newMemDevice(8<<20, 0)
	src := failingReader{bytes.NewReader(img), 5 << 20, io.EOF}
	_, err := testStream(1<<20, 512).write(context.Background(), src, int64(len(img)), dev, 8<<20)
	if err == nil || !strings.Contains(err.Error(), "change while being written") {
		t.Fatalf("err %v", err)
	}
	if head := dev.data[:1<<20]; !bytes.Equal(head, make([]byte, len(head))) {
		t.Error("a failed write left something in the first MiB")
	}
}

func TestVerify(t *testing.T) {
	img := randomImage(t, 5<<20+77)
	dev := newMemDevice(8<<20, 0)
	copy(dev.data, img)
	s := testStream(1<<20, 512)
	sum := sha256.Sum256(img)
	d, err := s.verify(context.Background(), bytes.NewReader(img), dev, int64(len(img)))
	if err != nil || d.Image != d.Device || d.Image != hex.EncodeToString(sum[:]) {
		t.Fatalf("intact device: %+v, %v", d, err)
	}
	dev.data[3<<20+5] ^= 0x01 // one flipped bit
	d, err = s.verify(context.Background(), bytes.NewReader(img), dev, int64(len(img)))
	if err != nil || d.Image == d.Device {
		t.Fatalf("flipped bit not found: %+v, %v", d, err)
	}
	ioErr := errors.New("input/output error")
	_, err = s.verify(context.Background(), bytes.NewReader(img), failingReader{dev, 2 << 20, ioErr}, int64(len(img)))
	if !errors.Is(err, ioErr) {
		t.Fatalf("device read error: %v", err)
	}
}

func writeFile(t *testing.T, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCheckImage(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		path, want string
	}{
		{filepath.Join(dir, "missing.iso"), "does not exist"},
		{dir, "is a folder"},
		{"/dev/null", "not a regular file"},
		{writeFile(t, "empty.iso", nil), "is empty"},
		{writeFile(t, "sd.img.zst", []byte("\x28\xb5\x2f\xfd\x00\x01")), "compressed with zstd"},
		{writeFile(t, "sd.img.xz", []byte("\xfd7zXZ\x00\x00")), "compressed with xz"},
	} {
		_, err := checkImage(c.path)
		var bad *BadImageError
		if !errors.As(err, &bad) || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), c.path) {
			t.Errorf("%s: %v, want a BadImageError with %q", c.path, err, c.want)
		}
	}
	if _, err := checkImage(writeFile(t, "tiny.iso", []byte{1})); err != nil {
		t.Errorf("a 1-byte image: %v", err)
	}
}

// sparseImage creates an image file of size bytes without writing them.
func sparseImage(t *testing.T, size int64) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "nixos.iso")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte{0x33, 0xed}) // not a compression signature
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return p
}

func TestPrepareRefuses(t *testing.T) {
	iso := sparseImage(t, 1<<30)
	for _, c := range []struct {
		machine, device, want string
	}{
		{"server-2nvme", "/dev/nvme0n1", "nvme0n1p2 holds / (the running system)"},
		{"rpi4", "/dev/disk/by-id/mmc-SN64G_0x1b2c3d4e", "mmcblk0p1 is mounted at /boot/firmware"},
		{"rescue", "/dev/sda", "held by md127"},
		{"rescue", "/dev/nvme0n1p1", "name the whole disk"},
		{"rescue", "/dev/sdq", "no such device"},
	} {
		f := &Flasher{System: disk.System{Root: "../disk/testdata/" + c.machine}}
		_, err := f.Prepare(iso, c.device)
		var refused *disk.RefusedError
		if !errors.As(err, &refused) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s %s: %v, want a refusal with %q", c.machine, c.device, err, c.want)
		}
	}

	// The rpi4's USB disk holds 1000204886016 bytes.
	big := sparseImage(t, 1000204886016+512)
	f := &Flasher{System: disk.System{Root: "../disk/testdata/rpi4"}}
	_, err := f.Prepare(big, "/dev/sda")
	var refused *disk.RefusedError
	if !errors.As(err, &refused) || !strings.Contains(err.Error(), "holds 1000204886016 bytes") || !strings.Contains(err.Error(), "has 1000204886528 bytes") {
		t.Errorf("too small: %v", err)
	}
	job, err := f.Prepare(iso, "/dev/sda")
	if err != nil || job.Target.Name != "sda" || job.ImageBytes != 1<<30 {
		t.Errorf("a free disk: %+v, %v", job, err)
	}
	if _, err := f.Prepare(filepath.Join(t.TempDir(), "none.iso"), "/dev/sda"); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("missing image: %v", err)
	}
}

func sha256File(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func TestFlashDryRunOnRecordedMachine(t *testing.T) {
	// A copy of the recorded Raspberry Pi, whose /dev/sda is a plain file
	// here: a dry run must leave it (and the image) byte for byte alone.
	root := t.TempDir()
	if err := os.CopyFS(root, os.DirFS("../disk/testdata/rpi4")); err != nil {
		t.Fatal(err)
	}
	devFile := filepath.Join(root, "dev/sda")
	if err := os.WriteFile(devFile, bytes.Repeat([]byte("old stick "), 10000), 0o644); err != nil {
		t.Fatal(err)
	}
	iso := writeFile(t, "nixos.iso", randomImage(t, 3<<20))
	before, isoBefore := sha256File(t, devFile), sha256File(t, iso)
	var events []string
	f := &Flasher{System: disk.System{Root: root}, Reporter: report.Func(func(e report.Event) { events = append(events, e.Message) })}
	job, err := f.Prepare(iso, "/dev/disk/by-id/usb-SanDisk_Extreme_55AE_323130363734393030303030-0:0")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Flash(context.Background(), job, FlashOptions{DryRun: true}); err != nil {
		t.Fatal(err)
	}
	if sha256File(t, devFile) != before || sha256File(t, iso) != isoBefore {
		t.Error("the dry run changed the device or the image")
	}
	all := strings.Join(events, "\n")
	for _, want := range []string{"re-check /dev/disk/by-id/usb-SanDisk", "would write " + iso, "its first MiB last", "would flush"} {
		if !strings.Contains(all, want) {
			t.Errorf("dry run report lacks %q:\n%s", want, all)
		}
	}
}

func TestFlashRechecksTarget(t *testing.T) {
	// The disk checked by Prepare is replaced by another before Flash.
	iso := writeFile(t, "nixos.iso", randomImage(t, 1<<20))
	f := &Flasher{System: disk.System{Root: "../disk/testdata/rpi4"}}
	job, err := f.Prepare(iso, "/dev/sda")
	if err != nil {
		t.Fatal(err)
	}
	job.Target.ByID = "/dev/disk/by-id/usb-Other_Stick"
	_, err = f.Flash(context.Background(), job, FlashOptions{DryRun: true})
	var refused *disk.RefusedError
	if !errors.As(err, &refused) || !strings.Contains(err.Error(), "another disk took its place") {
		t.Errorf("replaced disk: %v", err)
	}
	job.Target.ByID = "/dev/disk/by-id/usb-SanDisk_Extreme_55AE_323130363734393030303030-0:0"
	if err := os.WriteFile(iso, randomImage(t, 2<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = f.Flash(context.Background(), job, FlashOptions{DryRun: true})
	var bad *BadImageError
	if !errors.As(err, &bad) || !strings.Contains(err.Error(), "changed since it was checked") {
		t.Errorf("changed image: %v", err)
	}
}

func TestMeterThrottles(t *testing.T) {
	now := time.Unix(0, 0)
	var got []report.Event
	f := &Flasher{Now: func() time.Time { return now }, Reporter: report.Func(func(e report.Event) { got = append(got, e) })}
	m := f.meter("writing /dev/sdb", 1000e6)
	for i := int64(1); i <= 100; i++ {
		now = now.Add(50 * time.Millisecond)
		m.update(i * 10e6)
	}
	// 5 s at 50 ms a step: the first event, one per 250 ms, and the last.
	if len(got) != 1+20 {
		t.Errorf("%d events, want 21", len(got))
	}
	if got[0].Done != 0 || got[0].Total != 1000e6 || got[0].Step != FlashStep {
		t.Errorf("first event %+v", got[0])
	}
	mid := got[10]
	if mid.Message != "writing /dev/sdb: 476.8 MiB of 953.7 MiB (50%), 200 MB/s, 3s left" || mid.Done != 500e6 {
		t.Errorf("middle event %q", mid.Message)
	}
	if last := got[len(got)-1]; last.Done != last.Total || strings.Contains(last.Message, "left") {
		t.Errorf("last event %+v", last)
	}
}
