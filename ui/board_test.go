package ui

import (
	"strings"
	"testing"

	"github.com/homestaker/homestaker/plan"
)

// TestPickForMeFitsTheRAM: "pick for me" picks only pairs whose RAM fits
// the node; where none fits (a Pi 4: at most 8 GiB, and the lightest pair
// needs 12) it picks the lightest pair, never prysm, and says so.
func TestPickForMeFitsTheRAM(t *testing.T) {
	cat := plan.MustCatalogue()
	ramOf := func(names ...string) int {
		n := 0
		for _, name := range names {
			c, _ := cat.Client(name)
			n += c.RAMGiB
		}
		return n
	}
	for _, hw := range []Hardware{
		{Arch: plan.ArchX86_64, Board: plan.BoardGeneric, MemoryBytes: 16 << 30},
		{Arch: plan.ArchX86_64, Board: plan.BoardGeneric, MemoryBytes: 12 << 30},
	} {
		for i := 0; i < 16; i++ {
			w := newWizard(t, hw)
			w.Rand = func(n int) int { return i % n }
			w.A.Execution, w.A.Consensus = pickForMe, pickForMe
			if warning := w.pickClients(); warning != "" {
				t.Errorf("%s %d GiB: %s", hw.Arch, hw.MemoryBytes>>30, warning)
			}
			if need := ramOf(w.A.Execution, w.A.Consensus); uint64(need)<<30 > hw.MemoryBytes {
				t.Errorf("%s %d GiB: picked %s + %s (%d GiB)", hw.Arch, hw.MemoryBytes>>30, w.A.Execution, w.A.Consensus, need)
			}
			el, _ := cat.Client(w.A.Execution)
			if uint64(el.MinRAMGiB)<<30 > hw.MemoryBytes {
				t.Errorf("%d GiB: picked %s, which needs %d GiB", hw.MemoryBytes>>30, el.Name, el.MinRAMGiB)
			}
		}
	}
	// Only the consensus client left to pick: it fits beside the chosen one.
	w := newWizard(t, Hardware{Arch: plan.ArchX86_64, Board: plan.BoardGeneric, MemoryBytes: 16 << 30})
	w.A.Execution, w.A.Consensus = "nethermind", pickForMe
	for i := 0; i < 4; i++ {
		w.Rand = func(n int) int { return i % n }
		w.A.Consensus = pickForMe
		if w.pickClients(); w.A.Consensus != "nimbus" {
			t.Errorf("beside nethermind (10 GiB) on 16 GiB: %s", w.A.Consensus)
		}
	}

	// The Raspberry Pi 4 of the newcomer's run (it got reth + prysm).
	for i := 0; i < 8; i++ {
		w := newWizard(t, Hardware{Arch: plan.ArchAarch64, Board: plan.BoardRPi4, MemoryBytes: 8 << 30})
		w.Rand = func(n int) int { return i % n }
		w.A.Execution, w.A.Consensus = pickForMe, pickForMe
		w.clients().Done()
		warning := w.PickWarning
		if w.A.Execution != "reth" || w.A.Consensus != "nimbus" {
			t.Errorf("pick for me on a Pi chose %s + %s, want the lightest minority pair reth + nimbus", w.A.Execution, w.A.Consensus)
		}
		if !strings.Contains(warning, "No pair of clients fits") || !strings.Contains(warning, "8 GiB") {
			t.Errorf("no warning that nothing fits a Pi: %q", warning)
		}
		if !strings.Contains(w.validator().Intro, warning) {
			t.Errorf("the next screen does not show the warning:\n%s", w.validator().Intro)
		}
	}
	a := DefaultAnswers(Hardware{Arch: plan.ArchAarch64, Board: plan.BoardRPi4, MemoryBytes: 8 << 30}, cat, "/home/x")
	if a.Execution != "reth" || a.Consensus != "nimbus" || a.Format != string(plan.FormatSD) {
		t.Errorf("a Pi's defaults: %s + %s, format %s; want reth + nimbus, sd", a.Execution, a.Consensus, a.Format)
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
