package ui

import (
	"fmt"
	"strings"
	"testing"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/homestaker/homestaker/disk"
	"github.com/homestaker/homestaker/plan"
)

// TestReviewShowsEveryWarning is the newcomer's run: 24 GiB of RAM, an
// 8 GiB data disk, the supermajority clients, mainnet. The review's first
// screen (80x24, before any scrolling) shows every warning Validate gives.
func TestReviewShowsEveryWarning(t *testing.T) {
	hw := Hardware{Arch: plan.ArchX86_64, Board: plan.BoardGeneric, MemoryBytes: 24 << 30, CPUs: 8,
		Disks: []disk.BlockDevice{{Name: "sdb", Path: "/dev/sdb", ByID: "/dev/disk/by-id/ata-SMALL_1", SizeBytes: 8 << 30, Model: "SMALL"}}}
	w := newWizard(t, hw)
	w.A.Execution, w.A.Consensus = "geth", "lighthouse"
	w.A.FeeRecipient, w.A.SSHKeys = testFee, testKey
	w.A.Disk = "/dev/disk/by-id/ata-SMALL_1"
	p := w.Plan()
	res := p.Validate(w.Cat)
	if !res.OK() {
		t.Fatalf("plan: %v", res.Errors)
	}
	for _, want := range []string{"host.memoryBytes", "ethereum.execution", "ethereum.consensus", "disk.sizeBytes"} {
		found := false
		for _, x := range res.Warnings {
			found = found || x.Path == want
		}
		if !found {
			t.Errorf("Validate gives no %s warning for this plan: %v", want, res.Warnings)
		}
	}
	m := NewModel(w, len(ScreenIDs())-1, func(w *Wizard) Review {
		return Review{Plan: p, FlakeDir: "/srv/flake", AnswersPath: "/srv/flake/hosts/node1/homestaker.json",
			EraseDevice: p.Disk.Device, EraseDetail: "/dev/sdb, SMALL, 8.6 GB", ConfirmNames: []string{p.Disk.Device}, Warnings: res.Warnings,
			Files: []FileAction{{"flake.nix", "create"}, {".sops.yaml", "create"}, {".gitignore", "create"}, {"modules/base.nix", "create"},
				{"hosts/node1/default.nix", "create"}, {"hosts/node1/disko.nix", "create"}, {"hosts/node1/local.nix", "create"}},
			Steps: []StepPlan{{Title: "Build the kexec tree of node1"}}, Boot: "kexec"}
	}, nil)
	m.Update(tea.WindowSizeMsg{Width: 80, Height: 24})
	drain(m, m.goTo(len(ScreenIDs())), 0)
	if !strings.Contains(Plain(m.View()), "! ERASE "+p.Disk.Device) {
		t.Errorf("the disk to erase is not on the review's first screen:\n%s", Plain(m.View()))
	}
	screen := strings.Join(strings.Fields(Plain(m.View())), " ")
	for _, x := range res.Warnings {
		// The first words of each warning, wrapped as the screen wraps.
		words := strings.Fields(ansi.Strip(x.Message))
		head := strings.Join(words[:min(6, len(words))], " ")
		if !strings.Contains(screen, "! "+head) {
			t.Errorf("the review's first screen does not show the warning %q:\n%s", x.Message, Plain(m.View()))
		}
	}
}

// TestClientScreenShowsTheNetworksDiskSizes: on hoodi the clients are
// labelled with hoodi's disk figures (Go Ethereum was ~1.3 TiB there).
func TestClientScreenShowsTheNetworksDiskSizes(t *testing.T) {
	w := newWizard(t, serverHardware(t))
	w.A.Network = "hoodi"
	geth, _ := w.Cat.Client("geth")
	var label string
	for _, o := range w.clients().Groups[0].Questions[0].Options {
		if o.Value == "geth" {
			label = o.Label
		}
	}
	want := fmt.Sprintf("~%d GiB disk", geth.DiskFor(plan.Hoodi))
	if !strings.Contains(label, want) || strings.Contains(label, "TiB") || !strings.Contains(label, w.Cat.TestnetDisk.AsOf) {
		t.Errorf("geth on hoodi is labelled %q, want %q dated %s", label, want, w.Cat.TestnetDisk.AsOf)
	}
	if intro := w.clients().Intro; !strings.Contains(intro, "for hoodi") {
		t.Errorf("the clients screen does not say whose disk figures: %q", intro)
	}
}
