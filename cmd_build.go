package main

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
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/term"

	"github.com/homestaker/homestaker/image"
	"github.com/homestaker/homestaker/plan"
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
	run      image.CommandRunner
	now      func() time.Time
	// isTerminal reports whether w is a terminal the progress view can use.
	isTerminal func(w io.Writer) bool
	// viewOptions are extra options for the progress view's program.
	viewOptions []tea.ProgramOption
}

func defaultBuildDeps() buildDeps {
	return buildDeps{
		lookPath: exec.LookPath,
		run:      image.ExecRunner(image.DefaultStopGrace),
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
func findNix(ctx context.Context, env *cliEnv, deps buildDeps) (string, image.NixVersion, error) {
	nixPath, err := image.FindNix(deps.lookPath, env.getenv)
	if err != nil {
		return "", image.NixVersion{}, fmt.Errorf("%v.\n%s", err, image.NixInstallHint)
	}
	version, err := image.QueryNixVersion(ctx, deps.run, nixPath)
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

	target, err := image.ReadBuildTarget(positional[0], *host)
	if err != nil {
		fmt.Fprintf(env.stderr, "homestaker build: %v\n", err)
		return targetExit(err)
	}
	nixPath, version, err := findNix(ctx, env, deps)
	if err != nil {
		fmt.Fprintf(env.stderr, "homestaker build: %v\n", err)
		return exitFailure
	}
	if !version.AtLeast(image.MinNixMajor, image.MinNixMinor) {
		if !*allowOld {
			fmt.Fprintf(env.stderr, "homestaker build: %v\n", &image.OldNixError{Version: version})
			return exitFailure
		}
		fmt.Fprintf(env.stderr, "Nix %s is older than %d.%d; building anyway (--allow-old-nix).\n",
			version, image.MinNixMajor, image.MinNixMinor)
	}

	// Evaluate first: a configuration Nix refuses stops here, with the
	// evaluator's own message, before anything is built.
	fmt.Fprintf(env.stderr, "Evaluating the configuration of %s with Nix %s.\n", target.Host, version)
	if _, err := image.Evaluate(ctx, image.EvalOptions{Target: target, NixPath: nixPath, NixArgs: opts, Run: deps.run}); err != nil {
		var ee *image.EvalError
		switch {
		case errors.As(err, &ee):
			writeEvalFailure(env.stderr, ee)
		case errors.Is(err, context.Canceled):
			fmt.Fprintf(env.stderr, "homestaker build: %v\n", err)
			return exitInterrupt
		default:
			fmt.Fprintf(env.stderr, "homestaker build: %v\n", err)
		}
		return exitFailure
	}

	what := "kexec tree"
	switch target.Format {
	case plan.FormatISO:
		what = "ISO image"
	case plan.FormatSD:
		what = "SD card parts"
	}
	title := fmt.Sprintf("Building the %s for %s", what, target.Host)
	buildOpts := image.BuildOptions{
		Target:  target,
		NixPath: nixPath,
		NixArgs: opts,
		NoLink:  *noLink,
		Run:     deps.run,
		Now:     deps.now,
	}
	fmt.Fprintf(env.stderr, "%s with Nix %s.\n%s\n", title, version, image.BinaryCacheNote())

	useTUI := !*plain && deps.isTerminal(env.stderr) &&
		env.getenv("TERM") != "dumb" && env.getenv("NO_COLOR") == ""
	var res image.BuildResult
	if useTUI {
		res, err = buildWithView(ctx, env, title, buildOpts, deps)
	} else {
		printer := image.NewBuildLinePrinter(env.stderr, deps.now())
		buildOpts.Observe = printer.Observe
		res, err = image.Build(ctx, buildOpts)
		printer.Finish(deps.now())
	}
	if err != nil {
		var be *image.BuildError
		switch {
		case errors.As(err, &be):
			image.WriteBuildFailure(env.stderr, be)
		case errors.Is(err, context.Canceled):
			fmt.Fprintf(env.stderr, "homestaker build: %v\n", err)
			return exitInterrupt
		default:
			fmt.Fprintf(env.stderr, "homestaker build: %v\n", err)
		}
		return exitFailure
	}

	artifacts, err := image.CollectArtifacts(ctx, res.OutPath, target.Format)
	if err != nil {
		fmt.Fprintf(env.stderr, "homestaker build: %v\n", err)
		return exitFailure
	}
	if target.Format == plan.FormatSD {
		card, err := assembleSDCard(ctx, env, res.OutPath, *sdImage, target)
		if err != nil {
			fmt.Fprintf(env.stderr, "homestaker build: %v\n", err)
			return exitFailure
		}
		artifacts = append(artifacts, card)
	}
	manifest := image.NewBuildManifest(res, artifacts, version.String())
	manifestPath := image.BuildManifestPath(target)
	if err := image.WriteBuildManifest(manifestPath, manifest); err != nil {
		fmt.Fprintf(env.stderr, "homestaker build: %v\n", err)
		return exitFailure
	}
	image.WriteBuildSummary(env.stdout, manifest, manifestPath, res.Finished.Sub(res.Started))
	sized := image.RoleInitrd
	if target.Format == plan.FormatISO {
		sized = image.RoleISO
	}
	if a, ok := manifest.Artifact(sized); ok {
		if warning := image.RAMWarning(uint64(a.Size), target.MemoryBytes, clientsRAM(target)); warning != "" {
			fmt.Fprintf(env.stderr, "Warning: %s\n", warning)
		}
	}
	return exitOK
}

// buildWithView runs the build under the progress view on stderr.
func buildWithView(ctx context.Context, env *cliEnv, title string, opts image.BuildOptions, deps buildDeps) (image.BuildResult, error) {
	buildCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	model := image.NewBuildModel(title, deps.now, cancel, true)
	p := tea.NewProgram(model, append([]tea.ProgramOption{tea.WithContext(ctx),
		tea.WithOutput(env.stderr), tea.WithInput(env.stdin)}, deps.viewOptions...)...)
	opts.Observe = func(ev image.NixLogEvent, at time.Time) {
		p.Send(image.BuildEventMsg{Event: ev, At: at})
	}
	type outcome struct {
		res image.BuildResult
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		res, err := image.Build(buildCtx, opts)
		p.Send(image.BuildDoneMsg{Err: err})
		done <- outcome{res, err}
	}()
	if _, err := p.Run(); err != nil && !errors.Is(err, tea.ErrProgramKilled) && ctx.Err() == nil {
		// The view failed (no usable terminal after all): the build goes
		// on; say so and wait for it.
		fmt.Fprintf(env.stderr, "progress view stopped: %v; waiting for the build\n", err)
	}
	// The view ends with the build, or earlier when the user quit it:
	// then the build stops too.
	cancel()
	o := <-done
	return o.res, o.err
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

// clientsRAM is what the host's chosen clients need in RAM, from the client
// catalogue (0 when the answers cannot be read).
func clientsRAM(t image.BuildTarget) uint64 {
	data, err := os.ReadFile(filepath.Join(t.FlakeDir, "hosts", t.Host, "homestaker.json"))
	if err != nil {
		return 0
	}
	p, err := plan.Decode(data)
	if err != nil {
		return 0
	}
	cat, err := plan.LoadCatalogue()
	if err != nil {
		return 0
	}
	var gib uint64
	for _, name := range []string{p.Ethereum.Execution, p.Ethereum.Consensus} {
		if c, ok := cat.Client(name); ok {
			gib += uint64(c.RAMGiB)
		}
	}
	return gib << 30
}

// writeEvalFailure prints a failed evaluation: the evaluator's message,
// indented, and the command that shows the whole trace.
func writeEvalFailure(w io.Writer, ee *image.EvalError) {
	fmt.Fprintf(w, "homestaker build: the configuration of host %s does not evaluate; nothing was built:\n", ee.Target.Host)
	for _, l := range strings.Split(ee.Message, "\n") {
		fmt.Fprintf(w, "  %s\n", l)
	}
	fmt.Fprintf(w, "See the whole trace with: %s\n", ee.ShowTraceCommand())
}

// targetExit is the exit status when the host to work on cannot be found:
// a flake with several hosts and no --host is a wrong argument.
func targetExit(err error) int {
	var several *image.SeveralHostsError
	if errors.As(err, &several) {
		return exitUsage
	}
	return exitFailure
}
