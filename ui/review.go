package ui

import (
	"fmt"
	"strings"

	"github.com/homestaker/homestaker/disk"
	"github.com/homestaker/homestaker/plan"
)

// Review is what applying a plan will do, as the review screen (and
// `homestaker install --dry-run`) shows it. It is computed without side
// effects by the caller (files from a dry run of the flake step, the disk
// from detection).
type Review struct {
	Plan plan.Plan
	// FlakeDir and PrivateDir are where the flake and the private keys go.
	FlakeDir, PrivateDir string
	// AnswersPath is the answers file (hosts/<name>/homestaker.json).
	AnswersPath string
	// Files are the flake's files with what writing them does ("create",
	// "update", "unchanged", "keep"; "foreign" for a file that is not
	// homestaker's, "overwrite" for one with --force, "remove" for a stale
	// temporary file).
	Files []FileAction
	// Keys are notes about keys (generated or kept).
	Keys []string
	// EraseDevice is the data disk that will be erased ("" if none) and
	// EraseDetail its by-id name, size and model; ConfirmNames are the
	// spellings accepted when typing it back.
	EraseDevice  string
	EraseDetail  string
	ConfirmNames []string
	// EraseDisk is that disk as the review found it: the apply erases a
	// disk only while it has the same by-id name and size.
	EraseDisk *disk.BlockDevice
	// Validator describes the validator's keys: how many, their withdrawal
	// credentials, the slashing history, doppelganger protection.
	Validator []string
	// Steps are the apply's steps as they describe themselves, in order.
	Steps []StepPlan
	// Boot says how the node will boot; PowerCut what boots it again after
	// a power cut, and what to set.
	Boot, PowerCut string
	// Store says where the build's Nix store lives on this machine, the
	// space (and, on a RAM-only rescue system, the RAM) the build needs.
	Store string
	// RAM says how the node's RAM divides between the system, which lives
	// in RAM, and the clients ("" when the RAM is unknown).
	RAM string
	// Warnings are every warning of the plan (plan.Plan.Validate, and
	// the validator keys' check): what `homestaker validate` prints.
	Warnings []plan.Problem
	// Blocker, when set, is why the whole plan cannot be applied here
	// (for example no Nix to build with); the flake can still be written.
	Blocker string
	// Problem is set when the review itself failed (unreadable flake folder).
	Problem string
	// Refused says Problem is a safety refusal (exit 4): the flake folder
	// holds files homestaker did not write, listed in Files as "foreign".
	Refused bool
	// Reconfigure, when set, makes this the review of a reconfiguration.
	Reconfigure *Reconfigure
}

// StepPlan is one step of the apply: its title and what it will do.
type StepPlan struct {
	Title string
	Lines []string
}

// FileAction is one file of the flake and what writing it does.
type FileAction struct {
	Path   string
	Action string
}

var actionMark = map[string]string{"create": "+", "update": "~", "unchanged": "=", "keep": "=",
	"foreign": "!", "overwrite": "!", "remove": "-"}

// Text is the review as lines of text: colours mark the erased disk and
// warnings, and the text reads the same without them.
func (r Review) Text() string {
	if r.Reconfigure != nil {
		return r.reconfigureText()
	}
	var b strings.Builder
	p := r.Plan
	fmt.Fprintf(&b, "%s: %s on %s, %s + %s", p.Host.Name, p.Host.Arch, p.Ethereum.Network, p.Ethereum.Execution, p.Ethereum.Consensus)
	if p.Ethereum.Validator.Enable {
		b.WriteString(", validator")
	}
	if p.Ethereum.MevBoost.Enable {
		fmt.Fprintf(&b, ", MEV-boost (%d relays)", len(p.Ethereum.MevBoost.Relays))
	}
	b.WriteString("\n")
	if r.Problem != "" {
		b.WriteString(problemStyle.Render("✗ "+r.Problem) + "\n")
	}
	if r.Blocker != "" {
		b.WriteString(warnStyle.Render("! Only the flake can be written here: "+r.Blocker) + "\n")
	}
	if r.EraseDevice != "" {
		b.WriteString(eraseStyle.Render("! ERASE "+r.EraseDevice) + "\n")
		if r.EraseDetail != "" {
			b.WriteString(eraseStyle.Render("  "+strings.ReplaceAll(r.EraseDetail, "\n", "\n  ")) + "\n")
		}
	}
	// The warnings come next, so the review's first screen shows them
	// (they are the ones `homestaker validate` prints for these answers).
	for _, w := range r.Warnings {
		b.WriteString(warnStyle.Render("! "+w.Message) + "\n")
	}
	fmt.Fprintf(&b, "Flake in %s:\n", r.FlakeDir)
	for _, f := range r.Files {
		mark := actionMark[f.Action]
		if mark == "" {
			mark = "?"
		}
		fmt.Fprintf(&b, "  %s %-9s %s\n", mark, f.Action, f.Path)
	}
	r.writeKeysAndSteps(&b)
	if r.Store != "" {
		fmt.Fprintf(&b, "Nix store: %s\n", r.Store)
	}
	if r.Boot != "" {
		fmt.Fprintf(&b, "Boot: %s\n", r.Boot)
	}
	if r.PowerCut != "" {
		fmt.Fprintf(&b, "After a power cut: %s\n", r.PowerCut)
	}
	fmt.Fprintf(&b, "Answers file: %s\n", r.AnswersPath)
	if r.RAM != "" {
		fmt.Fprintf(&b, "RAM: %s\n", r.RAM)
	}
	return strings.TrimRight(b.String(), "\n")
}

// writeKeysAndSteps writes the notes on keys, the validator's keys and
// the apply's steps: the same in an install's and a reconfiguration's
// review.
func (r Review) writeKeysAndSteps(b *strings.Builder) {
	for _, k := range r.Keys {
		fmt.Fprintf(b, "  %s\n", k)
	}
	if len(r.Validator) > 0 {
		b.WriteString("Validator:\n")
		for _, v := range r.Validator {
			fmt.Fprintf(b, "  %s\n", v)
		}
	}
	writeSteps(b, r.Steps)
}

// writeSteps lists the apply's steps with what each will do.
func writeSteps(b *strings.Builder, list []StepPlan) {
	if len(list) == 0 {
		return
	}
	b.WriteString("Apply, in order:\n")
	for i, st := range list {
		fmt.Fprintf(b, "  %d. %s\n", i+1, st.Title)
		for _, l := range st.Lines {
			fmt.Fprintf(b, "     %s\n", strings.ReplaceAll(l, "\n", "\n     "))
		}
	}
}
