package nixinstall

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/homestaker/homestaker/disk"
	"golang.org/x/sys/unix"
)

// StoreNeedFactor is how many times the node's initrd the build needs in
// the Nix store: the unpacked system closure (about twice the zstd-packed
// squashfs), the squashfs, and the initrd that wraps it, plus the kernel
// and the tools that make them. An estimate from how the netboot image is
// made (squashfs of the closure, packed again into the initrd), not a
// measurement; the build's manifest gives the real initrd size afterwards.
const StoreNeedFactor = 4

// Store is where this machine's Nix store is (or would be, before Nix is
// installed), as the review reports it.
type Store struct {
	// Path is /nix, or the nearest folder above it that exists.
	Path string
	// MountPoint, FSType and Source are the mount holding Path.
	MountPoint, FSType, Source string
	// InRAM: the mount is a RAM filesystem (a rescue system's root).
	InRAM bool
	// FreeBytes is the space free on that mount.
	FreeBytes uint64
}

// ramFilesystems keep their files in memory.
var ramFilesystems = map[string]bool{"tmpfs": true, "ramfs": true, "rootfs": true, "overlay": true, "squashfs": true, "zram": true}

// FindStore finds the mount that holds (or would hold) /nix under root
// ("" for the running system).
func FindStore(root string) (Store, error) {
	s := Store{Path: "/nix"}
	for {
		if _, err := os.Stat(filepath.Join(root+"/", s.Path)); err == nil || s.Path == "/" {
			break
		}
		s.Path = filepath.Dir(s.Path)
	}
	f, err := os.Open(filepath.Join(root+"/", "proc/self/mountinfo"))
	if err != nil {
		return s, fmt.Errorf("read mounts: %w", err)
	}
	defer f.Close()
	mounts, err := disk.ParseMountInfo(f)
	if err != nil {
		return s, err
	}
	for _, m := range mounts { // the last mount over the longest prefix wins
		if (m.MountPoint == "/" || s.Path == m.MountPoint || strings.HasPrefix(s.Path, m.MountPoint+"/")) && len(m.MountPoint) >= len(s.MountPoint) {
			s.MountPoint, s.FSType, s.Source = m.MountPoint, m.FSType, m.Source
		}
	}
	s.InRAM = ramFilesystems[s.FSType]
	var st unix.Statfs_t
	if err := unix.Statfs(filepath.Join(root+"/", s.Path), &st); err == nil {
		s.FreeBytes = st.Bavail * uint64(st.Bsize)
	}
	return s, nil
}

// ReviewLine says where the build's store lives, how much space the build
// needs there (need, with its source) and, on a RAM-only system, how much
// RAM that takes, and that the data disk cannot hold the store then: it is
// formatted only after the build, unless install erases it first
// (--store-on-data-disk).
func (s Store) ReviewLine(need uint64, needSource string, ramBytes uint64) string {
	where := fmt.Sprintf("%s on %s (%s, mounted at %s)", s.Path, s.FSType, s.Source, s.MountPoint)
	if s.Path != "/nix" {
		where = fmt.Sprintf("/nix (not there yet; it goes on %s, %s mounted at %s)", s.FSType, s.Source, s.MountPoint)
	}
	line := fmt.Sprintf("%s; the build needs about %s there (%s), %s free", where, gibText(need), needSource, gibText(s.FreeBytes))
	if !s.InRAM {
		return line
	}
	line += "; this is RAM: the store"
	if ramBytes > 0 {
		line += fmt.Sprintf(" takes about %s of this machine's %s RAM", gibText(need), gibText(ramBytes))
		if need > ramBytes/2 {
			line += ", more than half of it"
		}
	} else {
		line += " takes that much RAM"
	}
	return line + ". The store stays in RAM for the build: the data disk is formatted only after the build, so it cannot hold /nix then " +
		"(install --store-on-data-disk erases it first and builds on it instead)"
}

func gibText(b uint64) string {
	return fmt.Sprintf("%.1f GiB", float64(b)/(1<<30))
}
