package cli

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

// readAnswers reads, decodes, fills in defaults and validates an answers
// file. It prints nothing; err is set only when the file cannot be read.
func readAnswers(path string) (plan.Plan, plan.Result, error) {
	var p plan.Plan
	data, err := os.ReadFile(path)
	if err != nil {
		return p, plan.Result{}, fmt.Errorf("cannot read the answers file: %w", err)
	}
	p, err = plan.Decode(data)
	if err != nil {
		var probs plan.Problems
		if !errors.As(err, &probs) {
			probs = plan.Problems{{Message: err.Error()}}
		}
		return p, plan.Result{Errors: probs}, nil
	}
	cat, err := plan.LoadCatalogue()
	if err != nil {
		return p, plan.Result{}, err
	}
	p = p.Defaults(cat)
	return p, p.Validate(cat), nil
}

// readAnswersAndKeys is readAnswers that also checks the validator's keys
// (validate's job: every problem, the keys' included, with its field).
func readAnswersAndKeys(path string) (plan.Plan, plan.Result, error) {
	p, res, err := readAnswers(path)
	if err != nil || !res.OK() {
		return p, res, err
	}
	cat, err := plan.LoadCatalogue()
	if err != nil {
		return p, res, err
	}
	_, res = checkKeys(p, cat, res)
	return p, res, nil
}

// loadAnswers is readAnswers for commands that go on with the plan: it
// prints the problems and returns the exit code to stop with, or -1.
func loadAnswers(env *cliEnv, path string) (plan.Plan, plan.Result, int) {
	if path == "" {
		fmt.Fprintln(env.stderr, "homestaker: --answers FILE is required (see `homestaker schema` for its format)")
		return plan.Plan{}, plan.Result{}, exitUsage
	}
	p, res, err := readAnswers(path)
	if err != nil {
		fmt.Fprintf(env.stderr, "homestaker: %v\n", err)
		return p, res, exitFailure
	}
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
		if *answers == "" {
			fmt.Fprintln(env.stderr, "homestaker validate: --answers FILE is required")
			return exitUsage
		}
		_, res, err := readAnswersAndKeys(*answers)
		if err != nil {
			fmt.Fprintf(env.stderr, "homestaker: %v\n", err)
			return exitFailure
		}
		if res.Errors == nil {
			res.Errors = plan.Problems{}
		}
		if res.Warnings == nil {
			res.Warnings = plan.Problems{}
		}
		out, _ := json.MarshalIndent(res, "", "  ")
		fmt.Fprintln(env.stdout, string(out))
		if !res.OK() {
			return exitInvalid
		}
		return exitOK
	}
	p, res, code := loadAnswers(env, *answers)
	if code >= 0 {
		return code
	}
	cat, err := plan.LoadCatalogue()
	if err != nil {
		fmt.Fprintf(env.stderr, "homestaker: %v\n", err)
		return exitFailure
	}
	_, res = checkKeys(p, cat, res)
	printResult(env.stderr, *answers, res)
	if !res.OK() {
		return exitInvalid
	}
	fmt.Fprintf(env.stdout, "%s: valid (%d warning(s))\n", *answers, len(res.Warnings))
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
