package boot

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/homestaker/homestaker/disk"
	"golang.org/x/sys/unix"
)

// folderESP is the FAT filesystem of an EFI system partition reached
// through the folder where the running system has it mounted (on the node:
// /boot, disko's mount of disk.BootPartLabel). It is the way to write the
// partition while it is mounted: the kernel's vfat driver does the writing,
// so nothing bypasses its caches. The order of an install is the same as
// with mtools (new files first, then the entry switched by a rename); every
// file written is fsynced, and so is the folder of every file created,
// renamed or removed, so a power cut keeps what the install said it did.
type folderESP struct {
	dir string
}

// local is partition path p ("/loader/entries") below the mount.
func (e *folderESP) local(p string) string {
	return filepath.Join(e.dir, filepath.FromSlash(path.Clean("/"+p)))
}

func (e *folderESP) check() string {
	st, err := os.Stat(e.dir)
	if err != nil {
		return err.Error()
	}
	if !st.IsDir() {
		return e.dir + " is not a folder"
	}
	return ""
}

func (e *folderESP) list(dir string) ([]string, error) {
	ents, err := os.ReadDir(e.local(dir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list %s on the EFI system partition: %w", dir, err)
	}
	names := make([]string, 0, len(ents))
	for _, d := range ents {
		names = append(names, d.Name())
	}
	return names, nil
}

// mkdir creates folder p and fsyncs its parent.
func (e *folderESP) mkdir(p string) error {
	if err := os.Mkdir(e.local(p), 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("create %s on the EFI system partition: %w", p, err)
	}
	return syncDir(e.local(path.Dir(p)))
}

// put copies src to p, replacing p, and fsyncs the file and its folder.
func (e *folderESP) put(src, p string) error {
	if err := copyFileSync(src, e.local(p)); err != nil {
		return fmt.Errorf("copy %s to %s on the EFI system partition: %w", src, p, err)
	}
	return syncDir(e.local(path.Dir(p)))
}

func (e *folderESP) putAll(srcs []string, dir string) error {
	for _, src := range srcs {
		if err := copyFileSync(src, e.local(path.Join(dir, filepath.Base(src)))); err != nil {
			return fmt.Errorf("copy %s to %s on the EFI system partition: %w", src, dir, err)
		}
	}
	return syncDir(e.local(dir))
}

// rename is rename(2) within one folder, replacing a file of that name
// (vfat does it in one directory update), then the folder fsynced.
func (e *folderESP) rename(p, newName string) error {
	dir := path.Dir(p)
	if err := os.Rename(e.local(p), e.local(path.Join(dir, newName))); err != nil {
		return fmt.Errorf("rename %s to %s on the EFI system partition: %w", p, newName, err)
	}
	return syncDir(e.local(dir))
}

func (e *folderESP) remove(p string, tree bool) error {
	var err error
	if tree {
		err = os.RemoveAll(e.local(p))
	} else {
		err = os.Remove(e.local(p))
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove %s from the EFI system partition: %w", p, err)
	}
	return syncDir(e.local(path.Dir(p)))
}

func (e *folderESP) read(p string) ([]byte, error) {
	b, err := os.ReadFile(e.local(p))
	if err != nil {
		return nil, fmt.Errorf("read %s on the EFI system partition: %w", p, err)
	}
	return b, nil
}

func (e *folderESP) freeBytes() (uint64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(e.dir, &st); err != nil {
		return 0, fmt.Errorf("free space of %s: %w", e.dir, err)
	}
	return st.Bavail * uint64(st.Bsize), nil
}

func (e *folderESP) sum(p string) (string, error) {
	s, err := fileSum(e.local(p))
	if err != nil {
		return "", fmt.Errorf("read back %s from the EFI system partition: %w", p, err)
	}
	return s, nil
}

// copyFileSync copies src to dst (created or truncated) and fsyncs it.
func copyFileSync(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// syncDir fsyncs folder dir, so that the entries created, renamed or
// removed in it are on the disk.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("flush the folder %s: %w", dir, err)
	}
	return nil
}

// MountedESP finds where the running system (its /proc/self/mountinfo and
// /sys/block under sysRoot, "" for this machine) has t's EFI system
// partition mounted: the kernel's partition t.ESP.Number of t's disk, by
// its device number or its /dev name. It returns the mount's folder under
// sysRoot, or "" when the partition is not mounted (or t is an image file,
// or the kernel shows no such partition: the raw path then says why). A
// mount that is not the whole vfat filesystem (another filesystem type, a
// bind mount of a subfolder) is an error: homestaker writes neither through
// it nor past it.
func MountedESP(sysRoot string, t Target) (string, error) {
	if t.ESP.Number == 0 {
		return "", nil
	}
	real, err := filepath.EvalSymlinks(t.Path)
	if err != nil {
		return "", fmt.Errorf("resolve %s: %w", t.Path, err)
	}
	name := filepath.Base(real)
	part, err := partitionDevice(sysRoot, name, t.ESP.Number)
	if err != nil {
		return "", nil
	}
	majmin := readTrim(filepath.Join(sysRoot+"/", "sys/block", name, part, "dev"))
	mounts, err := disk.ReadMounts(disk.System{Root: sysRoot})
	if err != nil {
		return "", err
	}
	for _, m := range mounts {
		if !(majmin != "" && m.MajorMinor == majmin || m.Source == "/dev/"+part) {
			continue
		}
		if m.FSType != "vfat" || m.Root != "/" {
			return "", refused(t.Path, "its EFI system partition %s is mounted at %s as %s (folder %s), not as the whole vfat filesystem: unmount it, or mount it at /boot as the node does",
				part, m.MountPoint, m.FSType, m.Root)
		}
		return filepath.Join(sysRoot+"/", m.MountPoint), nil
	}
	return "", nil
}

func readTrim(p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
