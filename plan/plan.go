// Package plan owns homestaker's one typed value: the Plan a staker's answers
// produce. It is pure data (JSON, versioned, no secret material) with its
// defaults, its validation (every problem with its field path) and the
// client catalogue rules. It does no I/O.
package plan

// CurrentVersion is the answers-file format version this homestaker writes.
const CurrentVersion = 1

// Arch is a CPU architecture of the node.
type Arch string

// Architectures a node can have.
const (
	ArchX86_64  Arch = "x86_64"
	ArchAarch64 Arch = "aarch64"
)

// Board is the kind of machine: a generic PC/server or a Raspberry Pi 4.
type Board string

// Boards homestaker knows.
const (
	BoardGeneric Board = "generic"
	BoardRPi4    Board = "rpi4"
)

// Format is the RAM-resident image the node boots from.
type Format string

// Output formats.
const (
	FormatKexec Format = "kexec"
	FormatISO   Format = "iso"
	// FormatSD is a Raspberry Pi 4's SD card: its boot partition holds the
	// firmware, the kernel and the same RAM-resident initrd as a kexec tree.
	FormatSD Format = "sd"
)

// Firmware is how the node's machine starts a boot loader: the boot entry on
// the data disk uses systemd-boot on UEFI and GRUB on BIOS machines.
type Firmware string

// Firmware kinds.
const (
	FirmwareUEFI Firmware = "uefi"
	FirmwareBIOS Firmware = "bios"
)

// Network is an Ethereum network.
type Network string

// Networks offered (Holesky was shut down in 2025).
const (
	Mainnet Network = "mainnet"
	Hoodi   Network = "hoodi"
	Sepolia Network = "sepolia"
)

// Filesystem is the data partition's filesystem.
type Filesystem string

// Filesystems the data disk can have.
const (
	Ext4  Filesystem = "ext4"
	XFS   Filesystem = "xfs"
	Btrfs Filesystem = "btrfs"
)

// Plan is everything homestaker needs to build one node: the answers file.
type Plan struct {
	Version  int      `json:"version"`
	Host     Host     `json:"host"`
	Ethereum Ethereum `json:"ethereum"`
	Disk     Disk     `json:"disk"`
	SSH      SSH      `json:"ssh"`
	Secrets  Secrets  `json:"secrets"`
}

// Host describes the machine and the image it boots.
type Host struct {
	Name     string `json:"name"`
	Timezone string `json:"timezone,omitempty"`
	Arch     Arch   `json:"arch,omitempty"`
	Board    Board  `json:"board,omitempty"`
	Format   Format `json:"format,omitempty"`
	// Firmware picks the boot loader of the boot entry on the data disk;
	// empty means the firmware of the machine homestaker runs on.
	Firmware Firmware `json:"firmware,omitempty"`
	// MemoryBytes is the node's RAM, when known (detected by the wizard).
	// It only feeds warnings.
	MemoryBytes uint64 `json:"memoryBytes,omitempty"`
}

// Ethereum is the choice of network and clients.
type Ethereum struct {
	Network           Network   `json:"network,omitempty"`
	Execution         string    `json:"execution"`
	Consensus         string    `json:"consensus"`
	CheckpointSyncURL string    `json:"checkpointSyncUrl,omitempty"`
	Validator         Validator `json:"validator"`
	MevBoost          MevBoost  `json:"mevBoost"`
}

// Validator configures the validator client that pairs with the consensus client.
type Validator struct {
	Enable       bool   `json:"enable"`
	FeeRecipient string `json:"feeRecipient,omitempty"`
	Graffiti     string `json:"graffiti,omitempty"`
	// KeystoreDir is the validator_keys folder a deposit tool wrote
	// (keystore-m_12381_3600_*.json, optionally deposit_data-*.json).
	KeystoreDir string `json:"keystoreDir,omitempty"`
	// PasswordFile holds the keystores' password (a trailing newline is not
	// part of it). Only the path is kept here, never the password.
	PasswordFile string `json:"passwordFile,omitempty"`
	// SlashingProtection is an EIP-3076 interchange file from the machine
	// the keys ran on before.
	SlashingProtection string `json:"slashingProtection,omitempty"`
	// Doppelganger keeps the validator from signing for its first epochs
	// while it checks that no other machine runs the same keys. Default on.
	Doppelganger *bool `json:"doppelganger,omitempty"`
}

// DoppelgangerOn reports whether doppelganger protection is on (the default).
func (v Validator) DoppelgangerOn() bool { return v.Doppelganger == nil || *v.Doppelganger }

// MevBoost configures mev-boost and the relays it asks for blocks.
type MevBoost struct {
	Enable bool     `json:"enable"`
	Relays []string `json:"relays,omitempty"`
}

// Disk is the data disk: the only persistent storage of the node.
type Disk struct {
	// Device is the disk to erase, preferably a /dev/disk/by-id path.
	Device     string     `json:"device"`
	Filesystem Filesystem `json:"filesystem,omitempty"`
	// SizeBytes is the disk's size, when known (detected by the wizard).
	// It only feeds warnings.
	SizeBytes uint64 `json:"sizeBytes,omitempty"`
}

// SSH is how the staker reaches the node.
type SSH struct {
	AuthorizedKeys []string `json:"authorizedKeys"`
	// HostKey is the public half of the node's SSH host key
	// ("ssh-ed25519 AAAA…"), filled in when homestaker generates it.
	HostKey string `json:"hostKey,omitempty"`
}

// Secrets lists who, besides the host itself, can open the host's secrets.
type Secrets struct {
	AdminRecipients []string `json:"adminRecipients,omitempty"`
}
