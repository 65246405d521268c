package disk

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	diskfs "github.com/diskfs/go-diskfs"
	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/partition/gpt"
	"golang.org/x/sys/unix"
)

// writeGPT writes l's partition table to the disk or image at path with
// go-diskfs. It opens path exclusively and checks that the disk's size and
// sector size are what l was placed for. The kernel is told about the new
// table separately (rereadPartitions), after the file is closed.
func writeGPT(path string, l Layout) error {
	b, err := file.OpenFromPath(path, false)
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	d, err := diskfs.OpenBackend(b, diskfs.WithOpenMode(diskfs.ReadWrite), diskfs.WithSectorSize(diskfs.SectorSize(l.SectorSize)))
	if err != nil {
		b.Close()
		return fmt.Errorf("open %s: %w", path, err)
	}
	defer d.Close()
	if uint64(d.Size) != l.SizeBytes || uint64(d.LogicalBlocksize) != l.SectorSize {
		return fmt.Errorf("%s now has %d bytes in %d-byte sectors, the layout was made for %d bytes in %d-byte sectors",
			path, d.Size, d.LogicalBlocksize, l.SizeBytes, l.SectorSize)
	}
	ss := l.SectorSize
	table := &gpt.Table{
		LogicalSectorSize:  int(ss),
		PhysicalSectorSize: int(max(ss, uint64(d.PhysicalBlocksize))),
		ProtectiveMBR:      true,
	}
	for i, p := range l.Partitions {
		table.Partitions = append(table.Partitions, &gpt.Partition{
			Index: i + 1,
			Start: p.StartBytes / ss,
			End:   p.EndBytes()/ss - 1,
			Size:  p.SizeBytes,
			Type:  gpt.Type(p.TypeGUID),
			Name:  p.Label,
		})
	}
	w, err := d.Backend.Writable()
	if err != nil {
		return fmt.Errorf("open %s for writing: %w", path, err)
	}
	if err := table.Write(w, d.Size); err != nil {
		return fmt.Errorf("write GPT to %s: %w", path, err)
	}
	if f, err := d.Backend.Sys(); err == nil {
		if err := f.Sync(); err != nil {
			return fmt.Errorf("sync %s: %w", path, err)
		}
	}
	return nil
}

// verifyGPT reads the partition table back from path and checks that it is
// exactly l: go-diskfs writes overlapping or out-of-range tables without
// complaint, so homestaker checks what landed on the disk itself.
func verifyGPT(path string, l Layout) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return fmt.Errorf("size of %s: %w", path, err)
	}
	t, err := gpt.Read(f, int(l.SectorSize), int(l.SectorSize))
	if err != nil {
		return fmt.Errorf("read GPT of %s: %w", path, err)
	}
	if t.RecoveredFromBackup {
		return fmt.Errorf("GPT of %s: primary table is damaged", path)
	}
	if err := t.Verify(f, uint64(size)); err != nil {
		return fmt.Errorf("GPT of %s: %w", path, err)
	}
	var got []*gpt.Partition
	for _, p := range t.Partitions {
		if p != nil && p.Type != gpt.Unused && p.Type != "" {
			got = append(got, p)
		}
	}
	if len(got) != len(l.Partitions) {
		return fmt.Errorf("GPT of %s has %d partitions, want %d", path, len(got), len(l.Partitions))
	}
	ss := l.SectorSize
	for i, p := range l.Partitions {
		g := got[i]
		if g.Index != i+1 || g.Start*ss != p.StartBytes || (g.End+1)*ss != p.EndBytes() ||
			!strings.EqualFold(string(g.Type), p.TypeGUID) || g.Name != p.Label {
			return fmt.Errorf("GPT of %s: partition %d is #%d %q type %s sectors %d–%d, want %q type %s bytes %d–%d",
				path, i+1, g.Index, g.Name, g.Type, g.Start, g.End, p.Label, p.TypeGUID, p.StartBytes, p.EndBytes())
		}
	}
	return nil
}

// copyExtents copies the data extents of size bytes of the sparse file src,
// from srcOff, into dst at dstOff, leaving holes as holes: memory and time depend on the
// data written by mkfs, not on the partition's size. dst's region must
// already read as zeros.
func copyExtents(dstPath string, dstOff int64, srcPath string, srcOff, size int64) error {
	src, err := os.Open(srcPath)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.OpenFile(dstPath, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer dst.Close()
	buf := make([]byte, 1<<20)
	size += srcOff // from here on, offsets are in src
	for pos := srcOff; pos < size; {
		start, err := unix.Seek(int(src.Fd()), pos, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			break // only holes remain
		}
		if err != nil {
			return fmt.Errorf("find data in %s: %w", srcPath, err)
		}
		end, err := unix.Seek(int(src.Fd()), start, unix.SEEK_HOLE)
		if err != nil {
			return fmt.Errorf("find hole in %s: %w", srcPath, err)
		}
		end = min(end, size)
		for off := start; off < end; {
			n := min(int64(len(buf)), end-off)
			if _, err := src.ReadAt(buf[:n], off); err != nil {
				return fmt.Errorf("read %s: %w", srcPath, err)
			}
			if _, err := dst.WriteAt(buf[:n], dstOff+off-srcOff); err != nil {
				return fmt.Errorf("write %s: %w", dstPath, err)
			}
			off += n
		}
		pos = end
	}
	if err := dst.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dstPath, err)
	}
	return dst.Close()
}
