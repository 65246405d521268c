package steps

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/homestaker/homestaker/boot"
	"github.com/homestaker/homestaker/disk"
	"github.com/homestaker/homestaker/internal/testutil"
	"github.com/homestaker/homestaker/plan"
	"golang.org/x/sys/unix"
)

// storeDisk is a loop device holding an ext4 filesystem laid out like the
// data partition the disk step makes (the SSH host key in secrets/ssh),
// standing in for the data partition: loop devices show no partitions in
// this test's container, so the step is given the partition's device.
func storeDisk(t *testing.T, withKey bool) string {
	t.Helper()
	testutil.RequireRoot(t)
	mkfs := testutil.RequireTool(t, "mkfs.ext4")
	img := filepath.Join(t.TempDir(), "data.img")
	seed := t.TempDir()
	if withKey {
		if err := os.MkdirAll(filepath.Join(seed, disk.SSHDir), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(seed, disk.SSHHostKeyPath), []byte("stand-in key\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 64<<20); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(mkfs, "-q", "-F", "-L", disk.FilesystemLabel, "-d", seed, img).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v: %s", err, out)
	}
	return testutil.AttachLoop(t, img)
}

// storeTest is a store step on a loop device with temporary folders for
// the data mount and /nix (the host's /nix is never touched), and a
// cleanup that unmounts whatever the test left mounted.
func storeTest(t *testing.T, withKey bool) (StoreStep, *Target) {
	t.Helper()
	dev := storeDisk(t, withKey)
	base := t.TempDir()
	st := StoreStep{Partition: dev, MountDir: filepath.Join(base, "run", "data"), NixDir: filepath.Join(base, "nix")}
	t.Cleanup(func() {
		for _, dir := range []string{st.NixDir, st.MountDir} {
			for unix.Unmount(dir, 0) == nil {
			}
		}
	})
	tg := &Target{Plan: plan.Plan{Disk: plan.Disk{Device: dev, Filesystem: plan.Ext4}},
		Caps: Caps{LookPath: func(string) (string, error) { return "", os.ErrNotExist }, Getenv: func(string) string { return "" }}}
	return st, tg
}

func mountedAt(t *testing.T, dir string) (disk.Mount, bool) {
	t.Helper()
	ms, err := disk.ReadMounts(disk.System{})
	if err != nil {
		t.Fatal(err)
	}
	return mountAt(ms, dir)
}

func runStore(ctx context.Context, st StoreStep, tg *Target) ([]Event, error) {
	var evs []Event
	err := st.Apply(ctx, tg, &Sink{emit: func(e Event) { evs = append(evs, e) }, now: tg.Caps.now})
	return evs, err
}

func TestStoreStepMountsVerifiesAndReleases(t *testing.T) {
	ctx := context.Background()
	st, tg := storeTest(t, true)
	if err := st.Preflight(tg); err != nil {
		t.Fatalf("Preflight of a missing /nix: %v", err)
	}
	if err := st.Verify(ctx, tg); err == nil {
		t.Fatal("Verify before the step ran passed")
	}
	if _, err := runStore(ctx, st, tg); err != nil {
		t.Fatal(err)
	}
	if tg.Store == nil || tg.Store.NixDir != st.NixDir || tg.Store.MountDir != st.MountDir {
		t.Fatalf("Target.Store: %+v", tg.Store)
	}
	bind, ok := mountedAt(t, st.NixDir)
	if !ok || bind.Root != "/"+disk.BuildStoreDir || bind.FSType != "ext4" {
		t.Fatalf("the store's bind mount: %+v, %v", bind, ok)
	}
	if data, ok := mountedAt(t, st.MountDir); !ok || data.Root != "/" || data.MajorMinor != bind.MajorMinor {
		t.Fatalf("the data mount: %+v, %v", data, ok)
	}
	// What the build writes into /nix lands in the folder on the data disk.
	if err := os.MkdirAll(filepath.Join(st.NixDir, "store", "abc-hello"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(st.MountDir, disk.BuildStoreDir, "store", "abc-hello")); err != nil {
		t.Fatalf("the store is not on the data partition: %v", err)
	}
	if err := st.Verify(ctx, tg); err != nil {
		t.Fatalf("Verify with the mounts in place: %v", err)
	}
	// Applying again (a resumed apply) keeps the mounts as they are.
	if evs, err := runStore(ctx, st, tg); err != nil || len(evs) == 0 || !strings.Contains(evs[0].Message, "already") {
		t.Fatalf("Apply with the mounts in place: %v, %+v", err, evs)
	}

	// A restart of the rescue system: the mounts are gone. Verify says so,
	// and the step mounts them again over the store it left.
	if err := unix.Unmount(st.NixDir, 0); err != nil {
		t.Fatal(err)
	}
	if err := unix.Unmount(st.MountDir, 0); err != nil {
		t.Fatal(err)
	}
	if err := st.Verify(ctx, tg); err == nil || !strings.Contains(err.Error(), "not bind-mounted") {
		t.Fatalf("Verify after the unmount: %v", err)
	}
	if _, err := runStore(ctx, st, tg); err != nil {
		t.Fatalf("Apply again after the unmount: %v", err)
	}
	if _, err := os.Stat(filepath.Join(st.NixDir, "store", "abc-hello")); err != nil {
		t.Fatalf("the store built before the restart is not back: %v", err)
	}

	// Release (the kexec step, before it loads the node) undoes both, and
	// leaves the disk free for the kexec's data-disk check.
	if err := tg.Store.Release(); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{st.NixDir, st.MountDir} {
		if m, ok := mountedAt(t, dir); ok {
			t.Errorf("%s is still mounted: %+v", dir, m)
		}
	}
	if err := tg.Store.Release(); err != nil {
		t.Errorf("Release with nothing mounted: %v", err)
	}
}

func TestStoreStepRefusesANixWithContent(t *testing.T) {
	ctx := context.Background()
	st, tg := storeTest(t, true)
	if err := os.MkdirAll(filepath.Join(st.NixDir, "store", "xyz-nix-2.24"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := st.Preflight(tg); err == nil || KindOf(err) != KindRefused || !strings.Contains(err.Error(), "already holds") {
		t.Fatalf("Preflight: %v", err)
	}
	_, err := runStore(ctx, st, tg)
	if err == nil || KindOf(err) != KindRefused || !strings.Contains(err.Error(), "nothing was mounted") {
		t.Fatalf("Apply: %v", err)
	}
	for _, dir := range []string{st.NixDir, st.MountDir} {
		if m, ok := mountedAt(t, dir); ok {
			t.Errorf("%s was mounted: %+v", dir, m)
		}
	}
	if _, err := os.Stat(st.MountDir); err == nil {
		t.Errorf("the refusal created %s", st.MountDir)
	}
	if tg.Store != nil {
		t.Errorf("Target.Store after a refusal: %+v", tg.Store)
	}
}

func TestStoreStepRefusesAMountOfSomethingElse(t *testing.T) {
	ctx := context.Background()
	st, tg := storeTest(t, true)
	if err := os.MkdirAll(st.NixDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", st.NixDir, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	_, err := runStore(ctx, st, tg)
	if err == nil || KindOf(err) != KindRefused || !strings.Contains(err.Error(), "already a mount") {
		t.Fatalf("Apply over a tmpfs: %v", err)
	}
	if m, ok := mountedAt(t, st.NixDir); !ok || m.FSType != "tmpfs" {
		t.Errorf("the tmpfs at %s: %+v, %v", st.NixDir, m, ok)
	}
	if _, ok := mountedAt(t, st.MountDir); ok {
		t.Errorf("the data partition was mounted")
	}
}

func TestStoreStepUndoesOnAPartitionWithoutTheHostKey(t *testing.T) {
	ctx := context.Background()
	st, tg := storeTest(t, false)
	_, err := runStore(ctx, st, tg)
	if err == nil || KindOf(err) != KindRefused || !strings.Contains(err.Error(), "not the data partition") {
		t.Fatalf("Apply: %v", err)
	}
	for _, dir := range []string{st.NixDir, st.MountDir} {
		if m, ok := mountedAt(t, dir); ok {
			t.Errorf("%s is still mounted: %+v", dir, m)
		}
	}
	if _, err := os.Stat(st.NixDir); err == nil {
		t.Errorf("the step left the %s it created", st.NixDir)
	}
}

// The journal of an install that builds on the data disk: after a restart
// of the rescue system (the mounts gone) the resumed apply skips the disk
// step, which finished (the disk is never erased twice), mounts the store
// again, and goes on with the build.
func TestStoreStepResumeAfterRestart(t *testing.T) {
	ctx := context.Background()
	st, tg := storeTest(t, true)
	dir := t.TempDir()
	var ran []string
	list := []Step{fakeStep{name: "disk", ran: &ran}, st, fakeStep{name: "build", ran: &ran, fail: os.ErrDeadlineExceeded}}
	req := testRequest(dir, "disk", "store", "build")
	req.StoreOnDataDisk = true
	j, _, err := OpenJournal(dir, req, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := Run(ctx, tg, list, Options{Journal: j}); err == nil {
		t.Fatal("the failing build passed")
	}
	if err := unix.Unmount(st.NixDir, 0); err != nil {
		t.Fatal(err)
	}
	if err := unix.Unmount(st.MountDir, 0); err != nil {
		t.Fatal(err)
	}
	ran = nil
	list[2] = fakeStep{name: "build", ran: &ran}
	j, resumed, err := OpenJournal(dir, req, nil)
	if err != nil || !resumed {
		t.Fatalf("OpenJournal: resumed %v, %v", resumed, err)
	}
	var evs []Event
	tg.Store = nil
	if err := Run(ctx, tg, list, Options{Journal: j, Resume: true, Emit: func(e Event) { evs = append(evs, e) }}); err != nil {
		t.Fatal(err)
	}
	if strings.Join(ran, ",") != "build" {
		t.Errorf("steps run on resume: %v, want only the build (the disk step is not run again)", ran)
	}
	again := false
	for _, e := range evs {
		if e.Step == "store" && strings.Contains(e.Message, "running it again") {
			again = true
		}
	}
	if !again {
		t.Errorf("the store step did not say it runs again: %+v", evs)
	}
	if m, ok := mountedAt(t, st.NixDir); !ok || m.Root != "/"+disk.BuildStoreDir || tg.Store == nil {
		t.Errorf("the store is not mounted again: %+v, %v, %+v", m, ok, tg.Store)
	}
}

// Before the kexec loads the node, the kernel and initrd are copied out of
// the store on the data disk and the store and the data partition are
// unmounted, so the data-disk check sees the disk as the node will.
func TestReleaseStoreBeforeKexec(t *testing.T) {
	ctx := context.Background()
	st, tg := storeTest(t, true)
	if _, err := runStore(ctx, st, tg); err != nil {
		t.Fatal(err)
	}
	tree := filepath.Join(st.NixDir, "store", "abc-kexec-tree")
	if err := os.MkdirAll(tree, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, text := range map[string]string{"bzImage": "kernel", "initrd.zst": "initrd"} {
		if err := os.WriteFile(filepath.Join(tree, name), []byte(text), 0o444); err != nil {
			t.Fatal(err)
		}
	}
	tmp := t.TempDir()
	var evs []Event
	out := &lineWriter{s: &Sink{emit: func(e Event) { evs = append(evs, e) }, now: tg.Caps.now}}
	req, err := releaseStore(boot.KexecRequest{Image: boot.KexecImage{Kernel: filepath.Join(tree, "bzImage"), Initrd: filepath.Join(tree, "initrd.zst")}}, tmp, *tg.Store, out)
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{req.Image.Kernel: "kernel", req.Image.Initrd: "initrd"} {
		if data, err := os.ReadFile(path); err != nil || string(data) != want || filepath.Dir(path) != tmp {
			t.Errorf("%s: %q, %v (want a copy in %s)", path, data, err, tmp)
		}
	}
	for _, dir := range []string{st.NixDir, st.MountDir} {
		if m, ok := mountedAt(t, dir); ok {
			t.Errorf("%s is still mounted: %+v", dir, m)
		}
	}

	// A store something still uses is not unmounted, and nothing loads.
	if _, err := runStore(ctx, st, tg); err != nil {
		t.Fatal(err)
	}
	busy, err := os.Open(filepath.Join(tree, "bzImage"))
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	_, err = releaseStore(boot.KexecRequest{Image: boot.KexecImage{Kernel: filepath.Join(tree, "bzImage"), Initrd: filepath.Join(tree, "initrd.zst")}}, t.TempDir(), *tg.Store, out)
	if err == nil || KindOf(err) != KindRefused || !strings.Contains(err.Error(), "nothing was loaded") {
		t.Fatalf("release of a busy store: %v", err)
	}
}
