package steps

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/homestaker/homestaker/plan"
	"github.com/homestaker/homestaker/secrets"
)

// JournalFile is the journal's name in the state folder. One apply runs on
// a machine at a time; its journal says what it was asked to do, which
// steps finished, and how it ended.
const JournalFile = "apply.json"

// Apply states in the journal.
const (
	StateRunning = "running"
	StateDone    = "done"
	StateFailed  = "failed"
)

// JournalStep is a step as the journal knows it.
type JournalStep struct {
	Name     string    `json:"name"`
	Started  time.Time `json:"started,omitzero"`
	Finished time.Time `json:"finished,omitzero"`
	Error    string    `json:"error,omitempty"`
}

// Request is what an apply was asked to do, recorded so a resumed or
// detached apply does exactly that and nothing else.
type Request struct {
	// Command is the command that asked ("install", "reconfigure").
	Command  string    `json:"command"`
	Plan     plan.Plan `json:"plan"`
	FlakeDir string    `json:"flakeDir"`
	Private  string    `json:"private"`
	// Steps are the names of the steps, in order.
	Steps []string `json:"steps"`
	// ConfirmedDevice is the data disk the user confirmed erasing, typed
	// back at the review ("" when no step erases a disk).
	ConfirmedDevice string `json:"confirmedDevice,omitempty"`
	// ConfirmedByID and ConfirmedSize are that disk's by-id name and size
	// as the review showed it: a resumed apply erases only that disk.
	ConfirmedByID string `json:"confirmedById,omitempty"`
	ConfirmedSize uint64 `json:"confirmedSize,omitempty"`
	// NixArgs are extra arguments for nix (--option NAME VALUE …).
	NixArgs []string `json:"nixArgs,omitempty"`
	// Force and Input are the flake step's write options (overwrite files
	// homestaker did not write; the answers file being rendered).
	Force bool   `json:"force,omitempty"`
	Input string `json:"input,omitempty"`
	// StoreOnDataDisk: the data disk is erased first and holds the build's
	// store; InstallNix: Nix is installed there when missing (install
	// --store-on-data-disk --install-nix). Both change the steps.
	StoreOnDataDisk bool `json:"storeOnDataDisk,omitempty"`
	InstallNix      bool `json:"installNix,omitempty"`
}

// ID identifies a request: the same answers, folders and steps give the
// same ID, so running install again resumes the apply it interrupted.
func (r Request) ID() string {
	data, _ := json.Marshal(r)
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:8])
}

// JournalRecord is the journal file's content.
type JournalRecord struct {
	Version int       `json:"version"`
	ID      string    `json:"id"`
	Request Request   `json:"request"`
	State   string    `json:"state"`
	Created time.Time `json:"created"`
	// Started is when the apply last started (first run or resumed).
	Started time.Time     `json:"started,omitzero"`
	Updated time.Time     `json:"updated"`
	Steps   []JournalStep `json:"steps"`
	// Error is the failure that ended the apply.
	Error string `json:"error,omitempty"`
	// ErrorKind is that failure's Kind, so a watcher exits as the apply did.
	ErrorKind Kind `json:"errorKind,omitempty"`
	// PID is the process running the apply (a detached one outlives the
	// terminal that started it); Log is where it writes its events.
	PID int `json:"pid,omitempty"`
	// PIDStart is when that process started (clock ticks after boot, from
	// /proc): a PID the kernel has since given to another program does not
	// count as the apply.
	PIDStart uint64 `json:"pidStart,omitempty"`
	Log      string `json:"log,omitempty"`
}

// Journal records an apply's progress in the state folder: 0600, written
// atomically after every change, so a crash leaves the last state whole.
type Journal struct {
	path string
	now  func() time.Time
	mu   sync.Mutex
	rec  JournalRecord
}

// JournalPath is the journal's path in the state folder.
func JournalPath(stateDir string) string { return filepath.Join(stateDir, JournalFile) }

// ReadJournal reads the journal in the state folder; fs.ErrNotExist when
// no apply ever ran there.
func ReadJournal(stateDir string) (JournalRecord, error) {
	var rec JournalRecord
	data, err := os.ReadFile(JournalPath(stateDir))
	if err != nil {
		return rec, err
	}
	if err := json.Unmarshal(data, &rec); err != nil {
		return rec, fmt.Errorf("%s: %w (remove it to start afresh)", JournalPath(stateDir), err)
	}
	return rec, nil
}

// OpenJournal starts the journal of req in stateDir, or, when the journal
// there is of the same request and did not finish, continues it (resumed
// reports which). A journal of another request is replaced only when that
// apply is not running.
func OpenJournal(stateDir string, req Request, now func() time.Time) (j *Journal, resumed bool, err error) {
	return openJournal(stateDir, req, now, false)
}

// TakeOverJournal is OpenJournal for the detached apply, which takes over
// the journal install has just handed to it (running, no process yet);
// OpenJournal refuses such a journal while the hand-over may be under way.
func TakeOverJournal(stateDir string, req Request, now func() time.Time) (*Journal, bool, error) {
	return openJournal(stateDir, req, now, true)
}

// handOverGrace is how long a journal handed to a detached apply that has
// not recorded its process yet counts as taken.
const handOverGrace = 30 * time.Second

func openJournal(stateDir string, req Request, now func() time.Time, takeOver bool) (j *Journal, resumed bool, err error) {
	if now == nil {
		now = time.Now
	}
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return nil, false, err
	}
	// One apply opens the journal at a time: two installs started at the
	// same moment (two SSH sessions) must not both go on.
	unlock, err := lockState(stateDir)
	if err != nil {
		return nil, false, err
	}
	defer unlock()
	j = &Journal{path: JournalPath(stateDir), now: now}
	old, err := ReadJournal(stateDir)
	switch {
	case err == nil && old.PID != os.Getpid() && old.Running():
		return nil, false, Refuse(fmt.Errorf("another apply (process %d, %s of %s) is running: watch it with 'homestaker attach'",
			old.PID, old.Request.Command, old.Request.Plan.Host.Name))
	case err == nil && !takeOver && old.State == StateRunning && old.PID == 0 && now().Sub(old.Updated) < handOverGrace:
		return nil, false, Refuse(fmt.Errorf("another apply (%s of %s) is starting: watch it with 'homestaker attach'",
			old.Request.Command, old.Request.Plan.Host.Name))
	case err == nil && old.ID == req.ID() && old.State != StateDone:
		j.rec = old
		j.rec.State, j.rec.Error, j.rec.ErrorKind = StateRunning, "", 0
		j.rec.PID, j.rec.PIDStart = os.Getpid(), ProcessStart(os.Getpid())
		j.rec.Started = now().UTC()
		return j, true, j.write()
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return nil, false, err
	}
	t := now().UTC()
	j.rec = JournalRecord{Version: 1, ID: req.ID(), Request: req, State: StateRunning, Created: t, Started: t, Updated: t,
		PID: os.Getpid(), PIDStart: ProcessStart(os.Getpid())}
	for _, name := range req.Steps {
		j.rec.Steps = append(j.rec.Steps, JournalStep{Name: name})
	}
	return j, false, j.write()
}

// Record returns a copy of the journal's content.
func (j *Journal) Record() JournalRecord {
	j.mu.Lock()
	defer j.mu.Unlock()
	rec := j.rec
	rec.Steps = append([]JournalStep(nil), j.rec.Steps...)
	return rec
}

// SetLog records where the apply's events go.
func (j *Journal) SetLog(path string, pid int) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.rec.Log, j.rec.PID, j.rec.PIDStart = path, pid, ProcessStart(pid)
	return j.write()
}

// Finished reports whether the step finished, and when.
func (j *Journal) Finished(name string) (time.Time, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, s := range j.rec.Steps {
		if s.Name == name && !s.Finished.IsZero() {
			return s.Finished, true
		}
	}
	return time.Time{}, false
}

func (j *Journal) update(name string, f func(*JournalStep)) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	for i := range j.rec.Steps {
		if j.rec.Steps[i].Name == name {
			f(&j.rec.Steps[i])
			return j.write()
		}
	}
	j.rec.Steps = append(j.rec.Steps, JournalStep{Name: name})
	f(&j.rec.Steps[len(j.rec.Steps)-1])
	return j.write()
}

// Start records that a step started.
func (j *Journal) Start(name string) error {
	return j.update(name, func(s *JournalStep) {
		s.Started, s.Finished, s.Error = j.now().UTC(), time.Time{}, ""
	})
}

// Finish records that a step finished.
func (j *Journal) Finish(name string) error {
	return j.update(name, func(s *JournalStep) { s.Finished = j.now().UTC() })
}

// Fail records that a step failed, and that the apply ended with it.
func (j *Journal) Fail(name string, e *Error) error {
	return j.update(name, func(s *JournalStep) {
		s.Error = e.Err.Error()
		j.rec.State, j.rec.Error, j.rec.ErrorKind = StateFailed, e.Error(), e.Kind
	})
}

// Abort records that the apply ended with e before or between its steps
// (its request could not be carried out here).
func (j *Journal) Abort(e *Error) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.rec.State, j.rec.Error, j.rec.ErrorKind = StateFailed, e.Error(), e.Kind
	return j.write()
}

// Complete records that every step finished.
func (j *Journal) Complete() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.rec.State, j.rec.Error, j.rec.ErrorKind = StateDone, "", 0
	return j.write()
}

func (j *Journal) write() error {
	j.rec.Updated = j.now().UTC()
	data, err := json.MarshalIndent(j.rec, "", "  ")
	if err != nil {
		return err
	}
	return secrets.WriteFileAtomic(j.path, append(data, '\n'), 0o600)
}

// lockState takes the state folder's lock (apply.lock, flock(2)); the
// returned function releases it.
func lockState(stateDir string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(stateDir, "apply.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

// Running reports whether the journal's apply runs: its state says so and
// its process is alive and is the one that started the apply.
func (r JournalRecord) Running() bool {
	if r.State != StateRunning || r.PID == 0 || !ProcessAlive(r.PID) {
		return false
	}
	return r.PIDStart == 0 || ProcessStart(r.PID) == r.PIDStart
}

// ProcessStart is when the process started, in clock ticks after boot
// (/proc/PID/stat's 22nd field); 0 when unknown.
func ProcessStart(pid int) uint64 {
	if pid <= 0 {
		return 0
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0
	}
	// After "pid (comm) ": state is field 3, starttime field 22.
	fields := strings.Fields(string(stat[i+1:]))
	if len(fields) < 20 {
		return 0
	}
	n, err := strconv.ParseUint(fields[19], 10, 64)
	if err != nil {
		return 0
	}
	return n
}

// ProcessAlive reports whether a process with the pid runs. A zombie (a
// process that ended and that its parent has not reaped yet, which an
// apply whose parent went away can stay where PID 1 does not reap) does not.
func ProcessAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	p, err := os.FindProcess(pid)
	if err != nil {
		return false
	}
	if p.Signal(syscall.Signal(0)) != nil {
		return false
	}
	if stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
		// pid (comm) state …; comm may hold spaces and parentheses.
		if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) {
			if st := stat[i+2]; st == 'Z' || st == 'X' {
				return false
			}
		}
	}
	return true
}
