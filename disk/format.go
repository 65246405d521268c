package disk

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/homestaker/homestaker/plan"
	"github.com/homestaker/homestaker/report"
)

// Formatter writes a placed Layout to a block device or an image file. It
// reports every step and every external command to Reporter, and runs the
// commands through Runner.
type Formatter struct {
	Runner   Runner
	Reporter report.Reporter
	// System is where the target is re-checked before writing.
	System System
	// TempDir holds staging folders ("" means the system default).
	TempDir string
	// Settle bounds the wait for the kernel to show new partitions (default 15 s).
	Settle time.Duration
}

// Options are the per-run choices of a format.
type Options struct {
	// HostKeyFile, when set, is the host's SSH private key; it is copied to
	// SSHHostKeyPath (0600), with its .pub when present.
	HostKeyFile string
	// PrivateDir is the private folder (0700) the staging folder goes in
	// when it holds a copy of the host key, so a killed format leaves no
	// key anywhere else; "" is the folder of HostKeyFile.
	PrivateDir string
	// DryRun reports every step and command and changes nothing.
	DryRun bool
}

// RefusedError says why a target was not written. Nothing was changed.
type RefusedError struct {
	Target string
	Reason string
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("refusing to write %s: %s", e.Target, e.Reason)
}

// ReportStep is the step name of every event the Formatter reports.
const ReportStep = "disk"

// job is one run of the Formatter: it reports, and skips side effects in a dry run.
type job struct {
	f    *Formatter
	ctx  context.Context
	dry  bool
	opts Options
}

func (f *Formatter) job(ctx context.Context, o Options) *job {
	if f.Runner == nil {
		f.Runner = ExecRunner{}
	}
	if f.Reporter == nil {
		f.Reporter = report.Discard
	}
	return &job{f: f, ctx: ctx, dry: o.DryRun, opts: o}
}

func (j *job) say(msg string) {
	j.f.Reporter.Report(report.Event{Step: ReportStep, Message: msg})
}

// do reports msg and runs fn unless this is a dry run.
func (j *job) do(msg string, fn func() error) error {
	if j.dry {
		msg = "would " + msg
	}
	j.say(msg)
	if j.dry {
		return nil
	}
	if err := j.ctx.Err(); err != nil {
		return err
	}
	return fn()
}

// run reports argv and runs it unless this is a dry run.
func (j *job) run(argv ...string) error {
	msg := "run " + strings.Join(argv, " ")
	if j.dry {
		msg = "would " + msg
	}
	j.f.Reporter.Report(report.Event{Step: ReportStep, Message: msg, Command: argv})
	if j.dry {
		return nil
	}
	_, err := j.f.Runner.Run(j.ctx, argv)
	return err
}

// workDir creates the temporary folder of a run; in a dry run it only names
// one. The folder holds a copy of the host key (the tree mkfs.ext4 -d and
// mkfs.xfs -p copy from) and the mount point of a btrfs being populated, so
// with a host key it lives in the private folder, next to the key itself,
// never in the system's temporary folder: a format killed with SIGKILL
// leaves the copy there, and the next run removes it (stale work folders).
func (j *job) workDir() (string, func(), error) {
	parent := j.f.TempDir
	if j.opts.HostKeyFile != "" {
		parent = j.opts.PrivateDir
		if parent == "" {
			parent = filepath.Dir(j.opts.HostKeyFile)
		}
	}
	if j.dry {
		if parent == "" {
			parent = os.TempDir()
		}
		return filepath.Join(parent, workPrefix+"…"), func() {}, nil
	}
	if parent != "" {
		if err := ensurePrivateDir(parent, j.opts.HostKeyFile != ""); err != nil {
			return "", nil, err
		}
	}
	for _, msg := range RemoveStaleWork(parent) {
		j.say(msg)
	}
	dir, err := os.MkdirTemp(parent, workPrefix)
	if err != nil {
		return "", nil, fmt.Errorf("create a staging folder: %w", err)
	}
	unlock, err := lockWork(dir)
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	return dir, func() { removeWork(dir); unlock() }, nil
}

// Image writes l to the image file at path, creating it (sparse, of
// l.SizeBytes) when missing. An existing image must have exactly l's size;
// everything on it is replaced.
func (f *Formatter) Image(ctx context.Context, l Layout, path string, o Options) error {
	j := f.job(ctx, o)
	if err := l.Validate(); err != nil {
		return fmt.Errorf("image %s: %w", path, err)
	}
	if o.HostKeyFile != "" {
		if err := checkHostKey(o.HostKeyFile); err != nil {
			return err
		}
	}
	st, err := os.Stat(path)
	exists := err == nil
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return fmt.Errorf("image %s: %w", path, err)
	case !st.Mode().IsRegular():
		return fmt.Errorf("image %s is not a regular file (to write a disk, name it without --image)", path)
	case uint64(st.Size()) != l.SizeBytes:
		return fmt.Errorf("image %s has %d bytes, the layout is for %d", path, st.Size(), l.SizeBytes)
	}
	j.say("partition table:\n" + l.String())
	verb := fmt.Sprintf("create sparse image %s (%s)", path, humanBytes(l.SizeBytes))
	if exists {
		verb = fmt.Sprintf("clear image %s (%s)", path, humanBytes(l.SizeBytes))
	}
	if err := j.do(verb, func() error { return resetImage(path, int64(l.SizeBytes)) }); err != nil {
		return err
	}
	if err := j.do("write the GPT to "+path, func() error { return writeGPT(path, l) }); err != nil {
		return err
	}
	if err := j.do("read the GPT back from "+path+" and check it", func() error { return verifyGPT(path, l) }); err != nil {
		return err
	}
	work, cleanup, err := j.workDir()
	if err != nil {
		return err
	}
	defer cleanup()
	for i, p := range l.Partitions {
		if err := j.makeImageFS(path, i+1, p, l.SectorSize, work, o.HostKeyFile); err != nil {
			return fmt.Errorf("format partition %d (%s) of %s as %s: %w", i+1, p.Label, path, p.Filesystem.Type, err)
		}
	}
	j.say(fmt.Sprintf("%s is ready: %s", path, describeFS(l)))
	return nil
}

func describeFS(l Layout) string {
	var s []string
	for _, p := range l.Partitions {
		if p.Filesystem.Type == "" {
			s = append(s, p.Label+" (BIOS boot, left empty)")
			continue
		}
		s = append(s, fmt.Sprintf("%s %s labelled %s", p.Label, p.Filesystem.Type, p.Filesystem.Label))
	}
	return strings.Join(s, ", ")
}

// resetImage makes path a sparse file of size zero bytes: truncating drops
// every old signature and leaves nothing for mkfs to trip over.
//
// A new file is made 0600: it will hold the host's private key.
func resetImage(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("open image: %w", err)
	}
	if err := f.Truncate(0); err != nil {
		f.Close()
		return fmt.Errorf("clear image %s: %w", path, err)
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		return fmt.Errorf("size image %s to %d bytes: %w", path, size, err)
	}
	return f.Close()
}

// stageFor builds the staging tree of one partition under work.
func (j *job) stageFor(work string, n int, p Partition, hostKey string) (string, error) {
	dir := filepath.Join(work, "stage"+strconv.Itoa(n))
	err := j.do(fmt.Sprintf("stage folders %s", folderList(p.Filesystem)), func() error {
		if err := os.Mkdir(dir, 0o755); err != nil {
			return err
		}
		return stage(dir, p.Filesystem, hostKey)
	})
	return dir, err
}

func folderList(f Filesystem) string {
	var s []string
	for _, d := range f.Folders {
		s = append(s, fmt.Sprintf("%s (%04o)", d.Path, uint32(d.Mode)))
	}
	return strings.Join(s, ", ")
}

// makeImageFS creates the filesystem of partition n inside the image. ext4 is
// made in place (mke2fs -E offset); xfs and btrfs, whose tools cannot write at
// an offset, are made in a sparse scratch file next to the image and copied in
// extent by extent. mkfs.xfs is told the sector size, which a file cannot report.
func (j *job) makeImageFS(image string, n int, p Partition, sectorSize uint64, work, hostKey string) error {
	fsys := p.Filesystem
	switch fsys.Type {
	case "":
		return nil // the BIOS boot partition: zeros until a boot loader is installed
	case VFAT:
		ss := strconv.FormatUint(sectorSize, 10)
		first := strconv.FormatUint(p.StartBytes/sectorSize, 10)
		return j.run(append(append([]string{"mkfs.vfat"}, mkfsLabelArgs(fsys)...),
			"-S", ss, "-s", fatClusterSectors(sectorSize), "-h", first, "--offset="+first, image, strconv.FormatUint(p.SizeBytes/1024, 10))...)
	}
	stageDir, err := j.stageFor(work, n, p, hostKey)
	if err != nil {
		return err
	}
	if fsys.Type == plan.Ext4 {
		return j.run("mkfs.ext4", "-F", "-L", fsys.Label, "-E", fmt.Sprintf("offset=%d", p.StartBytes),
			"-d", stageDir, image, fmt.Sprintf("%dk", p.SizeBytes/1024))
	}
	scratch := filepath.Join(filepath.Dir(image), fmt.Sprintf(".%s.part%d.tmp", filepath.Base(image), n))
	defer func() {
		if !j.dry {
			os.Remove(scratch)
		}
	}()
	if err := j.do("create scratch file "+scratch, func() error { return resetImage(scratch, int64(p.SizeBytes)) }); err != nil {
		return err
	}
	switch fsys.Type {
	case plan.XFS:
		if err := j.mkfsXFS(scratch, fsys, stageDir, work, n, strconv.FormatUint(sectorSize, 10)); err != nil {
			return err
		}
	case plan.Btrfs:
		if err := j.run("mkfs.btrfs", "-f", "-L", fsys.Label, scratch); err != nil {
			return err
		}
		if err := j.populateByMount([]string{"-o", "loop", "-t", "btrfs", scratch}, fsys, stageDir, work, n); err != nil {
			return err
		}
	}
	return j.do(fmt.Sprintf("copy the filesystem into %s at byte %d", image, p.StartBytes), func() error {
		return copyExtents(image, int64(p.StartBytes), scratch, 0, int64(p.SizeBytes))
	})
}

// fatClusterSize is the EFI system partition's cluster size. mkfs.fat picks
// 32 KiB clusters for 2 GiB on 4096-byte sectors, which leaves fewer than the
// 65525 clusters FAT32 needs; 4 KiB clusters suit both sector sizes.
const fatClusterSize = 4096

// fatClusterSectors is mkfs.fat's -s (sectors per cluster) for fatClusterSize.
func fatClusterSectors(sectorSize uint64) string {
	return strconv.FormatUint(max(1, fatClusterSize/sectorSize), 10)
}

// mkfsXFS runs mkfs.xfs with a prototype file describing the staged tree.
// sectorSize is "" for block devices, which report their own.
func (j *job) mkfsXFS(target string, fsys Filesystem, stageDir, work string, n int, sectorSize string) error {
	proto := filepath.Join(work, fmt.Sprintf("proto%d", n))
	err := j.do("write the mkfs.xfs prototype file "+proto, func() error {
		text, err := xfsProtofile(stageDir, fsys)
		if err != nil {
			return err
		}
		return os.WriteFile(proto, []byte(text), 0o600)
	})
	if err != nil {
		return err
	}
	argv := []string{"mkfs.xfs", "-f", "-L", fsys.Label}
	if sectorSize != "" {
		argv = append(argv, "-s", "size="+sectorSize)
	}
	return j.run(append(argv, "-p", proto, target)...)
}

// populateByMount mounts a new filesystem, creates its subvolumes and folders
// and copies the host key, then unmounts it.
func (j *job) populateByMount(mountArgs []string, fsys Filesystem, stageDir, work string, n int) error {
	mnt := filepath.Join(work, fmt.Sprintf("mnt%d", n))
	if err := j.do("create mount point "+mnt, func() error { return os.Mkdir(mnt, 0o700) }); err != nil {
		return err
	}
	if err := j.run(append(append([]string{"mount"}, mountArgs...), mnt)...); err != nil {
		return err
	}
	err := func() error {
		for _, d := range fsys.Folders {
			if d.Subvolume {
				if err := j.run("btrfs", "subvolume", "create", filepath.Join(mnt, filepath.FromSlash(d.Path))); err != nil {
					return err
				}
			}
		}
		return j.do("create folders and copy the host key", func() error { return populateMounted(mnt, fsys, stageDir) })
	}()
	if uerr := j.run("umount", mnt); err == nil {
		err = uerr
	}
	return err
}
