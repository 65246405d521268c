package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
	"time"

	"github.com/homestaker/homestaker/disk"
	"github.com/homestaker/homestaker/steps"
	"github.com/homestaker/homestaker/ui"
)

// runAttach is `homestaker attach [--private DIR] [--json] [--stop]`: the
// progress of the apply running in the state folder (its log from the start,
// then live, until it ends), or the result of the last one. It exits with
// the apply's exit code; with no apply ever run there, it says so and exits
// 1. Ctrl-C stops watching and leaves the apply running (exit 130); --stop
// stops the apply itself (it stops at its next check; install resumes it).
func runAttach(ctx context.Context, env *cliEnv, args []string) int {
	fs := newFlags(env, "attach", "attach [--private DIR] [--json] [--stop]")
	private := fs.String("private", "", "the state `folder` of the apply (default $XDG_STATE_HOME/homestaker)")
	jsonOut := fs.Bool("json", false, "print the apply's events as JSON lines")
	stop := fs.Bool("stop", false, "stop the running apply, then show how it ended")
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	dir, err := privateDir(env, *private)
	if err != nil {
		fmt.Fprintf(env.stderr, "homestaker attach: %v\n", err)
		return exitUsage
	}
	return attach(ctx, env, dir, *jsonOut, *stop)
}

func attach(ctx context.Context, env *cliEnv, dir string, jsonOut, stop bool) int {
	rec, err := steps.ReadJournal(dir)
	if errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintf(env.stdout, "No apply has run here (no %s).\n", steps.JournalPath(dir))
		return exitFailure
	}
	if err != nil {
		fmt.Fprintf(env.stderr, "homestaker attach: %v\n", err)
		return exitFailure
	}
	if applyRunning(rec) {
		if stop {
			if err := syscall.Kill(rec.PID, syscall.SIGTERM); err != nil {
				fmt.Fprintf(env.stderr, "homestaker attach: stop process %d: %v\n", rec.PID, err)
				return exitFailure
			}
			fmt.Fprintf(env.stderr, "Stopping the apply (process %d): it stops at its next check; running the same install again resumes it.\n", rec.PID)
		}
		fmt.Fprintf(env.stdout, "The apply (%s of %s) runs since %s, process %d; its log is %s.\n",
			rec.Request.Command, rec.Request.Plan.Host.Name, since(rec).Local().Format("2006-01-02 15:04:05"), rec.PID, rec.Log)
		w := &watcher{env: env, stateDir: dir, log: rec.Log, json: jsonOut}
		return w.follow(ctx)
	}
	if rec.Running() {
		// install --foreground: it prints to its own terminal only.
		fmt.Fprintf(env.stdout, "An apply (%s of %s) runs in another terminal's process %d (install --foreground), which keeps no log to follow.\n",
			rec.Request.Command, rec.Request.Plan.Host.Name, rec.PID)
		return exitFailure
	}
	if stop {
		fmt.Fprintln(env.stderr, "homestaker attach: no apply is running: nothing to stop.")
	}
	return applyResult(env, dir, rec)
}

// applyRunning reports whether the journal's apply runs now.
func applyRunning(rec steps.JournalRecord) bool {
	return rec.Running() && rec.Log != ""
}

// since is when the journal's apply last started.
func since(rec steps.JournalRecord) time.Time {
	if !rec.Started.IsZero() {
		return rec.Started
	}
	return rec.Created
}

// applyResult prints how the journal's apply ended: its state, its steps
// with the time each finished, its error and its log; it returns the
// apply's exit code.
func applyResult(env *cliEnv, dir string, rec steps.JournalRecord) int {
	state := rec.State
	if state == steps.StateRunning {
		state = "stopped before it finished (its process is gone)"
	}
	fmt.Fprintf(env.stdout, "The last apply (%s of %s, started %s): %s.\n", rec.Request.Command, rec.Request.Plan.Host.Name,
		since(rec).Local().Format("2006-01-02 15:04:05"), state)
	for _, s := range rec.Steps {
		switch {
		case !s.Finished.IsZero():
			fmt.Fprintf(env.stdout, "  done     %-9s %s\n", s.Name, s.Finished.Local().Format("15:04:05"))
		case s.Error != "":
			fmt.Fprintf(env.stdout, "  failed   %-9s %s\n", s.Name, s.Error)
		case !s.Started.IsZero():
			fmt.Fprintf(env.stdout, "  stopped  %s\n", s.Name)
		default:
			fmt.Fprintf(env.stdout, "  not run  %s\n", s.Name)
		}
	}
	if rec.Log != "" {
		if _, err := os.Stat(rec.Log); err == nil {
			fmt.Fprintf(env.stdout, "Log: %s\n", rec.Log)
		}
	}
	code := journalCode(rec)
	switch {
	case rec.State == steps.StateRunning:
		fmt.Fprintf(env.stderr, "Running the same install again resumes it after its last finished step (journal %s).\n", steps.JournalPath(dir))
	case rec.Error != "":
		fmt.Fprintf(env.stderr, "homestaker %s: %s\n", rec.Request.Command, rec.Error)
	}
	return code
}

// attachRunning is the plain `homestaker`'s first look: when an apply runs
// in the state folder, it attaches to it instead of starting the wizard
// (ok); Ctrl-C then stops watching, and the apply goes on.
func attachRunning(ctx context.Context, env *cliEnv) (int, bool) {
	dir, err := privateDir(env, "")
	if err != nil {
		return 0, false
	}
	rec, err := steps.ReadJournal(dir)
	if err != nil || !applyRunning(rec) {
		return 0, false
	}
	fmt.Fprintf(env.stdout, "An apply is running since %s: attaching. Ctrl-C stops watching; the apply goes on (`homestaker attach --stop` stops it).\n",
		since(rec).Local().Format("2006-01-02 15:04:05"))
	return attach(ctx, env, dir, false, false), true
}

// offerResume is the plain `homestaker`'s second look: when the last
// install in the state folder stopped before it finished (failed, killed,
// interrupted), it shows how it ended and offers to resume it from its
// journal (ok) instead of starting the wizard. A disk the stopped apply
// had not erased yet is typed again before it is.
func offerResume(ctx context.Context, env *cliEnv) (int, bool) {
	dir, err := privateDir(env, "")
	if err != nil {
		return 0, false
	}
	rec, err := steps.ReadJournal(dir)
	if err != nil || rec.State == steps.StateDone || rec.Request.Command != "install" || applyRunning(rec) {
		return 0, false
	}
	applyResult(env, dir, rec)
	full := interactive(env)
	lines := ui.NewLines(env.stdin, env.stdout)
	title := "The apply of " + rec.Request.Plan.Host.Name + " stopped before it finished."
	opts := []string{"Resume it (finished steps are checked again and skipped)", "Start the wizard (the stopped apply stays as it is)"}
	var choice int
	if full {
		if choice, err = ui.AskChoice(ctx, env.stdin, env.stdout, title, opts); err != nil {
			fmt.Fprintln(env.stderr, "Interrupted: nothing was changed.")
			return exitInterrupt, true
		}
	} else {
		fmt.Fprintln(env.stdout, title)
		var code int
		if choice, code = withContext(ctx, func() (int, error) { return lines.Choose("What now?", opts) }); code >= 0 {
			return code, true
		}
	}
	if choice != 0 {
		return 0, false
	}
	req := rec.Request
	if req.ConfirmedDevice != "" && !journalFinished(rec, "disk") {
		what := req.ConfirmedDevice
		if req.ConfirmedByID != "" {
			what += ", " + req.ConfirmedByID
		}
		if req.ConfirmedSize != 0 {
			what += ", " + disk.SizeText(req.ConfirmedSize)
		}
		fmt.Fprintf(env.stdout, "The apply erases %s (%s) when it reaches the disk step; the disk step checks it is still that disk.\n", req.Plan.Disk.Device, what)
		_, code := withContext(ctx, func() (struct{}, error) {
			return struct{}{}, lines.Confirm("Type "+req.Plan.Disk.Device+" to erase it (Enter alone stops)", []string{req.Plan.Disk.Device, req.ConfirmedDevice})
		})
		if code >= 0 {
			fmt.Fprintln(env.stderr, "Stopped: nothing was changed.")
			return exitRefused, true
		}
	}
	if env.detach == nil {
		// No detaching (tests): resume in this process.
		pr := &eventPrinter{w: env.stdout}
		code, report := journalApply(ctx, env, dir, "", req, pr.emit)
		fmt.Fprint(env.stderr, report)
		return code, true
	}
	j, _, err := steps.OpenJournal(dir, req, nil)
	if err != nil {
		reportFailure(env.stderr, "install", err)
		return exitCode(err), true
	}
	s := &session{env: env, private: dir}
	return s.startDetached(ctx, j), true
}

// journalFinished reports whether the journal's step finished.
func journalFinished(rec steps.JournalRecord, name string) bool {
	for _, s := range rec.Steps {
		if s.Name == name {
			return !s.Finished.IsZero()
		}
	}
	return false
}
