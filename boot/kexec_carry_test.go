package boot

import (
	"bytes"
	"compress/gzip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/homestaker/homestaker/internal/testutil"
)

var carryFiles = []CarryFile{
	{Path: "homestaker/carry/network.json", Data: []byte(`{"interfaces":[]}` + "\n")},
	{Path: "homestaker/carry/known_hosts", Data: []byte("node ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIrAWAe8Eu8oR0nqj8sN7aHINtNpPHK2dZ4dS1IZqosR\n")},
	{Path: "homestaker/odd", Data: []byte("x")},
}

func writeCarry(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteCarryArchive(&buf, carryFiles, time.Unix(1700000000, 0)); err != nil {
		t.Fatal(err)
	}
	if buf.Len()%4 != 0 {
		t.Errorf("archive is %d bytes, not a multiple of 4", buf.Len())
	}
	return buf.Bytes()
}

// TestCarryArchiveWithCpio has GNU cpio list and extract the archive.
func TestCarryArchiveWithCpio(t *testing.T) {
	cpio := testutil.RequireTool(t, "cpio")
	archive := writeCarry(t)

	list := exec.Command(cpio, "-t", "--quiet")
	list.Stdin = bytes.NewReader(archive)
	out, err := list.CombinedOutput()
	if err != nil {
		t.Fatalf("cpio -t: %v\n%s", err, out)
	}
	want := "homestaker\nhomestaker/carry\nhomestaker/carry/network.json\nhomestaker/carry/known_hosts\nhomestaker/odd\n"
	if string(out) != want {
		t.Errorf("cpio -t lists\n%s\nwant\n%s", out, want)
	}

	dir := t.TempDir()
	ex := exec.Command(cpio, "-idv", "--quiet")
	ex.Dir = dir
	ex.Stdin = bytes.NewReader(archive)
	if out, err := ex.CombinedOutput(); err != nil {
		t.Fatalf("cpio -idv: %v\n%s", err, out)
	}
	for _, f := range carryFiles {
		p := filepath.Join(dir, f.Path)
		got, err := os.ReadFile(p)
		if err != nil || !bytes.Equal(got, f.Data) {
			t.Errorf("%s: %q, %v; want %q", f.Path, got, err, f.Data)
		}
		if st, _ := os.Stat(p); st == nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", f.Path, st.Mode())
		}
	}
	for _, d := range []string{"homestaker", "homestaker/carry"} {
		if st, err := os.Stat(filepath.Join(dir, d)); err != nil || !st.IsDir() || st.Mode().Perm() != 0o700 {
			t.Errorf("%s: %v %v, want a 0700 folder", d, st, err)
		}
	}

	entries, err := ReadNewc(bytes.NewReader(archive))
	if err != nil || len(entries) != 5 || entries[2].Name != "homestaker/carry/network.json" || entries[2].Mode != 0o100600 {
		t.Errorf("ReadNewc: %+v %v", entries, err)
	}
}

func TestCarryArchiveRefusesBadPaths(t *testing.T) {
	for _, p := range []string{"", "/etc/passwd", "../x", "a/../b", "a//b", "."} {
		if err := WriteCarryArchive(&bytes.Buffer{}, []CarryFile{{Path: p}}, time.Now()); err == nil {
			t.Errorf("path %q accepted", p)
		}
	}
	dup := []CarryFile{{Path: "a"}, {Path: "a"}}
	if err := WriteCarryArchive(&bytes.Buffer{}, dup, time.Now()); err == nil {
		t.Error("a path given twice was accepted")
	}
}

// TestAppendCarry appends the archive to initrds of every alignment and
// checks that it starts on a 4-byte boundary after zero padding, and that
// the initrd walker sees both archives.
func TestAppendCarry(t *testing.T) {
	archive := writeCarry(t)
	for extra := 0; extra < 4; extra++ {
		dir := t.TempDir()
		var gz bytes.Buffer
		zw := gzip.NewWriter(&gz)
		zw.Write(bytes.Repeat([]byte("initrd "), 1000))
		zw.Close()
		src := filepath.Join(dir, "initrd")
		data := append(append([]byte{}, gz.Bytes()...), bytes.Repeat([]byte{0x55}, extra)...)
		os.WriteFile(src, data, 0o644)
		out, err := AppendCarry(src, dir, archive)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := os.ReadFile(out)
		start := (len(data) + 3) &^ 3
		if !bytes.Equal(got[:len(data)], data) || !bytes.Equal(got[len(data):start], make([]byte, start-len(data))) || !bytes.Equal(got[start:], archive) {
			t.Errorf("extra %d: the copy is not initrd + zero padding to 4 + archive", extra)
		}
		if st, _ := os.Stat(out); st.Mode().Perm() != 0o600 {
			t.Errorf("copy mode %v, want 0600", st.Mode())
		}
		if _, err := AppendCarry(src, dir, archive); err == nil {
			t.Error("an existing copy was overwritten")
		}
	}
}

// TestEstimateZstdWithCarry walks a zstd initrd with the carry archive
// appended, as the kernel will see it.
func TestEstimateZstdWithCarry(t *testing.T) {
	zstd := testutil.RequireTool(t, "zstd")
	dir := t.TempDir()
	raw := filepath.Join(dir, "contents")
	content := bytes.Repeat([]byte("homestaker node contents "), 40000) // 1 MB
	os.WriteFile(raw, content, 0o644)
	if out, err := exec.Command(zstd, "-q", "-3", raw, "-o", raw+".zst").CombinedOutput(); err != nil {
		t.Fatalf("zstd: %v %s", err, out)
	}
	out, err := AppendCarry(raw+".zst", dir, writeCarry(t))
	if err != nil {
		t.Fatal(err)
	}
	est, err := EstimateInitrd(out)
	if err != nil {
		t.Fatal(err)
	}
	var carried uint64
	for _, f := range carryFiles {
		carried += uint64(len(f.Data))
	}
	if est.Unpacked != uint64(len(content))+carried || !strings.Contains(est.Method, "exact") || !strings.Contains(est.Method, "zstd+cpio") {
		t.Errorf("estimate %+v, want %d exact", est, len(content)+int(carried))
	}
}

var zeroTime = time.Unix(0, 0)
