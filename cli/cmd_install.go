package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/term"

	"github.com/homestaker/homestaker/boot"
	"github.com/homestaker/homestaker/disk"
	"github.com/homestaker/homestaker/flake"
	"github.com/homestaker/homestaker/nixbuild"
	"github.com/homestaker/homestaker/plan"
	"github.com/homestaker/homestaker/report"
	"github.com/homestaker/homestaker/secrets"
	"github.com/homestaker/homestaker/steps"
	"github.com/homestaker/homestaker/ui"
	"github.com/homestaker/homestaker/validator"
)

// exitHangup is the exit status after the terminal went away (128+SIGHUP);
// the answers so far are kept as a draft.
const exitHangup = 129

// exitInputEnded is the exit status when the wizard's input ends before
// every question is answered (no terminal, nothing piped in): the wizard
// was started without what it needs, so it is a usage error, not a
// problem of an answers file.
const exitInputEnded = exitUsage

// installFlags are the flags of `homestaker install` (and of the bare
// `homestaker`, which takes none).
type installFlags struct {
	answers, out, private string
	accessible, dryRun    bool
	flakeOnly, yes        bool
	json                  bool
	force                 bool
	confirm               string
	// foreground: the apply runs in this process (and ends with its
	// terminal) instead of a detached one.
	foreground bool
	// storeOnDisk: erase the data disk first and build with /nix on it;
	// installNix: install Nix there when it is missing.
	storeOnDisk, installNix bool
}

// opts are the apply's order options of the flags.
func (f installFlags) opts() applyOpts {
	return applyOpts{storeOnDisk: f.storeOnDisk, installNix: f.installNix}
}

// runWizard is `homestaker` with no arguments: the wizard.
func runWizard(ctx context.Context, env *cliEnv) int {
	if code, ok := attachRunning(ctx, env); ok {
		return code
	}
	if code, ok := offerResume(ctx, env); ok {
		return code
	}
	return install(ctx, env, installFlags{})
}

// runInstall is `homestaker install`: the wizard, or with --answers the same
// flow without questions.
func runInstall(ctx context.Context, env *cliEnv, args []string) int {
	fs := newFlags(env, "install", "install [--answers FILE] [--out DIR] [--private DIR] [--accessible] [--dry-run] [--flake-only] [--force] [--json] [--yes --confirm-device DEV] [--foreground] [--store-on-data-disk [--install-nix]]")
	var f installFlags
	fs.StringVar(&f.answers, "answers", "", "run without questions from this answers `file`")
	fs.StringVar(&f.out, "out", "", "the flake `folder` (default: asked, ~/homestaker-flake)")
	fs.StringVar(&f.private, "private", "", "`folder` for private keys (default $XDG_STATE_HOME/homestaker)")
	fs.BoolVar(&f.accessible, "accessible", false, "plain line prompts instead of the full-screen wizard")
	fs.BoolVar(&f.dryRun, "dry-run", false, "show the review and stop; change nothing")
	fs.BoolVar(&f.flakeOnly, "flake-only", false, "write the flake and answers only; touch no disk")
	fs.BoolVar(&f.yes, "yes", false, "do not ask (erasing the disk also needs --confirm-device)")
	fs.StringVar(&f.confirm, "confirm-device", "", "the data disk to erase, named again, with --yes")
	fs.BoolVar(&f.json, "json", false, "print the apply's events as JSON lines (one object per line)")
	fs.BoolVar(&f.force, "force", false, "overwrite files in the flake folder that homestaker did not write or that were edited since (local.nix is never overwritten)")
	fs.BoolVar(&f.foreground, "foreground", false, "apply in this process: the apply ends if the terminal goes away (default: it runs on its own; `homestaker attach` follows it)")
	fs.BoolVar(&f.storeOnDisk, "store-on-data-disk", false, "erase and format the data disk BEFORE the build and keep the build's Nix store on it (bind-mounted at /nix), to spare the RAM of a rescue system; a failed build leaves the disk erased")
	fs.BoolVar(&f.installNix, "install-nix", false, "with --store-on-data-disk: when Nix 2.18 or newer is missing, install the pinned, verified Nix into the store on the data disk (as `homestaker nix install` does)")
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	if f.installNix && !f.storeOnDisk {
		fmt.Fprintln(env.stderr, "homestaker install: --install-nix goes with --store-on-data-disk; without it, install Nix first with `homestaker nix install`")
		return exitUsage
	}
	if f.storeOnDisk && f.flakeOnly {
		fmt.Fprintln(env.stderr, "homestaker install: --store-on-data-disk builds on the data disk, --flake-only touches no disk: choose one")
		return exitUsage
	}
	if f.yes && f.confirm == "" && !f.flakeOnly && !f.dryRun {
		fmt.Fprintln(env.stderr, "homestaker install: --yes erases the data disk only with --confirm-device DEV naming it (or use --flake-only)")
		return exitUsage
	}
	return install(ctx, env, f)
}

// interactive reports whether the wizard can take over the terminal: both
// ends are terminals and the terminal is not dumb.
func interactive(env *cliEnv) bool {
	in, ok1 := env.stdin.(*os.File)
	out, ok2 := env.stdout.(*os.File)
	if !ok1 || !ok2 || env.getenv("TERM") == "dumb" {
		return false
	}
	return term.IsTerminal(in.Fd()) && term.IsTerminal(out.Fd())
}

// session is one run of the wizard or of install --answers.
type session struct {
	env     *cliEnv
	sys     disk.System
	cat     *plan.Catalogue
	hw      ui.Hardware
	private string
	home    string
	flags   installFlags
	// keys are the validator's keys of the plan last reviewed;
	// keysChecked says they were checked already for the one plan of a
	// headless run.
	keys        validator.Keys
	keysChecked bool
	// nix is Nix as found once for the session (nil: not looked for yet).
	nix *steps.Target
	// target is the target of the plan last reviewed.
	target *steps.Target
	// flake is the dry run of the flake step of the last review.
	flake steps.FlakeResult
}

func install(ctx context.Context, env *cliEnv, f installFlags) int {
	cat, err := plan.LoadCatalogue()
	if err != nil {
		fmt.Fprintf(env.stderr, "homestaker: %v\n", err)
		return exitFailure
	}
	priv, err := privateDir(env, f.private)
	if err != nil {
		fmt.Fprintf(env.stderr, "homestaker: %v\n", err)
		return exitUsage
	}
	s := &session{env: env, sys: detectSources(env).System, cat: cat, private: priv, home: env.getenv("HOME"), flags: f}
	s.hw = detectHardware(ctx, env)
	if f.answers != "" {
		return s.headless(ctx)
	}
	return s.wizard(ctx)
}

// expandHome turns a leading ~/ into the home folder.
func (s *session) expandHome(p string) string {
	p = strings.TrimSpace(p)
	if s.home != "" && (p == "~" || strings.HasPrefix(p, "~/")) {
		p = filepath.Join(s.home, strings.TrimPrefix(p, "~"))
	}
	if abs, err := filepath.Abs(p); err == nil {
		return abs
	}
	return p
}

// headless is install --answers: review, confirm, apply without questions.
func (s *session) headless(ctx context.Context) int {
	env := s.env
	p, res, code := loadAnswers(env, s.flags.answers)
	if code >= 0 {
		return code
	}
	s.keys, res = checkKeys(p, s.cat, res)
	s.keysChecked = true
	printResult(env.stderr, s.flags.answers, res)
	if !res.OK() {
		return exitInvalid
	}
	out := s.flags.out
	if out == "" {
		out = filepath.Join(s.home, "homestaker-flake")
	}
	out = s.expandHome(out)
	rev := s.review(p, out)
	fmt.Fprintln(env.stdout, ansi.Strip(rev.Text()))
	if rev.Problem != "" {
		if rev.Refused {
			fmt.Fprintf(env.stderr, "homestaker install: %s\n", rev.Problem)
			return exitRefused
		}
		return exitFailure
	}
	if s.flags.dryRun {
		fmt.Fprintln(env.stdout, "dry run: nothing was changed")
		return exitOK
	}
	outcome := ui.ApplyAll
	if s.flags.flakeOnly || rev.EraseDevice == "" {
		outcome = ui.FlakeOnly
	}
	if outcome == ui.ApplyAll && rev.Blocker != "" {
		fmt.Fprintf(env.stderr, "homestaker install: %s\nWrite the flake only with --flake-only.\n", rev.Blocker)
		return exitRefused
	}
	if outcome == ui.ApplyAll {
		switch {
		case s.flags.yes:
			if !slices.Contains(rev.ConfirmNames, s.flags.confirm) {
				fmt.Fprintf(env.stderr, "homestaker install: --confirm-device %s does not name the disk being erased (%s)\n", s.flags.confirm, rev.EraseDevice)
				return exitRefused
			}
		case interactive(env):
			err := ui.NewLines(env.stdin, env.stderr).Confirm("Type "+rev.EraseDevice+" to erase it (Enter alone stops)", rev.ConfirmNames)
			if err != nil {
				fmt.Fprintln(env.stderr, "Stopped: nothing was changed.")
				return exitRefused
			}
		default:
			fmt.Fprintf(env.stderr, "homestaker install: erasing %s needs --yes --confirm-device %s (or --flake-only)\n", rev.EraseDevice, rev.EraseDevice)
			return exitRefused
		}
	}
	return s.apply(ctx, p, out, outcome, rev)
}

// draft is what is kept when the terminal goes away mid-wizard.
type draft struct {
	SavedAt time.Time  `json:"savedAt"`
	Screen  int        `json:"screen"`
	Answers ui.Answers `json:"answers"`
}

func (s *session) draftPath() string { return filepath.Join(s.private, "draft.json") }

func (s *session) loadDraft() (draft, bool) {
	var d draft
	data, err := os.ReadFile(s.draftPath())
	if err != nil || json.Unmarshal(data, &d) != nil {
		return d, false
	}
	return d, true
}

func (s *session) saveDraft(d draft) error {
	data, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(s.private, 0o700); err != nil {
		return err
	}
	return secrets.WriteFileAtomic(s.draftPath(), append(data, '\n'), 0o600)
}

// wizard asks the questions (full screen, or plain lines), then applies.
func (s *session) wizard(ctx context.Context) int {
	env := s.env
	w := &ui.Wizard{
		A: ui.DefaultAnswers(s.hw, s.cat, s.home), HW: s.hw, Cat: s.cat, PrivateDir: s.private,
		Rand: rand.IntN,
	}
	if s.flags.out != "" {
		w.A.FlakeDir = s.flags.out
	}
	full := interactive(env) && !s.flags.accessible
	lines := ui.NewLines(env.stdin, env.stdout)
	start := 0

	// The latest answers, saved as a draft if the connection drops.
	var mu sync.Mutex
	latest := draft{Answers: w.A}
	observe := func(a ui.Answers, screen int) {
		mu.Lock()
		latest.Answers, latest.Screen = a, screen
		mu.Unlock()
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	hupDone := make(chan struct{})
	defer close(hupDone)
	go func() {
		select {
		case <-hup:
			mu.Lock()
			d := latest
			mu.Unlock()
			d.SavedAt = time.Now().UTC()
			_ = s.saveDraft(d)
			os.Exit(exitHangup)
		case <-hupDone:
		}
	}()

	if d, ok := s.loadDraft(); ok {
		resume, code := s.askResume(ctx, full, lines, d)
		if code >= 0 {
			return code
		}
		if resume {
			w.A, start = d.Answers, d.Screen
		}
	}

	model := func() *ui.Model {
		return ui.NewModel(w, start, func(w *ui.Wizard) ui.Review {
			return s.review(w.Plan(), s.expandHome(w.A.FlakeDir))
		}, observe)
	}
	outcome, rev, code := askWizard(ctx, env, full, model, func() (ui.Outcome, ui.Review, int) {
		return s.lineWizard(ctx, w, lines, start, observe)
	})
	if code >= 0 {
		return code
	}
	p := w.Plan()
	if res := p.Validate(s.cat); !res.OK() {
		printResult(env.stderr, "the wizard's answers", res)
		return exitInvalid
	}
	if s.flags.dryRun {
		// --dry-run: the review is the end of it, whatever was chosen there.
		fmt.Fprintln(env.stdout, "dry run: nothing was changed")
		return exitOK
	}
	code = s.apply(ctx, p, s.expandHome(w.A.FlakeDir), outcome, rev)
	if code == exitOK {
		_ = os.Remove(s.draftPath())
	}
	return code
}

// confirmEraseLine asks, in line mode, for the disk being erased to be
// typed back: back says Enter alone went back to the questions; code >= 0
// means stop with it (interrupted).
func confirmEraseLine(ctx context.Context, env *cliEnv, lines *ui.Lines, rev ui.Review) (back bool, code int) {
	fmt.Fprintf(env.stdout, "\n== Confirm ==\nThis erases everything on %s\n%s\n", rev.EraseDevice, rev.EraseDetail)
	_, code = withContext(ctx, func() (struct{}, error) {
		return struct{}{}, lines.Confirm("Type "+rev.EraseDevice+" to erase it (Enter alone goes back)", rev.ConfirmNames)
	})
	if code == exitOK {
		return true, -1
	}
	return false, code
}

// askWizard runs the wizard's questions and review: full screen (the
// model), or as line prompts (lines); code >= 0 means stop with it (an
// interrupt, a quit at the review, a failed terminal).
func askWizard(ctx context.Context, env *cliEnv, full bool, model func() *ui.Model, lines func() (ui.Outcome, ui.Review, int)) (ui.Outcome, ui.Review, int) {
	var outcome ui.Outcome
	var rev ui.Review
	if full {
		m := model()
		prog := tea.NewProgram(m, tea.WithContext(ctx), tea.WithInput(env.stdin), tea.WithOutput(env.stdout))
		if _, err := prog.Run(); err != nil && !errors.Is(err, tea.ErrProgramKilled) && !errors.Is(err, tea.ErrInterrupted) {
			fmt.Fprintf(env.stderr, "homestaker: %v\n", err)
			return outcome, rev, exitFailure
		}
		outcome, rev = m.Outcome(), m.Review()
	} else {
		var code int
		if outcome, rev, code = lines(); code >= 0 {
			return outcome, rev, code
		}
	}
	switch outcome {
	case ui.Interrupted:
		fmt.Fprintln(env.stderr, "Interrupted: nothing was written.")
		return outcome, rev, exitInterrupt
	case ui.Quit:
		fmt.Fprintln(env.stderr, "Stopped at the review: nothing was written.")
		return outcome, rev, exitOK
	}
	return outcome, rev, -1
}

// askResume offers to resume a draft; code >= 0 means stop with it.
func (s *session) askResume(ctx context.Context, full bool, lines *ui.Lines, d draft) (bool, int) {
	title := fmt.Sprintf("Answers from an earlier session (saved %s) were kept when the connection dropped.", d.SavedAt.Local().Format("2006-01-02 15:04"))
	opts := []string{"Resume where you left off", "Start over (the saved answers are discarded at the end)"}
	if full {
		choice, err := ui.AskChoice(ctx, s.env.stdin, s.env.stdout, title, opts)
		if err != nil {
			fmt.Fprintln(s.env.stderr, "Interrupted: nothing was written.")
			return false, exitInterrupt
		}
		return choice == 0, -1
	}
	fmt.Fprintln(s.env.stdout, title)
	choice, code := withContext(ctx, func() (int, error) { return lines.Choose("Resume?", opts) })
	if code >= 0 {
		return false, code
	}
	return choice == 0, -1
}

// withContext runs a blocking prompt, returning exitInterrupt when ctx ends
// (Ctrl-C) and exitInputEnded when the input ends first.
func withContext[T any](ctx context.Context, f func() (T, error)) (T, int) {
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	go func() {
		v, err := f()
		ch <- result{v, err}
	}()
	select {
	case <-ctx.Done():
		var zero T
		return zero, exitInterrupt
	case r := <-ch:
		if r.err != nil {
			var zero T
			if errors.Is(r.err, ui.ErrQuit) {
				return zero, exitOK
			}
			return zero, exitInputEnded
		}
		return r.v, -1
	}
}

// lineWizard is the wizard as plain line prompts.
func (s *session) lineWizard(ctx context.Context, w *ui.Wizard, lines *ui.Lines, start int, observe func(ui.Answers, int)) (ui.Outcome, ui.Review, int) {
	env := s.env
	for {
		_, code := withContext(ctx, func() (struct{}, error) {
			return struct{}{}, lines.RunScreens(w, start)
		})
		if code == exitInputEnded {
			fmt.Fprintf(env.stderr, "homestaker: %v; nothing was written (answer on a terminal, or run without questions: homestaker install --answers FILE)\n", ui.ErrInputEnded)
			return 0, ui.Review{}, exitInputEnded
		}
		if code >= 0 {
			fmt.Fprintln(env.stderr, "\nInterrupted: nothing was written.")
			return ui.Interrupted, ui.Review{}, exitInterrupt
		}
		observe(w.A, len(ui.ScreenIDs())-1)
		rev := s.review(w.Plan(), s.expandHome(w.A.FlakeDir))
		fmt.Fprintf(env.stdout, "\n== Review ==\n%s\n", ansi.Strip(rev.Text()))
		var opts []string
		var outcomes []ui.Outcome
		if rev.Blocker == "" && rev.EraseDevice != "" {
			opts = append(opts, "Apply: write the flake, build, erase the disk above, boot")
			outcomes = append(outcomes, ui.ApplyAll)
		}
		opts = append(opts, "Write the flake and answers only (no disk is touched)", "Go back and change answers", "Quit without writing anything")
		outcomes = append(outcomes, ui.FlakeOnly, -1, ui.Quit)
		choice, code := withContext(ctx, func() (int, error) { return lines.Choose("What now?", opts) })
		if code >= 0 {
			return ui.Interrupted, rev, code
		}
		o := outcomes[choice]
		if o == -1 {
			start = len(ui.ScreenIDs()) - 1
			continue
		}
		if o == ui.ApplyAll {
			if back, code := confirmEraseLine(ctx, env, lines, rev); back {
				start = len(ui.ScreenIDs()) - 1
				continue
			} else if code >= 0 {
				return ui.Interrupted, rev, code
			}
		}
		return o, rev, -1
	}
}

// review describes, without side effects, what applying p would do.
func (s *session) review(p plan.Plan, flakeDir string) ui.Review {
	rev := ui.Review{Plan: p, FlakeDir: flakeDir, PrivateDir: s.private,
		AnswersPath: filepath.Join(flakeDir, "hosts", p.Host.Name, "homestaker.json")}
	res := p.Validate(s.cat)
	if res.OK() && !s.keysChecked {
		s.keys, res = checkKeys(p, s.cat, res)
	}
	rev.Warnings = res.Warnings
	if !res.OK() {
		rev.Problem = keysProblem(res)
		return rev
	}
	rev.Validator = describeKeys(p, s.keys)
	if inside(s.private, flakeDir) {
		rev.Problem = fmt.Sprintf("the private folder %s is inside the flake folder %s; choose another flake folder", s.private, flakeDir)
		return rev
	}
	var keyNotes []string
	fr, err := steps.Flake(context.Background(), steps.FlakeRequest{Plan: p, Out: flakeDir, Private: s.private, DryRun: true, Keys: &s.keys,
		Report: report.Func(func(e report.Event) { keyNotes = append(keyNotes, e.Message) }),
		Write:  flakeWriteOptions(s.env, s.flags.force, flakeDir, s.flags.answers, p.Host.Name)})
	for _, c := range fr.Changes {
		rev.Files = append(rev.Files, ui.FileAction{Path: c.Path, Action: string(c.Action)})
	}
	var foreign *flake.ForeignError
	if errors.As(err, &foreign) {
		// The same refusal render gives, before anything is written.
		rev.Problem, rev.Refused = err.Error(), true
		return rev
	}
	if err != nil {
		rev.Problem = err.Error()
		return rev
	}
	s.flake = fr
	rev.Keys = keyNotes
	if fr.HostKey.Fingerprint != "" {
		rev.Keys = append(rev.Keys, "keeps the SSH host key "+fr.HostKey.Fingerprint)
	}

	// The target as the apply will see it: the data disk found on this
	// machine, Nix (looked for once per session).
	s.nixProblem()
	t := newTarget(context.Background(), s.env, p, s.cat, flakeDir, s.private, s.keys, s.nix)
	switch {
	case t.Disk != nil && t.DiskErr == nil:
		rev.EraseDevice = p.Disk.Device
		rev.EraseDetail = steps.EraseDetail(p, *t.Disk)
		rev.ConfirmNames = steps.EraseNames(p, *t.Disk)
		found := *t.Disk
		rev.EraseDisk = &found
	case t.Disk != nil && t.Disk.InUse:
		rev.Blocker = fmt.Sprintf("%s is in use (%s): it cannot be erased", p.Disk.Device, t.Disk.InUseReason)
	case t.Disk != nil:
		rev.Blocker = t.DiskErr.Error()
	default:
		rev.Blocker = fmt.Sprintf("the data disk %s is not on this machine: write the flake here and format the disk where it is", p.Disk.Device)
	}
	// What the apply will do, as its steps describe themselves; the flake
	// step's lines are the file list above.
	s.target = t
	t.NixByStep = s.flags.storeOnDisk && s.flags.installNix
	rev.Steps = describeSteps(t, applySteps(s.env, p, true, steps.FlakeStep{}, s.flags.opts()))

	rev.Boot = "run `homestaker kexec " + flakeDir + " --host " + p.Host.Name + "` to boot it from this system"
	if p.Host.Format == plan.FormatISO {
		rev.Boot = "write the ISO to a USB stick (`homestaker flash`) and boot from it"
	}
	if p.Host.Format == plan.FormatSD {
		rev.Boot = sdBoot(s.env, p)
	}
	rev.RAM = ramBudget(p, s.cat, flakeDir)
	rev.PowerCut = boot.AfterPowerCut(p, boot.RunningFirmware(s.env.getenv(systemRootEnv)))
	rev.Store = storeLine(s.env.getenv(systemRootEnv), p, flakeDir)
	if s.flags.storeOnDisk {
		rev.Store = storeOnDiskLine(t, flakeDir)
		if err := (steps.StoreStep{}).Preflight(t); rev.Blocker == "" && err != nil {
			rev.Blocker = "the build's store cannot go on the data disk: " + err.Error()
		}
	}
	switch {
	case rev.Blocker != "" || t.NixErr == nil:
	case s.flags.storeOnDisk && s.flags.installNix:
		// The nix step installs it into the store on the data disk.
	case s.flags.storeOnDisk:
		rev.Blocker = nixErrorText(t.NixErr) + "\nWith --store-on-data-disk, add --install-nix: homestaker then installs the pinned, verified Nix into the store on the data disk " +
			"(`homestaker nix install` would put it into /nix in RAM, which the store on the data disk cannot share)"
	default:
		rev.Blocker = nixErrorText(t.NixErr)
	}
	return rev
}

// nixProblem says why the image cannot be built here, "" when it can. Nix
// is looked for once per session; the apply's target reuses what was found.
func (s *session) nixProblem() string {
	if s.nix == nil {
		t := &steps.Target{Caps: s.env.stepCaps()}
		t.ResolveNix(context.Background())
		s.nix = t
	}
	if s.nix.NixErr != nil {
		return nixErrorText(s.nix.NixErr)
	}
	return ""
}

// nixErrorText is the review's sentence for a missing or old Nix.
func nixErrorText(err error) string {
	var old *nixbuild.OldNixError
	if errors.As(err, &old) {
		return err.Error()
	}
	return "the image cannot be built here: " + err.Error()
}

// nixProblem says why the image cannot be built here (the check `homestaker
// build` makes), "" when it can.
func nixProblem(env *cliEnv) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, v, err := findNix(ctx, env, env.buildDeps())
	if err != nil {
		return "the image cannot be built here: " + err.Error()
	}
	if !v.AtLeast(nixbuild.MinNixMajor, nixbuild.MinNixMinor) {
		return (&nixbuild.OldNixError{Version: v}).Error()
	}
	return ""
}

// apply runs the steps for the outcome through steps.Run: keys and flake,
// then (ApplyAll) the evaluation and build, the data disk and the boot
// (DESIGN's order: nothing is erased before the configuration evaluates
// and its image is built). An apply is journalled in the private folder;
// running the same install again resumes after its last finished step.
func (s *session) apply(ctx context.Context, p plan.Plan, flakeDir string, outcome ui.Outcome, rev ui.Review) int {
	env := s.env
	full := outcome == ui.ApplyAll
	write := flakeWriteOptions(env, s.flags.force, flakeDir, s.flags.answers, p.Host.Name)
	list := applySteps(env, p, full, steps.FlakeStep{Write: write}, s.flags.opts())
	s.nixProblem()
	t := newTarget(ctx, env, p, s.cat, flakeDir, s.private, s.keys, s.nix)
	if full {
		// The disk the user confirmed at the review must be the one
		// found now; the disk step checks again right before it writes.
		if err := confirmReviewed(t, rev); err != nil {
			fmt.Fprintf(env.stderr, "homestaker install: the data disk changed since the review (%v); nothing was changed\n", err)
			return exitRefused
		}
		t.NixByStep = s.flags.storeOnDisk && s.flags.installNix
	}
	var j *steps.Journal
	resumed := false
	if full {
		req := steps.Request{Command: "install", Plan: p, FlakeDir: flakeDir, Private: s.private, Steps: stepNames(list),
			ConfirmedDevice: t.Confirmed, ConfirmedByID: t.ConfirmedByID, ConfirmedSize: t.ConfirmedSize, Force: write.Force, Input: write.Input,
			StoreOnDataDisk: s.flags.storeOnDisk, InstallNix: s.flags.storeOnDisk && s.flags.installNix}
		var err error
		if j, resumed, err = steps.OpenJournal(s.private, req, nil); err != nil {
			reportFailure(env.stderr, "install", err)
			return exitCode(err)
		}
		if resumed {
			fmt.Fprintf(env.stdout, "Resuming the apply that stopped (journal %s).\n", steps.JournalPath(s.private))
		}
	}
	if full && env.detach != nil && !s.flags.foreground {
		// After the confirmation the apply runs on its own, so that a
		// dropped SSH session does not end it; this process follows it.
		if code := s.startDetached(ctx, j); code != exitOK {
			return code
		}
	} else {
		pr := &eventPrinter{w: env.stdout, json: s.flags.json}
		view := interactive(env) && !s.flags.accessible && !s.flags.json
		err := runSteps(ctx, env, view, "Applying "+p.Host.Name, t, list, pr, steps.Options{Journal: j, Resume: resumed})
		if err != nil {
			device := ""
			if full {
				device = rev.EraseDevice
			}
			fmt.Fprint(env.stderr, applyFailureText(err, device, stepNames(list)))
			return exitCode(err)
		}
	}
	if !full {
		// disk format finds the host key in the default private folder;
		// another one must be named.
		privateArg := ""
		if def, err := privateDir(env, ""); err != nil || def != s.private {
			privateArg = " --private " + shellWord(s.private)
		}
		fmt.Fprintf(env.stdout, "\nNext: format the data disk (`homestaker disk format --answers %s%s`), build (`homestaker build %s --host %s`), then boot it.\n",
			shellWord(t.AnswersPath()), privateArg, shellWord(flakeDir), p.Host.Name)
		return exitOK
	}
	if p.Host.Format != plan.FormatKexec {
		fmt.Fprintf(env.stdout, "\nBoot: %s\n", rev.Boot)
	}
	return exitOK
}

// confirmReviewed checks that the data disk found now is the one confirmed at
// the review (rev), by kernel name and by identity (by-id name, size), and
// records it in t for the disk step, which checks it again right before it
// writes.
func confirmReviewed(t *steps.Target, rev ui.Review) error {
	if t.Disk == nil {
		return t.DiskErr
	}
	if !slices.Contains(rev.ConfirmNames, t.Disk.Path) {
		return fmt.Errorf("%s is not among the names confirmed (%s)", t.Disk.Path, strings.Join(rev.ConfirmNames, ", "))
	}
	confirmed := *t.Disk
	if rev.EraseDisk != nil {
		confirmed = *rev.EraseDisk
	}
	if err := steps.ConfirmedIdentity(*t.Disk, confirmed.ByID, confirmed.SizeBytes); err != nil {
		return err
	}
	t.Confirmed, t.ConfirmedByID, t.ConfirmedSize = t.Disk.Path, confirmed.ByID, confirmed.SizeBytes
	return nil
}

// shellWord quotes s for a shell when it needs quoting, so a printed
// command can be pasted as it is.
func shellWord(s string) string {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:=@+,%", r)) {
			return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
		}
	}
	return s
}
