package nixbuild

import (
	"fmt"
	"strings"
)

const (
	mib = 1 << 20
	gib = 1 << 30
)

// OSRAMBytes is what the running node needs besides its image and its
// clients: kernel, systemd, journald, sshd and the files written to the
// tmpfs root. A working estimate, not a measurement.
const OSRAMBytes = 1 * gib

// bootSlackBytes is the working room the kernel needs while it unpacks
// the initrd.
const bootSlackBytes = 256 * mib

// LargeInitrdBytes is the initrd size from which boot tooling is known to
// misbehave (cpio archives near 2–4 GB get corrupted).
const LargeInitrdBytes = 2 * gib

// RAMWarning compares a RAM-resident image with the machine it will run
// on and returns a warning for the user, or "" when the RAM is enough or
// unknown (ramBytes 0). initrdBytes is the size of the initrd (for an ISO
// copied to RAM, the ISO's size); clientsBytes is what the Ethereum
// clients need. The whole operating system lives in RAM: the compressed
// store in the initrd stays resident for the life of the system, and while
// booting the packed initrd and its unpacked copy are both in memory.
func RAMWarning(initrdBytes, ramBytes, clientsBytes uint64) string {
	var warnings []string
	if initrdBytes >= LargeInitrdBytes {
		warnings = append(warnings, fmt.Sprintf(
			"The image is %s; initrds this large are known to get corrupted by boot tooling, so keep the system small (fewer packages).",
			FormatBytes(initrdBytes)))
	}
	if ramBytes == 0 {
		return strings.Join(warnings, " ")
	}
	switch {
	case 2*initrdBytes+bootSlackBytes > ramBytes:
		warnings = append(warnings, fmt.Sprintf(
			"The image is %s and the machine has %s of RAM: it cannot boot, since the system unpacks itself into RAM; use a machine with more RAM or a smaller image.",
			FormatBytes(initrdBytes), FormatBytes(ramBytes)))
	case initrdBytes+OSRAMBytes+clientsBytes > ramBytes:
		left := int64(ramBytes) - int64(initrdBytes) - OSRAMBytes
		leftText := "nothing"
		if left > 0 {
			leftText = "about " + FormatBytes(uint64(left))
		}
		warnings = append(warnings, fmt.Sprintf(
			"The system lives in RAM and takes %s of the machine's %s (image %s plus about %s to run), leaving %s for the Ethereum clients, which need about %s: choose a machine with more RAM or lighter clients, or expect the clients to be killed when memory runs out.",
			FormatBytes(initrdBytes+OSRAMBytes), FormatBytes(ramBytes), FormatBytes(initrdBytes),
			FormatBytes(OSRAMBytes), leftText, FormatBytes(clientsBytes)))
	}
	return strings.Join(warnings, " ")
}

// FormatBytes renders a size in binary units ("512 B", "1.5 MiB", "31 GiB").
func FormatBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	v := float64(n) / float64(div)
	suffix := string("KMGTPE"[exp]) + "iB"
	if v >= 10 {
		return fmt.Sprintf("%.0f %s", v, suffix)
	}
	return fmt.Sprintf("%.1f %s", v, suffix)
}
