package boot

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/homestaker/homestaker/plan"
)

// fakeBzImage is the start of an x86 bzImage with the given boot protocol
// version, xloadflags and init_size.
func fakeBzImage(version, xloadflags uint16, initSize uint32) []byte {
	b := make([]byte, 0x1000)
	copy(b[x86HdrMagicOff:], "HdrS")
	binary.LittleEndian.PutUint16(b[x86VersionOff:], version)
	binary.LittleEndian.PutUint16(b[x86XLoadFlagsOff:], xloadflags)
	binary.LittleEndian.PutUint32(b[x86InitSizeOff:], initSize)
	return b
}

func fakeArm64Image(imageSize uint64) []byte {
	b := make([]byte, 0x1000)
	copy(b[arm64MagicOff:], "ARM\x64")
	binary.LittleEndian.PutUint64(b[arm64SizeOff:], imageSize)
	return b
}

func TestInspectKernel(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name       string
		data       []byte
		arch       plan.Arch
		memory     uint64
		unloadable string
		err        bool
	}{
		{"bzImage", fakeBzImage(0x020f, xlfKernel64|xlfAbove4G, 40<<20), plan.ArchX86_64, 40 << 20, "", false},
		{"bzImage-small-init", fakeBzImage(0x020f, xlfKernel64|xlfAbove4G, 16), plan.ArchX86_64, 0x1000, "", false},
		{"bzImage32", fakeBzImage(0x020f, 0, 1<<20), "i386", 1 << 20, "", false},
		{"bzImage-below4g", fakeBzImage(0x020c, xlfKernel64, 1<<20), plan.ArchX86_64, 1 << 20, "above 4 GiB", false},
		{"bzImage-old", fakeBzImage(0x0209, 0, 0), "i386", 0x1000, "older than 2.12", false},
		{"Image", fakeArm64Image(30 << 20), plan.ArchAarch64, 30 << 20, "", false},
		{"zboot", append([]byte("MZ\x00\x00zimg"), make([]byte, 0x300)...), "", 0, "", true},
		{"script", []byte("#!/bin/sh\n"), "", 0, "", true},
	} {
		p := filepath.Join(dir, tc.name)
		os.WriteFile(p, tc.data, 0o644)
		info, err := InspectKernel(p)
		if tc.err {
			if !errors.Is(err, errNotKernel) {
				t.Errorf("%s: err %v, want errNotKernel", tc.name, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if info.Arch != tc.arch || info.MemoryBytes != tc.memory || !strings.Contains(info.Unloadable, tc.unloadable) || (tc.unloadable == "") != (info.Unloadable == "") {
			t.Errorf("%s: %+v; want arch %s, memory %d, unloadable %q", tc.name, info, tc.arch, tc.memory, tc.unloadable)
		}
	}
}

// TestInspectHostKernel reads the Debian kernel the VM tests boot.
func TestInspectHostKernel(t *testing.T) {
	matches, _ := filepath.Glob("/boot/vmlinuz-*")
	if len(matches) == 0 {
		t.Skip("no /boot/vmlinuz-* here")
	}
	info, err := InspectKernel(matches[0])
	if os.IsPermission(errors.Unwrap(err)) {
		t.Skip(err)
	}
	if err != nil || info.Arch != plan.ArchX86_64 || info.Unloadable != "" || info.MemoryBytes < info.Bytes {
		t.Fatalf("%+v %v", info, err)
	}
}
