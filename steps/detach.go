package steps

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"github.com/homestaker/homestaker/nixbuild"
)

// LogFile is the detached apply's event log in the state folder, next to
// the journal: one JSON record a line (LogRecord), mode 0600. Each start of
// an apply (a first one or a resumed one) begins it afresh; the journal
// keeps what happened across starts.
const LogFile = "apply.log"

// LogPath is the log's path in the state folder.
func LogPath(stateDir string) string { return filepath.Join(stateDir, LogFile) }

// LogRecord is one line of the log: an event of Run (with the build's nix
// log line, which Event leaves out of its own JSON), or the end of the
// apply.
type LogRecord struct {
	Event *Event                `json:"event,omitempty"`
	Nix   *nixbuild.NixLogEvent `json:"nix,omitempty"`
	End   *LogEnd               `json:"end,omitempty"`
	// Raw is a line of the log that is not a record (a detached process's
	// own output, such as a Go panic); set by LogReader, never written.
	Raw string `json:"-"`
}

// LogEnd is the last record of an apply that ended by itself: its exit
// code and, when it failed, the failure as the command prints it.
type LogEnd struct {
	Code   int    `json:"code"`
	Report string `json:"report,omitempty"`
}

// LogWriter writes records to W as JSON lines, each with a single write, so
// that lines from another writer of the same O_APPEND file (the process's
// own stderr) never land inside a record.
type LogWriter struct {
	W   io.Writer
	mu  sync.Mutex
	err error
}

func (l *LogWriter) write(r LogRecord) error {
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, err := l.W.Write(append(data, '\n')); err != nil && l.err == nil {
		l.err = err
	}
	return l.err
}

// Emit is an Options.Emit that logs the event.
func (l *LogWriter) Emit(e Event) {
	r := LogRecord{Event: &e, Nix: e.Nix}
	e.Nix = nil
	_ = l.write(r)
}

// End logs the end of the apply.
func (l *LogWriter) End(code int, report string) error {
	return l.write(LogRecord{End: &LogEnd{Code: code, Report: report}})
}

// Err is the first write error.
func (l *LogWriter) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// LogReader reads a log that is still being written: each Read returns
// the records of the whole lines written since the last one.
type LogReader struct {
	f       *os.File
	partial []byte
}

// OpenLog opens the log at path for reading from its start.
func OpenLog(path string) (*LogReader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	return &LogReader{f: f}, nil
}

// Read returns the records of the lines completed since the last Read.
func (r *LogReader) Read() ([]LogRecord, error) {
	buf := make([]byte, 64<<10)
	var out []LogRecord
	for {
		n, err := r.f.Read(buf)
		r.partial = append(r.partial, buf[:n]...)
		for {
			i := bytes.IndexByte(r.partial, '\n')
			if i < 0 {
				break
			}
			out = append(out, parseLogLine(r.partial[:i]))
			r.partial = r.partial[i+1:]
		}
		if errors.Is(err, io.EOF) || n == 0 {
			return out, nil
		}
		if err != nil {
			return out, err
		}
	}
}

// Rest returns an unfinished last line (a writer killed mid-line), once.
func (r *LogReader) Rest() []LogRecord {
	if len(bytes.TrimSpace(r.partial)) == 0 {
		return nil
	}
	rec := parseLogLine(r.partial)
	r.partial = nil
	return []LogRecord{rec}
}

// Close closes the log.
func (r *LogReader) Close() error { return r.f.Close() }

func parseLogLine(line []byte) LogRecord {
	var rec LogRecord
	if err := json.Unmarshal(line, &rec); err != nil || (rec.Event == nil && rec.End == nil) {
		return LogRecord{Raw: string(line)}
	}
	if rec.Event != nil {
		rec.Event.Nix = rec.Nix
	}
	return rec
}

// The detached apply runs in a process of its own that outlives the
// terminal (an SSH session) that started it. Where systemd runs the
// machine, it runs as a transient unit (systemd-run): a process in its own
// session is still in the SSH session's scope, which logind kills on
// logout when KillUserProcesses=yes (and `loginctl terminate-session`
// always kills), while a unit of its own is outside every session. Without
// systemd (a container, a minimal rescue system, our tests) it is the same
// program re-executed in a new session and process group (setsid), with no
// controlling terminal: the terminal's hang-up and Ctrl-C do not reach it.
// Either way its input is /dev/null and its output goes to the log.

// DetachOptions say what to start detached.
type DetachOptions struct {
	// Argv is the program and its arguments.
	Argv []string
	// Env is its environment; Dir its working folder.
	Env []string
	Dir string
	// Log receives the process's own stdout and stderr (appended).
	Log string
	// SystemdRun is the path of systemd-run, "" to start the process in
	// a session of its own; Unit names the transient unit.
	SystemdRun string
	Unit       string
}

// Detached is a started detached process.
type Detached struct {
	// PID is the process; 0 under systemd-run, where the process records
	// its own PID in the journal.
	PID int
	// Unit is the systemd unit, "" without systemd.
	Unit string
	// Wait reaps the process and returns how it exited (a process started
	// without systemd is this one's child until it ends); nil under
	// systemd, whose manager reaps it.
	Wait func() error
}

// Systemd returns the path of systemd-run when systemd is PID 1 (its comm
// in procRoot/1/comm, procRoot "" being /proc) and systemd-run is
// installed; "" otherwise.
func Systemd(procRoot string, lookPath func(string) (string, error)) string {
	if procRoot == "" {
		procRoot = "/proc"
	}
	comm, err := os.ReadFile(filepath.Join(procRoot, "1", "comm"))
	if err != nil || strings.TrimSpace(string(comm)) != "systemd" {
		return ""
	}
	if lookPath == nil {
		lookPath = exec.LookPath
	}
	p, err := lookPath("systemd-run")
	if err != nil {
		return ""
	}
	return p
}

// SystemdRunArgs is the systemd-run command line for o: a transient
// service that keeps o's environment and folder, appends its output to the
// log, and is collected when it ends even if it failed. KillMode=process:
// when the apply ends, what it left running on purpose (the kexec step's
// detached jump) is not killed with it.
func SystemdRunArgs(o DetachOptions) []string {
	args := []string{o.SystemdRun, "--unit", o.Unit, "--collect", "--quiet",
		"--property=KillMode=process",
		"--property=StandardOutput=append:" + o.Log,
		"--property=StandardError=append:" + o.Log,
	}
	if o.Dir != "" {
		args = append(args, "--working-directory="+o.Dir)
	}
	for _, kv := range o.Env {
		// systemd-run cannot pass a variable whose value spans lines
		// (nor would a unit file); the apply needs none such.
		if !strings.ContainsAny(kv, "\n") && strings.Contains(kv, "=") {
			args = append(args, "--setenv="+kv)
		}
	}
	return append(append(args, "--"), o.Argv...)
}

// Detach starts o's process detached from this one's terminal.
func Detach(o DetachOptions) (*Detached, error) {
	if len(o.Argv) == 0 {
		return nil, errors.New("detach: no program")
	}
	if o.SystemdRun != "" {
		args := SystemdRunArgs(o)
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Env, cmd.Dir = o.Env, o.Dir
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("systemd-run: %v: %s", err, strings.TrimSpace(string(out)))
		}
		return &Detached{Unit: o.Unit}, nil
	}
	log, err := os.OpenFile(o.Log, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	defer log.Close()
	cmd := exec.Command(o.Argv[0], o.Argv[1:]...)
	cmd.Env, cmd.Dir = o.Env, o.Dir
	cmd.Stdin = nil // /dev/null
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return &Detached{PID: cmd.Process.Pid, Wait: cmd.Wait}, nil
}
