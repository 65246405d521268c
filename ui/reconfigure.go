package ui

import (
	"fmt"
	"strconv"
	"strings"

	"charm.land/huh/v2"

	"github.com/homestaker/homestaker/plan"
)

// Reconfigure is what the review of `homestaker reconfigure` adds to a
// review: the answers that changed, the files that change with their diffs,
// what happens to the data disk and the validator's slashing history, and
// why applying is refused, if it is.
type Reconfigure struct {
	Changes []AnswerChange
	Files   []FileDiff
	// Disk says what happens to the data disk (kept, or re-formatted).
	Disk string
	// Slashing says what the user must do before a new validator client
	// signs (empty when the validator client stays).
	Slashing []string
	// Refusal, when set, is why neither applying nor writing the flake
	// may go on; with RefusalUnlessFormat, re-formatting the data disk
	// (FormatLabel) lifts it.
	Refusal             string
	RefusalUnlessFormat bool
	// ApplyLabel names the rebuild choice ("" when there is none);
	// FormatLabel the choice that re-formats the data disk first ("" when
	// the disk cannot be re-formatted here).
	ApplyLabel, FormatLabel string
	// Next says how the rebuilt node boots (a command to run, or the kexec
	// done by the apply).
	Next string
}

// AnswerChange is one answer that differs, in plain words.
type AnswerChange struct {
	// Field is the answers file's field path; Label says it in words.
	Field, Label string
	Old, New     string
}

// String is the change as the review shows it.
func (c AnswerChange) String() string {
	return fmt.Sprintf("%s: %s → %s", c.Label, c.Old, c.New)
}

// FileDiff is one file of the flake and how it changes: Mark is "+"
// (created), "~" (rewritten) or "−" (removed); Diff a unified diff, or Note
// a sentence when the content is not shown (secrets.yaml).
type FileDiff struct {
	Path, Mark, Diff, Note string
}

// AnswerChanges compares two plans field by field.
func AnswerChanges(old, new plan.Plan) []AnswerChange {
	var out []AnswerChange
	add := func(field, label, o, n string) {
		if o != n {
			out = append(out, AnswerChange{Field: field, Label: label, Old: orNone(o), New: orNone(n)})
		}
	}
	q := strconv.Quote
	onOff := func(b bool) string {
		if b {
			return "on"
		}
		return "off"
	}
	add("host.name", "Host name", old.Host.Name, new.Host.Name)
	add("host.timezone", "Timezone", old.Host.Timezone, new.Host.Timezone)
	add("host.arch", "Architecture", string(old.Host.Arch), string(new.Host.Arch))
	add("host.board", "Machine", string(old.Host.Board), string(new.Host.Board))
	add("host.format", "How the node boots", string(old.Host.Format), string(new.Host.Format))
	add("host.firmware", "Firmware of the boot entry", string(old.Host.Firmware), string(new.Host.Firmware))
	e, f := old.Ethereum, new.Ethereum
	add("ethereum.network", "Network", string(e.Network), string(f.Network))
	add("ethereum.execution", "Execution client", e.Execution, f.Execution)
	add("ethereum.consensus", "Consensus (and validator) client", e.Consensus, f.Consensus)
	add("ethereum.checkpointSyncUrl", "Checkpoint sync URL", e.CheckpointSyncURL, f.CheckpointSyncURL)
	add("ethereum.validator.enable", "Validator", onOff(e.Validator.Enable), onOff(f.Validator.Enable))
	add("ethereum.validator.feeRecipient", "Fee recipient", e.Validator.FeeRecipient, f.Validator.FeeRecipient)
	if e.Validator.Graffiti != f.Validator.Graffiti {
		out = append(out, AnswerChange{Field: "ethereum.validator.graffiti", Label: "Graffiti", Old: q(e.Validator.Graffiti), New: q(f.Validator.Graffiti)})
	}
	add("ethereum.validator.keystoreDir", "Validator keys folder", e.Validator.KeystoreDir, f.Validator.KeystoreDir)
	add("ethereum.validator.passwordFile", "Keystore password file", e.Validator.PasswordFile, f.Validator.PasswordFile)
	add("ethereum.validator.slashingProtection", "Slashing-protection file", e.Validator.SlashingProtection, f.Validator.SlashingProtection)
	add("ethereum.validator.doppelganger", "Doppelganger protection", onOff(e.Validator.DoppelgangerOn()), onOff(f.Validator.DoppelgangerOn()))
	add("ethereum.mevBoost.enable", "MEV-boost", onOff(e.MevBoost.Enable), onOff(f.MevBoost.Enable))
	add("ethereum.mevBoost.relays", "MEV-boost relays", listText(e.MevBoost.Relays), listText(f.MevBoost.Relays))
	add("disk.device", "Data disk", old.Disk.Device, new.Disk.Device)
	add("disk.filesystem", "Data disk's filesystem", string(old.Disk.Filesystem), string(new.Disk.Filesystem))
	add("ssh.authorizedKeys", "SSH keys that may log in", listText(keyComments(old.SSH.AuthorizedKeys)), listText(keyComments(new.SSH.AuthorizedKeys)))
	add("secrets.adminRecipients", "Admin age recipients", listText(old.Secrets.AdminRecipients), listText(new.Secrets.AdminRecipients))
	return out
}

// DiskChanged reports whether the data disk's layout answers differ: the
// device or the filesystem (disk.sizeBytes only feeds warnings).
func DiskChanged(old, new plan.Plan) bool {
	return old.Disk.Device != new.Disk.Device || old.Disk.Filesystem != new.Disk.Filesystem
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func listText(l []string) string { return strings.Join(l, ", ") }

// keyComments names SSH keys by their comment (or the key's end).
func keyComments(keys []string) []string {
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		f := strings.Fields(k)
		switch {
		case len(f) >= 3:
			out = append(out, f[0]+" "+strings.Join(f[2:], " "))
		case len(f) == 2 && len(f[1]) > 12:
			out = append(out, f[0]+" …"+f[1][len(f[1])-12:])
		default:
			out = append(out, k)
		}
	}
	return out
}

// reconfigureText is the review of a reconfiguration.
func (r Review) reconfigureText() string {
	rc := r.Reconfigure
	var b strings.Builder
	p := r.Plan
	fmt.Fprintf(&b, "Reconfigure %s: %s on %s, %s + %s\n", p.Host.Name, p.Host.Arch, p.Ethereum.Network, p.Ethereum.Execution, p.Ethereum.Consensus)
	if r.Problem != "" {
		b.WriteString(problemStyle.Render("✗ "+r.Problem) + "\n")
	}
	if rc.Refusal != "" {
		b.WriteString(problemStyle.Render("✗ "+rc.Refusal) + "\n")
	}
	if len(rc.Changes) == 0 {
		b.WriteString("Answers: none changed\n")
	} else {
		b.WriteString("Answers changed:\n")
		for _, c := range rc.Changes {
			fmt.Fprintf(&b, "  %s\n", c)
		}
	}
	for _, s := range rc.Slashing {
		b.WriteString(warnStyle.Render("! "+s) + "\n")
	}
	if rc.Disk != "" {
		line := "Data disk: " + rc.Disk
		if r.EraseDevice != "" && rc.FormatLabel == "" {
			line = eraseStyle.Render("! ERASE " + r.EraseDevice + ": " + rc.Disk)
		}
		b.WriteString(line + "\n")
	}
	fmt.Fprintf(&b, "Flake in %s:\n", r.FlakeDir)
	changed := 0
	for _, f := range rc.Files {
		if f.Mark != "=" {
			changed++
		}
	}
	if changed == 0 {
		b.WriteString("  no file changes\n")
	}
	for _, f := range rc.Files {
		fmt.Fprintf(&b, "  %s %s", f.Mark, f.Path)
		if f.Note != "" {
			fmt.Fprintf(&b, " (%s)", f.Note)
		}
		b.WriteString("\n")
		if f.Diff != "" {
			for _, l := range strings.Split(strings.TrimRight(f.Diff, "\n"), "\n") {
				b.WriteString("    " + l + "\n")
			}
		}
	}
	r.writeKeysAndSteps(&b)
	if rc.Next != "" {
		fmt.Fprintf(&b, "Boot: %s\n", rc.Next)
	}
	if r.Blocker != "" {
		b.WriteString(warnStyle.Render("! Only the flake can be written here: "+r.Blocker) + "\n")
	}
	for _, w := range r.Warnings {
		b.WriteString(warnStyle.Render("! "+w.Message) + "\n")
	}
	return strings.TrimRight(b.String(), "\n")
}

// choiceRebuild is the review's choice of Rebuild.
const choiceRebuild = "rebuild"

// Choice is one way on from a review.
type Choice struct {
	Label   string
	Outcome Outcome
	// Back goes back to the questions instead of ending.
	Back bool
}

// ReconfigureChoices are the ways on from a reconfiguration's review, in
// the order offered; the first is the default.
func ReconfigureChoices(r Review) []Choice {
	rc := r.Reconfigure
	var out []Choice
	if rc.Refusal == "" && r.Problem == "" {
		if rc.ApplyLabel != "" && r.Blocker == "" {
			out = append(out, Choice{Label: rc.ApplyLabel, Outcome: Rebuild})
		}
	}
	if rc.FormatLabel != "" && r.Problem == "" && r.Blocker == "" && (rc.Refusal == "" || rc.RefusalUnlessFormat) {
		out = append(out, Choice{Label: rc.FormatLabel, Outcome: ApplyAll})
	}
	if rc.Refusal == "" && r.Problem == "" {
		out = append(out, Choice{Label: "Write the flake and answers only (nothing is built, no disk is touched)", Outcome: FlakeOnly})
	}
	return append(out,
		Choice{Label: "Go back and change answers", Back: true},
		Choice{Label: "Quit without writing anything", Outcome: Quit})
}

// reconfigureOptions are ReconfigureChoices as the review's select.
func reconfigureOptions(r Review) []huh.Option[string] {
	var opts []huh.Option[string]
	for _, c := range ReconfigureChoices(r) {
		opts = append(opts, huh.NewOption(c.Label, choiceValue(c)))
	}
	return opts
}

func choiceValue(c Choice) string {
	switch {
	case c.Back:
		return choiceBack
	case c.Outcome == Rebuild:
		return choiceRebuild
	case c.Outcome == ApplyAll:
		return choiceApply
	case c.Outcome == FlakeOnly:
		return choiceFlake
	}
	return choiceQuit
}
