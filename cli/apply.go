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

	"github.com/homestaker/homestaker/boot"
	"github.com/homestaker/homestaker/nixbuild"
	"github.com/homestaker/homestaker/plan"
	"github.com/homestaker/homestaker/report"
	"github.com/homestaker/homestaker/steps"
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
	mu    sync.Mutex
	w     io.Writer
	json  bool
	build *nixbuild.BuildLinePrinter
	// quiet leaves out the step headings (a command that runs one step).
	quiet bool
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
		msg = "Warning: " + msg
	}
	fmt.Fprintln(p.w, msg)
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
func applySteps(env *cliEnv, p plan.Plan, apply bool) []steps.Step {
	list := []steps.Step{steps.FlakeStep{}}
	if !apply {
		return list
	}
	list = append(list, steps.EvaluateStep{}, steps.BuildStep{}, steps.DiskStep{})
	if p.Host.Format == plan.FormatKexec && p.Host.Arch == plan.ArchX86_64 {
		list = append(list, steps.BootEntryStep{})
	}
	if p.Host.Format == plan.FormatKexec {
		kd := defaultKexecDeps(env)
		list = append(list, steps.KexecStep{Kexec: kd.kexec, StartJump: kd.startJump, Delay: 3 * time.Second})
	}
	return list
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
		fmt.Fprintf(w, "homestaker %s: %v\n", cmd, err)
	}
}
