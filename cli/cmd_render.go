package cli

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/homestaker/homestaker/flake"
	"github.com/homestaker/homestaker/plan"
	"github.com/homestaker/homestaker/steps"
)

func runRender(ctx context.Context, env *cliEnv, args []string) int {
	fs := newFlags(env, "render", "render --answers FILE --out DIR [--private DIR] [--force] [--dry-run]")
	answers := fs.String("answers", "", "the answers `file`")
	out := fs.String("out", "", "the flake `folder` to write (created if missing)")
	private := fs.String("private", "", "`folder` for private keys, never inside the flake (default $XDG_STATE_HOME/homestaker)")
	dryRun := fs.Bool("dry-run", false, "show what would be written, write nothing")
	force := fs.Bool("force", false, "overwrite files in the flake folder that homestaker did not write or that were edited since (local.nix is never overwritten)")
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	if *out == "" {
		fmt.Fprintln(env.stderr, "homestaker render: --out DIR is required: the folder the flake is written to")
		return exitUsage
	}
	p, res, code := loadAnswers(env, *answers)
	if code >= 0 {
		return code
	}
	cat, err := plan.LoadCatalogue()
	if err != nil {
		fmt.Fprintf(env.stderr, "homestaker render: %v\n", err)
		return exitFailure
	}
	keys, res := checkKeys(p, cat, res)
	printResult(env.stderr, *answers, res)
	if !res.OK() {
		return exitInvalid
	}

	privDir, err := privateDir(env, *private)
	if err != nil {
		fmt.Fprintf(env.stderr, "homestaker render: %v\n", err)
		return exitUsage
	}
	if inside(privDir, *out) {
		fmt.Fprintf(env.stderr, "homestaker render: the private folder %s is inside the flake folder %s; private keys must never be in the flake: choose another --private\n", privDir, *out)
		return exitUsage
	}

	t := &steps.Target{Plan: p, Catalogue: cat, FlakeDir: *out, Private: privDir, Keys: keys}
	pr := &eventPrinter{w: env.stderr, out: env.stdout, quiet: true, warnPrefix: "NOTE: "}
	step := steps.FlakeStep{Write: flakeWriteOptions(env, *force, *out, *answers, p.Host.Name), DryRun: *dryRun}
	err = steps.Run(ctx, t, []steps.Step{step}, steps.Options{Emit: pr.emit})
	if code, failed := flakeFailure(ctx, env, "homestaker render", *out, err); failed {
		return code
	}
	return exitOK
}

// renderDelayEnv slows the staging of every file down (a Go duration):
// the tests interrupt a render in the middle with it.
const renderDelayEnv = "HOMESTAKER_TEST_RENDER_DELAY"

// flakeWriteOptions are how render and install write the flake: forced or
// not, and the answers file itself when it is the host's homestaker.json.
func flakeWriteOptions(env *cliEnv, force bool, out, answers, host string) flake.WriteOptions {
	wo := flake.WriteOptions{Force: force}
	if d, err := time.ParseDuration(env.getenv(renderDelayEnv)); err == nil {
		wo.StageDelay = d
	}
	own := filepath.Join(out, "hosts", host, "homestaker.json")
	if a, err1 := filepath.Abs(answers); err1 == nil {
		if b, err2 := filepath.Abs(own); err2 == nil && a == b {
			wo.Input = "hosts/" + host + "/homestaker.json"
		}
	}
	return wo
}

// flakeFailure reports a failed flake step and gives its exit code:
// exitRefused for files that are not homestaker's (listed first),
// exitInterrupt when ctx ended. failed is false when err is nil.
func flakeFailure(ctx context.Context, env *cliEnv, cmd, out string, err error) (code int, failed bool) {
	if err == nil {
		return exitOK, false
	}
	var se *steps.Error
	if errors.As(err, &se) {
		err = se.Err // the command names itself
	}
	var foreign *flake.ForeignError
	switch {
	case errors.As(err, &foreign):
		fmt.Fprintf(env.stderr, "%s: %v\n", cmd, err)
		return exitRefused, true
	case ctx.Err() != nil && errors.Is(err, ctx.Err()):
		fmt.Fprintf(env.stderr, "%s: interrupted: the flake in %s was not changed\n", cmd, out)
		return exitInterrupt, true
	}
	fmt.Fprintf(env.stderr, "%s: %v\n", cmd, err)
	if ctx.Err() != nil {
		return exitInterrupt, true
	}
	return exitFailure, true
}

// privateDir resolves the folder for private material.
func privateDir(env *cliEnv, flagValue string) (string, error) {
	if flagValue != "" {
		return filepath.Abs(flagValue)
	}
	if x := env.getenv("XDG_STATE_HOME"); x != "" {
		return filepath.Join(x, "homestaker"), nil
	}
	if h := env.getenv("HOME"); h != "" {
		return filepath.Join(h, ".local", "state", "homestaker"), nil
	}
	return "", fmt.Errorf("cannot find a folder for private keys: set --private DIR, XDG_STATE_HOME or HOME")
}

// inside reports whether path lies in (or is) dir.
func inside(path, dir string) bool {
	a, err1 := filepath.Abs(path)
	b, err2 := filepath.Abs(dir)
	if err1 != nil || err2 != nil {
		return false
	}
	rel, err := filepath.Rel(b, a)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}
