package ui

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/homestaker/homestaker/disk"
	"github.com/homestaker/homestaker/plan"
)

var update = flag.Bool("update", false, "rewrite the golden screens")

const (
	testFee = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
	testKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIrAWAe8Eu8oR0nqj8sN7aHINtNpPHK2dZ4dS1IZqosR staker@laptop"
	testAge = "age1lu297lxnaakau0jqxq6h66eq37vavm5223ug648hh7vzp6kj8ujqh2ycnv"
	freeID  = "/dev/disk/by-id/nvme-SAMSUNG_MZQL23T8HCLS-00A07_S64HNE0R600002"
)

// serverHardware is the recorded 2-NVMe server (its root on nvme0n1).
func serverHardware(t *testing.T) Hardware {
	t.Helper()
	sys := disk.System{Root: "../disk/testdata/server-2nvme"}
	disks, err := disk.Discover(sys)
	if err != nil {
		t.Fatal(err)
	}
	return Hardware{Arch: plan.ArchX86_64, Board: plan.BoardGeneric, MemoryBytes: 64 << 30, CPUs: 16, Disks: disks}
}

func newWizard(t *testing.T, hw Hardware) *Wizard {
	cat := plan.MustCatalogue()
	return &Wizard{A: DefaultAnswers(hw, cat, "/home/staker"), HW: hw, Cat: cat, PrivateDir: "/home/staker/.local/state/homestaker", Rand: func(n int) int { return n - 1 }}
}

// oneByte hands the prompter one byte per Read, like a slow terminal: no
// answer may be lost to read-ahead.
type oneByte struct{ r *strings.Reader }

func (o oneByte) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	return o.r.Read(p[:1])
}

// examplePlan is the example answers file with this machine's facts.
func examplePlan(t *testing.T, hw Hardware, w *Wizard) plan.Plan {
	data, err := os.ReadFile("../examples/mainnet-erigon-lighthouse.json")
	if err != nil {
		t.Fatal(err)
	}
	p, err := plan.Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	p.Disk.Device = freeID
	got := w.Plan()
	p.Disk.SizeBytes = got.Disk.SizeBytes
	p.Host.MemoryBytes = hw.MemoryBytes
	return p.Defaults(w.Cat)
}

// TestLinesProducesTheAnswersFilePlan answers every question as plain
// lines (with mistakes corrected on the way) and gets the plan of the
// example answers file.
func TestLinesProducesTheAnswersFilePlan(t *testing.T) {
	hw := serverHardware(t)
	w := newWizard(t, hw)
	script := strings.Join([]string{
		"",                // welcome
		"1",               // x86_64
		"Beta",            // not lower case: refused
		"beta",            // node name
		"Europe/Helsinki", // timezone
		"1",               // mainnet
		"5",               // erigon (1 pick, 2 geth, 3 nethermind, 4 besu, 5 erigon)
		"2",               // lighthouse
		"y",               // validator
		"0x5aaeb6053F3E94C9b9A09f33669435E7Ef1BeAed", // bad checksum: refused
		testFee,
		"homestaker on NixOS",
		"/nonexistent/validator_keys", // refused: no such folder
		"",                            // no keys yet
		"",                            // no password file
		"",                            // no slashing history
		"y",                           // MEV-boost
		"",                            // all relays
		"",                            // checkpoint
		"1",                           // the free NVMe
		"1",                           // ext4
		"1",                           // paste keys
		"ssh-rsa nonsense", "",        // refused
		testKey, "",
		"2", // paste age recipients
		testAge, "",
		"1",                  // kexec
		"/srv/staking-flake", // flake folder
	}, "\n") + "\n"
	var out bytes.Buffer
	l := NewLines(oneByte{strings.NewReader(script)}, &out)
	if err := l.RunScreens(w, 0); err != nil {
		t.Fatalf("RunScreens: %v\n%s", err, out.String())
	}
	for _, want := range []string{"use lower case", "EIP-55", "cannot read the folder /nonexistent/validator_keys", "key 1: this is not an SSH public key", "in use: "} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the prompts never said %q:\n%s", want, out.String())
		}
	}
	got := w.Plan()
	want := examplePlan(t, hw, w)
	if a, b := string(plan.Encode(got)), string(plan.Encode(want)); a != b {
		t.Errorf("line prompts plan:\n%s\nanswers file plan:\n%s", a, b)
	}
	if w.A.FlakeDir != "/srv/staking-flake" {
		t.Errorf("flake folder = %q", w.A.FlakeDir)
	}
}

func TestLinesBackAndInputEnd(t *testing.T) {
	hw := serverHardware(t)
	w := newWizard(t, hw)
	// Go to the clients, back to the hardware, rename, then the input ends.
	script := "\n1\nnode7\nUTC\n1\n:back\n1\nnode8\n\n"
	var out bytes.Buffer
	err := NewLines(oneByte{strings.NewReader(script)}, &out).RunScreens(w, 0)
	if !errors.Is(err, ErrInputEnded) {
		t.Fatalf("err = %v, want ErrInputEnded", err)
	}
	if w.A.HostName != "node8" {
		t.Errorf("host name after going back = %q, want node8", w.A.HostName)
	}
}

func TestTekuWithValidatorIsCaughtOnTheValidatorScreen(t *testing.T) {
	w := newWizard(t, serverHardware(t))
	w.A.Consensus = "teku"
	s := w.validator()
	if err := s.Check(); err == nil || !strings.Contains(err.Error(), "no validator client") {
		t.Errorf("teku with a validator: %v", err)
	}
	w.A.Validator = false
	if err := s.Check(); err != nil {
		t.Errorf("teku without a validator: %v", err)
	}
}

func TestPickForMeAvoidsSupermajority(t *testing.T) {
	for _, hw := range []Hardware{
		{Arch: plan.ArchX86_64, Board: plan.BoardGeneric, MemoryBytes: 64 << 30},
		{Arch: plan.ArchX86_64, Board: plan.BoardGeneric}, // RAM unknown: nothing ruled out
	} {
		for i := 0; i < 12; i++ {
			w := newWizard(t, hw)
			w.Rand = func(m int) int { return i % m }
			w.A.Execution, w.A.Consensus = pickForMe, pickForMe
			if warning := w.pickClients(); warning != "" {
				t.Errorf("%s, %d GiB: %s", hw.Arch, hw.MemoryBytes>>30, warning)
			}
			for _, name := range []string{w.A.Execution, w.A.Consensus} {
				c, ok := w.Cat.Client(name)
				if !ok || !c.RunsOn(hw.Arch) || c.Supermajority {
					t.Errorf("%s pick %d = %q", hw.Arch, i, name)
				}
				if c.Kind == plan.Consensus && c.ValidatorModule == "" {
					t.Errorf("%s pick %q has no validator module", hw.Arch, name)
				}
			}
		}
	}
}

func TestRPi4OffersOnlyWhatRunsThere(t *testing.T) {
	hw := Hardware{Arch: plan.ArchAarch64, Board: plan.BoardRPi4, MemoryBytes: 8 << 30}
	w := newWizard(t, hw)
	if w.A.Network != "hoodi" || w.A.MevBoost {
		t.Errorf("RPi4 defaults: network %s, mev-boost %v", w.A.Network, w.A.MevBoost)
	}
	s := w.clients()
	for _, q := range s.Groups[0].Questions[1:] {
		for _, o := range q.Options[1:] {
			c, _ := w.Cat.Client(o.Value)
			if !c.RunsOn(plan.ArchAarch64) {
				t.Errorf("%s offered on a Raspberry Pi 4", o.Value)
			}
		}
	}
	for _, g := range w.validator().Groups {
		for _, q := range g.Questions {
			if strings.Contains(q.Title, "MEV") {
				t.Errorf("MEV-boost offered on aarch64")
			}
		}
	}
	if f := w.ramFeedback(hwPC); !strings.Contains(f, "not that hardware") {
		t.Errorf("x86_64 chosen on a Pi: %q", f)
	}
}

func TestLiveFeedback(t *testing.T) {
	cases := map[string]string{
		"":       "0x + 40 hex digits",
		"0x5aAe": "4 of 40",
		"0x5aaeb6053F3E94C9b9A09f33669435E7Ef1BeAed": "✗",
		testFee: "checksum is correct",
		"0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed": "with checksum: " + testFee,
	}
	for in, want := range cases {
		if got := feeFeedback(in); !strings.Contains(got, want) {
			t.Errorf("feeFeedback(%q) = %q, want %q", in, got, want)
		}
	}
	if got := graffitiFeedback("héllo"); got != "6 of 32 bytes (5 characters)" {
		t.Errorf("graffiti = %q", got)
	}
	if got := graffitiFeedback(strings.Repeat("x", 33)); !strings.HasPrefix(got, "✗") {
		t.Errorf("33 bytes = %q", got)
	}
}

func TestDiskScreenListsInUseDisksWithoutOfferingThem(t *testing.T) {
	w := newWizard(t, serverHardware(t))
	s := w.disk()
	if !strings.Contains(s.Intro, "nvme0n1") || !strings.Contains(s.Intro, "in use: ") {
		t.Errorf("intro does not list the disk in use:\n%s", s.Intro)
	}
	for _, o := range s.Groups[0].Questions[0].Options {
		if strings.Contains(o.Value, "S64HNE0R600001") || strings.HasSuffix(o.Value, "nvme0n1") {
			t.Errorf("the system disk is offered: %v", o)
		}
	}
	if err := w.validateManualDisk("/dev/nvme0n1"); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("typing the system disk: %v", err)
	}
}

// press sends a key to the model and runs the commands it returns (huh
// moves between fields and pages through commands).
func press(t *testing.T, m *Model, keys ...tea.KeyPressMsg) {
	t.Helper()
	for _, k := range keys {
		_, cmd := m.Update(k)
		drain(m, cmd, 0)
	}
}

func drain(m *Model, cmd tea.Cmd, depth int) {
	if cmd == nil || depth > 8 {
		return
	}
	// Timers (cursor blink) never finish in time and are skipped.
	ch := make(chan tea.Msg, 1)
	go func() { ch <- cmd() }()
	var msg tea.Msg
	select {
	case msg = <-ch:
	case <-time.After(50 * time.Millisecond):
		return
	}
	switch msg := msg.(type) {
	case nil:
		return
	case tea.BatchMsg:
		for _, c := range msg {
			drain(m, c, depth+1)
		}
		return
	case tea.QuitMsg:
		return
	default:
		// tea.Sequence: a slice of commands run in order.
		if v := reflect.ValueOf(msg); v.Kind() == reflect.Slice {
			for i := 0; i < v.Len(); i++ {
				if c, ok := v.Index(i).Interface().(tea.Cmd); ok {
					drain(m, c, depth+1)
				}
			}
			return
		}
		_, next := m.Update(msg)
		drain(m, next, depth+1)
	}
}

var (
	enter = tea.KeyPressMsg{Code: tea.KeyEnter}
	esc   = tea.KeyPressMsg{Code: tea.KeyEscape}
	down  = tea.KeyPressMsg{Code: tea.KeyDown}
	ctrlC = tea.KeyPressMsg{Code: 'c', Mod: tea.ModCtrl}
)

func newModel(t *testing.T) *Model {
	w := newWizard(t, serverHardware(t))
	review := func(w *Wizard) Review {
		p := w.Plan()
		return Review{Plan: p, FlakeDir: "/srv/flake", AnswersPath: "/srv/flake/hosts/" + p.Host.Name + "/homestaker.json",
			EraseDevice: p.Disk.Device, EraseDetail: "/dev/nvme1n1, SAMSUNG MZQL23T8HCLS-00A07, 3.8 TB",
			ConfirmNames: []string{p.Disk.Device, "/dev/nvme1n1"},
			Files:        []FileAction{{"flake.nix", "create"}, {"hosts/" + p.Host.Name + "/homestaker.json", "create"}},
			Steps:        []StepPlan{{Title: "Build the kexec tree of node1"}}, Boot: "kexec"}
	}
	m := NewModel(w, 0, review, nil)
	m.Update(tea.WindowSizeMsg{Width: 80, Height: 24})
	drain(m, m.Init(), 0)
	return m
}

func TestModelEscGoesBackKeepingAnswers(t *testing.T) {
	m := newModel(t)
	press(t, m, enter) // welcome
	if m.Screen() != 1 {
		t.Fatalf("after Enter on the welcome: screen %d", m.Screen())
	}
	m.w.A.HostName = "kept"
	press(t, m, esc)
	if m.Screen() != 0 {
		t.Fatalf("Esc: screen %d, want 0", m.Screen())
	}
	press(t, m, enter, enter) // welcome, then the hardware choice
	if m.Screen() != 1 || m.w.A.HostName != "kept" || !strings.Contains(Plain(m.View()), "> kept") {
		t.Errorf("going back lost the answer: screen %d, name %q\n%s", m.Screen(), m.w.A.HostName, Plain(m.View()))
	}
}

func TestModelCtrlCIsInterrupted(t *testing.T) {
	m := newModel(t)
	press(t, m, enter, ctrlC)
	if m.Outcome() != Interrupted || !m.quitting {
		t.Errorf("Ctrl-C: outcome %v, quitting %v", m.Outcome(), m.quitting)
	}
}

// TestGoldenScreens renders each screen at 80x24 without colours and
// compares it with testdata/screens/<n>-<id>.golden (go test ./ui -update).
func TestGoldenScreens(t *testing.T) {
	m := newModel(t)
	m.w.A.FeeRecipient = testFee
	m.w.A.SSHKeys = testKey
	names := append(ScreenIDs(), "review", "confirm")
	for i, name := range names {
		drain(m, m.goTo(i), 0)
		m.Update(tea.WindowSizeMsg{Width: 80, Height: 24})
		got := Plain(m.View())
		lines := strings.Split(got, "\n")
		if len(lines) > 24 {
			t.Errorf("%s: %d lines, more than 24", name, len(lines))
		}
		for n, l := range lines {
			if w := len([]rune(l)); w > 80 {
				t.Errorf("%s line %d is %d columns: %q", name, n+1, w, l)
			}
		}
		path := filepath.Join("testdata", "screens", strconv.Itoa(i+1)+"-"+name+".golden")
		if *update {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test ./ui -update)", err)
		}
		if string(want) != got {
			t.Errorf("%s differs from %s:\n%s", name, path, got)
		}
	}
}

func TestConfirmNeedsTheDeviceTyped(t *testing.T) {
	m := newModel(t)
	n := len(ScreenIDs())
	drain(m, m.goTo(n), 0)
	press(t, m, enter) // "Apply" is first
	if m.Screen() != n+1 {
		t.Fatalf("Apply did not lead to the confirmation: screen %d", m.Screen())
	}
	for _, r := range "/dev/sda" {
		press(t, m, tea.KeyPressMsg{Code: r, Text: string(r)})
	}
	press(t, m, enter)
	if m.quitting {
		t.Fatalf("a wrong device was accepted")
	}
	if !strings.Contains(Plain(m.View()), "exactly") {
		t.Errorf("no error for a wrong device:\n%s", Plain(m.View()))
	}
	drain(m, m.goTo(n+1), 0)
	for _, r := range "/dev/nvme1n1" {
		press(t, m, tea.KeyPressMsg{Code: r, Text: string(r)})
	}
	press(t, m, enter)
	if m.Outcome() != ApplyAll {
		t.Errorf("typing the device: outcome %v\n%s", m.Outcome(), Plain(m.View()))
	}
}
