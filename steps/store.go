package steps

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/homestaker/homestaker/disk"
	"github.com/homestaker/homestaker/nixbuild"
	"golang.org/x/sys/unix"
)

// StoreMountDir is where the store step mounts the data partition on the
// installing system: a private folder, not a place the user works in.
const StoreMountDir = "/run/homestaker/data"

// StoreStep puts the build's Nix store on the freshly formatted data disk,
// to spare the RAM of a rescue system whose root lives in RAM
// (install --store-on-data-disk): it mounts the data partition at
// StoreMountDir, creates disk.BuildStoreDir on it and bind-mounts that
// folder at /nix. It runs after the disk step and before the evaluation.
//
// It refuses, with nothing mounted or created, when /nix already holds
// anything (a store in RAM the build would otherwise use) or is a mount of
// something else, and when the partition is not the data partition
// homestaker formatted (no SSH host key on it). The kexec step undoes the
// mounts right before it loads the node (Target.Store).
type StoreStep struct {
	// Partition is the data partition's device ("": the data partition of
	// the plan's data disk, by the layout's partition number).
	Partition string
	// MountDir is where the partition is mounted ("": StoreMountDir).
	MountDir string
	// NixDir is where the store is bind-mounted ("": /nix). Tests give a
	// temporary folder: the host's /nix is never touched by a test.
	NixDir string
}

// StoreMount is the store on the data disk as the store step mounted it.
type StoreMount struct {
	// Partition is the data partition's device, Dev its device number
	// ("259:3") as /proc/self/mountinfo shows it.
	Partition, Dev string
	FSType         string
	// MountDir is where the partition is mounted, NixDir where its
	// BuildStoreDir folder is bind-mounted.
	MountDir, NixDir string
}

// Folder is the store's folder on the mounted partition.
func (m StoreMount) Folder() string { return filepath.Join(m.MountDir, disk.BuildStoreDir) }

func (StoreStep) Name() string { return "store" }

func (st StoreStep) Title(t *Target) string {
	return "Put the build's Nix store on the data disk"
}

func (st StoreStep) Describe(t *Target) []string {
	m, err := st.resolve(t, false)
	if err != nil {
		return []string{err.Error()}
	}
	lines := []string{fmt.Sprintf("mount the new data partition %s at %s, create %s on it and bind-mount it at %s: the build's store lives on the data disk, not in RAM",
		m.Partition, m.MountDir, disk.BuildStoreDir, m.NixDir)}
	if err := st.Preflight(t); err != nil {
		lines = append(lines, "refused now: "+err.Error())
	}
	return append(lines, fmt.Sprintf("the node removes the folder at its first boot (it shows there as %s/%s); the kexec step unmounts both right before it loads the node",
		disk.DataMountPoint, disk.BuildStoreDir))
}

// resolve names the partition, the folders and the filesystem; withDev
// also reads the partition's device number (it exists once the disk step
// has made it).
func (st StoreStep) resolve(t *Target, withDev bool) (StoreMount, error) {
	m := StoreMount{Partition: st.Partition, MountDir: st.MountDir, NixDir: st.NixDir, FSType: string(t.Plan.Disk.Filesystem)}
	if m.MountDir == "" {
		m.MountDir = StoreMountDir
	}
	if m.NixDir == "" {
		m.NixDir = "/nix"
	}
	if m.FSType == "" {
		m.FSType = "ext4"
	}
	if m.Partition == "" {
		if t.Disk == nil {
			if t.DiskErr != nil {
				return m, Refuse(fmt.Errorf("no data partition to hold the store: %v", t.DiskErr))
			}
			return m, Refuse(errors.New("no data partition to hold the store: the data disk was not looked for"))
		}
		layout, err := disk.New(t.Plan)
		if err != nil {
			return m, &Error{Kind: KindInvalid, Err: err}
		}
		m.Partition = disk.PartitionDevice(t.Disk.Name, layout.DataNumber())
	}
	if !withDev {
		return m, nil
	}
	if t.System.Root != "" {
		return m, Refuse(fmt.Errorf("the store step mounts on the running system, not on the recorded one at %s", t.System.Root))
	}
	var sb unix.Stat_t
	if err := unix.Stat(m.Partition, &sb); err != nil {
		return m, fmt.Errorf("the data partition %s: %w", m.Partition, err)
	}
	if sb.Mode&unix.S_IFMT != unix.S_IFBLK {
		return m, Refuse(fmt.Errorf("the data partition %s is not a block device", m.Partition))
	}
	m.Dev = fmt.Sprintf("%d:%d", unix.Major(sb.Rdev), unix.Minor(sb.Rdev))
	return m, nil
}

// nixDirProblem says why the store cannot be bind-mounted at dir: it is
// a mount (other than the store step's own, mine), or holds anything.
// at is dir as this process reads it (below a recorded system's root).
func nixDirProblem(dir, at string, mounts []disk.Mount, mine func(disk.Mount) bool) error {
	if mt, ok := mountAt(mounts, dir); ok {
		if mine != nil && mine(mt) {
			return nil
		}
		return Refuse(fmt.Errorf("%s is already a mount (%s %s, folder %s): homestaker does not mount the build's store over it; nothing was mounted",
			dir, mt.FSType, mt.Source, mt.Root))
	}
	entries, err := os.ReadDir(at)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return err
	case len(entries) > 0:
		var names []string
		for i, e := range entries {
			if i == 3 {
				names = append(names, "…")
				break
			}
			names = append(names, e.Name())
		}
		return Refuse(fmt.Errorf("%s already holds a Nix store or other files (%s): the store cannot move to the data disk without hiding them. "+
			"Build with the store where it is (install without --store-on-data-disk), or move %s away first; nothing was mounted",
			dir, strings.Join(names, ", "), dir))
	}
	return nil
}

// mountAt is the last (topmost) mount at dir.
func mountAt(mounts []disk.Mount, dir string) (disk.Mount, bool) {
	var found disk.Mount
	ok := false
	for _, m := range mounts {
		if m.MountPoint == filepath.Clean(dir) {
			found, ok = m, true
		}
	}
	return found, ok
}

func (m StoreMount) isBind(mt disk.Mount) bool {
	return mt.MajorMinor == m.Dev && mt.Root == "/"+disk.BuildStoreDir
}

func (m StoreMount) isData(mt disk.Mount) bool {
	return mt.MajorMinor == m.Dev && mt.Root == "/"
}

// Preflight checks, without changing anything, that the store can go on
// the data disk here: /nix empty or missing and not a mount. The review
// shows its refusal before anything is erased.
func (st StoreStep) Preflight(t *Target) error {
	m, err := st.resolve(t, false)
	if err != nil {
		return err
	}
	mounts, err := disk.ReadMounts(t.System)
	if err != nil {
		return err
	}
	var mine func(disk.Mount) bool
	if m2, err := st.resolve(t, true); err == nil {
		mine = m2.isBind // an apply that stopped left it mounted
	}
	return nixDirProblem(m.NixDir, filepath.Join(t.System.Root+"/", m.NixDir), mounts, mine)
}

func (st StoreStep) Apply(ctx context.Context, t *Target, s *Sink) (err error) {
	m, err := st.resolve(t, true)
	if err != nil {
		return err
	}
	mounts, err := disk.ReadMounts(disk.System{})
	if err != nil {
		return err
	}
	if mt, ok := mountAt(mounts, m.NixDir); ok && m.isBind(mt) {
		s.Notef("%s is bind-mounted from %s already.", m.NixDir, m.Partition)
		t.Store = &m
		t.ResolveNix(ctx)
		return nil
	}
	if err := nixDirProblem(m.NixDir, m.NixDir, mounts, nil); err != nil {
		return err
	}
	dataMounted := false
	if mt, ok := mountAt(mounts, m.MountDir); ok {
		if !m.isData(mt) {
			return Refuse(fmt.Errorf("%s is a mount of something else (%s %s): nothing was mounted", m.MountDir, mt.FSType, mt.Source))
		}
		dataMounted = true
	}
	for _, mt := range mounts {
		if mt.MajorMinor == m.Dev && mt.MountPoint != filepath.Clean(m.MountDir) {
			return Refuse(fmt.Errorf("the data partition %s is mounted at %s: unmount it first; nothing was mounted", m.Partition, mt.MountPoint))
		}
	}

	// From here on, a failure undoes what this step did.
	var undo []func()
	defer func() {
		if err != nil {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
		}
	}()
	if _, serr := os.Stat(m.NixDir); errors.Is(serr, fs.ErrNotExist) {
		if err := os.Mkdir(m.NixDir, 0o755); err != nil {
			return err
		}
		undo = append(undo, func() { os.Remove(m.NixDir) })
	}
	if !dataMounted {
		if err := os.MkdirAll(m.MountDir, 0o700); err != nil {
			return err
		}
		s.Notef("Mounting the data partition %s (%s) at %s.", m.Partition, m.FSType, m.MountDir)
		if err := unix.Mount(m.Partition, m.MountDir, m.FSType, unix.MS_NOATIME, ""); err != nil {
			return fmt.Errorf("mount %s at %s: %w", m.Partition, m.MountDir, err)
		}
		undo = append(undo, func() { unix.Unmount(m.MountDir, 0) })
	}
	key := filepath.Join(m.MountDir, disk.SSHHostKeyPath)
	if _, err := os.Stat(key); err != nil {
		return Refuse(fmt.Errorf("%s holds no %s: it is not the data partition the disk step made; nothing is kept mounted", m.Partition, disk.SSHHostKeyPath))
	}
	if err := os.Mkdir(m.Folder(), 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	if err := unix.Mount(m.Folder(), m.NixDir, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind-mount %s at %s: %w", m.Folder(), m.NixDir, err)
	}
	t.Store = &m
	free := ""
	var sf unix.Statfs_t
	if unix.Statfs(m.NixDir, &sf) == nil {
		free = fmt.Sprintf(" (%s free)", nixbuild.FormatBytes(sf.Bavail*uint64(sf.Bsize)))
	}
	s.Notef("%s is bind-mounted from %s on the data partition%s: the build's store lives on the data disk.", m.NixDir, m.Folder(), free)
	// Nix in /nix (if any) is the one on the data disk now.
	t.ResolveNix(ctx)
	return nil
}

// Verify: the store is still bind-mounted from the data partition. After a
// restart of the rescue system the mounts are gone: the step runs again
// and mounts them again (the disk step, which finished, is not repeated).
func (st StoreStep) Verify(ctx context.Context, t *Target) error {
	m, err := st.resolve(t, true)
	if err != nil {
		return err
	}
	mounts, err := disk.ReadMounts(disk.System{})
	if err != nil {
		return err
	}
	mt, ok := mountAt(mounts, m.NixDir)
	if !ok || !m.isBind(mt) {
		return fmt.Errorf("%s is not bind-mounted from the data partition %s any more", m.NixDir, m.Partition)
	}
	t.Store = &m
	if t.NixErr != nil || t.Nix.Path == "" {
		t.ResolveNix(ctx)
	}
	return nil
}

// Release unmounts the store: the bind mount at NixDir, then the data
// partition. Mounts already gone are fine; one that is busy is an error
// naming it.
func (m StoreMount) Release() error {
	mounts, err := disk.ReadMounts(disk.System{})
	if err != nil {
		return err
	}
	if mt, ok := mountAt(mounts, m.NixDir); ok && m.isBind(mt) {
		if err := unix.Unmount(m.NixDir, 0); err != nil {
			return fmt.Errorf("unmount the build's store at %s: %w (a program still uses it: fuser -vm %s shows which)", m.NixDir, err, m.NixDir)
		}
	}
	if mt, ok := mountAt(mounts, m.MountDir); ok && m.isData(mt) {
		if err := unix.Unmount(m.MountDir, 0); err != nil {
			return fmt.Errorf("unmount the data partition at %s: %w", m.MountDir, err)
		}
	}
	return nil
}
