package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/term"

	"github.com/homestaker/homestaker/flake"
	"github.com/homestaker/homestaker/nixbuild"
	"github.com/homestaker/homestaker/plan"
	"github.com/homestaker/homestaker/steps"
	"github.com/homestaker/homestaker/ui"
)

// nixOptions collects repeated --nix-option NAME=VALUE flags.
type nixOptions []string

func (o *nixOptions) String() string { return strings.Join(*o, " ") }

func (o *nixOptions) Set(v string) error {
	name, value, ok := strings.Cut(v, "=")
	if !ok || name == "" {
		return fmt.Errorf("%q is not NAME=VALUE", v)
	}
	*o = append(*o, "--option", name, value)
	return nil
}

// buildDeps are the capabilities runBuild uses; tests replace them.
type buildDeps struct {
	lookPath func(string) (string, error)
	run      nixbuild.CommandRunner
	now      func() time.Time
	// isTerminal reports whether w is a terminal the progress view can use.
	isTerminal func(w io.Writer) bool
	// viewOptions are extra options for the progress view's program.
	viewOptions []tea.ProgramOption
}

func defaultBuildDeps() buildDeps {
	return buildDeps{
		lookPath: exec.LookPath,
		run:      nixbuild.ExecRunner(nixbuild.DefaultStopGrace),
		now:      time.Now,
		isTerminal: func(w io.Writer) bool {
			f, ok := w.(*os.File)
			return ok && term.IsTerminal(f.Fd())
		},
	}
}

// runBuild is `homestaker build DIR [--host NAME]`.
// findNix finds the nix binary and asks its version (the caller judges
// whether it is recent enough).
func findNix(ctx context.Context, env *cliEnv, deps buildDeps) (string, nixbuild.NixVersion, error) {
	nixPath, err := nixbuild.FindNix(deps.lookPath, env.getenv)
	if err != nil {
		return "", nixbuild.NixVersion{}, fmt.Errorf("%v.\n%s", err, nixbuild.NixInstallHint)
	}
	version, err := nixbuild.QueryNixVersion(ctx, deps.run, nixPath)
	return nixPath, version, err
}

func runBuild(ctx context.Context, env *cliEnv, args []string) int {
	return runBuildWith(ctx, env, args, env.buildDeps())
}

// buildDeps are the nix capabilities of env: the real ones unless a test
// set env.build.
func (env *cliEnv) buildDeps() buildDeps {
	if env.build != nil {
		return *env.build
	}
	return defaultBuildDeps()
}

func runBuildWith(ctx context.Context, env *cliEnv, args []string, deps buildDeps) int {
	fs := flag.NewFlagSet("build", flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	host := fs.String("host", "", "the host to build (needed when the flake has several)")
	plain := fs.Bool("plain", false, "print plain progress lines instead of the progress view")
	allowOld := fs.Bool("allow-old-nix", false, "build even with a Nix older than 2.18 (only trivial test flakes build with it)")
	noLink := fs.Bool("no-link", false, "do not create the result-<host> link in the flake folder")
	sdImage := fs.String("sd-image", "", "for an sd host, where the SD-card image goes (default: $XDG_CACHE_HOME/homestaker/images/<host>-sd.img)")
	var opts nixOptions
	fs.Var(&opts, "nix-option", "pass `NAME=VALUE` to nix as --option NAME VALUE (repeatable)")
	fs.Usage = func() {
		fmt.Fprintln(env.stderr, "usage: homestaker build DIR [--host NAME] [--plain] [--nix-option NAME=VALUE]…")
		fmt.Fprintln(env.stderr, "Builds the host's kexec tree or ISO with nix build, shows the progress, and")
		fmt.Fprintln(env.stderr, "writes hosts/<host>/build-manifest.json with the artifacts' sizes and checksums.")
		fs.PrintDefaults()
	}
	positional, err := parseInterleaved(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if len(positional) != 1 {
		fmt.Fprintln(env.stderr, "homestaker build: give exactly one flake folder (the folder 'homestaker render' wrote)")
		fs.Usage()
		return exitUsage
	}

	target, err := nixbuild.ReadBuildTarget(positional[0], *host)
	if err != nil {
		fmt.Fprintf(env.stderr, "homestaker build: %v\n", err)
		return targetExit(err)
	}
	p := buildPlan(target)
	cat, err := plan.LoadCatalogue()
	if err != nil {
		fmt.Fprintf(env.stderr, "homestaker build: %v\n", err)
		return exitFailure
	}
	t := &steps.Target{Plan: p, Catalogue: cat, FlakeDir: target.FlakeDir, NixArgs: opts, Caps: steps.Caps{
		Nix: deps.run, LookPath: deps.lookPath, Getenv: env.getenv, Now: deps.now}}
	t.ResolveNix(ctx)
	var old *nixbuild.OldNixError
	switch {
	case t.NixErr != nil && errors.As(t.NixErr, &old) && *allowOld:
		fmt.Fprintf(env.stderr, "Nix %s is older than %d.%d; building anyway (--allow-old-nix).\n",
			t.Nix.Version, nixbuild.MinNixMajor, nixbuild.MinNixMinor)
		t.NixErr = nil
	case t.NixErr != nil:
		fmt.Fprintf(env.stderr, "homestaker build: %v\n", t.NixErr)
		return exitFailure
	}

	// Evaluate first: a configuration Nix refuses stops here, with the
	// evaluator's own message, before anything is built.
	pr := &eventPrinter{w: env.stderr, out: env.stdout, quiet: true}
	build := steps.BuildStep{NoLink: *noLink, SDImage: *sdImage}
	useTUI := !*plain && deps.isTerminal(env.stderr) &&
		env.getenv("TERM") != "dumb" && env.getenv("NO_COLOR") == ""
	err = steps.Run(ctx, t, []steps.Step{steps.EvaluateStep{}}, steps.Options{Emit: pr.emit, Now: deps.now})
	if err == nil {
		fmt.Fprintln(env.stderr, flake.BinaryCacheNote())
		if useTUI {
			err = buildWithView(ctx, env, build.Title(t), t, build, pr, deps)
		} else {
			err = steps.Run(ctx, t, []steps.Step{build}, steps.Options{Emit: pr.emit, Now: deps.now})
		}
	}
	if err != nil {
		reportFailure(env.stderr, "build", err)
		return exitCode(err)
	}
	return exitOK
}

// buildPlan is the host's plan as far as a build needs it: the answers in
// the flake when they decode (the clients' RAM), else what the build target
// read of them (a hand-made flake's homestaker.json may hold no more).
func buildPlan(target nixbuild.BuildTarget) plan.Plan {
	data, err := os.ReadFile(filepath.Join(target.FlakeDir, "hosts", target.Host, "homestaker.json"))
	if err == nil {
		if p, err := plan.Decode(data); err == nil && p.Host.Name == target.Host {
			return p
		}
	}
	var p plan.Plan
	p.Host.Name, p.Host.Format, p.Host.Arch = target.Host, target.Format, target.Arch
	if target.MemoryBytes > 0 {
		p.Host.MemoryBytes = target.MemoryBytes
	}
	return p
}

// buildWithView runs the build step under the progress view on stderr:
// the build's log goes to the view, its notes and result to the printer
// once the view has ended.
func buildWithView(ctx context.Context, env *cliEnv, title string, t *steps.Target, build steps.BuildStep, pr *eventPrinter, deps buildDeps) error {
	buildCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	model := ui.NewBuildModel(title, deps.now, cancel, true)
	p := tea.NewProgram(model, append([]tea.ProgramOption{tea.WithContext(ctx),
		tea.WithOutput(env.stderr), tea.WithInput(env.stdin)}, deps.viewOptions...)...)
	var mu sync.Mutex
	var later []steps.Event
	emit := func(e steps.Event) {
		if e.Nix != nil {
			p.Send(ui.BuildEventMsg{Event: *e.Nix, At: e.At})
			return
		}
		mu.Lock()
		later = append(later, e)
		mu.Unlock()
	}
	done := make(chan error, 1)
	go func() {
		err := steps.Run(buildCtx, t, []steps.Step{build}, steps.Options{Emit: emit, Now: deps.now})
		var buildErr error
		if err != nil {
			buildErr = errors.Unwrap(err)
		}
		p.Send(ui.BuildDoneMsg{Err: buildErr})
		done <- err
	}()
	if _, err := p.Run(); err != nil && !errors.Is(err, tea.ErrProgramKilled) && ctx.Err() == nil {
		// The view failed (no usable terminal after all): the build goes
		// on; say so and wait for it.
		fmt.Fprintf(env.stderr, "progress view stopped: %v; waiting for the build\n", err)
	}
	// The view ends with the build, or earlier when the user quit it:
	// then the build stops too.
	cancel()
	err := <-done
	mu.Lock()
	for _, e := range later {
		pr.emit(e)
	}
	mu.Unlock()
	return err
}

// parseInterleaved parses flags that may come before or after the
// positional arguments ("build DIR --host x").
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return positional, nil
		}
		if rest[0] == "--" {
			return append(positional, rest[1:]...), nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

// writeEvalFailure prints a failed evaluation: the evaluator's message,
// indented, and the command that shows the whole trace.
func writeEvalFailure(w io.Writer, ee *nixbuild.EvalError) {
	fmt.Fprintf(w, "homestaker build: the configuration of host %s does not evaluate; nothing was built:\n", ee.Target.Host)
	for _, l := range strings.Split(ee.Message, "\n") {
		fmt.Fprintf(w, "  %s\n", l)
	}
	fmt.Fprintf(w, "See the whole trace with: %s\n", ee.ShowTraceCommand())
}

// targetExit is the exit status when the host to work on cannot be found:
// a flake with several hosts and no --host is a wrong argument.
func targetExit(err error) int {
	var several *nixbuild.SeveralHostsError
	if errors.As(err, &several) {
		return exitUsage
	}
	return exitFailure
}
