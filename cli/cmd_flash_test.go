package cli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/homestaker/homestaker/internal/testutil"
	"github.com/homestaker/homestaker/report"
)

// rpi4USB is the by-id name of the recorded Raspberry Pi's free USB disk.
const rpi4USB = "/dev/disk/by-id/usb-SanDisk_Extreme_55AE_323130363734393030303030-0:0"

func runFlashCLI(t *testing.T, root, loopFile, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), flashEnv(root, loopFile, stdin, &out, &errOut), append([]string{"flash"}, args...))
	return code, out.String(), errOut.String()
}

func flashEnv(root, loopFile, stdin string, out, errOut io.Writer) *cliEnv {
	return &cliEnv{stdin: strings.NewReader(stdin), stdout: out, stderr: errOut, getenv: func(k string) string {
		switch k {
		case systemRootEnv:
			return root
		case flashLoopFileEnv:
			return loopFile
		}
		return ""
	}}
}

func flashImage(t *testing.T, size int) (string, []byte) {
	t.Helper()
	b := make([]byte, size)
	rand.NewChaCha8([32]byte{1}).Read(b)
	p := filepath.Join(t.TempDir(), "nixos.iso")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p, b
}

func fileSum(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// rpi4Copy is a copy of the recorded Raspberry Pi whose USB disk node is a
// file holding an old stick's bytes.
func rpi4Copy(t *testing.T) (root, usb string) {
	t.Helper()
	root = t.TempDir()
	if err := os.CopyFS(root, os.DirFS("disk/testdata/rpi4")); err != nil {
		t.Fatal(err)
	}
	usb = filepath.Join(root, "dev/sda")
	if err := os.WriteFile(usb, bytes.Repeat([]byte("old stick "), 50000), 0o644); err != nil {
		t.Fatal(err)
	}
	return root, usb
}

func TestFlashRefusals(t *testing.T) {
	const rpi4 = "disk/testdata/rpi4"
	iso, _ := flashImage(t, 1<<20)
	big := filepath.Join(t.TempDir(), "big.img")
	if err := os.WriteFile(big, []byte{0x33}, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(big, 1000204886016+512); err != nil { // one sector more than the USB disk
		t.Fatal(err)
	}
	zst := filepath.Join(t.TempDir(), "sd.img.zst")
	os.WriteFile(zst, []byte("\x28\xb5\x2f\xfd rest"), 0o644)
	for _, c := range []struct {
		name  string
		stdin string
		args  []string
		code  int
		want  string
	}{
		{"in use, holds /", "", []string{"--image", iso, "--device", "/dev/mmcblk0", "--yes", "--confirm-device", "/dev/mmcblk0"}, exitRefused, "mmcblk0p2 holds / (the running system)"},
		{"in use, dry run", "", []string{"--image", iso, "--device", "/dev/disk/by-id/mmc-SN64G_0x1b2c3d4e", "--dry-run"}, exitRefused, "mounted at /boot/firmware"},
		{"partition", "", []string{"--image", iso, "--device", "/dev/mmcblk0p1", "--dry-run"}, exitRefused, "name the whole disk"},
		{"too small", "", []string{"--image", big, "--device", "/dev/sda", "--dry-run"}, exitRefused, "it holds 1000204886016 bytes (931.5 GiB) and the image " + big + " has 1000204886528 bytes"},
		{"missing image", "", []string{"--image", "/nonexistent/nixos.iso", "--device", "/dev/sda", "--dry-run"}, exitUsage, "image /nonexistent/nixos.iso does not exist"},
		{"compressed image", "", []string{"--image", zst, "--device", "/dev/sda", "--dry-run"}, exitUsage, "compressed with zstd"},
		{"image is a folder", "", []string{"--image", t.TempDir(), "--device", "/dev/sda"}, exitUsage, "is a folder"},
		{"no device", "", []string{"--image", iso}, exitUsage, "--image FILE and --device DEV are both required"},
		{"yes alone", "", []string{"--image", iso, "--device", "/dev/sda", "--yes"}, exitUsage, "--yes and --confirm-device DEV go together"},
		{"confirm alone", "", []string{"--image", iso, "--device", "/dev/sda", "--confirm-device", "/dev/sda"}, exitUsage, "go together"},
		{"wrong confirm", "", []string{"--image", iso, "--device", "/dev/sda", "--yes", "--confirm-device", "/dev/sdb"}, exitRefused, `homestaker flash: refusing: --confirm-device "/dev/sdb" does not name the target /dev/sda`},
		{"wrong typed name", "/dev/mmcblk0\n", []string{"--image", iso, "--device", "/dev/sda"}, exitRefused, "the typed path does not name /dev/sda; nothing was written"},
		{"nothing typed", "", []string{"--image", iso, "--device", "/dev/sda"}, exitRefused, "nothing was written"},
		{"stray argument", "", []string{"--image", iso, "--device", "/dev/sda", "extra"}, exitUsage, `unexpected argument "extra"`},
	} {
		code, _, errOut := runFlashCLI(t, rpi4, "", c.stdin, c.args...)
		if code != c.code || !strings.Contains(errOut, c.want) {
			t.Errorf("%s: exit %d, want %d with %q:\n%s", c.name, code, c.code, c.want, errOut)
		}
	}
}

func TestFlashConfirmationShowsTheDisk(t *testing.T) {
	root, usb := rpi4Copy(t)
	iso, _ := flashImage(t, 1<<20)
	before := fileSum(t, usb)
	// The typed name is right; the recorded disk is a plain file, which the
	// flash then refuses to write: it is not a block device.
	code, out, errOut := runFlashCLI(t, root, "", rpi4USB+"\n", "--image", iso, "--device", "/dev/sda")
	for _, want := range []string{"Target: /dev/sda", "by-id: " + rpi4USB, "model: Extreme 55AE", "size:  1.0 TB", "Image:  " + iso} {
		if !strings.Contains(out+errOut, want) {
			t.Errorf("the confirmation lacks %q:\n%s%s", want, out, errOut)
		}
	}
	if !strings.Contains(errOut, "This erases everything on /dev/sda") || !strings.Contains(errOut, "Type its path to go on") {
		t.Errorf("no typed confirmation:\n%s", errOut)
	}
	if code != exitRefused || !strings.Contains(errOut, "not a block device") {
		t.Errorf("exit %d:\n%s", code, errOut)
	}
	if fileSum(t, usb) != before {
		t.Error("the recorded disk changed")
	}
}

func TestFlashDryRun(t *testing.T) {
	root, usb := rpi4Copy(t)
	iso, _ := flashImage(t, 3<<20)
	before, isoBefore := fileSum(t, usb), fileSum(t, iso)
	code, out, errOut := runFlashCLI(t, root, "", "", "--image", iso, "--device", rpi4USB, "--dry-run")
	if code != exitOK {
		t.Fatalf("exit %d:\n%s", code, errOut)
	}
	for _, want := range []string{"would write " + iso + " (3.0 MiB) to " + rpi4USB, "its first MiB last", "would flush", "dry run: nothing was written"} {
		if !strings.Contains(out, want) {
			t.Errorf("dry run lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(errOut, "Type its path") {
		t.Error("a dry run asked for confirmation")
	}
	if fileSum(t, usb) != before || fileSum(t, iso) != isoBefore {
		t.Error("the dry run changed the disk or the image")
	}
}

func TestProgressPrinter(t *testing.T) {
	now := time.Unix(0, 0)
	var plain bytes.Buffer
	p := &progressPrinter{w: &plain, now: func() time.Time { return now }, every: 5 * time.Second}
	for s := int64(0); s <= 12; s++ {
		now = time.Unix(s, 0)
		p.Report(report.Event{Step: "flash", Message: "writing " + string(rune('a'+s)), Done: s, Total: 12})
	}
	p.Report(report.Event{Step: "flash", Message: "wrote it"})
	if got, want := plain.String(), "writing a\nwriting f\nwriting k\nwriting m\nflash: wrote it\n"; got != want {
		t.Errorf("plain progress:\n%q\nwant\n%q", got, want)
	}

	var tty bytes.Buffer
	p = &progressPrinter{w: &tty, tty: true, now: time.Now, every: 5 * time.Second}
	p.Report(report.Event{Message: "writing 1", Done: 1, Total: 3})
	p.Report(report.Event{Message: "writing 2", Done: 2, Total: 3})
	p.Report(report.Event{Step: "flash", Message: "note: something"})
	p.Report(report.Event{Message: "writing 3", Done: 3, Total: 3})
	if got, want := tty.String(), "\rwriting 1\x1b[K\rwriting 2\x1b[K\nflash: note: something\n\rwriting 3\x1b[K\n"; got != want {
		t.Errorf("terminal progress:\n%q\nwant\n%q", got, want)
	}
}

// loopStickCLI attaches a loop device to a new file of size bytes and
// detaches it when the test ends.
func loopStickCLI(t *testing.T, size int64) (string, string) {
	t.Helper()
	testutil.RequireRoot(t)
	backing := filepath.Join(t.TempDir(), "stick.img")
	if err := os.WriteFile(backing, bytes.Repeat([]byte{0xAA}, int(size)), 0o644); err != nil {
		t.Fatal(err)
	}
	dev := testutil.AttachLoop(t, backing)
	return dev, backing
}

func TestFlashLoopDevice(t *testing.T) {
	dev, backing := loopStickCLI(t, 32<<20)
	iso, img := flashImage(t, 9<<20+300)
	if code, _, errOut := runFlashCLI(t, "", "", "", "--image", iso, "--device", dev, "--yes", "--confirm-device", dev); code != exitRefused || !strings.Contains(errOut, "not a disk homestaker can use") {
		t.Errorf("a loop device without %s: exit %d:\n%s", flashLoopFileEnv, code, errOut)
	}
	code, out, errOut := runFlashCLI(t, "", backing, "", "--image", iso, "--device", dev, "--yes", "--confirm-device", dev)
	if code != exitOK {
		t.Fatalf("exit %d:\n%s%s", code, out, errOut)
	}
	sum := sha256.Sum256(img)
	if !strings.Contains(out, "reads back identical (SHA-256 "+hex.EncodeToString(sum[:])+")") {
		t.Errorf("stdout:\n%s", out)
	}
	for _, want := range []string{"writing " + dev + ": 0 bytes of 9.0 MiB (0%)", "writing " + dev + ": 9.0 MiB of 9.0 MiB (100%)", "verifying " + dev, "direct I/O"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
	got, err := os.ReadFile(backing)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got[:len(img)], img) {
		t.Error("the stick does not hold the image")
	}
}

// cancelOnWriter passes writes on and cancels when one contains marker.
type cancelOnWriter struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	marker string
	cancel context.CancelFunc
}

func (w *cancelOnWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if strings.Contains(string(p), w.marker) {
		w.cancel()
	}
	return w.buf.Write(p)
}

func TestFlashInterrupted(t *testing.T) {
	dev, backing := loopStickCLI(t, 80<<20)
	iso, _ := flashImage(t, 64<<20)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// On a terminal every progress event is drawn; Ctrl-C once 8 MiB are written.
	stderr := &cancelOnWriter{marker: ": 8.0 MiB of 64.0 MiB", cancel: cancel}
	var out bytes.Buffer
	clock := time.Unix(0, 0)
	deps := flashDeps{
		now:        func() time.Time { clock = clock.Add(time.Second); return clock },
		isTerminal: func(io.Writer) bool { return true },
	}
	code := runFlashWith(ctx, flashEnv("", backing, "", &out, stderr), []string{"--image", iso, "--device", dev, "--yes", "--confirm-device", dev}, deps)
	errOut := stderr.buf.String()
	if code != exitInterrupt {
		t.Fatalf("exit %d, want %d:\n%s", code, exitInterrupt, errOut)
	}
	if !strings.Contains(errOut, "\rwriting "+dev+": 8.0 MiB of 64.0 MiB") || !strings.Contains(errOut, "is incomplete and will not boot; run flash again") {
		t.Errorf("stderr:\n%q", errOut)
	}
	got, err := os.ReadFile(backing)
	if err != nil {
		t.Fatal(err)
	}
	if head := got[:1<<20]; !bytes.Equal(head, make([]byte, len(head))) {
		t.Error("the interrupted stick has something in its first MiB")
	}
	if !bytes.Contains(got[16<<20:], []byte{0xAA, 0xAA, 0xAA, 0xAA}) {
		t.Error("the whole image seems written despite the interrupt")
	}
}
