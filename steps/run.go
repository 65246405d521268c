package steps

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/homestaker/homestaker/disk"
	"github.com/homestaker/homestaker/flake"
	"github.com/homestaker/homestaker/nixbuild"
	"github.com/homestaker/homestaker/plan"
	"github.com/homestaker/homestaker/report"
)

// A Step is one stage of an apply: write the flake, evaluate, build, erase
// and format the data disk, write the boot entry, kexec. Describe says what
// Apply would do without doing any of it (the dry run and the review are made
// from it); Apply does it, idempotently where it can (an apply resumed after
// a crash runs the unfinished steps again), and reports through the Sink.
type Step interface {
	// Name is the step's stable name, used in events and the journal.
	Name() string
	// Title is the step's heading ("Evaluate and build beta").
	Title(t *Target) string
	// Describe lists, one sentence each, what Apply would change.
	Describe(t *Target) []string
	Apply(ctx context.Context, t *Target, s *Sink) error
}

// A Verifier is a Step whose earlier result can be checked: a journalled
// step that still verifies is skipped on resume, one that does not runs
// again.
type Verifier interface {
	Verify(ctx context.Context, t *Target) error
}

// Status is where a step is in an event.
type Status string

// Statuses of an event.
const (
	Started  Status = "started"
	Progress Status = "progress"
	Note     Status = "note"
	Done     Status = "done"
	Skipped  Status = "skipped"
	Failed   Status = "failed"
	// Result is a line of what a step produced (the build's artifacts),
	// which a command prints on its standard output for scripts.
	Result Status = "result"
)

// Event is one thing Run tells its watcher: step N of Of changed status,
// made progress or has something to say. The TUI, the line printer and
// --json all render the same stream.
type Event struct {
	N     int    `json:"n"`
	Of    int    `json:"of"`
	Step  string `json:"step"`
	Title string `json:"title,omitempty"`
	// Status is the step's status; Note and Progress events leave it running.
	Status  Status       `json:"status"`
	Message string       `json:"message,omitempty"`
	Level   report.Level `json:"level,omitempty"`
	// Command is the external command a Note announces.
	Command []string `json:"command,omitempty"`
	// Done and Total measure progress in the step's unit (0 Total: unknown).
	Done  int64 `json:"done,omitempty"`
	Total int64 `json:"total,omitempty"`
	// Nix is a line of nix's internal-json log during a build, for the
	// build's progress view (line mode summarises it); not journalled.
	Nix *nixbuild.NixLogEvent `json:"-"`
	At  time.Time             `json:"at"`
}

// Sink is how a running step reports. It is handed to Apply by Run.
type Sink struct {
	n, of int
	step  string
	emit  func(Event)
	now   func() time.Time
}

func (s *Sink) send(e Event) {
	e.N, e.Of, e.Step = s.n, s.of, s.step
	if e.At.IsZero() {
		e.At = s.now()
	}
	if s.emit != nil {
		s.emit(e)
	}
}

// Notef reports a sentence.
func (s *Sink) Notef(format string, args ...any) {
	s.send(Event{Status: Note, Message: fmt.Sprintf(format, args...)})
}

// Resultf reports a line of the step's result.
func (s *Sink) Resultf(format string, args ...any) {
	s.send(Event{Status: Result, Message: fmt.Sprintf(format, args...)})
}

// Warnf reports a warning.
func (s *Sink) Warnf(format string, args ...any) {
	s.send(Event{Status: Note, Level: report.Warning, Message: fmt.Sprintf(format, args...)})
}

// Report passes on an event of the packages below (disk, secrets), which
// report through report.Reporter.
func (s *Sink) Report(e report.Event) {
	st := Note
	if e.Total > 0 || e.Done > 0 {
		st = Progress
	}
	s.send(Event{Status: st, Message: e.Message, Level: e.Level, Command: e.Command, Done: e.Done, Total: e.Total})
}

// Nix passes on a line of a build's log.
func (s *Sink) Nix(ev nixbuild.NixLogEvent, at time.Time) {
	s.send(Event{Status: Progress, Nix: &ev, At: at})
}

// Options are how Run runs.
type Options struct {
	// Emit receives every event, from one goroutine at a time.
	Emit func(Event)
	// Journal records each finished step; with Resume, steps it holds (and
	// that still verify) are skipped. nil: no journal.
	Journal *Journal
	Resume  bool
	// DryRun emits each step's description and applies nothing.
	DryRun bool
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

// Run applies the steps in order and stops at the first that fails; the
// error is an *Error naming the step, whose Kind says how the command
// should exit.
func Run(ctx context.Context, t *Target, list []Step, o Options) error {
	now := o.Now
	if now == nil {
		now = time.Now
	}
	for i, st := range list {
		sink := &Sink{n: i + 1, of: len(list), step: st.Name(), emit: o.Emit, now: now}
		title := st.Title(t)
		if o.DryRun {
			sink.send(Event{Status: Started, Title: title})
			for _, line := range st.Describe(t) {
				sink.Notef("%s", line)
			}
			sink.send(Event{Status: Skipped, Title: title, Message: "dry run: nothing was changed"})
			continue
		}
		if err := ctx.Err(); err != nil {
			return &Error{Step: st.Name(), Kind: KindInterrupted, Err: err}
		}
		again := ""
		if o.Resume && o.Journal != nil {
			if at, ok := o.Journal.Finished(st.Name()); ok {
				v, verifies := st.(Verifier)
				if !verifies {
					sink.send(Event{Status: Skipped, Title: title, Message: "done " + at.Local().Format("15:04:05") + " in the interrupted apply"})
					continue
				}
				err := v.Verify(ctx, t)
				if err == nil {
					sink.send(Event{Status: Skipped, Title: title, Message: "done " + at.Local().Format("15:04:05") + " in the interrupted apply, and still in place"})
					continue
				}
				again = fmt.Sprintf("done %s in the interrupted apply; running it again: %v", at.Local().Format("15:04:05"), err)
			}
		}
		sink.send(Event{Status: Started, Title: title})
		if again != "" {
			sink.Notef("%s", again)
		}
		if o.Journal != nil {
			if err := o.Journal.Start(st.Name()); err != nil {
				return &Error{Step: st.Name(), Kind: KindFailed, Err: err}
			}
		}
		err := st.Apply(ctx, t, sink)
		if err == nil && ctx.Err() != nil {
			err = ctx.Err()
		}
		if err != nil {
			e := wrap(st.Name(), err)
			sink.send(Event{Status: Failed, Title: title, Message: e.Err.Error(), Level: report.Error})
			if o.Journal != nil {
				_ = o.Journal.Fail(st.Name(), e)
			}
			return e
		}
		if o.Journal != nil {
			if err := o.Journal.Finish(st.Name()); err != nil {
				return &Error{Step: st.Name(), Kind: KindFailed, Err: err}
			}
		}
		sink.send(Event{Status: Done, Title: title})
	}
	if o.Journal != nil && !o.DryRun {
		return o.Journal.Complete()
	}
	return nil
}

// Kind says what sort of failure an Error is; the command line maps each
// kind to its exit code in one place.
type Kind int

// Kinds of failure.
const (
	// KindFailed: the step ran and failed (I/O, a tool failed).
	KindFailed Kind = iota
	// KindUsage: the command was asked for something it cannot do.
	KindUsage
	// KindInvalid: the answers have problems.
	KindInvalid
	// KindRefused: a safety check refused to go on.
	KindRefused
	// KindInterrupted: Ctrl-C or SIGTERM.
	KindInterrupted
)

// Error is a step's failure.
type Error struct {
	Step string
	Kind Kind
	Err  error
}

func (e *Error) Error() string {
	if e.Step == "" {
		return e.Err.Error()
	}
	return e.Step + ": " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// Refuse marks err as a safety refusal.
func Refuse(err error) error { return &Error{Kind: KindRefused, Err: err} }

// Invalidf is an answers problem.
func Invalidf(format string, args ...any) error {
	return &Error{Kind: KindInvalid, Err: fmt.Errorf(format, args...)}
}

// wrap gives err the step's name and its kind.
func wrap(step string, err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		if e.Step == "" {
			return &Error{Step: step, Kind: e.Kind, Err: e.Err}
		}
		return e
	}
	return &Error{Step: step, Kind: KindOf(err), Err: err}
}

// KindOf classifies any error: the packages below have their own refusal
// and problem types, which keep their meaning here.
func KindOf(err error) Kind {
	var e *Error
	var refused *disk.RefusedError
	var problems plan.Problems
	var foreign *flake.ForeignError
	var several *nixbuild.SeveralHostsError
	switch {
	case err == nil:
		return KindFailed
	case errors.As(err, &e):
		return e.Kind
	case errors.Is(err, context.Canceled):
		return KindInterrupted
	case errors.As(err, &refused), errors.As(err, &foreign):
		return KindRefused
	case errors.As(err, &problems):
		return KindInvalid
	case errors.As(err, &several):
		return KindUsage
	}
	return KindFailed
}
