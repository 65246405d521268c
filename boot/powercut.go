package boot

import (
	"fmt"

	"github.com/homestaker/homestaker/plan"
)

// AfterPowerCut says, for the review, what boots the node again after a
// power cut or reboot, and what the staker must set for that to happen.
// running is the firmware of the machine homestaker runs on, used when the
// plan does not name one.
func AfterPowerCut(p plan.Plan, running Firmware) string {
	if p.Host.Board == plan.BoardRPi4 {
		return "the Pi boots its SD card again by itself; keep the card in"
	}
	if p.Host.Format == plan.FormatISO {
		return "the USB stick, while it is plugged in and first in the boot order; an ISO host gets no boot entry on its data disk " +
			"(its kernel and initrd live on the stick), so without the stick nothing boots the node"
	}
	if p.Host.Arch != plan.ArchX86_64 {
		return "nothing: homestaker writes boot entries on x86_64 machines only, so after a power cut the node must be kexec'd again"
	}
	fw, why := p.Host.Firmware, "host.firmware"
	if fw == "" {
		fw, why = running, "the firmware this machine booted with"
	}
	loader := "systemd-boot, UEFI"
	if fw == BIOS {
		loader = "GRUB, BIOS"
	}
	return fmt.Sprintf("the data disk's boot entry (%s, from %s), which install writes right after formatting; "+
		"put the data disk first in the boot order and leave any rescue mode (on Hetzner: deactivate the rescue system in Robot), "+
		"or nothing boots the node", loader, why)
}
