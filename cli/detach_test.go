package cli

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/homestaker/homestaker/internal/testutil"
	"github.com/homestaker/homestaker/steps"
)

// detachFixture is a recorded server (disk/testdata/server-2nvme) whose
// free NVMe disk is a file holding old data, a fake nix on PATH whose build
// waits until the test opens its gate, and a home with its state folder, for
// driving the real binary's detached apply.
type detachFixture struct {
	t                            *testing.T
	bin, home, state, disk, gate string
	answers, device, flake       string
	env                          []string
}

// fakeNixScript stands in for nix: its version, an evaluation that passes,
// and a build that replays a recorded internal-json log once the gate file
// exists ($FAKE_NIX_GATE.started says it is waiting).
const fakeNixScript = `#!/bin/sh
case "$1" in
--version) echo "nix (Nix) 2.26.3";;
eval) echo /nix/store/x-kexec-tree.drv;;
build)
  if [ -n "$FAKE_NIX_FAIL" ]; then
    cat "$FAKE_NIX_FAIL" >&2; exit 1
  fi
  if [ -n "$FAKE_NIX_GATE" ]; then
    : > "$FAKE_NIX_GATE.started"
    i=0; while [ ! -e "$FAKE_NIX_GATE" ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done
  fi
  cat "$FAKE_NIX_LOG" >&2
  printf '[{"drvPath":"/nix/store/x-kexec-tree.drv","outputs":{"out":"%s"}}]' "$FAKE_NIX_OUT";;
*) echo "fake nix: unexpected $*" >&2; exit 1;;
esac
`

func newDetachFixture(t *testing.T) *detachFixture {
	t.Helper()
	root := copySystemRoot(t, "server-2nvme")
	fx := &detachFixture{t: t, bin: buildBinary(t), home: t.TempDir(), disk: filepath.Join(root, "dev", "nvme1n1"),
		device: "/dev/disk/by-id/nvme-SAMSUNG_MZQL23T8HCLS-00A07_S64HNE0R600002"}
	if err := os.WriteFile(fx.disk, bytes.Repeat([]byte("old chain data "), 1<<16), 0o644); err != nil {
		t.Fatal(err)
	}
	fx.answers = writeAnswers(t, fx.device)
	fx.state = filepath.Join(fx.home, "state", "homestaker")
	fx.flake = filepath.Join(fx.home, "flake")
	fx.gate = filepath.Join(t.TempDir(), "gate")
	bin := t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "nix"), []byte(fakeNixScript), 0o755); err != nil {
		t.Fatal(err)
	}
	nixLog, err := filepath.Abs(filepath.Join("nixbuild", "testdata", "build", "kexec.log"))
	if err != nil {
		t.Fatal(err)
	}
	fx.env = []string{"HOME=" + fx.home, "XDG_STATE_HOME=" + filepath.Join(fx.home, "state"), systemRootEnv + "=" + root,
		"PATH=" + bin + ":" + os.Getenv("PATH"), "FAKE_NIX_LOG=" + nixLog, "FAKE_NIX_OUT=" + fakeKexecTree(t), "FAKE_NIX_GATE=" + fx.gate}
	t.Cleanup(func() {
		// Whatever happened, no apply outlives the test.
		fx.open()
		if rec, err := steps.ReadJournal(fx.state); err == nil && steps.ProcessAlive(rec.PID) {
			syscall.Kill(rec.PID, syscall.SIGKILL)
		}
		time.Sleep(200 * time.Millisecond) // the fake nix sees the gate
	})
	return fx
}

func (fx *detachFixture) install() string {
	return fx.bin + " install --answers " + fx.answers + " --out " + fx.flake + " --yes --confirm-device " + fx.device
}

// open opens the fake build's gate.
func (fx *detachFixture) open() { os.WriteFile(fx.gate, nil, 0o644) }

// run runs the binary to its end (not in a terminal).
func (fx *detachFixture) run(args ...string) (int, string, string) {
	fx.t.Helper()
	cmd := exec.Command(fx.bin, args...)
	cmd.Env = append(os.Environ(), append(fx.env, "TERM=dumb")...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		fx.t.Fatal(err)
	}
	return cmd.ProcessState.ExitCode(), out.String(), errb.String()
}

// waitUntil polls cond for up to limit.
func waitUntil(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(limit); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %s", what, limit)
		}
	}
}

// waitBuilding waits until the detached apply runs the (held) build, and
// returns the journal then.
func (fx *detachFixture) waitBuilding() steps.JournalRecord {
	fx.t.Helper()
	waitUntil(fx.t, "the build starts", 30*time.Second, func() bool {
		_, err := os.Stat(fx.gate + ".started")
		return err == nil
	})
	var rec steps.JournalRecord
	waitUntil(fx.t, "the journal names the apply's process", 10*time.Second, func() bool {
		var err error
		rec, err = steps.ReadJournal(fx.state)
		return err == nil && rec.PID != 0
	})
	return rec
}

// waitEnded waits until the journal's apply ended, and returns the journal.
func (fx *detachFixture) waitEnded() steps.JournalRecord {
	fx.t.Helper()
	var rec steps.JournalRecord
	waitUntil(fx.t, "the apply ends", 30*time.Second, func() bool {
		var err error
		rec, err = steps.ReadJournal(fx.state)
		return err == nil && rec.State != steps.StateRunning && !steps.ProcessAlive(rec.PID)
	})
	return rec
}

// foreground finds the process running `homestaker install` in a terminal.
func (fx *detachFixture) foreground() int {
	fx.t.Helper()
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		cmdline, err := os.ReadFile(p)
		if err == nil && strings.HasPrefix(string(cmdline), fx.bin+"\x00install\x00") {
			pid, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(p, "/proc/"), "/cmdline"))
			return pid
		}
	}
	fx.t.Fatal("no homestaker install process")
	return 0
}

func (fx *detachFixture) log() string {
	data, err := os.ReadFile(steps.LogPath(fx.state))
	if err != nil {
		fx.t.Fatal(err)
	}
	return string(data)
}

func (fx *detachFixture) stepFinished(rec steps.JournalRecord, name string) time.Time {
	for _, s := range rec.Steps {
		if s.Name == name {
			return s.Finished
		}
	}
	fx.t.Fatalf("no step %s in the journal", name)
	return time.Time{}
}

// TestDetachedApplySurvivesHangup: install --yes in a terminal; the
// terminal goes away (tmux kill-session: an SSH session dropping) while
// the build runs. The foreground ends, the apply goes on to its end (the
// build, then the disk step, which writes the GPT to the disk file and
// fails at the kernel's re-read of a partition table a regular file does
// not have); attach follows it live meanwhile, and shows its result after.
func TestDetachedApplySurvivesHangup(t *testing.T) {
	testutil.RequireTool(t, "tmux")
	fx := newDetachFixture(t)
	s := startTmux(t, append(fx.env, "TERM=dumb"), fx.install())
	rec := fx.waitBuilding()
	s.waitFor("The apply runs on its own (process")
	fg := fx.foreground()
	if fg == rec.PID {
		t.Fatalf("the apply runs in the foreground process %d", fg)
	}
	oldDisk := firstMiB(t, fx.disk)
	if err := exec.Command("tmux", "kill-session", "-t", s.name).Run(); err != nil {
		t.Fatal(err)
	}
	dropped := time.Now().UTC()
	waitUntil(t, "the foreground ends with its terminal", 10*time.Second, func() bool { return !steps.ProcessAlive(fg) })
	if !steps.ProcessAlive(rec.PID) {
		t.Fatalf("the apply (process %d) ended with the terminal", rec.PID)
	}

	// attach follows the running apply from the start of its log.
	attach := exec.Command(fx.bin, "attach")
	attach.Env = append(os.Environ(), append(fx.env, "TERM=dumb")...)
	var aout, aerr bytes.Buffer
	attach.Stdout, attach.Stderr = &aout, &aerr
	if err := attach.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	fx.open()
	err := attach.Wait()
	if code := attach.ProcessState.ExitCode(); code != exitFailure {
		t.Errorf("attach: exit %d (%v), want %d (the disk step fails here)", code, err, exitFailure)
	}
	for _, want := range []string{"The apply (install of node1) runs since", "[1/6] Keys and flake of node1", "[3/6] Build the kexec tree of node1",
		"built kexec-tree", "[4/6] Erase and format the data disk", "write the GPT to /dev/nvme1n1"} {
		if !strings.Contains(aout.String(), want) {
			t.Errorf("attach's output lacks %q:\n%s", want, aout.String())
		}
	}
	if !strings.Contains(aerr.String(), "homestaker install: disk: re-read the partition table") {
		t.Errorf("attach's errors lack the disk step's failure:\n%s", aerr.String())
	}

	rec = fx.waitEnded()
	if rec.State != steps.StateFailed || !strings.Contains(rec.Error, "re-read the partition table") {
		t.Errorf("journal: state %q, error %q", rec.State, rec.Error)
	}
	if built := fx.stepFinished(rec, "build"); built.Before(dropped) {
		t.Errorf("the build finished at %s, before the terminal went away at %s", built, dropped)
	}
	if firstMiB(t, fx.disk) == oldDisk {
		t.Errorf("the disk step did not write the disk after the hang-up")
	}
	log := fx.log()
	if !strings.HasSuffix(log, `{"end":{"code":1,"report":"homestaker install: disk: re-read the partition table of `+filepath.Join(filepath.Dir(filepath.Dir(fx.disk)), "dev", "nvme1n1")+": inappropriate ioctl for device\\n\"}}\n") {
		t.Errorf("the log does not end with the apply's end:\n…%s", log[max(0, len(log)-400):])
	}
	if st, _ := os.Stat(steps.LogPath(fx.state)); st.Mode().Perm() != 0o600 {
		t.Errorf("log mode %o", st.Mode().Perm())
	}

	// After the end: attach shows the result and exits with its code.
	code, out, errOut := fx.run("attach")
	if code != exitFailure || !strings.Contains(out, "): failed.") || !strings.Contains(out, "  done     build") ||
		!strings.Contains(out, "  failed   disk      re-read the partition table") || !strings.Contains(out, "  not run  kexec") ||
		!strings.Contains(errOut, "homestaker install: disk: re-read") {
		t.Errorf("attach after the end: exit %d\n%s\n%s", code, out, errOut)
	}
}

// TestDetachedApplyResumesAfterKill: the apply's process is killed (-9)
// during the build; the foreground says so; install run again resumes
// after the last finished step (the evaluation is skipped, the build runs
// again) and goes on to the disk.
func TestDetachedApplyResumesAfterKill(t *testing.T) {
	testutil.RequireTool(t, "tmux")
	fx := newDetachFixture(t)
	s := startTmux(t, append(fx.env, "TERM=dumb"), fx.install())
	rec := fx.waitBuilding()
	if err := syscall.Kill(rec.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	scr := s.waitFor("EXIT=1")
	if !strings.Contains(strings.ReplaceAll(scr, "\n", " "), "ended before it finished") {
		t.Errorf("the foreground did not say the apply was killed:\n%s", scr)
	}
	rec, _ = steps.ReadJournal(fx.state)
	if rec.State != steps.StateRunning || fx.stepFinished(rec, "evaluate").IsZero() || !fx.stepFinished(rec, "build").IsZero() {
		t.Fatalf("journal after the kill: %+v", rec)
	}
	if code, out, _ := fx.run("attach"); code != exitFailure || !strings.Contains(out, "stopped before it finished") || !strings.Contains(out, "  stopped  build") {
		t.Errorf("attach after the kill: exit %d\n%s", code, out)
	}
	fx.open()
	oldDisk := firstMiB(t, fx.disk)

	code, out, errOut := fx.run(strings.Fields(fx.install())[1:]...)
	if code != exitFailure {
		t.Errorf("install again: exit %d, want %d (the disk step fails here)\n%s\n%s", code, exitFailure, out, errOut)
	}
	for _, want := range []string{"Resuming the apply that stopped", "[2/6] Evaluate the configuration of node1: skipped, done ",
		"[3/6] Build the kexec tree of node1\n", "built kexec-tree", "[4/6] Erase and format the data disk"} {
		if !strings.Contains(out, want) {
			t.Errorf("install again: output lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(fx.log(), `"step":"evaluate","title":"Evaluate the configuration of node1","status":"skipped"`) {
		t.Errorf("the log shows no skipped evaluation:\n%s", fx.log())
	}
	rec = fx.waitEnded()
	if fx.stepFinished(rec, "build").IsZero() || rec.State != steps.StateFailed {
		t.Errorf("journal after the resumed apply: %+v", rec)
	}
	if firstMiB(t, fx.disk) == oldDisk {
		t.Errorf("the resumed apply did not reach the disk")
	}
}

// TestDetachedApplyCtrlC: Ctrl-C in the foreground stops the apply (its
// build is ended), the disk is not touched, and install exits 130.
func TestDetachedApplyCtrlC(t *testing.T) {
	testutil.RequireTool(t, "tmux")
	fx := newDetachFixture(t)
	// The terminal's Ctrl-C reaches the shell too: it traps it, so that
	// it lives on to print install's exit status.
	s := startTmux(t, nil, "trap : INT; "+strings.Join(append(fx.env, "TERM=dumb"), " ")+" "+fx.install())
	rec := fx.waitBuilding()
	oldDisk := firstMiB(t, fx.disk)
	s.keys("C-c")
	scr := s.waitFor("EXIT=130")
	if !strings.Contains(scr, "Stopping the apply") {
		t.Errorf("screen:\n%s", scr)
	}
	if steps.ProcessAlive(rec.PID) {
		t.Errorf("the apply (process %d) still runs after Ctrl-C", rec.PID)
	}
	rec, _ = steps.ReadJournal(fx.state)
	if rec.State != steps.StateFailed || rec.ErrorKind != steps.KindInterrupted {
		t.Errorf("journal: state %q kind %d error %q", rec.State, rec.ErrorKind, rec.Error)
	}
	if firstMiB(t, fx.disk) != oldDisk {
		t.Errorf("the disk changed after Ctrl-C during the build")
	}
	if code, _, _ := fx.run("attach"); code != exitInterrupt {
		t.Errorf("attach of the stopped apply: exit %d, want %d", code, exitInterrupt)
	}
}

// TestAttachNothingRan: attach in a state folder without a journal says so
// and exits 1.
func TestAttachNothingRan(t *testing.T) {
	var out, errb bytes.Buffer
	dir := t.TempDir()
	env := &cliEnv{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(k string) string {
		return map[string]string{"XDG_STATE_HOME": dir}[k]
	}}
	if code := run(context.Background(), env, []string{"attach"}); code != exitFailure || !strings.Contains(out.String(), "No apply has run here") {
		t.Errorf("exit %d: %s %s", code, out.String(), errb.String())
	}
}

// TestAttachEndedApply: attach of an apply that ended shows its steps and
// error, and exits with the code the apply ended with.
func TestAttachEndedApply(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "homestaker")
	req := steps.Request{Command: "install", Steps: []string{"flake", "disk", "kexec"}}
	req.Plan.Host.Name = "node1"
	j, _, err := steps.OpenJournal(state, req, nil)
	if err != nil {
		t.Fatal(err)
	}
	j.Start("flake")
	j.Finish("flake")
	j.Start("disk")
	j.Fail("disk", &steps.Error{Step: "disk", Kind: steps.KindRefused, Err: errors.New("/dev/nvme1n1 holds /")})
	var out, errb bytes.Buffer
	env := &cliEnv{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(k string) string {
		return map[string]string{"XDG_STATE_HOME": dir}[k]
	}}
	code := run(context.Background(), env, []string{"attach"})
	if code != exitRefused {
		t.Errorf("exit %d, want %d", code, exitRefused)
	}
	for _, want := range []string{"The last apply (install of node1, started ", "): failed.", "  done     flake", "  failed   disk      /dev/nvme1n1 holds /", "  not run  kexec"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("lacks %q:\n%s", want, out.String())
		}
	}
	if !strings.Contains(errb.String(), "homestaker install: disk: /dev/nvme1n1 holds /") {
		t.Errorf("stderr: %s", errb.String())
	}
}

// TestPlainHomestakerAttaches: with an apply running in the state folder,
// a plain homestaker attaches to it (its log from the start) instead of
// starting the wizard, and exits with the apply's code.
func TestPlainHomestakerAttaches(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "homestaker")
	req := steps.Request{Command: "install", Steps: []string{"flake", "build"}}
	req.Plan.Host.Name = "node1"
	j, _, err := steps.OpenJournal(state, req, nil)
	if err != nil {
		t.Fatal(err)
	}
	apply := exec.Command("sleep", "30")
	if err := apply.Start(); err != nil {
		t.Fatal(err)
	}
	defer apply.Wait()
	defer apply.Process.Kill()
	logPath := steps.LogPath(state)
	if err := j.SetLog(logPath, apply.Process.Pid); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	lw := &steps.LogWriter{W: f}
	lw.Emit(steps.Event{N: 1, Of: 2, Step: "flake", Title: "Keys and flake of node1", Status: steps.Started})
	lw.Emit(steps.Event{N: 1, Of: 2, Step: "flake", Status: steps.Note, Message: "answers: /x/homestaker.json"})
	go func() {
		time.Sleep(300 * time.Millisecond)
		lw.Emit(steps.Event{N: 2, Of: 2, Step: "build", Title: "Build the kexec tree of node1", Status: steps.Skipped, Message: "done 10:00:00 in the interrupted apply, and still in place"})
		lw.End(0, "")
		f.Close()
	}()
	var out, errb bytes.Buffer
	env := &cliEnv{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(k string) string {
		return map[string]string{"XDG_STATE_HOME": dir, "TERM": "dumb"}[k]
	}}
	if code := run(context.Background(), env, nil); code != exitOK {
		t.Errorf("exit %d\n%s\n%s", code, out.String(), errb.String())
	}
	want := "An apply is running since "
	if !strings.HasPrefix(out.String(), want) || !strings.Contains(out.String(), "[1/2] Keys and flake of node1\nanswers: /x/homestaker.json\n[2/2] Build the kexec tree of node1: skipped, done 10:00:00") {
		t.Errorf("output:\n%s", out.String())
	}
}

// TestAttachStop: attach --stop stops a running apply (started without a
// terminal here) and exits with its code, 130.
func TestAttachStop(t *testing.T) {
	fx := newDetachFixture(t)
	fg := exec.Command(fx.bin, strings.Fields(fx.install())[1:]...)
	fg.Env = append(os.Environ(), append(fx.env, "TERM=dumb")...)
	if err := fg.Start(); err != nil {
		t.Fatal(err)
	}
	defer fg.Wait()
	rec := fx.waitBuilding()
	code, out, errOut := fx.run("attach", "--stop")
	if code != exitInterrupt || !strings.Contains(errOut, "Stopping the apply (process ") || !strings.Contains(out, "[3/6] Build the kexec tree of node1") {
		t.Errorf("attach --stop: exit %d\n%s\n%s", code, out, errOut)
	}
	if err := fg.Wait(); fg.ProcessState.ExitCode() != exitInterrupt {
		t.Errorf("the install that started it: exit %d (%v), want %d", fg.ProcessState.ExitCode(), err, exitInterrupt)
	}
	if rec = fx.waitEnded(); rec.ErrorKind != steps.KindInterrupted {
		t.Errorf("journal: %q kind %d", rec.State, rec.ErrorKind)
	}
}

// TestFailedBuildLeavesTheDiskUntouched: through the real binary, a build
// that fails stops the (detached) apply before the disk step: the disk
// keeps its data byte for byte, the exit code is the build's, the report
// names the failed derivation, and the journal says where it stopped.
func TestFailedBuildLeavesTheDiskUntouched(t *testing.T) {
	fx := newDetachFixture(t)
	failLog, err := filepath.Abs(filepath.Join("nixbuild", "testdata", "build", "fail.log"))
	if err != nil {
		t.Fatal(err)
	}
	fx.env = append(fx.env, "FAKE_NIX_FAIL="+failLog)
	fx.open()
	before := firstMiB(t, fx.disk)
	code, out, errOut := fx.run(strings.Fields(fx.install())[1:]...)
	if code != exitFailure || !strings.Contains(errOut, "kexec-tree-broken") || !strings.Contains(errOut, "was not touched") {
		t.Errorf("exit %d, want the build's failure and the untouched disk named\n%s\n%s", code, out, errOut)
	}
	if strings.Contains(out, "Erase and format the data disk "+fx.device+"\n") && strings.Contains(out, "write the GPT") {
		t.Errorf("the disk step ran after a failed build:\n%s", out)
	}
	if got := firstMiB(t, fx.disk); got != before {
		t.Errorf("the data disk changed: %s, was %s", got, before)
	}
	rec, err := steps.ReadJournal(fx.state)
	if err != nil {
		t.Fatal(err)
	}
	if rec.State != steps.StateFailed || journalFinished(rec, "build") || !journalFinished(rec, "evaluate") {
		t.Errorf("journal: state %s, steps %+v", rec.State, rec.Steps)
	}
}

// TestDetachedApplyRunsOnlyAHandedOverJournal: the hidden `apply --journal`
// carries out a journal that install (or the plain homestaker's resume)
// has just handed to it, after the disk was confirmed. Run by hand on a
// journal that ended (a failed apply, here a failed build), it must not
// resume it: its disk confirmation is stale, and resuming would erase the
// disk without anyone confirming it again.
func TestDetachedApplyRunsOnlyAHandedOverJournal(t *testing.T) {
	fx := newDetachFixture(t)
	failLog, err := filepath.Abs(filepath.Join("nixbuild", "testdata", "build", "fail.log"))
	if err != nil {
		t.Fatal(err)
	}
	good := fx.env
	fx.env = append(append([]string(nil), good...), "FAKE_NIX_FAIL="+failLog)
	fx.open()
	if code, out, errOut := fx.run(strings.Fields(fx.install())[1:]...); code != exitFailure {
		t.Fatalf("install with a failing build: exit %d\n%s\n%s", code, out, errOut)
	}
	rec, err := steps.ReadJournal(fx.state)
	if err != nil || rec.State != steps.StateFailed {
		t.Fatalf("journal after the failed build: %+v, %v", rec, err)
	}
	before := firstMiB(t, fx.disk)
	fx.env = good
	code, out, errOut := fx.run(detachedApplyCmd, "--journal", fx.state)
	if code != exitRefused {
		t.Errorf("apply --journal of an ended journal: exit %d, want %d\n%s\n%s", code, exitRefused, out, errOut)
	}
	if got := firstMiB(t, fx.disk); got != before {
		t.Errorf("apply --journal of an ended journal wrote the data disk without a confirmation")
	}
	if rec2, _ := steps.ReadJournal(fx.state); rec2.State != steps.StateFailed || rec2.Error != rec.Error {
		t.Errorf("the ended journal was changed: state %q error %q", rec2.State, rec2.Error)
	}
}
