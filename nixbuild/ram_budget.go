package nixbuild

import (
	"fmt"
	"strings"
)

// EstimatedInitrdBytes stands in for the initrd's size before the first
// build: a node's system with two clients, zstd-packed. A rough figure; the
// build measures the real one and warns with it.
const EstimatedInitrdBytes = 1 * gib

// RAMBudget is how a RAM-resident node's memory divides: the image (the
// initrd, which stays in RAM), the running system, and what is left for
// the Ethereum clients.
type RAMBudget struct {
	// RAMBytes is the node's RAM; RAMNote says where the figure comes from
	// ("detected", "the most a Raspberry Pi 4 has").
	RAMBytes uint64
	RAMNote  string
	// InitrdBytes is the initrd's size; Measured is false for the estimate.
	InitrdBytes uint64
	Measured    bool
	// ClientsBytes is what the clients need; Clients names them.
	ClientsBytes uint64
	Clients      string
}

// Left is the RAM left for the clients (negative when the system alone
// does not fit).
func (b RAMBudget) Left() int64 {
	return int64(b.RAMBytes) - int64(b.InitrdBytes) - OSRAMBytes
}

// Text says it in one line for the review.
func (b RAMBudget) Text() string {
	if b.RAMBytes == 0 {
		return ""
	}
	initrd := "initrd " + FormatBytes(b.InitrdBytes)
	if !b.Measured {
		initrd = "initrd ~" + FormatBytes(b.InitrdBytes) + " (estimate until the build measures it)"
	}
	left := "nothing"
	if l := b.Left(); l > 0 {
		left = "~" + FormatBytes(uint64(l))
	}
	var s strings.Builder
	fmt.Fprintf(&s, "%s", FormatBytes(b.RAMBytes))
	if b.RAMNote != "" {
		fmt.Fprintf(&s, " (%s)", b.RAMNote)
	}
	fmt.Fprintf(&s, ": %s + system ~%s, leaving %s for the clients", initrd, FormatBytes(OSRAMBytes), left)
	if b.ClientsBytes > 0 {
		fmt.Fprintf(&s, ", which need ~%s (%s)", FormatBytes(b.ClientsBytes), b.Clients)
		if l := b.Left(); l < int64(b.ClientsBytes) {
			s.WriteString(": too little")
		}
	}
	return s.String()
}
