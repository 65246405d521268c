package ui

import (
	"testing"

	"github.com/homestaker/homestaker/plan"
)

// TestPiPicksClientsThatFit: "pick for me" and the defaults on a Pi choose
// only the lightest clients (reth or geth, with nimbus), never prysm.
func TestPiPicksClientsThatFit(t *testing.T) {
	cat := plan.MustCatalogue()
	seen := map[string]bool{}
	for i := 0; i < 8; i++ {
		rnd := func(n int) int { return i % n }
		for _, v := range []bool{false, true} {
			seen[pickClientFor(cat, plan.Execution, plan.ArchAarch64, plan.BoardRPi4, v, rnd)] = true
			seen[pickClientFor(cat, plan.Consensus, plan.ArchAarch64, plan.BoardRPi4, v, rnd)] = true
		}
	}
	for name := range seen {
		if name != "reth" && name != "geth" && name != "nimbus" {
			t.Errorf("pick for me on a Pi chose %s", name)
		}
	}
	if !seen["nimbus"] {
		t.Errorf("pick for me on a Pi never chose nimbus: %v", seen)
	}
	a := DefaultAnswers(Hardware{Arch: plan.ArchAarch64, Board: plan.BoardRPi4, MemoryBytes: 8 << 30}, cat, "/home/x")
	if a.Execution != "reth" || a.Consensus != "nimbus" || a.Format != string(plan.FormatSD) {
		t.Errorf("a Pi's defaults: %s + %s, format %s; want reth + nimbus, sd", a.Execution, a.Consensus, a.Format)
	}
	// On a PC nothing changes: minority clients, any RAM.
	if got := pickClientFor(cat, plan.Consensus, plan.ArchX86_64, plan.BoardGeneric, true, func(int) int { return 0 }); got == "lighthouse" {
		t.Errorf("pick for me on a PC chose the supermajority client")
	}
}

// TestPiRAMFromBoardWhenDetectedElsewhere: a Pi prepared from a PC or from
// an aarch64 server does not take that machine's RAM as the Pi's.
func TestPiRAMFromBoardWhenDetectedElsewhere(t *testing.T) {
	cat := plan.MustCatalogue()
	for _, hw := range []Hardware{
		{Arch: plan.ArchX86_64, Board: plan.BoardGeneric, MemoryBytes: 64 << 30},
		{Arch: plan.ArchAarch64, Board: plan.BoardGeneric, MemoryBytes: 128 << 30},
	} {
		a := DefaultAnswers(hw, cat, "/home/x")
		a.Hardware = hwRPi4
		p := a.Plan(hw, cat)
		if p.Host.MemoryBytes != 0 {
			t.Errorf("%s %s: the Pi's plan records this machine's %d bytes", hw.Arch, hw.Board, p.Host.MemoryBytes)
		}
		if ram, assumed := p.NodeMemory(); ram != plan.RPi4MaxMemoryBytes || !assumed {
			t.Errorf("%s: warnings use %d bytes (assumed %v)", hw.Arch, ram, assumed)
		}
	}
	pi := Hardware{Arch: plan.ArchAarch64, Board: plan.BoardRPi4, MemoryBytes: 4 << 30}
	a := DefaultAnswers(pi, cat, "/home/x")
	if p := a.Plan(pi, cat); p.Host.MemoryBytes != 4<<30 {
		t.Errorf("on the Pi itself the plan records %d bytes", p.Host.MemoryBytes)
	}
}

func TestFormatFollowsBoard(t *testing.T) {
	if got := formatFor(string(plan.FormatISO), plan.BoardRPi4); got != string(plan.FormatSD) {
		t.Errorf("an ISO answer on a Pi becomes %s", got)
	}
	if got := formatFor(string(plan.FormatSD), plan.BoardGeneric); got != string(plan.FormatKexec) {
		t.Errorf("an sd answer on a PC becomes %s", got)
	}
	if got := formatFor(string(plan.FormatKexec), plan.BoardRPi4); got != string(plan.FormatKexec) {
		t.Errorf("kexec on a Pi becomes %s", got)
	}
}
