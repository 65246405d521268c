package boot

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"

	"github.com/homestaker/homestaker/plan"
)

// KernelInfo is what the header of a kernel image says about it.
type KernelInfo struct {
	// Arch is the architecture the kernel runs on ("x86_64", "aarch64";
	// "i386" for a 32-bit x86 kernel).
	Arch plan.Arch
	// Format describes the image for the user ("x86 bzImage, boot
	// protocol 2.15").
	Format string
	// Bytes is the file's size.
	Bytes uint64
	// MemoryBytes is the RAM the kernel occupies while it starts: the
	// header's init_size (x86) or image_size (arm64), or the file's size
	// when that is larger.
	MemoryBytes uint64
	// Unloadable, when set, says why kexec_file_load cannot load this
	// kernel although its architecture is right.
	Unloadable string
}

// Offsets in the x86 boot protocol's setup header and the arm64 Image
// header (Documentation/arch/x86/boot.rst, Documentation/arch/arm64/booting.rst).
const (
	x86HdrMagicOff   = 0x202 // "HdrS"
	x86VersionOff    = 0x206 // boot protocol version, u16
	x86XLoadFlagsOff = 0x236 // xloadflags, u16, protocol 2.12+
	x86InitSizeOff   = 0x260 // init_size, u32, protocol 2.10+
	xlfKernel64      = 1 << 0
	xlfAbove4G       = 1 << 1
	arm64MagicOff    = 0x38 // "ARM\x64"
	arm64SizeOff     = 0x10 // image_size, u64
)

// InspectKernel reads the header of the kernel image at path: an x86
// bzImage ("HdrS" at 0x202) or an arm64 Image ("ARM\x64" at 0x38).
func InspectKernel(path string) (KernelInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return KernelInfo{}, fmt.Errorf("open the kernel: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return KernelInfo{}, fmt.Errorf("kernel %s: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		return KernelInfo{}, fmt.Errorf("kernel %s is not a regular file", path)
	}
	hdr := make([]byte, 0x270)
	n, err := io.ReadFull(f, hdr)
	if err != nil && err != io.ErrUnexpectedEOF {
		return KernelInfo{}, fmt.Errorf("read the kernel %s: %w", path, err)
	}
	info, err := parseKernelHeader(hdr[:n], uint64(st.Size()))
	if err != nil {
		return KernelInfo{}, fmt.Errorf("%s: %w", path, err)
	}
	return info, nil
}

func parseKernelHeader(hdr []byte, size uint64) (KernelInfo, error) {
	info := KernelInfo{Bytes: size, MemoryBytes: size}
	if len(hdr) >= x86HdrMagicOff+4 && string(hdr[x86HdrMagicOff:x86HdrMagicOff+4]) == "HdrS" {
		version := uint16(0)
		if len(hdr) >= x86VersionOff+2 {
			version = binary.LittleEndian.Uint16(hdr[x86VersionOff:])
		}
		info.Format = fmt.Sprintf("x86 bzImage, boot protocol %d.%02d", version>>8, version&0xff)
		info.Arch = "i386"
		if version >= 0x020c && len(hdr) >= x86XLoadFlagsOff+2 {
			flags := binary.LittleEndian.Uint16(hdr[x86XLoadFlagsOff:])
			if flags&xlfKernel64 != 0 {
				info.Arch = plan.ArchX86_64
				if flags&xlfAbove4G == 0 {
					info.Unloadable = "its header says it cannot be loaded above 4 GiB, which kexec_file_load needs"
				}
			}
		} else {
			info.Unloadable = "its boot protocol is older than 2.12, which kexec_file_load needs"
		}
		if version >= 0x020a && len(hdr) >= x86InitSizeOff+4 {
			if init := uint64(binary.LittleEndian.Uint32(hdr[x86InitSizeOff:])); init > info.MemoryBytes {
				info.MemoryBytes = init
			}
		}
		return info, nil
	}
	if len(hdr) >= arm64MagicOff+4 && string(hdr[arm64MagicOff:arm64MagicOff+4]) == "ARM\x64" {
		info.Arch = plan.ArchAarch64
		info.Format = "arm64 Image"
		if img := binary.LittleEndian.Uint64(hdr[arm64SizeOff:]); img > info.MemoryBytes {
			info.MemoryBytes = img
		}
		return info, nil
	}
	if len(hdr) >= 8 && string(hdr[:2]) == "MZ" && string(hdr[4:8]) == "zimg" {
		return info, fmt.Errorf("%w: a compressed EFI zboot image, which homestaker does not load; use the uncompressed Image", errNotKernel)
	}
	return info, fmt.Errorf("%w: neither an x86 bzImage (\"HdrS\" at 0x202) nor an arm64 Image (\"ARM\\x64\" at 0x38)", errNotKernel)
}
