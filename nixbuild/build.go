package nixbuild

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// BuildOptions says what to build and how.
type BuildOptions struct {
	Target BuildTarget
	// NixPath is the nix binary (see FindNix).
	NixPath string
	// NixArgs are extra arguments for nix build, placed before the
	// installable (tests use --option substituters '').
	NixArgs []string
	// NoLink builds without the result link Target.OutLink().
	NoLink bool
	// Env is nix's whole environment (nil: homestaker's own).
	Env []string
	// Run runs nix (nil: ExecRunner(DefaultStopGrace)).
	Run CommandRunner
	// Observe, when set, gets every log event as it is read, from the
	// goroutine that called Build.
	Observe func(ev NixLogEvent, at time.Time)
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// TailLines is how many log lines are kept per build (0: 30).
	TailLines int
}

// BuildResult is a finished build.
type BuildResult struct {
	Target BuildTarget
	// Command is the nix command line that ran.
	Command string
	// DrvPath and OutPath are the built derivation and its output.
	DrvPath, OutPath string
	// OutLink is the result link to OutPath ("" with NoLink).
	OutLink string
	// Status is the last progress of the build.
	Status            NixStatus
	Started, Finished time.Time
}

// BuildError is a nix build that failed.
type BuildError struct {
	Target  BuildTarget
	Command string
	// Failed lists the derivations that failed, with their log tails.
	Failed []NixBuildInfo
	// Messages are the last errors and warnings Nix printed.
	Messages []string
	// Err is how nix ended.
	Err error
}

func (e *BuildError) Error() string {
	var what string
	if len(e.Failed) > 0 {
		what = fmt.Sprintf(": %s failed", e.Failed[0].Name)
	} else if msg := lastError(e.Messages); msg != "" {
		first, _, _ := strings.Cut(msg, "\n")
		what = ": " + strings.TrimPrefix(first, "error: ")
	}
	return fmt.Sprintf("nix build of %s for host %s%s (%v)", e.Target.Attribute(), e.Target.Host, what, e.Err)
}

func (e *BuildError) Unwrap() error { return e.Err }

// lastError returns the last message that is an error, or the last one.
func lastError(msgs []string) string {
	for i := len(msgs) - 1; i >= 0; i-- {
		if strings.HasPrefix(msgs[i], "error") {
			return msgs[i]
		}
	}
	if len(msgs) > 0 {
		return msgs[len(msgs)-1]
	}
	return ""
}

// NixLogCommand is the command that shows a derivation's whole build log.
func NixLogCommand(drv string) string {
	return "nix --extra-experimental-features nix-command log " + shellQuote(drv)
}

// BuildArgs returns the arguments of the nix build Build runs. -L comes
// before --log-format: Nix 2.8 lets a later -L switch the format back.
func BuildArgs(opts BuildOptions) []string {
	args := []string{
		"build", "-L", "--log-format", "internal-json",
		"--extra-experimental-features", "nix-command flakes",
		// Nix 2.8 has no --print-out-paths; --json works in every version.
		"--json",
		// homestaker wrote the flake, and its nixConfig only names the
		// binary caches of BinaryCaches.
		"--accept-flake-config",
	}
	if opts.NoLink {
		args = append(args, "--no-link")
	} else {
		args = append(args, "--out-link", opts.Target.OutLink())
	}
	args = append(args, opts.NixArgs...)
	return append(args, opts.Target.Installable())
}

// Build runs nix build on the target and follows its log until it ends.
// A failed build returns a *BuildError; a cancelled one the context's error.
func Build(ctx context.Context, opts BuildOptions) (BuildResult, error) {
	if opts.NixPath == "" {
		return BuildResult{}, ErrNixNotFound
	}
	run := opts.Run
	if run == nil {
		run = ExecRunner(DefaultStopGrace)
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	cmd := NixCommand{Path: opts.NixPath, Args: BuildArgs(opts), Dir: opts.Target.FlakeDir, Env: opts.Env}
	res := BuildResult{Target: opts.Target, Command: cmd.String(), Started: now()}

	var stdout bytes.Buffer
	cmd.Stdout = &limitedBuffer{buf: &stdout, max: 1 << 20}
	pr, pw := io.Pipe()
	cmd.Stderr = pw
	done := make(chan error, 1)
	go func() {
		err := run(ctx, cmd)
		pw.Close()
		done <- err
	}()

	progress := NewNixProgress(opts.TailLines)
	reader := NewNixLogReader(pr, 0)
	var readErr error
	for {
		ev, err := reader.Next()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				readErr = err
				_, _ = io.Copy(io.Discard, pr) // let nix finish writing
			}
			break
		}
		at := now()
		progress.Apply(ev, at)
		if opts.Observe != nil {
			opts.Observe(ev, at)
		}
	}
	runErr := <-done
	res.Finished = now()
	res.Status = progress.Status()

	if ctx.Err() != nil {
		return res, fmt.Errorf("build of %s stopped: %w", opts.Target.Host, ctx.Err())
	}
	if runErr != nil {
		return res, &BuildError{Target: opts.Target, Command: res.Command,
			Failed: res.Status.Failed, Messages: res.Status.Messages, Err: runErr}
	}
	if readErr != nil {
		return res, fmt.Errorf("read the log of nix build: %w", readErr)
	}
	drv, out, err := parseBuildJSON(stdout.Bytes())
	if err != nil {
		return res, fmt.Errorf("nix build of %s: %w", opts.Target.Attribute(), err)
	}
	res.DrvPath, res.OutPath = drv, out
	if !opts.NoLink {
		res.OutLink = opts.Target.OutLink()
	}
	return res, nil
}

// parseBuildJSON reads what `nix build --json` prints:
// [{"drvPath": "...", "outputs": {"out": "..."}}].
func parseBuildJSON(data []byte) (drv, out string, err error) {
	var built []struct {
		DrvPath string            `json:"drvPath"`
		Outputs map[string]string `json:"outputs"`
	}
	if err := json.Unmarshal(data, &built); err != nil {
		return "", "", fmt.Errorf("read the --json output %q: %w", truncateForError(data), err)
	}
	if len(built) != 1 {
		return "", "", fmt.Errorf("expected one built derivation, --json listed %d", len(built))
	}
	out = built[0].Outputs["out"]
	if out == "" {
		return "", "", fmt.Errorf("the --json output names no \"out\" output for %s", built[0].DrvPath)
	}
	return built[0].DrvPath, out, nil
}

func truncateForError(b []byte) string {
	if len(b) > 200 {
		return string(b[:200]) + "…"
	}
	return string(b)
}
