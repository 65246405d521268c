package disk

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/homestaker/homestaker/internal/testutil"
	"github.com/homestaker/homestaker/plan"
	"github.com/homestaker/homestaker/report"
	"golang.org/x/sys/unix"
)

// mustRun runs a judge tool and returns its output, failing the test on error.
func mustRun(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(testutil.RequireTool(t, name), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func requireFSTools(t *testing.T, fs plan.Filesystem) {
	t.Helper()
	testutil.RequireTool(t, "sgdisk")
	testutil.RequireTool(t, "blkid")
	switch fs {
	case plan.Ext4:
		testutil.RequireTool(t, "mkfs.ext4")
	case plan.XFS:
		testutil.RequireTool(t, "mkfs.xfs")
	case plan.Btrfs:
		testutil.RequireTool(t, "mkfs.btrfs")
		testutil.RequireRoot(t) // subvolumes are made on the mounted filesystem
	}
}

func fakeHostKey(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ssh_host_ed25519_key")
	if err := os.WriteFile(p, []byte("-----BEGIN OPENSSH PRIVATE KEY-----\ntest key\n-----END OPENSSH PRIVATE KEY-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p+".pub", []byte("ssh-ed25519 AAAAtest root@node1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestImageFormats(t *testing.T) {
	for _, fs := range []plan.Filesystem{plan.Ext4, plan.XFS, plan.Btrfs} {
		for _, sector := range []uint64{512, 4096} {
			t.Run(fmt.Sprintf("%s/%d", fs, sector), func(t *testing.T) {
				requireFSTools(t, fs)
				checkImageFormat(t, fs, sector)
			})
		}
	}
}

func checkImageFormat(t *testing.T, fs plan.Filesystem, sector uint64) {
	const size = 4 << 30
	l := placed(t, fs, size, sector)
	dir := t.TempDir()
	img := filepath.Join(dir, "data.img")
	key := fakeHostKey(t)
	var commands []string
	f := Formatter{TempDir: dir, Reporter: report.Func(func(e report.Event) {
		if e.Command != nil {
			commands = append(commands, strings.Join(e.Command, " "))
		}
	})}
	if err := f.Image(context.Background(), l, img, Options{HostKeyFile: key}); err != nil {
		t.Fatal(err)
	}
	if len(commands) < 2 || !strings.HasPrefix(commands[0], "mkfs.vfat") || !strings.HasPrefix(commands[1], "mkfs."+string(fs)) {
		t.Errorf("commands reported: %q", commands)
	}
	p := l.Data()

	// The partition table, judged by sgdisk.
	table := sgdiskTarget(t, img, sector)
	if out := mustRun(t, "sgdisk", "-v", table); !strings.Contains(out, "No problems found") {
		t.Errorf("sgdisk -v:\n%s", out)
	}
	for i, lp := range l.Partitions {
		n := fmt.Sprint(i + 1)
		info := mustRun(t, "sgdisk", "-i", n, table)
		for _, want := range []string{
			"Partition GUID code: " + lp.TypeGUID,
			fmt.Sprintf("First sector: %d ", lp.StartBytes/sector),
			fmt.Sprintf("Last sector: %d ", lp.EndBytes()/sector-1),
			"Partition name: '" + lp.Label + "'",
		} {
			if !strings.Contains(info, want) {
				t.Errorf("sgdisk -i %s lacks %q:\n%s", n, want, info)
			}
		}
	}
	if want := []string{BIOSPartLabel, BootPartLabel, DataPartLabel}; len(l.Partitions) != 3 ||
		l.Partitions[0].Label != want[0] || l.Partitions[1].Label != want[1] || l.Partitions[2].Label != want[2] {
		t.Errorf("partitions %+v, want %v", l.Partitions, want)
	}
	checkImageESP(t, img, l, dir)

	// The filesystem at the partition's offset, judged by blkid.
	probe := mustRun(t, "blkid", "-p", "-o", "export", "-O", fmt.Sprint(p.StartBytes), img)
	for _, want := range []string{"TYPE=" + string(fs), "LABEL=" + FilesystemLabel} {
		if !strings.Contains(probe, want+"\n") {
			t.Errorf("blkid at offset %d lacks %s:\n%s", p.StartBytes, want, probe)
		}
	}

	// fsck on the partition, extracted to a sparse file.
	part := filepath.Join(dir, "part.img")
	if err := resetImage(part, int64(p.SizeBytes)); err != nil {
		t.Fatal(err)
	}
	if err := copyExtents(part, 0, img, int64(p.StartBytes), int64(p.SizeBytes)); err != nil {
		t.Fatal(err)
	}
	switch fs {
	case plan.Ext4:
		mustRun(t, "fsck.ext4", "-f", "-n", part)
	case plan.XFS:
		mustRun(t, "xfs_repair", "-n", part)
	case plan.Btrfs:
		mustRun(t, "btrfs", "check", "--readonly", part)
	}
	if os.Geteuid() == 0 {
		checkFolders(t, part, l, key)
	}
	// What was written (checked above against l) is what disko.nix declares.
	checkDiskoAgrees(t, l, l.DiskoNix())
}

// checkImageESP judges the EFI system partition of a formatted image with
// blkid and fsck.vfat.
func checkImageESP(t *testing.T, img string, l Layout, dir string) {
	t.Helper()
	testutil.RequireTool(t, "fsck.vfat")
	esp, _, ok := l.Boot()
	if !ok {
		t.Fatal("layout has no EFI system partition")
	}
	probe := mustRun(t, "blkid", "-p", "-o", "export", "-O", fmt.Sprint(esp.StartBytes), img)
	for _, want := range []string{"TYPE=vfat", "LABEL=" + BootFilesystemLabel, "VERSION=FAT32"} {
		if !strings.Contains(probe, want+"\n") {
			t.Errorf("blkid at offset %d lacks %s:\n%s", esp.StartBytes, want, probe)
		}
	}
	part := filepath.Join(dir, "esp.img")
	if err := resetImage(part, int64(esp.SizeBytes)); err != nil {
		t.Fatal(err)
	}
	if err := copyExtents(part, 0, img, int64(esp.StartBytes), int64(esp.SizeBytes)); err != nil {
		t.Fatal(err)
	}
	out := mustRun(t, "fsck.vfat", "-n", part)
	if strings.Contains(out, "Warning") || !strings.Contains(out, "1 files") {
		t.Errorf("fsck.vfat -n:\n%s", out)
	}
	t.Logf("fsck.vfat -n: %s", strings.TrimSpace(out))
	os.Remove(part)
}

// checkFolders mounts the filesystem read-only and checks folders, modes,
// subvolumes and the host key.
func checkFolders(t *testing.T, part string, l Layout, key string) {
	t.Helper()
	mnt := t.TempDir()
	mustRun(t, "mount", "-o", "loop,ro", part, mnt)
	defer mustRun(t, "umount", mnt)
	fsys := l.Data().Filesystem
	for _, d := range fsys.Folders {
		st, err := os.Stat(filepath.Join(mnt, d.Path))
		if err != nil || !st.IsDir() || st.Mode().Perm() != d.Mode {
			t.Errorf("folder %s: %v %v, want mode %v", d.Path, st.Mode(), err, d.Mode)
		}
		if d.Subvolume {
			out := mustRun(t, "btrfs", "subvolume", "show", filepath.Join(mnt, d.Path))
			if !strings.Contains(out, "Name: \t\t\t"+d.Path) && !strings.Contains(out, d.Path) {
				t.Errorf("%s is not a subvolume:\n%s", d.Path, out)
			}
		}
	}
	got, err := os.ReadFile(filepath.Join(mnt, SSHHostKeyPath))
	want, _ := os.ReadFile(key)
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("host key on disk: %v", err)
	}
	if st, err := os.Stat(filepath.Join(mnt, SSHHostKeyPath)); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("host key mode: %v %v", st, err)
	}
	if _, err := os.Stat(filepath.Join(mnt, SSHHostKeyPath+".pub")); err != nil {
		t.Errorf("host public key: %v", err)
	}
}

// sgdiskTarget is what sgdisk should read: the image itself for 512-byte
// sectors, which sgdisk assumes for files, or a loop device with 4096-byte
// sectors (needs root).
func sgdiskTarget(t *testing.T, img string, sector uint64) string {
	t.Helper()
	if sector == 512 {
		return img
	}
	testutil.RequireRoot(t)
	dev := strings.TrimSpace(mustRun(t, "losetup", "--find", "--show", "--read-only", "--sector-size", fmt.Sprint(sector), img))
	t.Cleanup(func() { exec.Command("losetup", "-d", dev).Run() })
	return dev
}

// sha is a checksum of a sparse file's content that reads only its data
// extents: the size, then each extent's offset and bytes (holes read as zeros
// and are the same content wherever the extents are the same).
func sha(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	h := sha256.New()
	fmt.Fprintf(h, "size %d\n", st.Size())
	for pos := int64(0); pos < st.Size(); {
		start, err := unix.Seek(int(f.Fd()), pos, unix.SEEK_DATA)
		if err != nil {
			break // ENXIO: only holes remain
		}
		end, err := unix.Seek(int(f.Fd()), start, unix.SEEK_HOLE)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(h, "extent %d %d\n", start, end)
		if _, err := io.Copy(h, io.NewSectionReader(f, start, end-start)); err != nil {
			t.Fatal(err)
		}
		pos = end
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

func TestImageDryRunChangesNothing(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "data.img")
	if err := resetImage(img, 4<<30); err != nil {
		t.Fatal(err)
	}
	// Some old content the real run would erase.
	f, _ := os.OpenFile(img, os.O_WRONLY, 0)
	f.WriteAt([]byte("old filesystem signature"), 1<<20+1024)
	f.WriteAt([]byte("old backup GPT"), 4<<30-4096)
	f.Close()
	before := sha(t, img)
	l := placed(t, plan.XFS, 4<<30, 512)
	var msgs []string
	fm := Formatter{TempDir: dir, Runner: failRunner{t}, Reporter: report.Func(func(e report.Event) { msgs = append(msgs, e.Message) })}
	if err := fm.Image(context.Background(), l, img, Options{DryRun: true, HostKeyFile: fakeHostKey(t)}); err != nil {
		t.Fatal(err)
	}
	if after := sha(t, img); after != before {
		t.Errorf("dry run changed the image: %s → %s", before, after)
	}
	all := strings.Join(msgs, "\n")
	for _, want := range []string{"disk-data-data", "would run mkfs.xfs -f -L homestaker -s size=512", "would write the GPT"} {
		if !strings.Contains(all, want) {
			t.Errorf("dry run output lacks %q:\n%s", want, all)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 { // data.img
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("dry run left files: %v", names)
	}
	// A missing image is not created either.
	missing := filepath.Join(dir, "new.img")
	if err := fm.Image(context.Background(), l, missing, Options{DryRun: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(missing); err == nil {
		t.Error("dry run created the image")
	}
}

type failRunner struct{ t *testing.T }

func (r failRunner) Run(_ context.Context, argv []string) ([]byte, error) {
	r.t.Errorf("dry run ran %q", argv)
	return nil, fmt.Errorf("not allowed")
}

func TestImageRefusesWrongSize(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "data.img")
	if err := resetImage(img, 5<<30); err != nil {
		t.Fatal(err)
	}
	l := placed(t, plan.Ext4, 4<<30, 512)
	err := (&Formatter{}).Image(context.Background(), l, img, Options{})
	if err == nil || !strings.Contains(err.Error(), "has 5368709120 bytes") {
		t.Errorf("got %v", err)
	}
}
