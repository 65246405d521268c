// Package disk owns homestaker's data disk: finding block devices and deciding
// whether one is safe to erase, computing the partition layout in bytes,
// rendering that layout as a disko declaration, and writing it to a disk or an
// image file (GPT with go-diskfs, filesystems with the standard mkfs tools).
//
// The data disk holds three GPT partitions: a 1 MiB BIOS boot partition
// (BIOSPartLabel, for GRUB's core image on BIOS machines), an EFI system
// partition (BootPartLabel, vfat, mounted by the node at BootMountPoint) that
// holds the node's kernel, initrd and boot loader configuration so the
// machine boots the node again after a power cut, and the data partition
// filling the rest. The data filesystem carries the label FilesystemLabel and
// is mounted by the node at DataMountPoint; it holds one folder per client
// and secrets/ssh, where the host's SSH key lives (SSHHostKeyPath).
package disk

import (
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"strings"

	"github.com/homestaker/homestaker/plan"
)

// Names and places the node's NixOS configuration relies on. They are part of
// the contract between this package, disko.nix and the generated modules.
const (
	// DiskName is the disk's attribute name in disko.nix (disko.devices.disk.<DiskName>).
	DiskName = "data"
	// DataPartitionName is the data partition's attribute name in disko.nix.
	DataPartitionName = "data"
	// DataPartLabel is the GPT partition label, following disko's
	// disk-<disk>-<part> convention: /dev/disk/by-partlabel/disk-data-data.
	DataPartLabel = "disk-" + DiskName + "-" + DataPartitionName
	// BIOSPartitionName is the BIOS boot partition's attribute name in disko.nix.
	BIOSPartitionName = "bios"
	// BIOSPartLabel is the BIOS boot partition's GPT label: GRUB's core image
	// lives in it on BIOS machines.
	BIOSPartLabel = "disk-" + DiskName + "-" + BIOSPartitionName
	// BootPartitionName is the EFI system partition's attribute name in disko.nix.
	BootPartitionName = "boot"
	// BootPartLabel is the EFI system partition's GPT label:
	// /dev/disk/by-partlabel/disk-data-boot.
	BootPartLabel = "disk-" + DiskName + "-" + BootPartitionName
	// BootFilesystemLabel is the EFI system partition's FAT label (at most 11
	// characters, upper case).
	BootFilesystemLabel = "HSBOOT"
	// BootMountPoint is where the node mounts the EFI system partition.
	BootMountPoint = "/boot"
	// FilesystemLabel is the data filesystem's label (at most 12 characters,
	// the limit of xfs): /dev/disk/by-label/homestaker.
	FilesystemLabel = "homestaker"
	// DataMountPoint is where the node mounts the data filesystem.
	DataMountPoint = "/var/lib"
	// BuildStoreDir is the folder, relative to the data filesystem's root,
	// that holds the build's Nix store when install builds on the data
	// disk (--store-on-data-disk): bind-mounted at /nix on the installing
	// system, removed by the node at boot (data-disk.nix), where it shows
	// as DataMountPoint + "/" + BuildStoreDir.
	BuildStoreDir = ".homestaker-nix"
	// SecretsDir is the folder, relative to the filesystem root, for secrets.
	SecretsDir = "secrets"
	// SSHDir is the folder, relative to the filesystem root, for the host's SSH keys.
	SSHDir = "secrets/ssh"
	// SSHHostKeyPath is the host's ed25519 key, relative to the filesystem
	// root. openssh and sops-nix read it at DataMountPoint + "/" + SSHHostKeyPath.
	SSHHostKeyPath = SSHDir + "/ssh_host_ed25519_key"
)

// Alignment is where partitions start and end: every boundary is a multiple of 1 MiB.
const Alignment = 1 << 20

// BIOSBootBytes is the BIOS boot partition's size: GRUB's core image needs
// about 100 KiB of it.
const BIOSBootBytes = 1 << 20

// BootBytes is the EFI system partition's size: room for two generations of
// the node's kernel and initrd (the whole system, about 0.5–0.9 GiB each)
// and the boot loaders.
const BootBytes = 2 << 30

// MinBootBytes is the smallest EFI system partition Validate accepts.
const MinBootBytes = 256 << 20

// MinDataBytes is the smallest data partition homestaker creates. btrfs needs
// about 110 MiB and xfs 300 MiB; anything below 1 GiB is surely the wrong disk.
const MinDataBytes = 1 << 30

// GPT type GUIDs homestaker writes, with the sgdisk codes disko uses.
const (
	TypeLinuxFilesystem     = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
	TypeCodeLinuxFilesystem = "8300"
	TypeEFISystem           = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
	TypeCodeEFISystem       = "EF00"
	TypeBIOSBoot            = "21686148-6449-6E6F-744E-656564454649"
	TypeCodeBIOSBoot        = "EF02"
)

// VFAT is the EFI system partition's filesystem (FAT32). Only the boot
// partition has it; the data filesystem is one of plan's.
const VFAT plan.Filesystem = "vfat"

// gptEntriesBytes is the size of a GPT partition entry array (128 entries of
// 128 bytes), which sits after the header at the start and before the backup
// header at the end of the disk.
const gptEntriesBytes = 128 * 128

// Layout is the data disk as it will be written: partitions in bytes, their
// filesystems and the folders on them. A Layout from New is declared but not
// placed (SizeBytes 0): it renders disko.nix. Place computes the bytes for a
// concrete disk.
type Layout struct {
	// Device is the disk as the plan names it, preferably /dev/disk/by-id/….
	Device string
	// SizeBytes and SectorSize describe the disk; both are 0 until Place.
	SizeBytes  uint64
	SectorSize uint64
	Partitions []Partition
}

// Partition is one GPT partition.
type Partition struct {
	// Name is the partition's attribute name in disko.nix.
	Name string
	// Label is the GPT partition name (disk-<disk>-<part>).
	Label string
	// TypeGUID is the GPT partition type; TypeCode the same as an sgdisk code.
	TypeGUID string
	TypeCode string
	// Fill makes the partition take the rest of the disk (disko "100%").
	// Otherwise SizeBytes is fixed.
	Fill bool
	// StartBytes and SizeBytes place the partition; set by Place (and by
	// New for SizeBytes of fixed partitions).
	StartBytes uint64
	SizeBytes  uint64
	Filesystem Filesystem
}

// EndBytes is the first byte after the partition.
func (p Partition) EndBytes() uint64 { return p.StartBytes + p.SizeBytes }

// Filesystem is what a partition holds. A Filesystem with an empty Type is
// no filesystem at all (the BIOS boot partition's raw space).
type Filesystem struct {
	Type       plan.Filesystem
	Label      string
	MountPoint string
	Folders    []Folder
}

// Folder is a directory created on a new filesystem.
type Folder struct {
	// Path is relative to the filesystem root, with "/" separators.
	Path string
	Mode fs.FileMode
	// Subvolume makes the folder a btrfs subvolume (btrfs only).
	Subvolume bool
}

var folderName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)

// New declares the data disk a plan asks for: the BIOS boot partition, the
// EFI system partition and one data partition filling the rest of the disk,
// with the plan's filesystem (ext4 when empty), a folder (on btrfs a
// subvolume) for each enabled client and secrets/ssh. The result is not
// placed; call Place with the disk's size.
func New(p plan.Plan) (Layout, error) {
	fsType := p.Disk.Filesystem
	if fsType == "" {
		fsType = plan.Ext4
	}
	switch fsType {
	case plan.Ext4, plan.XFS, plan.Btrfs:
	default:
		return Layout{}, fmt.Errorf("disk.filesystem: %q is not one of ext4, xfs, btrfs", fsType)
	}
	if strings.TrimSpace(p.Disk.Device) == "" {
		return Layout{}, errors.New("disk.device: empty; name the data disk, e.g. /dev/disk/by-id/nvme-…")
	}
	sub := fsType == plan.Btrfs
	var folders []Folder
	add := func(field, role, client string) error {
		if !folderName.MatchString(client) {
			return fmt.Errorf("%s: %q cannot name a folder (use lower-case letters, digits and -)", field, client)
		}
		folders = append(folders, Folder{Path: role + "-" + client, Mode: 0o755, Subvolume: sub})
		return nil
	}
	e := p.Ethereum
	if e.Execution != "" {
		if err := add("ethereum.execution", "execution", e.Execution); err != nil {
			return Layout{}, err
		}
	}
	if e.Consensus != "" {
		if err := add("ethereum.consensus", "consensus", e.Consensus); err != nil {
			return Layout{}, err
		}
		if e.Validator.Enable {
			if err := add("ethereum.consensus", "validator", e.Consensus); err != nil {
				return Layout{}, err
			}
		}
	}
	folders = append(folders,
		Folder{Path: SecretsDir, Mode: 0o700},
		Folder{Path: SSHDir, Mode: 0o700},
	)
	return Layout{
		Device: p.Disk.Device,
		Partitions: []Partition{{
			Name:      BIOSPartitionName,
			Label:     BIOSPartLabel,
			TypeGUID:  TypeBIOSBoot,
			TypeCode:  TypeCodeBIOSBoot,
			SizeBytes: BIOSBootBytes,
		}, {
			Name:      BootPartitionName,
			Label:     BootPartLabel,
			TypeGUID:  TypeEFISystem,
			TypeCode:  TypeCodeEFISystem,
			SizeBytes: BootBytes,
			Filesystem: Filesystem{
				Type:       VFAT,
				Label:      BootFilesystemLabel,
				MountPoint: BootMountPoint,
			},
		}, {
			Name:     DataPartitionName,
			Label:    DataPartLabel,
			TypeGUID: TypeLinuxFilesystem,
			TypeCode: TypeCodeLinuxFilesystem,
			Fill:     true,
			Filesystem: Filesystem{
				Type:       fsType,
				Label:      FilesystemLabel,
				MountPoint: DataMountPoint,
				Folders:    folders,
			},
		}},
	}, nil
}

// Data is the data partition: the one that fills the disk.
func (l Layout) Data() Partition {
	for _, p := range l.Partitions {
		if p.Name == DataPartitionName {
			return p
		}
	}
	return Partition{}
}

// DataNumber is the data partition's 1-based number (0: none).
func (l Layout) DataNumber() int {
	for i, p := range l.Partitions {
		if p.Name == DataPartitionName {
			return i + 1
		}
	}
	return 0
}

// Boot is the EFI system partition and its 1-based number; ok is false when
// the layout has none.
func (l Layout) Boot() (p Partition, number int, ok bool) {
	for i, p := range l.Partitions {
		if p.Name == BootPartitionName {
			return p, i + 1, true
		}
	}
	return Partition{}, 0, false
}

// FirstUsableByte and LastUsableByte bound where partitions may lie on a disk
// of the given size and sector size (GPT header and entry arrays excluded).
func usableRange(sizeBytes, sectorSize uint64) (first, end uint64) {
	first = 2*sectorSize + gptEntriesBytes // protective MBR, header, entries
	end = sizeBytes - sectorSize - gptEntriesBytes
	return first, end
}

func alignUp(v uint64) uint64   { return (v + Alignment - 1) / Alignment * Alignment }
func alignDown(v uint64) uint64 { return v / Alignment * Alignment }

// Place computes every partition's start and size in bytes for a disk of
// sizeBytes with logical sectors of sectorSize (512 or 4096) and validates the
// result.
func (l Layout) Place(sizeBytes, sectorSize uint64) (Layout, error) {
	if sectorSize != 512 && sectorSize != 4096 {
		return Layout{}, fmt.Errorf("sector size %d: homestaker handles 512- and 4096-byte sectors", sectorSize)
	}
	if sizeBytes%sectorSize != 0 {
		return Layout{}, fmt.Errorf("disk size %d is not a multiple of the %d-byte sector", sizeBytes, sectorSize)
	}
	if sizeBytes < 4*Alignment {
		return Layout{}, fmt.Errorf("disk size %s is too small for a GPT data disk", humanBytes(sizeBytes))
	}
	var fixed uint64
	for _, p := range l.Partitions {
		if !p.Fill {
			fixed += p.SizeBytes
		}
	}
	if need := fixed + MinDataBytes + 2*Alignment; sizeBytes < need {
		return Layout{}, fmt.Errorf("disk size %s is smaller than the minimum of %s (%s of boot partitions and %s of data): choose a bigger disk",
			humanBytes(sizeBytes), humanBytes(need), humanBytes(fixed), humanBytes(MinDataBytes))
	}
	out := l
	out.SizeBytes, out.SectorSize = sizeBytes, sectorSize
	out.Partitions = append([]Partition(nil), l.Partitions...)
	first, end := usableRange(sizeBytes, sectorSize)
	next := alignUp(first)
	for i := range out.Partitions {
		p := &out.Partitions[i]
		p.StartBytes = next
		if p.Fill {
			if i != len(out.Partitions)-1 {
				return Layout{}, fmt.Errorf("partition %q fills the disk but is not the last one", p.Name)
			}
			if e := alignDown(end); e > next {
				p.SizeBytes = e - next
			} else {
				p.SizeBytes = 0
			}
		}
		next = alignUp(p.EndBytes())
	}
	return out, out.Validate()
}

// Validate checks a placed layout: partitions aligned, in order, not
// overlapping, inside the disk's usable area, big enough, with names, labels,
// types and filesystems homestaker can write.
func (l Layout) Validate() error {
	if l.SizeBytes == 0 || l.SectorSize == 0 {
		return errors.New("layout is not placed on a disk yet (size unknown)")
	}
	if len(l.Partitions) == 0 {
		return errors.New("layout has no partitions")
	}
	if len(l.Partitions) > 128 {
		return errors.New("layout has more than 128 partitions")
	}
	first, end := usableRange(l.SizeBytes, l.SectorSize)
	var prevEnd uint64
	names := map[string]bool{}
	for i, p := range l.Partitions {
		where := fmt.Sprintf("partition %d (%s)", i+1, p.Label)
		if p.Name == "" || names[p.Name] {
			return fmt.Errorf("%s: name %q is empty or used twice", where, p.Name)
		}
		names[p.Name] = true
		if p.Label == "" || len([]rune(p.Label)) > 36 {
			return fmt.Errorf("%s: GPT label must have 1 to 36 characters", where)
		}
		if _, err := parseGUID(p.TypeGUID); err != nil {
			return fmt.Errorf("%s: type: %w", where, err)
		}
		if p.StartBytes%Alignment != 0 || p.SizeBytes%Alignment != 0 {
			return fmt.Errorf("%s: start %d and size %d must be multiples of 1 MiB", where, p.StartBytes, p.SizeBytes)
		}
		if p.StartBytes < first || p.EndBytes() > end {
			return fmt.Errorf("%s: bytes %d–%d lie outside the usable area %d–%d of a %s disk",
				where, p.StartBytes, p.EndBytes(), first, end, humanBytes(l.SizeBytes))
		}
		if p.StartBytes < prevEnd {
			return fmt.Errorf("%s: starts at byte %d, inside the previous partition (ends at %d)", where, p.StartBytes, prevEnd)
		}
		prevEnd = p.EndBytes()
		if min := p.minBytes(); p.SizeBytes < min {
			return fmt.Errorf("%s: %s is smaller than the minimum of %s: choose a bigger disk",
				where, humanBytes(p.SizeBytes), humanBytes(min))
		}
		if err := p.validateContent(); err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
	}
	return nil
}

// minBytes is the smallest size partition p may have.
func (p Partition) minBytes() uint64 {
	switch {
	case strings.EqualFold(p.TypeGUID, TypeBIOSBoot):
		return BIOSBootBytes
	case p.Filesystem.Type == VFAT:
		return MinBootBytes
	}
	return MinDataBytes
}

// validateContent checks that a partition's type and filesystem go together:
// the BIOS boot partition holds no filesystem, the EFI system partition a
// FAT filesystem without folders, every other partition a data filesystem.
func (p Partition) validateContent() error {
	f := p.Filesystem
	switch {
	case strings.EqualFold(p.TypeGUID, TypeBIOSBoot):
		if f.Type != "" {
			return fmt.Errorf("a BIOS boot partition holds no filesystem, not %s", f.Type)
		}
		return nil
	case strings.EqualFold(p.TypeGUID, TypeEFISystem):
		if f.Type != VFAT {
			return fmt.Errorf("an EFI system partition holds vfat, not %q", f.Type)
		}
		if f.Label == "" || len(f.Label) > 11 || !fatLabel.MatchString(f.Label) {
			return fmt.Errorf("FAT label %q must be 1 to 11 upper-case letters, digits, - or _", f.Label)
		}
		if len(f.Folders) > 0 || !strings.HasPrefix(f.MountPoint, "/") {
			return fmt.Errorf("the EFI system partition has folders %v or mount point %q", f.Folders, f.MountPoint)
		}
		return nil
	}
	return f.validate()
}

var fatLabel = regexp.MustCompile(`^[A-Z0-9_-]+$`)

func (f Filesystem) validate() error {
	switch f.Type {
	case plan.Ext4, plan.XFS, plan.Btrfs:
	default:
		return fmt.Errorf("filesystem %q is not one of ext4, xfs, btrfs", f.Type)
	}
	if f.Label == "" || len(f.Label) > 12 || !folderName.MatchString(f.Label) {
		return fmt.Errorf("filesystem label %q must be 1 to 12 lower-case letters, digits or -", f.Label)
	}
	seen := map[string]bool{}
	for _, d := range f.Folders {
		for _, part := range strings.Split(d.Path, "/") {
			if !folderName.MatchString(part) {
				return fmt.Errorf("folder %q: %q is not a plain folder name", d.Path, part)
			}
		}
		if parent, _, ok := strings.Cut(d.Path, "/"); ok && !seen[parent] {
			return fmt.Errorf("folder %q comes before its parent %q", d.Path, parent)
		}
		if seen[d.Path] {
			return fmt.Errorf("folder %q is listed twice", d.Path)
		}
		seen[d.Path] = true
		if d.Subvolume && (f.Type != plan.Btrfs || strings.Contains(d.Path, "/")) {
			return fmt.Errorf("folder %q: only top-level folders on btrfs can be subvolumes", d.Path)
		}
		if d.Mode&^fs.ModePerm != 0 {
			return fmt.Errorf("folder %q: mode %v has more than permission bits", d.Path, d.Mode)
		}
	}
	return nil
}

// parseGUID checks a GUID in its text form.
func parseGUID(s string) (string, error) {
	ok, _ := regexp.MatchString(`^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$`, s)
	if !ok {
		return "", fmt.Errorf("%q is not a GUID", s)
	}
	return strings.ToUpper(s), nil
}

// humanBytes formats a size the way disk tools do (binary units).
func humanBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// String renders the placed layout as the partition table a user reviews.
func (l Layout) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "GPT on %s (%s, %d-byte sectors)\n", l.Device, humanBytes(l.SizeBytes), l.SectorSize)
	fmt.Fprintf(&b, "  #  %-16s %-14s %-14s %-10s %-6s %s\n", "label", "start", "end", "size", "fs", "fs label")
	for i, p := range l.Partitions {
		fsType, fsLabel := string(p.Filesystem.Type), p.Filesystem.Label
		if fsType == "" {
			fsType, fsLabel = "-", "(BIOS boot)"
		}
		fmt.Fprintf(&b, "  %d  %-16s %-14d %-14d %-10s %-6s %s\n", i+1, p.Label, p.StartBytes, p.EndBytes(),
			humanBytes(p.SizeBytes), fsType, fsLabel)
		for _, d := range p.Filesystem.Folders {
			kind := "folder"
			if d.Subvolume {
				kind = "subvolume"
			}
			fmt.Fprintf(&b, "       %s %s/%s (%04o)\n", kind, p.Filesystem.MountPoint, d.Path, uint32(d.Mode))
		}
	}
	return b.String()
}
