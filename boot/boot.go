// Package boot owns how the node is booted again after it stops: the boot
// entry on the data disk's EFI system partition (systemd-boot on UEFI
// machines, GRUB from the BIOS boot partition on BIOS machines), written in
// generations so an update switches atomically and keeps the previous
// generation as a fallback; and kexec, the other way into the node
// (preflight checks, the network carry-over archive, load and jump, in
// kexec*.go).
//
// The EFI system partition is a FAT filesystem; homestaker reads and writes
// it with mtools at its byte offset on the whole disk or image, so neither a
// mount, nor the kernel's vfat driver, nor partition devices are needed.
package boot

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/homestaker/homestaker/plan"
)

// Firmware is how the machine starts its boot loader.
type Firmware = plan.Firmware

// Firmware kinds.
const (
	UEFI = plan.FirmwareUEFI
	BIOS = plan.FirmwareBIOS
)

// RunningFirmware says how the running machine was booted: UEFI when the
// kernel shows /sys/firmware/efi under root, BIOS otherwise.
func RunningFirmware(root string) Firmware {
	if root == "" {
		root = "/"
	}
	if st, err := os.Stat(filepath.Join(root, "sys/firmware/efi")); err == nil && st.IsDir() {
		return UEFI
	}
	return BIOS
}

// Generation is what one boot entry starts: a kernel, an initrd and the
// kernel command line (for a NixOS node: "init=<toplevel>/init …").
type Generation struct {
	Kernel  string
	Initrd  string
	Cmdline string
}

// Check refuses a generation whose files are missing or empty, or whose
// command line cannot be written into a boot loader configuration.
func (g Generation) Check() error {
	for _, f := range []struct{ flag, path string }{{"--kernel", g.Kernel}, {"--initrd", g.Initrd}} {
		if f.path == "" {
			return fmt.Errorf("%s: no file named", f.flag)
		}
		st, err := os.Stat(f.path)
		if err != nil {
			return fmt.Errorf("%s: %w", f.flag, err)
		}
		if !st.Mode().IsRegular() || st.Size() == 0 {
			return fmt.Errorf("%s %s: not a regular, non-empty file", f.flag, f.path)
		}
		if st.Size() >= 4<<30 {
			return fmt.Errorf("%s %s: %d bytes; FAT holds files below 4 GiB", f.flag, f.path, st.Size())
		}
	}
	return checkCmdline(g.Cmdline)
}

// checkCmdline accepts printable ASCII words: systemd-boot takes the line as
// it is, GRUB gets each word single-quoted, and both need it on one line.
func checkCmdline(s string) error {
	if strings.TrimSpace(s) == "" {
		return errors.New("--cmdline: empty; the node needs at least init=<toplevel>/init")
	}
	if len(s) > 4096 {
		return fmt.Errorf("--cmdline: %d bytes, more than the 4096 a kernel command line may have", len(s))
	}
	for _, r := range s {
		if r < 0x20 || r > 0x7e {
			return fmt.Errorf("--cmdline: character %q is not printable ASCII", r)
		}
	}
	return nil
}
