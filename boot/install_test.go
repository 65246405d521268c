package boot

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/homestaker/homestaker/disk"
	"github.com/homestaker/homestaker/internal/testutil"
)

func requireMtools(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"mcopy", "mdir", "mren", "mtype", "mlabel", "mkfs.vfat", "sgdisk", "fsck.vfat"} {
		testutil.RequireTool(t, tool)
	}
}

func fakeGeneration(t *testing.T, dir, name string) Generation {
	t.Helper()
	k := filepath.Join(dir, name+".kernel")
	i := filepath.Join(dir, name+".initrd")
	os.WriteFile(k, []byte("kernel of "+name), 0o644)
	os.WriteFile(i, []byte(strings.Repeat("initrd of "+name, 1000)), 0o644)
	return Generation{Kernel: k, Initrd: i, Cmdline: "init=/nix/store/abc-" + name + "/init loglevel=4"}
}

func fakeLoader(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "systemd-bootx64.efi"), []byte("MZ systemd-boot"), 0o644)
	return dir
}

func entriesOn(t *testing.T, img string) []string {
	t.Helper()
	tg, err := ReadTarget(img)
	if err != nil {
		t.Fatal(err)
	}
	e := &esp{ctx: context.Background(), run: MtoolsRunner{}, path: img, offset: tg.ESP.StartBytes}
	names, err := e.list(entriesDir)
	if err != nil {
		t.Fatal(err)
	}
	gens, _ := e.list(generationDir)
	return append(names, gens...)
}

// TestInstallKeepsOneFallback: every install adds a generation, keeps the
// one before as the fallback and removes older ones; each entry names its
// own files, which hold what was installed.
func TestInstallKeepsOneFallback(t *testing.T) {
	requireMtools(t)
	dir := t.TempDir()
	img := formattedImage(t, dir)
	loader := fakeLoader(t)
	for n := 1; n <= 3; n++ {
		g := fakeGeneration(t, dir, fmt.Sprintf("g%d", n))
		res := install(t, img, g, UEFI, loader)
		if res.Generation != n || res.Fallback != n-1 {
			t.Errorf("install %d: %+v", n, res)
		}
	}
	got := entriesOn(t, img)
	want := []string{"homestaker-0002.conf", "homestaker-0003.conf", "0002", "0003"}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("after three installs the partition holds %v, want %v", got, want)
	}
	tg, _ := ReadTarget(img)
	e := &esp{ctx: context.Background(), run: MtoolsRunner{}, path: img, offset: tg.ESP.StartBytes}
	text, err := e.read(entriesDir + "/" + entryName(3))
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"linux /homestaker/0003/linux\n", "initrd /homestaker/0003/initrd\n", "options init=/nix/store/abc-g3/init loglevel=4\n", "sort-key homestaker\n", "version 3\n"} {
		if !strings.Contains(string(text), w) {
			t.Errorf("entry 3 lacks %q:\n%s", w, text)
		}
	}
	if b, _ := e.read("/homestaker/0003/linux"); string(b) != "kernel of g3" {
		t.Errorf("generation 3's kernel reads %q", b)
	}
	if b, _ := e.read(loaderConf); string(b) != loaderConfText {
		t.Errorf("loader.conf:\n%s", b)
	}
	if b, _ := e.read(efiFallback); string(b) != "MZ systemd-boot" {
		t.Errorf("%s reads %q", efiFallback, b)
	}
}

// TestInstallClearsAnInterruptedRun: a half-written entry and generation
// folder from a run that stopped are removed, and the current entry stays.
func TestInstallClearsAnInterruptedRun(t *testing.T) {
	requireMtools(t)
	dir := t.TempDir()
	img := formattedImage(t, dir)
	loader := fakeLoader(t)
	install(t, img, fakeGeneration(t, dir, "g1"), UEFI, loader)
	tg, _ := ReadTarget(img)
	e := &esp{ctx: context.Background(), run: MtoolsRunner{}, path: img, offset: tg.ESP.StartBytes}
	junk := filepath.Join(dir, "junk")
	os.WriteFile(junk, []byte("half"), 0o644)
	if err := e.mkdirAll(genDir(2)); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{genDir(2) + "/linux", entriesDir + "/" + entryName(2) + tmpSuffix} {
		if err := e.put(junk, p); err != nil {
			t.Fatal(err)
		}
	}
	res := install(t, img, fakeGeneration(t, dir, "g2"), UEFI, loader)
	if res.Generation != 2 || res.Fallback != 1 {
		t.Errorf("%+v", res)
	}
	got := entriesOn(t, img)
	slices.Sort(got)
	if want := []string{"0001", "0002", "homestaker-0001.conf", "homestaker-0002.conf"}; !slices.Equal(got, want) {
		t.Errorf("partition holds %v, want %v", got, want)
	}
	if b, _ := e.read(genDir(2) + "/linux"); string(b) != "kernel of g2" {
		t.Errorf("generation 2's kernel reads %q", b)
	}
}

func imageSum(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	io.Copy(h, f)
	return fmt.Sprintf("%x", h.Sum(nil))
}

// TestInstallDryRunChangesNothing: the dry run reads the disk and says what
// it would do, and the image is bit for bit the same.
func TestInstallDryRunChangesNothing(t *testing.T) {
	requireMtools(t)
	dir := t.TempDir()
	img := formattedImage(t, dir)
	loader := fakeLoader(t)
	install(t, img, fakeGeneration(t, dir, "g1"), UEFI, loader)
	before := imageSum(t, img)
	tg, _ := ReadTarget(img)
	var log strings.Builder
	res, err := (&Installer{Reporter: reportTo(&log)}).Install(context.Background(), tg, fakeGeneration(t, dir, "g2"), Options{Firmware: UEFI, LoaderDir: loader, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Generation != 2 || res.Fallback != 1 {
		t.Errorf("%+v", res)
	}
	if after := imageSum(t, img); after != before {
		t.Error("the dry run changed the image")
	}
	for _, w := range []string{"current boot entry: generation 1", "would copy the kernel", "would switch the default boot entry to generation 2"} {
		if !strings.Contains(log.String(), w) {
			t.Errorf("dry run output lacks %q:\n%s", w, log.String())
		}
	}
}

// TestInstallRefusals: a disk without homestaker's EFI system partition, a
// partition without its FAT, bad generations and loaders are refused before
// anything is written.
func TestInstallRefusals(t *testing.T) {
	requireMtools(t)
	dir := t.TempDir()
	g := fakeGeneration(t, dir, "g1")
	loader := fakeLoader(t)

	// A disk partitioned by another tool: one Linux partition.
	other := filepath.Join(dir, "other.img")
	os.WriteFile(other, nil, 0o644)
	os.Truncate(other, 64<<20)
	if out, err := exec.Command("sgdisk", "-n", "1:0:0", "-c", "1:data", other).CombinedOutput(); err != nil {
		t.Fatalf("sgdisk: %v %s", err, out)
	}
	var refused *disk.RefusedError
	if _, err := ReadTarget(other); !errors.As(err, &refused) || !strings.Contains(err.Error(), "no EFI system partition labelled disk-data-boot") {
		t.Errorf("foreign disk: %v", err)
	}
	blank := filepath.Join(dir, "blank.img")
	os.WriteFile(blank, make([]byte, 1<<20), 0o644)
	if _, err := ReadTarget(blank); !errors.As(err, &refused) || !strings.Contains(err.Error(), "no readable GPT") {
		t.Errorf("blank disk: %v", err)
	}

	// homestaker's layout, but the ESP was never formatted.
	img := formattedImage(t, dir)
	tg, err := ReadTarget(img)
	if err != nil {
		t.Fatal(err)
	}
	f, _ := os.OpenFile(img, os.O_WRONLY, 0)
	f.WriteAt(make([]byte, 1<<20), int64(tg.ESP.StartBytes))
	f.Close()
	before := imageSum(t, img)
	_, err = (&Installer{}).Install(context.Background(), tg, g, Options{Firmware: UEFI, LoaderDir: loader})
	if !errors.As(err, &refused) || !strings.Contains(err.Error(), "no FAT filesystem labelled HSBOOT") {
		t.Errorf("unformatted ESP: %v", err)
	}
	for name, c := range map[string]struct {
		g    Generation
		o    Options
		want string
	}{
		"no kernel":   {Generation{Initrd: g.Initrd, Cmdline: "x"}, Options{Firmware: UEFI, LoaderDir: loader}, "--kernel: no file"},
		"empty line":  {Generation{Kernel: g.Kernel, Initrd: g.Initrd, Cmdline: " "}, Options{Firmware: UEFI, LoaderDir: loader}, "--cmdline: empty"},
		"newline":     {Generation{Kernel: g.Kernel, Initrd: g.Initrd, Cmdline: "a\nb"}, Options{Firmware: UEFI, LoaderDir: loader}, "not printable"},
		"no loader":   {g, Options{Firmware: UEFI, LoaderDir: dir}, "no systemd-bootx64.efi"},
		"no grub":     {g, Options{Firmware: BIOS, LoaderDir: loader}, "no GRUB boot.img and core.img"},
		"no firmware": {g, Options{Firmware: "coreboot", LoaderDir: loader}, "want uefi or bios"},
	} {
		if _, err := (&Installer{}).Install(context.Background(), tg, c.g, c.o); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", name, err, c.want)
		}
	}
	if imageSum(t, img) != before {
		t.Error("a refused install changed the image")
	}
}

func TestPrepareBIOS(t *testing.T) {
	boot := make([]byte, 512)
	boot[510], boot[511] = 0x55, 0xaa
	core := make([]byte, 3*512+100)
	c, err := prepareBIOS(boot, core, 1<<20, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.mbr) != 440 || len(c.core) != 4*512 {
		t.Fatalf("mbr %d bytes, core %d", len(c.mbr), len(c.core))
	}
	if got := c.mbr[0x5c]; got != 0x00 || c.mbr[0x5d] != 0x08 { // LBA 2048
		t.Errorf("kernel sector bytes %x %x, want LBA 2048", c.mbr[0x5c], c.mbr[0x5d])
	}
	bl := c.core[500:512]
	if bl[0] != 0x01 || bl[1] != 0x08 || bl[8] != 3 || bl[10] != 0x20 || bl[11] != 0x08 {
		t.Errorf("blocklist % x, want start 2049, 3 sectors, segment 0x820", bl)
	}
	if _, err := prepareBIOS(boot, make([]byte, 2<<20), 1<<20, 1<<20); err == nil {
		t.Error("a core.img bigger than the partition was accepted")
	}
	if _, err := prepareBIOS(make([]byte, 512), core, 1<<20, 1<<20); err == nil {
		t.Error("a boot.img without signature was accepted")
	}
}

func TestGRUBConfigQuotes(t *testing.T) {
	cfg := string(grubConfig([]entry{
		{Number: 2, Linux: "/homestaker/0002/linux", Initrd: "/homestaker/0002/initrd", Options: `init=/x/init a='b c' $x;`},
		{Number: 1, Linux: "/homestaker/0001/linux", Initrd: "/homestaker/0001/initrd", Options: "init=/y/init"},
	}))
	for _, w := range []string{
		"set default=0\nset fallback=1\n",
		`linux '/homestaker/0002/linux' 'init=/x/init' 'a='\''b' 'c'\''' '$x;'`,
		"menuentry 'homestaker node (generation 1) (fallback)'",
	} {
		if !strings.Contains(cfg, w) {
			t.Errorf("grub.cfg lacks %q:\n%s", w, cfg)
		}
	}
}
