package nixinstall

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func fakeRoot(t *testing.T, mountinfo string, withNix bool) string {
	t.Helper()
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "proc/self"), 0o755)
	if err := os.WriteFile(filepath.Join(root, "proc/self/mountinfo"), []byte(mountinfo), 0o644); err != nil {
		t.Fatal(err)
	}
	if withNix {
		os.Mkdir(filepath.Join(root, "nix"), 0o755)
	}
	return root
}

// A rescue system: root on tmpfs, no /nix yet. The review says the store
// goes into RAM, how much it needs with the figure's source, the share of
// the RAM, and that the data disk cannot hold it before the build.
func TestStoreReviewLineOnARescueSystem(t *testing.T) {
	root := fakeRoot(t, "21 1 0:19 / / rw,relatime shared:1 - tmpfs tmpfs rw,size=16G\n"+
		"22 21 0:5 / /proc rw shared:2 - proc proc rw\n", false)
	s, err := FindStore(root)
	if err != nil {
		t.Fatal(err)
	}
	if !s.InRAM || s.Path != "/" || s.FSType != "tmpfs" {
		t.Fatalf("store %+v, want / on tmpfs in RAM", s)
	}
	line := s.ReviewLine(4<<30, "4 × the initrd, a 1.0 GiB stand-in; an estimate", 8<<30)
	for _, want := range []string{"/nix (not there yet; it goes on tmpfs", "needs about 4.0 GiB there (4 × the initrd, a 1.0 GiB stand-in; an estimate)",
		"this is RAM: the store takes about 4.0 GiB of this machine's 8.0 GiB RAM", "the data disk is formatted only after the build", "install --store-on-data-disk erases it first"} {
		if !strings.Contains(line, want) {
			t.Errorf("line lacks %q:\n%s", want, line)
		}
	}
	if strings.Contains(line, "more than half") {
		t.Errorf("4 of 8 GiB is not more than half:\n%s", line)
	}
	if line := s.ReviewLine(6<<30, "x", 8<<30); !strings.Contains(line, "more than half of it") {
		t.Errorf("6 of 8 GiB: %s", line)
	}
}

// A machine with /nix on a disk: where it is and what is free, no RAM note.
func TestStoreReviewLineOnADisk(t *testing.T) {
	root := fakeRoot(t, "21 1 8:1 / / rw - ext4 /dev/sda1 rw\n30 21 8:2 / /nix rw - xfs /dev/sda2 rw\n", true)
	s, err := FindStore(root)
	if err != nil {
		t.Fatal(err)
	}
	if s.InRAM || s.MountPoint != "/nix" || s.Source != "/dev/sda2" {
		t.Fatalf("store %+v, want /nix on /dev/sda2", s)
	}
	line := s.ReviewLine(4<<30, "src", 0)
	if !strings.HasPrefix(line, "/nix on xfs (/dev/sda2, mounted at /nix); the build needs about 4.0 GiB there (src)") || strings.Contains(line, "RAM") {
		t.Errorf("line: %s", line)
	}
}
