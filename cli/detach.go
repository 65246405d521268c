package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/homestaker/homestaker/flake"
	"github.com/homestaker/homestaker/plan"
	"github.com/homestaker/homestaker/steps"
)

// detachedApplyCmd is the hidden command the detached apply runs as:
// `homestaker apply --journal STATEDIR` carries out the request recorded in
// the journal there, writing its events to the journal's log.
const detachedApplyCmd = "apply"

// detacher starts the detached apply. The process's own env has one (Main);
// an env a test builds has none unless the test gives one, and applies in
// the test's process.
type detacher struct {
	// self is the homestaker binary; environ the apply's environment.
	self    string
	environ []string
	// systemdRun is systemd-run's path when systemd runs this machine.
	systemdRun string
	start      func(steps.DetachOptions) (*steps.Detached, error)
}

// newDetacher is the detacher of the real process: this binary,
// re-executed; under systemd-run where systemd is PID 1.
func newDetacher() *detacher {
	self, err := os.Executable()
	if err != nil {
		return nil
	}
	return &detacher{self: self, environ: os.Environ(), systemdRun: steps.Systemd("", nil), start: steps.Detach}
}

// applyFailureText is what install prints when its apply fails: the
// failure with what the user can do, and whether the data disk was touched.
// names are the apply's steps in order (nil: a failure before any step).
func applyFailureText(err error, device string, names []string) string {
	var b bytes.Buffer
	reportFailure(&b, "install", err)
	var se *steps.Error
	if !errors.As(err, &se) || device == "" || se.Step == "disk" || se.Step == "kexec" {
		return b.String()
	}
	failed, erased := slices.Index(names, se.Step), slices.Index(names, "disk")
	if se.Step == "" || erased < 0 || failed < erased {
		fmt.Fprintf(&b, "homestaker: the data disk %s was not touched.\n", device)
		return b.String()
	}
	if slices.Contains(names, "store") && se.Step != "boot-entry" {
		fmt.Fprintf(&b, "homestaker: the data disk %s was erased and formatted before the build (--store-on-data-disk); it holds no chain data yet. "+
			"Running install again (or a plain homestaker) resumes: the store is mounted again and the disk is not erased a second time.\n", device)
		return b.String()
	}
	fmt.Fprintf(&b, "homestaker: the data disk %s was erased and formatted; running install again resumes without erasing it a second time.\n", device)
	return b.String()
}

// runDetachedApply is `homestaker apply --journal DIR`: the detached apply.
// It reads the request from the journal, resolves the target again, and
// runs the steps, resuming after those the journal holds as finished.
func runDetachedApply(ctx context.Context, env *cliEnv, args []string) int {
	fs := newFlags(env, detachedApplyCmd, detachedApplyCmd+" --journal DIR (internal: the detached apply install starts)")
	dir := fs.String("journal", "", "the state `folder` holding the journal")
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	if *dir == "" {
		fs.Usage()
		return exitUsage
	}
	// No terminal is ours; a hang-up sent by hand does not stop an apply.
	signal.Ignore(syscall.SIGHUP)
	rec, err := steps.ReadJournal(*dir)
	if err != nil {
		fmt.Fprintf(env.stderr, "homestaker %s: %v\n", detachedApplyCmd, err)
		return exitFailure
	}
	// Only a journal handed over a moment ago (startDetached: running, no
	// process yet) is carried out. Any other (an apply that ended, or one
	// another process runs) holds a disk confirmation that nobody gave for
	// this run: resuming it is install's (or the plain homestaker's) to
	// offer, after the disk is typed again.
	if rec.State != steps.StateRunning || rec.PID != 0 {
		fmt.Fprintf(env.stderr, "homestaker %s: the journal %s was not handed to a new apply (state %s, process %d): nothing was changed; run the same install again to resume it\n",
			detachedApplyCmd, steps.JournalPath(*dir), rec.State, rec.PID)
		return exitRefused
	}
	logPath := rec.Log
	if logPath == "" {
		logPath = steps.LogPath(*dir)
	}
	f, err := os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		fmt.Fprintf(env.stderr, "homestaker %s: %v\n", detachedApplyCmd, err)
		return exitFailure
	}
	defer f.Close()
	lw := &steps.LogWriter{W: f}
	code, report := journalApply(ctx, env, *dir, logPath, rec.Request, lw.Emit)
	if err := lw.End(code, report); err != nil {
		fmt.Fprintf(env.stderr, "homestaker %s: the log %s: %v\n", detachedApplyCmd, logPath, err)
	}
	return code
}

// journalApply carries out a journalled request: the plan checked again,
// the same steps, the target resolved again on this machine, and steps.Run
// resuming the journal. It returns the exit code and the failure's text.
func journalApply(ctx context.Context, env *cliEnv, dir, logPath string, req steps.Request, emit func(steps.Event)) (int, string) {
	var j *steps.Journal
	fail := func(err error) (int, string) {
		e := &steps.Error{Kind: steps.KindOf(err), Err: err}
		_ = j.Abort(e)
		return exitCode(e), applyFailureText(e, req.Plan.Disk.Device, nil)
	}
	j, _, err := steps.TakeOverJournal(dir, req, nil)
	if err != nil {
		// Another apply runs (or the journal cannot be written): the
		// journal is left as it is.
		return exitCode(err), applyFailureText(err, "", nil)
	}
	if err := j.SetLog(logPath, os.Getpid()); err != nil {
		return fail(err)
	}
	cat, err := plan.LoadCatalogue()
	if err != nil {
		return fail(err)
	}
	p := req.Plan
	keys, res := checkKeys(p, cat, p.Validate(cat))
	if !res.OK() {
		return fail(steps.Invalidf("the answers of the apply have problems now: %s", keysProblem(res)))
	}
	opts := applyOpts{storeOnDisk: req.StoreOnDataDisk, installNix: req.InstallNix}
	list := applySteps(env, p, true, steps.FlakeStep{Write: flake.WriteOptions{Force: req.Force, Input: req.Input}}, opts)
	if got := stepNames(list); !slices.Equal(got, req.Steps) {
		return fail(&steps.Error{Kind: steps.KindUsage, Err: fmt.Errorf("the journal's steps (%s) are not the ones this homestaker runs for the host (%s): run install again",
			strings.Join(req.Steps, ", "), strings.Join(got, ", "))})
	}
	t := newTarget(ctx, env, p, cat, req.FlakeDir, req.Private, keys, nil)
	t.NixArgs = req.NixArgs
	t.Confirmed, t.ConfirmedByID, t.ConfirmedSize = req.ConfirmedDevice, req.ConfirmedByID, req.ConfirmedSize
	t.NixByStep = opts.installNix
	// Resume: the journal holds the steps that finished in an earlier
	// start; each is verified again (or run again) before it is skipped.
	if err := steps.Run(ctx, t, list, steps.Options{Emit: emit, Journal: j, Resume: true}); err != nil {
		return exitCode(err), applyFailureText(err, p.Disk.Device, stepNames(list))
	}
	// The answers are applied: a draft the wizard kept when its terminal
	// went away while it followed this apply is of no more use.
	_ = os.Remove(filepath.Join(dir, "draft.json"))
	return exitOK, ""
}

// startDetached starts the journal's apply in a process of its own and
// follows it until it ends. j was opened by this process; the apply's
// process takes it over.
func (s *session) startDetached(ctx context.Context, j *steps.Journal) int {
	env, d := s.env, s.env.detach
	logPath := steps.LogPath(s.private)
	// A fresh log for this start (the journal keeps the earlier ones'
	// steps); 0600 like everything in the state folder.
	lf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err == nil {
		err = lf.Chmod(0o600)
		lf.Close()
	}
	// PID 0: no process runs the apply until the detached one records its
	// own, so it may take the journal over.
	if err == nil {
		err = j.SetLog(logPath, 0)
	}
	if err != nil {
		reportFailure(env.stderr, "install", err)
		return exitFailure
	}
	rec := j.Record()
	wd, _ := os.Getwd()
	proc, err := d.start(steps.DetachOptions{
		Argv: []string{d.self, detachedApplyCmd, "--journal", s.private},
		Env:  d.environ, Dir: wd, Log: logPath,
		SystemdRun: d.systemdRun, Unit: fmt.Sprintf("homestaker-apply-%s-%d", rec.ID, time.Now().Unix()),
	})
	if err != nil {
		err = fmt.Errorf("start the apply: %w", err)
		_ = j.Abort(&steps.Error{Kind: steps.KindFailed, Err: err})
		reportFailure(env.stderr, "install", err)
		return exitFailure
	}
	who := fmt.Sprintf("process %d", proc.PID)
	if proc.Unit != "" {
		who = "systemd unit " + proc.Unit
	}
	fmt.Fprintf(env.stdout, "The apply runs on its own (%s; log %s): if this session drops, it goes on, and `homestaker attach` shows it again. Ctrl-C stops it.\n", who, logPath)
	w := &watcher{env: env, stateDir: s.private, log: logPath, proc: proc, stop: true, json: s.flags.json}
	return w.follow(ctx)
}

// watcher follows a detached apply's log and renders it as install does,
// until the apply ends; it returns the apply's exit code.
type watcher struct {
	env           *cliEnv
	stateDir, log string
	// proc is the apply this process started (nil: attach, which knows
	// the apply from the journal only).
	proc *steps.Detached
	// stop: Ctrl-C stops the apply (install's foreground); otherwise
	// Ctrl-C stops watching and the apply goes on (attach).
	stop bool
	json bool
	// poll is how often the log is read (0: 150 ms).
	poll time.Duration
}

// stopGrace is how long a stopped apply may take to stop before the
// foreground leaves it.
const stopGrace = 60 * time.Second

// startGrace is how long an apply under systemd may take to record its PID.
const startGrace = 15 * time.Second

func (w *watcher) follow(ctx context.Context) int {
	env := w.env
	poll := w.poll
	if poll == 0 {
		poll = 150 * time.Millisecond
	}
	var exited chan struct{}
	if w.proc != nil && w.proc.Wait != nil {
		exited = make(chan struct{})
		go func() { _ = w.proc.Wait(); close(exited) }()
	}
	began := time.Now()
	pid := func() int {
		if w.proc != nil && w.proc.PID != 0 {
			return w.proc.PID
		}
		if rec, err := steps.ReadJournal(w.stateDir); err == nil {
			return rec.PID
		}
		return 0
	}
	alive := func() bool {
		if exited != nil {
			select {
			case <-exited:
				return false
			default:
				return true
			}
		}
		if p := pid(); p != 0 {
			return steps.ProcessAlive(p)
		}
		// Under systemd the apply records its PID once it runs.
		return w.proc != nil && time.Since(began) < startGrace
	}
	r, err := steps.OpenLog(w.log)
	if err != nil {
		fmt.Fprintf(env.stderr, "homestaker: the apply's log: %v\n", err)
		return exitFailure
	}
	defer r.Close()
	pr := &eventPrinter{w: env.stdout, json: w.json}
	var end *steps.LogEnd
	render := func(recs []steps.LogRecord) {
		for _, rec := range recs {
			switch {
			case rec.End != nil:
				end = rec.End
			case rec.Event != nil:
				pr.emit(*rec.Event)
			default:
				fmt.Fprintln(env.stderr, rec.Raw)
			}
		}
	}
	read := func() {
		recs, err := r.Read()
		render(recs)
		if err != nil {
			fmt.Fprintf(env.stderr, "homestaker: the apply's log: %v\n", err)
		}
	}

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	tick := time.NewTicker(poll)
	defer tick.Stop()
	done := ctx.Done()
	var stopping time.Time
	for {
		read()
		if end != nil {
			break
		}
		if !alive() {
			read()
			render(r.Rest())
			break
		}
		select {
		case <-hup:
			// The terminal went away: nobody reads this any more, and
			// the apply goes on without us.
			return exitHangup
		case <-done:
			done = nil
			if !w.stop {
				fmt.Fprintf(env.stderr, "\nStopped watching: the apply goes on (process %d). `homestaker attach` shows it again; `homestaker attach --stop` stops it.\n", pid())
				return exitInterrupt
			}
			fmt.Fprintln(env.stderr, "\nStopping the apply: it stops at its next check (a build or a write in progress is ended first). Running the same install again resumes it.")
			if err := w.signal(pid()); err != nil {
				fmt.Fprintf(env.stderr, "homestaker: stop the apply: %v\n", err)
				return exitInterrupt
			}
			stopping = time.Now()
		case <-tick.C:
		}
		if !stopping.IsZero() && time.Since(stopping) > stopGrace {
			fmt.Fprintf(env.stderr, "homestaker: the apply (process %d) has not stopped after %s; it still runs. `homestaker attach` follows it.\n", pid(), stopGrace)
			return exitInterrupt
		}
	}
	return w.result(end)
}

// signal asks the apply to stop (SIGTERM: its steps stop at their next
// context check); under systemd before it recorded its PID, its unit is
// stopped.
func (w *watcher) signal(pid int) error {
	if pid != 0 {
		return syscall.Kill(pid, syscall.SIGTERM)
	}
	if w.proc != nil && w.proc.Unit != "" {
		return exec.Command("systemctl", "stop", w.proc.Unit).Run()
	}
	return errors.New("the apply's process is not known")
}

// result prints how the apply ended and returns its exit code: the one it
// logged at its end or, when it could not (killed), the journal's.
func (w *watcher) result(end *steps.LogEnd) int {
	env := w.env
	if end != nil {
		fmt.Fprint(env.stderr, end.Report)
		return end.Code
	}
	rec, err := steps.ReadJournal(w.stateDir)
	if err != nil {
		fmt.Fprintf(env.stderr, "homestaker: the apply ended without a result: %v\n", err)
		return exitFailure
	}
	if rec.State == steps.StateRunning {
		fmt.Fprintf(env.stderr, "homestaker: the apply (process %d) ended before it finished (was it killed?). Its journal is %s: running the same install again resumes after its last finished step.\n",
			rec.PID, steps.JournalPath(w.stateDir))
		return exitFailure
	}
	if rec.Error != "" {
		fmt.Fprintf(env.stderr, "homestaker install: %s\n", rec.Error)
	}
	return journalCode(rec)
}

// journalCode is the exit code of an apply that ended, from its journal.
func journalCode(rec steps.JournalRecord) int {
	switch rec.State {
	case steps.StateDone:
		return exitOK
	case steps.StateFailed:
		return exitCode(&steps.Error{Kind: rec.ErrorKind, Err: errors.New(rec.Error)})
	}
	return exitFailure
}
