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

// bless renames generation n's counted entry to its name without a counter,
// as systemd-bless-boot.service does on the node after a complete boot, or
// to another counter, as systemd-boot does before it starts the entry.
func renameEntry(t *testing.T, img, from, to string) {
	t.Helper()
	tg, _ := ReadTarget(img)
	e := &esp{ctx: context.Background(), run: MtoolsRunner{}, path: img, offset: tg.ESP.StartBytes}
	if err := e.rename(entriesDir+"/"+from, to); err != nil {
		t.Fatal(err)
	}
}

// TestInstallKeepsOneFallback: every install adds a generation, keeps the
// one before as the fallback once it booted (the node removed its boot
// counter) and removes older ones; each entry names its own files, which
// hold what was installed. The first generation has no counter (there is
// nothing to fall back to), every later one starts with DefaultTries.
func TestInstallKeepsOneFallback(t *testing.T) {
	requireMtools(t)
	dir := t.TempDir()
	img := formattedImage(t, dir)
	loader := fakeLoader(t)
	for n := 1; n <= 3; n++ {
		g := fakeGeneration(t, dir, fmt.Sprintf("g%d", n))
		res := install(t, img, g, UEFI, loader)
		want := Result{Generation: n, Fallback: n - 1, Tries: DefaultTries, Entry: fmt.Sprintf("homestaker-%04d+3.conf", n)}
		if n == 1 {
			want.Tries, want.Entry = 0, "homestaker-0001.conf"
		}
		if res != want {
			t.Errorf("install %d: %+v, want %+v", n, res, want)
		}
		if n > 1 {
			// The node booted it from the disk and reached boot-complete.target.
			renameEntry(t, img, res.Entry, entryName(n))
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

// TestInstallBootCounters: what an update does with the counters it finds.
// An entry still counting (never started from the disk, or started without
// a complete boot) and one whose tries ran out are no fallback: they go,
// and the newest entry that booted stays the fallback. A blessed entry is
// the next fallback. A rerun with the build of the newest entry changes
// nothing, counters included, and says when that build failed to boot.
func TestInstallBootCounters(t *testing.T) {
	requireMtools(t)
	dir := t.TempDir()
	img := formattedImage(t, dir)
	loader := fakeLoader(t)
	g := map[int]Generation{}
	for n := 1; n <= 5; n++ {
		g[n] = fakeGeneration(t, dir, fmt.Sprintf("g%d", n))
	}
	holds := func(step string, want ...string) {
		t.Helper()
		got := entriesOn(t, img)
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s: the partition holds %v, want %v", step, got, want)
		}
	}
	check := func(step string, got, want Result) {
		t.Helper()
		if got != want {
			t.Errorf("%s: %+v, want %+v", step, got, want)
		}
	}
	check("install", install(t, img, g[1], UEFI, loader), Result{Generation: 1, Entry: "homestaker-0001.conf"})
	check("update to 2", install(t, img, g[2], UEFI, loader), Result{Generation: 2, Fallback: 1, Tries: 3, Entry: "homestaker-0002+3.conf"})
	check("update to 2 again", install(t, img, g[2], UEFI, loader), Result{Generation: 2, Fallback: 1, Tries: 3, Entry: "homestaker-0002+3.conf", Unchanged: true})
	holds("after the update to 2", "0001", "0002", "homestaker-0001.conf", "homestaker-0002+3.conf")

	// systemd-boot started generation 2 once; its boot never completed.
	renameEntry(t, img, "homestaker-0002+3.conf", "homestaker-0002+2-1.conf")
	check("update to 3", install(t, img, g[3], UEFI, loader), Result{Generation: 3, Fallback: 1, Tries: 3, Entry: "homestaker-0003+3.conf"})
	holds("after the update to 3", "0001", "0003", "homestaker-0001.conf", "homestaker-0003+3.conf")

	// Generation 3 failed three times: systemd-boot boots generation 1.
	renameEntry(t, img, "homestaker-0003+3.conf", "homestaker-0003+0-3.conf")
	tg, _ := ReadTarget(img)
	var log strings.Builder
	res, err := (&Installer{Reporter: reportTo(&log)}).Install(context.Background(), tg, g[3], Options{Firmware: UEFI, LoaderDir: loader})
	if err != nil {
		t.Fatal(err)
	}
	check("update to the failed build again", res, Result{Generation: 3, Fallback: 1, Entry: "homestaker-0003+0-3.conf", Unchanged: true})
	if !strings.Contains(log.String(), "generation 3 failed to boot 3 times: systemd-boot boots generation 1 instead") {
		t.Errorf("the rerun of a failed build did not say it failed:\n%s", log.String())
	}
	check("update to 4", install(t, img, g[4], UEFI, loader), Result{Generation: 4, Fallback: 1, Tries: 3, Entry: "homestaker-0004+3.conf"})
	holds("after the update to 4", "0001", "0004", "homestaker-0001.conf", "homestaker-0004+3.conf")

	// Generation 4 booted from the disk (one try taken), and the node blessed it.
	renameEntry(t, img, "homestaker-0004+3.conf", "homestaker-0004+2-1.conf")
	renameEntry(t, img, "homestaker-0004+2-1.conf", entryName(4))
	check("update to 5", install(t, img, g[5], UEFI, loader), Result{Generation: 5, Fallback: 4, Tries: 3, Entry: "homestaker-0005+3.conf"})
	holds("after the update to 5", "0004", "0005", "homestaker-0004.conf", "homestaker-0005+3.conf")

	// Tries set by the caller.
	res, err = (&Installer{}).Install(context.Background(), tg, g[1], Options{Firmware: UEFI, LoaderDir: loader, Tries: 1})
	if err != nil {
		t.Fatal(err)
	}
	check("update with one try", res, Result{Generation: 6, Fallback: 4, Tries: 1, Entry: "homestaker-0006+1.conf"})
}

// TestEntryFileNames: the names of the Boot Loader Specification's boot
// counting, and which entry an update keeps.
func TestEntryFileNames(t *testing.T) {
	for name, want := range map[string]entryFile{
		"homestaker-0002.conf":     {Number: 2, Name: "homestaker-0002.conf"},
		"homestaker-0002+3.conf":   {Number: 2, Name: "homestaker-0002+3.conf", Counted: true, Left: 3},
		"homestaker-0002+2-1.conf": {Number: 2, Name: "homestaker-0002+2-1.conf", Counted: true, Left: 2, Done: 1},
		"homestaker-0012+0-3.conf": {Number: 12, Name: "homestaker-0012+0-3.conf", Counted: true, Done: 3},
		"HOMESTAKER-0002+1-2.CONF": {Number: 2, Name: "HOMESTAKER-0002+1-2.CONF", Counted: true, Left: 1, Done: 2},
	} {
		got, ok := parseEntryFile(name)
		if !ok || got != want {
			t.Errorf("%s: %+v %v, want %+v", name, got, ok, want)
		}
	}
	for _, name := range []string{"homestaker-0002+.conf", "homestaker-0002-1.conf", "homestaker-0002+3.conf.tmp", "nixos-0002+3.conf", "homestaker-2.conf"} {
		if f, ok := parseEntryFile(name); ok {
			t.Errorf("%s read as %+v", name, f)
		}
	}
	if got := countedName(7, 3); got != "homestaker-0007+3.conf" {
		t.Errorf("countedName(7, 3) = %s", got)
	}
	if got := countedName(7, 0); got != "homestaker-0007.conf" {
		t.Errorf("countedName(7, 0) = %s", got)
	}
	if f, _ := parseEntryFile("homestaker-0002+0-3.conf"); !f.Bad() || f.Good() {
		t.Errorf("+0-3 is not bad: %+v", f)
	}

	numbers := func(fs []entryFile) []string {
		var out []string
		for _, f := range fs {
			out = append(out, f.Name)
		}
		return out
	}
	for _, c := range []struct {
		names        []string
		keep, newest string
		remove       []string
		next         int
	}{
		{names: nil, next: 1},
		{names: []string{"homestaker-0001.conf"}, keep: "homestaker-0001.conf", newest: "homestaker-0001.conf", next: 2},
		// The blessed newest is the fallback.
		{names: []string{"homestaker-0001.conf", "homestaker-0002.conf"}, keep: "homestaker-0002.conf", newest: "homestaker-0002.conf",
			remove: []string{"homestaker-0001.conf"}, next: 3},
		// Still counting, or bad: the older good one stays.
		{names: []string{"homestaker-0001.conf", "homestaker-0002+3.conf"}, keep: "homestaker-0001.conf", newest: "homestaker-0002+3.conf",
			remove: []string{"homestaker-0002+3.conf"}, next: 3},
		{names: []string{"homestaker-0002+0-3.conf", "homestaker-0001.conf", "loader.conf.bak"}, keep: "homestaker-0001.conf", newest: "homestaker-0002+0-3.conf",
			remove: []string{"homestaker-0002+0-3.conf"}, next: 3},
		// No good entry: the newest with tries left, else the newest.
		{names: []string{"homestaker-0003+0-3.conf", "homestaker-0002+1-2.conf"}, keep: "homestaker-0002+1-2.conf", newest: "homestaker-0003+0-3.conf",
			remove: []string{"homestaker-0003+0-3.conf"}, next: 4},
		{names: []string{"homestaker-0003+0-3.conf", "homestaker-0002+0-3.conf"}, keep: "homestaker-0003+0-3.conf", newest: "homestaker-0003+0-3.conf",
			remove: []string{"homestaker-0002+0-3.conf"}, next: 4},
		// Two files of one generation: the blessed one comes first.
		{names: []string{"homestaker-0002+2-1.conf", "homestaker-0002.conf"}, keep: "homestaker-0002.conf", newest: "homestaker-0002.conf",
			remove: []string{"homestaker-0002+2-1.conf"}, next: 3},
	} {
		p := planEntries(generations(c.names))
		name := func(f *entryFile) string {
			if f == nil {
				return ""
			}
			return f.Name
		}
		if name(p.Keep) != c.keep || name(p.Newest) != c.newest || !slices.Equal(numbers(p.Remove), c.remove) || p.Next != c.next {
			t.Errorf("%v: keep %q newest %q remove %v next %d, want %q %q %v %d", c.names, name(p.Keep), name(p.Newest), numbers(p.Remove), p.Next, c.keep, c.newest, c.remove, c.next)
		}
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
	if err := espMkdirAll(e, genDir(2)); err != nil {
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
	if want := []string{"0001", "0002", "homestaker-0001.conf", "homestaker-0002+3.conf"}; !slices.Equal(got, want) {
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
