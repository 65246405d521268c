package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/homestaker/homestaker/plan"
)

// newFlags returns a flag set that reports its errors on env.stderr.
func newFlags(env *cliEnv, name, usage string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	fs.Usage = func() {
		fmt.Fprintf(env.stderr, "usage: homestaker %s\n\nflags:\n", usage)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args and returns the exit code to stop with, or -1 to go on.
func parseFlags(fs *flag.FlagSet, args []string) int {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "homestaker %s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		return exitUsage
	}
	return -1
}

// loadAnswers reads, decodes and validates an answers file. Problems are
// printed prefixed with the file name; the returned code is -1 when the plan
// can be used.
func loadAnswers(env *cliEnv, path string) (plan.Plan, plan.Result, int) {
	var p plan.Plan
	if path == "" {
		fmt.Fprintln(env.stderr, "homestaker: --answers FILE is required (see `homestaker schema` for its format)")
		return p, plan.Result{}, exitUsage
	}
	data, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintf(env.stderr, "homestaker: cannot read the answers file: %v\n", err)
		return p, plan.Result{}, exitFailure
	}
	p, err = plan.Decode(data)
	if err != nil {
		var probs plan.Problems
		if errors.As(err, &probs) {
			res := plan.Result{Errors: probs}
			printResult(env.stderr, path, res)
			return p, res, exitInvalid
		}
		fmt.Fprintf(env.stderr, "%s: %v\n", path, err)
		return p, plan.Result{}, exitInvalid
	}
	cat, err := plan.LoadCatalogue()
	if err != nil {
		fmt.Fprintf(env.stderr, "homestaker: %v\n", err)
		return p, plan.Result{}, exitFailure
	}
	p = p.Defaults(cat)
	res := p.Validate(cat)
	if !res.OK() {
		printResult(env.stderr, path, res)
		return p, res, exitInvalid
	}
	return p, res, -1
}

func printResult(w io.Writer, file string, res plan.Result) {
	for _, e := range res.Errors {
		fmt.Fprintf(w, "%s: error: %s\n", file, e)
	}
	for _, e := range res.Warnings {
		fmt.Fprintf(w, "%s: warning: %s\n", file, e)
	}
	if n := len(res.Errors); n > 0 {
		fmt.Fprintf(w, "%d problem(s) to fix before homestaker can go on.\n", n)
	}
}

func runValidate(ctx context.Context, env *cliEnv, args []string) int {
	fs := newFlags(env, "validate", "validate --answers FILE [--json]")
	answers := fs.String("answers", "", "the answers `file` to check")
	asJSON := fs.Bool("json", false, "print the result as JSON on stdout")
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	if *asJSON {
		quiet := *env
		quiet.stderr = io.Discard
		_, res, code := loadAnswers(&quiet, *answers)
		if code == exitUsage || (code == exitFailure && res.Errors == nil) {
			return loadAndReport(env, *answers)
		}
		if res.Errors == nil {
			res.Errors = plan.Problems{}
		}
		if res.Warnings == nil {
			res.Warnings = plan.Problems{}
		}
		out, _ := json.MarshalIndent(res, "", "  ")
		fmt.Fprintln(env.stdout, string(out))
		if code >= 0 {
			return code
		}
		return exitOK
	}
	return loadAndReport(env, *answers)
}

func loadAndReport(env *cliEnv, path string) int {
	_, res, code := loadAnswers(env, path)
	if code >= 0 {
		return code
	}
	printResult(env.stderr, path, res)
	fmt.Fprintf(env.stdout, "%s: valid (%d warning(s))\n", path, len(res.Warnings))
	return exitOK
}

func runSchema(ctx context.Context, env *cliEnv, args []string) int {
	fs := newFlags(env, "schema", "schema")
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	cat, err := plan.LoadCatalogue()
	if err != nil {
		fmt.Fprintf(env.stderr, "homestaker: %v\n", err)
		return exitFailure
	}
	env.stdout.Write(plan.Schema(cat))
	return exitOK
}
