package cli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"filippo.io/age"
	"github.com/charmbracelet/x/ansi"

	"github.com/homestaker/homestaker/detect"
	"github.com/homestaker/homestaker/flake"
	"github.com/homestaker/homestaker/nixbuild"
	"github.com/homestaker/homestaker/plan"
	"github.com/homestaker/homestaker/secrets"
	"github.com/homestaker/homestaker/steps"
	"github.com/homestaker/homestaker/textdiff"
	"github.com/homestaker/homestaker/ui"
)

// reconfFlags are the flags of `homestaker reconfigure`.
type reconfFlags struct {
	host, answers, private string
	accessible, dryRun     bool
	yes, flakeOnly         bool
	formatDisk             bool
	confirm                string
}

// reconf is one run of `homestaker reconfigure`: the host as its flake
// holds it, and the session the wizard and the review share with install.
type reconf struct {
	s    *session
	f    reconfFlags
	dir  string
	old  plan.Plan
	key  secrets.HostKey
	here bool // the node runs on this machine
	// slashing: the validator client changes and a history is handed over.
	slashing bool
	// flakeDirAnswer is the flake folder as the wizard's last screen has it.
	flakeDirAnswer string
}

// runReconfigure is `homestaker reconfigure DIR [--host NAME]`: the wizard
// prefilled from the host's answers (or --answers NEW), a review of the
// changed answers and files, and a rebuild that keeps every key and secret
// and never formats the data disk unless told to.
func runReconfigure(ctx context.Context, env *cliEnv, args []string) int {
	usage := "reconfigure DIR [--host NAME] [--answers NEW] [--private DIR] [--accessible] [--dry-run] [--flake-only] [--yes] [--format-disk --confirm-device DEV]"
	fs := newFlags(env, "reconfigure", usage)
	var f reconfFlags
	fs.StringVar(&f.host, "host", "", "the host to reconfigure (needed when the flake has several)")
	fs.StringVar(&f.answers, "answers", "", "the new answers `file`, without questions")
	fs.StringVar(&f.private, "private", "", "`folder` of the private keys the host was made with (default $XDG_STATE_HOME/homestaker)")
	fs.BoolVar(&f.accessible, "accessible", false, "plain line prompts instead of the full-screen wizard")
	fs.BoolVar(&f.dryRun, "dry-run", false, "show the review and stop; change nothing")
	fs.BoolVar(&f.flakeOnly, "flake-only", false, "write the flake and answers only; build nothing, touch no disk")
	fs.BoolVar(&f.yes, "yes", false, "apply without asking (re-formatting also needs --format-disk --confirm-device)")
	fs.BoolVar(&f.formatDisk, "format-disk", false, "re-format the data disk (ERASES the chain data); needs --confirm-device DEV with --yes")
	fs.StringVar(&f.confirm, "confirm-device", "", "the data disk to re-format, named again")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if len(pos) != 1 {
		fmt.Fprintf(env.stderr, "usage: homestaker %s\n", usage)
		return exitUsage
	}
	if f.formatDisk && f.yes && f.confirm == "" {
		fmt.Fprintln(env.stderr, "homestaker reconfigure: --format-disk with --yes erases the data disk only with --confirm-device DEV naming it")
		return exitUsage
	}
	if f.formatDisk && f.flakeOnly {
		fmt.Fprintln(env.stderr, "homestaker reconfigure: --format-disk and --flake-only exclude each other")
		return exitUsage
	}
	dir, err := filepath.Abs(pos[0])
	if err != nil {
		fmt.Fprintf(env.stderr, "homestaker reconfigure: %v\n", err)
		return exitUsage
	}
	name, code := pickHost(env, dir, f.host)
	if code >= 0 {
		return code
	}
	cat, err := plan.LoadCatalogue()
	if err != nil {
		fmt.Fprintf(env.stderr, "homestaker reconfigure: %v\n", err)
		return exitFailure
	}
	answersPath := filepath.Join(dir, "hosts", name, "homestaker.json")
	data, err := os.ReadFile(answersPath)
	if err != nil {
		fmt.Fprintf(env.stderr, "homestaker reconfigure: %v\n", err)
		return exitFailure
	}
	old, err := plan.Decode(data)
	if err != nil {
		fmt.Fprintf(env.stderr, "homestaker reconfigure: %s: %v\n", answersPath, err)
		return exitInvalid
	}
	old = old.Defaults(cat)
	priv, err := privateDir(env, f.private)
	if err != nil {
		fmt.Fprintf(env.stderr, "homestaker reconfigure: %v\n", err)
		return exitUsage
	}
	// The secrets are encrypted to the host key: without it nothing can
	// be kept, and a new key would be made. Refuse instead.
	key, err := secrets.LoadHostKey(priv, name)
	if err != nil {
		fmt.Fprintf(env.stderr, "homestaker reconfigure: the SSH host key of %s is not in %s (%v).\nThe secrets of %s are encrypted to it and reconfigure never makes a new one: name the private folder the host was made with (--private DIR).\n", name, priv, err, name)
		return exitRefused
	}
	if old.SSH.HostKey != "" && old.SSH.HostKey != key.PublicKey {
		fmt.Fprintf(env.stderr, "homestaker reconfigure: %s names another host key than %s holds: name the private folder the host was made with (--private DIR)\n", answersPath, key.PrivatePath)
		return exitRefused
	}
	s := &session{env: env, sys: detectSources(env).System, cat: cat, private: priv, home: env.getenv("HOME"),
		flags: installFlags{out: dir, private: priv, accessible: f.accessible}}
	s.hw = detectHardware(ctx, env)
	r := &reconf{s: s, f: f, dir: dir, old: old, key: key,
		here: detect.ReadRunning(env.getenv(systemRootEnv)).IsNode(name)}
	if f.answers != "" {
		return r.headless(ctx)
	}
	return r.wizard(ctx)
}

// pickHost is the host to reconfigure: --host, or the flake's only one.
func pickHost(env *cliEnv, dir, host string) (string, int) {
	files, _ := filepath.Glob(filepath.Join(dir, "hosts", "*", "homestaker.json"))
	var names []string
	for _, f := range files {
		names = append(names, filepath.Base(filepath.Dir(f)))
	}
	sort.Strings(names)
	switch {
	case host != "" && slices.Contains(names, host):
		return host, -1
	case host != "":
		fmt.Fprintf(env.stderr, "homestaker reconfigure: %s has no host %q (hosts: %s)\n", dir, host, orNoHosts(names))
		return "", exitUsage
	case len(names) == 0:
		fmt.Fprintf(env.stderr, "homestaker reconfigure: %s holds no host (no hosts/*/homestaker.json): is it a flake homestaker made?\n", dir)
		return "", exitUsage
	case len(names) > 1:
		fmt.Fprintf(env.stderr, "homestaker reconfigure: %s has several hosts (%s): choose one with --host NAME\n", dir, strings.Join(names, ", "))
		return "", exitUsage
	}
	return names[0], -1
}

func orNoHosts(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// complete fills in what the questions do not ask from the host as it is:
// its host key, the admins when none were named (the generated identity),
// the firmware, the RAM, doppelganger protection, the disk's size.
func (r *reconf) complete(p plan.Plan, fromWizard bool) plan.Plan {
	if p.SSH.HostKey == "" {
		p.SSH.HostKey = r.old.SSH.HostKey
	}
	if len(p.Secrets.AdminRecipients) == 0 {
		p.Secrets.AdminRecipients = append([]string(nil), r.old.Secrets.AdminRecipients...)
	}
	if fromWizard {
		p.Host.Firmware = r.old.Host.Firmware
		// The questions do not ask for the RAM; the wizard puts this
		// machine's, which need not be the node's.
		p.Host.MemoryBytes = r.old.Host.MemoryBytes
		p.Ethereum.Validator.Doppelganger = r.old.Ethereum.Validator.Doppelganger
		if p.Disk.SizeBytes == 0 || p.Disk.Device == r.old.Disk.Device {
			p.Disk.SizeBytes = r.old.Disk.SizeBytes
		}
	}
	return p
}

// review is the reconfiguration's review of p: the answers that changed,
// the files that change (with diffs), the data disk, the slashing history,
// the boot. format says the user asked for the data disk to be re-formatted
// (headless); the wizard offers it as a choice instead.
func (r *reconf) review(p plan.Plan, format, wizard bool) ui.Review {
	s, old, name := r.s, r.old, r.old.Host.Name
	rev := s.review(p, r.dir)
	// A rebuild needs Nix, not the data disk: the disk's blocker matters
	// only to re-formatting.
	diskWhy := rev.Blocker
	rev.Blocker = s.nixProblem()
	rc := &ui.Reconfigure{Changes: ui.AnswerChanges(old, p)}
	rev.Reconfigure = rc
	refuse := func(msg string) {
		if rc.Refusal == "" {
			rc.Refusal = msg
		}
	}
	if p.Host.Name != name {
		refuse(fmt.Sprintf("the host name is %s's (hosts/%s): reconfigure changes a host, it does not rename it; make a new host with `homestaker install`", name, name))
	}
	if wizard && r.flakeDirAnswer != "" && s.expandHome(r.flakeDirAnswer) != r.dir {
		refuse(fmt.Sprintf("the flake folder is %s: reconfigure rewrites the host where it is", r.dir))
	}
	if rev.Problem != "" {
		return rev
	}

	// The files: + created, ~ rewritten (with a diff), secrets.yaml by
	// what happens to it, never its content.
	r.slashing = false
	vcChanged := old.Ethereum.Consensus != p.Ethereum.Consensus && p.Ethereum.Validator.Enable
	if vcChanged && len(s.keys.Keystores) > 0 {
		r.slashingReview(p, rc, refuse)
	}
	contents := map[string][]byte{}
	for _, f := range s.flake.Files {
		contents[f.Path] = f.Content
	}
	unchanged := 0
	for _, c := range s.flake.Changes {
		path := filepath.Join(r.dir, filepath.FromSlash(c.Path))
		if strings.HasSuffix(c.Path, "/secrets.yaml") {
			changed, note, err := steps.SecretsOutlook(p, s.keys, r.dir, r.key.Recipient, r.slashing)
			if err != nil {
				rev.Problem = err.Error()
				return rev
			}
			mark := "="
			if changed {
				mark = "~"
			}
			rc.Files = append(rc.Files, ui.FileDiff{Path: c.Path, Mark: mark, Note: note})
			continue
		}
		switch c.Action {
		case flake.Create:
			rc.Files = append(rc.Files, ui.FileDiff{Path: c.Path, Mark: "+", Diff: textdiff.Unified("/dev/null", "b/"+c.Path, "", string(contents[c.Path]), 3)})
		case flake.Update:
			before, _ := os.ReadFile(path)
			rc.Files = append(rc.Files, ui.FileDiff{Path: c.Path, Mark: "~", Diff: textdiff.Unified("a/"+c.Path, "b/"+c.Path, string(before), string(contents[c.Path]), 3)})
		default:
			unchanged++
		}
	}
	rev.Keys = append(rev.Keys, fmt.Sprintf("%d other file(s) unchanged; no key or secret is made anew", unchanged))

	// The data disk keeps its layout unless re-formatting was asked for.
	dev := p.Disk.Device
	diskChanged := ui.DiskChanged(old, p)
	canFormat := rev.EraseDevice != ""
	switch {
	case format && !canFormat:
		why := diskWhy
		if why == "" {
			why = "it is not on this machine"
		}
		refuse(fmt.Sprintf("--format-disk: %s cannot be re-formatted here (%s)", dev, why))
	case format:
		rc.Disk = "re-formatted after the build: everything on it, the chain data included, is erased"
	case diskChanged:
		rc.Disk = old.Disk.Device + " keeps its layout and data"
		refuse(fmt.Sprintf("the data disk answer changed (%s), but the data disk keeps its layout: reconfigure never formats it again unless asked. To re-format %s (erasing the chain data), run `homestaker reconfigure %s --answers FILE --format-disk --yes --confirm-device %s` or choose re-formatting at the wizard's review; or change the answer back",
			diskChangeText(old, p), dev, shellWord(r.dir), dev))
		rc.RefusalUnlessFormat = true
	default:
		rc.Disk = dev + " keeps its layout and data (not formatted again)"
	}
	if !format {
		if wizard && canFormat {
			rc.FormatLabel = "Re-format the data disk (ERASES everything on " + dev + "), then write, build and boot"
		}
		if !wizard || !canFormat {
			rev.EraseDevice = ""
		}
	}

	// Boot: here by kexec, or the command that boots it.
	rc.ApplyLabel, rc.Next = r.bootText(p)
	// The rebuild's steps as they describe themselves.
	if s.target != nil {
		free := s.target.Disk != nil && s.target.DiskErr == nil
		rev.Steps = describeSteps(s.target, reconfigureSteps(s.env, p, r.slashing, format, r.here, free))
	}
	return rev
}

func diskChangeText(old, p plan.Plan) string {
	var parts []string
	if old.Disk.Device != p.Disk.Device {
		parts = append(parts, "device "+old.Disk.Device+" → "+p.Disk.Device)
	}
	if old.Disk.Filesystem != p.Disk.Filesystem {
		parts = append(parts, "filesystem "+string(old.Disk.Filesystem)+" → "+string(p.Disk.Filesystem))
	}
	return strings.Join(parts, ", ")
}

// slashingReview: the validator client changes and has keys. The new
// client must import the old one's EIP-3076 history before it signs.
func (r *reconf) slashingReview(p plan.Plan, rc *ui.Reconfigure, refuse func(string)) {
	from, to, net := r.old.Ethereum.Consensus, p.Ethereum.Consensus, p.Ethereum.Network
	rc.Slashing = append(rc.Slashing, fmt.Sprintf("The validator client changes from %s to %s: %s must import %s's slashing-protection history (EIP-3076) before it signs. On the node, run `homestaker-export-slashing-protection /root/slashing-protection-%s.json` (it stops %s's validator for good), copy the file here and name it in ethereum.validator.slashingProtection; the apply puts it into secrets.yaml.", from, to, to, from, net, from))
	sp := p.Ethereum.Validator.SlashingProtection
	if to == "prysm" {
		refuse(fmt.Sprintf("Prysm imports a slashing-protection history only by hand, after its first start, so homestaker cannot hand it %s's history before the keys sign: move in two steps — reconfigure to prysm without the keys (remove keystoreDir and passwordFile), import the export on the node (README: Moving validators away), then reconfigure again with the keys", from))
		return
	}
	if sp == "" || r.s.keys.Slashing == nil {
		refuse(fmt.Sprintf("the validator client changes (%s → %s) and the validator has %d key(s), but no slashing-protection history is named: export it from %s on the node and name it in ethereum.validator.slashingProtection", from, to, len(r.s.keys.Keystores), from))
		return
	}
	// The history already in secrets.yaml is from before the old client
	// ran: it is not the export this change needs.
	file := filepath.Join(r.dir, "hosts", p.Host.Name, "secrets.yaml")
	if id, err := r.key.Identity(); err == nil {
		if values, err := secrets.Decrypt(file, []age.Identity{id}); err == nil {
			if v, ok := values[flake.SecretSlashing]; ok && bytes.Equal([]byte(v), r.s.keys.Slashing) {
				refuse(fmt.Sprintf("%s is the slashing-protection history secrets.yaml already holds, from before %s signed: export the current one from %s on the node", sp, from, from))
				return
			}
		}
	}
	r.slashing = true
}

// bootText is the rebuild choice's label and how the new image boots.
func (r *reconf) bootText(p plan.Plan) (label, next string) {
	cmd := fmt.Sprintf("homestaker kexec %s --host %s", shellWord(r.dir), p.Host.Name)
	switch {
	case p.Host.Format == plan.FormatKexec && r.here:
		return "Apply: write the flake, build, then boot the new image here with kexec (the clients restart, this SSH session ends)",
			"this machine is the node (NixOS, host name " + p.Host.Name + "): after the build, kexec into the new image"
	case p.Host.Format == plan.FormatKexec:
		return "Apply: write the flake and build the new image (this machine is not the node)",
			"this machine is not the node (not NixOS named " + p.Host.Name + "); boot the new image where the node runs with `" + cmd + "`"
	case p.Host.Format == plan.FormatSD:
		return "Apply: write the flake and build the new SD image", sdBoot(r.s.env, p)
	}
	return "Apply: write the flake and build the new ISO",
		"write the new ISO to the node's USB stick (`homestaker flash --image ISO --device /dev/disk/by-id/…`, ISO as the build prints it) and restart the node from it"
}

// headless is reconfigure --answers NEW.
func (r *reconf) headless(ctx context.Context) int {
	s, env, f := r.s, r.s.env, r.f
	p, res, code := loadAnswers(env, f.answers)
	if code >= 0 {
		return code
	}
	p = r.complete(p, false)
	s.keys, res = checkKeys(p, s.cat, res)
	s.keysChecked = true
	printResult(env.stderr, f.answers, res)
	if !res.OK() {
		return exitInvalid
	}
	rev := r.review(p, f.formatDisk, false)
	fmt.Fprintln(env.stdout, ansi.Strip(rev.Text()))
	rc := rev.Reconfigure
	if rev.Problem != "" {
		return exitFailure
	}
	if rc.Refusal != "" {
		fmt.Fprintf(env.stderr, "homestaker reconfigure: refused: %s.\nNothing was changed.\n", rc.Refusal)
		return exitRefused
	}
	if f.dryRun {
		fmt.Fprintln(env.stdout, "dry run: nothing was changed")
		return exitOK
	}
	outcome := ui.Rebuild
	switch {
	case f.flakeOnly:
		outcome = ui.FlakeOnly
	case f.formatDisk:
		outcome = ui.ApplyAll
	}
	if outcome != ui.FlakeOnly && rev.Blocker != "" {
		fmt.Fprintf(env.stderr, "homestaker reconfigure: %s\nWrite the flake only with --flake-only.\n", rev.Blocker)
		return exitRefused
	}
	switch {
	case outcome == ui.ApplyAll && f.yes:
		if !slices.Contains(rev.ConfirmNames, f.confirm) {
			fmt.Fprintf(env.stderr, "homestaker reconfigure: --confirm-device %s does not name the disk being re-formatted (%s)\n", f.confirm, rev.EraseDevice)
			return exitRefused
		}
	case f.yes, outcome == ui.FlakeOnly:
	case interactive(env):
		lines := ui.NewLines(env.stdin, env.stderr)
		prompt, accept := "Type yes to apply (Enter alone stops)", []string{"yes"}
		if outcome == ui.ApplyAll {
			prompt, accept = "Type "+rev.EraseDevice+" to re-format it (Enter alone stops)", rev.ConfirmNames
		}
		if err := lines.Confirm(prompt, accept); err != nil {
			fmt.Fprintln(env.stderr, "Stopped: nothing was changed.")
			return exitRefused
		}
	default:
		fmt.Fprintln(env.stderr, "homestaker reconfigure: applying needs --yes (or --flake-only to write the flake only); nothing was changed")
		return exitRefused
	}
	return r.apply(ctx, p, outcome, rev)
}

// wizard asks the questions, prefilled from the host, then applies.
func (r *reconf) wizard(ctx context.Context) int {
	s, env := r.s, r.s.env
	w := &ui.Wizard{A: ui.AnswersFromPlan(r.old, s.hw, s.cat, r.dir), HW: s.hw, Cat: s.cat, PrivateDir: s.private, Rand: rand.IntN}
	full := interactive(env) && !r.f.accessible
	reviewOf := func(w *ui.Wizard) ui.Review {
		s.keysChecked = false
		r.flakeDirAnswer = w.A.FlakeDir
		return r.review(r.complete(w.Plan(), true), false, true)
	}
	// The welcome screen is the installer's ("a disk … will be erased"):
	// a reconfiguration starts at the hardware.
	outcome, rev, code := askWizard(ctx, env, full, func() *ui.Model { return ui.NewModel(w, 1, reviewOf, nil) },
		func() (ui.Outcome, ui.Review, int) { return r.lineWizard(ctx, w, reviewOf) })
	if code >= 0 {
		return code
	}
	p := r.complete(w.Plan(), true)
	if res := p.Validate(s.cat); !res.OK() {
		printResult(env.stderr, "the wizard's answers", res)
		return exitInvalid
	}
	if outcome == ui.ApplyAll {
		// Re-formatting was chosen (and the disk typed) at the review.
		rev = r.review(p, true, true)
	}
	if rc := rev.Reconfigure; rc == nil || rc.Refusal != "" {
		fmt.Fprintf(env.stderr, "homestaker reconfigure: refused: %s.\nNothing was changed.\n", rc.Refusal)
		return exitRefused
	}
	if r.f.dryRun {
		// --dry-run: the review is the end of it, whatever was chosen there.
		fmt.Fprintln(env.stdout, "dry run: nothing was changed")
		return exitOK
	}
	return r.apply(ctx, p, outcome, rev)
}

// lineWizard is the prefilled wizard as line prompts.
func (r *reconf) lineWizard(ctx context.Context, w *ui.Wizard, reviewOf func(*ui.Wizard) ui.Review) (ui.Outcome, ui.Review, int) {
	env := r.s.env
	lines := ui.NewLines(env.stdin, env.stdout)
	start := 1 // past the installer's welcome
	for {
		_, code := withContext(ctx, func() (struct{}, error) { return struct{}{}, lines.RunScreens(w, start) })
		if code == exitInvalid {
			fmt.Fprintf(env.stderr, "homestaker: %v; nothing was written\n", ui.ErrInputEnded)
			return 0, ui.Review{}, exitInvalid
		}
		if code >= 0 {
			fmt.Fprintln(env.stderr, "\nInterrupted: nothing was written.")
			return ui.Interrupted, ui.Review{}, exitInterrupt
		}
		rev := reviewOf(w)
		fmt.Fprintf(env.stdout, "\n== Review ==\n%s\n", ansi.Strip(rev.Text()))
		choices := ui.ReconfigureChoices(rev)
		labels := make([]string, len(choices))
		for i, c := range choices {
			labels[i] = c.Label
		}
		i, code := withContext(ctx, func() (int, error) { return lines.Choose("What now?", labels) })
		if code >= 0 {
			return ui.Interrupted, rev, code
		}
		c := choices[i]
		if c.Back {
			start = len(ui.ScreenIDs()) - 1
			continue
		}
		if c.Outcome == ui.ApplyAll {
			if back, code := confirmEraseLine(ctx, env, lines, rev); back {
				start = len(ui.ScreenIDs()) - 1
				continue
			} else if code >= 0 {
				return ui.Interrupted, rev, code
			}
		}
		return c.Outcome, rev, -1
	}
}

// apply runs the reconfiguration's steps through steps.Run.
func (r *reconf) apply(ctx context.Context, p plan.Plan, outcome ui.Outcome, rev ui.Review) int {
	s, env := r.s, r.s.env
	format := outcome == ui.ApplyAll
	s.nixProblem()
	t := newTarget(ctx, env, p, s.cat, r.dir, s.private, s.keys, s.nix)
	var list []steps.Step
	if outcome == ui.FlakeOnly {
		if r.slashing {
			list = append(list, steps.SlashingStep{})
		}
		list = append(list, steps.FlakeStep{})
	} else {
		// The boot entry is switched when the data disk is here and free,
		// or on the node (through its mounted /boot).
		list = reconfigureSteps(env, p, r.slashing, format, r.here, t.Disk != nil && t.DiskErr == nil)
	}
	if format {
		if err := confirmReviewed(t, rev); err != nil {
			fmt.Fprintf(env.stderr, "homestaker reconfigure: the data disk changed since the review (%v); nothing was changed\n", err)
			return exitRefused
		}
	}
	// A rebuild is journalled like an install's apply: running the same
	// reconfigure again resumes after its last finished step.
	var j *steps.Journal
	resumed := false
	if outcome != ui.FlakeOnly {
		req := steps.Request{Command: "reconfigure", Plan: p, FlakeDir: r.dir, Private: s.private, Steps: stepNames(list), ConfirmedDevice: t.Confirmed, ConfirmedByID: t.ConfirmedByID, ConfirmedSize: t.ConfirmedSize}
		var err error
		if j, resumed, err = steps.OpenJournal(s.private, req, nil); err != nil {
			reportFailure(env.stderr, "reconfigure", err)
			return exitCode(err)
		}
		if resumed {
			fmt.Fprintf(env.stdout, "Resuming the reconfiguration that stopped (journal %s).\n", steps.JournalPath(s.private))
		}
	}
	pr := &eventPrinter{w: env.stdout}
	view := interactive(env) && !s.flags.accessible
	if err := runSteps(ctx, env, view, "Reconfiguring "+p.Host.Name, t, list, pr, steps.Options{Journal: j, Resume: resumed}); err != nil {
		reportFailure(env.stderr, "reconfigure", err)
		var se *steps.Error
		if errors.As(err, &se) && se.Step != "disk" && se.Step != "kexec" {
			fmt.Fprintf(env.stderr, "homestaker: the data disk %s was not touched.\n", p.Disk.Device)
		}
		return exitCode(err)
	}
	switch {
	case outcome == ui.FlakeOnly:
		fmt.Fprintf(env.stdout, "\nWrote the flake of %s; the host key and every secret were kept.\nNext: build it with `homestaker build %s --host %s`. Boot: %s.\n",
			p.Host.Name, shellWord(r.dir), p.Host.Name, rev.Reconfigure.Next)
	case p.Host.Format == plan.FormatKexec && r.here:
		// The kexec step has jumped, or is about to.
	case p.Host.Format == plan.FormatISO && t.Built != nil:
		img := "ISO"
		if a, ok := t.Built.Artifact(nixbuild.RoleISO); ok {
			img = a.Path
		}
		fmt.Fprintf(env.stdout, "\nBoot: write the new ISO to the node's USB stick with `homestaker flash --image %s --device /dev/disk/by-id/…` and restart the node from it.\n", shellWord(img))
	default:
		fmt.Fprintf(env.stdout, "\nBoot: %s\n", rev.Reconfigure.Next)
	}
	return exitOK
}
