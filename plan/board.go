package plan

import "fmt"

// RPi4MaxMemoryBytes is the RAM of the largest Raspberry Pi 4 (8 GB; the
// board also comes with 1, 2 and 4 GB).
const RPi4MaxMemoryBytes = 8 << 30

// NodeMemory is the RAM the node's warnings are judged against: the
// detected RAM when the wizard ran on the node itself (host.memoryBytes),
// else, for a Raspberry Pi 4, the most a Pi 4 has (assumed is then true).
// 0 when unknown.
func (p Plan) NodeMemory() (bytes uint64, assumed bool) {
	if p.Host.MemoryBytes > 0 {
		return p.Host.MemoryBytes, false
	}
	if p.Host.Board == BoardRPi4 {
		return RPi4MaxMemoryBytes, true
	}
	return 0, false
}

// boardFormat refuses a boot format the board cannot boot: a Raspberry Pi
// 4's firmware boots neither an EFI ISO nor anything from a USB stick
// without a boot partition, and an SD-card image is made for a Pi 4 only.
func (p Plan) boardFormat(errs *Problems) {
	switch {
	case p.Host.Board == BoardRPi4 && p.Host.Format == FormatISO:
		errs.add("host.format", "a Raspberry Pi 4 does not boot an EFI ISO; use \"sd\" (the Pi's default: an SD card that boots the node into RAM) or \"kexec\" from a Linux already running on the Pi")
	case p.Host.Board != BoardRPi4 && p.Host.Format == FormatSD:
		errs.add("host.format", "the SD-card image is made for a Raspberry Pi 4 (host.board \"rpi4\"); a PC boots \"kexec\" or \"iso\"")
	}
}

// boardRAMWarnings warns when the chosen clients need more RAM than a
// Raspberry Pi 4 has once the system, which lives in RAM too, is counted.
func (p Plan) boardRAMWarnings(c *Catalogue, warns *Problems, el, cl *Client) {
	if p.Host.Board != BoardRPi4 || el == nil || cl == nil {
		return
	}
	ram, assumed := p.NodeMemory()
	need := uint64(el.RAMGiB+cl.RAMGiB) << 30
	if need <= ram {
		return
	}
	of := fmt.Sprintf("this Pi's %d GiB", ram>>30)
	if assumed {
		of = fmt.Sprintf("the %d GiB a Raspberry Pi 4 has at most", ram>>30)
	}
	warns.add("ethereum.consensus", "%s (~%d GiB) and %s (~%d GiB) need about %d GiB of RAM (mainnet figures, as of %s), more than %s, and the system itself also lives in RAM: on a Pi run a testnet with the lightest clients (%s with %s)",
		el.Title, el.RAMGiB, cl.Title, cl.RAMGiB, need>>30, el.AsOf, of,
		titles(c.LightestClients(Execution, p.Host.Arch)), titles(c.LightestClients(Consensus, p.Host.Arch)))
}

// LightestClients lists the clients of a kind that run on arch and need the
// least RAM (several when they tie), in catalogue order: what a Raspberry
// Pi 4 can run, and what "pick for me" picks from there.
func (c *Catalogue) LightestClients(kind Kind, arch Arch) []Client {
	var out []Client
	for _, cl := range c.ClientsFor(kind, arch) {
		switch {
		case len(out) == 0 || cl.RAMGiB < out[0].RAMGiB:
			out = []Client{cl}
		case cl.RAMGiB == out[0].RAMGiB:
			out = append(out, cl)
		}
	}
	return out
}

// titles joins client titles with "or".
func titles(cs []Client) string {
	var s string
	for i, c := range cs {
		switch {
		case i == 0:
		case i == len(cs)-1:
			s += " or "
		default:
			s += ", "
		}
		s += c.Title
	}
	return s
}
