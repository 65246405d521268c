package media

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
)

// FAT timestamps of every entry on the card: 1980-01-01 00:00, FAT's first
// day. Build outputs carry no meaningful time, and a fixed one makes the
// image depend on the parts alone.
const (
	fatDate = 1<<5 | 1 // (year-1980)<<9 | month<<5 | day
	fatTime = 0
)

// finishFAT makes the FAT32 filesystem that go-diskfs wrote at start
// reproducible and correct:
//   - every directory entry gets the fixed timestamp (go-diskfs stamps the
//     current time);
//   - a ".." entry in a folder directly under the root points at cluster 0,
//     as the FAT specification wants (go-diskfs writes the root's cluster,
//     which fsck.vfat reports);
//   - an empty file owns no cluster (go-diskfs gives it one, which
//     fsck.vfat truncates);
//   - the boot sector and its backup get the volume serial and the hidden
//     sectors (the partition's start), and the FS information sector and
//     its backup the count of free clusters, as mkfs.fat writes them.
func finishFAT(f *os.File, start int64, volumeID uint32) error {
	bs := make([]byte, SectorSize)
	if _, err := f.ReadAt(bs, start); err != nil {
		return fmt.Errorf("read the boot sector: %w", err)
	}
	le := binary.LittleEndian
	bps := int64(le.Uint16(bs[11:]))
	spc := int64(bs[13])
	reserved := int64(le.Uint16(bs[14:]))
	nfats := int64(bs[16])
	spf := int64(le.Uint32(bs[36:]))
	root := le.Uint32(bs[44:])
	backup := int64(le.Uint16(bs[50:]))
	if bps != SectorSize || spc == 0 || bs[510] != 0x55 || bs[511] != 0xaa || string(bs[82:90]) != "FAT32   " {
		return errors.New("the boot sector is not the FAT32 boot sector go-diskfs writes")
	}
	le.PutUint32(bs[28:], uint32(start/SectorSize)) // hidden sectors
	le.PutUint32(bs[67:], volumeID)
	for _, at := range []int64{start, start + backup*bps} {
		if _, err := f.WriteAt(bs, at); err != nil {
			return fmt.Errorf("write the boot sector: %w", err)
		}
	}

	fat := make([]byte, spf*bps)
	if _, err := f.ReadAt(fat, start+reserved*bps); err != nil {
		return fmt.Errorf("read the FAT: %w", err)
	}
	w := fatWalker{
		f: f, fat: fat, root: root,
		clusterBytes: spc * bps,
		dataStart:    start + (reserved+nfats*spf)*bps,
		seen:         map[uint32]bool{},
	}
	if err := w.dir(root, 0); err != nil {
		return err
	}
	if w.fatChanged {
		for i := int64(0); i < nfats; i++ {
			if _, err := f.WriteAt(fat, start+(reserved+i*spf)*bps); err != nil {
				return fmt.Errorf("write FAT %d: %w", i+1, err)
			}
		}
	}

	// The FS information sector: free clusters and where the next free one is.
	total := le.Uint32(bs[32:])
	clusters := (int64(total) - reserved - nfats*spf) / spc
	var free, next uint32 = 0, 0xffffffff
	for c := uint32(2); int64(c) < clusters+2; c++ {
		if le.Uint32(fat[c*4:])&0x0fffffff == 0 {
			free++
			if next == 0xffffffff {
				next = c
			}
		}
	}
	fsinfo := int64(le.Uint16(bs[48:]))
	for _, sector := range []int64{fsinfo, backup + fsinfo} {
		info := make([]byte, SectorSize)
		at := start + sector*bps
		if _, err := f.ReadAt(info, at); err != nil {
			return fmt.Errorf("read the FS information sector: %w", err)
		}
		if string(info[0:4]) != "RRaA" || string(info[484:488]) != "rrAa" {
			return fmt.Errorf("sector %d is not an FS information sector", sector)
		}
		le.PutUint32(info[488:], free)
		le.PutUint32(info[492:], next)
		if _, err := f.WriteAt(info, at); err != nil {
			return fmt.Errorf("write the FS information sector: %w", err)
		}
	}
	return nil
}

type fatWalker struct {
	f            *os.File
	fat          []byte
	root         uint32
	clusterBytes int64
	dataStart    int64
	seen         map[uint32]bool
	fatChanged   bool
}

// chain lists a cluster chain, refusing loops and clusters outside the FAT.
func (w *fatWalker) chain(first uint32) ([]uint32, error) {
	var out []uint32
	for c := first; c < 0x0ffffff8; {
		if c < 2 || int64(c)*4+4 > int64(len(w.fat)) {
			return nil, fmt.Errorf("cluster %d is outside the FAT", c)
		}
		if w.seen[c] {
			return nil, fmt.Errorf("cluster %d is used twice", c)
		}
		w.seen[c] = true
		out = append(out, c)
		c = binary.LittleEndian.Uint32(w.fat[c*4:]) & 0x0fffffff
	}
	return out, nil
}

// dir rewrites the entries of the directory starting at cluster self,
// whose parent directory starts at parent (0 for the root and for folders
// directly under it), then walks its sub-folders.
func (w *fatWalker) dir(self, parent uint32) error {
	clusters, err := w.chain(self)
	if err != nil {
		return err
	}
	buf := make([]byte, int64(len(clusters))*w.clusterBytes)
	for i, c := range clusters {
		if _, err := w.f.ReadAt(buf[int64(i)*w.clusterBytes:int64(i+1)*w.clusterBytes], w.offset(c)); err != nil {
			return fmt.Errorf("read directory cluster %d: %w", c, err)
		}
	}
	le := binary.LittleEndian
	var subdirs []uint32
	for off := 0; off+32 <= len(buf); off += 32 {
		e := buf[off : off+32]
		if e[0] == 0x00 {
			break // no entries follow
		}
		if e[0] == 0xe5 || e[11] == 0x0f {
			continue // deleted, or a long-name slot (no times)
		}
		e[13] = 0
		le.PutUint16(e[14:], fatTime)
		le.PutUint16(e[16:], fatDate)
		le.PutUint16(e[18:], fatDate)
		le.PutUint16(e[22:], fatTime)
		le.PutUint16(e[24:], fatDate)
		cluster := uint32(le.Uint16(e[20:]))<<16 | uint32(le.Uint16(e[26:]))
		if e[11]&0x10 == 0 {
			if le.Uint32(e[28:]) == 0 && cluster != 0 && e[11]&0x08 == 0 {
				if err := w.free(cluster); err != nil {
					return err
				}
				le.PutUint16(e[20:], 0)
				le.PutUint16(e[26:], 0)
			}
			continue
		}
		switch string(e[0:11]) {
		case ".          ":
		case "..         ":
			le.PutUint16(e[20:], uint16(parent>>16))
			le.PutUint16(e[26:], uint16(parent))
		default:
			subdirs = append(subdirs, cluster)
		}
	}
	for i, c := range clusters {
		if _, err := w.f.WriteAt(buf[int64(i)*w.clusterBytes:int64(i+1)*w.clusterBytes], w.offset(c)); err != nil {
			return fmt.Errorf("write directory cluster %d: %w", c, err)
		}
	}
	for _, c := range subdirs {
		// A folder's ".." names its parent, or cluster 0 when that is the root.
		p := self
		if self == w.root {
			p = 0
		}
		if err := w.dir(c, p); err != nil {
			return err
		}
	}
	return nil
}

// free releases a cluster chain.
func (w *fatWalker) free(first uint32) error {
	clusters, err := w.chain(first)
	if err != nil {
		return err
	}
	for _, c := range clusters {
		binary.LittleEndian.PutUint32(w.fat[c*4:], 0)
	}
	w.fatChanged = true
	return nil
}

func (w *fatWalker) offset(c uint32) int64 {
	return w.dataStart + int64(c-2)*w.clusterBytes
}
