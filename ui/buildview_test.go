package ui

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
	"github.com/homestaker/homestaker/nixbuild"
)

// recordedEvents reads a recorded log into events.
func recordedEvents(t *testing.T, name string) []nixbuild.NixLogEvent {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	r := nixbuild.NewNixLogReader(bytes.NewReader(data), 0)
	var evs []nixbuild.NixLogEvent
	for {
		ev, err := r.Next()
		if err != nil {
			return evs
		}
		evs = append(evs, ev)
	}
}

// eachRecording runs f once per Nix version nixbuild recorded its test
// builds with, with the path of the named log.
func eachRecording(t *testing.T, log string, f func(t *testing.T, path string)) {
	t.Helper()
	for _, dir := range []string{"../nixbuild/testdata/build", "../nixbuild/testdata/build/nix-2.26"} {
		t.Run(filepath.Base(dir), func(t *testing.T) { f(t, filepath.Join(dir, log)) })
	}
}

// checkScreen fails when the view does not fit width x height.
func checkScreen(t *testing.T, view string, width, height int) []string {
	t.Helper()
	lines := strings.Split(view, "\n")
	if len(lines) > height {
		t.Errorf("view has %d lines, screen %d:\n%s", len(lines), height, ansi.Strip(view))
	}
	for _, l := range lines {
		if w := ansi.StringWidth(l); w > width {
			t.Errorf("line %q is %d wide, screen %d", ansi.Strip(l), w, width)
		}
	}
	for i := range lines {
		lines[i] = ansi.Strip(lines[i])
	}
	return lines
}

func TestBuildModelAt80x24(t *testing.T) {
	eachRecording(t, "kexec.log", func(t *testing.T, log string) {
		start := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
		now := start
		clock := func() time.Time { return now }
		interrupted := 0
		var m tea.Model = NewBuildModel("Building the kexec tree for node1", clock, func() { interrupted++ }, true)
		m, _ = m.Update(tea.WindowSizeMsg{Width: 80, Height: 24})

		// Feed the recorded build until the initrd's builder announced its
		// phase.
		var initrd uint64
		for _, ev := range recordedEvents(t, log) {
			now = now.Add(500 * time.Millisecond)
			m, _ = m.Update(BuildEventMsg{Event: ev, At: now})
			if ev.Kind == nixbuild.NixLogStart && ev.Type == 105 /* Nix's actBuild */ && strings.HasSuffix(ev.Str(0), "-initrd.drv") {
				initrd = ev.ID
			}
			if initrd != 0 && ev.Kind == nixbuild.NixLogResult && ev.ID == initrd && ev.Type == 104 /* Nix's resSetPhase */ {
				break
			}
		}
		now = now.Add(3 * time.Second)
		screen := strings.Join(checkScreen(t, m.View().Content, 80, 24), "\n")
		for _, want := range []string{
			"Building the kexec tree for node1",
			"Derivations",
			"2/4 · 1 running",
			"Running:",
			"initrd (buildPhase) 0:0",
			"ctrl+c stops the build",
		} {
			if !strings.Contains(screen, want) {
				t.Errorf("screen lacks %q:\n%s", want, screen)
			}
		}
		if first := strings.Split(screen, "\n")[0]; !strings.HasSuffix(first, nixbuild.FormatElapsed(now.Sub(start))) || len([]rune(first)) != 80 {
			t.Errorf("title line %q: want the elapsed time at the right edge of 80 columns", first)
		}

		// Ctrl-C asks the build to stop, once; a second one quits.
		ctrlC := tea.KeyPressMsg{Code: 'c', Mod: tea.ModCtrl}
		m, cmd := m.Update(ctrlC)
		if interrupted != 1 || cmd != nil || !strings.Contains(ansi.Strip(m.View().Content), "stopping the build") {
			t.Errorf("first ctrl+c: interrupted %d, cmd %v", interrupted, cmd)
		}
		m2, cmd := m.Update(ctrlC)
		if interrupted != 1 || cmd == nil {
			t.Errorf("second ctrl+c: interrupted %d, cmd %v", interrupted, cmd)
		} else if _, ok := cmd().(tea.QuitMsg); !ok {
			t.Error("second ctrl+c does not quit")
		}
		_ = m2

		// The end of the build quits the view and says how it went.
		m, cmd = m.Update(BuildDoneMsg{Err: errors.New("nix build of x failed: kexec-tree-broken failed\nmore")})
		if cmd == nil {
			t.Fatal("done without quitting")
		}
		if _, ok := cmd().(tea.QuitMsg); !ok {
			t.Error("done does not quit")
		}
		screen = strings.Join(checkScreen(t, m.View().Content, 80, 24), "\n")
		if !strings.Contains(screen, "✗ nix build of x failed: kexec-tree-broken failed") || strings.Contains(screen, "ctrl+c") {
			t.Errorf("final screen:\n%s", screen)
		}
		if done, err := m.(BuildModel).Done(); !done || err == nil {
			t.Errorf("Done() = %v, %v", done, err)
		}
	})
}

func TestBuildModelCrowdedAndNarrow(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	m := NewBuildModel("Building the ISO image for a-host-with-a-rather-long-name", func() time.Time { return now }, nil, false)
	var tm tea.Model = m
	tm, _ = tm.Update(BuildEventMsg{Event: nixbuild.ParseNixLogLine([]byte(`@nix {"action":"start","id":1,"type":104}`)), At: now})
	for i := 2; i < 40; i++ {
		line := fmt.Sprintf(`@nix {"action":"start","id":%d,"type":105,"fields":["/nix/store/%032d-package-number-%d-with-a-long-name.drv","",1,1]}`, i, i, i)
		tm, _ = tm.Update(BuildEventMsg{Event: nixbuild.ParseNixLogLine([]byte(line)), At: now})
		line = fmt.Sprintf(`@nix {"action":"result","id":%d,"type":101,"fields":["%s"]}`, i, strings.Repeat("compiler output ", 20))
		tm, _ = tm.Update(BuildEventMsg{Event: nixbuild.ParseNixLogLine([]byte(line)), At: now})
	}
	for i := 0; i < 20; i++ {
		tm, _ = tm.Update(BuildEventMsg{Event: nixbuild.NixLogEvent{Kind: nixbuild.NixLogMsg, Level: 1, Text: "warning: something\nsecond line"}, At: now})
	}
	for _, size := range [][2]int{{80, 24}, {40, 12}, {120, 50}} {
		tm, _ = tm.Update(tea.WindowSizeMsg{Width: size[0], Height: size[1]})
		checkScreen(t, tm.View().Content, size[0], size[1])
	}
	// Without an interrupt function, ctrl+c quits.
	_, cmd := tm.Update(tea.KeyPressMsg{Code: 'c', Mod: tea.ModCtrl})
	if cmd == nil {
		t.Fatal("ctrl+c without interrupt did nothing")
	}
	if _, ok := cmd().(tea.QuitMsg); !ok {
		t.Error("ctrl+c without interrupt does not quit")
	}
}
