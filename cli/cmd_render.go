package cli

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/homestaker/homestaker/flake"
	"github.com/homestaker/homestaker/plan"
	"github.com/homestaker/homestaker/report"
	"github.com/homestaker/homestaker/steps"
)

func runRender(ctx context.Context, env *cliEnv, args []string) int {
	fs := newFlags(env, "render", "render --answers FILE --out DIR [--private DIR] [--dry-run]")
	answers := fs.String("answers", "", "the answers `file`")
	out := fs.String("out", "", "the flake `folder` to write (created if missing)")
	private := fs.String("private", "", "`folder` for private keys, never inside the flake (default $XDG_STATE_HOME/homestaker)")
	dryRun := fs.Bool("dry-run", false, "show what would be written, write nothing")
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

	rep := report.Func(func(e report.Event) {
		prefix := ""
		if e.Level == report.Warning {
			prefix = "NOTE: "
		}
		fmt.Fprintf(env.stderr, "%s%s\n", prefix, e.Message)
	})
	res2, err := steps.Flake(steps.FlakeRequest{Plan: p, Out: *out, Private: privDir, DryRun: *dryRun, Report: rep, Keys: &keys})
	if err != nil {
		fmt.Fprintf(env.stderr, "homestaker render: %v\n", err)
		return exitFailure
	}
	changes := res2.Changes
	printChanges(env, *out, changes, *dryRun)
	if res2.KnownHosts != "" {
		fmt.Fprintf(env.stdout, "host key of %s: %s\nknown_hosts line (also in hosts/%s/known_hosts):\n  %s\n", p.Host.Name, res2.HostKey.Fingerprint, p.Host.Name, res2.KnownHosts)
	}
	return exitOK
}

func printChanges(env *cliEnv, out string, changes []flake.Change, dryRun bool) {
	n := 0
	for _, c := range changes {
		fmt.Fprintf(env.stdout, "%s %s\n", c.Action.Mark(), filepath.Join(out, filepath.FromSlash(c.Path)))
		if c.Action == flake.Create || c.Action == flake.Update {
			n++
		}
	}
	if dryRun {
		fmt.Fprintf(env.stdout, "dry run: %d file(s) would be written, nothing was changed\n", n)
	} else {
		fmt.Fprintf(env.stdout, "%d file(s) written to %s\n", n, out)
	}
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
