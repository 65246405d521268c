package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/homestaker/homestaker/disk"
	"github.com/homestaker/homestaker/image"
	"github.com/homestaker/homestaker/plan"
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
	printResult(env.stderr, *answers, res)

	privDir, err := privateDir(env, *private)
	if err != nil {
		fmt.Fprintf(env.stderr, "homestaker render: %v\n", err)
		return exitUsage
	}
	if inside(privDir, *out) {
		fmt.Fprintf(env.stderr, "homestaker render: the private folder %s is inside the flake folder %s; private keys must never be in the flake: choose another --private\n", privDir, *out)
		return exitUsage
	}

	files, err := flakeFiles(p)
	if err != nil {
		fmt.Fprintf(env.stderr, "homestaker render: %v\n", err)
		return exitFailure
	}
	var changes []image.Change
	if *dryRun {
		changes, err = image.Diff(*out, files)
	} else {
		changes, err = image.Write(*out, files)
	}
	if err != nil {
		fmt.Fprintf(env.stderr, "homestaker render: %v\n", err)
		return exitFailure
	}
	printChanges(env, *out, changes, *dryRun)
	return exitOK
}

// flakeFiles computes the flake's files for a validated plan.
func flakeFiles(p plan.Plan) ([]image.File, error) {
	layout, err := disk.New(p)
	if err != nil {
		return nil, err
	}
	return image.Files(image.RenderInput{Plan: p, DiskoNix: layout.DiskoNix(), DataMountPoint: disk.DataMountPoint})
}

func printChanges(env *cliEnv, out string, changes []image.Change, dryRun bool) {
	verb := map[image.Action]string{image.Create: "+ create", image.Update: "~ update", image.Unchanged: "  same  ", image.Keep: "  keep  "}
	n := 0
	for _, c := range changes {
		fmt.Fprintf(env.stdout, "%s %s\n", verb[c.Action], filepath.Join(out, filepath.FromSlash(c.Path)))
		if c.Action == image.Create || c.Action == image.Update {
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
