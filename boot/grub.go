package boot

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
)

// GRUB's BIOS boot: the BIOS runs boot.img from the disk's first sector,
// which loads the first sector of core.img (diskboot) from the LBA patched in
// at grubKernelSector; diskboot loads the rest of core.img from its blocklist
// (at the end of its sector); core.img finds its prefix "(,gpt2)/grub" on
// the EFI system partition and reads grub.cfg there. This is what
// grub-bios-setup does, written out so that it works on image files and
// needs no device map.
const (
	grubKernelSector = 0x5c // boot.img: u64 LBA of core.img's first sector
	mbrCodeBytes     = 440  // boot code; the disk signature and partition table follow
	blocklistOffset  = 512 - 12
	// grubKernelSegment is where diskboot loads the rest of core.img
	// (GRUB_BOOT_I386_PC_KERNEL_SEG + 0x20: right after its own sector).
	grubKernelSegment = 0x820
	biosSector        = 512
)

// GRUBPrefix is the prefix core.img must be made with: the second
// partition (the EFI system partition) of the disk the BIOS booted from.
const GRUBPrefix = "(,gpt2)/grub"

// biosCode is GRUB's boot code prepared for one disk.
type biosCode struct {
	mbr  []byte // the first mbrCodeBytes of sector 0
	core []byte // core.img, padded to whole sectors
}

// prepareBIOS patches boot.img and core.img for a BIOS boot partition
// starting at byte partStart with partSize bytes.
func prepareBIOS(bootImg, coreImg []byte, partStart, partSize uint64) (biosCode, error) {
	if len(bootImg) != biosSector || !bytes.Equal(bootImg[510:], []byte{0x55, 0xaa}) {
		return biosCode{}, fmt.Errorf("boot.img has %d bytes and no boot signature; want GRUB's 512-byte i386-pc boot.img", len(bootImg))
	}
	if len(coreImg) < 2*biosSector {
		return biosCode{}, fmt.Errorf("core.img has only %d bytes; want one made by grub-mkimage -O i386-pc", len(coreImg))
	}
	core := append([]byte(nil), coreImg...)
	if r := len(core) % biosSector; r != 0 {
		core = append(core, make([]byte, biosSector-r)...)
	}
	if uint64(len(core)) > partSize {
		return biosCode{}, fmt.Errorf("core.img has %d bytes, more than the BIOS boot partition's %d", len(core), partSize)
	}
	sectors := len(core) / biosSector
	if sectors-1 > 0xffff {
		return biosCode{}, errors.New("core.img is too big for one blocklist entry")
	}
	first := partStart / biosSector
	bl := core[blocklistOffset:biosSector]
	binary.LittleEndian.PutUint64(bl[0:8], first+1)
	binary.LittleEndian.PutUint16(bl[8:10], uint16(sectors-1))
	binary.LittleEndian.PutUint16(bl[10:12], grubKernelSegment)
	mbr := append([]byte(nil), bootImg[:mbrCodeBytes]...)
	binary.LittleEndian.PutUint64(mbr[grubKernelSector:], first)
	return biosCode{mbr: mbr, core: core}, nil
}

// checkProtectiveMBR makes sure sector 0 of f is a GPT disk's protective MBR,
// whose boot code may be replaced.
func checkProtectiveMBR(sector0 []byte) error {
	if len(sector0) < biosSector || !bytes.Equal(sector0[510:512], []byte{0x55, 0xaa}) || sector0[446+4] != 0xee {
		return errors.New("sector 0 is not a GPT protective MBR")
	}
	return nil
}

// writeBIOS writes core.img into the BIOS boot partition, then boot.img's
// code into sector 0 (keeping the disk signature and partition table), so
// the MBR never points at a core.img that is not there yet.
func writeBIOS(diskPath string, c biosCode, partStart uint64) error {
	f, err := os.OpenFile(diskPath, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", diskPath, err)
	}
	defer f.Close()
	sector0 := make([]byte, biosSector)
	if _, err := f.ReadAt(sector0, 0); err != nil {
		return fmt.Errorf("read sector 0 of %s: %w", diskPath, err)
	}
	if err := checkProtectiveMBR(sector0); err != nil {
		return fmt.Errorf("%s: %w", diskPath, err)
	}
	if _, err := f.WriteAt(c.core, int64(partStart)); err != nil {
		return fmt.Errorf("write core.img to %s at byte %d: %w", diskPath, partStart, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("flush %s: %w", diskPath, err)
	}
	if _, err := f.WriteAt(c.mbr, 0); err != nil {
		return fmt.Errorf("write the boot code to sector 0 of %s: %w", diskPath, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("flush %s: %w", diskPath, err)
	}
	return f.Close()
}
