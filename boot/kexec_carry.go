package boot

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// CarryFile is one file of the carry-over archive: what the running system
// hands to the node across the kexec (its network, its known host key).
type CarryFile struct {
	// Path is relative to the initrd's root, e.g. "homestaker/carry/network.json".
	Path string
	Data []byte
}

// WriteCarryArchive writes files as an uncompressed "newc" cpio archive,
// the format the kernel unpacks as initramfs. Every parent folder comes
// before the files in it; folders get mode 0700 and files 0600, owned by
// root, since the archive may hold what only root should read. The archive
// ends with the TRAILER!!! entry and is padded to a multiple of 4 bytes.
func WriteCarryArchive(w io.Writer, files []CarryFile, mtime time.Time) error {
	var dirs []string
	seen := map[string]bool{}
	for _, f := range files {
		clean := path.Clean(f.Path)
		if f.Path == "" || path.IsAbs(f.Path) || clean != f.Path || clean == "." || strings.HasPrefix(clean, "../") || clean == ".." {
			return fmt.Errorf("carry-over archive: %q is not a clean relative path", f.Path)
		}
		if seen[clean] {
			return fmt.Errorf("carry-over archive: %s given twice", clean)
		}
		for d := path.Dir(clean); d != "."; d = path.Dir(d) {
			if !seen[d] {
				seen[d] = true
				dirs = append(dirs, d)
			}
		}
		seen[clean] = true
	}
	// Shorter paths first puts every folder before its subfolders.
	sort.Slice(dirs, func(i, j int) bool {
		if a, b := strings.Count(dirs[i], "/"), strings.Count(dirs[j], "/"); a != b {
			return a < b
		}
		return dirs[i] < dirs[j]
	})
	cw := &newcWriter{w: w, mtime: mtime}
	for _, d := range dirs {
		cw.entry(d, 0o040700, 2, nil)
	}
	for _, f := range files {
		cw.entry(f.Path, 0o100600, 1, f.Data)
	}
	cw.entry("TRAILER!!!", 0, 1, nil)
	return cw.err
}

// newcWriter writes cpio "newc" entries: a 110-byte ASCII header ("070701"
// and 13 fields of 8 hex digits), the NUL-terminated name padded to 4
// bytes, then the data padded to 4 bytes.
type newcWriter struct {
	w     io.Writer
	ino   uint32
	mtime time.Time
	n     int64
	err   error
}

func (c *newcWriter) write(p []byte) {
	if c.err != nil {
		return
	}
	var n int
	n, c.err = c.w.Write(p)
	c.n += int64(n)
}

func (c *newcWriter) pad() {
	if r := c.n % 4; r != 0 {
		c.write(make([]byte, 4-r))
	}
}

func (c *newcWriter) entry(name string, mode uint32, nlink uint32, data []byte) {
	c.ino++
	ino := c.ino
	mtime := c.mtime.Unix()
	if name == "TRAILER!!!" {
		ino, mtime = 0, 0
	}
	if mtime < 0 {
		mtime = 0
	}
	hdr := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		ino, mode, 0, 0, nlink, uint32(mtime), len(data), 0, 0, 0, 0, len(name)+1, 0)
	c.write([]byte(hdr))
	c.write(append([]byte(name), 0))
	c.pad()
	c.write(data)
	c.pad()
}

// AppendCarry writes a copy of the initrd at src into dir with the carry
// archive appended, and returns the copy's path. The kernel unpacks an
// initrd made of several archives one after the other: after a compressed
// member it skips zero bytes and expects the next uncompressed archive's
// "070701" at an offset that is a multiple of 4 from the start, so the
// copy is padded with zeros to that boundary before the archive.
func AppendCarry(src, dir string, archive []byte) (string, error) {
	in, err := os.Open(src)
	if err != nil {
		return "", fmt.Errorf("open the initrd: %w", err)
	}
	defer in.Close()
	dst := filepath.Join(dir, "initrd-with-carry")
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return "", fmt.Errorf("create the initrd copy: %w", err)
	}
	n, err := io.Copy(out, in)
	if err == nil && n%4 != 0 {
		_, err = out.Write(make([]byte, 4-n%4))
	}
	if err == nil {
		_, err = io.Copy(out, bytes.NewReader(archive))
	}
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(dst)
		return "", fmt.Errorf("write the initrd copy %s: %w", dst, err)
	}
	return dst, nil
}

// CpioEntry is one entry of a newc archive as ReadNewc lists it.
type CpioEntry struct {
	Name string
	Mode uint32
	Size int64
}

// errNotNewc says the data at an offset is not a newc header.
var errNotNewc = errors.New("not a newc cpio header")

// readNewcHeader parses one 110-byte newc header.
func readNewcHeader(h []byte) (mode uint32, size, nameSize int64, err error) {
	if len(h) < 110 || (string(h[:6]) != "070701" && string(h[:6]) != "070702") {
		return 0, 0, 0, errNotNewc
	}
	field := func(i int) (int64, error) {
		var v int64
		for _, b := range h[6+8*i : 14+8*i] {
			var d byte
			switch {
			case b >= '0' && b <= '9':
				d = b - '0'
			case b >= 'A' && b <= 'F':
				d = b - 'A' + 10
			case b >= 'a' && b <= 'f':
				d = b - 'a' + 10
			default:
				return 0, fmt.Errorf("bad hex digit %q in a cpio header", b)
			}
			v = v<<4 | int64(d)
		}
		return v, nil
	}
	m, err := field(1)
	if err != nil {
		return 0, 0, 0, err
	}
	if size, err = field(6); err != nil {
		return 0, 0, 0, err
	}
	if nameSize, err = field(11); err != nil {
		return 0, 0, 0, err
	}
	return uint32(m), size, nameSize, nil
}

func align4(n int64) int64 { return (n + 3) &^ 3 }

// ReadNewc lists the entries of one newc archive in r, up to its trailer.
func ReadNewc(r io.Reader) ([]CpioEntry, error) {
	var entries []CpioEntry
	var off int64
	hdr := make([]byte, 110)
	for {
		if _, err := io.ReadFull(r, hdr); err != nil {
			return entries, fmt.Errorf("cpio header at %d: %w", off, err)
		}
		mode, size, nameSize, err := readNewcHeader(hdr)
		if err != nil {
			return entries, fmt.Errorf("cpio header at %d: %w", off, err)
		}
		name := make([]byte, align4(110+nameSize)-110)
		if _, err := io.ReadFull(r, name); err != nil || nameSize < 1 {
			return entries, fmt.Errorf("cpio name at %d: %v", off, err)
		}
		n := string(name[:nameSize-1])
		if n == "TRAILER!!!" {
			return entries, nil
		}
		if _, err := io.CopyN(io.Discard, r, align4(size)); err != nil {
			return entries, fmt.Errorf("cpio data of %s: %w", n, err)
		}
		entries = append(entries, CpioEntry{Name: n, Mode: mode, Size: size})
		off += align4(110+nameSize) + align4(size)
	}
}
