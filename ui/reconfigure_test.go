package ui

import (
	"strings"
	"testing"

	"github.com/homestaker/homestaker/plan"
)

func TestAnswerChanges(t *testing.T) {
	old := plan.Plan{Host: plan.Host{Name: "beta"}, Ethereum: plan.Ethereum{Execution: "erigon", Consensus: "lighthouse",
		Validator: plan.Validator{Enable: true, Graffiti: "a b"}}, Disk: plan.Disk{Device: "/dev/sda", Filesystem: plan.Ext4, SizeBytes: 1}}
	new := old
	new.Ethereum.Execution = "geth"
	new.Ethereum.Validator.Graffiti = `say "hi"`
	new.Disk.SizeBytes = 2 // only feeds warnings: not a change of the layout
	var got []string
	for _, c := range AnswerChanges(old, new) {
		got = append(got, c.String())
	}
	want := []string{"Execution client: erigon → geth", `Graffiti: "a b" → "say \"hi\""`}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("changes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if DiskChanged(old, new) {
		t.Error("a new disk size counts as a new layout")
	}
	new.Disk.Filesystem = plan.XFS
	if !DiskChanged(old, new) {
		t.Error("a new filesystem is not a disk change")
	}
}

func TestReconfigureChoices(t *testing.T) {
	labels := func(r Review) string {
		var out []string
		for _, c := range ReconfigureChoices(r) {
			out = append(out, c.Label)
		}
		return strings.Join(out, " | ")
	}
	r := Review{Reconfigure: &Reconfigure{ApplyLabel: "Apply", FormatLabel: "Re-format"}}
	if got := labels(r); got != "Apply | Re-format | Write the flake and answers only (nothing is built, no disk is touched) | Go back and change answers | Quit without writing anything" {
		t.Errorf("all choices: %s", got)
	}
	// A changed disk answer: only re-formatting (or going back) goes on.
	r.Reconfigure.Refusal, r.Reconfigure.RefusalUnlessFormat = "disk changed", true
	if got := labels(r); got != "Re-format | Go back and change answers | Quit without writing anything" {
		t.Errorf("disk changed: %s", got)
	}
	// Any other refusal: nothing goes on.
	r.Reconfigure.RefusalUnlessFormat = false
	if got := labels(r); got != "Go back and change answers | Quit without writing anything" {
		t.Errorf("refused: %s", got)
	}
	// No Nix: the flake only.
	r = Review{Blocker: "no nix", Reconfigure: &Reconfigure{ApplyLabel: "Apply", FormatLabel: "Re-format"}}
	if got := labels(r); !strings.HasPrefix(got, "Write the flake") {
		t.Errorf("without Nix: %s", got)
	}
}
