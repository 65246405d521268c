package media

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/homestaker/homestaker/internal/testutil"
	"github.com/homestaker/homestaker/internal/vmtest"
)

// sdInit is /init of the test initrd on the card: it proves it runs and
// prints the command line it was given.
const sdInit = `#!/bin/busybox sh
/bin/busybox mkdir -p /proc
/bin/busybox mount -t proc proc /proc
echo "SD-INITRD-UP $(/bin/busybox cat /proc/cmdline)"
echo "SD-INITRD-ARCH $(/bin/busybox uname -m)"
/bin/busybox poweroff -f
`

// TestSDImageBootsInQEMU assembles a card from a real arm64 kernel (Debian's)
// and a busybox initrd, reads the kernel, initrd and command line back out of
// the image with mtools, and boots them in qemu-system-aarch64 (virt,
// Cortex-A72, TCG): the initrd's marker shows the three belong together.
// QEMU cannot run the Pi firmware, so config.txt is judged by the text tests.
func TestSDImageBootsInQEMU(t *testing.T) {
	kit := vmtest.RequireArm64(t)
	mcopy := testutil.RequireTool(t, "mcopy")
	zstd := testutil.RequireTool(t, "zstd")

	work := t.TempDir()
	initrdCpio := filepath.Join(work, "initrd.cpio")
	if err := vmtest.WriteInitrd(initrdCpio, []vmtest.InitrdFile{
		{Name: "bin/busybox", Source: kit.Busybox, Mode: 0o755},
		{Name: "init", Data: []byte(sdInit), Mode: 0o755},
	}); err != nil {
		t.Fatal(err)
	}
	// zstd-compressed, as NixOS' initrd is.
	initrd, err := exec.Command(zstd, "-q", "-c", "-19", initrdCpio).Output()
	if err != nil {
		t.Fatalf("zstd: %v", err)
	}
	kernel, err := os.ReadFile(kit.Kernel)
	if err != nil {
		t.Fatal(err)
	}
	marker := make([]byte, 8)
	rand.Read(marker)
	// The console goes to QEMU's PL011 (ttyAMA0); on a Pi it is ttyS0.
	cmdline := fmt.Sprintf("init=/init rdinit=/init console=ttyAMA0 panic=-1 loglevel=4 homestaker.marker=%s", hex.EncodeToString(marker))
	parts := filepath.Join(work, "parts")
	makeParts(t, parts, kernel, initrd, cmdline)

	out := filepath.Join(work, "node.img")
	img := assemble(t, parts, out)
	t.Logf("image: %d MiB (partition %d MiB), kernel %d bytes, initrd %d bytes", img.Size>>20, img.PartitionSize>>20, len(kernel), len(initrd))

	// What the firmware would load, read back out of the image.
	at := fmt.Sprintf("%s@@%d", out, img.PartitionStart)
	back := filepath.Join(work, "back")
	os.Mkdir(back, 0o755)
	for _, name := range []string{PartKernel, PartInitrd, PartCmdline} {
		if o, err := exec.Command(mcopy, "-n", "-i", at, "::/"+name, filepath.Join(back, name)).CombinedOutput(); err != nil {
			t.Fatalf("mcopy ::/%s: %v\n%s", name, err, o)
		}
	}
	gotCmdline, _ := os.ReadFile(filepath.Join(back, PartCmdline))
	if gotKernel, _ := os.ReadFile(filepath.Join(back, PartKernel)); !bytes.Equal(gotKernel, kernel) {
		t.Fatal("the kernel read back differs from the part")
	}

	res, err := vmtest.RunArm64(context.Background(), vmtest.Arm64Config{
		Kernel:    filepath.Join(back, PartKernel),
		Initrd:    filepath.Join(back, PartInitrd),
		Append:    strings.TrimSpace(string(gotCmdline)),
		MemoryMiB: 512,
		Expect:    regexp.MustCompile(`SD-INITRD-ARCH \S+`),
	})
	console := strings.ReplaceAll(res.Console, "\r", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("guest ran %s", res.Duration.Round(100_000_000))
	if !strings.Contains(console, "SD-INITRD-UP "+cmdline) {
		t.Fatalf("the initrd from the card did not print the card's command line; console:\n%s", console)
	}
	if !strings.Contains(console, "SD-INITRD-ARCH aarch64") {
		t.Errorf("the guest is not aarch64; console:\n%s", console)
	}
}
