package steps

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/homestaker/homestaker/boot"
	"github.com/homestaker/homestaker/disk"
	"github.com/homestaker/homestaker/internal/testutil"
	"github.com/homestaker/homestaker/nixbuild"
	"github.com/homestaker/homestaker/plan"
	"github.com/homestaker/homestaker/secrets"
)

// fakeBuild lays out what a kexec build leaves in the store: a kexec tree
// (kernel, initrd, kexec-boot whose init= names the system) and the system
// carrying the boot loader at etc/homestaker/boot-loader, and returns the
// manifest the build step records for it. The kernel and initrd are
// stand-ins that boot nothing.
func fakeBuild(t *testing.T, dir, name, loader string) nixbuild.BuildManifest {
	t.Helper()
	return storeBuild(t, dir, name, loader, buildFiles{})
}

// buildFiles are what a build's kexec tree boots: the files copied in as
// its bzImage and initrd ("": a stand-in text), and words appended to the
// kexec-boot script's command line.
type buildFiles struct {
	Kernel, Initrd string
	Cmdline        string
}

// storeBuild is fakeBuild with the kernel, initrd and command line of f.
func storeBuild(t *testing.T, dir, name, loader string, f buildFiles) nixbuild.BuildManifest {
	t.Helper()
	ctx := context.Background()
	system := filepath.Join(dir, name+"-system")
	tree := filepath.Join(dir, name+"-kexec-tree")
	etc := filepath.Join(system, BootLoaderEtc)
	for _, d := range []string{tree, filepath.Dir(etc)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(loader, etc); err != nil {
		t.Fatal(err)
	}
	write := func(p, text string) {
		if err := os.WriteFile(p, []byte(text), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	copyOr := func(dst, src, standIn string) {
		if src == "" {
			write(dst, standIn)
			return
		}
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, data, 0o444); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(system, "init"), "#!/bin/sh\n")
	copyOr(filepath.Join(tree, "bzImage"), f.Kernel, "kernel of "+name)
	copyOr(filepath.Join(tree, "initrd.zst"), f.Initrd, "initrd of "+name)
	cmdline := strings.TrimSpace("init=" + system + "/init loglevel=4 " + f.Cmdline)
	write(filepath.Join(tree, "kexec-boot"), fmt.Sprintf("#!/usr/bin/env bash\nkexec --load ./bzImage --initrd=./initrd.zst \\\n  --command-line \"%s\"\nkexec -e\n", cmdline))
	artifacts, err := nixbuild.CollectArtifacts(ctx, tree, plan.FormatKexec)
	if err != nil {
		t.Fatal(err)
	}
	loaderFiles, err := BootLoaderArtifacts(ctx, artifacts)
	if err != nil {
		t.Fatal(err)
	}
	if len(loaderFiles) == 0 {
		t.Fatalf("no boot loader files found through %s", tree)
	}
	return nixbuild.BuildManifest{Version: nixbuild.BuildManifestVersion, Host: "node1", Format: plan.FormatKexec, Arch: plan.ArchX86_64,
		OutPath: tree, Artifacts: append(artifacts, loaderFiles...)}
}

// uefiLoader is a boot-loader folder laid out as the build's: Debian's
// systemd-boot when installed, else a stand-in file (nothing boots here).
func uefiLoader(t *testing.T, dir string) string {
	t.Helper()
	l := filepath.Join(dir, "homestaker-boot-loader")
	if err := os.MkdirAll(l, 0o755); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile("/usr/lib/systemd/boot/efi/systemd-bootx64.efi")
	if err != nil {
		data = []byte("MZ stand-in for systemd-bootx64.efi")
	}
	if err := os.WriteFile(filepath.Join(l, "systemd-bootx64.efi"), data, 0o444); err != nil {
		t.Fatal(err)
	}
	return l
}

func espEntries(t *testing.T, img string) (map[string]string, string) {
	t.Helper()
	tg, err := boot.ReadTarget(img)
	if err != nil {
		t.Fatal(err)
	}
	spec := img + "@@" + strconv.FormatUint(tg.ESP.StartBytes, 10)
	mt := func(args ...string) string {
		cmd := exec.Command(args[0], append([]string{"-i", spec}, args[1:]...)...)
		cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1", "MTOOLSRC=/dev/null")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	entries := map[string]string{}
	for _, line := range strings.Fields(mt("mdir", "-b", "::/loader/entries")) {
		name := filepath.Base(line)
		entries[name] = mt("mtype", "::/loader/entries/"+name)
	}
	return entries, mt("mdir", "-b", "-/", "::/")
}

// TestBootEntryStepOnImage: the disk step formats an image, the boot-entry
// step writes the build's generation with its boot loader; the same build
// again changes nothing; a new build becomes generation 2 (with a boot
// counter) with 1 as the fallback, and once the node blessed 2 a third
// keeps 2 as the fallback and removes 1.
func TestBootEntryStepOnImage(t *testing.T) {
	for _, tool := range []string{"mkfs.vfat", "mkfs.ext4", "mcopy", "mdir"} {
		testutil.RequireTool(t, tool)
	}
	ctx := context.Background()
	dir := t.TempDir()
	var p plan.Plan
	p.Host.Name, p.Host.Arch, p.Host.Format, p.Host.Firmware = "node1", plan.ArchX86_64, plan.FormatKexec, plan.FirmwareUEFI
	p.Disk.Device = "/dev/disk/by-id/ata-TEST"
	p.Ethereum.Execution, p.Ethereum.Consensus = "geth", "lighthouse"
	key, _, err := secrets.EnsureHostKey(filepath.Join(dir, "private"), "node1")
	if err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(dir, "data.img")
	loader := uefiLoader(t, dir)
	tg := &Target{Plan: p, FlakeDir: filepath.Join(dir, "flake"), System: disk.System{Root: dir}}

	builds := map[string]nixbuild.BuildManifest{}
	apply := func(name string, list ...Step) []Event {
		t.Helper()
		m, ok := builds[name]
		if !ok {
			m = fakeBuild(t, dir, name, loader)
			builds[name] = m
		}
		tg.Built = &m
		var events []Event
		if err := Run(ctx, tg, list, Options{Emit: func(e Event) { events = append(events, e) }}); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return events
	}
	entryStep := BootEntryStep{Image: img}
	apply("build1", DiskStep{Image: img, ImageSize: 4 << 30, HostKeyFile: key.PrivatePath}, entryStep)
	entries, root := espEntries(t, img)
	want1 := "linux /homestaker/0001/linux"
	if len(entries) != 1 || !strings.Contains(entries["homestaker-0001.conf"], want1) ||
		!strings.Contains(entries["homestaker-0001.conf"], "options init="+filepath.Join(dir, "build1-system")+"/init loglevel=4") {
		t.Fatalf("after the first install: entries %v", entries)
	}
	for _, f := range []string{"::/EFI/BOOT/BOOTX64.EFI", "::/EFI/systemd/systemd-bootx64.efi", "::/loader/loader.conf", "::/homestaker/0001/initrd"} {
		if !strings.Contains(root, f) {
			t.Errorf("%s is missing on the boot partition:\n%s", f, root)
		}
	}

	// The same build again (a resumed apply): nothing changes.
	events := apply("build1", entryStep)
	if entries2, _ := espEntries(t, img); len(entries2) != 1 {
		t.Fatalf("the same build again: entries %v", entries2)
	}
	if !slices.ContainsFunc(events, func(e Event) bool { return strings.Contains(e.Message, "unchanged") }) {
		t.Errorf("no 'unchanged' note: %+v", events)
	}

	// A rebuild: generation 2, 1 kept as the fallback.
	events = apply("build2", entryStep)
	entries, _ = espEntries(t, img)
	if len(entries) != 2 || !strings.Contains(entries["homestaker-0001.conf"], want1) ||
		!strings.Contains(entries["homestaker-0002+3.conf"], "options init="+filepath.Join(dir, "build2-system")+"/init") {
		t.Fatalf("after the rebuild: entries %v, want homestaker-0001.conf and homestaker-0002+3.conf (a boot counter on UEFI)", entries)
	}
	if !slices.ContainsFunc(events, func(e Event) bool {
		return strings.Contains(e.Message, "goes back to generation 1 by itself after 3 starts")
	}) {
		t.Errorf("no note of the boot counter: %+v", events)
	}
	// The node booted generation 2 from the disk, and systemd-bless-boot
	// removed its counter after boot-complete.target.
	tgt, err := boot.ReadTarget(img)
	if err != nil {
		t.Fatal(err)
	}
	mren := exec.Command("mren", "-i", img+"@@"+strconv.FormatUint(tgt.ESP.StartBytes, 10), "::/loader/entries/homestaker-0002+3.conf", "::/loader/entries/homestaker-0002.conf")
	mren.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1", "MTOOLSRC=/dev/null")
	if out, err := mren.CombinedOutput(); err != nil {
		t.Fatalf("mren: %v\n%s", err, out)
	}
	// Another: 2 is the fallback now, 1 is gone.
	apply("build3", entryStep)
	entries, root = espEntries(t, img)
	if len(entries) != 2 || entries["homestaker-0001.conf"] != "" || !strings.Contains(entries["homestaker-0002.conf"], "build2-system") ||
		!strings.Contains(entries["homestaker-0003+3.conf"], "build3-system") || strings.Contains(root, "::/homestaker/0001") {
		t.Fatalf("after the third build: entries %v\n%s", entries, root)
	}
}

// TestBootEntryStepRefusesABuildWithoutLoader: a manifest with no loader
// files (a flake from an older homestaker) is refused before the disk is
// touched, rather than taking a boot loader from this machine.
func TestBootEntryStepRefusesABuildWithoutLoader(t *testing.T) {
	dir := t.TempDir()
	m := fakeBuild(t, dir, "old", uefiLoader(t, dir))
	m.Artifacts = slices.DeleteFunc(m.Artifacts, func(a nixbuild.Artifact) bool { return a.Role == nixbuild.RoleLoader })
	_, _, err := EntryFromManifest(context.Background(), m, dir)
	if KindOf(err) != KindRefused || !strings.Contains(err.Error(), "no boot loader") {
		t.Fatalf("err = %v (kind %d), want a refusal naming the missing boot loader", err, KindOf(err))
	}
}

// failRunner fails the test on any mtools command run through it.
type failRunner struct{ t *testing.T }

func (f failRunner) Run(_ context.Context, argv []string) ([]byte, error) {
	f.t.Errorf("mtools ran on the raw disk: %v", argv)
	return nil, fmt.Errorf("no mtools")
}

// TestBootEntryStepWritesAMountedESP: on the node the data disk's boot
// partition is mounted (the recorded mount table says /boot, vfat); the
// step writes the entry through that folder and never runs mtools on the
// raw disk. Without the mount it takes the raw path (here the plan's
// by-id name, absent on this machine, so it fails naming it).
func TestBootEntryStepWritesAMountedESP(t *testing.T) {
	for _, tool := range []string{"mkfs.vfat", "mkfs.ext4", "mcopy", "mdir"} {
		testutil.RequireTool(t, tool)
	}
	ctx := context.Background()
	dir, root := t.TempDir(), t.TempDir()
	for _, d := range []string{"dev", "sys/block/sdb/sdb2", "proc/self", "boot"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var p plan.Plan
	p.Host.Name, p.Host.Arch, p.Host.Format, p.Host.Firmware = "node1", plan.ArchX86_64, plan.FormatKexec, plan.FirmwareUEFI
	p.Disk.Device = "/dev/disk/by-id/ata-TEST"
	p.Ethereum.Execution, p.Ethereum.Consensus = "geth", "lighthouse"
	key, _, err := secrets.EnsureHostKey(filepath.Join(dir, "private"), "node1")
	if err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(root, "dev", "sdb")
	tg := &Target{Plan: p, FlakeDir: filepath.Join(dir, "flake"), System: disk.System{Root: root}}
	if err := Run(ctx, tg, []Step{DiskStep{Image: img, ImageSize: 4 << 30, HostKeyFile: key.PrivatePath}}, Options{}); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(root, "sys/block/sdb/sdb2/partition"), []byte("2\n"), 0o644)
	os.WriteFile(filepath.Join(root, "sys/block/sdb/sdb2/dev"), []byte("8:18\n"), 0o644)
	mountinfo := filepath.Join(root, "proc/self/mountinfo")
	os.WriteFile(mountinfo, []byte("1 0 0:2 / / rw - tmpfs none rw\n"+
		"2 1 8:19 / /var/lib rw,relatime - ext4 /dev/sdb3 rw\n"+
		"3 1 8:18 / /boot rw,relatime - vfat /dev/sdb2 rw,fmask=0022\n"), 0o644)
	tg.Disk = &disk.BlockDevice{Name: "sdb", Path: "/dev/sdb", InUse: true, InUseReason: "sdb3 is mounted at /var/lib; sdb2 is mounted at /boot"}
	m := fakeBuild(t, dir, "build1", uefiLoader(t, dir))
	tg.Built = &m

	step := BootEntryStep{Optional: true, Runner: failRunner{t}}
	if lines := step.Describe(tg); len(lines) != 2 || !strings.Contains(lines[1], "mounted at "+filepath.Join(root, "boot")) {
		t.Errorf("the review does not say the mounted partition is written: %q", lines)
	}
	var events []Event
	if err := Run(ctx, tg, []Step{step}, Options{Emit: func(e Event) { events = append(events, e) }}); err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(events, func(e Event) bool { return strings.Contains(e.Message, "written through the mounted filesystem") }) {
		t.Errorf("no note of the mounted path: %+v", events)
	}
	entry, err := os.ReadFile(filepath.Join(root, "boot/loader/entries/homestaker-0001.conf"))
	if err != nil || !strings.Contains(string(entry), "options init="+filepath.Join(dir, "build1-system")+"/init") {
		t.Fatalf("entry in the mounted folder: %v\n%s", err, entry)
	}
	for _, f := range []string{"EFI/BOOT/BOOTX64.EFI", "loader/loader.conf", "homestaker/0001/linux", "homestaker/0001/initrd"} {
		if _, err := os.Stat(filepath.Join(root, "boot", f)); err != nil {
			t.Errorf("the mounted folder lacks %s: %v", f, err)
		}
	}
	// A rebuild on the node: generation 2 with 1 as the fallback.
	m2 := fakeBuild(t, dir, "build2", uefiLoader(t, filepath.Join(dir, "l2")))
	tg.Built = &m2
	if err := Run(ctx, tg, []Step{step}, Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "boot/loader/entries/homestaker-0002+3.conf")); err != nil {
		t.Errorf("no generation 2 in the mounted folder: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "boot/loader/entries/homestaker-0001.conf")); err != nil {
		t.Errorf("the fallback is gone: %v", err)
	}

	// Not mounted: the raw path, which opens the plan's disk.
	os.WriteFile(mountinfo, []byte("1 0 0:2 / / rw - tmpfs none rw\n"), 0o644)
	err = Run(ctx, tg, []Step{BootEntryStep{Optional: true}}, Options{})
	if err == nil || !strings.Contains(err.Error(), p.Disk.Device) {
		t.Errorf("unmounted: %v, want the raw path's failure to open %s", err, p.Disk.Device)
	}
}
