package image

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
)

// recordedEvents reads a recorded log into events.
func recordedEvents(t *testing.T, name string) []NixLogEvent {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "build", name))
	if err != nil {
		t.Fatal(err)
	}
	r := NewNixLogReader(bytes.NewReader(data), 0)
	var evs []NixLogEvent
	for {
		ev, err := r.Next()
		if err != nil {
			return evs
		}
		evs = append(evs, ev)
	}
}

// clockWriter records, for each write, the fake time it happened at.
type clockWriter struct {
	now   *time.Time
	lines []string
	times []time.Time
}

func (w *clockWriter) Write(p []byte) (int, error) {
	for _, l := range strings.Split(strings.TrimSuffix(string(p), "\n"), "\n") {
		w.lines = append(w.lines, l)
		w.times = append(w.times, *w.now)
	}
	return len(p), nil
}

func TestBuildLinePrinter(t *testing.T) {
	eachRecording(t, "kexec.log", func(t *testing.T, log string) {
		start := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
		now := start
		w := &clockWriter{now: &now}
		p := NewBuildLinePrinter(w, start)
		for _, ev := range recordedEvents(t, log) {
			now = now.Add(300 * time.Millisecond)
			p.Observe(ev, now)
		}
		p.Finish(now)

		var built []string
		var lastStatus time.Time
		statusLines := 0
		for i, l := range w.lines {
			switch {
			case strings.HasPrefix(l, "built "):
				built = append(built, l)
			case strings.HasPrefix(l, "["):
				statusLines++
				if i != len(w.lines)-1 && !lastStatus.IsZero() && w.times[i].Sub(lastStatus) < StatusInterval {
					t.Errorf("status line %q only %v after the previous one", l, w.times[i].Sub(lastStatus))
				}
				lastStatus = w.times[i]
			default:
				t.Errorf("unexpected line %q", l)
			}
		}
		if len(built) != 4 || !strings.HasPrefix(built[3], "built kexec-tree (0:") {
			t.Errorf("finished builds: %q", built)
		}
		// 78 events at 0.3 s: about 23 s, so at most one status line a second.
		if statusLines < 3 || statusLines > 25 {
			t.Errorf("%d status lines:\n%s", statusLines, strings.Join(w.lines, "\n"))
		}
		if last := w.lines[len(w.lines)-1]; !strings.Contains(last, "built 4/4") {
			t.Errorf("last line %q, want the final count", last)
		}
	})
}

func TestBuildLinePrinterFailure(t *testing.T) {
	eachRecording(t, "fail.log", func(t *testing.T, log string) {
		now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
		var out strings.Builder
		p := NewBuildLinePrinter(&out, now)
		for _, ev := range recordedEvents(t, log) {
			now = now.Add(10 * time.Millisecond)
			p.Observe(ev, now)
		}
		p.Finish(now)
		text := out.String()
		for _, want := range []string{
			"built linux-kernel (0:00)\n",
			"FAILED kexec-tree-broken (0:0",
			"nix: error: builder for '/nix/store/",
			"built 1/2 (1 failed) | ",
		} {
			if !strings.Contains(text, want) {
				t.Errorf("line mode output lacks %q:\n%s", want, text)
			}
		}
		if strings.Contains(text, "\x1b") {
			t.Error("line mode output has terminal escapes")
		}
	})
}

func TestStatusSummary(t *testing.T) {
	s := NixStatus{
		Builds:    NixCounter{Done: 2, Expected: 5, Running: 1},
		Copies:    NixCounter{Done: 3, Expected: 10},
		CopyBytes: NixCounter{Done: 12 << 20, Expected: 40 << 20},
		Download:  NixCounter{Done: 5 << 20, Expected: 20 << 20},
		Current:   "building initrd (buildPhase): " + strings.Repeat("x", 200),
	}
	got := StatusSummary(s)
	want := "built 2/5 (1 running), fetched 3/10 paths (12 MiB/40 MiB), downloaded 5.0 MiB/20 MiB | building initrd (buildPhase): "
	if !strings.HasPrefix(got, want) || !strings.HasSuffix(got, "x…") || len([]rune(got)) != len([]rune(want))+100-len("building initrd (buildPhase): ") {
		t.Errorf("StatusSummary = %q", got)
	}
	if StatusSummary(NixStatus{}) != "" {
		t.Error("an empty status gave a line")
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
			if ev.Kind == NixLogStart && ev.Type == actBuild && strings.HasSuffix(ev.Str(0), "-initrd.drv") {
				initrd = ev.ID
			}
			if initrd != 0 && ev.Kind == NixLogResult && ev.ID == initrd && ev.Type == resSetPhase {
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
		if first := strings.Split(screen, "\n")[0]; !strings.HasSuffix(first, formatElapsed(now.Sub(start))) || len([]rune(first)) != 80 {
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
	tm, _ = tm.Update(BuildEventMsg{Event: ParseNixLogLine([]byte(`@nix {"action":"start","id":1,"type":104}`)), At: now})
	for i := 2; i < 40; i++ {
		line := fmt.Sprintf(`@nix {"action":"start","id":%d,"type":105,"fields":["/nix/store/%032d-package-number-%d-with-a-long-name.drv","",1,1]}`, i, i, i)
		tm, _ = tm.Update(BuildEventMsg{Event: ParseNixLogLine([]byte(line)), At: now})
		line = fmt.Sprintf(`@nix {"action":"result","id":%d,"type":101,"fields":["%s"]}`, i, strings.Repeat("compiler output ", 20))
		tm, _ = tm.Update(BuildEventMsg{Event: ParseNixLogLine([]byte(line)), At: now})
	}
	for i := 0; i < 20; i++ {
		tm, _ = tm.Update(BuildEventMsg{Event: NixLogEvent{Kind: NixLogMsg, Level: 1, Text: "warning: something\nsecond line"}, At: now})
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
