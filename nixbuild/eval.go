package nixbuild

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"strings"
)

// EvalOptions says which host to evaluate and how to run nix.
type EvalOptions struct {
	Target BuildTarget
	// NixPath is the nix binary (see FindNix).
	NixPath string
	// NixArgs are extra arguments placed before the installable (the same
	// --option NAME VALUE as the build's).
	NixArgs []string
	// Env is nix's whole environment (nil: homestaker's own).
	Env []string
	// Run runs nix (nil: ExecRunner(DefaultStopGrace)).
	Run CommandRunner
}

// EvalError is an evaluation of the host's configuration that failed.
type EvalError struct {
	Target  BuildTarget
	Command string
	// Message is the evaluator's own error, without colours, warnings or
	// code excerpts (see EvalMessage).
	Message string
	// Err is how nix ended.
	Err error
}

func (e *EvalError) Error() string {
	first, _, _ := strings.Cut(e.Message, "\n")
	return fmt.Sprintf("the configuration of host %s does not evaluate: %s", e.Target.Host, strings.TrimPrefix(first, "error: "))
}

func (e *EvalError) Unwrap() error { return e.Err }

// EvalAttribute is what Evaluate asks for: the drvPath of the image the
// build makes. Evaluating it evaluates the whole NixOS configuration (its
// toplevel is part of the kexec tree and of the ISO) without building
// anything, so it fails exactly where the build's evaluation would.
func (t BuildTarget) EvalAttribute() string {
	return t.Attribute() + ".drvPath"
}

// EvalArgs returns the arguments of the nix eval Evaluate runs. They work
// with Nix 2.8 and newer: --raw prints the path alone, the experimental
// features are named with --extra-experimental-features, and the flake's
// nixConfig is accepted as the build accepts it.
func EvalArgs(opts EvalOptions) []string {
	args := []string{
		"eval", "--raw",
		"--extra-experimental-features", "nix-command flakes",
		"--accept-flake-config",
	}
	args = append(args, opts.NixArgs...)
	return append(args, opts.Target.FlakeDir+"#"+opts.Target.EvalAttribute())
}

// ShowTraceCommand is the command that shows the whole evaluation trace.
func (e *EvalError) ShowTraceCommand() string {
	return strings.Replace(e.Command, " eval ", " eval --show-trace ", 1)
}

// Evaluate evaluates the target's image derivation with nix eval and
// returns its drvPath. Nothing is built or fetched from a binary cache (the
// flake's inputs are fetched when they are not yet in the store). A failed
// evaluation returns an *EvalError carrying the evaluator's message; a
// cancelled one the context's error.
func Evaluate(ctx context.Context, opts EvalOptions) (string, error) {
	if opts.NixPath == "" {
		return "", ErrNixNotFound
	}
	run := opts.Run
	if run == nil {
		run = ExecRunner(DefaultStopGrace)
	}
	var stdout, stderr bytes.Buffer
	cmd := NixCommand{Path: opts.NixPath, Args: EvalArgs(opts), Dir: opts.Target.FlakeDir, Env: opts.Env,
		Stdout: &limitedBuffer{buf: &stdout, max: 64 << 10}, Stderr: &limitedBuffer{buf: &stderr, max: 1 << 20}}
	err := run(ctx, cmd)
	if ctx.Err() != nil {
		return "", fmt.Errorf("evaluation of %s stopped: %w", opts.Target.Host, ctx.Err())
	}
	if err != nil {
		return "", &EvalError{Target: opts.Target, Command: cmd.String(), Message: EvalMessage(stderr.String()), Err: err}
	}
	drv := strings.TrimSpace(stdout.String())
	if !strings.HasPrefix(drv, "/") || !strings.HasSuffix(drv, ".drv") || strings.ContainsAny(drv, " \n") {
		return "", &EvalError{Target: opts.Target, Command: cmd.String(),
			Message: fmt.Sprintf("error: %s is not a derivation: nix eval printed %q", opts.Target.EvalAttribute(), truncateForError(stdout.Bytes())),
			Err:     fmt.Errorf("unexpected output")}
	}
	return drv, nil
}

var (
	ansiEscape = regexp.MustCompile(`\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(\x07|\x1b\\)|\x1b[@-Z\\-_]`)
	// codeExcerpt is a line of the source excerpt newer Nix prints under a
	// position: "   12|   foo = bar;" and the caret line "     |   ^".
	codeExcerpt = regexp.MustCompile(`^\s*[0-9]*\|`)
)

// maxEvalMessageLines bounds the message shown for a failed evaluation.
const maxEvalMessageLines = 40

// EvalMessage trims what nix eval printed on stderr to the error that
// matters: colours removed; warnings (such as download retries) dropped;
// with Nix 2.13 and newer, which print "error:" followed by a trace of
// "… while evaluating" frames and the innermost "error: …" last, only that
// innermost error and the last position of the trace, without code
// excerpts; the hint
// about --show-trace dropped; continuation lines lose their common
// indentation. When nix printed no error line, the last
// lines it printed are returned.
func EvalMessage(stderr string) string {
	text := ansiEscape.ReplaceAllString(stderr, "")
	text = strings.ReplaceAll(text, "\r", "")
	lines := strings.Split(text, "\n")
	// The last line that starts an error: the innermost one in a trace.
	start := -1
	for i, l := range lines {
		t := strings.TrimSpace(l)
		if strings.HasPrefix(t, "error:") && strings.TrimSpace(strings.TrimPrefix(t, "error:")) != "" {
			start = i
		}
	}
	if start < 0 {
		var kept []string
		for _, l := range lines {
			if t := strings.TrimSpace(l); t != "" && !strings.HasPrefix(t, "warning:") {
				kept = append(kept, strings.TrimRight(l, " \t"))
			}
		}
		if len(kept) > 10 {
			kept = kept[len(kept)-10:]
		}
		if len(kept) == 0 {
			return "error: nix printed no message"
		}
		return strings.Join(kept, "\n")
	}
	out := []string{strings.TrimSpace(lines[start])}
	var rest []string
	indent := -1 // the continuation lines' common indentation
	for _, l := range lines[start+1:] {
		l = strings.TrimRight(l, " \t")
		t := strings.TrimSpace(l)
		switch {
		case strings.HasPrefix(t, "(use '--show-trace'"), strings.HasPrefix(t, "warning:"):
			continue
		case codeExcerpt.MatchString(l):
			continue
		}
		if n := len(l) - len(strings.TrimLeft(l, " \t")); t != "" && (indent < 0 || n < indent) {
			indent = n
		}
		rest = append(rest, l)
	}
	for _, l := range rest {
		if len(l) >= indent && indent > 0 {
			l = l[indent:]
		}
		out = append(out, l)
	}
	for len(out) > 0 && out[len(out)-1] == "" {
		out = out[:len(out)-1]
	}
	// Newer Nix puts the position in the trace before the innermost error:
	// keep the last one.
	if pos := lastTracePosition(lines[:start]); pos != "" {
		out = append(out, pos)
	}
	// Blank lines left where code excerpts were come in runs: keep one.
	var dedup []string
	for i, l := range out {
		if l == "" && i > 0 && out[i-1] == "" {
			continue
		}
		dedup = append(dedup, l)
	}
	if len(dedup) > maxEvalMessageLines {
		dedup = append(dedup[:maxEvalMessageLines], fmt.Sprintf("… (%d more lines)", len(dedup)-maxEvalMessageLines))
	}
	return strings.Join(dedup, "\n")
}

// lastTracePosition returns the last "at FILE:LINE:COL" line of a trace of
// "… while" frames (newer Nix), or "" when there is no trace.
func lastTracePosition(lines []string) string {
	frames := false
	pos := ""
	for _, l := range lines {
		t := strings.TrimSpace(l)
		if strings.HasPrefix(t, "…") {
			frames = true
		}
		if strings.HasPrefix(t, "at ") && strings.HasSuffix(t, ":") {
			pos = strings.TrimSuffix(t, ":")
		}
	}
	if !frames {
		return ""
	}
	return pos
}
