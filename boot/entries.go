package boot

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Places on the EFI system partition. systemd-boot reads /loader; UEFI
// firmware starts /EFI/BOOT/BOOTX64.EFI without any NVRAM entry (so a reset
// NVRAM or a replaced mainboard still boots); GRUB reads /grub.
const (
	loaderConf    = "/loader/loader.conf"
	entriesDir    = "/loader/entries"
	generationDir = "/homestaker"
	grubDir       = "/grub"
	grubCfg       = "/grub/grub.cfg"
	efiFallback   = "/EFI/BOOT/BOOTX64.EFI"
	efiSystemd    = "/EFI/systemd/systemd-bootx64.efi"
	// tmpSuffix marks a file still being written: systemd-boot reads only
	// entries ending in .conf, so a half-written entry is never offered.
	tmpSuffix = ".tmp"
)

// entryName is the systemd-boot entry file of generation n with no boot
// counter. The number is zero-padded so names sort like numbers.
func entryName(n int) string { return fmt.Sprintf("homestaker-%04d.conf", n) }

// DefaultTries is how many times systemd-boot starts a new generation that
// never reaches boot-complete.target before it boots the fallback instead.
const DefaultTries = 3

// countedName is generation n's entry with a boot counter of tries, as the
// Boot Loader Specification names it: homestaker-0002+3.conf. systemd-boot
// renames it before each start, taking one try left and adding one done
// (+2-1, +1-2, +0-3); an entry with none left (+0-N) is "bad" and sorts
// after every other entry, so the default pattern of loader.conf then picks
// the fallback. systemd-bless-boot.service on the node renames it to
// entryName(n) once the boot is complete.
func countedName(n, tries int) string {
	if tries <= 0 {
		return entryName(n)
	}
	return fmt.Sprintf("homestaker-%04d+%d.conf", n, tries)
}

// entryPattern matches homestaker's entries with or without a boot counter
// (+LEFT or +LEFT-DONE before .conf).
var entryPattern = regexp.MustCompile(`^homestaker-(\d{4,})(?:\+(\d+)(?:-(\d+))?)?\.conf$`)

// entryFile is one of homestaker's entry files and its boot counter.
type entryFile struct {
	Number int
	// Name is the file name in /loader/entries.
	Name string
	// Counted: the name carries a boot counter; Left tries remain, Done
	// were made (by systemd-boot, one per start).
	Counted    bool
	Left, Done int
}

// Good reports an entry without a counter: one that booted to
// boot-complete.target (systemd-bless-boot removed its counter), or one
// written without a counter (the first generation, or a BIOS machine's).
func (f entryFile) Good() bool { return !f.Counted }

// Bad reports an entry whose tries ran out: systemd-boot sorts it last and
// boots the fallback.
func (f entryFile) Bad() bool { return f.Counted && f.Left == 0 }

// state describes the entry's counter for the install's report.
func (f entryFile) state() string {
	switch {
	case f.Good():
		return "booted, or written without a boot counter"
	case f.Bad():
		return fmt.Sprintf("failed to boot: systemd-boot tried it %d times and boots the fallback instead", f.Done)
	case f.Done == 0:
		return fmt.Sprintf("boot counter on, %d tries left, not yet started by systemd-boot", f.Left)
	default:
		return fmt.Sprintf("boot counter on, %d tries left after %d starts that never completed", f.Left, f.Done)
	}
}

// parseEntryFile reads an entry file name; ok is false for files that are
// not homestaker's.
func parseEntryFile(name string) (entryFile, bool) {
	m := entryPattern.FindStringSubmatch(strings.ToLower(name))
	if m == nil {
		return entryFile{}, false
	}
	f := entryFile{Name: name}
	var err error
	if f.Number, err = strconv.Atoi(m[1]); err != nil {
		return entryFile{}, false
	}
	if m[2] != "" {
		f.Counted = true
		if f.Left, err = strconv.Atoi(m[2]); err != nil {
			return entryFile{}, false
		}
		if m[3] != "" {
			if f.Done, err = strconv.Atoi(m[3]); err != nil {
				return entryFile{}, false
			}
		}
	}
	return f, true
}

// genDir is generation n's folder, holding its kernel and initrd.
func genDir(n int) string { return fmt.Sprintf("%s/%04d", generationDir, n) }

// entry is one generation as its systemd-boot entry describes it.
type entry struct {
	Number  int
	Linux   string
	Initrd  string
	Options string
}

// generations reads homestaker's entries in names (a listing of
// /loader/entries), newest first; of two files of one generation (a run
// that stopped between writing and switching) the one without a counter
// comes first. Files that are not homestaker's are left out (and alone).
func generations(names []string) []entryFile {
	var files []entryFile
	for _, n := range names {
		if f, ok := parseEntryFile(n); ok {
			files = append(files, f)
		}
	}
	sort.SliceStable(files, func(i, j int) bool {
		if files[i].Number != files[j].Number {
			return files[i].Number > files[j].Number
		}
		return files[i].Good() && !files[j].Good()
	})
	return files
}

// plan is what an install does with the entries already there.
type entryPlan struct {
	// Newest is the newest generation's entry (nil: none yet): when it
	// already boots the build, nothing changes.
	Newest *entryFile
	// Keep is the entry that stays as the fallback: the newest good one
	// (no counter). Without a good one, the newest that still has tries,
	// and without that the newest. nil: none yet.
	Keep *entryFile
	// Remove are the other entries: older generations, and newer ones that
	// never proved they boot (still counting, or bad).
	Remove []entryFile
	// Next is the new generation's number: one above every number on the
	// partition, so it sorts first.
	Next int
}

// planEntries decides which entry stays as the fallback of a new
// generation. The fallback is what the node boots when the new generation
// fails, so it must be one that booted: an entry still counting (written by
// an earlier update that the node never booted from the disk, or whose
// boots never completed) or one marked bad is no fallback, and goes.
func planEntries(files []entryFile) entryPlan {
	var p entryPlan
	if len(files) == 0 {
		p.Next = 1
		return p
	}
	p.Newest = &files[0]
	p.Next = files[0].Number + 1
	keep := -1
	for _, pick := range []func(entryFile) bool{entryFile.Good, func(f entryFile) bool { return !f.Bad() }, func(entryFile) bool { return true }} {
		for i, f := range files {
			if pick(f) {
				keep = i
				break
			}
		}
		if keep >= 0 {
			break
		}
	}
	p.Keep = &files[keep]
	for i, f := range files {
		if i != keep {
			p.Remove = append(p.Remove, f)
		}
	}
	return p
}

// entryConf renders generation e as a systemd-boot (Boot Loader
// Specification type 1) entry. sort-key and version make systemd-boot list
// the newest generation first, which loader.conf's default then picks.
func entryConf(e entry) []byte {
	var b strings.Builder
	b.WriteString("# Written by homestaker. The newest homestaker entry boots by default;\n")
	b.WriteString("# the one before it stays as the fallback.\n")
	b.WriteString("# A +LEFT-DONE counter in the file name is systemd-boot's boot counting: the node\n")
	b.WriteString("# removes it once a boot completes; with none left the fallback boots.\n")
	fmt.Fprintf(&b, "title homestaker node (generation %d)\n", e.Number)
	b.WriteString("sort-key homestaker\n")
	fmt.Fprintf(&b, "version %d\n", e.Number)
	fmt.Fprintf(&b, "linux %s\n", e.Linux)
	fmt.Fprintf(&b, "initrd %s\n", e.Initrd)
	fmt.Fprintf(&b, "options %s\n", e.Options)
	return []byte(b.String())
}

// parseEntry reads the fields homestaker writes back from an entry file.
func parseEntry(n int, name string, text []byte) (entry, error) {
	e := entry{Number: n}
	for _, line := range strings.Split(string(text), "\n") {
		key, val, _ := strings.Cut(strings.TrimSpace(line), " ")
		val = strings.TrimSpace(val)
		switch key {
		case "linux":
			e.Linux = val
		case "initrd":
			e.Initrd = val
		case "options":
			e.Options = val
		}
	}
	if e.Linux == "" || e.Initrd == "" {
		return e, fmt.Errorf("%s/%s has no linux or initrd line", entriesDir, name)
	}
	return e, nil
}

// loaderConfText is systemd-boot's loader.conf: the menu shows for 3
// seconds (so someone at the console can pick the fallback), then the
// first homestaker entry in systemd-boot's order boots: the newest, unless
// its boot counter ran out (+0-N), which sorts it after the fallback. It
// never changes between generations.
const loaderConfText = `# Written by homestaker.
timeout 3
default homestaker-*
editor no
console-mode keep
`

// grubConfig renders GRUB's menu from the same entries, newest first: GRUB
// boots the first and falls back to the next when the first fails to load.
// Output goes to the screen and the first serial port.
func grubConfig(entries []entry) []byte {
	var b strings.Builder
	b.WriteString("# Written by homestaker from /loader/entries: the newest generation first,\n")
	b.WriteString("# the one before it as the fallback.\n")
	b.WriteString("set timeout=3\nset default=0\nset fallback=1\n")
	b.WriteString("serial --unit=0 --speed=115200\nterminal_input console serial\nterminal_output console serial\n")
	for i, e := range entries {
		title := fmt.Sprintf("homestaker node (generation %d)", e.Number)
		if i > 0 {
			title += " (fallback)"
		}
		fmt.Fprintf(&b, "menuentry %s {\n", grubQuote(title))
		fmt.Fprintf(&b, "\tlinux %s", grubQuote(e.Linux))
		for _, w := range strings.Fields(e.Options) {
			b.WriteString(" " + grubQuote(w))
		}
		fmt.Fprintf(&b, "\n\tinitrd %s\n}\n", grubQuote(e.Initrd))
	}
	return []byte(b.String())
}

// grubQuote single-quotes a word for GRUB's shell-like parser, in which
// nothing inside single quotes is special except the quote itself.
func grubQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
