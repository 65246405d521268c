package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/homestaker/homestaker/boot"
	"github.com/homestaker/homestaker/nixbuild"
	"github.com/homestaker/homestaker/nixinstall"
	"github.com/homestaker/homestaker/plan"
	"github.com/homestaker/homestaker/report"
	"github.com/homestaker/homestaker/steps"
	"github.com/homestaker/homestaker/ui"
	"github.com/homestaker/homestaker/validator"
)

// exitCode is the one mapping from a pipeline's error to the exit code
// (README, "Exit codes").
func exitCode(err error) int {
	if err == nil {
		return exitOK
	}
	switch steps.KindOf(err) {
	case steps.KindUsage:
		return exitUsage
	case steps.KindInvalid:
		return exitInvalid
	case steps.KindRefused:
		return exitRefused
	case steps.KindInterrupted:
		return exitInterrupt
	}
	return exitFailure
}

// eventPrinter renders the steps' event stream as plain lines (for a dumb
// terminal, no terminal, a log), or as JSON lines with --json.
type eventPrinter struct {
	mu sync.Mutex
	w  io.Writer
	// out receives the steps' result lines (nil: w).
	out   io.Writer
	json  bool
	build *nixbuild.BuildLinePrinter
	// quiet leaves out the step headings (a command that runs one step).
	quiet bool
	// prefix starts every note (a one-step command's "disk: ").
	prefix string
	// warnPrefix starts a warning ("": "Warning: ").
	warnPrefix string
}

func (p *eventPrinter) emit(e steps.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.json {
		if e.Nix != nil {
			return
		}
		data, _ := json.Marshal(e)
		fmt.Fprintf(p.w, "%s\n", data)
		return
	}
	switch e.Status {
	case steps.Started:
		if !p.quiet {
			fmt.Fprintf(p.w, "\n[%d/%d] %s\n", e.N, e.Of, e.Title)
		}
	case steps.Progress:
		if e.Nix != nil {
			if p.build == nil {
				p.build = nixbuild.NewBuildLinePrinter(p.w, e.At)
			}
			p.build.Observe(*e.Nix, e.At)
			return
		}
		p.note(e)
	case steps.Note:
		p.note(e)
	case steps.Result:
		out := p.out
		if out == nil {
			out = p.w
		}
		fmt.Fprintln(out, e.Message)
	case steps.Skipped:
		fmt.Fprintf(p.w, "[%d/%d] %s: skipped, %s\n", e.N, e.Of, e.Title, e.Message)
	case steps.Done, steps.Failed:
		if p.build != nil {
			p.build.Finish(e.At)
			p.build = nil
		}
	}
}

func (p *eventPrinter) note(e steps.Event) {
	if e.Command != nil {
		prefix := "$ "
		if strings.HasPrefix(e.Message, "would ") {
			prefix = "would run: "
		}
		fmt.Fprintf(p.w, "%s%s\n", prefix, strings.Join(e.Command, " "))
		return
	}
	msg := strings.TrimRight(e.Message, "\n")
	if e.Level == report.Warning {
		if p.warnPrefix == "" {
			msg = "Warning: " + msg
		} else {
			msg = p.warnPrefix + msg
		}
	}
	msg = p.prefix + msg
	fmt.Fprintln(p.w, msg)
}

// runSteps runs the steps and renders their events: the full-screen apply
// view when the wizard may take the terminal (full), else the printer's
// lines. After the view ends, its notes are printed as lines too, so what
// the steps said (the reconnect instructions of a kexec, say) stays on the
// screen.
func runSteps(ctx context.Context, env *cliEnv, full bool, title string, t *steps.Target, list []steps.Step, pr *eventPrinter, o steps.Options) error {
	if !full {
		o.Emit = pr.emit
		return steps.Run(ctx, t, list, o)
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	m := ui.NewApplyModel(title, o.Now, cancel)
	prog := tea.NewProgram(m, tea.WithContext(ctx), tea.WithInput(env.stdin), tea.WithOutput(env.stdout))
	var mu sync.Mutex
	var seen []steps.Event
	o.Emit = func(e steps.Event) {
		if e.Nix == nil {
			mu.Lock()
			seen = append(seen, e)
			mu.Unlock()
		}
		prog.Send(ui.ApplyEventMsg{Event: e})
	}
	done := make(chan error, 1)
	go func() {
		err := steps.Run(runCtx, t, list, o)
		prog.Send(ui.ApplyDoneMsg{Err: err})
		done <- err
	}()
	if _, err := prog.Run(); err != nil && !errors.Is(err, tea.ErrProgramKilled) && !errors.Is(err, tea.ErrInterrupted) && ctx.Err() == nil {
		fmt.Fprintf(env.stderr, "apply view stopped: %v; the apply goes on\n", err)
	}
	err := <-done
	mu.Lock()
	defer mu.Unlock()
	for _, e := range seen {
		pr.emit(e)
	}
	return err
}

// newTarget resolves, once, what the steps work on: the plan with the
// catalogue, the folders, the validator's keys, the data disk on this
// machine and Nix.
// nixFrom, when not nil, holds Nix as found earlier in the session.
func newTarget(ctx context.Context, env *cliEnv, p plan.Plan, cat *plan.Catalogue, flakeDir, private string, keys validator.Keys, nixFrom *steps.Target) *steps.Target {
	t := &steps.Target{
		Plan: p, Catalogue: cat, FlakeDir: flakeDir, Private: private, Keys: keys,
		System: detectSources(env).System,
		Caps:   env.stepCaps(),
	}
	t.ResolveDisk()
	if nixFrom != nil {
		t.Nix, t.NixErr = nixFrom.Nix, nixFrom.NixErr
	} else {
		t.ResolveNix(ctx)
	}
	return t
}

// stepCaps are the steps' capabilities in env: the real ones unless a test
// replaced how nix runs.
func (env *cliEnv) stepCaps() steps.Caps {
	d := env.buildDeps()
	return steps.Caps{Nix: d.run, LookPath: d.lookPath, Getenv: env.getenv, Now: d.now}
}

// applySteps are the steps of an apply for the plan: keys and flake, and
// with apply the evaluation, the build, the data disk and, for a kexec
// host, the boot entry on the data disk (x86_64: the machine boots the node
// from it after a power cut) and the kexec. An ISO host boots from its USB
// stick and gets no boot entry (its kernel and initrd live on the stick).
// Nothing is erased before the image is built.
//
// With o.storeOnDisk (install --store-on-data-disk) the data disk is erased
// first, explicitly: flake → disk → store (the build's /nix bind-mounted
// from the data partition) → nix (with o.installNix) → evaluate → build →
// boot entry → kexec, which unmounts the store before it loads the node.
func applySteps(env *cliEnv, p plan.Plan, apply bool, fs steps.FlakeStep, o applyOpts) []steps.Step {
	list := []steps.Step{fs}
	if !apply {
		return list
	}
	if o.storeOnDisk {
		list = append(list, steps.DiskStep{BeforeBuild: true}, steps.StoreStep{})
		if o.installNix {
			list = append(list, steps.NixInstallStep{Installer: func() (*nixinstall.Installer, error) { return newNixInstaller(env, "") }})
		}
		list = append(list, steps.EvaluateStep{}, steps.BuildStep{})
	} else {
		list = append(list, steps.EvaluateStep{}, steps.BuildStep{}, steps.DiskStep{})
	}
	if p.Host.Format == plan.FormatKexec && p.Host.Arch == plan.ArchX86_64 {
		list = append(list, steps.BootEntryStep{})
	}
	if p.Host.Format == plan.FormatKexec {
		kd := defaultKexecDeps(env)
		list = append(list, steps.KexecStep{Kexec: kd.kexec, StartJump: kd.startJump, Delay: 3 * time.Second})
	}
	return list
}

// applyOpts choose an install's order: the build's store on the data disk,
// erased first (storeOnDisk), and Nix installed there when it is missing
// (installNix).
type applyOpts struct {
	storeOnDisk, installNix bool
}

// reconfigureSteps are the steps of a reconfiguration: the new
// slashing-protection history (when the validator client changes), the
// flake, its evaluation and the build, the data disk only when the user
// asked for it to be re-formatted, and the kexec only when the node runs on
// this machine and boots by kexec. No disk is erased without format.
//
// diskFree says the data disk is on this machine and not in use (a rescue
// system), bootHere that this machine is the node: either way the rebuild
// switches the disk's boot entry to the new build, keeping the previous one
// as the fallback, before the kexec. On the node the boot partition is
// mounted at /boot and the step writes it through that mount, never with
// mtools on the raw disk.
func reconfigureSteps(env *cliEnv, p plan.Plan, slashing, format, bootHere, diskFree bool) []steps.Step {
	var list []steps.Step
	if slashing {
		list = append(list, steps.SlashingStep{})
	}
	list = append(list, steps.FlakeStep{}, steps.EvaluateStep{}, steps.BuildStep{})
	if format {
		list = append(list, steps.DiskStep{})
	}
	if (format || diskFree || bootHere) && p.Host.Format == plan.FormatKexec && p.Host.Arch == plan.ArchX86_64 {
		list = append(list, steps.BootEntryStep{Optional: !format})
	}
	if bootHere && p.Host.Format == plan.FormatKexec {
		kd := defaultKexecDeps(env)
		list = append(list, steps.KexecStep{Kexec: kd.kexec, StartJump: kd.startJump, Delay: 3 * time.Second})
	}
	return list
}

// describeSteps is the review's list of what the steps will do, as they
// describe themselves; the flake step's lines are the review's file list.
func describeSteps(t *steps.Target, list []steps.Step) []ui.StepPlan {
	var out []ui.StepPlan
	for _, st := range list {
		sp := ui.StepPlan{Title: st.Title(t)}
		if st.Name() != "flake" {
			sp.Lines = st.Describe(t)
		}
		out = append(out, sp)
	}
	return out
}

// stepNames are the names of the steps, for the journal.
func stepNames(list []steps.Step) []string {
	var names []string
	for _, s := range list {
		names = append(names, s.Name())
	}
	return names
}

// reportFailure prints a failed step's error with what the user can do; the
// evaluator's and the build's failures have reports of their own.
func reportFailure(w io.Writer, cmd string, err error) {
	var ee *nixbuild.EvalError
	var be *nixbuild.BuildError
	var le *boot.LoadError
	switch {
	case errors.As(err, &ee):
		writeEvalFailure(w, ee)
	case errors.As(err, &be):
		nixbuild.WriteBuildFailure(w, be)
	case errors.As(err, &le):
		fmt.Fprintf(w, "homestaker %s: %s failed: %v\n%s\n%s\n", cmd, le.Call, le.Err, le.Meaning, le.Fix)
	default:
		var se *steps.Error
		if errors.As(err, &se) && se.Step == cmd {
			err = se.Err // the command is the step: name it once
		}
		fmt.Fprintf(w, "homestaker %s: %v\n", cmd, err)
	}
}
