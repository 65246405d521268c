// Package media makes and writes what a node boots from when nothing runs on
// it yet: the Raspberry Pi 4 SD-card image, assembled with go-diskfs from a
// folder of parts the flake builds (or a test makes by hand). The image
// follows the Raspberry Pi boot documentation: an MBR whose first partition
// is FAT32 (type 0x0c) holding the firmware, the device trees, config.txt,
// cmdline.txt, the kernel and the initrd. The node runs from RAM; the card
// is read only while the firmware loads the kernel and the initrd.
//
// It also writes images to sticks and cards and reads them back to verify
// (flash*.go).
package media

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// Names in a parts folder that homestaker looks for.
const (
	PartKernel  = "Image"       // the arm64 kernel, uncompressed
	PartInitrd  = "initrd"      // the whole system (the Nix store as a squashfs inside)
	PartCmdline = "cmdline.txt" // the kernel command line, one line
	// ConfigTxt is written by homestaker (ConfigTxt), never taken from the parts.
	ConfigTxt   = "config.txt"
	overlaysDir = "overlays"
)

// RequiredParts are the files without which a Pi 4 boots nothing: the
// kernel, initrd and command line, the Pi 4's firmware (start4.elf with its
// fixup4.dat) and the Pi 4 B's device tree.
var RequiredParts = []string{PartKernel, PartInitrd, PartCmdline, "start4.elf", "fixup4.dat", "bcm2711-rpi-4-b.dtb"}

// maxFATFile is the largest file FAT32 holds (its sizes are 32-bit).
const maxFATFile = 1<<32 - 1

// maxCmdline is what the arm64 kernel takes (COMMAND_LINE_SIZE 2048,
// with its terminating NUL).
const maxCmdline = 2047

// Part is one file that goes onto the card.
type Part struct {
	// Name is its path on the card, with forward slashes ("overlays/x.dtbo").
	Name string
	// Source is the file it is copied from; empty for a file homestaker
	// writes itself (Data).
	Source string
	Data   []byte
	Size   int64
}

// Parts is a checked parts folder: every file that goes onto the card,
// sorted by name, config.txt included.
type Parts struct {
	Dir   string
	Files []Part
	// Cmdline is cmdline.txt's one line, as the kernel gets it.
	Cmdline string
}

// PartsError is a parts folder that cannot make a bootable card; it names
// the file and says what is wrong.
type PartsError struct {
	Dir, File, Problem string
}

func (e *PartsError) Error() string {
	if e.File == "" {
		return fmt.Sprintf("parts folder %s: %s", e.Dir, e.Problem)
	}
	return fmt.Sprintf("parts folder %s: %s: %s", e.Dir, e.File, e.Problem)
}

// ReadParts lists and checks the parts folder at dir. Links are followed
// (a Nix build output is a tree of links into the store). Top-level files
// are the kernel, initrd and cmdline.txt, the firmware (*.elf, *.dat,
// *.bin), device trees (*.dtb) and licence files; overlays/ holds device-tree
// overlays. Anything else, or a config.txt (homestaker writes its own), is
// refused with its name.
func ReadParts(dir string) (Parts, error) {
	p := Parts{Dir: dir}
	bad := func(file, format string, args ...any) error {
		return &PartsError{Dir: dir, File: file, Problem: fmt.Sprintf(format, args...)}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return p, fmt.Errorf("read the parts folder: %w", err)
	}
	for _, e := range entries {
		name := e.Name()
		full := filepath.Join(dir, name)
		st, err := os.Stat(full) // follows links
		if err != nil {
			return p, bad(name, "%v", err)
		}
		if st.IsDir() {
			if name != overlaysDir {
				return p, bad(name, "a folder other than overlays/; the card holds the firmware, device trees and overlays/ only")
			}
			files, err := readOverlays(dir, full)
			if err != nil {
				return p, err
			}
			p.Files = append(p.Files, files...)
			continue
		}
		if !st.Mode().IsRegular() {
			return p, bad(name, "not a regular file")
		}
		if name == ConfigTxt {
			return p, bad(name, "homestaker writes config.txt itself; remove it from the parts")
		}
		if !topLevelPart(name) {
			return p, bad(name, "not a part of a Raspberry Pi boot partition (expected Image, initrd, cmdline.txt, *.elf, *.dat, *.bin, *.dtb, LICENCE*, COPYING* and overlays/)")
		}
		if err := checkFATName(name); err != nil {
			return p, bad(name, "%v", err)
		}
		if st.Size() > maxFATFile {
			return p, bad(name, "%d bytes is more than FAT32 holds in one file (4 GiB)", st.Size())
		}
		p.Files = append(p.Files, Part{Name: name, Source: full, Size: st.Size()})
	}
	for _, need := range RequiredParts {
		if !slices.ContainsFunc(p.Files, func(f Part) bool { return f.Name == need }) {
			return p, bad(need, "missing; a parts folder holds %s", strings.Join(RequiredParts, ", "))
		}
	}
	if err := checkKernel(filepath.Join(dir, PartKernel)); err != nil {
		return p, bad(PartKernel, "%v", err)
	}
	if err := checkInitrd(filepath.Join(dir, PartInitrd)); err != nil {
		return p, bad(PartInitrd, "%v", err)
	}
	cmdline, err := readCmdline(filepath.Join(dir, PartCmdline))
	if err != nil {
		return p, bad(PartCmdline, "%v", err)
	}
	p.Cmdline = cmdline
	cfg := ConfigTxtFor()
	p.Files = append(p.Files, Part{Name: ConfigTxt, Data: cfg, Size: int64(len(cfg))})
	slices.SortFunc(p.Files, func(a, b Part) int { return strings.Compare(a.Name, b.Name) })
	return p, nil
}

func readOverlays(dir, full string) ([]Part, error) {
	entries, err := os.ReadDir(full)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", full, err)
	}
	var out []Part
	for _, e := range entries {
		name := path.Join(overlaysDir, e.Name())
		st, err := os.Stat(filepath.Join(full, e.Name()))
		if err != nil {
			return nil, &PartsError{Dir: dir, File: name, Problem: err.Error()}
		}
		if !st.Mode().IsRegular() {
			return nil, &PartsError{Dir: dir, File: name, Problem: "overlays/ holds files only"}
		}
		if err := checkFATName(e.Name()); err != nil {
			return nil, &PartsError{Dir: dir, File: name, Problem: err.Error()}
		}
		if st.Size() > maxFATFile {
			return nil, &PartsError{Dir: dir, File: name, Problem: "larger than FAT32 holds in one file (4 GiB)"}
		}
		out = append(out, Part{Name: name, Source: filepath.Join(full, e.Name()), Size: st.Size()})
	}
	return out, nil
}

func topLevelPart(name string) bool {
	switch name {
	case PartKernel, PartInitrd, PartCmdline:
		return true
	}
	for _, ext := range []string{".elf", ".dat", ".bin", ".dtb"} {
		if strings.HasSuffix(name, ext) {
			return true
		}
	}
	return strings.HasPrefix(name, "LICENCE") || strings.HasPrefix(name, "COPYING")
}

// checkFATName refuses names a FAT long file name cannot hold.
func checkFATName(name string) error {
	if len(name) > 255 {
		return errors.New("a name longer than the 255 characters FAT holds")
	}
	if name == "." || name == ".." || strings.HasSuffix(name, ".") || strings.HasSuffix(name, " ") {
		return errors.New("a name FAT cannot hold (it may not end in a dot or a space)")
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f || strings.ContainsRune(`"*/:<>?\|`, r) {
			return fmt.Errorf("the character %q cannot be in a FAT file name", r)
		}
		if r > 0x7e {
			return fmt.Errorf("the character %q is not ASCII; the Pi firmware reads ASCII names", r)
		}
	}
	return nil
}

// checkKernel wants an uncompressed arm64 Image ("ARM\x64" at 0x38,
// Documentation/arch/arm64/booting.rst): the Pi 4 firmware loads it as it is.
func checkKernel(file string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	hdr := make([]byte, 64)
	if _, err := io.ReadFull(f, hdr); err != nil {
		return fmt.Errorf("too short for an arm64 kernel Image (%v)", err)
	}
	if string(hdr[0x38:0x3c]) != "ARM\x64" {
		if hdr[0] == 0x1f && hdr[1] == 0x8b {
			return errors.New("a gzip-compressed kernel; give the uncompressed arm64 Image")
		}
		return errors.New("not an arm64 kernel Image (no \"ARM\\x64\" magic at 0x38)")
	}
	if size := binary.LittleEndian.Uint64(hdr[0x10:]); size == 0 {
		return errors.New("an arm64 Image whose header gives no image size (a kernel older than 3.17?)")
	}
	return nil
}

// checkInitrd wants a compressed or plain cpio archive, as Linux unpacks it.
func checkInitrd(file string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	magic := make([]byte, 6)
	n, _ := io.ReadFull(f, magic)
	switch {
	case n == 0:
		return errors.New("empty")
	case n >= 4 && string(magic[:4]) == "\x28\xb5\x2f\xfd": // zstd
	case n >= 2 && magic[0] == 0x1f && magic[1] == 0x8b: // gzip
	case n >= 6 && (string(magic) == "070701" || string(magic) == "070702"): // newc cpio
	case n >= 6 && string(magic) == "\xfd7zXZ\x00": // xz
	default:
		return errors.New("not an initramfs (neither a zstd, gzip or xz compressed archive nor a newc cpio archive)")
	}
	return nil
}

func readCmdline(file string) (string, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	line := strings.TrimSuffix(string(data), "\n")
	switch {
	case strings.TrimSpace(line) == "":
		return "", errors.New("empty; it holds the kernel command line with NixOS' init=")
	case strings.ContainsAny(line, "\n\r\x00"):
		return "", errors.New("more than one line; the firmware passes only one line to the kernel")
	case len(line) > maxCmdline:
		return "", fmt.Errorf("%d bytes; the arm64 kernel takes at most %d", len(line), maxCmdline)
	case !slices.ContainsFunc(strings.Fields(line), func(f string) bool { return strings.HasPrefix(f, "init=") }):
		return "", errors.New("no init=; NixOS' stage 1 needs init=<system>/init to start the node")
	}
	return line, nil
}

// Names lists the files that go onto the card.
func (p Parts) Names() []string {
	out := make([]string, len(p.Files))
	for i, f := range p.Files {
		out[i] = f.Name
	}
	return out
}
