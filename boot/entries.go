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

// entryName is the systemd-boot entry file of generation n. The number is
// zero-padded so names sort like numbers.
func entryName(n int) string { return fmt.Sprintf("homestaker-%04d.conf", n) }

var entryPattern = regexp.MustCompile(`^homestaker-(\d{4,})\.conf$`)

// genDir is generation n's folder, holding its kernel and initrd.
func genDir(n int) string { return fmt.Sprintf("%s/%04d", generationDir, n) }

// entry is one generation as its systemd-boot entry describes it.
type entry struct {
	Number  int
	Linux   string
	Initrd  string
	Options string
}

// generations reads the numbers of the entries in names (a listing of
// /loader/entries), newest first. Files that are not homestaker's are left
// out (and alone).
func generations(names []string) []int {
	var nums []int
	for _, n := range names {
		if m := entryPattern.FindStringSubmatch(strings.ToLower(n)); m != nil {
			if v, err := strconv.Atoi(m[1]); err == nil {
				nums = append(nums, v)
			}
		}
	}
	sort.Sort(sort.Reverse(sort.IntSlice(nums)))
	return nums
}

// entryConf renders generation e as a systemd-boot (Boot Loader
// Specification type 1) entry. sort-key and version make systemd-boot list
// the newest generation first, which loader.conf's default then picks.
func entryConf(e entry) []byte {
	var b strings.Builder
	b.WriteString("# Written by homestaker. The newest homestaker entry boots by default;\n")
	b.WriteString("# the one before it stays as the fallback.\n")
	fmt.Fprintf(&b, "title homestaker node (generation %d)\n", e.Number)
	b.WriteString("sort-key homestaker\n")
	fmt.Fprintf(&b, "version %d\n", e.Number)
	fmt.Fprintf(&b, "linux %s\n", e.Linux)
	fmt.Fprintf(&b, "initrd %s\n", e.Initrd)
	fmt.Fprintf(&b, "options %s\n", e.Options)
	return []byte(b.String())
}

// parseEntry reads the fields homestaker writes back from an entry file.
func parseEntry(n int, text []byte) (entry, error) {
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
		return e, fmt.Errorf("%s/%s has no linux or initrd line", entriesDir, entryName(n))
	}
	return e, nil
}

// loaderConfText is systemd-boot's loader.conf: the menu shows for 3
// seconds (so someone at the console can pick the fallback), then the
// newest homestaker entry boots. It never changes between generations.
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
