package ui

import "github.com/homestaker/homestaker/plan"

// formatOptions are the boot formats the board boots: a Raspberry Pi 4
// boots its SD card (or a kexec from a Linux already on it), never an EFI
// ISO; a PC boots a kexec tree or an ISO.
func formatOptions(board plan.Board) []Option {
	if board == plan.BoardRPi4 {
		return []Option{
			{"SD card: write it (`homestaker flash`) and boot the Pi from it", string(plan.FormatSD)},
			{"kexec tree: boot it now from the Linux running on this Pi", string(plan.FormatKexec)},
		}
	}
	return []Option{
		{"kexec tree: boot it now from this running system", string(plan.FormatKexec)},
		{"ISO image: boot from a USB stick", string(plan.FormatISO)},
	}
}

// formatFor keeps the chosen format when the board boots it, else gives
// the board's default (sd for a Pi, kexec for a PC).
func formatFor(format string, board plan.Board) string {
	for _, o := range formatOptions(board) {
		if o.Value == format {
			return format
		}
	}
	return formatOptions(board)[0].Value
}

// recommendedFor is the default client of a kind for a board: on a
// Raspberry Pi 4 the first minority client among the lightest, elsewhere
// the first minority client that runs on the architecture.
func recommendedFor(cat *plan.Catalogue, kind plan.Kind, arch plan.Arch, board plan.Board) string {
	if board != plan.BoardRPi4 {
		return recommended(cat, kind, arch)
	}
	light := cat.LightestClients(kind, arch)
	for _, c := range light {
		if !c.Supermajority {
			return c.Name
		}
	}
	if len(light) > 0 {
		return light[0].Name
	}
	return recommended(cat, kind, arch)
}
