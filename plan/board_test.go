package plan

import (
	"strings"
	"testing"
)

func piPlan(format Format) Plan {
	return Plan{
		Version:  CurrentVersion,
		Host:     Host{Name: "pi", Board: BoardRPi4, Format: format},
		Ethereum: Ethereum{Network: Hoodi, Execution: "reth", Consensus: "nimbus"},
		Disk:     Disk{Device: "/dev/disk/by-id/usb-Samsung_T7"},
		SSH:      SSH{AuthorizedKeys: []string{"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIrAWAe8Eu8oR0nqj8sN7aHINtNpPHK2dZ4dS1IZqosR staker@laptop"}},
	}
}

func TestPiDefaultsToSD(t *testing.T) {
	cat := MustCatalogue()
	p := piPlan("").Defaults(cat)
	if p.Host.Format != FormatSD || p.Host.Arch != ArchAarch64 {
		t.Fatalf("a Pi defaults to %s/%s, want sd/aarch64", p.Host.Format, p.Host.Arch)
	}
	if r := p.Validate(cat); !r.OK() {
		t.Fatalf("a Pi with reth and nimbus on hoodi: %v", r.Errors)
	}
	pc := Plan{Host: Host{Name: "pc"}}.Defaults(cat)
	if pc.Host.Format != FormatKexec {
		t.Errorf("a PC defaults to %s", pc.Host.Format)
	}
}

func TestBoardFormat(t *testing.T) {
	cat := MustCatalogue()
	r := piPlan(FormatISO).Defaults(cat).Validate(cat)
	if !hasProblem(r.Errors, "host.format", "does not boot an EFI ISO") {
		t.Errorf("an ISO for a Pi is accepted: %v", r.Errors)
	}
	if r := piPlan(FormatKexec).Defaults(cat).Validate(cat); !r.OK() {
		t.Errorf("kexec on a Pi is refused: %v", r.Errors)
	}
	pc := piPlan(FormatSD)
	pc.Host.Board, pc.Ethereum.Execution, pc.Ethereum.Consensus = BoardGeneric, "geth", "lighthouse"
	pc = pc.Defaults(cat)
	if r := pc.Validate(cat); !hasProblem(r.Errors, "host.format", "made for a Raspberry Pi 4") {
		t.Errorf("an SD image for a PC is accepted: %v", r.Errors)
	}
}

// TestPiRAMWarnings: clients that do not fit a Pi are warned about with the
// Pi's RAM, detected or (detection ran elsewhere) the most a Pi 4 has.
func TestPiRAMWarnings(t *testing.T) {
	cat := MustCatalogue()
	p := piPlan(FormatSD)
	p.Ethereum.Consensus = "prysm"
	p = p.Defaults(cat)
	r := p.Validate(cat)
	if !hasProblem(r.Warnings, "ethereum.consensus", "the 8 GiB a Raspberry Pi 4 has at most") ||
		!hasProblem(r.Warnings, "ethereum.consensus", "Go Ethereum or Reth with Nimbus") {
		t.Errorf("reth + prysm on a Pi of unknown RAM: %v", r.Warnings)
	}
	if !hasProblem(r.Warnings, "host.memoryBytes", "8 GiB of RAM is below the 16 GiB") {
		t.Errorf("the network's RAM warning does not use the Pi's 8 GiB: %v", r.Warnings)
	}
	p.Host.MemoryBytes = 4 << 30
	if r := p.Validate(cat); !hasProblem(r.Warnings, "ethereum.consensus", "this Pi's 4 GiB") {
		t.Errorf("a detected 4 GiB Pi: %v", r.Warnings)
	}
	if got := cat.LightestClients(Consensus, ArchAarch64); len(got) != 1 || got[0].Name != "nimbus" {
		t.Errorf("lightest aarch64 consensus clients: %v", got)
	}
	if got := cat.LightestClients(Execution, ArchAarch64); len(got) != 2 {
		t.Errorf("lightest aarch64 execution clients: %v", got)
	}
}

func hasProblem(ps Problems, path, text string) bool {
	for _, p := range ps {
		if p.Path == path && strings.Contains(p.Message, text) {
			return true
		}
	}
	return false
}
