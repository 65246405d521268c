package cli

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/homestaker/homestaker/internal/testutil"
	"github.com/homestaker/homestaker/plan"
)

// tmuxSession drives the real homestaker binary in a real terminal (tmux,
// 80x24), as a user over SSH would.
type tmuxSession struct {
	t    *testing.T
	name string
}

func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "homestaker")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func startTmux(t *testing.T, env []string, command string) *tmuxSession {
	t.Helper()
	testutil.RequireTool(t, "tmux")
	name := fmt.Sprintf("hs-%d", time.Now().UnixNano())
	shell := strings.Join(env, " ") + " " + command + "; echo EXIT=$?; sleep 120"
	cmd := exec.Command("tmux", "new-session", "-d", "-s", name, "-x", "80", "-y", "24", "env", "TERM=xterm-256color", "sh", "-c", shell)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tmux: %v\n%s", err, out)
	}
	s := &tmuxSession{t: t, name: name}
	t.Cleanup(func() {
		_ = exec.Command("tmux", "kill-session", "-t", name).Run()
		// A wizard that gets the hang-up writes its draft on the way out:
		// let it finish before the test's folders are removed.
		waitGone(command, 10*time.Second)
	})
	return s
}

// waitGone waits until no process runs the program at path.
func waitGone(path string, limit time.Duration) {
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		running := false
		procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
		for _, p := range procs {
			cmdline, err := os.ReadFile(p)
			if err == nil && strings.HasPrefix(string(cmdline), path+"\x00") {
				running = true
				break
			}
		}
		if !running {
			return
		}
	}
}

func (s *tmuxSession) screen() string {
	out, err := exec.Command("tmux", "capture-pane", "-p", "-S", "-60", "-t", s.name).Output()
	if err != nil {
		s.t.Fatalf("tmux capture-pane: %v", err)
	}
	return string(out)
}

// waitFor waits until the screen shows text, and returns the screen.
func (s *tmuxSession) waitFor(text string) string {
	s.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		scr := s.screen()
		if strings.Contains(scr, text) {
			// No pause: keys typed the moment a page shows (or while
			// it changes) must reach it.
			return scr
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("the screen never showed %q; it shows:\n%s", text, scr)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// keys sends tmux key names (Enter, Down, C-u, …) back to back, as fast
// as a terminal delivers them.
func (s *tmuxSession) keys(keys ...string) {
	s.t.Helper()
	if len(keys) == 0 {
		return
	}
	if out, err := exec.Command("tmux", append([]string{"send-keys", "-t", s.name}, keys...)...).CombinedOutput(); err != nil {
		s.t.Fatalf("tmux send-keys %v: %v\n%s", keys, err, out)
	}
}

// typeText types literal text.
func (s *tmuxSession) typeText(text string) {
	s.t.Helper()
	if err := exec.Command("tmux", "send-keys", "-t", s.name, "-l", text).Run(); err != nil {
		s.t.Fatalf("tmux send-keys: %v", err)
	}
}

// answer waits for a question, then sends keys.
func (s *tmuxSession) answer(question string, keys ...string) {
	s.t.Helper()
	s.waitFor(question)
	s.keys(keys...)
}

// startWizard starts the real binary on the recorded 2-NVMe server with an
// empty home, and answers the welcome and hardware screens.
func startWizard(t *testing.T, bin, home string, env ...string) *tmuxSession {
	t.Helper()
	root, _ := filepath.Abs("disk/testdata/server-2nvme")
	s := startTmux(t, append([]string{"HOME=" + home, "HOMESTAKER_SYSTEM_ROOT=" + root}, env...), bin)
	s.answer("Press Enter to begin", "Enter")
	s.answer("What will the node run on?", "Enter")
	return s
}

const (
	e2eFee = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
	e2eKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIrAWAe8Eu8oR0nqj8sN7aHINtNpPHK2dZ4dS1IZqosR staker@laptop"
	e2eAge = "age1lu297lxnaakau0jqxq6h66eq37vavm5223ug648hh7vzp6kj8ujqh2ycnv"
)

// TestWizardInTmux types through every screen as a new user would and
// checks the answers file the wizard wrote against the example answers
// file for the same choices.
func TestWizardInTmux(t *testing.T) {
	bin := buildBinary(t)
	home := t.TempDir()
	flake := filepath.Join(home, "flake")
	s := startWizard(t, bin, home, "PATH=/usr/bin:/bin")
	s.answer("Node name", "C-u")
	s.typeText("beta")
	s.keys("Enter")
	s.answer("Timezone", "C-u")
	s.typeText("Europe/Helsinki")
	s.keys("Enter")
	s.answer("Network", "Enter")
	// Execution: Nethermind is preselected (a minority client); Erigon is two down.
	s.answer("Execution client", "Down", "Down")
	s.waitFor("> Erigon")
	s.keys("Enter")
	s.answer("Consensus client", "Up")
	scr := s.waitFor("> Lighthouse")
	if !strings.Contains(scr, "supermajority") {
		t.Errorf("highlighting Lighthouse shows no supermajority warning:\n%s", scr)
	}
	s.keys("Enter")
	s.answer("Run a validator client?", "Enter")
	s.waitFor("Fee recipient")
	s.typeText(strings.ToLower(e2eFee[:10]) + e2eFee[10:]) // a typo in the checksum
	scr = s.waitFor("EIP-55")
	if !strings.Contains(scr, "✗") {
		t.Errorf("a wrong checksum is not flagged at the field:\n%s", scr)
	}
	s.keys("C-u")
	s.typeText(e2eFee)
	s.waitFor("checksum is correct")
	s.keys("Enter")
	s.answer("Graffiti", "C-u")
	s.typeText("homestaker on NixOS")
	s.waitFor("19 of 32 bytes")
	s.keys("Enter")
	s.answer("Validator keys folder")
	s.typeText("/nonexistent/validator_keys")
	s.keys("Enter")
	s.waitFor("cannot read the folder /nonexistent/validator_keys")
	s.keys("C-u")
	s.waitFor("no keys: the validator starts without keys")
	s.keys("Enter")
	s.answer("Keystore password file", "Enter")
	s.answer("Slashing-protection file", "Enter")
	s.answer("Run MEV-boost?", "Enter")
	s.answer("Relays", "Enter")
	s.answer("Checkpoint sync URL", "Enter")
	scr = s.waitFor("Disk for chain data")
	if !strings.Contains(scr, "in use: ") || !strings.Contains(scr, "nvme0n1") {
		t.Errorf("the disk in use is not listed with its reason:\n%s", scr)
	}
	s.keys("Enter")
	s.answer("Filesystem", "Enter")
	s.answer("SSH keys for root on the node", "Enter")
	s.waitFor("Public keys, one per line")
	s.typeText(e2eKey)
	s.keys("Enter")
	s.answer("Admin age key", "Down")
	s.waitFor("> Paste age recipients")
	s.keys("Enter")
	s.waitFor("Age recipients, one per line")
	s.typeText(e2eAge)
	s.keys("Enter")
	s.answer("How will the node boot?", "Enter")
	s.answer("Folder for the flake", "C-u")
	s.typeText(flake)
	s.keys("Enter")
	scr = s.waitFor("What now?")
	// The first screen of the review: the disk to erase and the warnings
	// (this machine's 63 GiB is below what a mainnet validator needs).
	for _, want := range []string{"ERASE /dev/disk/by-id/nvme-SAMSUNG_MZQL23T8HCLS-00A07_S64HNE0R600002", "! 63 GiB of RAM is below"} {
		if !strings.Contains(scr, want) {
			t.Errorf("the review's first screen does not show %q:\n%s", want, scr)
		}
	}
	// Scrolling shows the files and the answers file.
	seen := scr
	for i := 0; i < 8 && !strings.Contains(seen, "Answers file: "); i++ {
		s.keys("PageDown")
		time.Sleep(200 * time.Millisecond)
		seen += s.screen()
	}
	for _, want := range []string{"+ create    flake.nix", "Answers file: ", "hosts/beta/homestaker.json"} {
		if !strings.Contains(seen, want) {
			t.Errorf("scrolling the review never shows %q:\n%s", want, seen)
		}
	}
	// Nothing is written before the user decides.
	if _, err := os.Stat(flake); err == nil {
		t.Fatalf("the flake folder exists before the review was accepted")
	}
	s.keys("Enter") // "Write the flake and answers only" (Nix ≥ 2.18 is missing here)
	s.waitFor("EXIT=0")

	got, err := os.ReadFile(filepath.Join(flake, "hosts", "beta", "homestaker.json"))
	if err != nil {
		t.Fatalf("the wizard wrote no answers file: %v\n%s", err, s.screen())
	}
	wizardPlan, err := plan.Decode(got)
	if err != nil {
		t.Fatal(err)
	}
	example, res, err := readAnswers("examples/mainnet-erigon-lighthouse.json")
	if err != nil || !res.OK() {
		t.Fatalf("example: %v %v", err, res)
	}
	// Facts of this machine the example cannot know.
	example.Disk.Device = "/dev/disk/by-id/nvme-SAMSUNG_MZQL23T8HCLS-00A07_S64HNE0R600002"
	example.Disk.SizeBytes = wizardPlan.Disk.SizeBytes
	example.Host.MemoryBytes = wizardPlan.Host.MemoryBytes
	example.SSH.HostKey = wizardPlan.SSH.HostKey
	cat := plan.MustCatalogue()
	if a, b := string(plan.Encode(example.Defaults(cat))), string(plan.Encode(wizardPlan.Defaults(cat))); a != b {
		t.Errorf("the wizard's plan differs from the answers file's:\nwizard:\n%s\nanswers file:\n%s", b, a)
	}
	if wizardPlan.Disk.SizeBytes == 0 {
		t.Errorf("the wizard did not record the chosen disk's size")
	}
}

// TestWizardCtrlCInTmux presses Ctrl-C in the middle of the wizard: exit
// status 130 and no file written anywhere.
func TestWizardCtrlCInTmux(t *testing.T) {
	bin := buildBinary(t)
	home := t.TempDir()
	s := startWizard(t, bin, home)
	s.answer("Node name", "Enter")
	s.answer("Timezone", "Enter")
	s.answer("Network", "Down")
	s.keys("C-c")
	s.waitFor("EXIT=130")
	entries, err := os.ReadDir(home)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("Ctrl-C left files behind in HOME: %v", names)
	}
}

// TestWizardQuickKeysInTmux types ahead of the screens, every key of a
// burst sent back to back, and checks each lands on the page it was meant
// for (three quick Enters once skipped the timezone). It runs several
// sessions, since a lost key depends on timing.
func TestWizardQuickKeysInTmux(t *testing.T) {
	bin := buildBinary(t)
	root, _ := filepath.Abs("disk/testdata/server-2nvme")
	for run := 1; run <= 5; run++ {
		home := t.TempDir()
		s := startTmux(t, []string{"HOME=" + home, "HOMESTAKER_SYSTEM_ROOT=" + root}, bin)
		s.waitFor("Press Enter to begin")
		// Welcome, the hardware choice, the node name: the timezone is next.
		s.keys("Enter", "Enter", "Enter")
		scr := s.settled("┃ Timezone")
		if !strings.Contains(scr, "step 2 of 9") {
			t.Fatalf("run %d: three quick Enters did not stop at the timezone:\n%s", run, scr)
		}
		// The timezone, then the network (hoodi) in one burst.
		s.keys("C-u")
		s.typeText("Europe/Helsinki")
		s.keys("Enter", "Down", "Enter")
		scr = s.settled("Execution client")
		if !strings.Contains(scr, "step 3 of 9") || strings.Contains(scr, "Consensus client") {
			t.Fatalf("run %d: the burst did not land on the execution client:\n%s", run, scr)
		}
		// Back to the hardware screen: the typed timezone is where it
		// belongs. (Esc waits for its page: an Esc with a key straight
		// after it reads as Alt and that key, in any terminal.)
		s.keys("Escape")
		s.waitFor("What will the node run on?")
		s.keys("Enter")
		scr = s.settled("┃ Node name")
		if !strings.Contains(scr, "> node1") || !strings.Contains(scr, "> Europe/Helsinki") {
			t.Fatalf("run %d: the typed timezone went astray:\n%s", run, scr)
		}
		s.keys("C-c")
		s.waitFor("EXIT=130")
	}
}

// settled waits for text, then a little longer, and returns the screen:
// for checks that nothing moves on after it.
func (s *tmuxSession) settled(text string) string {
	s.t.Helper()
	s.waitFor(text)
	time.Sleep(400 * time.Millisecond)
	return s.screen()
}
