package disk

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoopDevices(t *testing.T) {
	// The recorded rescue system runs from a squashfs on loop0; give loop0 a
	// backing file in a copy of the recording.
	root := t.TempDir()
	if err := os.CopyFS(root, os.DirFS("testdata/rescue")); err != nil {
		t.Fatal(err)
	}
	backing := filepath.Join(t.TempDir(), "rescue.squashfs")
	other := filepath.Join(t.TempDir(), "other.img")
	for _, p := range []string{backing, other} {
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	loopDir := filepath.Join(root, "sys/block/loop0/loop")
	if err := os.MkdirAll(loopDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(loopDir, "backing_file"), []byte(backing+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sys := System{Root: root}
	devs, err := LoopDevices(sys, backing)
	if err != nil || len(devs) != 1 {
		t.Fatalf("LoopDevices: %v, %v", devs, err)
	}
	d := devs[0]
	if d.Name != "loop0" || d.Path != "/dev/loop0" || d.SizeBytes != 606592*512 ||
		!d.InUse || !strings.Contains(d.InUseReason, "loop0 is mounted at /run/rescue") {
		t.Errorf("loop0: %+v", d)
	}
	if devs, err := LoopDevices(sys, other); err != nil || len(devs) != 0 {
		t.Errorf("another file: %v, %v", devs, err)
	}
	if _, err := LoopDevices(sys, filepath.Join(t.TempDir(), "missing.img")); err == nil {
		t.Error("a missing backing file was accepted")
	}
	// Discover still leaves loop devices out.
	all, err := Discover(sys)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range all {
		if d.Name == "loop0" {
			t.Error("Discover lists loop0")
		}
	}
	if _, err := CheckIn(devs, d); err == nil || !strings.Contains(err.Error(), "mounted at /run/rescue") {
		t.Errorf("CheckIn of a mounted loop device: %v", err)
	}
}
