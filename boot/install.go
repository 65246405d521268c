package boot

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/homestaker/homestaker/disk"
	"github.com/homestaker/homestaker/report"
)

// ReportStep is the step name of every event the Installer reports.
const ReportStep = "boot"

// Installer writes boot entries. It reports every step to Reporter and runs
// mtools through Runner.
type Installer struct {
	Runner   Runner
	Reporter report.Reporter
	// SysRoot is where block devices are looked up ("" for the running system).
	SysRoot string
	// wrapESP, when set, wraps the partition's filesystem (tests stop an
	// install between two files with it).
	wrapESP func(espFS) espFS
}

// Options are the choices of one install.
type Options struct {
	// Firmware picks the boot loader: systemd-boot (UEFI) or GRUB (BIOS).
	Firmware Firmware
	// LoaderDir holds the boot loader's files (see FindLoader).
	LoaderDir string
	// DryRun reads the disk and reports every step, and writes nothing.
	DryRun bool
	// ESPDir, when set, is the folder where the running system has the
	// disk's EFI system partition mounted (on the node: /boot; see
	// MountedESP): the partition is then read and written through that
	// mounted filesystem instead of with mtools on the raw disk, which
	// would corrupt a FAT the kernel has mounted. The BIOS boot partition
	// and sector 0 are not part of the mounted filesystem and are still
	// written on the raw disk (GRUB).
	ESPDir string
	// Tries is the boot counter a new generation's entry gets on UEFI
	// when there is a fallback to go back to (0: DefaultTries; negative:
	// none). A first generation, and GRUB's entries, get none.
	Tries int
}

// Result is what an install left on the disk.
type Result struct {
	// Generation is the new default entry; Fallback the previous one (0: none).
	Generation, Fallback int
	// Unchanged: the default entry already booted this generation, and
	// nothing was written.
	Unchanged bool
	// Tries is the boot counter of the new entry (0: none): systemd-boot
	// starts it that many times without a completed boot, then the fallback.
	Tries int
	// Entry is the new default entry's file name in /loader/entries.
	Entry string
}

// EntryRequest is one boot entry to write: `homestaker boot install` and
// the install's boot-entry step both go through WriteEntry.
type EntryRequest struct {
	// Path is the data disk (a block device) or, with Image, its image file.
	Path  string
	Image bool
	Generation
	Options
}

// KindError says Path is a block device where an image file was named, or
// the other way round; nothing was written.
type KindError struct {
	Path  string
	Image bool
}

func (e *KindError) Error() string {
	if e.Image {
		return e.Path + " is a block device, not an image file"
	}
	return e.Path + " is not a block device (for an image file use --image)"
}

// WriteEntry reads the partition table at r.Path and writes r's generation
// as its default boot entry (see Install).
func (in *Installer) WriteEntry(ctx context.Context, r EntryRequest) (Target, Result, error) {
	t, err := ReadTarget(r.Path)
	if err != nil {
		return t, Result{}, err
	}
	if t.Device == r.Image {
		return t, Result{}, &KindError{Path: r.Path, Image: r.Image}
	}
	res, err := in.Install(ctx, t, r.Generation, r.Options)
	return t, res, err
}

type job struct {
	in  *Installer
	esp espFS
	dry bool
}

func (j *job) say(msg string) {
	j.in.Reporter.Report(report.Event{Step: ReportStep, Message: msg})
}

func (j *job) do(msg string, fn func() error) error {
	if j.dry {
		j.say("would " + msg)
		return nil
	}
	j.say(msg)
	return fn()
}

// Install writes generation g as the new default boot entry of t and keeps
// the last generation known to boot (an entry without a boot counter; see
// planEntries) as the fallback; on UEFI the new entry carries a counter of
// o.Tries, so that systemd-boot goes back to the fallback by itself when the
// new generation never completes a boot. The order makes every moment of it
// bootable: the other generations are removed first (for room), the new
// kernel and initrd are copied into a folder no entry names
// yet and read back, the boot loader is put in place, and only then is the
// new entry switched on by renaming its finished file to *.conf (for GRUB,
// grub.cfg is replaced by a rename). A run that stops half-way leaves the
// current entry booting; the next run clears what it left behind.
func (in *Installer) Install(ctx context.Context, t Target, g Generation, o Options) (Result, error) {
	if in.Runner == nil {
		in.Runner = MtoolsRunner{}
	}
	if in.Reporter == nil {
		in.Reporter = report.Discard
	}
	if err := g.Check(); err != nil {
		return Result{}, err
	}
	loader, err := FindLoader(o.LoaderDir, o.Firmware)
	if err != nil {
		return Result{}, err
	}
	var bios biosCode
	if o.Firmware == BIOS {
		if bios, err = t.prepareBIOS(loader); err != nil {
			return Result{}, err
		}
	}
	if t.Device {
		if err := checkPartitionsFree(in.SysRoot, t, o.ESPDir != ""); err != nil {
			return Result{}, err
		}
	}
	j := &job{in: in, dry: o.DryRun}
	if o.ESPDir != "" {
		j.esp = &folderESP{dir: o.ESPDir}
		j.say("the EFI system partition is mounted at " + o.ESPDir + ": writing through the mounted filesystem")
	} else {
		j.esp = &esp{ctx: ctx, run: in.Runner, path: t.Path, offset: t.ESP.StartBytes}
	}
	if in.wrapESP != nil {
		j.esp = in.wrapESP(j.esp)
	}
	e := j.esp
	if err := j.checkESP(t); err != nil {
		return Result{}, err
	}

	names, err := e.list(entriesDir)
	if err != nil {
		return Result{}, err
	}
	files := generations(names)
	pl := planEntries(files)
	read := func(f entryFile) (entry, error) {
		text, err := e.read(entriesDir + "/" + f.Name)
		if err != nil {
			return entry{}, err
		}
		return parseEntry(f.Number, f.Name, text)
	}
	res := Result{Generation: pl.Next}
	if pl.Newest == nil {
		j.say("no boot entry yet: this is generation 1")
	} else {
		c, err := read(*pl.Newest)
		if err != nil {
			return Result{}, err
		}
		j.say(fmt.Sprintf("current boot entry: generation %d (%s, %s): %s", c.Number, pl.Newest.Name, c.Linux, pl.Newest.state()))
		same, err := j.boots(c, g)
		if err != nil {
			return Result{}, err
		}
		if same {
			// A second run with the same build (a resumed apply, a
			// reconfigure that changed nothing the node boots) keeps the
			// generations as they are, counters included: a new one would
			// push the real previous generation out of the fallback.
			res = Result{Generation: c.Number, Unchanged: true, Entry: pl.Newest.Name, Tries: pl.Newest.Left}
			for _, f := range files[1:] {
				if f.Number != c.Number {
					res.Fallback = f.Number
					break
				}
			}
			j.say(fmt.Sprintf("generation %d already boots this kernel, initrd and command line: the entries stay as they are", c.Number))
			if pl.Newest.Bad() {
				j.say(fmt.Sprintf("generation %d failed to boot %d times: systemd-boot boots generation %d instead; this build will not boot the node", c.Number, pl.Newest.Done, res.Fallback))
			}
			return res, nil
		}
	}
	var keep *entry
	if pl.Keep != nil {
		k, err := read(*pl.Keep)
		if err != nil {
			return Result{}, err
		}
		keep = &k
		res.Fallback = k.Number
		j.say(fmt.Sprintf("generation %d stays as the fallback (%s): %s", k.Number, pl.Keep.Name, pl.Keep.state()))
	}
	n := res.Generation

	// Room first: every other generation goes (older ones, and newer ones
	// that never proved they boot), and so does whatever an interrupted run
	// left.
	for _, old := range pl.Remove {
		why := "older than the fallback"
		if keep != nil && old.Number > keep.Number {
			why = "no fallback: " + old.state()
		}
		if err := j.do(fmt.Sprintf("remove generation %d (%s; %s)", old.Number, old.Name, why), func() error {
			if err := e.remove(entriesDir+"/"+old.Name, false); err != nil {
				return err
			}
			if keep != nil && old.Number == keep.Number {
				return nil // the kept entry's files
			}
			return e.remove(genDir(old.Number), true)
		}); err != nil {
			return res, err
		}
	}
	if err := j.clearLeftovers(names, n); err != nil {
		return res, err
	}
	if err := j.checkRoom(g, len(files)); err != nil {
		return res, err
	}

	dir := genDir(n)
	next := entry{Number: n, Linux: dir + "/linux", Initrd: dir + "/initrd", Options: strings.TrimSpace(g.Cmdline)}
	if err := j.do(fmt.Sprintf("copy the kernel %s and the initrd %s to %s and read them back", g.Kernel, g.Initrd, dir), func() error {
		if err := espMkdirAll(e, dir); err != nil {
			return err
		}
		for _, f := range [][2]string{{g.Kernel, next.Linux}, {g.Initrd, next.Initrd}} {
			if err := j.putVerified(f[0], f[1]); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return res, err
	}

	work, err := os.MkdirTemp("", "homestaker-boot-")
	if err != nil {
		return res, fmt.Errorf("create a staging folder: %w", err)
	}
	defer os.RemoveAll(work)
	switch o.Firmware {
	case UEFI:
		if err := j.installSystemdBoot(loader, work); err != nil {
			return res, err
		}
	case BIOS:
		if err := j.installGRUB(t, loader, bios); err != nil {
			return res, err
		}
	}

	// The switch. systemd-boot: the new entry appears complete under its
	// .conf name and sorts first; with a fallback, it carries a boot
	// counter so that systemd-boot goes back to the fallback by itself when
	// the new generation never completes a boot. GRUB: grub.cfg is
	// replaced by a rename (GRUB falls back by itself when a file fails to
	// load, and nothing on a BIOS machine would take a counter off).
	if o.Firmware == UEFI && keep != nil {
		res.Tries = o.Tries
		if res.Tries == 0 {
			res.Tries = DefaultTries
		}
		res.Tries = max(res.Tries, 0)
	}
	res.Entry = countedName(n, res.Tries)
	msg := fmt.Sprintf("switch the default boot entry to generation %d (%s)", n, res.Entry)
	if res.Tries > 0 {
		msg += fmt.Sprintf(": systemd-boot starts it up to %d times until the node marks a boot complete (systemd-bless-boot), then boots generation %d", res.Tries, keep.Number)
	}
	if err := j.do(msg, func() error {
		return j.writeFile(work, entriesDir+"/"+res.Entry, entryConf(next))
	}); err != nil {
		return res, err
	}
	if o.Firmware == BIOS || j.hasGRUB() {
		menu := []entry{next}
		if keep != nil {
			menu = append(menu, *keep)
		}
		if err := j.do("switch GRUB's menu ("+grubCfg+") to generation "+fmt.Sprint(n), func() error {
			return j.writeFile(work, grubCfg, grubConfig(menu))
		}); err != nil {
			return res, err
		}
	}
	if res.Fallback != 0 {
		j.say(fmt.Sprintf("boot entry generation %d is the default, generation %d the fallback", n, res.Fallback))
	} else {
		j.say(fmt.Sprintf("boot entry generation %d is the default; the next install keeps it as the fallback", n))
	}
	return res, nil
}

// boots reports whether entry e starts g: the same command line, and a
// kernel and initrd on the partition with the SHA-256 of g's files.
func (j *job) boots(e entry, g Generation) (bool, error) {
	if e.Options != strings.TrimSpace(g.Cmdline) {
		return false, nil
	}
	for _, f := range [][2]string{{g.Kernel, e.Linux}, {g.Initrd, e.Initrd}} {
		want, err := fileSum(f[0])
		if err != nil {
			return false, err
		}
		got, err := j.esp.sum(f[1])
		if err != nil {
			return false, nil // unreadable: write a new generation
		}
		if got != want {
			return false, nil
		}
	}
	return true, nil
}

// checkESP makes sure the partition holds homestaker's FAT filesystem.
func (j *job) checkESP(t Target) error {
	if why := j.esp.check(); why != "" {
		return refused(t.Path, "partition %d (%s) holds no FAT filesystem labelled %s (%s): homestaker disk format creates it",
			t.ESP.Number, disk.BootPartLabel, disk.BootFilesystemLabel, why)
	}
	return nil
}

// clearLeftovers removes half-written files of an interrupted run: *.tmp
// entries and the folder of the generation about to be written.
func (j *job) clearLeftovers(names []string, n int) error {
	for _, name := range names {
		if strings.HasSuffix(name, tmpSuffix) {
			p := entriesDir + "/" + name
			if err := j.do("remove the unfinished "+p, func() error { return j.esp.remove(p, false) }); err != nil {
				return err
			}
		}
	}
	ok, err := espExists(j.esp, genDir(n))
	if err != nil || !ok {
		return err
	}
	return j.do("remove the unfinished "+genDir(n), func() error { return j.esp.remove(genDir(n), true) })
}

// checkRoom refuses a generation that does not fit next to the current one.
func (j *job) checkRoom(g Generation, entries int) error {
	free, err := j.esp.freeBytes()
	if err != nil {
		return err
	}
	var need uint64 = 1 << 20 // folders, entries, the loader
	for _, f := range []string{g.Kernel, g.Initrd} {
		st, err := os.Stat(f)
		if err != nil {
			return err
		}
		need += uint64(st.Size())
	}
	if j.dry && entries > 1 {
		j.say(fmt.Sprintf("%d bytes free before the old generations are removed; %d needed", free, need))
		return nil
	}
	if need > free {
		return fmt.Errorf("the new kernel and initrd need %d bytes, the EFI system partition has %d free next to the current generation: "+
			"make the system smaller, or the partition bigger (homestaker disk format, which erases the disk)", need, free)
	}
	return nil
}

// putVerified copies src to p and compares SHA-256 sums of both.
func (j *job) putVerified(src, p string) error {
	if err := j.esp.put(src, p); err != nil {
		return err
	}
	want, err := fileSum(src)
	if err != nil {
		return err
	}
	got, err := j.esp.sum(p)
	if err != nil {
		return err
	}
	if got != want {
		return fmt.Errorf("%s on the EFI system partition reads back with SHA-256 %s, %s has %s: the disk may be failing", p, got, src, want)
	}
	return nil
}

// writeFile writes content to p: first under p+".tmp", then renamed over p.
func (j *job) writeFile(work, p string, content []byte) error {
	local := filepath.Join(work, path.Base(p))
	if err := os.WriteFile(local, content, 0o600); err != nil {
		return err
	}
	if err := espMkdirAll(j.esp, path.Dir(p)); err != nil {
		return err
	}
	if err := j.esp.put(local, p+tmpSuffix); err != nil {
		return err
	}
	return j.esp.rename(p+tmpSuffix, path.Base(p))
}

// hasGRUB reports whether an earlier install put GRUB's menu on the partition.
func (j *job) hasGRUB() bool {
	ok, err := espExists(j.esp, grubCfg)
	return err == nil && ok
}

// installSystemdBoot puts systemd-boot where UEFI firmware finds it without
// an NVRAM entry, and loader.conf next to the entries.
func (j *job) installSystemdBoot(l Loader, work string) error {
	return j.do(fmt.Sprintf("install systemd-boot from %s as %s and %s, with %s", l.SystemdBoot, efiFallback, efiSystemd, loaderConf), func() error {
		for _, p := range []string{efiSystemd, efiFallback} {
			if err := espMkdirAll(j.esp, path.Dir(p)); err != nil {
				return err
			}
			if err := j.esp.put(l.SystemdBoot, p+tmpSuffix); err != nil {
				return err
			}
			if err := j.esp.rename(p+tmpSuffix, path.Base(p)); err != nil {
				return err
			}
		}
		return j.writeFile(work, loaderConf, []byte(loaderConfText))
	})
}

// installGRUB copies GRUB's modules to the partition and writes core.img
// and the boot code.
func (j *job) installGRUB(t Target, l Loader, c biosCode) error {
	err := j.do(fmt.Sprintf("copy GRUB's %d modules from %s to %s/i386-pc", len(l.GRUBModules), l.GRUBDir, grubDir), func() error {
		if err := espMkdirAll(j.esp, grubDir+"/i386-pc"); err != nil {
			return err
		}
		if err := j.esp.putAll(l.GRUBModules, grubDir+"/i386-pc"); err != nil {
			return fmt.Errorf("copy GRUB's modules: %w", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return j.do(fmt.Sprintf("write GRUB's core.img (%d bytes) to partition %d (%s) and its boot code to sector 0 of %s",
		len(c.core), t.BIOSBoot.Number, disk.BIOSPartLabel, t.Path), func() error {
		return writeBIOS(t.Path, c, t.BIOSBoot.StartBytes)
	})
}

// prepareBIOS checks that t can boot GRUB from a BIOS and patches its boot code.
func (t Target) prepareBIOS(l Loader) (biosCode, error) {
	if t.BIOSBoot.Number == 0 {
		return biosCode{}, refused(t.Path, "it has no BIOS boot partition labelled %s, which GRUB needs on a BIOS machine", disk.BIOSPartLabel)
	}
	if t.SectorSize != biosSector {
		return biosCode{}, refused(t.Path, "it has %d-byte sectors; a BIOS boots only disks with 512-byte sectors (use UEFI)", t.SectorSize)
	}
	if t.ESP.Number != 2 {
		return biosCode{}, refused(t.Path, "its EFI system partition is partition %d; GRUB's core.img looks for %s", t.ESP.Number, GRUBPrefix)
	}
	bootImg, err := os.ReadFile(l.GRUBBootImg)
	if err != nil {
		return biosCode{}, fmt.Errorf("--loader: %w", err)
	}
	coreImg, err := os.ReadFile(l.GRUBCoreImg)
	if err != nil {
		return biosCode{}, fmt.Errorf("--loader: %w", err)
	}
	c, err := prepareBIOS(bootImg, coreImg, t.BIOSBoot.StartBytes, t.BIOSBoot.Bytes)
	if err != nil {
		return biosCode{}, fmt.Errorf("--loader %s: %w", l.GRUBDir, err)
	}
	return c, nil
}

// Loader is where the boot loader's files are.
type Loader struct {
	// SystemdBoot is systemd-bootx64.efi (UEFI).
	SystemdBoot string
	// GRUBDir is GRUB's i386-pc folder with boot.img, core.img (made with
	// prefix GRUBPrefix) and the modules (BIOS).
	GRUBDir, GRUBBootImg, GRUBCoreImg string
	GRUBModules                       []string
}

// FindLoader looks in dir for the files of the firmware's boot loader:
// for UEFI systemd-bootx64.efi, in dir itself or where systemd's package
// keeps it (lib/systemd/boot/efi); for BIOS GRUB's i386-pc folder (dir
// itself, i386-pc as the build's boot-loader folder has it, or
// lib/grub/i386-pc) holding boot.img, core.img and the modules.
func FindLoader(dir string, fw Firmware) (Loader, error) {
	if dir == "" {
		return Loader{}, fmt.Errorf("--loader: no folder named; it holds the boot loader from the build")
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return Loader{}, fmt.Errorf("--loader %s: not a folder", dir)
	}
	first := func(cands ...string) string {
		for _, c := range cands {
			if st, err := os.Stat(c); err == nil && st.Mode().IsRegular() {
				return c
			}
		}
		return ""
	}
	switch fw {
	case UEFI:
		p := first(filepath.Join(dir, "systemd-bootx64.efi"), filepath.Join(dir, "lib/systemd/boot/efi/systemd-bootx64.efi"),
			filepath.Join(dir, "usr/lib/systemd/boot/efi/systemd-bootx64.efi"))
		if p == "" {
			return Loader{}, fmt.Errorf("--loader %s: no systemd-bootx64.efi in it or in lib/systemd/boot/efi", dir)
		}
		return Loader{SystemdBoot: p}, nil
	case BIOS:
		for _, d := range []string{dir, filepath.Join(dir, "i386-pc"), filepath.Join(dir, "lib/grub/i386-pc")} {
			l := Loader{GRUBDir: d, GRUBBootImg: filepath.Join(d, "boot.img"), GRUBCoreImg: filepath.Join(d, "core.img")}
			if first(l.GRUBBootImg) == "" || first(l.GRUBCoreImg) == "" {
				continue
			}
			for _, pat := range []string{"*.mod", "*.lst"} {
				m, _ := filepath.Glob(filepath.Join(d, pat))
				l.GRUBModules = append(l.GRUBModules, m...)
			}
			sort.Strings(l.GRUBModules)
			if len(l.GRUBModules) == 0 {
				return Loader{}, fmt.Errorf("--loader %s: GRUB's modules (*.mod) are missing next to boot.img", d)
			}
			return l, nil
		}
		return Loader{}, fmt.Errorf("--loader %s: no GRUB boot.img and core.img in it, in i386-pc or in lib/grub/i386-pc (core.img is made by grub-mkimage -O i386-pc -p '%s' biosdisk part_gpt fat)", dir, GRUBPrefix)
	}
	return Loader{}, fmt.Errorf("--firmware %q: want uefi or bios", fw)
}
