package steps

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/homestaker/homestaker/disk"
	"github.com/homestaker/homestaker/internal/testutil"
	"github.com/homestaker/homestaker/plan"
	"github.com/homestaker/homestaker/secrets"
)

// copyRoot copies a recorded system (disk/testdata/NAME), symlinks kept.
func copyRoot(t *testing.T, name string) string {
	t.Helper()
	dst := t.TempDir()
	testutil.CopyTree(t, filepath.Join("..", "disk", "testdata", name), dst)
	return dst
}

// TestDiskStepRefusesAnotherDiskUnderTheConfirmedName: the answers name
// the data disk by its kernel name (/dev/nvme1n1). The user confirmed the
// disk the review found there (its by-id name and size); by the time the
// disk step runs (after a long build, or on a resume after the machine
// restarted and its disks were numbered anew) another disk holds that
// name. The disk step must refuse and write nothing: the name typed at the
// review is the same, but the disk is not.
func TestDiskStepRefusesAnotherDiskUnderTheConfirmedName(t *testing.T) {
	root := copyRoot(t, "server-2nvme")
	dev := filepath.Join(root, "dev", "nvme1n1")
	old := bytes.Repeat([]byte("old chain data "), 1<<12)
	if err := os.WriteFile(dev, old, 0o644); err != nil {
		t.Fatal(err)
	}
	// A 64 GiB disk (a sparse file): the formatter, should it run, writes
	// near its end too.
	const sectors = 64 << 21
	if err := os.Truncate(dev, sectors*512); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "sys", "block", "nvme1n1", "size"), []byte("134217728\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	private := t.TempDir()
	key, _, err := secrets.EnsureHostKey(private, "node1")
	if err != nil {
		t.Fatal(err)
	}
	p := plan.Plan{Version: 1, Host: plan.Host{Name: "node1"}, Disk: plan.Disk{Device: "/dev/nvme1n1", Filesystem: plan.Ext4}}
	tg := &Target{Plan: p, System: disk.System{Root: root}, Private: private}
	tg.ResolveDisk()
	if tg.DiskErr != nil {
		t.Fatal(tg.DiskErr)
	}
	reviewed := *tg.Disk
	if reviewed.ByID == "" {
		t.Fatal("the recorded disk has no by-id name")
	}
	tg.Confirmed, tg.ConfirmedByID, tg.ConfirmedSize = reviewed.Path, reviewed.ByID, reviewed.SizeBytes

	// Another disk now answers to /dev/nvme1n1.
	byID := filepath.Join(root, "dev", "disk", "by-id")
	entries, _ := os.ReadDir(byID)
	for _, e := range entries {
		if link, _ := os.Readlink(filepath.Join(byID, e.Name())); link == "../../nvme1n1" {
			os.Remove(filepath.Join(byID, e.Name()))
		}
	}
	if err := os.Symlink("../../nvme1n1", filepath.Join(byID, "nvme-WDC_BACKUP_DISK_SERIAL9")); err != nil {
		t.Fatal(err)
	}

	err = DiskStep{HostKeyFile: key.PrivatePath}.Apply(context.Background(), tg, &Sink{now: time.Now})
	if KindOf(err) != KindRefused || !strings.Contains(err.Error(), reviewed.ByID) {
		t.Errorf("disk step on another disk under the confirmed name: %v (kind %d), want a refusal naming %s", err, KindOf(err), reviewed.ByID)
	}
	if got := head(t, dev, len(old)); !bytes.Equal(got, old) {
		t.Errorf("the disk step wrote a disk that was not the one confirmed")
	}

	// The confirmed disk itself (same by-id name, same size) is accepted
	// by the check (and then fails here only at the kernel's re-read of a
	// partition table a regular file does not have).
	tg.ConfirmedByID = "/dev/disk/by-id/nvme-WDC_BACKUP_DISK_SERIAL9"
	err = DiskStep{HostKeyFile: key.PrivatePath}.Apply(context.Background(), tg, &Sink{now: time.Now})
	if err == nil || KindOf(err) == KindRefused {
		t.Errorf("disk step on the confirmed disk: %v (kind %d), want it to get past the checks", err, KindOf(err))
	}
}

func head(t *testing.T, path string, n int) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, n)
	if _, err := f.ReadAt(buf, 0); err != nil {
		t.Fatal(err)
	}
	return buf
}
