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
	fw := p.Host.Firmware
	if fw == "" {
		fw = running
	}
	loader := "systemd-boot, UEFI"
	if fw == BIOS {
		loader = "GRUB, BIOS"
	}
	entry := fmt.Sprintf("the data disk's boot entry (%s) once `homestaker boot install` wrote it; put the disk first in the boot order and leave any rescue mode", loader)
	if p.Host.Format == plan.FormatISO {
		return "the USB stick while plugged in and first in the boot order, else " + entry
	}
	return entry + ", or nothing boots the node"
}
