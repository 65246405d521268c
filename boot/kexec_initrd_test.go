package boot

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/homestaker/homestaker/internal/testutil"
)

// TestEstimateInitrdZstd compares the estimate with the real unpacked size
// for zstd written from a file (the frame records its size) and from a
// pipe (it does not: the block bound is used), single and concatenated,
// as nixpkgs' netboot initrd is (the stage-1 initrd, then the store).
func TestEstimateInitrdZstd(t *testing.T) {
	zstd := testutil.RequireTool(t, "zstd")
	dir := t.TempDir()
	// Half compressible text, half incompressible: like a squashfs store.
	content := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	noise := make([]byte, 1<<20)
	for i := range noise {
		noise[i] = byte(i*2654435761>>13) ^ byte(i>>7)
	}
	content = append(content, noise...)
	raw := filepath.Join(dir, "raw")
	os.WriteFile(raw, content, 0o644)

	fromFile := filepath.Join(dir, "file.zst")
	if out, err := exec.Command(zstd, "-q", "-6", raw, "-o", fromFile).CombinedOutput(); err != nil {
		t.Fatalf("zstd: %v %s", err, out)
	}
	fromPipe := filepath.Join(dir, "pipe.zst")
	cmd := exec.Command(zstd, "-q", "-6", "-c")
	cmd.Stdin = bytes.NewReader(content)
	piped, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(fromPipe, piped, 0o644)
	fileData, _ := os.ReadFile(fromFile)
	both := filepath.Join(dir, "both.zst")
	os.WriteFile(both, append(append([]byte{}, fileData...), piped...), 0o644)

	real := uint64(len(content))
	for _, tc := range []struct {
		path     string
		min, max uint64
		method   string
	}{
		{fromFile, real, real, "exact"},
		{fromPipe, real, real + real/2, "upper bound"},
		{both, 2 * real, 2*real + real/2, "upper bound"},
	} {
		est, err := EstimateInitrd(tc.path)
		if err != nil {
			t.Fatalf("%s: %v", tc.path, err)
		}
		if est.Unpacked < tc.min || est.Unpacked > tc.max || !strings.Contains(est.Method, tc.method) {
			t.Errorf("%s: %+v; want %d..%d, %s", filepath.Base(tc.path), est, tc.min, tc.max, tc.method)
		}
	}

	// A frame cut short is damage, not an estimate.
	cut := filepath.Join(dir, "cut.zst")
	os.WriteFile(cut, piped[:len(piped)/2], 0o644)
	if _, err := EstimateInitrd(cut); err == nil || !strings.Contains(err.Error(), "cut short") {
		t.Errorf("cut frame: %v", err)
	}
}

func TestEstimateInitrdOtherFormats(t *testing.T) {
	dir := t.TempDir()
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(bytes.Repeat([]byte("a"), 100000))
	zw.Close()
	// An uncompressed cpio (microcode, say) in front of a gzip archive.
	var cpio bytes.Buffer
	WriteCarryArchive(&cpio, []CarryFile{{Path: "kernel/x86/microcode/GenuineIntel.bin", Data: make([]byte, 1000)}}, zeroTime)
	p := filepath.Join(dir, "initrd")
	os.WriteFile(p, append(cpio.Bytes(), gz.Bytes()...), 0o644)
	est, err := EstimateInitrd(p)
	if err != nil {
		t.Fatal(err)
	}
	if want := uint64(1000 + 4*gz.Len()); est.Unpacked != want || !strings.Contains(est.Method, "4× the packed gzip") {
		t.Errorf("%+v, want %d as a 4× gzip estimate", est, want)
	}

	junk := filepath.Join(dir, "junk")
	os.WriteFile(junk, []byte("#!/bin/sh\necho not an initrd\n"), 0o644)
	if _, err := EstimateInitrd(junk); err == nil || !strings.Contains(err.Error(), "is this an initrd") {
		t.Errorf("junk: %v", err)
	}
	if _, err := EstimateInitrd(filepath.Join(dir, "missing")); err == nil {
		t.Error("missing file accepted")
	}

	// A cpio header whose file runs past the end.
	var bad bytes.Buffer
	WriteCarryArchive(&bad, []CarryFile{{Path: "f", Data: make([]byte, 64)}}, zeroTime)
	os.WriteFile(junk, bad.Bytes()[:150], 0o644)
	if _, err := EstimateInitrd(junk); err == nil {
		t.Error("truncated cpio accepted")
	}
}

// TestEstimateHugeCpio checks a sparse 2.5 GiB cpio is walked by its
// headers, without reading its data.
func TestEstimateHugeCpio(t *testing.T) {
	p := hugeInitrd(t, t.TempDir(), 5<<29)
	est, err := EstimateInitrd(p)
	if err != nil || est.Unpacked != 5<<29 {
		t.Fatalf("%+v %v", est, err)
	}
}

// hugeInitrd writes a sparse cpio archive holding one file of size bytes.
func hugeInitrd(t *testing.T, dir string, size int64) string {
	t.Helper()
	hdr := func(name string, mode, fileSize int64) []byte {
		h := []byte("070701" + strings.Repeat("00000000", 13))
		put := func(i int, v int64) {
			copy(h[6+8*i:], hex8(v))
		}
		put(1, mode)
		put(4, 1)
		put(6, fileSize)
		put(11, int64(len(name)+1))
		h = append(h, name...)
		h = append(h, 0)
		for len(h)%4 != 0 {
			h = append(h, 0)
		}
		return h
	}
	p := filepath.Join(dir, "huge")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	first := hdr("store.squashfs", 0o100644, size)
	f.Write(first)
	f.WriteAt(hdr("TRAILER!!!", 0, 0), int64(len(first))+align4(size))
	return p
}

func hex8(v int64) string {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], uint32(v))
	const digits = "0123456789ABCDEF"
	out := make([]byte, 8)
	for i, c := range b {
		out[2*i], out[2*i+1] = digits[c>>4], digits[c&15]
	}
	return string(out)
}
