package steps

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/homestaker/homestaker/nixbuild"
	"github.com/homestaker/homestaker/plan"
)

// fakeStep is a step that records its runs; verify, when set, makes it a
// Verifier.
type fakeStep struct {
	name   string
	ran    *[]string
	fail   error
	verify func() error
}

func (f fakeStep) Name() string              { return f.name }
func (f fakeStep) Title(*Target) string      { return "step " + f.name }
func (f fakeStep) Describe(*Target) []string { return []string{"would " + f.name} }
func (f fakeStep) Apply(ctx context.Context, t *Target, s *Sink) error {
	*f.ran = append(*f.ran, f.name)
	s.Notef("applying %s", f.name)
	return f.fail
}

type verifyingStep struct{ fakeStep }

func (v verifyingStep) Verify(context.Context, *Target) error { return v.verify() }

func testRequest(dir string, names ...string) Request {
	return Request{Command: "install", Plan: plan.Plan{Version: 1, Host: plan.Host{Name: "node1"}}, FlakeDir: filepath.Join(dir, "flake"), Private: dir, Steps: names}
}

// journalFiles are the names in the state folder (a write that is not
// atomic, or one that failed half-way, leaves a temporary file).
func journalFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Sys().(*syscall.Stat_t).Ino
}

// TestRunJournalResume: a failed step is journalled with its Kind and the
// apply's state; running the same request again resumes: a finished step
// without Verify is skipped, one whose Verify passes is skipped, one whose
// Verify fails runs again, and the failed one runs again. The journal is
// 0600, replaced whole on every write (a new inode, no temporary file left).
func TestRunJournalResume(t *testing.T) {
	dir := t.TempDir()
	var ran []string
	refusal := Refuse(errors.New("the disk is in use"))
	verifyBuild, verifyFlake := error(nil), errors.New("hosts/node1/homestaker.json changed")
	list := func(diskErr error) []Step {
		return []Step{
			fakeStep{name: "evaluate", ran: &ran},
			verifyingStep{fakeStep{name: "build", ran: &ran, verify: func() error { return verifyBuild }}},
			verifyingStep{fakeStep{name: "flake", ran: &ran, verify: func() error { return verifyFlake }}},
			fakeStep{name: "disk", ran: &ran, fail: diskErr},
			fakeStep{name: "kexec", ran: &ran},
		}
	}
	req := testRequest(dir, "evaluate", "build", "flake", "disk", "kexec")
	j, resumed, err := OpenJournal(dir, req, nil)
	if err != nil || resumed {
		t.Fatalf("OpenJournal: resumed %v, %v", resumed, err)
	}
	before := inode(t, JournalPath(dir))
	// Held open, the first journal's inode cannot be recycled by the
	// writes below: a replaced journal has another inode.
	held, err := os.Open(JournalPath(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	var events []Event
	err = Run(context.Background(), &Target{}, list(refusal), Options{Journal: j, Emit: func(e Event) { events = append(events, e) }})
	var se *Error
	if !errors.As(err, &se) || se.Step != "disk" || se.Kind != KindRefused {
		t.Fatalf("Run: %#v, want the disk step's refusal", err)
	}
	if !slices.Equal(ran, []string{"evaluate", "build", "flake", "disk"}) {
		t.Errorf("ran %v", ran)
	}
	rec, err := ReadJournal(dir)
	if err != nil {
		t.Fatal(err)
	}
	if rec.State != StateFailed || rec.ErrorKind != KindRefused || rec.Error != "disk: the disk is in use" || rec.PID != os.Getpid() {
		t.Errorf("journal after the failure: state %q kind %d error %q pid %d", rec.State, rec.ErrorKind, rec.Error, rec.PID)
	}
	for _, s := range rec.Steps {
		finished := !s.Finished.IsZero()
		if want := s.Name != "disk" && s.Name != "kexec"; finished != want {
			t.Errorf("step %s finished=%v, want %v", s.Name, finished, want)
		}
	}
	if rec.Steps[3].Error != "the disk is in use" || rec.Steps[3].Started.IsZero() || !rec.Steps[4].Started.IsZero() {
		t.Errorf("disk/kexec in the journal: %+v %+v", rec.Steps[3], rec.Steps[4])
	}
	if last := events[len(events)-1]; last.Status != Failed || last.Step != "disk" || last.N != 4 || last.Of != 5 {
		t.Errorf("last event %+v", last)
	}
	st, _ := os.Stat(JournalPath(dir))
	if st.Mode().Perm() != 0o600 {
		t.Errorf("journal mode %o, want 600", st.Mode().Perm())
	}
	if inode(t, JournalPath(dir)) == before {
		t.Errorf("the journal was rewritten in place (same inode), not replaced atomically")
	}
	if names := journalFiles(t, dir); !slices.Equal(names, []string{JournalFile, "apply.lock"}) {
		t.Errorf("state folder holds %v, want only %s and its lock (no temporary files)", names, JournalFile)
	}

	// Another request does not resume this journal.
	if _, resumed, err := OpenJournal(t.TempDir(), testRequest(dir, "evaluate"), nil); err != nil || resumed {
		t.Errorf("another request: resumed %v, %v", resumed, err)
	}

	// The same request again: resumed.
	ran, events = nil, nil
	j, resumed, err = OpenJournal(dir, req, nil)
	if err != nil || !resumed {
		t.Fatalf("OpenJournal again: resumed %v, %v", resumed, err)
	}
	if err := Run(context.Background(), &Target{}, list(nil), Options{Journal: j, Resume: true, Emit: func(e Event) { events = append(events, e) }}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ran, []string{"flake", "disk", "kexec"}) {
		t.Errorf("resumed apply ran %v, want flake (Verify failed), disk (failed before), kexec", ran)
	}
	var skipped []string
	var again string
	for _, e := range events {
		if e.Status == Skipped {
			skipped = append(skipped, e.Step)
		}
		if e.Step == "flake" && e.Status == Note && strings.Contains(e.Message, "running it again") {
			again = e.Message
		}
	}
	if !slices.Equal(skipped, []string{"evaluate", "build"}) {
		t.Errorf("skipped %v, want evaluate and build", skipped)
	}
	if !strings.Contains(again, "homestaker.json changed") {
		t.Errorf("no note says why flake runs again: %q", again)
	}
	rec, _ = ReadJournal(dir)
	if rec.State != StateDone || rec.Error != "" || rec.ErrorKind != 0 || rec.Started.IsZero() {
		t.Errorf("journal after the resumed apply: %+v", rec)
	}
	for _, s := range rec.Steps {
		if s.Finished.IsZero() || s.Error != "" {
			t.Errorf("step %+v not finished", s)
		}
	}

	// A done journal is not resumed: the same request starts afresh.
	if _, resumed, err := OpenJournal(dir, req, nil); err != nil || resumed {
		t.Errorf("after done: resumed %v, %v", resumed, err)
	}
}

// TestRunInterruptedIsJournalled: a cancelled apply stops at the next
// step, and the journal says it was interrupted.
func TestRunInterruptedIsJournalled(t *testing.T) {
	dir := t.TempDir()
	var ran []string
	ctx, cancel := context.WithCancel(context.Background())
	list := []Step{fakeStep{name: "flake", ran: &ran}, cancelStep{cancel: cancel}, fakeStep{name: "disk", ran: &ran}}
	j, _, err := OpenJournal(dir, testRequest(dir, "flake", "build", "disk"), nil)
	if err != nil {
		t.Fatal(err)
	}
	err = Run(ctx, &Target{}, list, Options{Journal: j})
	if KindOf(err) != KindInterrupted {
		t.Fatalf("Run: %v (kind %d), want interrupted", err, KindOf(err))
	}
	rec, _ := ReadJournal(dir)
	if rec.State != StateFailed || rec.ErrorKind != KindInterrupted || slices.Contains(ran, "disk") {
		t.Errorf("state %q kind %d, ran %v", rec.State, rec.ErrorKind, ran)
	}
}

// cancelStep is a build that Ctrl-C ends half-way.
type cancelStep struct{ cancel func() }

func (cancelStep) Name() string              { return "build" }
func (cancelStep) Title(*Target) string      { return "build" }
func (cancelStep) Describe(*Target) []string { return nil }
func (c cancelStep) Apply(ctx context.Context, t *Target, s *Sink) error {
	c.cancel()
	<-ctx.Done()
	return nil
}

// TestOpenJournalRefusesWhileAnotherApplyRuns: a running journal whose
// process lives is not taken over; once that process is gone, the same
// request resumes it.
func TestOpenJournalRefusesWhileAnotherApplyRuns(t *testing.T) {
	dir := t.TempDir()
	req := testRequest(dir, "flake")
	j, _, err := OpenJournal(dir, req, nil)
	if err != nil {
		t.Fatal(err)
	}
	other := exec.Command("sleep", "30")
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	defer other.Process.Kill()
	if err := j.SetLog(LogPath(dir), other.Process.Pid); err != nil {
		t.Fatal(err)
	}
	for _, r := range []Request{req, testRequest(dir, "other")} {
		_, _, err := OpenJournal(dir, r, nil)
		if KindOf(err) != KindRefused || !strings.Contains(err.Error(), "homestaker attach") {
			t.Errorf("request %v while process %d runs: %v", r.Steps, other.Process.Pid, err)
		}
	}
	other.Process.Kill()
	other.Wait()
	if _, resumed, err := OpenJournal(dir, req, nil); err != nil || !resumed {
		t.Errorf("after the process ended: resumed %v, %v", resumed, err)
	}
}

// TestProcessAliveZombie: a process that ended but was not reaped yet is
// not alive (an orphaned apply's parent may never reap it).
func TestProcessAliveZombie(t *testing.T) {
	cmd := exec.Command("true")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	deadline := time.Now().Add(5 * time.Second)
	for ProcessAlive(pid) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if ProcessAlive(pid) {
		t.Errorf("the zombie %d counts as alive", pid)
	}
	if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err != nil {
		t.Errorf("the process was reaped before the check, so it proved nothing: %v", err)
	}
	cmd.Wait()
	if ProcessAlive(os.Getpid()) != true || ProcessAlive(0) {
		t.Errorf("ProcessAlive(self) must be true, ProcessAlive(0) false")
	}
}

// TestLogRoundTrip: events (with the build's nix line), the end, a line
// that is not a record and a half-written last line come back as written.
func TestLogRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), LogFile)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := OpenLog(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	lw := &LogWriter{W: f}
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	lw.Emit(Event{N: 3, Of: 5, Step: "build", Status: Progress, At: at, Nix: &nixbuild.NixLogEvent{Kind: 1, ID: 7, Text: "building x"}})
	f.WriteString("panic: something\n")
	recs, err := r.Read()
	if err != nil || len(recs) != 2 {
		t.Fatalf("read %d records, %v", len(recs), err)
	}
	if e := recs[0].Event; e == nil || e.Step != "build" || e.Nix == nil || e.Nix.Text != "building x" || e.Nix.ID != 7 || !e.At.Equal(at) {
		t.Errorf("event back: %+v", recs[0])
	}
	if recs[1].Raw != "panic: something" {
		t.Errorf("raw line back: %+v", recs[1])
	}
	if err := lw.End(4, "homestaker install: refused\n"); err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"event":{"n":1`)
	recs, _ = r.Read()
	if len(recs) != 1 || recs[0].End == nil || recs[0].End.Code != 4 || recs[0].End.Report != "homestaker install: refused\n" {
		t.Errorf("end back: %+v", recs)
	}
	if rest := r.Rest(); len(rest) != 1 || rest[0].Raw != `{"event":{"n":1` {
		t.Errorf("half line back: %+v", rest)
	}
	data, _ := os.ReadFile(path)
	if bytes.Count(data, []byte("\n")) != 3 {
		t.Errorf("log:\n%s", data)
	}
}

// TestSystemdRunArgs: the transient unit keeps the environment and the
// folder, logs to the log, is collected, and leaves the kexec jump alone.
func TestSystemdRunArgs(t *testing.T) {
	got := SystemdRunArgs(DetachOptions{SystemdRun: "/usr/bin/systemd-run", Unit: "homestaker-apply-x", Dir: "/root", Log: "/s/apply.log",
		Env: []string{"PATH=/bin", "MULTI=a\nb", "HOME=/root"}, Argv: []string{"/bin/homestaker", "apply", "--journal", "/s"}})
	want := []string{"/usr/bin/systemd-run", "--unit", "homestaker-apply-x", "--collect", "--quiet", "--property=KillMode=process",
		"--property=StandardOutput=append:/s/apply.log", "--property=StandardError=append:/s/apply.log", "--working-directory=/root",
		"--setenv=PATH=/bin", "--setenv=HOME=/root", "--", "/bin/homestaker", "apply", "--journal", "/s"}
	if !slices.Equal(got, want) {
		t.Errorf("systemd-run args:\n%q\nwant\n%q", got, want)
	}
}

// TestSystemdDetection: systemd-run is used only when PID 1 is systemd and
// systemd-run is installed.
func TestSystemdDetection(t *testing.T) {
	proc := t.TempDir()
	os.MkdirAll(filepath.Join(proc, "1"), 0o755)
	found := func(string) (string, error) { return "/usr/bin/systemd-run", nil }
	missing := func(string) (string, error) { return "", exec.ErrNotFound }
	for _, c := range []struct {
		comm string
		look func(string) (string, error)
		want string
	}{
		{"systemd\n", found, "/usr/bin/systemd-run"},
		{"systemd\n", missing, ""},
		{"init\n", found, ""},
		{"process_api\n", found, ""},
	} {
		os.WriteFile(filepath.Join(proc, "1", "comm"), []byte(c.comm), 0o644)
		if got := Systemd(proc, c.look); got != c.want {
			t.Errorf("PID 1 %q: %q, want %q", strings.TrimSpace(c.comm), got, c.want)
		}
	}
}

// TestDetachOutlivesItsSession: the detached process has a session and
// process group of its own, input from /dev/null and its output in the log.
func TestDetachOutlivesItsSession(t *testing.T) {
	log := filepath.Join(t.TempDir(), LogFile)
	d, err := Detach(DetachOptions{Argv: []string{"sh", "-c", `ps -o sid=,pgid= -p $$; cat; echo read-done`}, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Wait(); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(log)
	fields := strings.Fields(string(data))
	pid := strconv.Itoa(d.PID)
	if len(fields) != 3 || fields[0] != pid || fields[1] != pid || fields[2] != "read-done" {
		t.Errorf("want session and group %s, then no input: %q", pid, data)
	}
	st, _ := os.Stat(log)
	if st.Mode().Perm() != 0o600 {
		t.Errorf("log mode %o", st.Mode().Perm())
	}
}

// TestJournalHandOver: a journal install has handed to a detached apply
// (running, no process recorded yet) is refused to another install for a
// while, and taken over by the detached apply.
func TestJournalHandOver(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	req := Request{Command: "install", Steps: []string{"flake", "disk"}}
	j, _, err := OpenJournal(dir, req, clock)
	if err != nil {
		t.Fatal(err)
	}
	if err := j.SetLog(filepath.Join(dir, "apply.log"), 0); err != nil { // handed over
		t.Fatal(err)
	}
	other := Request{Command: "install", Steps: []string{"flake"}}
	if _, _, err := OpenJournal(dir, other, clock); KindOf(err) != KindRefused || !strings.Contains(fmt.Sprint(err), "is starting") {
		t.Errorf("another install during the hand-over: %v, want a refusal", err)
	}
	if _, _, err := OpenJournal(dir, req, clock); KindOf(err) != KindRefused {
		t.Errorf("the same install again during the hand-over: %v, want a refusal", err)
	}
	taken, resumed, err := TakeOverJournal(dir, req, clock)
	if err != nil || !resumed || taken.Record().PID != os.Getpid() {
		t.Fatalf("the detached apply's take-over: resumed %v, err %v", resumed, err)
	}
	// A hand-over that never started is free again after the grace.
	if err := taken.SetLog(filepath.Join(dir, "apply.log"), 0); err != nil {
		t.Fatal(err)
	}
	now = now.Add(handOverGrace + time.Second)
	if _, _, err := OpenJournal(dir, other, clock); err != nil {
		t.Errorf("after the grace: %v", err)
	}
}

// TestJournalRunningNeedsTheSameProcess: a journal names its process by PID
// and start time; the same PID with another start time (the kernel gave the
// number to another program) is not the apply.
func TestJournalRunningNeedsTheSameProcess(t *testing.T) {
	me := os.Getpid()
	start := ProcessStart(me)
	if start == 0 {
		t.Fatal("no start time for this process in /proc")
	}
	rec := JournalRecord{State: StateRunning, PID: me, PIDStart: start}
	if !rec.Running() {
		t.Error("this process's journal does not count as running")
	}
	rec.PIDStart = start + 1
	if rec.Running() {
		t.Error("a journal of another process under the same PID counts as running")
	}
	rec.PIDStart, rec.State = start, StateFailed
	if rec.Running() {
		t.Error("a failed apply counts as running")
	}
}
