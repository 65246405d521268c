package media

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path"
	"path/filepath"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem/fat32"
	"github.com/diskfs/go-diskfs/partition/mbr"
)

// The card's layout. The boot partition starts 8 MiB in, as on NixOS' own
// SD images, so it begins on an SD card's erase-block boundary, and its size
// is a multiple of 4 MiB.
const (
	SectorSize      = 512
	PartitionOffset = 8 << 20
	sizeStep        = 4 << 20
	// minPartition keeps FAT32 above its smallest size (65525 clusters)
	// with room to spare.
	minPartition = 64 << 20
	// VolumeLabel is the boot partition's FAT label, as on NixOS' images.
	VolumeLabel = "FIRMWARE"
	// copyChunk is how much is handed to go-diskfs per write: each write
	// rewrites the FAT, so few large writes are much faster than many small.
	copyChunk = 32 << 20
)

// Image is an assembled SD-card image.
type Image struct {
	Path string
	Size int64
	// PartitionStart and PartitionSize are the FAT32 partition, in bytes.
	PartitionStart, PartitionSize int64
	// DiskSignature is the MBR's disk identifier (PARTUUID <sig>-01) and
	// VolumeID the FAT volume serial; both are derived from the parts, so
	// the same parts give the same image.
	DiskSignature, VolumeID uint32
	SHA256                  string
	Files                   []ImageFile
}

// ImageFile is one file on the card.
type ImageFile struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// PartitionSizeFor is the boot partition's size for the files: their
// clusters, the FATs, the directories, and a tenth plus 16 MiB of room
// (config.txt can be edited on the card), rounded up to 4 MiB.
func PartitionSizeFor(files []Part) int64 {
	var data int64
	for _, f := range files {
		data += f.Size
	}
	size := roundUp(max(data+data/10+16<<20, minPartition), sizeStep)
	for {
		cluster := clusterBytes(size)
		used := int64(4) // root and overlays/ directories, with a spare cluster each
		for _, f := range files {
			used += (f.Size + cluster - 1) / cluster
			used++ // its directory entries (long names take several)
		}
		fats := 2 * roundUp(4*(size/cluster+2), SectorSize)
		if used*cluster+fats+32*SectorSize+16<<20 <= size && fatHoldsClusters(size) {
			return size
		}
		if !fatHoldsClusters(size) {
			size += sizeStep
			continue
		}
		size = roundUp(size+size/4, sizeStep)
	}
}

// fatHoldsClusters reports whether go-diskfs' FAT32 of this size has a FAT
// with an entry for every cluster. go-diskfs sizes the FAT with a closed
// form that forgets the FAT's two reserved entries, so for some sizes the
// last clusters have no entry ("Filesystem has 129024 clusters but only
// space for 129022 FAT entries", says fsck.vfat of a 64 MiB one); those
// sizes are skipped. This mirrors fat32.Create of go-diskfs v1.9.4.
func fatHoldsClusters(size int64) bool {
	const reserved = 32
	total := size / SectorSize
	spc := clusterBytes(size) / SectorSize
	denom := SectorSize*spc + 8
	perFAT := (4*(total-reserved) + denom - 1) / denom
	clusters := (total - reserved - 2*perFAT) / spc
	return perFAT*SectorSize/4 >= clusters+2
}

// clusterBytes is the cluster size go-diskfs' FAT32 picks for a size (the
// table dosfstools' mkfs.fat and Microsoft's format use).
func clusterBytes(size int64) int64 {
	switch {
	case size <= 260<<20:
		return 512
	case size <= 8<<30:
		return 4 << 10
	case size <= 16<<30:
		return 8 << 10
	case size <= 32<<30:
		return 16 << 10
	}
	return 32 << 10
}

func roundUp(n, step int64) int64 { return (n + step - 1) / step * step }

// Assemble writes the SD-card image for p to out: an MBR with one bootable
// FAT32 partition (type 0x0c) holding every part and config.txt. The image
// is written to a temporary file beside out, read back and compared with
// the parts, then renamed into place, so out is either the old file or a
// complete new image. The same parts always give the same bytes.
func Assemble(ctx context.Context, p Parts, out string) (Image, error) {
	img := Image{Path: out, PartitionStart: PartitionOffset, PartitionSize: PartitionSizeFor(p.Files)}
	img.Size = img.PartitionStart + img.PartitionSize
	if st, err := os.Stat(out); err == nil && !st.Mode().IsRegular() {
		return img, fmt.Errorf("%s exists and is not a regular file; give a file name for the image (flash writes it to the card)", out)
	}
	tmp, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".tmp-*")
	if err != nil {
		return img, fmt.Errorf("write the image %s: %w", out, err)
	}
	renamed := false
	defer func() {
		if !renamed {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Truncate(img.Size); err != nil {
		return img, fmt.Errorf("size the image %s: %w", tmp.Name(), err)
	}
	files, err := writeImage(ctx, tmp, p, &img)
	if err != nil {
		return img, err
	}
	img.Files = files
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return img, err
	}
	h := sha256.New()
	if _, err := copyCtx(ctx, h, tmp); err != nil {
		return img, fmt.Errorf("hash the image %s: %w", tmp.Name(), err)
	}
	img.SHA256 = hex.EncodeToString(h.Sum(nil))
	if err := tmp.Chmod(0o644); err != nil {
		return img, fmt.Errorf("write the image %s: %w", out, err)
	}
	if err := tmp.Sync(); err != nil {
		return img, fmt.Errorf("sync the image %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return img, fmt.Errorf("write the image %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return img, fmt.Errorf("write the image %s: %w", out, err)
	}
	renamed = true
	return img, nil
}

// writeImage writes the partition table, the filesystem and the files, then
// makes the filesystem's metadata reproducible (finishFAT).
func writeImage(ctx context.Context, f *os.File, p Parts, img *Image) ([]ImageFile, error) {
	b := file.New(f, false)
	table := &mbr.Table{
		LogicalSectorSize:  SectorSize,
		PhysicalSectorSize: SectorSize,
		Partitions: []*mbr.Partition{{
			Index: 1, Bootable: true, Type: mbr.Fat32LBA,
			Start: uint32(img.PartitionStart / SectorSize), Size: uint32(img.PartitionSize / SectorSize),
			// CHS addresses are unused (LBA only): the customary 1023/254/63.
			StartHead: 0xfe, StartSector: 0xff, StartCylinder: 0xff,
			EndHead: 0xfe, EndSector: 0xff, EndCylinder: 0xff,
		}},
	}
	w, err := b.Writable()
	if err != nil {
		return nil, err
	}
	if err := table.Write(w, img.Size); err != nil {
		return nil, fmt.Errorf("write the MBR of %s: %w", f.Name(), err)
	}
	fsys, err := fat32.Create(b, img.PartitionSize, img.PartitionStart, SectorSize, VolumeLabel, true)
	if err != nil {
		return nil, fmt.Errorf("create the FAT32 filesystem in %s: %w", f.Name(), err)
	}
	made := map[string]bool{}
	files := make([]ImageFile, 0, len(p.Files))
	all := sha256.New()
	for _, part := range p.Files {
		if dir := path.Dir(part.Name); dir != "." && !made[dir] {
			if err := fsys.Mkdir("/" + dir); err != nil {
				return nil, fmt.Errorf("create /%s on the card: %w", dir, err)
			}
			made[dir] = true
		}
		sum, err := copyPart(ctx, fsys, part)
		if err != nil {
			return nil, err
		}
		files = append(files, ImageFile{Name: part.Name, Size: part.Size, SHA256: sum})
		fmt.Fprintf(all, "%s\x00%d\x00%s\n", part.Name, part.Size, sum)
	}
	// Read back before finishFAT: go-diskfs cannot read a folder holding
	// an empty file that owns no cluster, as finishFAT leaves it (and as
	// the FAT specification has it); finishFAT touches no file's data.
	if err := verifyImage(ctx, f, *img, files); err != nil {
		return nil, err
	}
	id := all.Sum(nil)
	img.VolumeID = binary.LittleEndian.Uint32(id[0:4])
	img.DiskSignature = binary.LittleEndian.Uint32(id[4:8])
	if err := finishFAT(f, img.PartitionStart, img.VolumeID); err != nil {
		return nil, fmt.Errorf("finish the FAT32 filesystem in %s: %w", f.Name(), err)
	}
	var sig [4]byte
	binary.LittleEndian.PutUint32(sig[:], img.DiskSignature)
	if _, err := f.WriteAt(sig[:], 440); err != nil {
		return nil, fmt.Errorf("write the disk signature of %s: %w", f.Name(), err)
	}
	return files, nil
}

func copyPart(ctx context.Context, fsys *fat32.FileSystem, part Part) (string, error) {
	dst, err := fsys.OpenFile("/"+part.Name, os.O_CREATE|os.O_RDWR)
	if err != nil {
		return "", fmt.Errorf("create /%s on the card: %w", part.Name, err)
	}
	defer dst.Close()
	h := sha256.New()
	if part.Source == "" {
		h.Write(part.Data)
		if len(part.Data) > 0 {
			if _, err := dst.Write(part.Data); err != nil {
				return "", fmt.Errorf("write /%s on the card: %w", part.Name, err)
			}
		}
		return hex.EncodeToString(h.Sum(nil)), nil
	}
	src, err := os.Open(part.Source)
	if err != nil {
		return "", fmt.Errorf("read the part %s: %w", part.Source, err)
	}
	defer src.Close()
	buf := make([]byte, min(copyChunk, max(part.Size, 1)))
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return "", err
		}
		m, rerr := io.ReadFull(src, buf)
		if m > 0 {
			h.Write(buf[:m])
			if _, err := dst.Write(buf[:m]); err != nil {
				return "", fmt.Errorf("write /%s on the card: %w", part.Name, err)
			}
			n += int64(m)
		}
		if errors.Is(rerr, io.EOF) || errors.Is(rerr, io.ErrUnexpectedEOF) {
			break
		}
		if rerr != nil {
			return "", fmt.Errorf("read the part %s: %w", part.Source, rerr)
		}
	}
	if n != part.Size {
		return "", fmt.Errorf("the part %s changed while it was copied (%d bytes, was %d)", part.Source, n, part.Size)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// verifyImage reads every file back through a fresh go-diskfs reader and
// compares it with what was written.
func verifyImage(ctx context.Context, f *os.File, img Image, files []ImageFile) error {
	fsys, err := fat32.Read(file.New(f, true), img.PartitionSize, img.PartitionStart, SectorSize)
	if err != nil {
		return fmt.Errorf("read back the filesystem of %s: %w", f.Name(), err)
	}
	for _, want := range files {
		src, err := fsys.OpenFile("/"+want.Name, os.O_RDONLY)
		if err != nil {
			return fmt.Errorf("read back /%s from %s: %w", want.Name, f.Name(), err)
		}
		h := sha256.New()
		n, err := copyCtx(ctx, h, src)
		src.Close()
		if err != nil {
			return fmt.Errorf("read back /%s from %s: %w", want.Name, f.Name(), err)
		}
		if got := hex.EncodeToString(h.Sum(nil)); n != want.Size || got != want.SHA256 {
			return fmt.Errorf("/%s in %s reads back as %d bytes with SHA-256 %s, but %d bytes with %s were written", want.Name, f.Name(), n, got, want.Size, want.SHA256)
		}
	}
	return nil
}

// copyCtx copies in large blocks, stopping when ctx ends.
func copyCtx(ctx context.Context, dst hash.Hash, src io.Reader) (int64, error) {
	buf := make([]byte, 4<<20)
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		m, err := src.Read(buf)
		dst.Write(buf[:m])
		n += int64(m)
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}
