package boot

import (
	"context"

	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/homestaker/homestaker/disk"
	"github.com/homestaker/homestaker/internal/testutil"
	"github.com/homestaker/homestaker/internal/vmtest"
	"github.com/homestaker/homestaker/plan"
)

// formattedImage writes the data disk of a plan to a sparse image with the
// real disk format: the EFI system partition empty, nothing bootable yet.
func formattedImage(t *testing.T, dir string) string {
	t.Helper()
	testutil.RequireTool(t, "mkfs.vfat")
	testutil.RequireTool(t, "mkfs.ext4")
	var p plan.Plan
	p.Host.Name = "node1"
	p.Disk.Device = "/dev/vda"
	p.Ethereum.Execution, p.Ethereum.Consensus = "geth", "lighthouse"
	l, err := disk.New(p)
	if err != nil {
		t.Fatal(err)
	}
	if l, err = l.Place(4<<30, 512); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(dir, "data.img")
	if err := (&disk.Formatter{TempDir: dir}).Image(context.Background(), l, img, disk.Options{}); err != nil {
		t.Fatal(err)
	}
	return img
}

// generation writes a marker initrd and returns a generation that boots the
// host's kernel with it.
func generation(t *testing.T, dir, kernel, marker string) Generation {
	t.Helper()
	initrd := filepath.Join(dir, marker+".cpio")
	if err := vmtest.MarkerInitrd(initrd, marker); err != nil {
		t.Fatal(err)
	}
	return Generation{Kernel: kernel, Initrd: initrd, Cmdline: "console=ttyS0 panic=-1 homestaker.test=" + marker}
}

func install(t *testing.T, img string, g Generation, fw Firmware, loader string) Result {
	t.Helper()
	tg, err := ReadTarget(img)
	if err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	in := &Installer{Reporter: reportTo(&log)}
	start := time.Now()
	res, err := in.Install(context.Background(), tg, g, Options{Firmware: fw, LoaderDir: loader})
	if err != nil {
		t.Fatalf("install: %v\n%s", err, log.String())
	}
	t.Logf("install generation %d (fallback %d) in %s", res.Generation, res.Fallback, time.Since(start).Round(10*time.Millisecond))
	judgeESP(t, img, tg)
	return res
}

// judgeESP checks the partition table with sgdisk -v and the EFI system
// partition with fsck.vfat.
func judgeESP(t *testing.T, img string, tg Target) {
	t.Helper()
	if out, err := exec.Command("sgdisk", "-v", img).CombinedOutput(); err != nil || !strings.Contains(string(out), "No problems found") {
		t.Errorf("sgdisk -v: %v\n%s", err, out)
	}
	part := img + ".esp"
	defer os.Remove(part)
	src, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.Create(part)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, io.NewSectionReader(src, int64(tg.ESP.StartBytes), int64(tg.ESP.Bytes))); err != nil {
		t.Fatal(err)
	}
	dst.Close()
	out, err := exec.Command("fsck.vfat", "-n", part).CombinedOutput()
	if err != nil || strings.Contains(string(out), "Warning") {
		t.Errorf("fsck.vfat -n: %v\n%s", err, out)
	}
	t.Logf("fsck.vfat -n: %s", strings.TrimSpace(string(out)))
}

// boot powers the disk on and waits for the marker of the generation that
// should start.
func boot(t *testing.T, fw, img, marker string) {
	t.Helper()
	want := regexp.MustCompile(`HOMESTAKER-BOOTED ` + marker + ` cmdline=[^\n]*homestaker.test=` + marker)
	res, err := vmtest.BootDisk(context.Background(), vmtest.DiskBoot{Firmware: fw, Disk: img, Expect: want})
	if err != nil {
		t.Fatal(err)
	}
	line := want.FindString(res.Console)
	t.Logf("%s boot in %s: %s", fw, res.Duration.Round(100*time.Millisecond), strings.TrimSpace(line))
}

// mtoolsEdit rewrites a small file on the image's EFI system partition, as
// someone at the boot menu would pick another entry.
func mtoolsEdit(t *testing.T, img string, tg Target, p string, edit func(string) string) {
	t.Helper()
	e := &esp{ctx: context.Background(), run: MtoolsRunner{}, path: img, offset: tg.ESP.StartBytes}
	b, err := e.read(p)
	if err != nil {
		t.Fatal(err)
	}
	local := filepath.Join(t.TempDir(), "edit")
	os.WriteFile(local, []byte(edit(string(b))), 0o644)
	if err := e.put(local, p); err != nil {
		t.Fatal(err)
	}
}

// TestVMBootUEFI: OVMF starts systemd-boot from the formatted data disk,
// which boots the entry's kernel and initrd; after an update the new entry
// boots by default and the previous one still boots as the fallback.
func TestVMBootUEFI(t *testing.T) {
	vmtest.RequireFirmware(t, vmtest.UEFI)
	testutil.RequireTool(t, "mcopy")
	sdboot := "/usr/lib/systemd/boot/efi/systemd-bootx64.efi"
	if _, err := os.Stat(sdboot); err != nil {
		testutil.Missing(t, sdboot+" is missing (install systemd-boot-efi)")
	}
	dir := t.TempDir()
	kernel, err := vmtest.HostKernel()
	if err != nil {
		t.Fatal(err)
	}
	img := formattedImage(t, dir)
	loader := filepath.Dir(sdboot)

	install(t, img, generation(t, dir, kernel, "gen1"), UEFI, loader)
	boot(t, vmtest.UEFI, img, "gen1")

	res := install(t, img, generation(t, dir, kernel, "gen2"), UEFI, loader)
	if res.Generation != 2 || res.Fallback != 1 {
		t.Fatalf("second install: %+v, want generation 2 with fallback 1", res)
	}
	boot(t, vmtest.UEFI, img, "gen2")

	tg, _ := ReadTarget(img)
	mtoolsEdit(t, img, tg, loaderConf, func(s string) string {
		return strings.Replace(s, "default homestaker-*", "default "+entryName(1), 1)
	})
	boot(t, vmtest.UEFI, img, "gen1")
}

// grubLoader makes the BIOS loader folder a build would provide: Debian's
// GRUB i386-pc modules and boot.img, and core.img made with GRUBPrefix.
func grubLoader(t *testing.T) string {
	t.Helper()
	mkimage := testutil.RequireTool(t, "grub-mkimage")
	src := "/usr/lib/grub/i386-pc"
	if _, err := os.Stat(filepath.Join(src, "boot.img")); err != nil {
		testutil.Missing(t, src+"/boot.img is missing (install grub-pc-bin)")
	}
	dir := filepath.Join(t.TempDir(), "i386-pc")
	if out, err := exec.Command("cp", "-r", src, dir).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	out, err := exec.Command(mkimage, "-d", src, "-O", "i386-pc", "-p", GRUBPrefix, "-o", filepath.Join(dir, "core.img"),
		"biosdisk", "part_gpt", "fat").CombinedOutput()
	if err != nil {
		t.Fatalf("grub-mkimage: %v\n%s", err, out)
	}
	return dir
}

// TestVMBootBIOS: SeaBIOS starts GRUB from the BIOS boot partition, which
// boots the entry from the EFI system partition; after an update the new
// generation boots, and when its kernel is gone GRUB falls back to the
// previous generation by itself.
func TestVMBootBIOS(t *testing.T) {
	vmtest.RequireFirmware(t, vmtest.BIOS)
	testutil.RequireTool(t, "mcopy")
	loader := grubLoader(t)
	dir := t.TempDir()
	kernel, err := vmtest.HostKernel()
	if err != nil {
		t.Fatal(err)
	}
	img := formattedImage(t, dir)

	install(t, img, generation(t, dir, kernel, "gen1"), BIOS, loader)
	boot(t, vmtest.BIOS, img, "gen1")

	res := install(t, img, generation(t, dir, kernel, "gen2"), BIOS, loader)
	if res.Generation != 2 || res.Fallback != 1 {
		t.Fatalf("second install: %+v, want generation 2 with fallback 1", res)
	}
	boot(t, vmtest.BIOS, img, "gen2")

	tg, _ := ReadTarget(img)
	e := &esp{ctx: context.Background(), run: MtoolsRunner{}, path: img, offset: tg.ESP.StartBytes}
	if err := e.remove(genDir(2)+"/linux", false); err != nil {
		t.Fatal(err)
	}
	boot(t, vmtest.BIOS, img, "gen1")
}
