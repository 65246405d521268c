package media

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/homestaker/homestaker/internal/testutil"
)

// fakeKernel is an arm64 Image header (Documentation/arch/arm64/booting.rst)
// followed by n random bytes: enough for ReadParts, not a kernel that boots.
func fakeKernel(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, 64+n)
	rand.Read(b[64:])
	binary.LittleEndian.PutUint64(b[0x10:], uint64(len(b)))
	copy(b[0x38:], "ARM\x64")
	return b
}

func random(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// overlayNames are long, mixed-case names as the firmware's overlays/ has.
var overlayNames = []string{"README", "disable-bt.dtbo", "vc4-kms-v3d-pi4.dtbo", "uart0.dtbo", "w1-gpio-pullup.dtbo", "overlay_map.dtb", "hat_map.dtb"}

// makeParts writes a parts folder as the flake builds it: kernel, initrd,
// command line, stand-in firmware, device trees and overlays.
func makeParts(t *testing.T, dir string, kernel, initrd []byte, cmdline string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{
		PartKernel:                    kernel,
		PartInitrd:                    initrd,
		PartCmdline:                   []byte(cmdline + "\n"),
		"start4.elf":                  random(2300 << 10),
		"start4x.elf":                 random(2900 << 10),
		"fixup4.dat":                  random(5 << 10),
		"fixup4x.dat":                 random(8 << 10),
		"bcm2711-rpi-4-b.dtb":         random(52 << 10),
		"bcm2711-rpi-400.dtb":         random(52 << 10),
		"bcm2711-rpi-cm4.dtb":         random(53 << 10),
		"LICENCE.broadcom":            []byte("stand-in licence\n"),
		"overlays/" + overlayNames[0]: []byte("overlays: stand-ins\n"),
	}
	for i, n := range overlayNames[1:] {
		files["overlays/"+n] = random(1000 + 777*i)
	}
	files["overlays/empty.dtbo"] = nil
	for name, data := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return files
}

const testCmdline = "init=/nix/store/00000000000000000000000000000000-nixos-system-pi/init console=tty1 console=ttyS0,115200 loglevel=4"

func assemble(t *testing.T, dir, out string) Image {
	t.Helper()
	p, err := ReadParts(dir)
	if err != nil {
		t.Fatal(err)
	}
	img, err := Assemble(context.Background(), p, out)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// TestAssembleJudgedByRealTools assembles an image and lets sfdisk,
// fsck.vfat and mtools judge it: the MBR, the filesystem, and every file
// byte for byte.
func TestAssembleJudgedByRealTools(t *testing.T) {
	sfdisk := testutil.RequireTool(t, "sfdisk")
	fsck := testutil.RequireTool(t, "fsck.vfat")
	mcopy := testutil.RequireTool(t, "mcopy")
	mdir := testutil.RequireTool(t, "mdir")
	mtype := testutil.RequireTool(t, "mtype")

	parts := t.TempDir()
	want := makeParts(t, parts, fakeKernel(t, 9<<20), append([]byte("\x28\xb5\x2f\xfd"), random(20<<20)...), testCmdline)
	want[ConfigTxt] = ConfigTxtFor()
	out := filepath.Join(t.TempDir(), "node.img")
	start := time.Now()
	img := assemble(t, parts, out)
	t.Logf("assembled %d files, %d MiB image, partition %d MiB at %d MiB, in %s",
		len(img.Files), img.Size>>20, img.PartitionSize>>20, img.PartitionStart>>20, time.Since(start).Round(time.Millisecond))

	// The MBR, as sfdisk reads it.
	js, err := exec.Command(sfdisk, "--json", out).Output()
	if err != nil {
		t.Fatalf("sfdisk --json: %v", err)
	}
	var table struct {
		PartitionTable struct {
			Label      string `json:"label"`
			ID         string `json:"id"`
			Unit       string `json:"unit"`
			Partitions []struct {
				Start, Size int64
				Type        string
				Bootable    bool
			} `json:"partitions"`
		} `json:"partitiontable"`
	}
	if err := json.Unmarshal(js, &table); err != nil {
		t.Fatalf("sfdisk --json: %v\n%s", err, js)
	}
	pt := table.PartitionTable
	if pt.Label != "dos" || len(pt.Partitions) != 1 {
		t.Fatalf("sfdisk sees %s with %d partitions, want one MBR (dos) partition:\n%s", pt.Label, len(pt.Partitions), js)
	}
	p1 := pt.Partitions[0]
	if p1.Type != "c" || !p1.Bootable || p1.Start*SectorSize != PartitionOffset || p1.Size*SectorSize != img.PartitionSize {
		t.Errorf("partition 1 is type %s bootable=%v at sector %d, %d sectors; want type c, bootable, at %d, %d sectors",
			p1.Type, p1.Bootable, p1.Start, p1.Size, PartitionOffset/SectorSize, img.PartitionSize/SectorSize)
	}
	if (p1.Start*SectorSize)%(4<<20) != 0 || img.PartitionSize%(4<<20) != 0 {
		t.Errorf("partition 1 is not 4 MiB aligned: start %d, size %d", p1.Start*SectorSize, img.PartitionSize)
	}
	if wantID := fmt.Sprintf("0x%08x", img.DiskSignature); pt.ID != wantID {
		t.Errorf("disk identifier %s, want %s", pt.ID, wantID)
	}
	if o, err := exec.Command(sfdisk, "--verify", out).CombinedOutput(); err != nil || !strings.Contains(string(o), "No errors detected") {
		t.Errorf("sfdisk --verify: %v\n%s", err, o)
	}

	// The filesystem, as fsck.vfat sees it (on the partition alone).
	partFile := filepath.Join(t.TempDir(), "part.img")
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(partFile, data[img.PartitionStart:img.PartitionStart+img.PartitionSize], 0o644); err != nil {
		t.Fatal(err)
	}
	fo, err := exec.Command(fsck, "-n", "-v", partFile).CombinedOutput()
	t.Logf("fsck.vfat -n -v:\n%s", fo)
	if err != nil {
		t.Errorf("fsck.vfat -n failed: %v", err)
	}
	for _, bad := range []string{"Dirty bit", "differ", "wrong", "Bad", "ERROR", "Free cluster summary"} {
		if bytes.Contains(fo, []byte(bad)) {
			t.Errorf("fsck.vfat reports %q", bad)
		}
	}

	// Every file, byte for byte, through mtools.
	at := fmt.Sprintf("%s@@%d", out, img.PartitionStart)
	head, err := exec.Command(mdir, "-i", at, "::").Output()
	if err != nil {
		t.Fatalf("mdir: %v", err)
	}
	wantSerial := fmt.Sprintf("%04X-%04X", img.VolumeID>>16, img.VolumeID&0xffff)
	if !strings.Contains(string(head), "Volume in drive : is "+VolumeLabel) || !strings.Contains(string(head), wantSerial) {
		t.Errorf("mdir does not show the label %s and serial %s:\n%s", VolumeLabel, wantSerial, head)
	}
	listing, err := exec.Command(mdir, "-i", at, "-/", "-b", "::").Output()
	if err != nil {
		t.Fatalf("mdir: %v", err)
	}
	if got, wantN := strings.Count(strings.TrimSpace(string(listing)), "\n")+1, len(want)+1; got != wantN { // + overlays/
		t.Errorf("mdir lists %d entries, want %d:\n%s", got, wantN, listing)
	}
	for name, content := range want {
		got, err := exec.Command(mcopy, "-n", "-i", at, "::/"+name, "-").Output()
		if err != nil {
			t.Errorf("mcopy ::/%s: %v", name, err)
			continue
		}
		if !bytes.Equal(got, content) {
			t.Errorf("::/%s on the card is %d bytes and differs from the part (%d bytes)", name, len(got), len(content))
		}
	}
	cfg, err := exec.Command(mtype, "-i", at, "::/config.txt").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"arm_64bit=1", "kernel=Image", "initramfs initrd followkernel", "enable_uart=1", "[pi4]"} {
		if !strings.Contains(string(cfg), "\n"+line+"\n") {
			t.Errorf("config.txt lacks the line %q:\n%s", line, cfg)
		}
	}
	cmd, err := exec.Command(mtype, "-i", at, "::/cmdline.txt").Output()
	if err != nil || strings.TrimSpace(string(cmd)) != testCmdline {
		t.Errorf("cmdline.txt on the card is %q (%v), want %q", cmd, err, testCmdline)
	}
	// The long names are intact, not only their 8.3 aliases.
	long, err := exec.Command(mdir, "-i", at, "-b", "::/overlays").Output()
	if err != nil || !strings.Contains(string(long), "vc4-kms-v3d-pi4.dtbo") {
		t.Errorf("mdir ::/overlays: %v\n%s", err, long)
	}
}

// TestAssembleIsReproducible: the same parts give the same bytes, whatever
// the clock says (go-diskfs stamps entries with SOURCE_DATE_EPOCH or now).
func TestAssembleIsReproducible(t *testing.T) {
	parts := t.TempDir()
	makeParts(t, parts, fakeKernel(t, 1<<20), append([]byte{0x1f, 0x8b}, random(3<<20)...), testCmdline)
	dir := t.TempDir()
	a := assemble(t, parts, filepath.Join(dir, "a.img"))
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	b := assemble(t, parts, filepath.Join(dir, "b.img"))
	if a.SHA256 != b.SHA256 {
		t.Fatalf("two images of the same parts differ: %s and %s", a.SHA256, b.SHA256)
	}
	x, _ := os.ReadFile(a.Path)
	y, _ := os.ReadFile(b.Path)
	if !bytes.Equal(x, y) {
		t.Fatal("two images of the same parts differ")
	}
	// Other parts, another image, another disk signature.
	if err := os.WriteFile(filepath.Join(parts, "fixup4.dat"), random(5<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	c := assemble(t, parts, filepath.Join(dir, "c.img"))
	if c.SHA256 == a.SHA256 || c.DiskSignature == a.DiskSignature || c.VolumeID == a.VolumeID {
		t.Errorf("changed parts gave the same image, disk signature or volume serial")
	}
	t.Logf("image %s, %d bytes, disk signature %08x, volume serial %08x", a.SHA256[:16], a.Size, a.DiskSignature, a.VolumeID)
}

// TestAssembleReplacesAtomically: an image that cannot be made leaves the
// old file and no temporary file behind.
func TestAssembleReplacesAtomically(t *testing.T) {
	parts := t.TempDir()
	makeParts(t, parts, fakeKernel(t, 1<<10), []byte("070701rest"), testCmdline)
	dir := t.TempDir()
	out := filepath.Join(dir, "node.img")
	if err := os.WriteFile(out, []byte("old image"), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := ReadParts(parts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Assemble(ctx, p, out); !errors.Is(err, context.Canceled) {
		t.Fatalf("a cancelled assembly returned %v", err)
	}
	if data, _ := os.ReadFile(out); string(data) != "old image" {
		t.Errorf("the old image was changed: %q", data)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("left behind: %v", entries)
	}
	img, err := Assemble(context.Background(), p, out)
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(out); st.Size() != img.Size || st.Mode().Perm() != 0o644 {
		t.Errorf("the new image is %d bytes, mode %v; want %d, 0644", st.Size(), st.Mode().Perm(), img.Size)
	}
}

func TestReadPartsRefuses(t *testing.T) {
	cases := []struct {
		name   string
		change func(dir string)
		want   string
	}{
		{"missing firmware", func(d string) { os.Remove(filepath.Join(d, "start4.elf")) }, "start4.elf: missing"},
		{"missing device tree", func(d string) { os.Remove(filepath.Join(d, "bcm2711-rpi-4-b.dtb")) }, "bcm2711-rpi-4-b.dtb: missing"},
		{"own config.txt", func(d string) { os.WriteFile(filepath.Join(d, "config.txt"), []byte("x"), 0o644) }, "config.txt: homestaker writes config.txt itself"},
		{"unknown file", func(d string) { os.WriteFile(filepath.Join(d, "notes.md"), []byte("x"), 0o644) }, "notes.md: not a part"},
		{"unknown folder", func(d string) { os.Mkdir(filepath.Join(d, "extra"), 0o755) }, "extra: a folder other than overlays/"},
		{"folder in overlays", func(d string) { os.Mkdir(filepath.Join(d, "overlays", "sub"), 0o755) }, "overlays/sub: overlays/ holds files only"},
		{"x86 kernel", func(d string) { os.WriteFile(filepath.Join(d, "Image"), make([]byte, 4096), 0o644) }, "Image: not an arm64 kernel Image"},
		{"gzip kernel", func(d string) {
			os.WriteFile(filepath.Join(d, "Image"), append([]byte{0x1f, 0x8b}, make([]byte, 100)...), 0o644)
		}, "Image: a gzip-compressed kernel"},
		{"empty initrd", func(d string) { os.WriteFile(filepath.Join(d, "initrd"), nil, 0o644) }, "initrd: empty"},
		{"not an initrd", func(d string) { os.WriteFile(filepath.Join(d, "initrd"), []byte("hello world"), 0o644) }, "initrd: not an initramfs"},
		{"two-line cmdline", func(d string) { os.WriteFile(filepath.Join(d, "cmdline.txt"), []byte("init=/init\nquiet\n"), 0o644) }, "cmdline.txt: more than one line"},
		{"cmdline without init", func(d string) { os.WriteFile(filepath.Join(d, "cmdline.txt"), []byte("console=ttyS0\n"), 0o644) }, "cmdline.txt: no init="},
		{"long cmdline", func(d string) {
			os.WriteFile(filepath.Join(d, "cmdline.txt"), []byte("init=/init "+strings.Repeat("x", 2100)), 0o644)
		}, "cmdline.txt: 2111 bytes"},
		{"bad name", func(d string) { os.WriteFile(filepath.Join(d, "overlays", "a:b.dtbo"), nil, 0o644) }, "overlays/a:b.dtbo: the character ':'"},
		{"dangling link", func(d string) { os.Symlink("/nonexistent", filepath.Join(d, "start4cd.elf")) }, "start4cd.elf:"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			makeParts(t, dir, fakeKernel(t, 100), []byte("\x28\xb5\x2f\xfd..."), testCmdline)
			c.change(dir)
			_, err := ReadParts(dir)
			var pe *PartsError
			if !errors.As(err, &pe) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want a PartsError containing %q", err, c.want)
			}
		})
	}
}

// TestReadPartsFollowsLinks: a Nix build output links its parts into the
// store; the card gets the files linked to.
func TestReadPartsFollowsLinks(t *testing.T) {
	store := t.TempDir()
	makeParts(t, store, fakeKernel(t, 100), []byte("\x28\xb5\x2f\xfd..."), testCmdline)
	dir := t.TempDir()
	entries, _ := os.ReadDir(store)
	for _, e := range entries {
		if err := os.Symlink(filepath.Join(store, e.Name()), filepath.Join(dir, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
	p, err := ReadParts(dir)
	if err != nil {
		t.Fatal(err)
	}
	if p.Cmdline != testCmdline {
		t.Errorf("cmdline %q", p.Cmdline)
	}
	if n := len(p.Names()); n != 20 {
		t.Errorf("%d files: %v", n, p.Names())
	}
}

func TestPartitionSizeFits(t *testing.T) {
	for _, sizes := range [][]int64{{0}, {100 << 20}, {255 << 20}, {1 << 30, 30 << 20}, {3 << 30}, {10000, 10000, 10000}} {
		var files []Part
		for i, s := range sizes {
			files = append(files, Part{Name: fmt.Sprint(i), Size: s})
		}
		size := PartitionSizeFor(files)
		if !fatHoldsClusters(size) {
			t.Errorf("%v: partition %d has clusters without FAT entries", sizes, size)
		}
		if size%(4<<20) != 0 || size < minPartition {
			t.Errorf("%v: partition %d is not a multiple of 4 MiB of at least 64 MiB", sizes, size)
		}
		var sum int64
		for _, s := range sizes {
			sum += s
		}
		if size < sum+16<<20 {
			t.Errorf("%v: partition %d leaves too little room", sizes, size)
		}
	}
}
