package boot

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
)

// InitrdEstimate is how much RAM an initrd's contents take once the new
// kernel has unpacked them, and how that figure was found.
type InitrdEstimate struct {
	// Bytes is the initrd file's size.
	Bytes uint64
	// Unpacked is the unpacked contents' size: exact, an upper bound, or
	// an estimate, as Method says.
	Unpacked uint64
	// Method says how Unpacked was found, for the user.
	Method string
}

// packedMultiplier is the guess for gzip, xz and other streams whose
// unpacked size cannot be read without unpacking them: such initrds
// usually shrink 3–4× when packed, so 4× errs on the safe side.
const packedMultiplier = 4

// zstdMaxBlock is the most a zstd block unpacks to (RFC 8878: the block
// maximum is the smaller of the window size and 128 KiB).
const zstdMaxBlock = 128 << 10

// EstimateInitrd reads the structure of the initrd at path, which is one
// or more archives back to back (uncompressed cpio, zstd, gzip, …, with
// zero padding between them), and estimates its unpacked size without
// unpacking it:
//   - an uncompressed cpio archive: the sum of its files (exact);
//   - a zstd frame that records its content size: that size (exact);
//   - a zstd frame without it (zstd writing to a pipe does not record it):
//     its blocks are walked, and each compressed block counts as the most
//     a block can unpack to, 128 KiB (an upper bound; tight for the Nix
//     store's squashfs, which is compressed already);
//   - anything else (gzip, xz, lz4, bzip2): 4× its packed size (a guess).
func EstimateInitrd(path string) (InitrdEstimate, error) {
	f, err := os.Open(path)
	if err != nil {
		return InitrdEstimate{}, fmt.Errorf("open the initrd: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return InitrdEstimate{}, fmt.Errorf("initrd %s: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		return InitrdEstimate{}, fmt.Errorf("initrd %s is not a regular file", path)
	}
	est, err := estimateArchives(f, st.Size())
	if err != nil {
		return InitrdEstimate{}, fmt.Errorf("initrd %s: %w", path, err)
	}
	return est, nil
}

const (
	methodExact = iota
	methodBound
	methodGuess
)

func estimateArchives(r io.ReaderAt, size int64) (InitrdEstimate, error) {
	est := InitrdEstimate{Bytes: uint64(size)}
	method := methodExact
	var kinds []string
	addKind := func(k string) {
		for _, have := range kinds {
			if have == k {
				return
			}
		}
		kinds = append(kinds, k)
	}
	off := int64(0)
	buf := make([]byte, 4096)
	for off < size {
		// Skip the zero padding between archives.
		n, err := r.ReadAt(buf, off)
		if n == 0 && err != nil {
			return est, fmt.Errorf("read at %d: %w", off, err)
		}
		zeros := 0
		for zeros < n && buf[zeros] == 0 {
			zeros++
		}
		if zeros > 0 {
			off += int64(zeros)
			continue
		}
		head := buf[:n]
		switch {
		case len(head) >= 6 && (string(head[:6]) == "070701" || string(head[:6]) == "070702"):
			end, unpacked, err := walkNewc(r, off, size)
			if err != nil {
				return est, err
			}
			est.Unpacked += unpacked
			off = end
			addKind("cpio")
		case len(head) >= 4 && binary.LittleEndian.Uint32(head) == 0xFD2FB528:
			end, unpacked, exact, err := walkZstdFrame(r, off, size)
			if err != nil {
				return est, err
			}
			est.Unpacked += unpacked
			if !exact && method < methodBound {
				method = methodBound
			}
			off = end
			addKind("zstd")
		case len(head) >= 8 && binary.LittleEndian.Uint32(head)&0xFFFFFFF0 == 0x184D2A50:
			// A zstd skippable frame: magic, 4-byte size, data.
			off += 8 + int64(binary.LittleEndian.Uint32(head[4:]))
		default:
			kind := packedKind(head)
			if kind == "" {
				return est, fmt.Errorf("unknown data at offset %d (not cpio, zstd, gzip, xz, lz4, bzip2 or lzma): is this an initrd?", off)
			}
			// The rest cannot be walked without unpacking it.
			est.Unpacked += packedMultiplier * uint64(size-off)
			method = methodGuess
			addKind(kind)
			off = size
		}
	}
	switch method {
	case methodExact:
		est.Method = "exact, from the archive headers"
	case methodBound:
		est.Method = "upper bound, from the zstd blocks"
	default:
		est.Method = fmt.Sprintf("estimate: %d× the packed %s data", packedMultiplier, kinds[len(kinds)-1])
	}
	if len(kinds) > 0 {
		est.Method = joinKinds(kinds) + "; " + est.Method
	}
	return est, nil
}

func joinKinds(kinds []string) string {
	s := kinds[0]
	for _, k := range kinds[1:] {
		s += "+" + k
	}
	return s
}

func packedKind(h []byte) string {
	has := func(magic string) bool { return len(h) >= len(magic) && string(h[:len(magic)]) == magic }
	switch {
	case has("\x1f\x8b"):
		return "gzip"
	case has("\xfd7zXZ\x00"):
		return "xz"
	case has("\x02\x21\x4c\x18"), has("\x04\x22\x4d\x18"):
		return "lz4"
	case has("BZh"):
		return "bzip2"
	case has("\x5d\x00\x00"):
		return "lzma"
	case has("\x89LZO"):
		return "lzo"
	}
	return ""
}

// walkNewc follows an uncompressed newc archive from off to just after its
// trailer and sums its file sizes.
func walkNewc(r io.ReaderAt, off, size int64) (end int64, unpacked uint64, err error) {
	hdr := make([]byte, 110)
	for {
		if off+110 > size {
			return 0, 0, fmt.Errorf("cpio archive cut short at offset %d", off)
		}
		if _, err := r.ReadAt(hdr, off); err != nil {
			return 0, 0, fmt.Errorf("cpio header at %d: %w", off, err)
		}
		_, fileSize, nameSize, err := readNewcHeader(hdr)
		if err != nil {
			return 0, 0, fmt.Errorf("cpio header at %d: %w", off, err)
		}
		name := make([]byte, nameSize)
		if _, err := r.ReadAt(name, off+110); err != nil {
			return 0, 0, fmt.Errorf("cpio name at %d: %w", off, err)
		}
		off += align4(110+nameSize) + align4(fileSize)
		if off > size+3 {
			return 0, 0, fmt.Errorf("cpio entry %q runs past the end of the file", string(name))
		}
		if string(name) == "TRAILER!!!\x00" {
			return min(off, size), unpacked, nil
		}
		unpacked += uint64(fileSize)
	}
}

// walkZstdFrame follows one zstd frame (RFC 8878) from off to its end and
// returns its content size: the size the frame header records (exact), or
// else a bound summed from its blocks.
func walkZstdFrame(r io.ReaderAt, off, size int64) (end int64, unpacked uint64, exact bool, err error) {
	short := func() (int64, uint64, bool, error) {
		return 0, 0, false, fmt.Errorf("zstd frame at %d is cut short", off)
	}
	hdr := make([]byte, 18)
	n, _ := r.ReadAt(hdr, off)
	if n < 6 {
		return short()
	}
	fhd := hdr[4]
	fcsFlag := fhd >> 6
	single := fhd&0x20 != 0
	checksum := fhd&0x04 != 0
	didSize := []int{0, 1, 2, 4}[fhd&3]
	pos := 5
	window := uint64(0)
	if !single {
		wd := hdr[pos]
		pos++
		base := uint64(1) << (10 + wd>>3)
		window = base + base/8*uint64(wd&7)
	}
	pos += didSize
	fcsSize := []int{0, 2, 4, 8}[fcsFlag]
	if fcsFlag == 0 && single {
		fcsSize = 1
	}
	if pos+fcsSize > n {
		return short()
	}
	var fcs uint64
	hasFCS := fcsSize > 0
	switch fcsSize {
	case 1:
		fcs = uint64(hdr[pos])
	case 2:
		fcs = uint64(binary.LittleEndian.Uint16(hdr[pos:])) + 256
	case 4:
		fcs = uint64(binary.LittleEndian.Uint32(hdr[pos:]))
	case 8:
		fcs = binary.LittleEndian.Uint64(hdr[pos:])
	}
	pos += fcsSize
	if single {
		window = fcs
	}
	maxBlock := uint64(zstdMaxBlock)
	if window > 0 && window < maxBlock {
		maxBlock = window
	}
	cur := off + int64(pos)
	var bound uint64
	bh := make([]byte, 3)
	for {
		if cur+3 > size {
			return short()
		}
		if _, err := r.ReadAt(bh, cur); err != nil {
			return short()
		}
		h := uint32(bh[0]) | uint32(bh[1])<<8 | uint32(bh[2])<<16
		last := h&1 != 0
		blockSize := int64(h >> 3)
		cur += 3
		switch (h >> 1) & 3 {
		case 0: // raw
			bound += uint64(blockSize)
			cur += blockSize
		case 1: // RLE: one byte repeated blockSize times
			bound += uint64(blockSize)
			cur++
		case 2: // compressed
			bound += maxBlock
			cur += blockSize
		default:
			return 0, 0, false, fmt.Errorf("zstd frame at %d has a reserved block type: the data is damaged", off)
		}
		if cur > size {
			return short()
		}
		if last {
			break
		}
	}
	if checksum {
		cur += 4
	}
	if cur > size {
		return short()
	}
	if hasFCS {
		return cur, fcs, true, nil
	}
	return cur, bound, false, nil
}

// errNotKernel says a file has no kernel header homestaker knows.
var errNotKernel = errors.New("not a kernel image")
