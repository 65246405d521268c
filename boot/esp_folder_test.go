package boot

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// mountedTarget is a data disk whose EFI system partition (partition 2) is
// mounted: Install reaches it only through Options.ESPDir.
var mountedTarget = Target{Path: "/dev/disk/by-id/test-data", ESP: Part{Number: 2}}

func installMounted(t *testing.T, esp string, g Generation, loader string, wrap func(espFS) espFS) (Result, string, error) {
	t.Helper()
	var log strings.Builder
	in := &Installer{Reporter: reportTo(&log), Runner: noMtools{t}, wrapESP: wrap}
	res, err := in.Install(context.Background(), mountedTarget, g, Options{Firmware: UEFI, LoaderDir: loader, ESPDir: esp})
	return res, log.String(), err
}

// noMtools fails the test if the mounted path runs any mtools command.
type noMtools struct{ t *testing.T }

func (n noMtools) Run(_ context.Context, argv []string) ([]byte, error) {
	n.t.Errorf("the mounted path ran %v", argv)
	return nil, errors.New("no mtools here")
}

func tree(t *testing.T, root string) []string {
	t.Helper()
	var got []string
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, p)
		if rel != "." {
			got = append(got, filepath.ToSlash(rel))
		}
		return nil
	})
	slices.Sort(got)
	return got
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestInstallThroughMountedESP: with the partition mounted (a folder), the
// install writes the same files as through mtools, never runs mtools,
// keeps the previous generation as the fallback, leaves an unchanged build
// alone and removes generations older than the fallback.
func TestInstallThroughMountedESP(t *testing.T) {
	dir, esp := t.TempDir(), t.TempDir()
	loader := fakeLoader(t)
	res, log, err := installMounted(t, esp, fakeGeneration(t, dir, "g1"), loader, nil)
	if err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	if res != (Result{Generation: 1, Entry: "homestaker-0001.conf"}) {
		t.Errorf("first install: %+v", res)
	}
	if !strings.Contains(log, "mounted at "+esp) {
		t.Errorf("the report does not say the mounted filesystem is written:\n%s", log)
	}
	want := []string{"EFI", "EFI/BOOT", "EFI/BOOT/BOOTX64.EFI", "EFI/systemd", "EFI/systemd/systemd-bootx64.efi",
		"homestaker", "homestaker/0001", "homestaker/0001/initrd", "homestaker/0001/linux",
		"loader", "loader/entries", "loader/entries/homestaker-0001.conf", "loader/loader.conf"}
	if got := tree(t, esp); !slices.Equal(got, want) {
		t.Errorf("after the first install the folder holds\n%v\nwant\n%v", got, want)
	}
	entry1 := readFile(t, filepath.Join(esp, "loader/entries/homestaker-0001.conf"))
	for _, w := range []string{"linux /homestaker/0001/linux\n", "options init=/nix/store/abc-g1/init loglevel=4\n"} {
		if !strings.Contains(entry1, w) {
			t.Errorf("entry 1 lacks %q:\n%s", w, entry1)
		}
	}
	if got := readFile(t, filepath.Join(esp, "homestaker/0001/linux")); got != "kernel of g1" {
		t.Errorf("kernel reads %q", got)
	}
	if got := readFile(t, filepath.Join(esp, "loader/loader.conf")); got != loaderConfText {
		t.Errorf("loader.conf:\n%s", got)
	}

	// The same build again: unchanged.
	if res, log, err = installMounted(t, esp, fakeGeneration(t, dir, "g1"), loader, nil); err != nil || !res.Unchanged {
		t.Errorf("same build: %+v %v\n%s", res, err, log)
	}

	// A rebuild: generation 2 with a counter, 1 kept as the fallback.
	res, log, err = installMounted(t, esp, fakeGeneration(t, dir, "g2"), loader, nil)
	if err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	if res != (Result{Generation: 2, Fallback: 1, Tries: DefaultTries, Entry: "homestaker-0002+3.conf"}) {
		t.Errorf("second install: %+v", res)
	}
	if got := readFile(t, filepath.Join(esp, "loader/entries/homestaker-0001.conf")); got != entry1 {
		t.Errorf("the fallback entry changed:\n%s", got)
	}
	if got := readFile(t, filepath.Join(esp, "homestaker/0001/initrd")); got != strings.Repeat("initrd of g1", 1000) {
		t.Error("the fallback's initrd changed")
	}
	if got := readFile(t, filepath.Join(esp, "loader/entries/homestaker-0002+3.conf")); !strings.Contains(got, "abc-g2/init") {
		t.Errorf("entry 2:\n%s", got)
	}

	// The node blessed generation 2 (systemd-bless-boot renames it); a third
	// build keeps 2 as the fallback and removes 1.
	if err := os.Rename(filepath.Join(esp, "loader/entries/homestaker-0002+3.conf"), filepath.Join(esp, "loader/entries/homestaker-0002.conf")); err != nil {
		t.Fatal(err)
	}
	if res, log, err = installMounted(t, esp, fakeGeneration(t, dir, "g3"), loader, nil); err != nil || res.Fallback != 2 {
		t.Fatalf("third install: %+v %v\n%s", res, err, log)
	}
	got := tree(t, filepath.Join(esp, "loader/entries"))
	got = append(got, tree(t, filepath.Join(esp, "homestaker"))...)
	if want := []string{"homestaker-0002.conf", "homestaker-0003+3.conf", "0002", "0002/initrd", "0002/linux", "0003", "0003/initrd", "0003/linux"}; !slices.Equal(got, want) {
		t.Errorf("after the third install: %v, want %v", got, want)
	}
}

// crashESP stops an install: every write after the one named by at fails,
// as if the machine lost power there.
type crashESP struct {
	espFS
	at      func(op, p string) bool
	crashed bool
}

var errCrash = errors.New("power cut")

func (c *crashESP) stop(op, p string) error {
	if c.crashed || c.at(op, p) {
		c.crashed = true
		return errCrash
	}
	return nil
}

func (c *crashESP) put(src, p string) error {
	if err := c.stop("put", p); err != nil {
		return err
	}
	return c.espFS.put(src, p)
}

func (c *crashESP) rename(p, newName string) error {
	if err := c.stop("rename", p); err != nil {
		return err
	}
	return c.espFS.rename(p, newName)
}

func (c *crashESP) mkdir(p string) error {
	if err := c.stop("mkdir", p); err != nil {
		return err
	}
	return c.espFS.mkdir(p)
}

// TestMountedInstallStoppedBetweenFiles: an install through the mounted
// partition that stops after the new kernel (before its initrd), or after
// both files and the new entry's .tmp (before the rename that switches it),
// leaves generation 1 the only entry, byte for byte; the next install
// clears what was left and switches to generation 2 with 1 as the fallback.
func TestMountedInstallStoppedBetweenFiles(t *testing.T) {
	for name, at := range map[string]func(op, p string) bool{
		"before the initrd": func(op, p string) bool { return op == "put" && p == genDir(2)+"/initrd" },
		"before the switch": func(op, p string) bool {
			return op == "rename" && strings.HasPrefix(p, entriesDir+"/homestaker-0002")
		},
	} {
		t.Run(name, func(t *testing.T) {
			dir, esp := t.TempDir(), t.TempDir()
			loader := fakeLoader(t)
			if _, log, err := installMounted(t, esp, fakeGeneration(t, dir, "g1"), loader, nil); err != nil {
				t.Fatalf("%v\n%s", err, log)
			}
			entries := filepath.Join(esp, "loader/entries")
			entry1 := readFile(t, filepath.Join(entries, "homestaker-0001.conf"))
			var c *crashESP
			_, log, err := installMounted(t, esp, fakeGeneration(t, dir, "g2"), loader, func(e espFS) espFS {
				c = &crashESP{espFS: e, at: at}
				return c
			})
			if !errors.Is(err, errCrash) {
				t.Fatalf("the install did not stop: %v\n%s", err, log)
			}
			var conf []string
			for _, n := range tree(t, entries) {
				if strings.HasSuffix(n, ".conf") {
					conf = append(conf, n)
				}
			}
			if !slices.Equal(conf, []string{"homestaker-0001.conf"}) || readFile(t, filepath.Join(entries, "homestaker-0001.conf")) != entry1 {
				t.Fatalf("after the stop the entries are %v (all: %v)", conf, tree(t, esp))
			}
			if got := readFile(t, filepath.Join(esp, "homestaker/0001/linux")); got != "kernel of g1" {
				t.Errorf("generation 1's kernel reads %q", got)
			}
			res, log, err := installMounted(t, esp, fakeGeneration(t, dir, "g2"), loader, nil)
			if err != nil || res.Generation != 2 || res.Fallback != 1 {
				t.Fatalf("the next install: %+v %v\n%s", res, err, log)
			}
			if got := tree(t, entries); !slices.Equal(got, []string{"homestaker-0001.conf", "homestaker-0002+3.conf"}) {
				t.Errorf("after the next install: %v", got)
			}
			if got := readFile(t, filepath.Join(esp, "homestaker/0002/initrd")); got != strings.Repeat("initrd of g2", 1000) {
				t.Error("generation 2's initrd is not the build's")
			}
		})
	}
}

// TestMountedESP finds the partition's mount in a recorded mount table:
// by device number or /dev name; none for an unmounted partition or an
// image file; refused when it is not the whole vfat filesystem.
func TestMountedESP(t *testing.T) {
	root := t.TempDir()
	img := filepath.Join(root, "dev", "sdb")
	os.MkdirAll(filepath.Join(root, "sys/block/sdb/sdb2"), 0o755)
	os.MkdirAll(filepath.Join(root, "proc/self"), 0o755)
	os.MkdirAll(filepath.Join(root, "dev"), 0o755)
	os.WriteFile(img, nil, 0o644)
	os.WriteFile(filepath.Join(root, "sys/block/sdb/sdb2/partition"), []byte("2\n"), 0o644)
	os.WriteFile(filepath.Join(root, "sys/block/sdb/sdb2/dev"), []byte("8:18\n"), 0o644)
	tg := Target{Path: img, ESP: Part{Number: 2}}
	mountinfo := func(lines ...string) {
		os.WriteFile(filepath.Join(root, "proc/self/mountinfo"), []byte(strings.Join(append([]string{
			"1 0 0:2 / / rw - tmpfs none rw",
			"2 1 8:19 / /var/lib rw - ext4 /dev/sdb3 rw"}, lines...), "\n")+"\n"), 0o644)
	}
	for _, c := range []struct {
		line, want string
		refused    bool
	}{
		{"", "", false},
		{"3 1 8:18 / /boot rw,relatime - vfat /dev/sdb2 rw,fmask=0077", filepath.Join(root, "boot"), false},
		{"3 1 8:18 / /mnt/esp rw - vfat /dev/disk/by-partlabel/disk-data-boot rw", filepath.Join(root, "mnt/esp"), false},
		{"3 1 0:99 / /boot rw - vfat /dev/sdb2 rw", filepath.Join(root, "boot"), false},
		{"3 1 8:18 /EFI /boot rw - vfat /dev/sdb2 rw", "", true},
		{"3 1 8:18 / /boot rw - ext4 /dev/sdb2 rw", "", true},
	} {
		mountinfo(c.line)
		got, err := MountedESP(root, tg)
		if c.refused != (err != nil) || got != c.want {
			t.Errorf("%q: %q, %v; want %q (refused: %v)", c.line, got, err, c.want, c.refused)
		}
	}
	// An image file the kernel shows no partitions of.
	mountinfo("3 1 8:18 / /boot rw - vfat /dev/sdb2 rw")
	os.WriteFile(filepath.Join(root, "data.img"), nil, 0o644)
	if got, err := MountedESP(root, Target{Path: filepath.Join(root, "data.img"), ESP: Part{Number: 2}}); got != "" || err != nil {
		t.Errorf("an image file: %q %v", got, err)
	}
}
